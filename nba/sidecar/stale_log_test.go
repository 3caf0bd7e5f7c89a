package sidecar

import (
	"path/filepath"
	"testing"
	"time"

	"nba/nba/declog"
	"nba/nba/demo"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestStaleDecisionIsLogged: a decision made while Redis is down is
// answered "state":"stale" and logged with "state":"stale" (nba replay
// counts such decisions); the other is not. Before, the log did not say a
// decision was stale.
func TestStaleDecisionIsLogged(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	dir := t.TempDir()
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, StateRedis: rs.URL, DecisionLog: true})
	if err != nil {
		t.Fatal(err)
	}
	decide := func(id string) *server.DecideResponse {
		t.Helper()
		req := server.DecideRequest{DecisionID: id, CustomerID: "c00042", Channel: "sms", Limit: 1}
		var resp server.DecideResponse
		if err := s.Decide(&req, &resp); err != nil {
			t.Fatal(err)
		}
		return &resp
	}
	if d := decide("0123456789abcdef0123456789abcde0"); d.Stale {
		t.Fatal("decision with Redis up marked stale")
	}
	rs.Kill()
	for deadline := time.Now().Add(5 * time.Second); s.state.Err() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the state backend did not notice Redis was killed")
		}
	}
	if d := decide("0123456789abcdef0123456789abcde1"); !d.Stale {
		t.Fatal("decision with Redis down not marked stale")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	if _, err := declog.ReadDir(filepath.Join(dir, "decisions"), "decisions", func(line []byte) error {
		rec, err := declog.ParseRecord(line)
		if err == nil && rec.Type == "decision" {
			states[rec.ID] = rec.State
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states["0123456789abcdef0123456789abcde0"] != "" || states["0123456789abcdef0123456789abcde1"] != "stale" {
		t.Fatalf("logged decisions' states: %q; want the one decided with Redis down stale, the other not", states)
	}
}
