package sidecar

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"nba/nba/server"
	"nba/state/redis/redistest"
)

// BenchmarkDecideExact compares, in one run, an e-mail decision under the
// demo's daily limit as a plain cap ("counted") with the same decision
// under it as an exact cap ("reserving": one reservation written, durably,
// per decision), on the embedded state and on Redis (in memory, loopback).
// The clock moves a day on between uses of a customer, so every
// reserving decision reserves.
func BenchmarkDecideExact(b *testing.B) {
	for _, tc := range []struct {
		name  string
		exact bool
		redis bool
	}{{"embedded/counted", false, false}, {"embedded/reserving", true, false}, {"redis/counted", false, true}, {"redis/reserving", true, true}} {
		exact := tc.exact
		b.Run(tc.name, func(b *testing.B) {
			url := ""
			if tc.redis {
				url = redistest.Start(b, redistest.Options{}).URL
			}
			var day atomic.Int64
			base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
			fsys := demoCatalogWith(b, func(c string) string {
				return strings.Replace(c, "- {max: 1, window: 1d}", fmt.Sprintf("- {max: 1, window: 1d, exact: %v}", exact), 1)
			})
			s, err := Open(Config{Bundle: fsys, BundleName: "bench", StateDir: b.TempDir(), StateRedis: url, StateRedisAllowVolatile: true, Now: func() time.Time {
				return base.Add(time.Duration(day.Load()) * 25 * time.Hour)
			}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var customers []string
			var resp server.DecideResponse
			for i := 1; i <= 2000 && len(customers) < 500; i++ {
				c := fmt.Sprintf("c%05d", i)
				server.ResetResponse(&resp)
				if err := s.Decide(&server.DecideRequest{DecisionID: "probe", CustomerID: c, Channel: "email", Limit: 1, DryRun: true}, &resp); err != nil {
					b.Fatal(err)
				}
				if len(resp.Actions) > 0 {
					customers = append(customers, c)
				}
			}
			ids := server.NewDecisionIDs()
			given := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i > 0 && i%len(customers) == 0 {
					day.Add(1)
				}
				server.ResetResponse(&resp)
				req := server.DecideRequest{DecisionID: ids.Next(), CustomerID: customers[i%len(customers)], Channel: "email", Limit: 1}
				if err := s.Decide(&req, &resp); err != nil {
					b.Fatal(err)
				}
				given += len(resp.Actions)
			}
			b.ReportMetric(float64(given)/float64(b.N), "given/op")
			b.ReportMetric(float64(s.resv.made.Load())/float64(b.N), "reserved/op")
		})
	}
}
