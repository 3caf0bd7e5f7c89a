package sidecar

import (
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/state"
)

// TestRetriesAreAppliedOnce sends feedback and events, retries them with the
// same event_id before and after a restart, and checks that each changed
// the state once: an incr mapping counted once, an impression counted once
// toward caps, a journey exit made once.
func TestRetriesAreAppliedOnce(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	open := func() *Sidecar {
		t.Helper()
		s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const c = "c00007"
	cart := server.Event{CustomerID: c, Type: "cart_abandoned", TS: now.Add(-2 * time.Hour), EventID: "cart-1",
		Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 80}}}
	purchase := server.Event{CustomerID: c, Type: "purchase", TS: now.Add(-time.Hour), EventID: "order-1"}
	impression := server.Feedback{CustomerID: c, ActionID: "newsletter", Channel: "email", Outcome: server.OutcomeImpression,
		TS: now.Add(-time.Minute), EventID: "imp-1"}
	send := func(s *Sidecar) {
		t.Helper()
		for _, ev := range []server.Event{cart, purchase} {
			if err := s.Event(&ev); err != nil {
				t.Fatalf("event %s: %v", ev.EventID, err)
			}
		}
		if err := s.Feedback(&impression); err != nil {
			t.Fatalf("feedback: %v", err)
		}
	}
	check := func(s *Sidecar, dups uint64) {
		t.Helper()
		var v state.View
		if !s.state.View([]byte(c), &v) {
			t.Fatal("customer has no state")
		}
		orders, _, _ := s.state.Slot("orders_since_snapshot")
		if n, _ := v.Number(orders); n != 1 {
			t.Errorf("orders_since_snapshot = %v, want 1", n)
		}
		if n := v.Count(state.KindChannel, "email", state.Impression, 24*time.Hour, now); n != 1 {
			t.Errorf("e-mail impressions counted toward caps = %d, want 1", n)
		}
		if j, ok := v.Journey("abandoned_cart"); !ok || j.Status != state.JourneyExited || !j.EnteredAt.Equal(cart.TS) {
			t.Errorf("abandoned_cart journey %+v (%v), want entered at the cart and exited", j, ok)
		}
		if got := s.state.Stats().Duplicates; got != dups {
			t.Errorf("duplicates = %d, want %d", got, dups)
		}
	}

	s := open()
	appends := s.state.Stats().WAL.Appends
	send(s)
	// One record per request: the purchase's journey exit goes with its
	// profile change.
	if n := s.state.Stats().WAL.Appends - appends; n != 3 {
		t.Errorf("3 requests took %d log records, want 3", n)
	}
	check(s, 0)
	send(s)
	check(s, 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open() // the ids are replayed from the log with the rest
	defer s.Close()
	send(s)
	check(s, 3)
	// Without an id, a retry cannot be told from a new event.
	purchase.EventID = ""
	if err := s.Event(&purchase); err != nil {
		t.Fatal(err)
	}
	var v state.View
	s.state.View([]byte(c), &v)
	orders, _, _ := s.state.Slot("orders_since_snapshot")
	if n, _ := v.Number(orders); n != 2 {
		t.Errorf("orders_since_snapshot = %v after a purchase without an id, want 2", n)
	}
}

// TestFeedbackRetryIsNotLearnedTwice checks that a duplicate feedback is
// acknowledged without a second contact in the customer view.
func TestFeedbackRetryIsNotLearnedTwice(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	fb := server.Feedback{CustomerID: "c00042", ActionID: "xs_shoes", Channel: "web", Outcome: server.OutcomeClick, TS: now, EventID: "click-1"}
	for range 3 {
		if err := s.Feedback(&fb); err != nil {
			t.Fatal(err)
		}
	}
	var v state.View
	if !s.state.View([]byte("c00042"), &v) || v.HistoryLen() != 1 {
		t.Fatalf("history holds %d contacts after a feedback sent three times, want 1", v.HistoryLen())
	}
	if st := s.state.Stats(); st.Duplicates != 2 || st.Contacts != 1 {
		t.Fatalf("state stats: %d contacts, %d duplicates; want 1 and 2", st.Contacts, st.Duplicates)
	}
}

// TestRetryAfterItsActionWasRemoved: a feedback retry whose action a reload
// removed in between is acknowledged, as its first attempt was, when its
// event_id is remembered; without a remembered id, the unknown action is a
// bad request.
func TestRetryAfterItsActionWasRemoved(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	fb := server.Feedback{CustomerID: "c00007", ActionID: "newsletter", Channel: "email", Outcome: server.OutcomeImpression, TS: now, EventID: "imp-9"}
	if err := s.Feedback(&fb); err != nil {
		t.Fatal(err)
	}
	fb.ActionID = "no_longer_in_the_catalog"
	if err := s.Feedback(&fb); err != nil {
		t.Errorf("retry of recorded feedback after its action left the catalog: %v", err)
	}
	fb.EventID = "imp-10"
	if err := s.Feedback(&fb); err == nil {
		t.Error("feedback for an unknown action with a new event_id was accepted")
	}
}
