package sidecar

import (
	"runtime/debug"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
)

// TestDecideDoesNotAllocate: a decision through the sidecar backend (state,
// engine, score cache) allocates nothing in steady state. The decision log
// is off here: its records are reused once its writer hands them back, which
// makes a short count depend on the writer's timing (nba/declog tests its
// own steady state).
func TestDecideDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	// With the score cache (off by default): its Gets and Sets are on the
	// path too.
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(),
		Now: func() time.Time { return now }, ScoreCacheBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A garbage collection empties sync.Pools (the engine's scratch) and
	// the refill would be counted against the request path.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	// c00007 has had today's one e-mail: the channel cap stops its e-mail
	// decisions (stopped_by).
	if err := s.Feedback(&server.Feedback{CustomerID: "c00007", ActionID: "nps_survey", Channel: "email", Outcome: server.OutcomeImpression, TS: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		customer, channel string
		explain           bool
	}{
		{"c00003", "agent", false}, {"c00042", "web", false}, {"nobody", "sms", false},
		{"c00042", "web", true}, {"c00003", "email", true}, {"c00007", "email", true},
	} {
		req := server.DecideRequest{DecisionID: "d", CustomerID: tc.customer, Channel: tc.channel, Limit: 3, Explain: tc.explain,
			Context: []server.Field{{Key: "page", Kind: server.KindString, Str: "home"}}}
		var resp server.DecideResponse
		decide := func() {
			resp.Actions, resp.Withheld, resp.Candidates = resp.Actions[:0], resp.Withheld[:0], resp.Candidates[:0]
			if err := s.Decide(&req, &resp); err != nil {
				t.Fatal(err)
			}
		}
		// Steady state: the score cache holds this customer's entry (the
		// second decision caches it, past the doorkeeper). Its Sets are
		// applied by ristretto's goroutine, which a busy machine may not
		// schedule during the warm-up; every miss would allocate a new
		// entry.
		decide()
		if resp.Stopped != (tc.customer == "c00007") {
			t.Fatalf("%s on %s: stopped %v", tc.customer, tc.channel, resp.Stopped)
		}
		decide()
		s.scores.Wait()
		for i := 0; i < 100; i++ {
			decide()
		}
		if n := testing.AllocsPerRun(200, decide); n > 0 {
			t.Errorf("%s on %s (explain %v): Decide allocates %.1f times per call, want 0", tc.customer, tc.channel, tc.explain, n)
		}
		var out []byte
		encode := func() { out = server.AppendDecision(out[:0], &req, &resp, time.Millisecond) }
		if n := testing.AllocsPerRun(200, encode); n > 0 {
			t.Errorf("%s on %s (explain %v): encoding allocates %.1f times per call, want 0", tc.customer, tc.channel, tc.explain, n)
		}
	}
}
