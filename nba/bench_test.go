package nba_test

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"nba/bench/bundlegen"
	"nba/model"
	"nba/nba"
)

// benchCustomers sizes the benchmark bundle: NBA_BENCH_CUSTOMERS, default
// 1,000,000.
func benchCustomers() int {
	if n, err := strconv.Atoi(os.Getenv("NBA_BENCH_CUSTOMERS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

type benchSetup struct {
	b    *bundlegen.Bundle
	m    model.Model
	e    *nba.Engine
	free *nba.Engine // the same catalog with a model that costs nothing
	reqs []nba.Request
}

// constScorer has the model's inputs and predicts a constant: the decision
// path without the model's cost.
type constScorer struct{ feats []string }

func (c constScorer) Features() []string         { return c.feats }
func (c constScorer) NumOutputs() int            { return 1 }
func (c constScorer) Predict(row, out []float64) { out[0] = 0.5 }

var (
	benchOnce sync.Once
	bench     benchSetup
	benchErr  error
)

func setup(tb testing.TB) *benchSetup {
	benchOnce.Do(func() {
		b, err := bundlegen.Generate(bundlegen.Config{Customers: benchCustomers()})
		if err != nil {
			benchErr = err
			return
		}
		m, err := model.Parse("propensity.json", b.Model)
		if err != nil {
			benchErr = err
			return
		}
		cat, err := nba.CompileCatalog("catalog.yaml", b.Catalog, nba.Options{Schema: b.Schema,
			Models: map[string]nba.Scorer{b.ModelName: m}})
		if err != nil {
			benchErr = err
			return
		}
		e, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: b.Profiles(), History: b.History()})
		if err != nil {
			benchErr = err
			return
		}
		cat0, err := nba.CompileCatalog("catalog.yaml", b.Catalog, nba.Options{Schema: b.Schema,
			Models: map[string]nba.Scorer{b.ModelName: constScorer{m.Features()}}})
		if err != nil {
			benchErr = err
			return
		}
		free, err := nba.NewEngine(nba.Config{Catalog: cat0, Profiles: b.Profiles(), History: b.History()})
		if err != nil {
			benchErr = err
			return
		}
		r := rand.New(rand.NewPCG(42, 42))
		reqs := make([]nba.Request, 8192)
		for i := range reqs {
			ch := bundlegen.Channels[r.IntN(len(bundlegen.Channels))]
			pl := bundlegen.Placements[ch]
			reqs[i] = nba.Request{Customer: bundlegen.CustomerID(r.IntN(b.Config.Customers)), Channel: ch,
				Placement: pl[r.IntN(len(pl))], Limit: 3, Now: b.Config.Now,
				Context: []nba.ContextValue{{Key: "page", Str: bundlegen.Pages[r.IntN(len(bundlegen.Pages))]},
					{Key: "basket", Num: float64(r.IntN(200))}}}
		}
		bench = benchSetup{b: b, m: m, e: e, free: free, reqs: reqs}
	})
	if benchErr != nil {
		tb.Fatal(benchErr)
	}
	return &bench
}

// BenchmarkDecide measures whole decisions on the synthetic bundle (200
// actions over 4 channels, 200 trees of depth 6 over 40 features) and, in
// the same run, the model scoring alone for as many rows as a decision
// scores on average. Decide reports p50/p99 from per-decision timings.
func BenchmarkDecide(b *testing.B) {
	s := setup(b)
	var d nba.Decision
	for i := range s.reqs { // warm the pool and learn the rows per decision
		if err := s.e.Decide(&s.reqs[i], &d); err != nil {
			b.Fatal(err)
		}
	}
	st := s.e.Stats()
	rowsPerDecision := float64(st.Scored) / float64(st.Decisions)

	for _, c := range []struct {
		name string
		e    *nba.Engine
	}{{"decide", s.e}, {"decide_const_model", s.free}} {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := c.e.Decide(&s.reqs[i%len(s.reqs)], &d); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			reportPercentiles(b, lat)
			b.ReportMetric(rowsPerDecision, "rows/decision")
		})
	}
	// The model alone, scoring as many rows per op as a decision does, from
	// real customer rows, in one batch as Decide does.
	nf := len(s.m.Features())
	per := int(rowsPerDecision + 0.5)
	const distinct = 64
	rows := make([]float64, distinct*per*nf)
	for i := 0; i < distinct*per; i++ {
		row := rows[i*nf : (i+1)*nf]
		na := s.b.Config.ActionFeatures
		for f := range nf - na {
			row[f] = s.b.Columns[f][i]
		}
		for f := nf - na; f < nf; f++ {
			row[f] = float64((i+f)%7) / 7
		}
	}
	out := make([]float64, per)
	b.Run("model_only", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := i % distinct
			t0 := time.Now()
			model.PredictRows(s.m, rows[k*per*nf:(k+1)*per*nf], per, out, false)
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		reportPercentiles(b, lat)
		b.ReportMetric(float64(per), "rows/op")
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p99.9-µs")
}

// TestBenchBundleDecidesWithoutAllocating runs the benchmark's bundle at a
// small size: whole decisions with scoring, caps and history allocate nothing.
func TestBenchBundleDecidesWithoutAllocating(t *testing.T) {
	if nba.RaceEnabled {
		t.Skip("sync.Pool drops objects under the race detector")
	}
	b, err := bundlegen.Generate(bundlegen.Config{Customers: 2000, Trees: 20})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse("propensity.json", b.Model)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := nba.CompileCatalog("catalog.yaml", b.Catalog, nba.Options{Schema: b.Schema, Models: map[string]nba.Scorer{b.ModelName: m}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: b.Profiles(), History: b.History()})
	if err != nil {
		t.Fatal(err)
	}
	var d nba.Decision
	i := 0
	next := func() *nba.Request {
		i++
		ch := bundlegen.Channels[i%4]
		return &nba.Request{Customer: bundlegen.CustomerID(i % 2000), Channel: ch, Placement: bundlegen.Placements[ch][0],
			Limit: 3, Now: b.Config.Now, Context: []nba.ContextValue{{Key: "page", Str: "home"}}}
	}
	reqs := make([]*nba.Request, 4000)
	for k := range reqs {
		reqs[k] = next()
		_ = e.Decide(reqs[k], &d)
	}
	k := 0
	allocs := testing.AllocsPerRun(2000, func() {
		if err := e.Decide(reqs[k%len(reqs)], &d); err != nil {
			t.Fatal(err)
		}
		k++
	})
	if allocs > 0 {
		t.Errorf("Decide allocates %.2f times per call, want 0", allocs)
	}
	if st := e.Stats(); st.Scored == 0 {
		t.Errorf("no candidate reached the model: %+v", st)
	}
}
