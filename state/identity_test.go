package state_test

import (
	"strings"
	"testing"
	"time"
	"unsafe"

	"nba/state"
	"nba/state/identitytest"
	"nba/state/wal"
)

// TestIdentity runs the identity behaviour table against the embedded
// store.
func TestIdentity(t *testing.T) {
	identitytest.Run(t, func(t *testing.T, cfg state.Config) state.IdentityBackend {
		cfg.WAL = wal.Config{Dir: t.TempDir()}
		s, err := state.Open(cfg)
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
	s, err := state.Open(state.Config{WAL: wal.Config{Dir: t.TempDir()}})
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
