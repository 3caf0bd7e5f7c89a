package sidecar

import (
	"runtime/debug"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestDecideOnRedisDoesNotAllocate: a repeat visitor's decision with the
// customer state on Redis (answered from the local cache) allocates
// nothing, as with the embedded state. Before, the state load alone made 7
// allocations (a deadline context, the key string, rueidis's cache key).
func TestDecideOnRedisDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	rs := redistest.Start(t, redistest.Options{})
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateRedis: rs.URL, StateRedisAllowVolatile: true,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	if err := s.Feedback(&server.Feedback{CustomerID: "c00007", ActionID: "nps_survey", Channel: "email", Outcome: server.OutcomeImpression, TS: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ customer, channel string }{{"c00003", "agent"}, {"c00042", "web"}, {"nobody", "sms"}, {"c00007", "email"}} {
		req := server.DecideRequest{DecisionID: "d", CustomerID: tc.customer, Channel: tc.channel, Limit: 3, DryRun: true,
			Context: []server.Field{{Key: "page", Kind: server.KindString, Str: "home"}}}
		var resp server.DecideResponse
		decide := func() {
			resp.Actions, resp.Withheld, resp.Candidates = resp.Actions[:0], resp.Withheld[:0], resp.Candidates[:0]
			if err := s.Decide(&req, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Stale {
				t.Fatalf("%s: stale decision", tc.customer)
			}
		}
		// Warm: the first loads read Redis (and may meet the
		// invalidation of the feedback's own write).
		for i := 0; i < 50; i++ {
			decide()
			time.Sleep(time.Millisecond)
		}
		if resp.Stopped != (tc.customer == "c00007") {
			t.Fatalf("%s on %s: stopped %v", tc.customer, tc.channel, resp.Stopped)
		}
		if n := testing.AllocsPerRun(200, decide); n > 0 {
			t.Errorf("%s on %s: Decide on Redis state allocates %.1f times per call, want 0", tc.customer, tc.channel, n)
		}
	}
}
