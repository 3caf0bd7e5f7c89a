package evaluate

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"nba/nba/declog"
	"nba/nba/demo"
	"nba/nba/server"
	"nba/nba/sidecar"
)

var testSecret = []byte("replay-test-secret-0123456789")

// bundleWith returns the demo bundle with its catalog edited by replacing
// old by new (once; the test fails when old is absent).
func bundleWith(t *testing.T, old, new string) fs.FS {
	t.Helper()
	src := demo.Bundle()
	m := fstest.MapFS{}
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		if p == "catalog.yaml" && old != "" {
			if !strings.Contains(string(b), old) {
				return fmt.Errorf("catalog.yaml lacks %q", old)
			}
			b = []byte(strings.Replace(string(b), old, new, 1))
		}
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// logDecisions runs n decisions of the customers through a real sidecar
// serving bundle with the decision log on, on every channel, with events
// (journeys, live profile fields) and impressions (contact history) in
// between; it returns the log directory and the decisions' ids.
func logDecisions(t *testing.T, bundle fs.FS, n int) (string, []string) {
	t.Helper()
	return logDecisionsOn(t, bundle, n, true)
}

// logDecisionsOn is logDecisions on the given channels (all when none),
// with or without impressions.
func logDecisionsOn(t *testing.T, bundle fs.FS, n int, impressions bool, only ...string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	var mu sync.Mutex
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tick := func() { mu.Lock(); now = now.Add(7 * time.Second); mu.Unlock() }
	s, err := sidecar.Open(sidecar.Config{Bundle: bundle, BundleName: "test", StateDir: dir, DecisionLog: true, LogSecret: testSecret, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := LoadCatalog(bundle)
	if err != nil {
		t.Fatal(err)
	}
	channels := cat.Channels()
	if len(only) > 0 {
		channels = only
	}
	customers := s.CustomerIDs()
	var ids []string
	for i := range n {
		tick()
		// A small pool: customers come back, so history counts are read.
		cust := customers[(i*7919)%len(customers)%60]
		switch i % 9 {
		case 3:
			ev := server.Event{CustomerID: cust, Type: "cart_abandoned", TS: clock(), Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: float64(20 + i%50)}}}
			if err := s.Event(&ev); err != nil {
				t.Fatalf("event: %v", err)
			}
		case 5:
			ev := server.Event{CustomerID: cust, Type: "ticket_opened", TS: clock()}
			if err := s.Event(&ev); err != nil {
				t.Fatalf("event: %v", err)
			}
		}
		req := server.DecideRequest{DecisionID: fmt.Sprintf("d%05d", i), CustomerID: cust, Channel: channels[i%len(channels)], Limit: 1 + i%3}
		if i%2 == 0 {
			req.Context = []server.Field{{Key: "page", Kind: server.KindString, Str: "home"}, {Key: "device", Kind: server.KindString, Str: "ios"}}
		}
		var resp server.DecideResponse
		if err := s.Decide(&req, &resp); err != nil {
			t.Fatalf("decide: %v", err)
		}
		ids = append(ids, req.DecisionID)
		if impressions && len(resp.Actions) > 0 && i%4 == 1 {
			fb := server.Feedback{DecisionID: req.DecisionID, CustomerID: cust, ActionID: resp.Actions[0].ID, Channel: req.Channel, Outcome: server.OutcomeImpression, TS: clock()}
			if err := s.Feedback(&fb); err != nil {
				t.Fatalf("feedback: %v", err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "decisions"), ids
}

func TestReplayUnchangedBundleHasNoDifferences(t *testing.T) {
	logs, ids := logDecisions(t, demo.Bundle(), 400)
	var explored, withHistory, withJourneys int
	_, err := declog.ReadDir(logs, "decisions", func(line []byte) error {
		r, err := declog.ParseRecord(line)
		if err != nil || r.Type != "decision" {
			return err
		}
		if r.Seed != 0 && !r.Control {
			explored++
		}
		if r.Inputs != nil && len(r.Inputs.History) > 0 {
			for _, h := range r.Inputs.History {
				if h.Count > 0 {
					withHistory++
					break
				}
			}
		}
		if r.Inputs != nil && len(r.Inputs.Journeys) > 0 {
			withJourneys++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if explored < 50 || withHistory == 0 || withJourneys == 0 {
		t.Fatalf("the log does not exercise replay: %d explored decisions, %d with history, %d with journeys", explored, withHistory, withJourneys)
	}
	cat, err := LoadCatalog(demo.Bundle())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Replay(logs, cat, ReplayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decisions != len(ids) {
		t.Errorf("read %d decisions, logged %d", rep.Decisions, len(ids))
	}
	if rep.Different != 0 {
		t.Errorf("%d of %d replayed decisions differ, e.g. %+v", rep.Different, rep.Replayed, rep.Differences[0])
	}
	if rep.Replayed+rep.SkippedControl != rep.Decisions || rep.SkippedVersion+rep.SkippedNoInputs+rep.SkippedChannel != 0 {
		t.Errorf("replayed %d of %d: %+v", rep.Replayed, rep.Decisions, rep)
	}
	if rep.MissingCounts != 0 || rep.UnknownFields != 0 {
		t.Errorf("%d history counts and %d profile fields missing from the log", rep.MissingCounts, rep.UnknownFields)
	}
}

func TestReplayChangedCatalogReportsDifferences(t *testing.T) {
	logs, _ := logDecisions(t, demo.Bundle(), 200)
	// A different value of one ranked action, the version left unchanged.
	changed, err := LoadCatalog(bundleWith(t, "group: cross_sell, channels: [web, app, email], value: 30,", "group: cross_sell, channels: [web, app, email], value: 3000,"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Replay(logs, changed, ReplayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Different == 0 || len(rep.Differences) != rep.Different {
		t.Fatalf("no differences reported for a changed catalog: %+v", rep)
	}
	// Exploration draws depend on every candidate's score, so other
	// decisions may change too; the changed action must be among them.
	shoes := 0
	for _, d := range rep.Differences {
		if strings.Contains(d.Replayed, "xs_shoes") {
			shoes++
		}
	}
	if shoes == 0 {
		t.Errorf("no difference shows the changed action xs_shoes: %+v", rep.Differences)
	}
	// A new version: nothing replayed, every decision skipped and counted.
	bumped, err := LoadCatalog(bundleWith(t, "version: demo-2026-11", "version: demo-2026-12"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Replay(logs, bumped, ReplayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != 0 || rep.SkippedVersion+rep.SkippedControl != rep.Decisions {
		t.Errorf("replayed decisions of another catalog version: %+v", rep)
	}
}
