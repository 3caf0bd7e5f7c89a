package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"nba/state"
	"nba/state/wal"
)

// liveIDs returns the ids of the customers with state, sorted.
func liveIDs(s *Store) []string {
	var ids []string
	for i := range s.stripes {
		st := &s.stripes[i]
		st.mu.RLock()
		for id := range st.m {
			ids = append(ids, id)
		}
		st.mu.RUnlock()
	}
	slices.Sort(ids)
	return ids
}

// TestLiveOnlyCustomersBoundedRegression is the regression test for the
// live state of customers who are not in the snapshot growing without
// bound: past MaxCustomers the least recently written of them are evicted
// (in the background), snapshot customers never, the evictions are
// counted, and they hold across a restart and a checkpoint.
func TestLiveOnlyCustomersBoundedRegression(t *testing.T) {
	dir := t.TempDir()
	const max = 10
	inSnap := func(id string) bool { return strings.HasPrefix(id, "snap") }
	tweak := func(c *state.Config) { c.MaxCustomers = max }
	s := openStore(t, dir, tweak)
	s.SetInSnapshot(inSnap)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	write := func(id string) {
		t.Helper()
		n++
		if err := s.RecordContact(state.Contact{Customer: id, Action: "a", At: at.Add(time.Duration(n) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		write(fmt.Sprintf("snap%d", i))
	}
	for i := range 30 {
		write(fmt.Sprintf("new%02d", i))
	}
	write("new00") // the most recently written now
	for i := range 5 {
		write(fmt.Sprintf("snap%d", i))
	}
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("snap%d", i))
	}
	want = append(want, "new00")
	for i := 21; i < 30; i++ {
		want = append(want, fmt.Sprintf("new%02d", i))
	}
	slices.Sort(want)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(liveIDs(s), want) {
		if time.Now().After(deadline) {
			t.Fatalf("customers with state: %v, want %v", liveIDs(s), want)
		}
		time.Sleep(time.Millisecond)
	}
	st := s.Stats()
	if st.CustomersEvicted < 20 || st.Customers != uint64(len(want)) {
		t.Fatalf("evicted %d (want at least 20), customers %d (want %d)", st.CustomersEvicted, st.Customers, len(want))
	}
	var v state.View
	if s.View([]byte("new01"), &v) || !s.View([]byte("snap0"), &v) || v.HistoryLen() != 2 {
		t.Fatalf("new01 evicted, snap0 kept with its 2 contacts: %v %d", s.View([]byte("new01"), &v), v.HistoryLen())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The evictions are in the log: a restart does not bring them back,
	// nor does a checkpoint after it. (Without SetInSnapshot, a reopened
	// store evicts nothing.)
	for _, ckpt := range []bool{false, true} {
		s2 := openStore(t, dir, tweak)
		if got := liveIDs(s2); !slices.Equal(got, want) {
			t.Fatalf("after a restart (checkpoint %v): %v, want %v", ckpt, got, want)
		}
		if ckpt {
			if err := s2.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
		s2.Close()
	}
}

// TestEvictDownToBound: without a bound nothing is evicted; past it, a pass
// evicts the least recently written down to MaxCustomers minus 1/16.
func TestEvictDownToBound(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *state.Config) { c.MaxCustomers = -1 })
	s.SetInSnapshot(func(string) bool { return false })
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range 20 {
		if err := s.RecordContact(state.Contact{Customer: fmt.Sprintf("c%02d", i), Action: "a", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.evict(); n != 0 || err != nil {
		t.Fatalf("evict without a bound: %d, %v", n, err)
	}
	s.cfg.MaxCustomers = 64 // 64 - 64/16 = 60 kept
	for i := 20; i < 70; i++ {
		if err := s.RecordContact(state.Contact{Customer: fmt.Sprintf("c%02d", i), Action: "a", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.evict(); n != 70-60 || err != nil {
		t.Fatalf("evicted %d, %v; want %d", n, err, 70-60)
	}
	if got := liveIDs(s); len(got) != 60 || got[0] != "c10" {
		t.Fatalf("kept %d customers from %s, want 60 from c10", len(got), got[0])
	}
}

// TestSkipCorruptRecord: a damaged record stops Open with its file and
// offset; with WAL.SkipCorrupt the store opens without it, keeps the
// records around it and counts it.
func TestSkipCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"first", "second", "third"} {
		if err := s.RecordContact(state.Contact{Customer: id, Action: "a", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "wal-*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), "second")
	data[i] ^= 0xff
	if err := os.WriteFile(segs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	var ce *wal.CorruptError
	if _, err := Open(state.Config{Mappings: testMappings(t), WAL: wal.Config{Dir: dir}}); !errors.As(err, &ce) {
		t.Fatalf("open of a damaged log: %v, want a CorruptError", err)
	}
	s = openStore(t, dir, func(c *state.Config) { c.WAL.SkipCorrupt = true })
	if got := liveIDs(s); !slices.Equal(got, []string{"first", "third"}) {
		t.Fatalf("customers after skipping: %v", got)
	}
	if st := s.Stats(); st.WAL.CorruptRecords != 1 || st.Replayed != 2 {
		t.Fatalf("corrupt records %d (want 1), replayed %d (want 2)", st.WAL.CorruptRecords, st.Replayed)
	}
}

// TestDefaultMaxCustomersEvictsRegression is the regression test for a
// store opened with MaxCustomers left at 0 (documented: the default bound)
// never evicting: Open started the eviction loop from the caller's config
// before the defaults were applied.
func TestDefaultMaxCustomersEvictsRegression(t *testing.T) {
	if testing.Short() {
		t.Skip("writes more customers than the default bound")
	}
	s := openStore(t, t.TempDir(), func(c *state.Config) { c.MaxCustomers = 0 })
	s.SetInSnapshot(func(string) bool { return false })
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	const batch = 10_000
	n := state.DefaultMaxCustomers + batch
	cs := make([]state.Contact, 0, batch)
	for i := range n {
		cs = append(cs, state.Contact{Customer: fmt.Sprintf("c%07d", i), Action: "a", At: at})
		if len(cs) == batch {
			if err := s.RecordContact(cs...); err != nil {
				t.Fatal(err)
			}
			cs = cs[:0]
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().CustomersEvicted == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d customers with state, none evicted past the default bound %d", s.Stats().Customers, state.DefaultMaxCustomers)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.Stats().Customers; got > uint64(state.DefaultMaxCustomers) {
		t.Fatalf("%d customers with state after eviction, want at most %d", got, state.DefaultMaxCustomers)
	}
}
