package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"nba/nba"
	"nba/nba/declog"
	"nba/nba/evaluate"
	"nba/nba/offpolicy"
)

func init() {
	register(command{name: "uplift", summary: "treatment vs control response and value per action and channel, from decision logs", run: runUplift})
	register(command{name: "replay", summary: "decide logged decisions again with a bundle and report every difference", run: runReplay})
	register(command{name: "evaluate", summary: "estimate a candidate bundle's value from decision logs (IPS, SNIPS, DR)", run: runEvaluate})
	register(command{name: "log", summary: "print a decision log's records as JSON Lines (zstd or Snappy files), oldest first", run: runLog})
}

func runLog(args []string) error {
	fset := flag.NewFlagSet("log", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba log [flags] LOGDIR

Prints every record of the decision log in LOGDIR (<state>/decisions of a
sidecar) as JSON Lines on stdout, oldest file first, whatever the files'
codec (-decisionlog.codec zstd or snappy). Batches cut short by a crash or
damaged are skipped; what was lost is reported on stderr with the counts.
The record schema is in the README and in package nba/declog.

Example:
  nba log -type decision ~/.local/state/nba/demo/decisions | head

Flags:
`)
		fset.PrintDefaults()
	}
	prefix := fset.String("prefix", "decisions", "log file name prefix")
	typ := fset.String("type", "", "print only records of this type: decision or feedback (empty: all)")
	if ok, err := parseAnalysis(fset, args); !ok {
		return err
	}
	if *typ != "" && *typ != "decision" && *typ != "feedback" {
		return fmt.Errorf("-type %q: want decision or feedback", *typ)
	}
	if err := requireLogs(fset.Arg(0), *prefix); err != nil {
		return err
	}
	// Every record starts with its type (declog's writer puts it first).
	want := []byte(`{"type":"` + *typ + `"`)
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	st, err := declog.ReadDir(fset.Arg(0), *prefix, func(line []byte) error {
		if *typ != "" && !bytes.HasPrefix(line, want) {
			return nil
		}
		w.Write(line)
		return w.WriteByte('\n')
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	fmt.Fprintf(os.Stderr, "%d files, %d records, %d lost records (%d bytes) in damaged batches\n",
		st.Files, st.Records, st.LostRecords, st.LostBytes)
	if st.Erased > 0 {
		fmt.Fprintf(os.Stderr, "%d records of erased customers skipped\n", st.Erased)
	}
	return err
}

// parseAnalysis parses the flags of an analysis command that takes one log
// directory; it returns false (and no error) when help was asked for.
func parseAnalysis(fset *flag.FlagSet, args []string) (bool, error) {
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, nil
		}
		return false, err
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return false, errors.New("want one log directory")
	}
	return true, nil
}

// requireLogs fails when dir holds no decision log files: an analysis of
// nothing would print "0 decisions" or a table of NaN and exit 0.
func requireLogs(dir, prefix string) error {
	files, err := declog.Files(dir, prefix)
	if err != nil {
		return err
	}
	if len(files) > 0 {
		return nil
	}
	hint := "give the decisions directory of the sidecar's state directory (-state), e.g. ~/.local/state/nba/demo/decisions"
	if sub := filepath.Join(dir, "decisions"); prefix == "decisions" {
		if fs, _ := declog.Files(sub, prefix); len(fs) > 0 {
			hint = fmt.Sprintf("did you mean %s?", sub)
		}
	}
	return fmt.Errorf("no decision logs in %s (files named %s-*.jsonl.zst or %s-*.jsonl.sz): %s", dir, prefix, prefix, hint)
}

// loadCandidate compiles the catalog of the bundle directory and reads the
// learner checkpoint, if any.
func loadCandidate(bundle, learner string) (*nba.Catalog, []byte, error) {
	if bundle == "" {
		return nil, nil, errors.New("-bundle is required")
	}
	c, err := evaluate.LoadCatalog(os.DirFS(bundle))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", bundle, err)
	}
	var ck []byte
	if learner != "" {
		if ck, err = os.ReadFile(learner); err != nil {
			return nil, nil, fmt.Errorf("cannot read learner checkpoint: %w", err)
		}
	}
	return c, ck, nil
}

func runReplay(args []string) error {
	fset := flag.NewFlagSet("replay", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba replay -bundle DIR [flags] LOGDIR

Decides every decision in the decision log LOGDIR (<state>/decisions of a
sidecar) again with the bundle in DIR, from what the decision logged: its
time, channel, placement, limit, context and exploration seed, and the
inputs it read (profile fields, contact-history counts, journey states).
No snapshot and no customer state are needed. Prints every decision whose
chosen actions, their order or their logged probabilities (beyond
-tolerance) differ, and exits 1 when there is any.

Skipped and counted: decisions logged under another catalog or model
version than the bundle's (a changed bundle should carry a new version),
control-group decisions (holdouts hash the customer id, which the log only
holds as a pseudonym), and decisions logged without inputs (older logs).
The online models start from the bundle's priors, or from -learner: a
decision made after the sidecar learned from feedback replays exactly only
under the learning state it was made with.

Examples:
  nba replay -bundle ./bundle ~/.local/state/nba/demo/decisions
  nba replay -bundle ./bundle -learner state/learner.bin state/decisions

Flags:
`)
		fset.PrintDefaults()
	}
	bundle := fset.String("bundle", "", "bundle directory to replay with (required)")
	learner := fset.String("learner", "", "learner checkpoint (the sidecar's learner.bin) to start the online models from")
	prefix := fset.String("prefix", "decisions", "log file name prefix")
	tol := fset.Float64("tolerance", 1e-9, "largest difference of logged probabilities taken as equal")
	maxShown := fset.Int("max.diffs", 100, "differences printed at most (all are counted)")
	if ok, err := parseAnalysis(fset, args); !ok {
		return err
	}
	if err := requireLogs(fset.Arg(0), *prefix); err != nil {
		return err
	}
	c, ck, err := loadCandidate(*bundle, *learner)
	if err != nil {
		return err
	}
	rep, err := evaluate.Replay(fset.Arg(0), c, evaluate.ReplayConfig{Prefix: *prefix, Learner: ck, Tolerance: *tol, MaxDifferences: max(*maxShown, 1)})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if len(rep.Differences) > 0 {
		fmt.Fprintln(w, "decision\tlogged\treplayed")
		for _, d := range rep.Differences[:min(len(rep.Differences), *maxShown)] {
			fmt.Fprintf(w, "%s\t%s\t%s\n", d.Decision, d.Logged, d.Replayed)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("%d decisions: %d replayed, %d same, %d different; skipped %d of another catalog or model version, %d control, %d without inputs, %d of unknown channels\n",
		rep.Decisions, rep.Replayed, rep.Same, rep.Different, rep.SkippedVersion, rep.SkippedControl, rep.SkippedNoInputs, rep.SkippedChannel)
	if rep.Stale > 0 {
		fmt.Printf("%d of the replayed decisions were made while the live state could not be read (\"state\":\"stale\"): from the snapshot and the last copy of the state held, as their inputs record\n", rep.Stale)
	}
	fmt.Fprintf(os.Stderr, "%d files, %d records, %d lost records (%d bytes) in damaged batches; %d history counts not logged (read as 0), %d logged profile fields unknown to the bundle\n",
		rep.Stats.Files, rep.Stats.Records, rep.Stats.LostRecords, rep.Stats.LostBytes, rep.MissingCounts, rep.UnknownFields)
	if rep.Different > 0 {
		return errSilent
	}
	if rep.Decisions == 0 {
		return fmt.Errorf("no decisions in the logs of %s", fset.Arg(0))
	}
	return nil
}

func runEvaluate(args []string) error {
	fset := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba evaluate -bundle CANDIDATE [flags] LOGDIR

Estimates from the decision log LOGDIR the mean reward per decision that the
bundle CANDIDATE would have had, beside the logged policy's own. Every
logged decision is decided again by the candidate from its logged inputs
(as nba replay does); the candidate's probability of showing the logged
first action first (1 or 0 without exploration, the exploration policy's
probability otherwise) is weighed against the logged probability. The
reward of a decision is 1 when a feedback with a response outcome names it
and its first action (-reward value: the sum of those feedbacks' values).

Prints IPS, self-normalised IPS and doubly robust estimates (reward model:
the mean reward of each logged first action) with 95% intervals, and the
effective sample size of the importance weights: far below the decisions
used means the logs explored too little for this candidate. Decisions with
a logged probability of 0 or none, control-group decisions and decisions
without inputs are skipped and counted; contact-history counts the
candidate reads that were not logged are taken as 0 and counted.

Examples:
  nba evaluate -bundle ./candidate ~/.local/state/nba/demo/decisions
  nba evaluate -bundle ./candidate -reward value -responses convert state/decisions

Flags:
`)
		fset.PrintDefaults()
	}
	bundle := fset.String("bundle", "", "candidate bundle directory (required)")
	learner := fset.String("learner", "", "learner checkpoint to start the candidate's online models from")
	prefix := fset.String("prefix", "decisions", "log file name prefix")
	responses := fset.String("responses", "accept,convert", "feedback outcomes that count as a response, comma-separated")
	reward := fset.String("reward", "response", "reward of a decision: response (1 or 0) or value (sum of the responses' values)")
	retries := fset.Int("retries", 64, "extra seeds tried to find an exploring candidate's probability of a logged action")
	if ok, err := parseAnalysis(fset, args); !ok {
		return err
	}
	if err := requireLogs(fset.Arg(0), *prefix); err != nil {
		return err
	}
	c, ck, err := loadCandidate(*bundle, *learner)
	if err != nil {
		return err
	}
	rep, err := evaluate.Evaluate(fset.Arg(0), c, evaluate.PolicyConfig{Prefix: *prefix, Responses: strings.Split(*responses, ","),
		Reward: *reward, Learner: ck, Retries: *retries})
	if err != nil {
		return err
	}
	if rep.Used == 0 {
		// Every estimate would be 0/0.
		return fmt.Errorf("no decision of %s could be used: %d decisions; skipped %d control, %d without action, %d without probability, %d without inputs, %d of unknown channels",
			fset.Arg(0), rep.Decisions, rep.SkippedControl, rep.SkippedNoAction, rep.SkippedNoProb, rep.SkippedNoInputs, rep.SkippedChannel)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "policy\testimator\tvalue [95%]\tstd err\teffective n\tmax weight")
	for _, r := range []struct {
		policy, name string
		e            offpolicy.Estimate
	}{{"logged", "on-policy", rep.Logged}, {"candidate", "ips", rep.IPS}, {"candidate", "snips", rep.SNIPS}, {"candidate", "dr", rep.DR}} {
		fmt.Fprintf(w, "%s\t%s\t%.4f [%.4f, %.4f]\t%.4f\t%.0f\t%.3g\n", r.policy, r.name, r.e.Value, r.e.Lower, r.e.Upper, r.e.StdErr, r.e.EffectiveN, r.e.MaxWeight)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("%d decisions: %d used (%d with the logged first action); skipped %d control, %d without action, %d without probability, %d without inputs, %d of unknown channels\n",
		rep.Decisions, rep.Used, rep.Agree, rep.SkippedControl, rep.SkippedNoAction, rep.SkippedNoProb, rep.SkippedNoInputs, rep.SkippedChannel)
	fmt.Fprintf(os.Stderr, "%d files, %d records, %d lost records (%d bytes) in damaged batches; %d history counts not logged (read as 0), %d logged profile fields unknown to the candidate, %d probabilities not found (taken as 0), %d responses for decisions not in the logs\n",
		rep.Stats.Files, rep.Stats.Records, rep.Stats.LostRecords, rep.Stats.LostBytes, rep.MissingCounts, rep.UnknownFields, rep.Unresolved, rep.Orphans)
	return nil
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
	asJSON := fset.Bool("json", false, "print the rows as a JSON array (intervals as [value, lower, upper]), as the studio's dashboard shows them")
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
	if err := requireLogs(fset.Arg(0), *prefix); err != nil {
		return err
	}
	rows, stats, orphans, err := evaluate.Uplift(fset.Arg(0), *prefix, evaluate.UpliftConfig{Responses: strings.Split(*responses, ",")})
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("no decisions in the logs of %s (%d files, %d records)", fset.Arg(0), stats.Files, stats.Records)
	}
	if *asJSON {
		b, err := json.Marshal(upliftJSON(rows))
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(append(b, '\n'))
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
