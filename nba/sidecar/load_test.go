package sidecar

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"nba/state"
)

// watchedState counts the reads of a state backend and can make them fail,
// as a shared store out of reach does.
type watchedState struct {
	state.Backend
	fail         atomic.Bool
	loads, views atomic.Int64
}

func (w *watchedState) Load(ctx context.Context, customer []byte, v *state.View) (bool, error) {
	w.loads.Add(1)
	if w.fail.Load() {
		return false, &state.Error{Kind: state.ErrUnavailable, Err: context.DeadlineExceeded}
	}
	return w.Backend.Load(ctx, customer, v)
}

func (w *watchedState) View(customer []byte, v *state.View) bool {
	w.views.Add(1)
	return w.Backend.View(customer, v)
}

// TestDecisionReadsStateOnce: a decision reads the customer's state once,
// whatever its counts, contact lists and journeys (it was one store lookup
// per count: 7 to 42 per demo decision); when the state cannot be read,
// the decision is made from the snapshot, answered stale and counted, and
// the next decision with the state back is not.
func TestDecisionReadsStateOnce(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	const c = "c00042"
	for i := range 3 {
		decide(t, s, c, "web") // contacts and journeys to read
		if err := s.state.RecordContact(state.Contact{Customer: c, Action: "cart_reminder_1", Channel: "web", At: now.Add(-time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	w := &watchedState{Backend: s.state}
	s.cust.state = w
	for _, ch := range []string{"web", "push", "email"} {
		before := w.loads.Load()
		if r := decide(t, s, c, ch); r.Stale {
			t.Errorf("%s: stale with the state answering", ch)
		}
		if n := w.loads.Load() - before; n != 1 || w.views.Load() != 0 {
			t.Errorf("%s: %d loads and %d views for one decision, want 1 load", ch, n, w.views.Load())
		}
	}

	w.fail.Store(true)
	r := decide(t, s, c, "web")
	if !r.Stale {
		t.Errorf("state unreadable: stale %v; want a stale decision from the snapshot", r.Stale)
	}
	// Without the consent the state keeps, marketing is denied (consent
	// fails closed); service actions may still be given.
	for _, a := range r.Actions {
		if p := s.Catalog().Action(a.ID).Purpose(); p != "service" {
			t.Errorf("state unreadable: %s (%s) given", a.ID, p)
		}
	}
	if n := s.engine.Stats().Stale; n != 1 {
		t.Errorf("stale decisions counted %d, want 1", n)
	}
	w.fail.Store(false)
	if r := decide(t, s, c, "web"); r.Stale {
		t.Error("stale after the state came back")
	}
}
