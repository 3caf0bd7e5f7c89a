package offpolicy

import (
	"math"
	"math/rand/v2"
	"testing"
)

// world is a synthetic bandit: 4 context types, 3 actions, Bernoulli rewards.
var world = [4][3]float64{
	{0.10, 0.30, 0.05},
	{0.20, 0.10, 0.15},
	{0.05, 0.05, 0.40},
	{0.50, 0.20, 0.10},
}

// greedy is the target policy: the best action of each context.
var greedy = [4]int{1, 0, 2, 0}

// trueValue of greedy under uniform contexts.
func trueValue() float64 {
	v := 0.0
	for c, a := range greedy {
		v += world[c][a] / 4
	}
	return v
}

// logUniform logs n decisions of a uniformly random policy.
func logUniform(rng *rand.Rand, n int) (logs []Logged, ctx []int) {
	for range n {
		c, a := rng.IntN(4), rng.IntN(3)
		r := 0.0
		if rng.Float64() < world[c][a] {
			r = 1
		}
		logs, ctx = append(logs, Logged{Action: a, Propensity: 1.0 / 3, Reward: r}), append(ctx, c)
	}
	return logs, ctx
}

func greedyPolicy(ctx []int) Policy {
	return func(i, a int) float64 {
		if greedy[ctx[i]] == a {
			return 1
		}
		return 0
	}
}

func TestIPSRecoversPolicyValue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	logs, ctx := logUniform(rng, 30000)
	want := trueValue()
	est := IPS(logs, greedyPolicy(ctx))
	if want < est.Lower || want > est.Upper {
		t.Errorf("IPS %.4f [%.4f, %.4f] misses the true value %.4f", est.Value, est.Lower, est.Upper, want)
	}
	if est.N != 30000 || math.Abs(est.MaxWeight-3) > 1e-12 || math.Abs(est.EffectiveN-10000) > 300 {
		t.Errorf("counts: N %d, max weight %g, effective N %g (want about n/3)", est.N, est.MaxWeight, est.EffectiveN)
	}
}

// TestIntervalCoverage checks that the 95% intervals cover the true value in
// about 95% of independent replications (a band of ±3 binomial sd).
func TestIntervalCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	want := trueValue()
	const reps = 300
	covered := map[string]int{}
	for range reps {
		logs, ctx := logUniform(rng, 1500)
		target := greedyPolicy(ctx)
		model := func(i, a int) float64 { return 0.8*world[ctx[i]][a] + 0.02 } // imperfect
		for name, est := range map[string]Estimate{
			"ips":   IPS(logs, target),
			"snips": SNIPS(logs, target),
			"dr":    DR(logs, 3, target, model),
		} {
			if est.Lower <= want && want <= est.Upper {
				covered[name]++
			}
		}
	}
	for _, name := range []string{"ips", "snips", "dr"} {
		if c := float64(covered[name]) / reps; c < 0.91 || c > 0.99 {
			t.Errorf("%s: 95%% interval covers the true value in %.1f%% of replications", name, 100*c)
		}
	}
}

func TestSNIPSAndDRSanity(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	logs, ctx := logUniform(rng, 20000)
	uniform := func(i, a int) float64 { return 1.0 / 3 }
	mean := 0.0
	for _, l := range logs {
		mean += l.Reward
	}
	mean /= float64(len(logs))
	// Evaluating the logging policy itself: all weights are 1.
	if s := SNIPS(logs, uniform); math.Abs(s.Value-mean) > 1e-12 {
		t.Errorf("SNIPS of the logging policy %g, want the mean reward %g", s.Value, mean)
	}
	target := greedyPolicy(ctx)
	ips := IPS(logs, target)
	// A zero reward model turns DR into IPS.
	zero := DR(logs, 3, target, func(int, int) float64 { return 0 })
	if math.Abs(zero.Value-ips.Value) > 1e-12 || math.Abs(zero.StdErr-ips.StdErr) > 1e-12 {
		t.Errorf("DR with a zero model %g ± %g, want IPS %g ± %g", zero.Value, zero.StdErr, ips.Value, ips.StdErr)
	}
	// A perfect reward model removes the importance-weighting variance.
	perfect := DR(logs, 3, target, func(i, a int) float64 { return world[ctx[i]][a] })
	if !(perfect.StdErr < 0.95*ips.StdErr) || math.Abs(perfect.Value-trueValue()) > 3*perfect.StdErr {
		t.Errorf("DR with the true model %g ± %g, IPS ± %g, true %g", perfect.Value, perfect.StdErr, ips.StdErr, trueValue())
	}
	// SNIPS is a weighted mean of rewards: it stays in [0, 1].
	if s := SNIPS(logs, target); s.Value < 0 || s.Value > 1 || math.Abs(s.Value-ips.Value) > 3*ips.StdErr {
		t.Errorf("SNIPS %g far from IPS %g", s.Value, ips.Value)
	}
	// Invalid propensities are skipped and counted.
	bad := append([]Logged{{Action: 0, Propensity: 0, Reward: 1}, {Action: 0, Propensity: math.NaN()}}, logs[:10]...)
	if e := IPS(bad, func(int, int) float64 { return 1 }); e.Skipped != 2 || e.N != 10 {
		t.Errorf("skipped %d, used %d; want 2, 10", e.Skipped, e.N)
	}
	if e := IPS(nil, target); !math.IsNaN(e.Value) {
		t.Errorf("IPS of nothing = %g, want NaN", e.Value)
	}
}

