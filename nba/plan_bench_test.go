package nba_test

import (
	"slices"
	"testing"
	"time"

	"nba/nba"
)

// BenchmarkDecideScorePlan measures whole decisions on the benchmark bundle
// (as BenchmarkDecide) with the model scored row by row (rows:
// Options.NoScorePlans) and through score plans (plan), in the same run,
// alternating the two engines request by request so that both see the same
// machine load (ns/op is the mean of both).
func BenchmarkDecideScorePlan(b *testing.B) {
	s := setup(b)
	engines := [2]*nba.Engine{}
	for k, noPlans := range []bool{true, false} {
		cat, err := nba.CompileCatalog("catalog.yaml", s.b.Catalog, nba.Options{Schema: s.b.Schema,
			Models: map[string]nba.Scorer{s.b.ModelName: s.m}, NoScorePlans: noPlans})
		if err != nil {
			b.Fatal(err)
		}
		if engines[k], err = nba.NewEngine(nba.Config{Catalog: cat, Profiles: s.b.Profiles(), History: s.b.History()}); err != nil {
			b.Fatal(err)
		}
	}
	var d nba.Decision
	for _, e := range engines { // warm the pools
		for i := range s.reqs {
			if err := e.Decide(&s.reqs[i], &d); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("rows_vs_plan", func(b *testing.B) {
		lat := [2][]time.Duration{make([]time.Duration, 0, b.N/2+1), make([]time.Duration, 0, b.N/2+1)}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := i & 1
			t0 := time.Now()
			if err := engines[k].Decide(&s.reqs[(i/2)%len(s.reqs)], &d); err != nil {
				b.Fatal(err)
			}
			lat[k] = append(lat[k], time.Since(t0))
		}
		b.StopTimer()
		for k, name := range []string{"rows", "plan"} {
			if len(lat[k]) == 0 {
				continue
			}
			slices.Sort(lat[k])
			q := func(p float64) float64 { return float64(lat[k][int(p*float64(len(lat[k])-1))].Nanoseconds()) / 1e3 }
			b.ReportMetric(q(0.50), name+"-p50-µs")
			b.ReportMetric(q(0.99), name+"-p99-µs")
		}
	})
}
