package embedded

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"nba/state"
	"nba/state/wal"
)

func testReservation(c, d string, at time.Time) state.Reservation {
	return state.Reservation{Customer: c, Decision: d, Action: "a", Group: "g", Channel: "email", At: at, Expires: at.Add(time.Hour),
		Caps: []state.ExactCap{{Kind: state.KindChannel, Key: "email", Window: 24 * time.Hour, Max: 3}, {Kind: state.KindGroup, Key: "g", Window: time.Hour, Max: 2}}}
}

// TestReservationsSurviveRestart: reservations and their conversion by an
// impression are in the log and the checkpoint: a reopened store holds
// the same live reservations (a slot reserved before a restart is not
// given twice after it).
func TestReservationsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *Store {
		s, err := Open(state.Config{Mappings: testMappings(t), WAL: wal.Config{Dir: dir}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	count := func(s *Store) (res, imp int) {
		var v state.View
		s.View([]byte("c"), &v)
		at := t0.Add(2 * time.Minute)
		return v.Reserved(state.KindChannel, "email", at), v.Count(state.KindChannel, "email", state.Impression, time.Hour, at)
	}
	s := open()
	for _, d := range []string{"d1", "d2"} {
		if err := s.Reserve(testReservation("c", d, t0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordContact(state.Contact{Customer: "c", Action: "a", Group: "g", Channel: "email", At: t0.Add(time.Minute), Decision: "d1"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open() // replayed from the log
	if r, i := count(s); r != 1 || i != 1 {
		t.Errorf("after replay: %d reserved, %d impressions; want 1 and 1", r, i)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open() // from the checkpoint
	defer s.Close()
	if r, i := count(s); r != 1 || i != 1 {
		t.Errorf("after a checkpoint: %d reserved, %d impressions; want 1 and 1", r, i)
	}
	if err := s.Reserve(testReservation("c", "d3", t0.Add(2*time.Minute))); !errors.Is(err, state.ErrConflict) {
		t.Errorf("a third slot under a group cap of 2 after the restart: err %v, want a conflict", err)
	}
}

// TestReadsVersion2State opens a state directory written before
// reservations (checkpoint version 2) and checks that it loads as it
// was, and that reservations written on it survive a checkpoint.
func TestReadsVersion2State(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"ckpt-0000000000000002.bin", "wal-0000000000000002.seg"} {
		b, err := os.ReadFile(filepath.Join("testdata/wal-v2", name))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	s := openStore(t, dir, nil)
	var v state.View
	for _, c := range []string{"c1", "c2"} {
		if !s.View([]byte(c), &v) || v.Count(state.KindChannel, "email", state.Impression, 24*time.Hour, t0.Add(2*time.Hour)) != 1 {
			t.Fatalf("%s: the version 2 state lost its e-mail impression:\n%s", c, dump(s))
		}
	}
	if s.View([]byte("c1"), &v); !v.SeenContactID("fb-1") || v.Journeys() != 1 {
		t.Fatalf("c1: the version 2 state lost its idempotency key or journey:\n%s", dump(s))
	}
	r := testReservation("c1", "d1", t0.Add(2*time.Hour))
	r.Caps = r.Caps[:1]
	must(t, s.Reserve(r))
	must(t, s.Checkpoint())
	before := dump(s)
	must(t, s.Close())
	s = openStore(t, dir, nil)
	if after := dump(s); after != before {
		t.Fatalf("state differs after a checkpoint:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if s.View([]byte("c1"), &v); v.Reserved(state.KindChannel, "email", t0.Add(2*time.Hour)) != 1 {
		t.Error("the reservation did not survive the checkpoint")
	}
}
