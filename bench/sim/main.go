// Command sim measures decision policies in a simulated market: a
// population with hidden true response probabilities for 52 campaigns, run
// day by day through the real decision engine (nba.Engine) under five
// policies — manual priorities, random, an offline model, the self-learning
// engine (offline model + online correction + thompson exploration), the
// same without exploration (learner_greedy, an ablation) and an oracle that
// scores with the truth — each with a 10% control group.
//
// See world.go for the generative model. Usage:
//
//	go run ./bench/sim [-customers=20000] [-days=90] [-seed=1]
//
// The last line is machine-readable:
// learner_vs_oracle=<share of the oracle's responses by the last day>
// learner_vs_manual_uplift=<learner's uplift / manual's uplift>.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var cfg Config
	flag.IntVar(&cfg.Customers, "customers", 20000, "simulated customers")
	flag.IntVar(&cfg.Days, "days", 90, "simulated days")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the population, the truth and every coin flip")
	flag.IntVar(&cfg.Draws, "draws", 32, "Monte-Carlo draws of the learner's thompson exploration")
	flag.IntVar(&cfg.TrainRows, "train.rows", 30000, "day-0 observations the offline model is fitted on")
	flag.IntVar(&cfg.Parallel, "parallel", 2, "policies simulated at once")
	flag.Parse()
	if cfg.Customers < 1 || cfg.Days < 1 || cfg.Draws < 1 || cfg.TrainRows < 100 {
		fmt.Fprintln(os.Stderr, "sim: -customers, -days and -draws must be positive, -train.rows at least 100")
		os.Exit(2)
	}
	start := time.Now()
	res, err := simulate(cfg, policies)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(1)
	}
	report(os.Stdout, cfg, res, time.Since(start))
}
