package identitytest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"nba/state"
)

var mergeSeq atomic.Int64

// BenchMerge measures, on b's backend, a link that merges two profiles of
// 100 contacts and 2 journeys each ("merge") and its unmerge ("unmerge"),
// beside one contact written
// ("baseline-contact": the cheapest durable write), so the ratio is read
// in one run.
func BenchMerge(b *testing.B, backend state.IdentityBackend) {
	x := state.NewIdentities(backend, Key)
	if err := x.Configure(&state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true}, "cookie": {}}}); err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	fill := func(c string) {
		for k := range 100 {
			if err := backend.RecordContact(state.Contact{Customer: c, Action: fmt.Sprintf("a%d", k%10), Group: "g", Channel: "web", At: t0.Add(time.Duration(k) * time.Minute)}); err != nil {
				b.Fatal(err)
			}
		}
		for k := range 2 {
			if err := backend.SetJourney(state.JourneyUpdate{Customer: c, Journey: fmt.Sprintf("j%d", k), Step: k, At: t0}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("baseline-contact", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := backend.RecordContact(state.Contact{Customer: "base", Action: "a", Channel: "web", At: t0.Add(time.Duration(i) * time.Second)}); err != nil {
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
