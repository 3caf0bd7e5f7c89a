package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"nba/nba/evaluate"
)

func init() {
	register(command{name: "uplift", summary: "treatment vs control response and value per action and channel, from decision logs", run: runUplift})
}

func runUplift(args []string) error {
	fset := flag.NewFlagSet("uplift", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba uplift [flags] LOGDIR

Reads the decision log in LOGDIR (<state>/decisions of a sidecar) and
compares, per action and channel, the decisions that showed the action with
the control-group decisions that withheld it: response rates with Wilson 95%
intervals, their difference with Newcombe's interval, and the value per
decision with a Welch interval. A decision responded when a feedback with a
response outcome names its decision_id (send feedback for control decisions
too: the customer converting on their own is what uplift is measured
against). Action "*" is every decision of the channel.

Example:
  nba uplift ~/.local/state/nba/demo/decisions

Flags:
`)
		fset.PrintDefaults()
	}
	responses := fset.String("responses", "accept,convert", "feedback outcomes that count as a response, comma-separated")
	prefix := fset.String("prefix", "decisions", "log file name prefix")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return errors.New("want one log directory")
	}
	rows, stats, orphans, err := evaluate.Uplift(fset.Arg(0), *prefix, evaluate.UpliftConfig{Responses: strings.Split(*responses, ",")})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "channel\taction\ttreated\tcontrol\trate treated [95%]\trate control [95%]\tuplift [95%]\tvalue uplift [95%]")
	iv := func(v, lo, hi float64, pct bool) string {
		if pct {
			return fmt.Sprintf("%.2f%% [%.2f, %.2f]", 100*v, 100*lo, 100*hi)
		}
		return fmt.Sprintf("%.3f [%.3f, %.3f]", v, lo, hi)
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", r.Channel, r.Action, r.Treatment.N, r.Control.N,
			iv(r.RateT.Value, r.RateT.Lower, r.RateT.Upper, true), iv(r.RateC.Value, r.RateC.Lower, r.RateC.Upper, true),
			iv(r.RateDiff.Value, r.RateDiff.Lower, r.RateDiff.Upper, true), iv(r.ValueDiff.Value, r.ValueDiff.Lower, r.ValueDiff.Upper, false))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d files, %d records, %d lost records (%d bytes) in damaged batches, %d feedbacks for decisions not in the logs\n",
		stats.Files, stats.Records, stats.LostRecords, stats.LostBytes, orphans)
	return nil
}
