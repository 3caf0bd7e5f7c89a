package embedded_test

import (
	"strings"
	"testing"
	"time"
	"unsafe"

	"nba/state"
	"nba/state/embedded"
	"nba/state/identitytest"
	"nba/state/wal"
)

// TestIdentity runs the identity behaviour table against the embedded
// store.
func TestIdentity(t *testing.T) {
	identitytest.Run(t, func(t *testing.T, cfg state.Config) state.IdentityBackend {
		cfg.WAL = wal.Config{Dir: t.TempDir()}
		s, err := embedded.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Regression: identifiers taken from a request buffer (unsafe strings into
// the server's decode arena) were kept in the profile and the index, and
// changed when the buffer was reused: a later link then saw no conflict.
func TestIdentifyKeepsNoBorrowedStrings(t *testing.T) {
	s, err := embedded.Open(state.Config{WAL: wal.Config{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := state.NewIdentities(s, identitytest.Key)
	if err := x.Configure(&state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true}, "cookie": {}}}); err != nil {
		t.Fatal(err)
	}
	buf := []byte("cookiec-91crm_idc42")
	borrowed := func(i, j int) string { return unsafe.String(&buf[i], j-i) }
	l, err := x.Identify(t.Context(), map[string]string{borrowed(0, 6): borrowed(6, 10), borrowed(10, 16): borrowed(16, 19)}, time.Unix(1e9, 0), "")
	if err != nil || l.Customer != "c42" {
		t.Fatalf("%+v %v", l, err)
	}
	copy(buf, "XXXXXXXXXXXXXXXXXXX")
	if got, _, _ := x.ResolveID(t.Context(), "cookie", "c-91"); got != "c42" {
		t.Errorf("the cookie resolves to %q after the request buffer was reused", got)
	}
	ids, _ := x.IdentifiersOf(t.Context(), "c42")
	for _, id := range ids {
		if strings.Contains(id.Key(), "X") {
			t.Errorf("identifier %q changed with the request buffer", id.Key())
		}
	}
}

// TestIdentitySurvivesRestart: links and merges are log records like any
// other: after a restart (from the log alone, and from a checkpoint) the
// profiles hold their identifiers, the merged one forwards, the index is
// rebuilt from the profiles and an unmerge still restores both sides.
func TestIdentitySurvivesRestart(t *testing.T) {
	for _, checkpoint := range []bool{false, true} {
		t.Run(map[bool]string{false: "log", true: "checkpoint"}[checkpoint], func(t *testing.T) {
			dir := t.TempDir()
			cfg := func() *state.IdentityConfig {
				return &state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true, Unique: true}, "cookie": {}, "email": {Hash: true}}}
			}
			open := func() (*embedded.Store, *state.Identities) {
				s, err := embedded.Open(state.Config{WAL: wal.Config{Dir: dir}})
				if err != nil {
					t.Fatal(err)
				}
				x := state.NewIdentities(s, identitytest.Key)
				if err := x.Configure(cfg()); err != nil {
					t.Fatal(err)
				}
				return s, x
			}
			t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
			s, x := open()
			anon, _, _ := x.ResolveID(t.Context(), "cookie", "c-1")
			if err := x.Stitched().RecordContact(state.Contact{Customer: anon, Action: "a", Channel: "web", At: t0}); err != nil {
				t.Fatal(err)
			}
			if _, err := x.Identify(t.Context(), map[string]string{"crm_id": "c1"}, t0, ""); err != nil {
				t.Fatal(err)
			}
			beforeA, _ := s.Get(t.Context(), "c1")
			beforeB, _ := s.Get(t.Context(), anon)
			wantB := string(s.AppendState(nil, beforeB))
			l, err := x.Identify(t.Context(), map[string]string{"cookie": "c-1", "crm_id": "c1", "email": "a@example.com"}, t0.Add(time.Minute), "login")
			if err != nil || len(l.Receipts) != 1 {
				t.Fatalf("%+v %v", l, err)
			}
			if checkpoint {
				if err := s.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			s, x = open()
			defer s.Close()
			for _, q := range [][2]string{{"cookie", "c-1"}, {"email", "a@example.com"}} {
				if got, _, _ := x.ResolveID(t.Context(), q[0], q[1]); got != "c1" {
					t.Errorf("after restart %v resolves to %q", q, got)
				}
			}
			var v state.View
			if !x.Stitched().View([]byte(anon), &v) || v.Customer() != "c1" || v.HistoryLen() != 1 {
				t.Errorf("after restart the merged id reads %q with %d contacts", v.Customer(), v.HistoryLen())
			}
			if _, err := x.Unmerge(t.Context(), l.Receipts[0]); err != nil {
				t.Fatal(err)
			}
			a, _ := s.Get(t.Context(), "c1")
			b, _ := s.Get(t.Context(), anon)
			if string(s.AppendState(nil, b)) != wantB {
				t.Error("unmerge after restart: the absorbed profile differs")
			}
			// The survivor keeps the e-mail linked by the merging call.
			if ids := a.Identifiers(); len(ids) != 2 || len(beforeA.Identifiers()) != 1 {
				t.Errorf("survivor identifiers %+v", ids)
			}
		})
	}
}

// TestUnmergeByProvenanceSurvivesRestart: the writes a merge receipt logs
// are in the profile's value, so after a restart (from the log, and from a
// checkpoint) an unmerge still gives the cookie's writes back; past the
// log's bound the rest stays with the survivor.
func TestUnmergeByProvenanceSurvivesRestart(t *testing.T) {
	for _, checkpoint := range []bool{false, true} {
		t.Run(map[bool]string{false: "log", true: "checkpoint"}[checkpoint], func(t *testing.T) {
			dir := t.TempDir()
			open := func() (*embedded.Store, *state.Identities) {
				s, err := embedded.Open(state.Config{WAL: wal.Config{Dir: dir}, MaxEventsPerCustomer: 1000})
				if err != nil {
					t.Fatal(err)
				}
				x := state.NewIdentities(s, identitytest.Key)
				if err := x.Configure(&state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true, Unique: true}, "cookie": {}}}); err != nil {
					t.Fatal(err)
				}
				return s, x
			}
			t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
			s, x := open()
			anon, _, _ := x.ResolveID(t.Context(), "cookie", "c-1")
			if err := x.Stitched().RecordContact(state.Contact{Customer: anon, Action: "a", Channel: "web", At: t0}); err != nil {
				t.Fatal(err)
			}
			l, err := x.Identify(t.Context(), map[string]string{"cookie": "c-1", "crm_id": "c1"}, t0.Add(time.Minute), "login")
			if err != nil || len(l.Receipts) != 1 {
				t.Fatalf("%+v %v", l, err)
			}
			via, _ := x.Via("cookie", "c-1")
			// More writes via the cookie than the receipt logs (256).
			const n = 300
			for i := range n {
				c := state.Contact{Customer: "c1", Action: "a", Channel: "web", At: t0.Add(time.Duration(2+i) * time.Minute), Via: via}
				if err := x.Stitched().RecordContact(c); err != nil {
					t.Fatal(err)
				}
			}
			if checkpoint {
				if err := s.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			s, x = open()
			defer s.Close()
			if _, err := x.Unmerge(t.Context(), l.Receipts[0]); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				id   string
				want int
			}{{anon, 1 + 256}, {"c1", n - 256}} {
				var v state.View
				if !s.View([]byte(c.id), &v) || v.HistoryLen() != c.want {
					t.Errorf("%s: %d contacts after the unmerge, want %d", c.id, v.HistoryLen(), c.want)
				}
			}
		})
	}
}
