package model

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// onlineData draws (x, offset, y) with y ~ Bernoulli(σ(offset + w·(1,x))).
func onlineData(rng *rand.Rand, w []float64) (x []float64, offset, y float64) {
	x = make([]float64, len(w)-1)
	z := w[0]
	for i := range x {
		x[i] = rng.NormFloat64()
		z += w[i+1] * x[i]
	}
	offset = rng.NormFloat64()
	if rng.Float64() < onlineSigmoid(offset+z) {
		y = 1
	}
	return x, offset, y
}

func newTestOnline(t testing.TB, cfg OnlineConfig) *Online {
	t.Helper()
	o, err := NewOnline(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestOnlineRecoversWeights(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    []float64
		n    int
	}{
		{"correction", []float64{-1, 0.8, -0.5}, 20000},
		{"offset is right", []float64{0, 0, 0}, 20000},
		{"small sample", []float64{0.5, -1, 0}, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newTestOnline(t, OnlineConfig{Features: []string{"a", "b"}, Actions: 3})
			rng := rand.New(rand.NewPCG(1, 2))
			for range tc.n {
				x, off, y := onlineData(rng, tc.w)
				if !o.Update(1, x, off, y) {
					t.Fatal("update rejected")
				}
			}
			p := o.actions[1].Load()
			for i, w := range tc.w {
				sd := 1 / math.Sqrt(p.q[i])
				// The posterior sd shrinks like 1/√n; the sequential Laplace
				// approximation adds a bias of the same order.
				if d := math.Abs(p.m[i] - w); d > 4*sd {
					t.Errorf("weight %d: mean %.4f, want %.4f ± %.4f (4 sd)", i, p.m[i], w, 4*sd)
				}
				if sd > 3/math.Sqrt(float64(tc.n)) {
					t.Errorf("weight %d: sd %.4f does not shrink like 1/√n", i, sd)
				}
			}
			if got := o.Evidence(1); got != float64(tc.n) {
				t.Errorf("evidence %g, want %d", got, tc.n)
			}
			if o.Evidence(0) != 0 || o.actions[0].Load() != nil {
				t.Error("an update of action 1 touched action 0")
			}
		})
	}
}

func TestOnlineOffset(t *testing.T) {
	o := newTestOnline(t, OnlineConfig{Features: []string{"a"}, Actions: 1, PriorVariance: 0.5})
	x := []float64{2}
	// Without data the logit is the offset and the variance the prior's.
	mu, v := o.Logit(0, x, 1.5)
	if mu != 1.5 || math.Abs(v-0.5*(1+4)) > 1e-12 {
		t.Fatalf("prior logit = (%g, %g), want (1.5, 2.5)", mu, v)
	}
	if got, want := o.Mean(0, x, 1.5), onlineSigmoid(1.5/math.Sqrt(1+math.Pi*2.5/8)); math.Abs(got-want) > 1e-12 {
		t.Fatalf("prior mean = %g, want %g", got, want)
	}
	// A positive response moves the mean logit up and the offset still adds.
	o.Update(0, x, 0, 1)
	mu0, _ := o.Logit(0, x, 0)
	mu1, _ := o.Logit(0, x, 3)
	if !(mu0 > 0) || math.Abs(mu1-mu0-3) > 1e-12 {
		t.Fatalf("after update: logit(offset 0) = %g, logit(offset 3) = %g", mu0, mu1)
	}
	// A response the offset already predicts with certainty teaches nothing.
	o2 := newTestOnline(t, OnlineConfig{Features: []string{"a"}, Actions: 1})
	o2.Update(0, x, 40, 1)
	if m, _ := o2.Logit(0, x, 0); math.Abs(m) > 1e-9 {
		t.Fatalf("an expected response moved the logit to %g", m)
	}
}

