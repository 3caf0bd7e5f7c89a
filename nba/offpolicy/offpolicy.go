// Package offpolicy estimates, from logged decisions, the value a different
// policy would have had (IPS, self-normalised IPS, doubly robust), and the
// uplift of a treatment group over a control group, each with a 95% confidence
// interval.
//
// Every logged record must carry the probability with which the logging policy
// chose its action (its propensity, see package explore). The estimates are
// unbiased (IPS, DR) or consistent (SNIPS) only when that propensity is right
// and positive for every action the target policy may choose. Intervals are
// normal approximations (delta method for SNIPS); Bootstrap gives percentile
// intervals with a seeded generator when the normal approximation is doubtful
// (few records, heavy importance weights).
//
// The functions are pure and safe for concurrent use; they allocate
// O(records) at most and are meant for offline analysis, not the request path.
package offpolicy

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Z95 is the standard normal quantile of the two-sided 95% intervals.
const Z95 = 1.959963984540054

// Logged is one logged decision.
type Logged struct {
	// Action is the chosen action's index.
	Action int
	// Propensity is the logging policy's probability of Action, in (0,1].
	// Records with another value are skipped and counted in Estimate.Skipped.
	Propensity float64
	// Reward observed after the decision.
	Reward float64
}

// Policy returns the probability that the target policy chooses action for
// logged record i.
type Policy func(i, action int) float64

// RewardModel returns the predicted reward of action for logged record i.
type RewardModel func(i, action int) float64

// Estimate is a policy value with its 95% interval.
type Estimate struct {
	Value        float64
	StdErr       float64
	Lower, Upper float64
	// N is the number of records used; Skipped those with an invalid
	// propensity.
	N, Skipped int
	// EffectiveN is (Σw)²/Σw², the effective sample size of the importance
	// weights w = target/propensity: far below N means a high-variance
	// estimate.
	EffectiveN float64
	// MaxWeight is the largest importance weight.
	MaxWeight float64
}

// Terms are per-record contributions from which an estimate is a ratio of
// means: Value = mean(Num)/mean(Den), or mean(Num) when Den is nil. They are
// what Bootstrap resamples.
type Terms struct {
	Num, Den []float64
}

func valid(p float64) bool { return p > 0 && p <= 1 }

// weights returns the importance weights of the valid records and the stats
// common to every estimator.
func weights(logs []Logged, target Policy) (idx []int, w []float64, est Estimate) {
	var sw, sw2 float64
	for i, l := range logs {
		if !valid(l.Propensity) {
			est.Skipped++
			continue
		}
		wi := target(i, l.Action) / l.Propensity
		idx, w = append(idx, i), append(w, wi)
		sw, sw2 = sw+wi, sw2+wi*wi
		est.MaxWeight = max(est.MaxWeight, wi)
	}
	est.N = len(idx)
	if sw2 > 0 {
		est.EffectiveN = sw * sw / sw2
	}
	return idx, w, est
}

// IPSTerms returns the terms of the inverse propensity score estimator
// mean(w_i·r_i) and its record counts.
func IPSTerms(logs []Logged, target Policy) (Terms, Estimate) {
	idx, w, est := weights(logs, target)
	num := make([]float64, len(idx))
	for k, i := range idx {
		num[k] = w[k] * logs[i].Reward
	}
	return Terms{Num: num}, est
}

// IPS returns the inverse propensity score estimate mean(w_i·r_i), unbiased
// when the propensities are right, with a normal 95% interval.
func IPS(logs []Logged, target Policy) Estimate {
	return Summarize(IPSTerms(logs, target))
}

// SNIPSTerms returns the terms of the self-normalised estimator
// Σw_i·r_i / Σw_i.
func SNIPSTerms(logs []Logged, target Policy) (Terms, Estimate) {
	idx, w, est := weights(logs, target)
	num := make([]float64, len(idx))
	for k, i := range idx {
		num[k] = w[k] * logs[i].Reward
	}
	return Terms{Num: num, Den: w}, est
}