func TestBootstrap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	logs, ctx := logUniform(rng, 5000)
	for name, f := range map[string]func([]Logged, Policy) (Terms, Estimate){"ips": IPSTerms, "snips": SNIPSTerms} {
		terms, est := f(logs, greedyPolicy(ctx))
		est = Summarize(terms, est)
		lo, hi := Bootstrap(terms, 1000, 1)
		if lo2, hi2 := Bootstrap(terms, 1000, 1); lo2 != lo || hi2 != hi {
			t.Errorf("%s: same seed, different intervals", name)
		}
		// For a mean of many bounded terms the percentile interval agrees
		// with the normal one to within Monte-Carlo error.
		if math.Abs((hi-lo)/(est.Upper-est.Lower)-1) > 0.15 || math.Abs((lo+hi)/2-est.Value) > 0.1*(est.Upper-est.Lower) {
			t.Errorf("%s: bootstrap [%.4f, %.4f], normal [%.4f, %.4f]", name, lo, hi, est.Lower, est.Upper)
		}
	}
}

func TestNewcombeReference(t *testing.T) {
	// Newcombe (1998), Statistics in Medicine 17:873-890, Table II example
	// (a): 56/70 - 48/80, method 10 gives 0.0524 to 0.3339.
	var tr, co Group
	for i := range 70 {
		tr.Add(i < 56, 0)
	}
	for i := range 80 {
		co.Add(i < 48, 0)
	}
	u := CompareGroups(tr, co)
	if math.Abs(u.RateDiff.Value-0.2) > 1e-12 || math.Abs(u.RateDiff.Lower-0.0524) > 5e-5 || math.Abs(u.RateDiff.Upper-0.3339) > 5e-5 {
		t.Errorf("difference %+v, want 0.2000 [0.0524, 0.3339]", u.RateDiff)
	}
}

func TestUpliftCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const pt, pc, reps = 0.15, 0.10, 300
	// Value: spend of 50 on average when responding (exponential).
	covered, coveredValue := 0, 0
	for range reps {
		var tr, co Group
		for range 3000 {
			r := rng.Float64() < pt
			v := 0.0
			if r {
				v = 50 * rng.ExpFloat64()
			}
			tr.Add(r, v)
			r = rng.Float64() < pc
			v = 0
			if r {
				v = 50 * rng.ExpFloat64()
			}
			co.Add(r, v)
		}
		u := CompareGroups(tr, co)
		if u.RateDiff.Lower <= pt-pc && pt-pc <= u.RateDiff.Upper {
			covered++
		}
		if d := 50 * (pt - pc); u.ValueDiff.Lower <= d && d <= u.ValueDiff.Upper {
			coveredValue++
		}
	}
	for name, c := range map[string]int{"rate": covered, "value": coveredValue} {
		if f := float64(c) / reps; f < 0.91 || f > 0.99 {
			t.Errorf("%s difference: 95%% interval covers the truth in %.1f%%", name, 100*f)
		}
	}
	if u := CompareGroups(Group{}, Group{}); !math.IsNaN(u.RateDiff.Value) {
		t.Error("empty groups give a number")
	}
}
