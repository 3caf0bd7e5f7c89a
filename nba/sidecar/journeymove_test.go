package sidecar

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"nba/nba/server"
	"nba/state"
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

// refusingMoves is a state backend whose journey moves all fail with err.
type refusingMoves struct {
	state.Backend
	err   error
	tries int
}

func (r *refusingMoves) SetJourney(...state.JourneyUpdate) error {
	r.tries++
	return r.err
}

// TestJourneyStepFailsClosed: a decision whose journey move cannot be
// written gives no step: after maxMoveAttempts conflicts (each decided
// again), or at once when the state is unavailable. The other actions
// are still given, and explain says why the step was not.
func TestJourneyStepFailsClosed(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		err       error
		wantTries int
	}{
		{"conflict", &state.Error{Kind: state.ErrConflict, Err: errors.New("moved elsewhere")}, maxMoveAttempts},
		{"unavailable", &state.Error{Kind: state.ErrUnavailable, Err: errors.New("disk full")}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openDemo(t, now)
			const c = "c00042"
			if err := s.Event(&server.Event{CustomerID: c, Type: "cart_abandoned", TS: now.Add(-time.Hour),
				Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 80}}}); err != nil {
				t.Fatal(err)
			}
			var probe server.DecideResponse
			if err := s.Decide(&server.DecideRequest{DecisionID: "probe", CustomerID: c, Channel: "push", Limit: 3, DryRun: true}, &probe); err != nil {
				t.Fatal(err)
			}
			if ids := ids(&probe); len(ids) == 0 || ids[0] != "cart_reminder_1" {
				t.Fatalf("dry run after cart_abandoned: %v, want cart_reminder_1 first", ids)
			}
			r := &refusingMoves{Backend: s.state, err: tc.err}
			s.state = r
			resp := decide(t, s, c, "push")
			if slices.Contains(ids(resp), "cart_reminder_1") {
				t.Errorf("cart_reminder_1 given although its move was refused: %v", ids(resp))
			}
			if r.tries != tc.wantTries {
				t.Errorf("%d moves tried, want %d", r.tries, tc.wantTries)
			}
			if n := s.effectsDropped.Load(); n != 1 {
				t.Errorf("%d steps counted as not given, want 1", n)
			}
			why := ""
			for _, cd := range resp.Candidates {
				if cd.ID == "cart_reminder_1" {
					why = cd.Stage + ": " + cd.Detail
				}
			}
			if !strings.HasPrefix(why, "journey: journey step not recorded") {
				t.Errorf("cart_reminder_1 explained as %q, want the journey stage saying the step was not recorded", why)
			}
			s.state = r.Backend
			if js := loadedJourneys(t, s, c); len(js) != 1 || js[0].Step != 0 {
				t.Errorf("journeys %+v, want abandoned_cart still at step 0", js)
			}
		})
	}
}

// refusingReservations is a state backend whose reservations all fail as
// unavailable.
type refusingReservations struct{ state.Backend }

func (refusingReservations) Reserve(...state.Reservation) error {
	return &state.Error{Kind: state.ErrUnavailable, Err: errors.New("out of reach")}
}

// TestJourneyStepNotReservedStaysDue: a journey step removed from a
// decision because its exact cap could not be reserved does not move the
// journey: the step is still due for the next decision. The move used to
// be written from the engine's changes whatever the reservation did, so
// the step was skipped without being given.
func TestJourneyStepNotReservedStaysDue(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	fsys := demoCatalogWith(t, func(c string) string {
		return strings.Replace(c, "- {max: 1, window: 1d}", "- {max: 1, window: 1d, exact: true}", 1)
	})
	s, err := Open(Config{Bundle: fsys, BundleName: "exact", StateDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const c = "c00042"
	if err := s.Event(&server.Event{CustomerID: c, Type: "cart_abandoned", TS: now.Add(-time.Hour),
		Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 80}}}); err != nil {
		t.Fatal(err)
	}
	var probe server.DecideResponse
	if err := s.Decide(&server.DecideRequest{DecisionID: "probe", CustomerID: c, Channel: "email", Limit: 3, DryRun: true}, &probe); err != nil {
		t.Fatal(err)
	}
	if ids := ids(&probe); len(ids) == 0 || ids[0] != "cart_reminder_1" {
		t.Fatalf("dry run on email after cart_abandoned: %v, want cart_reminder_1 first", ids)
	}
	s.state = refusingReservations{s.state}
	if got := ids(decide(t, s, c, "email")); slices.Contains(got, "cart_reminder_1") {
		t.Fatalf("cart_reminder_1 given without its exact cap reserved: %v", got)
	}
	if js := loadedJourneys(t, s, c); len(js) != 1 || js[0].Step != 0 {
		t.Errorf("journeys %+v after a decision that did not give the step, want abandoned_cart still at step 0", js)
	}
}