func TestOnlineDecay(t *testing.T) {
	drift := func(decay float64) (intercept, evidence float64) {
		o := newTestOnline(t, OnlineConfig{Actions: 1, Decay: decay})
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range 10000 {
			w := []float64{1}
			if i >= 5000 {
				w[0] = -1
			}
			x, off, y := onlineData(rng, w)
			o.Update(0, x, off, y)
		}
		m, _ := o.Logit(0, nil, 0)
		return m, o.Evidence(0)
	}
	if m, n := drift(0.01); math.Abs(m+1) > 0.4 || n > 101 {
		t.Errorf("with decay: intercept %.3f (want about -1), evidence %.1f (want ≤ 1/decay)", m, n)
	}
	if m, n := drift(0); math.Abs(m) > 0.3 || n != 10000 {
		t.Errorf("without decay: intercept %.3f (want about the average 0), evidence %.1f", m, n)
	}

	t.Run("half-life", func(t *testing.T) {
		now := time.Unix(1000, 0)
		o := newTestOnline(t, OnlineConfig{Actions: 1, HalfLife: time.Hour, Now: func() time.Time { return now }})
		o.Update(0, nil, 0, 1)
		q1 := o.actions[0].Load().q[0]
		now = now.Add(time.Hour)
		o.Update(0, nil, 0, 1)
		p := o.actions[0].Load()
		if p.n != 1.5 {
			t.Errorf("evidence %g after one half-life and a new observation, want 1.5", p.n)
		}
		// Extra precision halves, then grows by at most 1/4.
		if extra := p.q[0] - 1; extra < (q1-1)/2 || extra > (q1-1)/2+0.25 {
			t.Errorf("extra precision %g, want in [%g, %g]", extra, (q1-1)/2, (q1-1)/2+0.25)
		}
	})
}

func TestOnlineColdStart(t *testing.T) {
	o := newTestOnline(t, OnlineConfig{Actions: 3, NumGroups: 1, Groups: []int{0, 0, -1}, GroupPriorWeight: 0.5})
	rng := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		x, off, y := onlineData(rng, []float64{2})
		o.Update(0, x, off, y)
	}
	m0, v0 := o.Logit(0, nil, 0)
	m1, v1 := o.Logit(1, nil, 0)
	m2, v2 := o.Logit(2, nil, 0)
	if math.Abs(m1-m0) > 1e-9 || !(v1 > v0) || math.Abs(1/v1-1-0.5*(1/v0-1)) > 1e-9 {
		t.Errorf("new action of the group: (%g, %g), want the group mean %g with half its extra precision (%g)", m1, v1, m0, v0)
	}
	if m2 != 0 || v2 != 1 {
		t.Errorf("new action without group: (%g, %g), want the prior (0, 1)", m2, v2)
	}
	if o.Evidence(1) != 0 {
		t.Error("a cold-start action reports evidence")
	}
	// The first update of action 1 starts from the group, not from zero.
	o.Update(1, nil, 0, 0)
	if m, _ := o.Logit(1, nil, 0); !(m > 1) || m >= m1 {
		t.Errorf("after one negative response the cold-start action's logit is %g, want just below %g", m, m1)
	}
}

func TestOnlineSample(t *testing.T) {
	o := newTestOnline(t, OnlineConfig{Features: []string{"a"}, Actions: 1})
	for range 50 {
		o.Update(0, []float64{1}, 0, 1)
	}
	x := []float64{0.5}
	mu, v := o.Logit(0, x, -0.2)
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 40000
	var s, s2 float64
	for range n {
		p := o.Sample(0, x, -0.2, rng)
		z := math.Log(p / (1 - p))
		s += z
		s2 += z * z
	}
	mean, variance := s/n, s2/n-(s/n)*(s/n)
	if math.Abs(mean-mu) > 5*math.Sqrt(v/n) {
		t.Errorf("sampled logit mean %g, want %g", mean, mu)
	}
	if math.Abs(variance/v-1) > 5*math.Sqrt(2.0/n) {
		t.Errorf("sampled logit variance %g, want %g", variance, v)
	}
}

