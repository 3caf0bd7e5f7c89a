package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/state/wal"
)

// stateStatus returns the "state" object of /admin/status.
func stateStatus(t *testing.T, s *Sidecar) map[string]any {
	t.Helper()
	b, err := s.AppendStatus(nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ State map[string]any }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.State
}

// Regression: the live state of ids not in the snapshot grew without bound
// (200k new ids by events: +170 MiB). Past StateMaxCustomers the least
// recently written of them are evicted, counted in status; customers of the
// snapshot keep their state.
func TestLiveOnlyCustomersEvicted(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateMaxCustomers: 5, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	snapIDs := []string{"c00001", "c00002", "c00003", "c00004", "c00005", "c00006"}
	for _, id := range snapIDs {
		if err := s.Feedback(&server.Feedback{CustomerID: id, ActionID: "xs_shoes", Channel: "web", Outcome: server.OutcomeImpression, TS: now}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if err := s.Event(&server.Event{CustomerID: fmt.Sprintf("new-%02d", i), Type: "ticket_opened", TS: now.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for stateStatus(t, s)["customers"].(float64) > float64(len(snapIDs)+5) {
		if time.Now().After(deadline) {
			t.Fatalf("live-only customers not bounded: status %v", stateStatus(t, s))
		}
		time.Sleep(time.Millisecond)
	}
	if got := stateStatus(t, s)["customers_evicted"].(float64); got != 15 {
		t.Errorf("customers_evicted %v, want 15", got)
	}
	for _, id := range snapIDs {
		if b, err := s.AppendCustomer(nil, id); err != nil || !strings.Contains(string(b), `"xs_shoes"`) {
			t.Errorf("snapshot customer %s lost its history: %s %v", id, b, err)
		}
	}
	if _, err := s.AppendCustomer(nil, "new-00"); err == nil {
		t.Error("new-00, the least recently written, still has state")
	}
	if _, err := s.AppendCustomer(nil, "new-19"); err != nil {
		t.Errorf("new-19, the most recently written, lost its state: %v", err)
	}
}

// A damaged state log record stops Open, naming the file; with
// StateSkipCorrupt it is skipped, logged and shown in status.
func TestStateSkipCorrupt(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	cfg := Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, DecisionLog: false, Now: func() time.Time { return now }}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"first-one", "second-one", "third-one"} {
		if err := s.Event(&server.Event{CustomerID: id, Type: "ticket_opened", TS: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "state", "wal-*.seg"))
	var damaged bool
	for _, seg := range segs {
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(data, []byte("second-one")); i >= 0 {
			data[i] ^= 0xff
			damaged = os.WriteFile(seg, data, 0o644) == nil
		}
	}
	if !damaged {
		t.Fatalf("no segment of %v holds the second event", segs)
	}
	var ce *wal.CorruptError
	if s, err := Open(cfg); !errors.As(err, &ce) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a damaged log: %v, want a CorruptError", err)
	}
	var logs bytes.Buffer
	cfg.StateSkipCorrupt = true
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	s, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := stateStatus(t, s)["wal"].(map[string]any)["corrupt_records"]; got != 1.0 {
		t.Errorf("status state.wal.corrupt_records %v, want 1", got)
	}
	if !strings.Contains(logs.String(), `"damaged":1`) {
		t.Errorf("skipped record not logged: %s", logs.String())
	}
	for id, want := range map[string]bool{"first-one": true, "second-one": false, "third-one": true} {
		if _, err := s.AppendCustomer(nil, id); (err == nil) != want {
			t.Errorf("customer %s has state: %v, want %v", id, err == nil, want)
		}
	}
}
