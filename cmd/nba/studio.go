package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"nba/nba/declog"
	"nba/nba/evaluate"
	"nba/nba/offpolicy"
	"nba/nba/server"
)

// What the studio's funnel and dashboard share with the command line: the
// funnel (server.Funnel) and the uplift rows (evaluate.Uplift, encoded by
// upliftJSON), so that a page and a command given the same input answer
// the same numbers.

func init() {
	register(command{name: "funnel", summary: "dry-run decisions for a sample of customers: per action, how many pass each stage (as the studio's funnel)", run: runFunnel})
}

func runFunnel(args []string) error {
	fset := flag.NewFlagSet("funnel", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba funnel -channel CHANNEL [flags]

Decides an explained dry run for each of the first -n customers of the
bundle's snapshot (in the snapshot's order), exploration seeded by the
customer id, and counts per action how many customers' decisions
considered it, how many each stage removed and how many passed it, how many
were given it and how many got it in first place; and how many customers
got no action. It is the studio's population funnel (/ui/funnel): given the
same bundle, state, sample and -at, both count the same. -json prints the
"result" object the studio's API answers.

Examples:
  nba funnel -channel web -n 10000 -at 2026-12-24T09:00:00Z
  nba funnel -channel email -json | jq .actions

Flags:
`)
		fset.PrintDefaults()
	}
	var bf bundleFlags
	bf.register(fset)
	channel := fset.String("channel", "", "channel to decide for (required)")
	placement := fset.String("placement", "", "placement")
	n := fset.Int("n", server.DefaultFunnelN, fmt.Sprintf("customers to decide for, the first of the snapshot (at most %d)", server.MaxFunnelN))
	limit := fset.Int("limit", 1, "actions per decision")
	asJSON := fset.Bool("json", false, "print the result as JSON")
	at := time.Now().UTC().Truncate(time.Second)
	fset.Func("at", "decide as of this RFC 3339 time (default now)", func(v string) error {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return errors.New("want an RFC 3339 time such as 2026-12-24T09:00:00Z")
		}
		at = t.UTC()
		return nil
	})
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *channel == "" {
		return errors.New("-channel is required")
	}
	if *n < 1 || *n > server.MaxFunnelN {
		return fmt.Errorf("-n %d: want 1 to %d", *n, server.MaxFunnelN)
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fset.Arg(0))
	}
	s, done, err := bf.open()
	if err != nil {
		return err
	}
	defer done()
	ids := s.FirstCustomerIDs(*n)
	q := server.FunnelQuery{Channel: *channel, Placement: *placement, N: *n, Limit: max(1, *limit), At: at}
	res, err := server.Funnel(context.Background(), s, ids, q, nil)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "action\tconsidered\t")
	for _, st := range res.Stages {
		fmt.Fprintf(w, "%s\t", st)
	}
	fmt.Fprintln(w, "chosen\tfirst\t")
	for _, a := range res.Actions {
		fmt.Fprintf(w, "%s\t%d\t", a.ID, a.Considered)
		for _, p := range a.Passed {
			fmt.Fprintf(w, "%d\t", p)
		}
		fmt.Fprintf(w, "%d\t%d\t\n", a.Chosen, a.First)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("%d customers on %s as of %s: %d with no action (%d control, %d stopped by a channel limit); columns after considered: customers passing each stage\n",
		res.Customers, *channel, at.Format(time.RFC3339), res.NoAction, res.Control, res.Stopped)
	return nil
}

// upliftRow is one evaluate.UpliftRow as "nba uplift -json" and the
// studio's dashboard write it: intervals as [value, lower, upper], null
// where undefined (a group with no member).
type upliftRow struct {
	Channel     string      `json:"channel"`
	Action      string      `json:"action"`
	Treated     int         `json:"treated"`
	Control     int         `json:"control"`
	RateTreated [3]*float64 `json:"rate_treated"`
	RateControl [3]*float64 `json:"rate_control"`
	Uplift      [3]*float64 `json:"uplift"`
	ValueUplift [3]*float64 `json:"value_uplift"`
}

func interval(iv offpolicy.Interval) [3]*float64 {
	f := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return [3]*float64{f(iv.Value), f(iv.Lower), f(iv.Upper)}
}

// upliftJSON returns the rows in the form "nba uplift -json" prints.
func upliftJSON(rows []evaluate.UpliftRow) []upliftRow {
	out := make([]upliftRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, upliftRow{Channel: r.Channel, Action: r.Action, Treated: r.Treatment.N, Control: r.Control.N,
			RateTreated: interval(r.RateT), RateControl: interval(r.RateC), Uplift: interval(r.RateDiff), ValueUplift: interval(r.ValueDiff)})
	}
	return out
}

// propensitySeries is the mean propensity of one action's chosen slots per
// minute of the decision log.
type propensitySeries struct {
	Action string            `json:"action"`
	Points []propensityPoint `json:"points"`
}

type propensityPoint struct {
	T    time.Time `json:"t"` // the minute's start
	Mean float64   `json:"mean"`
	N    int       `json:"n"`
}

// decisionLogReport returns the studio dashboard's reader of the decision
// log in dir (server.StudioConfig.DecisionLog): the uplift rows of
// evaluate.Uplift, as "nba uplift -json" prints them, and the mean
// propensity of each chosen action per minute. The uplift holds every
// decision of the log in memory, in the serving process: a log of more
// than maxBytes on disk is not read (the error says to run nba uplift).
func decisionLogReport(dir string, maxBytes int64) func(dst []byte) ([]byte, error) {
	return func(dst []byte) ([]byte, error) {
		out := struct {
			Uplift     []upliftRow        `json:"uplift"`
			Propensity []propensitySeries `json:"propensity"`
		}{Uplift: []upliftRow{}, Propensity: []propensitySeries{}}
		files, err := declog.Files(dir, "decisions")
		if err != nil || len(files) == 0 {
			b, err := json.Marshal(out)
			return append(dst, b...), err
		}
		var size int64
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				size += fi.Size()
			}
		}
		if size > maxBytes {
			return dst, fmt.Errorf("the decision log holds %d MiB, more than the dashboard reads (-studio.maxLogBytes %d MiB): run nba uplift %s", size>>20, maxBytes>>20, dir)
		}
		rows, _, _, err := evaluate.Uplift(dir, "decisions", evaluate.UpliftConfig{})
		if err != nil {
			return dst, err
		}
		out.Uplift = upliftJSON(rows)
		type key struct {
			action string
			minute int64
		}
		sums := map[key]*propensityPoint{}
		if _, err := declog.ReadDir(dir, "decisions", func(line []byte) error {
			r, err := declog.ParseRecord(line)
			if err != nil || r.Type != "decision" {
				return nil // a record the uplift read too; skip what is not a decision
			}
			for _, c := range r.Chosen {
				for _, cd := range r.Candidates {
					if cd.Action == c.Action && cd.P != nil {
						k := key{c.Action, r.Time.Unix() / 60}
						p := sums[k]
						if p == nil {
							p = &propensityPoint{T: time.Unix(k.minute*60, 0).UTC()}
							sums[k] = p
						}
						p.Mean += *cd.P
						p.N++
						break
					}
				}
			}
			return nil
		}); err != nil {
			return dst, fmt.Errorf("cannot read decision log: %w", err)
		}
		by := map[string][]propensityPoint{}
		for k, p := range sums {
			by[k.action] = append(by[k.action], propensityPoint{T: p.T, Mean: p.Mean / float64(p.N), N: p.N})
		}
		for a, pts := range by {
			slices.SortFunc(pts, func(x, y propensityPoint) int { return x.T.Compare(y.T) })
			out.Propensity = append(out.Propensity, propensitySeries{Action: a, Points: pts})
		}
		slices.SortFunc(out.Propensity, func(x, y propensitySeries) int {
			if x.Action < y.Action {
				return -1
			}
			if x.Action > y.Action {
				return 1
			}
			return 0
		})
		b, err := json.Marshal(out)
		return append(dst, b...), err
	}
}
