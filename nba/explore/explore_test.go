package explore

import (
	"fmt"
	"math"
	"testing"
)

func mustPolicy(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// frequencies runs n seeded decisions and returns how often each candidate was
// shown in each slot, and the mean logged Prob per (slot, candidate).
func frequencies(t *testing.T, p *Policy, in Input, k, n int) (freq, meanProb [][]float64) {
	t.Helper()
	cands := len(in.Scores) + len(in.Means)
	freq, meanProb = make([][]float64, k), make([][]float64, k)
	for j := range k {
		freq[j], meanProb[j] = make([]float64, cands), make([]float64, cands)
	}
	s := p.NewScratch()
	s.Seed(42, 7)
	var out []Choice
	for range n {
		var err error
		out, err = p.Choose(s, in, k, out)
		if err != nil || len(out) != k {
			t.Fatalf("choose: %v, %d choices", err, len(out))
		}
		seen := map[int]bool{}
		for j, c := range out {
			if seen[c.Index] {
				t.Fatalf("candidate %d shown twice", c.Index)
			}
			seen[c.Index] = true
			freq[j][c.Index]++
			meanProb[j][c.Index] += c.Prob
		}
	}
	for j := range k {
		for a := range cands {
			if freq[j][a] > 0 {
				meanProb[j][a] /= freq[j][a]
			}
			freq[j][a] /= float64(n)
		}
	}
	return freq, meanProb
}

// within reports whether an empirical frequency over n trials is within 5
// standard errors (+1/n) of p: with a fixed seed the test is deterministic, and
// the bound is loose enough that any seed passes with overwhelming odds.
func within(freq, p float64, n int) bool {
	return math.Abs(freq-p) <= 5*math.Sqrt(p*(1-p)/float64(n))+1/float64(n)
}

func TestLoggedProbabilitiesMatchFrequencies(t *testing.T) {
	scores := []float64{0.30, 0.10, 0.25, 0.05, 0.28}
	for _, tc := range []struct {
		cfg  Config
		k, n int
	}{
		{Config{Method: None}, 3, 1000},
		{Config{Method: Epsilon, Epsilon: 0.2}, 3, 60000},
		{Config{Method: Epsilon, Epsilon: 1}, 2, 60000},
		{Config{Method: Softmax, Temperature: 0.05}, 1, 60000},
		{Config{Method: Softmax, Temperature: 0.1, Draws: 20}, 4, 30000},
	} {
		n := tc.n
		t.Run(fmt.Sprintf("%s/k=%d", tc.cfg.Method, tc.k), func(t *testing.T) {
			p := mustPolicy(t, tc.cfg)
			freq, prob := frequencies(t, p, Input{Scores: scores}, tc.k, n)
			for j := range tc.k {
				for a := range scores {
					if freq[j][a] == 0 {
						continue
					}
					tol := 0.0
					if j >= 2 && tc.cfg.Method == Softmax {
						// Monte-Carlo slots: the mean of the estimates is
						// (1 + Draws·p)/(Draws+1).
						d := float64(p.cfg.Draws)
						want := (1 + d*freq[j][a]) / (d + 1)
						tol = 5*math.Sqrt(want*(1-want)/(d*freq[j][a]*float64(n))) + 5*math.Sqrt(freq[j][a]/float64(n))
						if math.Abs(prob[j][a]-want) > tol {
							t.Errorf("slot %d candidate %d: mean estimate %.4f, want %.4f ± %.4f", j, a, prob[j][a], want, tol)
						}
						continue
					}
					if !within(freq[j][a], prob[j][a], n) {
						t.Errorf("slot %d candidate %d: shown with frequency %.4f, logged probability %.4f", j, a, freq[j][a], prob[j][a])
					}
				}
				// Every candidate with a positive logged probability must
				// appear; check the logged marginals of a slot sum to 1.
				sum := 0.0
				for a := range scores {
					sum += freq[j][a]
				}
				if math.Abs(sum-1) > 1e-9 {
					t.Errorf("slot %d: frequencies sum to %g", j, sum)
				}
			}
		})
	}
}

func TestEpsilonExactProbabilities(t *testing.T) {
	p := mustPolicy(t, Config{Method: Epsilon, Epsilon: 0.3})
	s := p.NewScratch()
	scores := []float64{1, 3, 2, math.NaN()}
	for range 100 {
		out, _ := p.Choose(s, Input{Scores: scores}, 2, nil)
		greedy := []int{1, 2}
		for j, c := range out {
			want := 0.3 / 4
			if c.Index == greedy[j] {
				want += 0.7
			}
			if math.Abs(c.Prob-want) > 1e-15 || c.Samples != 0 {
				t.Fatalf("slot %d candidate %d: prob %g (samples %d), want exact %g", j, c.Index, c.Prob, c.Samples, want)
			}
		}
	}
}

func TestNoneOrder(t *testing.T) {
	p := mustPolicy(t, Config{Method: None})
	s := p.NewScratch()
	f := func(scores []float64, k int, want ...int) {
		t.Helper()
		out, err := p.Choose(s, Input{Scores: scores}, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := []int{}
		for _, c := range out {
			got = append(got, c.Index)
			if c.Prob != 1 {
				t.Errorf("prob %g, want 1", c.Prob)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("top-%d of %v = %v, want %v", k, scores, got, want)
		}
	}
	f([]float64{1, 5, 3}, 2, 1, 2)
	f([]float64{2, 2, 2}, 3, 0, 1, 2)
	f([]float64{math.NaN(), 1, math.Inf(-1)}, 3, 1, 0, 2)
	f([]float64{1, 2}, 5, 1, 0)
	f(nil, 2)
	f([]float64{1}, 0)
}

func TestThompsonProbabilities(t *testing.T) {
	p := mustPolicy(t, Config{Method: Thompson, Draws: 100})
	for name, in := range map[string]Input{
		"contenders": {
			Means:     []float64{-2, -1.8, -2.5, -1.5},
			Variances: []float64{0.5, 0.2, 1.5, 0.01},
			Values:    []float64{1, 1, 1, 0.9},
		},
		// Candidates 3 and 4 are 8 sd behind and skipped by the re-runs.
		"pruned": {
			Means:     []float64{-1, -1.1, -1.3, -6, -7},
			Variances: []float64{0.05, 0.02, 0.3, 0.05, 0.01},
		},
	} {
		t.Run(name, func(t *testing.T) {
			const n = 10000
			freq, prob := frequencies(t, p, in, 2, n)
			d := float64(p.cfg.Draws)
			for j := range 2 {
				for a := range in.Means {
					f := freq[j][a]
					if f == 0 {
						continue
					}
					want := (1 + d*f) / (d + 1)
					tol := 5*math.Sqrt(want*(1-want)/(d*f*n)) + 5*d/(d+1)*math.Sqrt(f*(1-f)/n)
					if math.Abs(prob[j][a]-want) > tol {
						t.Errorf("slot %d candidate %d: mean estimate %.4f, frequency %.4f (want %.4f ± %.4f)", j, a, prob[j][a], f, want, tol)
					}
				}
			}
		})
	}
	// A certain, dominant candidate is always first with estimate 1.
	out, _ := p.Choose(p.NewScratch(), Input{Means: []float64{5, -5}, Variances: []float64{0, 0}}, 1, nil)
	if out[0].Index != 0 || out[0].Prob != 1 || out[0].Samples != 101 {
		t.Errorf("deterministic case: %+v", out[0])
	}
}

func TestDeterministicGivenSeed(t *testing.T) {
	p := mustPolicy(t, Config{Method: Thompson})
	in := Input{Means: []float64{0, 0, 0, 0}, Variances: []float64{1, 1, 1, 1}}
	run := func() string {
		s := p.NewScratch()
		s.Seed(9, 9)
		var r string
		for range 20 {
			out, _ := p.Choose(s, in, 2, nil)
			r += fmt.Sprint(out)
		}
		return r
	}
	if run() != run() {
		t.Error("same seed, different choices")
	}
}

func TestConfigAndInputErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"epsilon 0":     {Method: Epsilon},
		"epsilon > 1":   {Method: Epsilon, Epsilon: 1.5},
		"temperature":   {Method: Softmax},
		"method":        {Method: 9},
		"slots":         {MaxSlots: 65},
		"negative draw": {Draws: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
	if m, err := ParseMethod("softmax"); err != nil || m != Softmax {
		t.Errorf("ParseMethod(softmax) = %v, %v", m, err)
	}
	if _, err := ParseMethod("greedy"); err == nil {
		t.Error("unknown method parsed")
	}
	p := mustPolicy(t, Config{Method: Thompson, MaxCandidates: 2, MaxSlots: 1})
	s := p.NewScratch()
	if _, err := p.Choose(s, Input{Means: []float64{0, 0, 0}, Variances: []float64{1, 1, 1}}, 1, nil); err != ErrTooManyCandidates {
		t.Errorf("3 candidates over a limit of 2: %v", err)
	}
	if _, err := p.Choose(s, Input{Means: []float64{0}, Variances: []float64{1}}, 2, nil); err != ErrTooManySlots {
		t.Errorf("2 slots over a limit of 1: %v", err)
	}
	if _, err := p.Choose(s, Input{Means: []float64{0}}, 1, nil); err != ErrInput {
		t.Errorf("missing variances: %v", err)
	}
}

func TestChooseAllocs(t *testing.T) {
	scores := make([]float64, 50)
	vars := make([]float64, 50)
	for i := range scores {
		scores[i] = float64(i%7) / 10
		vars[i] = 0.1
	}
	for _, cfg := range []Config{
		{Method: None}, {Method: Epsilon, Epsilon: 0.1}, {Method: Softmax, Temperature: 0.1}, {Method: Thompson},
	} {
		p := mustPolicy(t, cfg)
		s := p.NewScratch()
		in := Input{Scores: scores}
		if cfg.Method == Thompson {
			in = Input{Means: scores, Variances: vars}
		}
		out := make([]Choice, 0, 8)
		if n := testing.AllocsPerRun(200, func() { out, _ = p.Choose(s, in, 3, out) }); n != 0 {
			t.Errorf("%s: %.1f allocations per decision, want 0", cfg.Method, n)
		}
	}
}

// BenchmarkChoose ranks 50 candidates as a decision sees them: response
// logits spread over [-4.5, -1] (1% to 27%), most actions with some evidence
// (logit variance 0.05) and every tenth new (variance 1). The none method is
// the baseline.
func BenchmarkChoose(b *testing.B) {
	const n = 50
	scores, means, vars := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		means[i] = -4.5 + 3.5*float64((i*37)%n)/n
		vars[i] = 0.05
		if i%10 == 0 {
			vars[i] = 1
		}
		scores[i] = 1 / (1 + math.Exp(-means[i]))
	}
	for _, cfg := range []Config{
		{Method: None}, {Method: Epsilon, Epsilon: 0.1}, {Method: Softmax, Temperature: 0.02}, {Method: Thompson, Draws: 100},
	} {
		for _, k := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/k=%d", cfg.Method, k), func(b *testing.B) {
				p := mustPolicy(b, cfg)
				s := p.NewScratch()
				in := Input{Scores: scores}
				if cfg.Method == Thompson {
					in = Input{Means: means, Variances: vars}
				}
				out := make([]Choice, 0, 8)
				b.ReportAllocs()
				for b.Loop() {
					out, _ = p.Choose(s, in, k, out)
				}
			})
		}
	}
}

