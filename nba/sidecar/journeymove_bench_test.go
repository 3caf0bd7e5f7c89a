package sidecar

import (
	"fmt"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

// BenchmarkDecideJourneyStep compares, in one run, a push decision that
// gives the cart journey's first step ("step": its move written, durably
// and conditionally, before the answer) with the same decision for the
// same kind of customer one step later, when the next step is not due
// ("nostep": nothing written), on the embedded state and on Redis (in
// memory, loopback). Each customer is decided once in the timed loop.
func BenchmarkDecideJourneyStep(b *testing.B) {
	for _, tc := range []struct {
		name        string
		step, redis bool
	}{{"embedded/nostep", false, false}, {"embedded/step", true, false}, {"redis/nostep", false, true}, {"redis/step", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			url := ""
			if tc.redis {
				url = redistest.Start(b, redistest.Options{}).URL
			}
			now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
			s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: b.TempDir(), StateRedis: url, StateRedisAllowVolatile: true,
				Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var resp server.DecideResponse
			customers := make([]string, b.N)
			for i := range customers {
				c := fmt.Sprintf("j%07d", i)
				customers[i] = c
				if err := s.Event(&server.Event{CustomerID: c, Type: "cart_abandoned", TS: now.Add(-time.Hour),
					Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 80}}}); err != nil {
					b.Fatal(err)
				}
				if !tc.step {
					server.ResetResponse(&resp)
					if err := s.Decide(&server.DecideRequest{DecisionID: "first", CustomerID: c, Channel: "push", Limit: 3}, &resp); err != nil {
						b.Fatal(err)
					}
				}
			}
			ids := server.NewDecisionIDs()
			steps := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				server.ResetResponse(&resp)
				req := server.DecideRequest{DecisionID: ids.Next(), CustomerID: customers[i], Channel: "push", Limit: 3}
				if err := s.Decide(&req, &resp); err != nil {
					b.Fatal(err)
				}
				for _, a := range resp.Actions {
					if a.ID == "cart_reminder_1" {
						steps++
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(steps)/float64(b.N), "steps/op")
		})
	}
}
