package sidecar

import (
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestCapsHoldWhileRedisIsDown: with the customer state on Redis and Redis
// killed, a decision is marked stale but still counts the contacts the
// backend last held, so the demo's SMS limit (1 per 7 days) keeps
// applying; before, a stale decision counted no contacts and offered SMS
// again. Once Redis is back, decisions are no longer stale.
func TestCapsHoldWhileRedisIsDown(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateRedis: rs.URL, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	decide := func() *server.DecideResponse {
		t.Helper()
		req := server.DecideRequest{DecisionID: "0123456789abcdef0123456789abcdef", CustomerID: "c00042", Channel: "sms", Limit: 1, DryRun: true, At: now}
		var resp server.DecideResponse
		if err := s.Decide(&req, &resp); err != nil {
			t.Fatal(err)
		}
		return &resp
	}
	first := decide()
	if len(first.Actions) == 0 || first.Stale {
		t.Fatalf("before any contact: actions %v stale %v", first.Actions, first.Stale)
	}
	if err := s.Feedback(&server.Feedback{CustomerID: "c00042", ActionID: first.Actions[0].ID, Channel: "sms", Outcome: server.OutcomeImpression, TS: now, EventID: "e1"}); err != nil {
		t.Fatal(err)
	}
	if d := decide(); len(d.Actions) != 0 {
		t.Fatalf("after an sms impression: %v offered", d.Actions)
	}
	rs.Kill()
	// The client drops its connection (and its cache) once it notices.
	for deadline := time.Now().Add(5 * time.Second); s.state.Err() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the state backend did not notice Redis was killed")
		}
	}
	d := decide()
	if !d.Stale {
		t.Error("decision with Redis down not marked stale")
	}
	if len(d.Actions) != 0 {
		t.Errorf("with Redis down, the sms limit stopped applying: %v offered", d.Actions)
	}
	if err := s.Feedback(&server.Feedback{CustomerID: "c00042", ActionID: first.Actions[0].ID, Channel: "sms", Outcome: server.OutcomeClick, TS: now, EventID: "e2"}); err == nil {
		t.Error("feedback acknowledged with Redis down")
	}
	rs.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for decide().Stale {
		if time.Now().After(deadline) {
			t.Fatal("decisions still stale 5s after Redis restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
