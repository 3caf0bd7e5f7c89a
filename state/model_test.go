package state

import (
	"sync"
	"testing"
	"time"
)

// enterOnce is an Event.JourneysFrom that enters journey j unless the
// customer has been in it.
func enterOnce(j string) func([]JourneyState) []JourneyMove {
	return func(cur []JourneyState) []JourneyMove {
		for _, x := range cur {
			if x.Journey == j {
				return nil
			}
		}
		return []JourneyMove{{Journey: j}}
	}
}

// TestEventJourneysFromIsAtomic: the journey moves an event computes are
// computed from the journeys as they stand when the event is applied, in
// the same step per customer: concurrent events entering the same journey
// enter it once, and an event sees the moves of the events before it in
// the same call. (Computed from an earlier read outside the store, every
// concurrent event would enter.)
func TestEventJourneysFromIsAtomic(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			e := Event{Customer: "c", Type: "cart_abandoned", At: t0.Add(time.Duration(i) * time.Second), JourneysFrom: enterOnce("cart")}
			must(t, s.ApplyEvent(e))
		})
	}
	wg.Wait()
	if n := s.Stats().Journeys; n != 1 {
		t.Errorf("16 concurrent events entered the journey %d times, want 1", n)
	}
	// In one call, the second event sees the first's move; an event that
	// ends up changing nothing is neither logged nor counted.
	before := s.Stats()
	must(t, s.ApplyEvent(
		Event{Customer: "d", Type: "cart_abandoned", At: t0, JourneysFrom: enterOnce("cart")},
		Event{Customer: "d", Type: "cart_abandoned", At: t0, ID: "x", JourneysFrom: enterOnce("cart")}))
	after := s.Stats()
	if n := after.Journeys - before.Journeys; n != 1 {
		t.Errorf("two events in one call entered %d times, want 1", n)
	}
	var v View
	if !s.View([]byte("d"), &v) || v.Journeys() != 1 {
		t.Errorf("customer d: found %v, %d journeys", v.Found(), v.Journeys())
	}
	// The computed moves survive a restart like given ones.
	dir := t.TempDir()
	s2 := openStore(t, dir, nil)
	must(t, s2.ApplyEvent(Event{Customer: "e", Type: "cart_abandoned", At: t0, JourneysFrom: enterOnce("cart")}))
	must(t, s2.Close())
	s3 := openStore(t, dir, nil)
	var v3 View
	s3.View([]byte("e"), &v3)
	if j, ok := v3.Journey("cart"); !ok || j.Status != JourneyActive {
		t.Errorf("after a restart: %+v %v", j, ok)
	}
}

// TestConditionalJourneyMove: a journey move decided from a state is
// written only if the customer is still there; two decisions made from the
// same state (two replicas) cannot both deliver step k: the second write
// conflicts (ErrConflict), records none of its moves and is counted.
func TestConditionalJourneyMove(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	enter := JourneyUpdate{Customer: "c", Journey: "j", At: t0, Conditional: true}
	step := func(from, to int) JourneyUpdate {
		return JourneyUpdate{Customer: "c", Journey: "j", Step: to, At: t0.Add(time.Hour), Conditional: true, FromStep: from, FromStatus: JourneyActive}
	}
	must(t, s.SetJourney(enter))
	for _, tc := range []struct {
		name  string
		us    []JourneyUpdate
		fails bool
		want  int // the step the customer is at after
	}{
		{"enter again from outside conflicts", []JourneyUpdate{enter}, true, 0},
		{"step 0 to 1", []JourneyUpdate{step(0, 1)}, false, 1},
		{"the same step from a second replica conflicts", []JourneyUpdate{step(0, 1)}, true, 1},
		{"a call with one stale move records none", []JourneyUpdate{step(1, 2), step(0, 1)}, true, 1},
		{"moves of one call see each other", []JourneyUpdate{step(1, 2), step(2, 3)}, false, 3},
		{"an unconditional move is not checked", []JourneyUpdate{{Customer: "c", Journey: "j", Step: 5, At: t0}}, false, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats()
			err := s.SetJourney(tc.us...)
			if (err != nil) != tc.fails || (err != nil && KindOf(err) != ErrConflict) {
				t.Fatalf("err %v, want a conflict: %v", err, tc.fails)
			}
			var v View
			s.View([]byte("c"), &v)
			if j, _ := v.Journey("j"); j.Step != tc.want {
				t.Errorf("at step %d, want %d", j.Step, tc.want)
			}
			if got := s.Stats().Conflicts - before.Conflicts; (got == 1) != tc.fails {
				t.Errorf("%d conflicts counted", got)
			}
		})
	}
}
