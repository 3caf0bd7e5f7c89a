package sidecar

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"nba/nba/server"
)

// TestDecideSeedMakesExplorationRepeatable: a request's Seed reaches the
// engine, so two dry runs with the same seed rank the same on a channel
// that explores (the web site: Thompson sampling), which the studio's
// funnel and "nba funnel" rely on to count alike; without a seed the
// draws differ.
func TestDecideSeedMakesExplorationRepeatable(t *testing.T) {
	s := openDemo(t, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	draws := func(customer string, seed uint64) []float64 {
		req := server.DecideRequest{DecisionID: "d", CustomerID: customer, Channel: "web", Limit: 3, Explain: true, DryRun: true, Seed: seed}
		var resp server.DecideResponse
		if err := s.Decide(&req, &resp); err != nil {
			t.Fatal(err)
		}
		var out []float64
		for _, c := range resp.Candidates {
			if c.Exploration.Method != "" {
				out = append(out, c.Exploration.Drawn)
			}
		}
		return out
	}
	unseeded := 0
	for i := 1; i <= 20; i++ {
		c := fmt.Sprintf("c%05d", i)
		a, b := draws(c, server.FunnelSeed(c)), draws(c, server.FunnelSeed(c))
		if len(a) == 0 {
			t.Fatalf("%s: no candidate explored on web", c)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%s: the same seed drew %v then %v", c, a, b)
		}
		if !slices.Equal(draws(c, 0), draws(c, 0)) {
			unseeded++
		}
	}
	if unseeded == 0 {
		t.Errorf("unseeded decisions drew the same every time: the test cannot tell seeded from not")
	}
}

func TestFirstCustomerIDs(t *testing.T) {
	s := openDemo(t, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	all := s.CustomerIDs()
	f := func(n int, want []string) {
		t.Helper()
		if got := s.FirstCustomerIDs(n); !slices.Equal(got, want) || got == nil {
			t.Errorf("FirstCustomerIDs(%d) = %d ids, want %d", n, len(got), len(want))
		}
	}
	f(0, []string{})
	f(-1, []string{})
	f(3, all[:3])
	f(len(all), all)
	f(len(all)+5, all)
}
