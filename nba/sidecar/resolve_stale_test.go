package sidecar

import (
	"errors"
	"strings"
	"testing"
	"time"

	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestDecideByIDsWhileRedisIsDown is the regression test of every decision
// naming its customer by ids failing with 503 "cannot be written" while
// Redis was out of reach, where one by customer_id was answered stale. Now
// an identifier this process resolved before decides on its profile, one
// it never saw on its anonymous profile (hashed namespaces hashed), both
// marked stale; writes by ids still answer 503, worded for Redis.
func TestDecideByIDsWhileRedisIsDown(t *testing.T) {
	for _, fault := range []string{"killed", "paused"} {
		t.Run(fault, func(t *testing.T) { testDecideByIDsWhileRedisIsDown(t, fault) })
	}
}

func testDecideByIDsWhileRedisIsDown(t *testing.T, fault string) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	s, err := Open(Config{Bundle: fsys, BundleName: "test", StateDir: t.TempDir(), StateRedis: rs.URL,
		IdentityKey: []byte("identitykey0123456789ab"), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := func(kv ...string) []server.Field {
		var f []server.Field
		for i := 0; i < len(kv); i += 2 {
			f = append(f, server.Field{Key: kv[i], Kind: server.KindString, Str: kv[i+1]})
		}
		return f
	}
	if _, err := s.Identify(&server.IdentifyRequest{IDs: ids("cookie", "s-91", "crm_id", "c00042", "email", "ann@example.com"), TS: now}); err != nil {
		t.Fatal(err)
	}
	type decided struct {
		CustomerID string // the request's, as resolved (the answer's customer_id)
		Stale      bool
	}
	decide := func(f []server.Field) (decided, error) {
		var resp server.DecideResponse
		req := server.DecideRequest{IDs: f, Channel: "web", Limit: 2, DryRun: true}
		err := s.Decide(&req, &resp)
		return decided{req.CustomerID, resp.Stale}, err
	}
	for _, f := range [][]server.Field{ids("cookie", "s-91"), ids("email", "ann@example.com")} {
		if d, err := decide(f); err != nil || d.CustomerID != "c00042" || d.Stale {
			t.Fatalf("decide by %v with Redis up: %s stale %v %v", f, d.CustomerID, d.Stale, err)
		}
	}
	if fault == "killed" {
		rs.Kill()
	} else {
		rs.Pause()
		defer rs.Resume()
	}
	for deadline := time.Now().Add(10 * time.Second); s.state.Err() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the state backend did not notice Redis was %s", fault)
		}
	}
	for _, tc := range []struct {
		name string
		ids  []server.Field
		want func(string) bool
	}{
		{"cookie resolved before", ids("cookie", "s-91"), func(id string) bool { return id == "c00042" }},
		{"hashed email resolved before", ids("email", "ann@example.com"), func(id string) bool { return id == "c00042" }},
		{"cookie never seen", ids("cookie", "zz-3"), func(id string) bool { return id == "~cookie:zz-3" }},
		{"hashed email never seen", ids("email", "new@example.com"), func(id string) bool {
			return strings.HasPrefix(id, "~email:") && !strings.Contains(id, "new@example.com")
		}},
		{"primary", ids("crm_id", "c08890"), func(id string) bool { return id == "c08890" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			d, err := decide(tc.ids)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("the decision took %v", took)
			}
			if err != nil {
				t.Fatalf("decide with Redis down: %v", err)
			}
			// Paused, the connection stays up and the client-side cache
			// may still answer what it holds, fresh: not stale.
			cached := fault == "paused" && strings.HasSuffix(tc.name, "resolved before")
			if !tc.want(d.CustomerID) || !d.Stale && !cached {
				t.Errorf("decided for %q stale %v", d.CustomerID, d.Stale)
			}
		})
	}
	var se *server.Error
	err = s.Feedback(&server.Feedback{IDs: ids("cookie", "s-91"), ActionID: "birthday_gift", Channel: "web", Outcome: server.OutcomeImpression, TS: now})
	if !errors.As(err, &se) || se.Code != server.CodeStateUnavailable || strings.Contains(se.Message, "state log") {
		t.Errorf("feedback by ids with Redis down: %v; want 503 state_unavailable worded for Redis", err)
	}
	_, err = s.Identify(&server.IdentifyRequest{IDs: ids("cookie", "s-92", "crm_id", "c00043"), TS: now})
	if !errors.As(err, &se) || se.Code != server.CodeStateUnavailable || strings.Contains(se.Message, "state log") {
		t.Errorf("identify with Redis down: %v; want 503 state_unavailable worded for Redis", err)
	}
}
