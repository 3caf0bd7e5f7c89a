package state_test

import (
	"flag"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"nba/state"
	"nba/state/identitytest"
	"nba/state/wal"
)

var benchProfiles = flag.Int("bench.identity.profiles", 100_000, "profiles of BenchmarkResolve (3 identifiers each)")

// benchIdentities returns the embedded identity layer with profiles
// profiles of 3 identifiers each (a cookie, a device and an e-mail) in the
// index, and the memory the index took per identifier.
func benchIdentities(b *testing.B, profiles int) (*state.Identities, float64) {
	s, err := state.Open(state.Config{WAL: wal.Config{Dir: b.TempDir()}})
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

var mergeSeq atomic.Int64

// BenchmarkMerge measures a link that merges two profiles of 100 contacts,
// 5 events and 2 journeys each, beside one contact written (the cheapest
// durable write).
func BenchmarkMerge(b *testing.B) {
	s, err := state.Open(state.Config{WAL: wal.Config{Dir: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	x := state.NewIdentities(s, identitytest.Key)
	if err := x.Configure(&state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true}, "cookie": {}}}); err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	fill := func(c string) {
		for k := range 100 {
			if err := s.RecordContact(state.Contact{Customer: c, Action: fmt.Sprintf("a%d", k%10), Group: "g", Channel: "web", At: t0.Add(time.Duration(k) * time.Minute)}); err != nil {
				b.Fatal(err)
			}
		}
		for k := range 2 {
			if err := s.SetJourney(state.JourneyUpdate{Customer: c, Journey: fmt.Sprintf("j%d", k), Step: k, At: t0}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("baseline-contact", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := s.RecordContact(state.Contact{Customer: "base", Action: "a", Channel: "web", At: t0.Add(time.Duration(i) * time.Second)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("merge", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			i := mergeSeq.Add(1)
			cookie, crm := fmt.Sprintf("ck-%d", i), fmt.Sprintf("c%d", i)
			fill(state.AnonymousID("cookie:" + cookie))
			fill(crm)
			b.StartTimer()
			l, err := x.Identify(b.Context(), map[string]string{"cookie": cookie, "crm_id": crm}, t0.Add(time.Hour), "")
			if err != nil || len(l.Receipts) != 1 {
				b.Fatal(l, err)
			}
		}
	})
	// An unmerge of such a merge after 20 writes, half by the cookie
	// (replayed onto its profile) and half by the crm id.
	b.Run("unmerge", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			i := mergeSeq.Add(1)
			cookie, crm := fmt.Sprintf("ck-%d", i), fmt.Sprintf("c%d", i)
			fill(state.AnonymousID("cookie:" + cookie))
			fill(crm)
			l, err := x.Identify(b.Context(), map[string]string{"cookie": cookie, "crm_id": crm}, t0.Add(time.Hour), "")
			if err != nil || len(l.Receipts) != 1 {
				b.Fatal(l, err)
			}
			for k := range 20 {
				via := "crm_id:" + crm
				if k%2 == 0 {
					via = "cookie:" + cookie
				}
				if err := x.Stitched().RecordContact(state.Contact{Customer: crm, Action: "a", Channel: "web", At: t0.Add(2 * time.Hour), Via: via}); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			if _, err := x.Unmerge(b.Context(), l.Receipts[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