func TestOnlineRejects(t *testing.T) {
	o := newTestOnline(t, OnlineConfig{Features: []string{"a"}, Actions: 2})
	for name, call := range map[string]func() bool{
		"action":     func() bool { return o.Update(2, []float64{1}, 0, 1) },
		"negative":   func() bool { return o.Update(-1, []float64{1}, 0, 1) },
		"features":   func() bool { return o.Update(0, nil, 0, 1) },
		"response":   func() bool { return o.Update(0, []float64{1}, 0, 2) },
		"offset":     func() bool { return o.Update(0, []float64{1}, math.NaN(), 1) },
		"infinite x": func() bool { return o.Update(0, []float64{math.Inf(1)}, 0, 1) },
	} {
		if call() {
			t.Errorf("%s: invalid update accepted", name)
		}
	}
	if acc, rej := o.Updates(); acc != 0 || rej != 6 {
		t.Errorf("counted %d accepted, %d rejected; want 0, 6", acc, rej)
	}
	if !math.IsNaN(o.Mean(5, []float64{1}, 0)) {
		t.Error("Mean of an out-of-range action is not NaN")
	}
	// NaN features are missing: they neither move nor use their weight.
	o.Update(0, []float64{math.NaN()}, 0, 1)
	if p := o.actions[0].Load(); p.m[1] != 0 || p.q[1] != 1 {
		t.Errorf("a missing feature changed its weight: m=%g q=%g", p.m[1], p.q[1])
	}
}

