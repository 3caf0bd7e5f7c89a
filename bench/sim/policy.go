package main

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"nba/nba"
)

// Policies, each a catalog for the real engine.
const (
	polManual  = "manual"
	polRandom  = "random"
	polOffline = "offline"
	polLearner = "learner"
	polGreedy  = "learner_greedy" // learning without exploration (ablation)
	polOracle  = "oracle"
)

var policies = []string{polManual, polRandom, polOffline, polGreedy, polLearner, polOracle}

// families in the marketers' order after birthday (tier 1) and welcome (tier 2).
var familyOrder = []string{"birthday", "welcome", "service", "winback", "loyalty", "upsell", "xsell", "info"}

// catalog writes the policy's catalog. Every policy has the same actions,
// eligibility rules, contact policies (at most 2 impressions of an action in
// 14 days, none for 60 days after a response) and 10% global holdout.
func catalog(pop *population, policy string, draws int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: sim-%s\nholdout: {salt: %q, global: %v}\n", policy, holdoutSalt, holdoutShare)
	switch policy {
	case polOffline, polLearner, polGreedy:
		b.WriteString("defaults: {model: offline}\n")
	case polOracle:
		b.WriteString("defaults: {model: oracle}\n")
	}
	b.WriteString("groups:\n")
	for _, f := range familyOrder {
		fmt.Fprintf(&b, "  - id: %s\n    action_caps: [{max: 2, window: 14d}]\n    suppress: [{after: accept, pause: 60d}]\n", f)
		if policy == polManual {
			b.WriteString("    exclusive: true\n")
		}
	}
	b.WriteString("actions:\n")
	tier := map[string]int{}
	for _, f := range familyOrder {
		for ci := range pop.campaigns {
			if pop.campaigns[ci].family == f {
				tier[pop.campaigns[ci].id] = len(tier) + 1
			}
		}
	}
	for ci := range pop.campaigns {
		c := &pop.campaigns[ci]
		fmt.Fprintf(&b, "  - id: %s\n    group: %s\n    channels: [web]\n", c.id, c.family)
		if c.rule != "" {
			fmt.Fprintf(&b, "    rules: {eligible: [%q]}\n", c.rule)
		}
		switch policy {
		case polManual:
			// Birthday first, then the welcome steps, then the fixed
			// campaign order: one tier per campaign.
			fmt.Fprintf(&b, "    tier: %d\n", tier[c.id])
		case polOffline, polLearner, polGreedy, polOracle:
			fmt.Fprintf(&b, "    features: {act: %d}\n", ci)
		}
	}
	switch policy {
	case polRandom:
		b.WriteString("learning:\n  explore:\n    web: {method: epsilon, epsilon: 1}\n")
	case polLearner:
		fmt.Fprintf(&b, "learning:\n  features: [%s]\n  prior_variance: 1\n  explore:\n    web: {method: thompson, draws: %d}\n",
			strings.Join(featNames[:], ", "), draws)
	case polGreedy:
		fmt.Fprintf(&b, "learning:\n  features: [%s]\n  prior_variance: 1\n", strings.Join(featNames[:], ", "))
	}
	return b.String()
}

// scorer is a logistic model over the twelve features and the action's
// "act" index: σ(b[act] + w[act]·x). The oracle has each campaign's true
// weights; the offline model one weight vector per family.
type scorer struct {
	b []float64
	w [][nFeat]float64
	// cat is each campaign's product category (-1 none) and match the
	// weight of the customer's affinity to it (offline model only).
	cat   []int
	match float64
}

var scorerFeatures = append(featNames[:], "act")

// Features implements nba.Scorer.
func (s *scorer) Features() []string { return scorerFeatures }

// NumOutputs implements nba.Scorer.
func (s *scorer) NumOutputs() int { return 1 }

// Predict implements nba.Scorer.
func (s *scorer) Predict(row, out []float64) {
	a := int(row[nFeat])
	if a < 0 || a >= len(s.b) {
		out[0] = math.NaN()
		return
	}
	z := s.b[a]
	w := &s.w[a]
	for i := range nFeat {
		if v := row[i]; v == v {
			z += w[i] * v
		}
	}
	if s.cat != nil && s.cat[a] >= 0 {
		if v := row[fAff0+s.cat[a]]; v == v {
			z += s.match * v
		}
	}
	out[0] = sigmoid(z)
}

func oracleScorer(pop *population) *scorer {
	s := &scorer{}
	for _, c := range pop.campaigns {
		s.b = append(s.b, c.b)
		s.w = append(s.w, c.w)
	}
	return s
}

