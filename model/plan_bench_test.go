package model_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"nba/bench/bundlegen"
	"nba/model"
)

// BenchmarkCandidateScoring scores one decision's candidates with the
// benchmark bundle's model (200 trees of depth 6 over 32 customer and 8
// action features): a customer's row with 1, 15 or 50 actions' features,
// through model.PredictRows (the rows built as the engine builds them:
// a copy of the customer's part plus the action's values, inside the timed
// loop) and through a Plan with one Variant per action. Each op is one
// decision; 64 customers and random actions are cycled through.
func BenchmarkCandidateScoring(b *testing.B) {
	bg, err := bundlegen.Generate(bundlegen.Config{Customers: 1000})
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
		b.Run("rows/"+strconv.Itoa(k), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c := i % nCustomers
				for n, a := range picks[c] {
					row := rows[n*nf : (n+1)*nf]
					copy(row, custs[c])
					copy(row[nf-na:], acts[a])
				}
				model.PredictRows(e, rows, k, out, false)
			}
		})
		var s model.PlanScratch
		b.Run("plan/"+strconv.Itoa(k), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c := i % nCustomers
				for n, a := range picks[c] {
					vs[n] = vars[a]
				}
				p.Score(custs[c], vs, out, &s)
			}
		})
	}
}
