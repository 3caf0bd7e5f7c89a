package embedded

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"nba/state"
	"nba/state/wal"
)

// benchStore fills a store with customers whose state is realistic: 100
// contacts over 30 days across 20 actions, 4 groups and 3 channels, a few
// overlay fields and journeys.
func benchStore(b *testing.B, customers int) (*Store, time.Time) {
	s, err := Open(state.Config{Mappings: testMappings(b), WAL: wal.Config{Dir: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	channels := []string{"web", "email", "app"}
	var batch []state.Contact
	for c := range customers {
		id := fmt.Sprintf("cust-%07d", c)
		for i := range 100 {
			a := (c + i*7) % 20
			batch = append(batch, state.Contact{Customer: id, Action: fmt.Sprintf("act-%02d", a), Group: fmt.Sprintf("grp-%d", a%4),
				Channel: channels[i%3], Outcome: state.Outcome(i % 3), At: t0.Add(time.Duration(i) * 7 * time.Hour)})
		}
		if len(batch) >= 5000 {
			if err := s.RecordContact(batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
		s.ApplyEvent(state.Event{Customer: id, Type: "purchase", At: t0, Attrs: map[string]any{"amount": 10}})
		s.SetJourney(state.JourneyUpdate{Customer: id, Journey: "onboarding", Step: 2, At: t0})
	}
	if err := s.RecordContact(batch...); err != nil {
		b.Fatal(err)
	}
	return s, t0.Add(700 * time.Hour)
}

// BenchmarkRead measures the engine's read path: View, then the cap-window
// count of one key (as a contact policy evaluates it), against the naive
// baseline that scans the kept history.
func BenchmarkRead(b *testing.B) {
	s, now := benchStore(b, 200)
	ids := make([][]byte, 200)
	for i := range ids {
		ids[i] = fmt.Appendf(nil, "cust-%07d", i)
	}
	var v state.View
	b.Run("View", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.View(ids[i%len(ids)], &v)
			i++
		}
	})
	s.View(ids[7], &v)
	for _, w := range []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour} {
		b.Run(fmt.Sprintf("Count/window=%v", w), func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n += v.Count(state.KindGroup, "grp-1", state.Impression, w, now)
			}
		})
		b.Run(fmt.Sprintf("NaiveScan/window=%v", w), func(b *testing.B) {
			b.ReportAllocs()
			hist := v.History(nil, v.HistoryLen())
			start := now.Add(-w)
			n := 0
			for b.Loop() {
				for _, c := range hist {
					if c.Group == "grp-1" && c.Outcome == state.Impression && c.At.After(start) && !c.At.After(now) {
						n++
					}
				}
			}
		})
	}
	b.Run("ViewAndTenCounts", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.View(ids[i%len(ids)], &v)
			for a := range 10 {
				v.Count(state.KindAction, actionNames[a], state.Impression, 7*24*time.Hour, now)
			}
			i++
		}
	})
}

var actionNames = func() (n [20]string) {
	for i := range n {
		n[i] = fmt.Sprintf("act-%02d", i)
	}
	return
}()

// BenchmarkRecordContact measures durable contact writes with concurrent
// writers (one contact per call, as /v1/feedback sends them).
func BenchmarkRecordContact(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, now := benchStore(b, 10)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range writers {
				n := b.N / writers
				if w == 0 {
					n += b.N % writers
				}
				wg.Go(func() {
					for i := range n {
						c := state.Contact{Customer: fmt.Sprintf("w-%d-%d", w, i%50), Action: actionNames[i%20], Group: "grp-1", Channel: "web", At: now}
						if err := s.RecordContact(c); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
