package sidecar

import (
	"fmt"
	"io/fs"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"nba/nba"
	"nba/nba/demo"
	"nba/nba/server"
)

// TestDemoSuppressionPauseEndsOnTime: the demo's sales actions pause 14
// days after 3 impressions without a click within 7 days. Through the
// state store: 3 impressions 4, 3 and 2 days ago pause the action; 17, 16
// and 15 days ago paused it until a day ago (it used to stay paused: the
// impressions were counted over within+pause).
func TestDemoSuppressionPauseEndsOnTime(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	const day = 24 * time.Hour
	// A sales action a customer is given on the web.
	var customer, action string
	for i := 1; i <= 200 && action == ""; i++ {
		c := fmt.Sprintf("c%05d", i)
		for _, id := range ids(decide(t, s, c, "web")) {
			if g := s.engine.Catalog().Action(id).Group; g != "" && g != "service" && g != "content" {
				customer, action = c, id
				break
			}
		}
	}
	if action == "" {
		t.Fatal("no demo customer gets a sales action on the web")
	}
	for _, tt := range []struct {
		ago    []time.Duration
		paused bool
	}{
		{[]time.Duration{17 * day, 16 * day, 15 * day}, false},
		{[]time.Duration{4 * day, 3 * day, 2 * day}, true}, // on top of the three above
	} {
		for _, ago := range tt.ago {
			fb := server.Feedback{CustomerID: customer, ActionID: action, Channel: "web", Outcome: server.OutcomeImpression, TS: now.Add(-ago)}
			if err := s.Feedback(&fb); err != nil {
				t.Fatal(err)
			}
		}
		// The engine's explanation: exploration may rank the action
		// anywhere, the stage says whether a contact policy removed it.
		var d nba.Decision
		if err := s.engine.Decide(&nba.Request{Customer: customer, Channel: "web", Limit: 3, Now: now, Explain: true, DryRun: true}, &d); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(d.Explain, func(c nba.Candidate) bool { return c.Action == action })
		if i < 0 {
			t.Fatalf("%s not among the candidates", action)
		}
		if got := d.Explain[i].Stage == nba.StageContactPolicy; got != tt.paused {
			t.Errorf("impressions %v ago: %s paused %v, want %v (%v %q)", tt.ago, action, got, tt.paused, d.Explain[i].Stage, d.Explain[i].Reason)
		}
	}
}

// demoCatalogWith returns the demo bundle with its catalog edited by edit.
func demoCatalogWith(t testing.TB, edit func(string) string) fs.FS {
	t.Helper()
	return demoWith(t, func(name string, data []byte) []byte {
		if name == "catalog.yaml" {
			return []byte(edit(string(data)))
		}
		return data
	})
}

// TestBundleRefusesWindowsBeyondHistory: a cap, suppression or history
// count over more days than the state keeps counts used to compile and be
// counted over the days kept (a 90-day cap counted 8 of 20 impressions);
// the bundle is refused, the limit in the message.
func TestBundleRefusesWindowsBeyondHistory(t *testing.T) {
	for _, tt := range []struct{ name, from, to, want string }{
		{"cap", "caps: [{max: 4, window: 7d}]", "caps: [{max: 4, window: 90d}]", "caps[0].window: window 90d exceeds the customer history kept (30d)"},
		{"suppression", "{after: reject, pause: 30d}", "{after: reject, pause: 45d}", "suppress[0]: pause 45d exceeds the customer history kept (30d)"},
		{"suppression window", "within: 7d, pause: 14d", "within: 20d, pause: 14d", "suppress[1]: within 20d + pause 14d exceeds the customer history kept (30d)"},
		{"rule", `"profile.orders_12m >= 2"`, `"profile.orders_12m >= 2 && impressions(\"group\", \"loyalty\", \"31d\") < 3"`, "window 31d exceeds the customer history kept (30d)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := demoCatalogWith(t, func(s string) string {
				if !strings.Contains(s, tt.from) {
					t.Fatalf("demo catalog has no %q", tt.from)
				}
				return strings.Replace(s, tt.from, tt.to, 1)
			})
			errs := ValidateBundle(b)
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Errorf("validate: got %v, want one error with %q", errs, tt.want)
			}
			if _, err := Open(Config{Bundle: b, BundleName: "demo", StateDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("open: got %v, want %q", err, tt.want)
			}
		})
	}
	// At the limit it loads.
	b := demoCatalogWith(t, func(s string) string {
		return strings.Replace(s, "caps: [{max: 4, window: 7d}]", "caps: [{max: 4, window: 30d}]", 1)
	})
	if errs := ValidateBundle(b); len(errs) != 0 {
		t.Errorf("a 30-day cap: %v", errs)
	}
}

