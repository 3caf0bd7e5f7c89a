package sidecar

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"nba/nba"
	"nba/nba/server"
	"nba/state"
)

// exactEmail makes the demo's daily e-mail limit exact.
func exactEmail(t *testing.T, now time.Time) *Sidecar {
	t.Helper()
	const old = "- {max: 1, window: 1d}"
	fsys := demoCatalogWith(t, func(c string) string {
		if !strings.Contains(c, old) {
			t.Fatalf("the demo catalog has no %q", old)
		}
		return strings.Replace(c, old, "- {max: 1, window: 1d, exact: true}", 1)
	})
	return openFS(t, fsys, now)
}

// emailCustomer returns a demo customer given an action on e-mail.
func emailCustomer(t *testing.T, s *Sidecar) string {
	t.Helper()
	for i := 1; i <= 200; i++ {
		c := fmt.Sprintf("c%05d", i)
		var resp server.DecideResponse
		if err := s.Decide(&server.DecideRequest{DecisionID: "probe", CustomerID: c, Channel: "email", Limit: 1, DryRun: true}, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.Actions) > 0 {
			return c
		}
	}
	t.Fatal("no demo customer is given an e-mail")
	return ""
}

func reservedEmail(s *Sidecar, customer string, now time.Time) (reserved, impressions int) {
	var v state.View
	s.state.View([]byte(customer), &v)
	return v.Reserved(state.KindChannel, "email", now), v.Count(state.KindChannel, "email", state.Impression, 24*time.Hour, now)
}

// TestDecisionReservesExactCap: a decision that gives an e-mail under the
// exact daily limit reserves the slot before it answers; the next
// decision sees the slot taken (stopped by the limit, the reservation in
// its count); the impression quoting the decision turns the reservation
// into the contact, counted once; a dry run reserves nothing.
func TestDecisionReservesExactCap(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := exactEmail(t, now)
	c := emailCustomer(t, s)
	if r, _ := reservedEmail(s, c, now); r != 0 {
		t.Fatalf("a dry run reserved %d", r)
	}
	var first server.DecideResponse
	if err := s.Decide(&server.DecideRequest{DecisionID: "d1", CustomerID: c, Channel: "email", Limit: 1}, &first); err != nil {
		t.Fatal(err)
	}
	if len(first.Actions) != 1 {
		t.Fatalf("first decision gives %v", ids(&first))
	}
	if r, n := reservedEmail(s, c, now); r != 1 || n != 0 {
		t.Fatalf("after the decision: %d reserved, %d impressions; want 1 and 0", r, n)
	}
	var second server.DecideResponse
	if err := s.Decide(&server.DecideRequest{DecisionID: "d2", CustomerID: c, Channel: "email", Limit: 1}, &second); err != nil {
		t.Fatal(err)
	}
	if len(second.Actions) != 0 || !second.Stopped || second.StoppedBy.Count != 1 {
		t.Errorf("second decision: %v stopped %v by %+v; want nothing, the exact limit counting the reservation", ids(&second), second.Stopped, second.StoppedBy)
	}
	fb := server.Feedback{DecisionID: "d1", CustomerID: c, ActionID: first.Actions[0].ID, Channel: "email", Outcome: server.OutcomeImpression, TS: now, EventID: "fb-1"}
	for range 2 {
		if err := s.Feedback(&fb); err != nil {
			t.Fatal(err)
		}
	}
	if r, n := reservedEmail(s, c, now); r != 0 || n != 1 {
		t.Errorf("after the impression: %d reserved, %d impressions; want 0 and 1", r, n)
	}
	if got := s.resv.made.Load(); got != 1 {
		t.Errorf("%d reservations counted, want 1", got)
	}
}

// refusingState refuses every reservation with err.
type refusingState struct {
	state.Backend
	err   error
	calls int
}

func (r *refusingState) Reserve(...state.Reservation) error {
	r.calls++
	return r.err
}

// TestExactCapFailsClosed: an action under an exact cap is not given when
// its reservation cannot be made: at once when the state is unavailable,
// after the bounded retries when every attempt conflicts; the
// explanation says why.
func TestExactCapFailsClosed(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		err   error
		calls int
		why   string
	}{
		{"state unavailable", &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("down")}, 1, "customer state unavailable"},
		{"conflict on every attempt", &state.Error{Kind: state.ErrConflict, Err: fmt.Errorf("taken")}, maxReserveAttempts, "slots taken by concurrent decisions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := exactEmail(t, now)
			c := emailCustomer(t, s)
			rs := &refusingState{Backend: s.state, err: tc.err}
			s.state = rs
			var resp server.DecideResponse
			if err := s.Decide(&server.DecideRequest{DecisionID: "d1", CustomerID: c, Channel: "email", Limit: 1, Explain: true}, &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.Actions) != 0 || rs.calls != tc.calls {
				t.Errorf("gave %v after %d reservation attempts; want nothing after %d", ids(&resp), rs.calls, tc.calls)
			}
			found := false
			for _, cd := range resp.Candidates {
				if cd.Stage == server.StageContactPolicy && cd.Policy.Count == -1 && strings.Contains(cd.Detail, tc.why) {
					found = true
				}
			}
			if !found {
				t.Errorf("no candidate explained with %q: %+v", tc.why, resp.Candidates)
			}
			s.state = rs.Backend
		})
	}
}

// TestActionsOfOneDecisionShareAnExactCap: two sales actions of one
// decision under an exact group cap of 1 contend for one slot; the write
// of both is refused, so they are reserved one by one and only the first
// is given (it used to fail three decisions in a row and give neither).
func TestActionsOfOneDecisionShareAnExactCap(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	const old = "  - id: sales\n    lever: 1\n"
	fsys := demoCatalogWith(t, func(c string) string {
		if !strings.Contains(c, old) {
			t.Fatalf("the demo catalog has no %q", old)
		}
		return strings.Replace(c, old, old+"    caps: [{max: 1, window: 1d, exact: true}]\n", 1)
	})
	s := openFS(t, fsys, now)
	sales := func(r *server.DecideResponse) (n int) { // actions under the sales group's cap
		cat := s.engine.Catalog()
		for _, a := range r.Actions {
			for _, c := range cat.ExactCaps(nil, cat.Action(a.ID), cat.ChannelIndex("web")) {
				if c.Scope == nba.ScopeGroup && c.Key == "sales" {
					n++
				}
			}
		}
		return n
	}
	var customer string
	for i := 1; i <= 300 && customer == ""; i++ {
		c := fmt.Sprintf("c%05d", i)
		var resp server.DecideResponse
		if err := s.Decide(&server.DecideRequest{DecisionID: "probe", CustomerID: c, Channel: "web", Limit: 3, DryRun: true}, &resp); err != nil {
			t.Fatal(err)
		}
		if sales(&resp) >= 2 {
			customer = c
		}
	}
	if customer == "" {
		t.Fatal("no demo customer is given two sales actions on the web")
	}
	var resp server.DecideResponse
	if err := s.Decide(&server.DecideRequest{DecisionID: "d1", CustomerID: customer, Channel: "web", Limit: 3}, &resp); err != nil {
		t.Fatal(err)
	}
	var v state.View
	s.state.View([]byte(customer), &v)
	if n, r := sales(&resp), v.Reserved(state.KindGroup, "sales", now); n != 1 || r != 1 {
		t.Errorf("gave %v: %d sales actions, %d reserved under the exact sales cap of 1; want 1 and 1", ids(&resp), n, r)
	}
}
