package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"nba/model"
)

func main() {
	data := flag.String("data", "/work/shared/datasets/hillstrom.csv", "path of hillstrom.csv")
	modelPath := flag.String("model", filepath.Join("bench", "hillstrom", "visit.json"), "visit model for the model-driven policy; empty to skip")
	reps := flag.Int("bootstrap", 1000, "bootstrap resamples per interval; 0 for normal intervals only")
	seed := flag.Uint64("seed", 1, "bootstrap seed")
	flag.Parse()

	cs, err := Load(*data)
	if err != nil {
		log.Fatal(err)
	}
	eval := EvalHalf(cs)
	policies := Baselines()
	if *modelPath != "" {
		m, err := model.Load(*modelPath)
		if err == nil {
			var p Policy
			if p, err = ModelPolicy(m); err == nil {
				policies = append(policies, NamedPolicy{"model: best predicted visit", p})
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "skipping the model-driven policy: %v\n", err)
		}
	}
	fmt.Printf("Hillstrom evaluation half: %d of %d customers; IPS with propensity 1/3; 95%% normal [bootstrap %d] intervals\n\n", len(eval), len(cs), *reps)
	fmt.Println("| policy | visits per customer | conversions per customer | spend per customer ($) |")
	fmt.Println("|---|---|---|---|")
	for _, np := range policies {
		fmt.Printf("| %s |", np.Name)
		for _, o := range Outcomes {
			v := Evaluate(eval, np.Policy, o, *reps, *seed)
			fmt.Printf(" %s |", format(v, o.Name == "spend"))
		}
		fmt.Println()
	}
}

func format(v Value, money bool) string {
	f := "%.4f [%.4f, %.4f]"
	if money {
		f = "%.3f [%.3f, %.3f]"
	}
	s := fmt.Sprintf(f, v.Value, v.Lower, v.Upper)
	if v.BootLower == v.BootLower { // not NaN
		s += fmt.Sprintf(" (boot "+f[5:]+")", v.BootLower, v.BootUpper)
	}
	return s
}