// TestSuppressionDoesNotAllocate: a decision that reads a customer's
// contact sequence for a suppression allocates nothing in steady state.
func TestSuppressionDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const customer = "c00042"
	var d nba.Decision
	if err := s.engine.Decide(&nba.Request{Customer: customer, Channel: "web", Limit: 30, Now: now}, &d); err != nil {
		t.Fatal(err)
	}
	// Every sales action given: 3 impressions 4, 3 and 2 days ago.
	for _, c := range d.Actions {
		if g := c.Action.Group; g == "service" || g == "content" {
			continue
		}
		for day := 2; day <= 4; day++ {
			fb := server.Feedback{CustomerID: customer, ActionID: c.Action.ID, Channel: "web", Outcome: server.OutcomeImpression,
				TS: now.Add(-time.Duration(day) * 24 * time.Hour)}
			if err := s.Feedback(&fb); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.engine.Decide(&nba.Request{Customer: customer, Channel: "web", Limit: 30, Now: now, Explain: true, DryRun: true}, &d); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(d.Explain, func(c nba.Candidate) bool { return c.Stage == nba.StageContactPolicy }) {
		t.Fatal("no action paused: the test would not read a contact sequence")
	}
	req := server.DecideRequest{DecisionID: "d", CustomerID: customer, Channel: "web", Limit: 3}
	var resp server.DecideResponse
	decide := func() {
		resp.Actions, resp.Withheld, resp.Candidates = resp.Actions[:0], resp.Withheld[:0], resp.Candidates[:0]
		if err := s.Decide(&req, &resp); err != nil {
			t.Fatal(err)
		}
	}
	decide()
	decide()
	s.scores.Wait()
	for range 100 {
		decide()
	}
	if n := testing.AllocsPerRun(200, decide); n > 0 {
		t.Errorf("Decide allocates %.1f times per call, want 0", n)
	}
}

// TestCustomerViewSuppressions: GET /v1/customers/{id} lists the
// suppressions in force, as the decision finds them: after a reject, the
// demo's sales actions pause 30 days (the group's policy), the view
// says from when to when and which outcome counted; three ignored
// impressions pause 14 days from the third; a customer with no contacts
// has none.
func TestCustomerViewSuppressions(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	const day = 24 * time.Hour
	rejected, ignored := now.Add(-2*day), []time.Time{now.Add(-4 * day), now.Add(-3 * day), now.Add(-2 * day)}
	fbs := []server.Feedback{{CustomerID: "c00042", ActionID: "us_warranty", Channel: "web", Outcome: server.OutcomeReject, TS: rejected}}
	for _, at := range ignored {
		fbs = append(fbs, server.Feedback{CustomerID: "c00043", ActionID: "xs_shoes", Channel: "web", Outcome: server.OutcomeImpression, TS: at})
	}
	for i := range fbs {
		if err := s.Feedback(&fbs[i]); err != nil {
			t.Fatal(err)
		}
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	tests := []struct {
		customer, action   string
		after              string
		since, until       time.Time
		counted            []time.Time
		withoutWithinCount []any
	}{
		{"c00042", "us_warranty", "reject", rejected, rejected.Add(30 * day), []time.Time{rejected}, []any{nil, nil, 1.0}},
		{"c00043", "xs_shoes", "impression", ignored[2], ignored[2].Add(14 * day), ignored, []any{"click", "7d", 3.0}},
		{"c00044", "", "", time.Time{}, time.Time{}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.customer, func(t *testing.T) {
			sups := customerView(t, s, tt.customer)["suppressions"].([]any)
			// The decision's view: which actions a suppression removes.
			var d nba.Decision
			if err := s.engine.Decide(&nba.Request{Customer: tt.customer, Channel: "web", Limit: 3, Now: now, Explain: true, DryRun: true}, &d); err != nil {
				t.Fatal(err)
			}
			var removed []string
			for _, c := range d.Explain {
				if c.Stage == nba.StageContactPolicy && c.Policy.Suppression {
					removed = append(removed, c.Action)
				}
			}
			if tt.action == "" {
				if len(sups) != 0 || len(removed) != 0 {
					t.Errorf("suppressions %v, removed %v: want none", sups, removed)
				}
				return
			}
			if len(sups) != 1 || !slices.Equal(removed, []string{tt.action}) {
				t.Fatalf("suppressions %v; the decision removed %v: want %s alone", sups, removed, tt.action)
			}
			sp := sups[0].(map[string]any)
			var counted []string
			for _, c := range tt.counted {
				counted = append(counted, rfc(c))
			}
			var gotCounted []string
			for _, c := range sp["counted"].([]any) {
				gotCounted = append(gotCounted, c.(string))
			}
			if sp["action_id"] != tt.action || sp["group"] != "sales" || sp["after"] != tt.after || sp["since"] != rfc(tt.since) ||
				sp["until"] != rfc(tt.until) || !slices.Equal(gotCounted, counted) || !strings.HasPrefix(sp["policy"].(string), "action "+tt.action+": paused") ||
				sp["without"] != tt.withoutWithinCount[0] || sp["within"] != tt.withoutWithinCount[1] || sp["count"] != tt.withoutWithinCount[2] {
				t.Errorf("suppression %v: want %s after %s from %s to %s, counted %v", sp, tt.action, tt.after, rfc(tt.since), rfc(tt.until), counted)
			}
		})
	}
}
