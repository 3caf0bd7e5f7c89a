package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"nba/internal/faulttest"
	"nba/state"
)

func TestErrorKinds(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, func(c *state.Config) { c.MaxStringBytes = 8; c.WAL.MaxRecordBytes = 64 })
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		write func() error
		kind  error
	}{
		{"empty customer", func() error { return s.RecordContact(state.Contact{Action: "a", At: at}) }, state.ErrInvalid},
		{"long action", func() error { return s.RecordContact(state.Contact{Customer: "c", Action: "abcdefghij", At: at}) }, state.ErrInvalid},
		{"time out of range", func() error { return s.RecordContact(state.Contact{Customer: "c", Action: "a", At: time.Unix(0, 0)}) }, state.ErrInvalid},
		{"attribute of the wrong type", func() error {
			return s.ApplyEvent(state.Event{Customer: "c", Type: "purchase", At: at, Attrs: map[string]any{"amount": "lots"}})
		}, state.ErrInvalid},
		{"bad journey step", func() error { return s.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "j", Step: -1, At: at}) }, state.ErrInvalid},
		{"record over the log's limit", func() error {
			return s.ApplyEvent(state.Event{Customer: "c", Type: "signup", At: at, Journeys: []state.JourneyMove{{Journey: "j1"}, {Journey: "j2"}, {Journey: "j3"}, {Journey: "j4"}, {Journey: "j5"}, {Journey: "j6"}}})
		}, state.ErrInvalid},
		{"fine", func() error { return s.RecordContact(state.Contact{Customer: "c", Action: "a", At: at}) }, nil},
		{"closed", func() error {
			s.Close()
			return s.RecordContact(state.Contact{Customer: "c", Action: "a", At: at})
		}, state.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.write()
			if state.KindOf(err) != tc.kind || (err == nil) != (tc.kind == nil) {
				t.Fatalf("error %v is of kind %v, want %v", err, state.KindOf(err), tc.kind)
			}
		})
	}
	if state.KindOf(errors.New("x")) != nil || state.KindOf(fmt.Errorf("w: %w", &state.Error{Kind: state.ErrConflict, Err: errors.New("x")})) != state.ErrConflict {
		t.Fatal("KindOf of a plain or a wrapped conflict error")
	}
	if st := s.Stats(); st.Unavailable != 1 {
		t.Fatalf("unavailable writes counted: %d, want 1", st.Unavailable)
	}
}

// TestFullDiskHealsRegression is the regression test for a state store
// that refused every write forever after its disk filled up, even once
// space was freed. On a real 2 MiB tmpfs: writes fail with ErrUnavailable
// (and ENOSPC) while the disk is full, are never applied in memory, resume
// by themselves once space returns, and after a restart every acknowledged
// contact is there and no failed one.
func TestFullDiskHealsRegression(t *testing.T) {
	mnt := faulttest.MountTmpfs(t, 2<<20)
	dir := filepath.Join(mnt, "state")
	cfg := func(c *state.Config) {
		c.WAL.SyncInterval = time.Microsecond
		c.WAL.RetryInterval = 300 * time.Millisecond
	}
	s := openStore(t, dir, cfg)
	filler := faulttest.FillDisk(t, mnt, 16<<10)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var acked, failed []state.Contact
	i := 0
	write := func() error {
		c := state.Contact{Customer: fmt.Sprintf("c%d", i%40), Action: "a", At: at.Add(time.Duration(i) * time.Second), ID: fmt.Sprintf("k%d", i)}
		i++
		err := s.RecordContact(c)
		if err == nil {
			acked = append(acked, c)
		} else {
			failed = append(failed, c)
		}
		return err
	}
	for i < 100_000 {
		if err := write(); err != nil {
			if !errors.Is(err, state.ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("write on a full disk: %v, want ErrUnavailable and ENOSPC", err)
			}
			break
		}
	}
	if len(failed) == 0 || len(acked) == 0 {
		t.Fatalf("%d writes acknowledged, %d failed: the disk never filled", len(acked), len(failed))
	}
	if err := s.Err(); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Err while the log is failed: %v", err)
	}
	for range 5 {
		if write() == nil {
			t.Fatal("a write succeeded on a full disk")
		}
	}
	time.Sleep(700 * time.Millisecond) // two tries to heal, in vain: the disk is still full
	if err := s.Err(); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Err while the disk is still full: %v", err)
	}
	seen := func(s *Store, c state.Contact) bool {
		var v state.View
		return s.View([]byte(c.Customer), &v) && v.SeenContactID(c.ID)
	}
	for _, c := range failed {
		if seen(s, c) {
			t.Fatalf("failed write %s applied in memory", c.ID)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for write() != nil {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("writes still fail 5s after space returned: %v", s.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("writes resumed %v after space returned; %d acknowledged, %d failed", time.Since(start).Round(time.Millisecond), len(acked), len(failed))
	for range 20 {
		if err := write(); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Unavailable < uint64(len(failed)) || st.WAL.Recoveries == 0 || s.Err() != nil {
		t.Fatalf("stats after healing: unavailable %d (failed %d), recoveries %d, err %v", st.Unavailable, len(failed), st.WAL.Recoveries, s.Err())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, cfg)
	for _, c := range acked {
		if !seen(s2, c) {
			t.Fatalf("acknowledged write %s lost after restart", c.ID)
		}
	}
	for _, c := range failed {
		if seen(s2, c) {
			t.Fatalf("failed write %s applied after restart", c.ID)
		}
	}
	if got := s2.Stats().Replayed; got != uint64(len(acked)) {
		t.Fatalf("replayed %d records, acknowledged %d", got, len(acked))
	}
}
