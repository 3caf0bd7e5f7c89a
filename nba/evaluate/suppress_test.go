package evaluate

import (
	"fmt"
	"testing"
	"time"

	"nba/nba/declog"
	"nba/nba/demo"
	"nba/nba/server"
	"nba/nba/sidecar"
)

// TestReplaySuppressionFromContactLists: a suppression decided from the
// customer's contact sequence replays the same: the decision log carries
// the contact lists read. Customers whose three impressions of a sales
// action fell 4-2 days ago are paused; 17-15 days ago, no longer (counts
// alone could not tell the two apart).
func TestReplaySuppressionFromContactLists(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	s, err := sidecar.Open(sidecar.Config{Bundle: demo.Bundle(), BundleName: "test", StateDir: dir, DecisionLog: true, LogSecret: testSecret,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := LoadCatalog(demo.Bundle())
	if err != nil {
		t.Fatal(err)
	}
	const day = 24 * time.Hour
	customers := s.CustomerIDs()[:40]
	for i, c := range customers {
		var resp server.DecideResponse
		if err := s.Decide(&server.DecideRequest{DecisionID: fmt.Sprintf("a%03d", i), CustomerID: c, Channel: "web", Limit: 3}, &resp); err != nil {
			t.Fatal(err)
		}
		first := 4 * day
		if i%2 == 1 {
			first = 17 * day
		}
		for _, a := range resp.Actions {
			if g := cat.Action(a.ID).Group; g == "service" || g == "content" {
				continue
			}
			for k := range 3 {
				fb := server.Feedback{CustomerID: c, ActionID: a.ID, Channel: "web", Outcome: server.OutcomeImpression, TS: now.Add(-first + time.Duration(k)*day)}
				if err := s.Feedback(&fb); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.Decide(&server.DecideRequest{DecisionID: fmt.Sprintf("b%03d", i), CustomerID: c, Channel: "web", Limit: 3}, &resp); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logs := dir + "/decisions"
	lists, paused := 0, 0
	if _, err := declog.ReadDir(logs, "decisions", func(line []byte) error {
		r, err := declog.ParseRecord(line)
		if err != nil || r.Type != "decision" || r.Inputs == nil {
			return err
		}
		lists += len(r.Inputs.Contacts)
		for _, c := range r.Candidates {
			if c.Stage == "contact_policy" {
				paused++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if lists == 0 || paused == 0 {
		t.Fatalf("the log does not exercise suppressions: %d contact lists, %d paused candidates", lists, paused)
	}
	rep, err := Replay(logs, cat, ReplayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed == 0 || rep.Different != 0 {
		t.Errorf("%d of %d replayed decisions differ: %+v", rep.Different, rep.Replayed, rep.Differences)
	}
}
