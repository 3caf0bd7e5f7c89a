package sidecar

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"nba/nba/server"
)

// TestRegressionJourneyStepGivenByConcurrentDecisions: concurrent
// decisions for one customer deliver a journey step once. They used to be
// answered first and their conditional moves queued after, so every
// decision made before the first move was written gave the step and the
// losers were only counted (nba_journey_effects_conflicts_total).
func TestRegressionJourneyStepGivenByConcurrentDecisions(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	const customers, deciders = 60, 8
	given := map[string]int{}
	var mu sync.Mutex
	for i := range customers {
		c := fmt.Sprintf("c%05d", 100+i)
		if err := s.Event(&server.Event{CustomerID: c, Type: "cart_abandoned", TS: now.Add(-time.Hour),
			Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 80}}}); err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range deciders {
			wg.Go(func() {
				req := server.DecideRequest{DecisionID: c + "-" + strconv.Itoa(g), CustomerID: c, Channel: "email", Limit: 3}
				var resp server.DecideResponse
				<-start
				if err := s.Decide(&req, &resp); err != nil {
					t.Error(err)
					return
				}
				for _, a := range resp.Actions {
					if a.ID == "cart_reminder_1" {
						mu.Lock()
						given[c]++
						mu.Unlock()
					}
				}
			})
		}
		close(start)
		wg.Wait()
	}
	for c, n := range given {
		if n > 1 {
			t.Errorf("%s: cart_reminder_1 given by %d of %d concurrent decisions, want 1", c, n, deciders)
		}
	}
	if len(given) < customers/2 {
		t.Fatalf("cart_reminder_1 given to %d of %d customers: the demo no longer gives the step on email", len(given), customers)
	}
	// The step is in the state when the decisions are answered.
	for c := range given {
		if js := loadedJourneys(t, s, c); len(js) != 1 || js[0].Journey != "abandoned_cart" || js[0].Step != 1 {
			t.Errorf("%s: journeys %+v after the decisions, want abandoned_cart at step 1", c, js)
		}
	}
}