// SNIPS returns the self-normalised IPS estimate Σw_i·r_i / Σw_i (Swaminathan
// & Joachims 2015): slightly biased, much lower variance when weights are
// heavy, and always within the range of observed rewards. The interval is by
// the delta method.
func SNIPS(logs []Logged, target Policy) Estimate {
	return Summarize(SNIPSTerms(logs, target))
}

// DRTerms returns the terms of the doubly robust estimator over actions
// 0..actions-1.
func DRTerms(logs []Logged, actions int, target Policy, model RewardModel) (Terms, Estimate) {
	idx, w, est := weights(logs, target)
	num := make([]float64, len(idx))
	for k, i := range idx {
		direct := 0.0
		for a := range actions {
			if pa := target(i, a); pa != 0 {
				direct += pa * model(i, a)
			}
		}
		l := logs[i]
		num[k] = direct + w[k]*(l.Reward-model(i, l.Action))
	}
	return Terms{Num: num}, est
}

// DR returns the doubly robust estimate (Dudík, Langford & Li 2011):
// mean(Σ_a π(a|i)·r̂(i,a) + w_i·(r_i - r̂(i,a_i))), unbiased when either the
// propensities or the reward model are right, and of lower variance than IPS
// when the model is good.
func DR(logs []Logged, actions int, target Policy, model RewardModel) Estimate {
	return Summarize(DRTerms(logs, actions, target, model))
}

// Summarize returns est (the counts from a *Terms function) with the value,
// standard error and normal 95% interval of t.
func Summarize(t Terms, est Estimate) Estimate {
	est.Value, est.StdErr = ratio(t)
	est.Lower, est.Upper = est.Value-Z95*est.StdErr, est.Value+Z95*est.StdErr
	return est
}

// ratio returns mean(Num)/mean(Den) (or mean(Num)) and its delta-method
// standard error.
func ratio(t Terms) (value, se float64) {
	n := float64(len(t.Num))
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	var sn float64
	for _, v := range t.Num {
		sn += v
	}
	if t.Den == nil {
		mean := sn / n
		var ss float64
		for _, v := range t.Num {
			ss += (v - mean) * (v - mean)
		}
		if n < 2 {
			return mean, math.NaN()
		}
		return mean, math.Sqrt(ss / (n - 1) / n)
	}
	var sd float64
	for _, v := range t.Den {
		sd += v
	}
	if sd == 0 {
		return math.NaN(), math.NaN()
	}
	value = sn / sd
	// Var(Σx/Σy) ≈ Σ(x_i - R·y_i)² / (Σy)² (linearisation).
	var ss float64
	for i, x := range t.Num {
		e := x - value*t.Den[i]
		ss += e * e
	}
	if n < 2 {
		return value, math.NaN()
	}
	return value, math.Sqrt(ss*n/(n-1)) / sd
}

// Bootstrap returns the percentile 95% interval of the estimate of t over reps
// resamples of its records (with replacement), drawn from a PCG generator
// seeded with seed: the same inputs and seed give the same interval.
func Bootstrap(t Terms, reps int, seed uint64) (lower, upper float64) {
	n := len(t.Num)
	if n == 0 || reps < 2 {
		return math.NaN(), math.NaN()
	}
	rng := rand.New(rand.NewPCG(seed, 0x6f6666706f6c6963))
	stats := make([]float64, 0, reps)
	for range reps {
		var sn, sd float64
		for range n {
			i := rng.IntN(n)
			sn += t.Num[i]
			if t.Den != nil {
				sd += t.Den[i]
			}
		}
		if t.Den == nil {
			stats = append(stats, sn/float64(n))
		} else if sd != 0 {
			stats = append(stats, sn/sd)
		}
	}
	if len(stats) < 2 {
		return math.NaN(), math.NaN()
	}
	slices.Sort(stats)
	return quantile(stats, 0.025), quantile(stats, 0.975)
}

// quantile interpolates the q-quantile of sorted xs (type 7).
func quantile(xs []float64, q float64) float64 {
	h := q * float64(len(xs)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[lo] + (h-float64(lo))*(xs[lo+1]-xs[lo])
}
