package evaluate

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/nba/sidecar"
	"nba/state/redis/redistest"
)

// TestReplayCountsStaleDecisions: decisions a sidecar on Redis made while
// Redis was down are logged "state":"stale"; replay counts them and
// decides them the same from their logged inputs (the last copy of the
// state held: caps counted, journeys not stepped).
func TestReplayCountsStaleDecisions(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	dir := t.TempDir()
	s, err := sidecar.Open(sidecar.Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, StateRedis: rs.URL, DecisionLog: true, LogSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	decide := func(cust, channel string) *server.DecideResponse {
		t.Helper()
		n++
		req := server.DecideRequest{DecisionID: fmt.Sprintf("d%05d", n), CustomerID: cust, Channel: channel, Limit: 2}
		var resp server.DecideResponse
		if err := s.Decide(&req, &resp); err != nil {
			t.Fatal(err)
		}
		return &resp
	}
	customers := []string{"c00042", "c00043", "c00044"}
	for _, c := range customers {
		ev := server.Event{CustomerID: c, Type: "cart_abandoned", TS: time.Now(), Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 40}}}
		if err := s.Event(&ev); err != nil {
			t.Fatal(err)
		}
		d := decide(c, "sms")
		if len(d.Actions) > 0 {
			fb := server.Feedback{DecisionID: fmt.Sprintf("d%05d", n), CustomerID: c, ActionID: d.Actions[0].ID, Channel: "sms", Outcome: server.OutcomeImpression, TS: time.Now()}
			if err := s.Feedback(&fb); err != nil {
				t.Fatal(err)
			}
		}
	}
	rs.Kill()
	stale := 0
	for deadline := time.Now().Add(5 * time.Second); stale < 6; {
		if time.Now().After(deadline) {
			t.Fatalf("%d stale decisions 5s after Redis was killed, want 6", stale)
		}
		for _, ch := range []string{"sms", "push"} {
			if decide(customers[stale%len(customers)], ch).Stale {
				stale++
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Replay(filepath.Join(dir, "decisions"), s.Catalog(), ReplayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stale != stale || rep.Replayed+rep.SkippedControl != n || rep.Different != 0 {
		t.Fatalf("replay: %d decisions, %d replayed, %d stale (want %d), %d different %+v", rep.Decisions, rep.Replayed, rep.Stale, stale, rep.Different, rep.Differences)
	}
}
