package model_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"nba/bench/bundlegen"
	"nba/model"
)

// BenchmarkCandidateScoring scores one decision's candidates with the
// benchmark bundle's model (200 trees of depth 6 over 32 customer and 8
// action features; and the same with depth-8 trees, whose masks take four
// words): a customer's row with 1, 15 or 50 actions' features,
// through model.PredictRows (the rows built as the engine builds them:
// a copy of the customer's part plus the action's values, inside the timed
// loop) and through a Plan with one Variant per action. The two alternate op
// by op, so that both see the same machine load, and each op is timed: the
// metrics are the medians per decision of each and their ratio (ns/op is
// the mean of both). 64 customers and random actions are cycled through.
// With cold=true, 8 MiB of other memory is written before every op
// (untimed), as the HTTP stack and other requests do to the caches of a
// loaded server: the model's tables are then read from memory or L3.
func BenchmarkCandidateScoring(b *testing.B) {
	for _, depth := range []int{6, 8} {
		for _, cold := range []bool{false, true} {
			b.Run("depth="+strconv.Itoa(depth)+"/cold="+strconv.FormatBool(cold), func(b *testing.B) { benchCandidateScoring(b, depth, cold) })
		}
	}
}

func benchCandidateScoring(b *testing.B, depth int, cold bool) {
	var evict []uint64
	if cold {
		evict = make([]uint64, 1<<20)
	}
	bg, err := bundlegen.Generate(bundlegen.Config{Customers: 1000, Depth: depth})
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Parse("propensity.json", bg.Model)
	if err != nil {
		b.Fatal(err)
	}
	e := m.(*model.Ensemble)
	nf, na := len(e.Features()), bg.Config.ActionFeatures
	varying := make([]int, na)
	for j := range varying {
		varying[j] = nf - na + j
	}
	p, err := e.NewPlan(varying)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	const nActions, nCustomers = 200, 64
	acts := make([][]float64, nActions)
	vars := make([]*model.Variant, nActions)
	for a := range acts {
		acts[a] = make([]float64, na)
		for j := range acts[a] {
			acts[a][j] = math.Round(r.Float64()*1000) / 1000 // as the catalog writes them
		}
		if vars[a], err = p.Variant(acts[a]); err != nil {
			b.Fatal(err)
		}
	}
	custs := make([][]float64, nCustomers)
	for c := range custs {
		custs[c] = make([]float64, nf)
		for f := range nf - na {
			custs[c][f] = bg.Columns[f][c]
		}
		for f := nf - na; f < nf; f++ {
			custs[c][f] = math.NaN()
		}
	}
	for _, k := range []int{1, 15, 50} {
		picks := make([][]int, nCustomers) // the actions of each decision
		for c := range picks {
			picks[c] = r.Perm(nActions)[:k]
		}
		rows := make([]float64, k*nf)
		out := make([]float64, k)
		vs := make([]*model.Variant, k)
		var s model.PlanScratch
		b.Run("candidates="+strconv.Itoa(k), func(b *testing.B) {
			lat := [2][]time.Duration{make([]time.Duration, 0, b.N/2+1), make([]time.Duration, 0, b.N/2+1)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := (i / 2) % nCustomers
				for j := range evict {
					evict[j] += uint64(i)
				}
				t0 := time.Now()
				if i&1 == 0 {
					for n, a := range picks[c] {
						row := rows[n*nf : (n+1)*nf]
						copy(row, custs[c])
						copy(row[nf-na:], acts[a])
					}
					model.PredictRows(e, rows, k, out, false)
				} else {
					for n, a := range picks[c] {
						vs[n] = vars[a]
					}
					p.Score(custs[c], vs, out, &s)
				}
				lat[i&1] = append(lat[i&1], time.Since(t0))
			}
			b.StopTimer()
			if len(lat[1]) == 0 {
				return
			}
			med := func(l []time.Duration) float64 {
				slices.Sort(l)
				return float64(l[len(l)/2].Nanoseconds()) / 1e3
			}
			r, q := med(lat[0]), med(lat[1])
			b.ReportMetric(r, "rows-p50-µs")
			b.ReportMetric(q, "plan-p50-µs")
			b.ReportMetric(r/q, "speedup")
		})
	}
}
