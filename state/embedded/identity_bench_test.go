package embedded_test

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	"nba/state"
	"nba/state/embedded"
	"nba/state/identitytest"
	"nba/state/wal"
)

var benchProfiles = flag.Int("bench.identity.profiles", 100_000, "profiles of BenchmarkResolve (3 identifiers each)")

// benchIdentities returns the embedded identity layer with profiles
// profiles of 3 identifiers each (a cookie, a device and an e-mail) in the
// index, and the memory the index took per identifier.
func benchIdentities(b *testing.B, profiles int) (*state.Identities, float64) {
	s, err := embedded.Open(state.Config{WAL: wal.Config{Dir: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	x := state.NewIdentities(s, identitytest.Key)
	if err := x.Configure(&state.IdentityConfig{Namespaces: map[string]state.Namespace{
		"crm_id": {Primary: true, Unique: true}, "cookie": {}, "device": {TTL: "90d"}, "email": {Unique: true, Hash: true}}}); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	s.IndexSet(ctx, "warm:up", "x") // builds the (empty) index
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range profiles {
		c := fmt.Sprintf("c%07d", i)
		s.IndexSet(ctx, fmt.Sprintf("cookie:ck-%07d", i), c)
		s.IndexSet(ctx, fmt.Sprintf("device:dv-%07d", i), c)
		s.IndexSet(ctx, fmt.Sprintf("email:h:%032x", i), c)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	return x, float64(m1.HeapAlloc-m0.HeapAlloc) / float64(3*profiles)
}

// BenchmarkResolve measures resolving one identifier on the decide path
// (state.Identities.ResolveID on the embedded store) against 300k linked
// identifiers (-bench.identity.profiles=1000000: the 3M), beside the lookup of a customer id in a map of as many
// (what deciding by customer_id costs the snapshot), and reports the
// index's bytes per identifier.
func BenchmarkResolve(b *testing.B) {
	profiles := *benchProfiles
	x, perID := benchIdentities(b, profiles)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("ck-%07d", i*97%profiles)
	}
	b.Run("baseline-map", func(b *testing.B) {
		m := make(map[string]string, 3*profiles)
		for i := range 3 * profiles {
			m[fmt.Sprintf("ck-%07d", i)] = "c"
		}
		b.ReportAllocs()
		n := 0
		for i := 0; b.Loop(); i++ {
			if m[keys[i&1023]] != "" {
				n++
			}
		}
		_ = n
	})
	b.Run("primary", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok, err := x.ResolveID(b.Context(), "crm_id", keys[i&1023]); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("cookie", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if c, ok, err := x.ResolveID(b.Context(), "cookie", keys[i&1023]); !ok || err != nil || c[0] == '~' {
				b.Fatal(c, ok, err)
			}
		}
		b.ReportMetric(perID, "index-B/id")
	})
	b.Run("ttl", func(b *testing.B) {
		// A namespace with a ttl: resolving also reads the profile for
		// the identifier's last use (linked here, so that there is one).
		at := time.Now()
		devices := make([]string, len(keys))
		for i, k := range keys {
			devices[i] = "dv-" + k[3:]
			if _, err := x.Identify(b.Context(), map[string]string{"device": devices[i], "crm_id": "c" + k[3:]}, at, ""); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if c, ok, err := x.ResolveID(b.Context(), "device", devices[i&1023]); !ok || err != nil || c[0] == '~' {
				b.Fatal(c, ok, err)
			}
		}
	})
	b.Run("hashed", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok, err := x.ResolveID(b.Context(), "email", keys[i&1023]); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkMerge measures a link that merges two profiles of 100 contacts
// and 2 journeys each, beside one contact written (one fsync).
func BenchmarkMerge(b *testing.B) {
	s, err := embedded.Open(state.Config{WAL: wal.Config{Dir: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	identitytest.BenchMerge(b, s)
}
