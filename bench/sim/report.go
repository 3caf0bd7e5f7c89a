package main

import (
	"fmt"
	"io"
	"time"
)

// checkpoints are the days (1-based) at which the share of the oracle's
// responses is reported.
var checkpoints = []int{7, 30, 90}

func find(res []Result, pol string) *Result {
	for i := range res {
		if res[i].Policy == pol {
			return &res[i]
		}
	}
	return nil
}

// shareOfOracle is r's cumulative responses by day (1-based) over the oracle's.
func shareOfOracle(r, oracle *Result, day int) float64 {
	d := min(day, len(r.Cum)) - 1
	if oracle.Cum[d] == 0 {
		return 0
	}
	return r.Cum[d] / oracle.Cum[d]
}

func report(w io.Writer, cfg Config, res []Result, took time.Duration) {
	fmt.Fprintf(w, "customers=%d days=%d seed=%d draws=%d train.rows=%d (%.0fs)\n\n",
		cfg.Customers, cfg.Days, cfg.Seed, cfg.Draws, cfg.TrainRows, took.Seconds())
	oracle := find(res, polOracle)
	fmt.Fprintf(w, "| policy | decisions | shown | responses (treated) | resp/customer treated | resp/customer control | uplift/customer |")
	for _, d := range checkpoints {
		fmt.Fprintf(w, " oracle share d%d |", d)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "|---|---|---|---|---|---|---|")
	for range checkpoints {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for i := range res {
		r := &res[i]
		fmt.Fprintf(w, "| %s | %d | %d | %d | %.4f | %.4f | %.4f |", r.Policy, r.Decisions, r.Shown, r.TreatedResp,
			float64(r.TreatedResp)/float64(max(r.TreatedCustomers, 1)), float64(r.ControlResp)/float64(max(r.ControlCustomers, 1)), r.Uplift())
		for _, d := range checkpoints {
			fmt.Fprintf(w, " %.3f |", shareOfOracle(r, oracle, d))
		}
		fmt.Fprintln(w)
	}
	l, m := find(res, polLearner), find(res, polManual)
	fmt.Fprintf(w, "\nlearner_vs_oracle=%.3f learner_vs_manual_uplift=%.2f\n",
		shareOfOracle(l, oracle, cfg.Days), l.Uplift()/m.Uplift())
}
