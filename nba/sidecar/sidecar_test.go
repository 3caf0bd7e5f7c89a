package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nba/nba"
	"nba/nba/declog"
	"nba/nba/demo"
	"nba/nba/server"
)

func openDemo(t *testing.T, now time.Time) *Sidecar {
	t.Helper()
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("cannot open demo: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func decide(t *testing.T, s *Sidecar, customer, channel string) *server.DecideResponse {
	t.Helper()
	var resp server.DecideResponse
	req := server.DecideRequest{DecisionID: "d1", CustomerID: customer, Channel: channel, Limit: 3, Explain: true}
	if err := s.Decide(&req, &resp); err != nil {
		t.Fatalf("decide %s/%s: %v", customer, channel, err)
	}
	return &resp
}

func ids(r *server.DecideResponse) []string {
	var out []string
	for _, a := range r.Actions {
		out = append(out, a.ID)
	}
	return out
}

func TestDemoDecides(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	if err := s.Ready(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, c := range []string{"c00001", "c00002", "c00003", "c00042", "c01000", "c09999", "nobody"} {
		r := decide(t, s, c, "web")
		if len(r.Actions) == 0 && !r.Control {
			t.Errorf("%s: no action and not in control", c)
		}
		for _, a := range r.Actions {
			seen[a.ID]++
			if a.Propensity <= 0 || a.Propensity >= 1 {
				t.Errorf("%s: %s: propensity %v outside (0,1)", c, a.ID, a.Propensity)
			}
		}
		if r.Versions.Catalog == "" || r.Versions.Model == "" || r.Versions.Snapshot == "" {
			t.Errorf("%s: versions missing: %+v", c, r.Versions)
		}
	}
	if len(seen) < 3 {
		t.Errorf("the demo should personalise; saw only %v", seen)
	}
	if _, err := s.AppendCustomer(nil, "nobody"); err == nil {
		t.Error("unknown customer without state: want not found")
	}
	var bad server.DecideResponse
	err := s.Decide(&server.DecideRequest{CustomerID: "c00001", Channel: "fax"}, &bad)
	if e, ok := err.(*server.Error); !ok || e.Code != server.CodeInvalidRequest {
		t.Errorf("unknown channel: got %v", err)
	}
}

func TestDemoTicketSuppressesSales(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	const c = "c00042"
	ev := server.Event{CustomerID: c, Type: "ticket_opened", TS: now.Add(-time.Hour)}
	if err := s.Event(&ev); err != nil {
		t.Fatal(err)
	}
	r := decide(t, s, c, "web")
	if got := ids(r); len(got) == 0 || got[0] != "service_recovery" {
		t.Fatalf("open ticket: want service_recovery first, got %v", got)
	}
	for _, cand := range r.Candidates {
		if strings.HasPrefix(cand.ID, "xs_") && cand.Selected {
			t.Errorf("open ticket: cross-sell %s selected", cand.ID)
		}
	}
	out, err := s.AppendCustomer(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"open_ticket":true`) {
		t.Errorf("customer view misses the open ticket: %s", out)
	}
}

func TestDemoFeedbackCountsTowardCaps(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	const c = "c00007"
	first := ids(decide(t, s, c, "email"))
	if len(first) == 0 {
		t.Fatal("c00007 should get an e-mail action in the demo (not in the holdout)")
	}
	fb := server.Feedback{CustomerID: c, ActionID: first[0], Channel: "email", Outcome: server.OutcomeImpression, TS: now.Add(-time.Minute)}
	if err := s.Feedback(&fb); err != nil {
		t.Fatal(err)
	}
	// At most one e-mail a day: the next e-mail decision must be empty or
	// the fallback.
	second := ids(decide(t, s, c, "email"))
	for _, id := range second {
		if id != "newsletter" {
			t.Errorf("e-mail cap: second decision %v after an e-mail impression", second)
		}
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatalf("reload of an unchanged bundle: %v", err)
	}
}

func TestDemoControlGroupWithholds(t *testing.T) {
	s := openDemo(t, time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	controls := 0
	for i := 1; i <= 400; i++ {
		r := decide(t, s, fmt.Sprintf("c%05d", i), "web")
		if !r.Control {
			continue
		}
		controls++
		if len(r.Actions) != 0 || len(r.Withheld) == 0 {
			t.Fatalf("control customer c%05d: actions %v, withheld %d: want none shown and the withheld listed", i, ids(r), len(r.Withheld))
		}
	}
	// The demo's global holdout is 5%: 20 of 400 expected; 3..50 cannot
	// flake for a salted hash.
	if controls < 3 || controls > 50 {
		t.Errorf("%d of 400 customers in control, want about 20", controls)
	}
}

func TestDemoLearnsFromFeedbackAndKeepsIt(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	open := func() *Sidecar {
		s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	evidence := func(s *Sidecar, action string) float64 {
		for _, a := range s.engine.LearnerStats().Actions {
			if a.Action == action {
				return a.Evidence
			}
		}
		t.Fatalf("no online model for %s", action)
		return 0
	}
	s := open()
	before := evidence(s, "xs_books")
	for i := 0; i < 20; i++ {
		c := fmt.Sprintf("c%05d", 100+i)
		for _, o := range []server.Outcome{server.OutcomeImpression, server.OutcomeAccept} {
			if err := s.Feedback(&server.Feedback{CustomerID: c, ActionID: "xs_books", Channel: "web", Outcome: o, TS: now}); err != nil {
				t.Fatal(err)
			}
		}
		// Shown and ignored: becomes a negative observation when its
		// response window closes; meanwhile it is pending, across restarts.
		if err := s.Feedback(&server.Feedback{CustomerID: c, ActionID: "xs_home", Channel: "web", Outcome: server.OutcomeImpression, TS: now}); err != nil {
			t.Fatal(err)
		}
	}
	after := evidence(s, "xs_books")
	if after <= before {
		t.Fatalf("evidence for xs_books did not grow: %v -> %v", before, after)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	if got := evidence(s, "xs_books"); got != after {
		t.Errorf("online model not restored across restart: evidence %v, want %v", got, after)
	}
	// The ignored impressions still wait for their outcome (saved with
	// the learner checkpoint).
	if n, _, _ := s.pending.stats(); n != 20 {
		t.Errorf("after a restart: %d pending impressions, want the 20 of xs_home", n)
	}
}

// TestFeedbackRecallsItsDecision: the impression of a decided action
// finds the decision's learning features by its decision id, keeps them
// with the pending impression, and the accept learns from them; feedback
// without a decision id learns from the current profile.
func TestFeedbackRecallsItsDecision(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	const c = "c00042"
	var resp server.DecideResponse
	if err := s.Decide(&server.DecideRequest{DecisionID: "d-1", CustomerID: c, Channel: "web", Limit: 1}, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Actions) == 0 {
		t.Fatal("no action decided")
	}
	act := resp.Actions[0].ID
	for _, o := range []server.Outcome{server.OutcomeImpression, server.OutcomeAccept} {
		if err := s.Feedback(&server.Feedback{DecisionID: "d-1", CustomerID: c, ActionID: act, Channel: "web", Outcome: o, TS: now}); err != nil {
			t.Fatal(err)
		}
	}
	st := s.engine.LearnerStats()
	if st.Recalled != 1 || st.RecallMisses != 0 || st.Observed != 1 {
		t.Fatalf("after impression and accept: recalled %d, misses %d, observed %d; want 1, 0, 1", st.Recalled, st.RecallMisses, st.Observed)
	}
	// A decision id the memory does not hold: learned all the same.
	if err := s.Feedback(&server.Feedback{DecisionID: "d-unknown", CustomerID: c, ActionID: act, Channel: "web", Outcome: server.OutcomeAccept, TS: now}); err != nil {
		t.Fatal(err)
	}
	if st := s.engine.LearnerStats(); st.RecallMisses != 1 || st.Observed != 2 {
		t.Errorf("unknown decision id: misses %d, observed %d; want 1, 2", st.RecallMisses, st.Observed)
	}
}

// TestScoreCacheOffByDefault: in the traffic measured the score cache cost
// more CPU than the scoring it saved (bench/RESULTS.md, "Score cache
// default"), so a sidecar has none unless given a budget.
func TestScoreCacheOffByDefault(t *testing.T) {
	s := openDemo(t, time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	if s.scores != nil {
		t.Fatal("a score cache without a budget")
	}
	scored := s.engine.Stats().Scored
	decide(t, s, "c00003", "agent")
	decide(t, s, "c00003", "agent")
	if got := s.engine.Stats().Scored - scored; got == 0 || got%2 != 0 {
		t.Errorf("two decisions scored %d rows, want the same rows twice", got)
	}
}

// TestDemoRepeatVisitorUsesScoreCache: the first decision for a customer is
// scored and not cached (the doorkeeper only marks the customer), the second
// is scored and cached, the third is served from the cache.
func TestDemoRepeatVisitorUsesScoreCache(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), Now: func() time.Time { return now }, ScoreCacheBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := decide(t, s, "c00003", "agent")
	s.scores.Wait()
	if st := s.scores.Stats(); st.SetsDeferred != 1 {
		t.Fatalf("first sight: %+v, want one deferred Set", st)
	}
	scored := s.engine.Stats().Scored
	decide(t, s, "c00003", "agent")
	s.scores.Wait()
	if s.engine.Stats().Scored == scored {
		t.Fatal("the second decision was not scored")
	}
	scored = s.engine.Stats().Scored
	second := decide(t, s, "c00003", "agent")
	if st := s.scores.Stats(); st.Hits == 0 {
		t.Fatalf("repeat decision missed the score cache: %+v", st)
	}
	if s.engine.Stats().Scored != scored {
		t.Errorf("repeat decision scored %d rows again", s.engine.Stats().Scored-scored)
	}
	if fmt.Sprint(ids(first)) != fmt.Sprint(ids(second)) {
		t.Errorf("cached decision differs: %v then %v", ids(first), ids(second))
	}
}

// TestCustomerViewShowsHoldout: the agent-desktop view says whether the
// customer is in the control group, as the decisions do.
func TestCustomerViewShowsHoldout(t *testing.T) {
	s := openDemo(t, time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	seen := map[bool]bool{}
	for i := 1; i <= 200; i++ {
		c := fmt.Sprintf("c%05d", i)
		control := decide(t, s, c, "web").Control
		out, err := s.AppendCustomer(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`"holdout":{"actions":[],"global":%t}`, control)
		if !strings.Contains(string(out), want) {
			t.Fatalf("%s: decision control=%v but the customer view says %s", c, control, out)
		}
		seen[control] = true
	}
	if !seen[true] || !seen[false] {
		t.Errorf("200 demo customers should include both control and treated ones: %v", seen)
	}
}

// TestDecisionLogListsEveryCandidate: without explain in the request, the
// logged decision still lists every candidate with its stage or scores, and
// the answer carries no candidates.
func TestDecisionLogListsEveryCandidate(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, DecisionLog: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var resp server.DecideResponse
	if err := s.Decide(&server.DecideRequest{DecisionID: "d1", CustomerID: "c00042", Channel: "email", Limit: 2}, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Candidates) != 0 {
		t.Errorf("answer without explain carries %d candidates", len(resp.Candidates))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var rec declog.Record
	if _, err := declog.ReadDir(filepath.Join(dir, "decisions"), "decisions", func(line []byte) error {
		r, err := declog.ParseRecord(line)
		if err == nil && r.ID == "d1" {
			rec = r
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	stages, scored := 0, 0
	for _, c := range rec.Candidates {
		if c.Stage != "" {
			stages++
		} else if c.P != nil {
			scored++
		}
	}
	if stages == 0 || scored == 0 {
		t.Errorf("logged decision d1: %d candidates removed with a stage, %d scored; want both", stages, scored)
	}
}

// TestStatusKeysAreSnakeCase: every key of GET /admin/status is snake_case,
// as in the rest of the API (the demo's model and action ids are too).
func TestStatusKeysAreSnakeCase(t *testing.T) {
	s := openDemo(t, time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	decide(t, s, "c00003", "web")
	b, err := s.AppendStatus(nil)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				for _, r := range k {
					if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
						t.Errorf("status key %s.%s is not snake_case", path, k)
						break
					}
				}
				walk(path+"."+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), x)
			}
		}
	}
	walk("status", st)
}

// loadedJourneys returns the customer's journeys as a decision loads them.
func loadedJourneys(t *testing.T, s *Sidecar, customer string) []nba.JourneyState {
	t.Helper()
	var c nba.Customer
	if _, err := s.cust.Load(context.Background(), customer, &c); err != nil {
		t.Fatal(err)
	}
	return c.Journeys
}