func TestNewOnlineValidates(t *testing.T) {
	for name, cfg := range map[string]OnlineConfig{
		"no actions":        {},
		"duplicate":         {Actions: 1, Features: []string{"a", "a"}},
		"groups length":     {Actions: 2, NumGroups: 1, Groups: []int{0}},
		"group range":       {Actions: 2, NumGroups: 1, Groups: []int{0, 1}},
		"prior variance":    {Actions: 1, PriorVariance: -1},
		"decay":             {Actions: 1, Decay: 1},
		"group weight":      {Actions: 1, GroupPriorWeight: 2},
		"negative halflife": {Actions: 1, HalfLife: -time.Second},
	} {
		if _, err := NewOnline(cfg); err == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

func TestOnlineCheckpoint(t *testing.T) {
	cfg := OnlineConfig{Features: []string{"a", "b"}, Actions: 4, NumGroups: 1, Groups: []int{0, 0, -1, -1}}
	o := newTestOnline(t, cfg)
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 500 {
		x, off, y := onlineData(rng, []float64{0.3, -0.2, 0.1})
		o.Update(i%3, x, off, y)
	}
	data, err := o.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	o2 := newTestOnline(t, cfg)
	if err := o2.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	x := []float64{0.7, -1.1}
	for a := range 4 {
		m1, v1 := o.Logit(a, x, 0.1)
		m2, v2 := o2.Logit(a, x, 0.1)
		if m1 != m2 || v1 != v2 || o.Evidence(a) != o2.Evidence(a) {
			t.Errorf("action %d: restored (%g, %g), want (%g, %g)", a, m2, v2, m1, v1)
		}
	}
	again, _ := o2.MarshalBinary()
	if !bytes.Equal(again, data) {
		t.Error("checkpoint of a restored model differs")
	}

	for name, mutate := range map[string]func([]byte) []byte{
		"flipped bit": func(b []byte) []byte { b[40] ^= 1; return b },
		"truncated":   func(b []byte) []byte { return b[:len(b)-9] },
		"empty":       func(b []byte) []byte { return nil },
	} {
		bad := mutate(append([]byte(nil), data...))
		if err := o2.UnmarshalBinary(bad); err == nil {
			t.Errorf("%s: corrupt checkpoint accepted", name)
		}
	}
	other := newTestOnline(t, OnlineConfig{Features: []string{"a", "c"}, Actions: 4, NumGroups: 1, Groups: cfg.Groups})
	if err := other.UnmarshalBinary(data); err == nil {
		t.Error("checkpoint with other features accepted")
	}
	if m, _ := o2.Logit(0, x, 0); m != func() float64 { m, _ := o.Logit(0, x, 0); return m }() {
		t.Error("a failed load changed the model")
	}
}

func TestOnlineConcurrent(t *testing.T) {
	o := newTestOnline(t, OnlineConfig{Features: []string{"a"}, Actions: 8, NumGroups: 2, Groups: []int{0, 0, 0, 0, 1, 1, 1, 1}})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				x, off, y := onlineData(rng, []float64{0, 1})
				o.Update(rng.IntN(8), x, off, y)
			}
		}()
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			x := []float64{1}
			for range 2000 {
				if p := o.Sample(rng.IntN(8), x, 0, rng); !(p >= 0 && p <= 1) {
					t.Errorf("sample %g", p)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for a := range 8 {
		total += o.Evidence(a)
	}
	if total != 8000 {
		t.Errorf("evidence sums to %g, want 8000 (lost updates)", total)
	}
}

func TestOnlineAllocs(t *testing.T) {
	o := newTestOnline(t, OnlineConfig{Features: []string{"a", "b"}, Actions: 2, NumGroups: 1, Groups: []int{0, 0}})
	o.Update(0, []float64{1, 2}, 0, 1)
	x := []float64{0.5, 0.5}
	rng := rand.New(rand.NewPCG(1, 1))
	var sink float64
	if n := testing.AllocsPerRun(1000, func() {
		sink += o.Mean(0, x, 0.1) + o.Mean(1, x, 0.1) + o.Sample(0, x, 0.1, rng) + o.Evidence(0)
		m, v := o.Logit(1, x, 0)
		sink += m + v
	}); n != 0 {
		t.Errorf("reads allocate %.1f times, want 0", n)
	}
	_ = sink
}

func FuzzOnlineUnmarshalBinary(f *testing.F) {
	cfg := OnlineConfig{Features: []string{"a", "b"}, Actions: 3, NumGroups: 1, Groups: []int{0, 0, -1}}
	o := newTestOnline(f, cfg)
	seed, _ := o.MarshalBinary()
	f.Add(seed)
	o.Update(1, []float64{1, -1}, 0.5, 1)
	seed, _ = o.MarshalBinary()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		o := newTestOnline(t, cfg)
		if err := o.UnmarshalBinary(data); err != nil {
			return
		}
		// The format is canonical: whatever loads writes back identically.
		out, err := o.MarshalBinary()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("round trip differs: %v", err)
		}
		for a := range 3 {
			if m := o.Mean(a, []float64{1, 1}, 0); !(m >= 0 && m <= 1) {
				t.Fatalf("action %d: mean %g after loading", a, m)
			}
		}
	})
}

func BenchmarkOnline(b *testing.B) {
	features := make([]string, 16)
	for i := range features {
		features[i] = string(rune('a' + i))
	}
	o := newTestOnline(b, OnlineConfig{Features: features, Actions: 100})
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float64, 16)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	for a := range 100 {
		o.Update(a, x, 0, 1)
	}
	b.Run("Mean", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			o.Mean(i%100, x, 0.1)
		}
	})
	b.Run("Sample", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			o.Sample(i%100, x, 0.1, rng)
		}
	})
	b.Run("Update", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			o.Update(i%100, x, 0.1, float64(i&1))
		}
	})
}

func ExampleOnline() {
	o, err := NewOnline(OnlineConfig{Features: []string{"tenure_years"}, Actions: 2})
	if err != nil {
		panic(err)
	}
	x := []float64{3}
	offline := -2.0 // the trained model's logit for this customer and action
	for range 20 {
		o.Update(0, x, offline, 1) // action 0 keeps getting responses
	}
	fmt.Printf("action 0: %.2f, action 1: %.2f, evidence %g\n", o.Mean(0, x, offline), o.Mean(1, x, offline), o.Evidence(0))
	// Output:
	// action 0: 0.94, action 1: 0.29, evidence 20
}