// TestDrawnExplainsTheOrder: the shown slate is exactly the k best of the
// deciding draw Drawn reports (thompson: value·σ(z) of the drawn logit;
// softmax: the perturbed score), in order, so an explanation built from
// Drawn accounts for every candidate the draw put above a better mean.
func TestDrawnExplainsTheOrder(t *testing.T) {
	const n, k = 12, 3
	scores, vars, values := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		scores[i] = float64((i*5)%n) / 4
		vars[i] = 2
		values[i] = 1 + float64(i%3)
	}
	for _, tc := range []struct {
		cfg Config
		in  Input
		key func(i int, d float64) float64
	}{
		{Config{Method: Thompson}, Input{Means: scores, Variances: vars, Values: values}, func(i int, z float64) float64 { return values[i] * sigmoid(z) }},
		{Config{Method: Thompson}, Input{Means: scores, Variances: vars}, func(_ int, z float64) float64 { return z }},
		{Config{Method: Softmax, Temperature: 2}, Input{Scores: scores}, func(_ int, d float64) float64 { return d }},
	} {
		t.Run(tc.cfg.Method.String(), func(t *testing.T) {
			p := mustPolicy(t, tc.cfg)
			s := p.NewScratch()
			best := 0 // the best candidate at its mean
			for i := range n {
				if tc.key(i, scores[i]) > tc.key(best, scores[best]) {
					best = i
				}
			}
			reordered := 0
			for seed := range uint64(200) {
				s.Seed(seed+1, 0)
				out, err := p.Choose(s, tc.in, k, nil)
				if err != nil {
					t.Fatal(err)
				}
				shown := map[int]bool{}
				for j, c := range out {
					shown[c.Index] = true
					d := s.Drawn(c.Index)
					if math.IsNaN(d) {
						t.Fatalf("seed %d: slot %d: Drawn is NaN", seed, j)
					}
					if j > 0 && tc.key(c.Index, d) > tc.key(out[j-1].Index, s.Drawn(out[j-1].Index)) {
						t.Fatalf("seed %d: slot %d drew more than slot %d", seed, j, j-1)
					}
				}
				last := tc.key(out[k-1].Index, s.Drawn(out[k-1].Index))
				for i := range n {
					if !shown[i] && tc.key(i, s.Drawn(i)) > last {
						t.Fatalf("seed %d: candidate %d drew %v, above the last shown (%v), and is not shown", seed, i, tc.key(i, s.Drawn(i)), last)
					}
				}
				if out[0].Index != best {
					reordered++
				}
			}
			if reordered == 0 {
				t.Error("the draws never changed the first slot: the test proves nothing")
			}
		})
	}
	t.Run("epsilon and none rank by the scores", func(t *testing.T) {
		for _, cfg := range []Config{{Method: None}, {Method: Epsilon, Epsilon: 0.5}} {
			p := mustPolicy(t, cfg)
			s := p.NewScratch()
			random := 0
			for seed := range uint64(100) {
				s.Seed(seed+1, 0)
				out, _ := p.Choose(s, Input{Scores: scores}, k, nil)
				if !math.IsNaN(s.Drawn(out[0].Index)) {
					t.Fatalf("%s: Drawn %v, want NaN", cfg.Method, s.Drawn(out[0].Index))
				}
				if s.RandomSlate() {
					random++
					continue
				}
				var greedy [k]int
				topK(scores, k, greedy[:])
				for j, c := range out {
					if c.Index != greedy[j] {
						t.Fatalf("%s: not a random slate, yet slot %d is %d, not the greedy %d", cfg.Method, j, c.Index, greedy[j])
					}
				}
			}
			if cfg.Method == None && random != 0 || cfg.Method == Epsilon && (random < 25 || random > 75) {
				t.Errorf("%s: %d random slates of 100", cfg.Method, random)
			}
		}
	})
}
