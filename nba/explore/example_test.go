package explore_test

import (
	"fmt"

	"nba/nba/explore"
)

func ExamplePolicy_Choose() {
	p, err := explore.New(explore.Config{Method: explore.Epsilon, Epsilon: 0.1})
	if err != nil {
		panic(err)
	}
	s := p.NewScratch() // one per request or goroutine, e.g. from a sync.Pool
	s.Seed(2026, 11)
	out, _ := p.Choose(s, explore.Input{Scores: []float64{0.02, 0.05, 0.01, 0.04}}, 2, nil)
	for slot, c := range out {
		fmt.Printf("slot %d: candidate %d with probability %.3f\n", slot, c.Index, c.Prob)
	}
	// Output:
	// slot 0: candidate 1 with probability 0.925
	// slot 1: candidate 3 with probability 0.925
}