// trainOffline fits the offline model on day-0 data: n visits logged under
// the manual priorities with 30% uniformly random decisions (so the sample
// over-represents the top-tier campaigns), with responses drawn from last
// quarter's truth (every campaign's intercept moved by N(0, 0.6²)). The
// model is what a modeller short of data per campaign would fit: a logistic
// regression with one intercept per campaign, one weight vector per family
// of campaigns, and the customer's affinity to a cross-sell's category as
// an engineered feature (ridge 1 except on a global intercept, so rarely
// logged campaigns shrink to the average; Newton's method). It cannot
// represent feature effects that differ between campaigns of one family
// (beyond the category match), and it inherits the drift.
func trainOffline(pop *population, n int) (*scorer, error) {
	cat, err := nba.CompileCatalog("train.yaml", []byte(catalog(pop, polManual, 0)+
		"learning:\n  explore:\n    web: {method: epsilon, epsilon: 0.3}\n"), nba.Options{Schema: schema})
	if err != nil {
		return nil, err
	}
	st := newState(pop)
	eng, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: st})
	if err != nil {
		return nil, err
	}
	rng := newRand(pop.seed, 0x7a1)
	old := make([]float64, len(pop.campaigns))
	for i := range old {
		old[i] = pop.campaigns[i].b + 0.6*rng.NormFloat64()
	}
	type obs struct {
		a int
		x [nFeat]float64
		y float64
	}
	var data []obs
	var d nba.Decision
	for len(data) < n {
		i := rng.IntN(len(pop.customers))
		if !st.joined(i) {
			continue
		}
		if err := eng.Decide(&nba.Request{Customer: pop.customers[i].id, Channel: "web", Now: st.now(), Seed: rng.Uint64() | 1}, &d); err != nil {
			return nil, err
		}
		if len(d.Actions) == 0 {
			continue
		}
		a := -1 - pop.byID[d.Actions[0].Action.ID]
		var o obs
		o.a = a
		st.features(i, &o.x)
		c := pop.campaigns[a]
		c.b = old[a]
		if rng.Float64() < c.prob(&o.x) {
			o.y = 1
		}
		data = append(data, o)
	}
	// Newton's method on the ridge-penalised log-likelihood; parameters:
	// intercepts (one per campaign), then the shared weights.
	na := len(pop.campaigns)
	famOf := make([]int, na)
	for a := range famOf {
		famOf[a] = slices.Index(familyOrder, pop.campaigns[a].family)
	}
	catOf := make([]int, na)
	for a := range catOf {
		catOf[a] = -1
		for ci, c := range categories {
			if pop.campaigns[a].family == "xsell" && strings.HasPrefix(pop.campaigns[a].id, "xsell_"+c+"_") {
				catOf[a] = ci
			}
		}
	}
	// + the affinity-match weight and a global intercept (not penalised)
	dim := na + len(familyOrder)*nFeat + 2
	match, glob := dim-2, dim-1
	theta := make([]float64, dim)
	idx := make([]int, 3+nFeat)
	val := make([]float64, 3+nFeat)
	for range 25 {
		g := make([]float64, dim)
		h := make([]float64, dim*dim)
		for j := range dim {
			g[j] = theta[j] // ridge 1
			h[j*dim+j] = 1
		}
		g[glob], h[glob*dim+glob] = 1e-6*theta[glob], 1e-6
		for _, o := range data {
			idx[0], val[0] = o.a, 1
			idx[1+nFeat], val[1+nFeat] = glob, 1
			z := theta[o.a] + theta[glob]
			idx[2+nFeat], val[2+nFeat] = match, 0
			if c := catOf[o.a]; c >= 0 {
				val[2+nFeat] = o.x[fAff0+c]
				z += theta[match] * val[2+nFeat]
			}
			for k := range nFeat {
				j := na + famOf[o.a]*nFeat + k
				idx[k+1], val[k+1] = j, o.x[k]
				z += theta[j] * o.x[k]
			}
			p := sigmoid(z)
			r, wt := p-o.y, p*(1-p)
			for u := range idx {
				g[idx[u]] += r * val[u]
				for v := range idx {
					h[idx[u]*dim+idx[v]] += wt * val[u] * val[v]
				}
			}
		}
		step, err := solve(h, g, dim)
		if err != nil {
			return nil, err
		}
		for j := range theta {
			theta[j] -= step[j]
		}
	}
	s := &scorer{cat: catOf, match: theta[match]}
	for a := range na {
		var w [nFeat]float64
		copy(w[:], theta[na+famOf[a]*nFeat:])
		s.b = append(s.b, theta[a]+theta[glob])
		s.w = append(s.w, w)
	}
	return s, nil
}

// solve solves the symmetric positive definite system h·x = g by Cholesky.
func solve(h, g []float64, n int) ([]float64, error) {
	l := make([]float64, n*n)
	for i := range n {
		for j := 0; j <= i; j++ {
			s := h[i*n+j]
			for k := range j {
				s -= l[i*n+k] * l[j*n+k]
			}
			if i == j {
				if s <= 0 {
					return nil, fmt.Errorf("cannot fit offline model: Hessian not positive definite at %d", i)
				}
				l[i*n+i] = math.Sqrt(s)
			} else {
				l[i*n+j] = s / l[j*n+j]
			}
		}
	}
	y := make([]float64, n)
	for i := range n {
		s := g[i]
		for k := range i {
			s -= l[i*n+k] * y[k]
		}
		y[i] = s / l[i*n+i]
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < n; k++ {
			s -= l[k*n+i] * x[k]
		}
		x[i] = s / l[i*n+i]
	}
	return x, nil
}
