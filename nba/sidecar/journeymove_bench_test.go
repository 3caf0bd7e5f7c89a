package sidecar

import (
	"fmt"
	"sync/atomic"
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
// memory, loopback). Each customer is decided once in the timed loop, by
// one caller, or by 8 per core ("parallel": the embedded log's group
// commit then shares an fsync between the moves of concurrent decisions).
func BenchmarkDecideJourneyStep(b *testing.B) {
	for _, tc := range []struct {
		name                  string
		step, redis, parallel bool
	}{
		{"embedded/nostep", false, false, false}, {"embedded/step", true, false, false},
		{"redis/nostep", false, true, false}, {"redis/step", true, true, false},
		{"embedded/parallel/nostep", false, false, true}, {"embedded/parallel/step", true, false, true},
		{"redis/parallel/nostep", false, true, true}, {"redis/parallel/step", true, true, true},
	} {
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
			var next, steps atomic.Int64
			run := func() error {
				ids := server.NewDecisionIDs()
				var resp server.DecideResponse
				for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
					server.ResetResponse(&resp)
					req := server.DecideRequest{DecisionID: ids.Next(), CustomerID: customers[i], Channel: "push", Limit: 3}
					if err := s.Decide(&req, &resp); err != nil {
						return err
					}
					for _, a := range resp.Actions {
						if a.ID == "cart_reminder_1" {
							steps.Add(1)
						}
					}
				}
				return nil
			}
			b.ReportAllocs()
			b.ResetTimer()
			if !tc.parallel {
				if err := run(); err != nil {
					b.Fatal(err)
				}
			} else {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						// Each goroutine takes customers until all b.N are decided.
						if err := run(); err != nil {
							b.Error(err)
						}
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(steps.Load())/float64(b.N), "steps/op")
		})
	}
}
