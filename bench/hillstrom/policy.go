package main

import (
	"fmt"

	"nba/model"
	"nba/nba/offpolicy"
)

// Policy returns the probability of sending each arm to a customer. A
// deterministic policy puts probability 1 on one arm (see Deterministic).
type Policy func(c *Customer) [NumArms]float64

// Deterministic turns a function customer → arm into a Policy.
func Deterministic(choose func(c *Customer) Arm) Policy {
	return func(c *Customer) (p [NumArms]float64) {
		p[choose(c)] = 1
		return p
	}
}

// Baselines are the reference policies, in report order.
func Baselines() []NamedPolicy {
	return []NamedPolicy{
		{"no e-mail", Deterministic(func(*Customer) Arm { return NoEmail })},
		{"men's e-mail to all", Deterministic(func(*Customer) Arm { return MensEmail })},
		{"women's e-mail to all", Deterministic(func(*Customer) Arm { return WomensEmail })},
		{"random arm", func(*Customer) [NumArms]float64 { return [NumArms]float64{1.0 / 3, 1.0 / 3, 1.0 / 3} }},
		{"marketer's rule", Deterministic(func(c *Customer) Arm {
			// Women's e-mail to customers who bought only women's
			// merchandise, men's otherwise.
			if c.Womens && !c.Mens {
				return WomensEmail
			}
			return MensEmail
		})},
	}
}

// NamedPolicy is a policy with its report name.
type NamedPolicy struct {
	Name   string
	Policy Policy
}

// ModelPolicy sends each customer the arm with the highest predicted
// probability of m (e.g. visit.json), ties to the lowest arm. The model's
// features are matched to FeatureNames by name once.
func ModelPolicy(m model.Model) (Policy, error) {
	names := m.Features()
	if len(names) > 16 {
		return nil, fmt.Errorf("cannot use model %q as a policy: %d features, want at most 16", m.Info().Version, len(names))
	}
	col := make([]int, len(names))
	for i, n := range names {
		col[i] = -1
		for j, f := range FeatureNames {
			if f == n {
				col[i] = j
			}
		}
		if col[i] < 0 {
			return nil, fmt.Errorf("cannot use model %q as a policy: unknown feature %q", m.Info().Version, n)
		}
	}
	return Deterministic(func(c *Customer) Arm {
		var x, row [16]float64
		out := make([]float64, m.NumOutputs())
		best, bestP := NoEmail, -1.0
		for a := range NumArms {
			c.Features(a, x[:0])
			for i, j := range col {
				row[i] = x[j]
			}
			m.Predict(row[:len(col)], out)
			if out[0] > bestP {
				best, bestP = a, out[0]
			}
		}
		return best
	}), nil
}

// Outcome names an outcome of the experiment.
type Outcome struct {
	Name  string
	Value func(c *Customer) float64
}

// Outcomes are the three outcomes of the data set.
var Outcomes = []Outcome{
	{"visit", func(c *Customer) float64 { return b2f(c.Visit) }},
	{"conversion", func(c *Customer) float64 { return b2f(c.Conversion) }},
	{"spend", func(c *Customer) float64 { return c.Spend }},
}

// Value is a policy value with its normal and bootstrap 95% intervals.
type Value struct {
	offpolicy.Estimate
	BootLower, BootUpper float64
}

// Evaluate returns the IPS value of p for outcome over cs, with a bootstrap of
// reps resamples seeded by seed (no bootstrap when reps < 2).
func Evaluate(cs []Customer, p Policy, outcome Outcome, reps int, seed uint64) Value {
	terms, counts := ipsTerms(cs, p, outcome)
	v := Value{Estimate: offpolicy.Summarize(terms, counts)}
	v.BootLower, v.BootUpper = offpolicy.Bootstrap(terms, reps, seed)
	return v
}

// Difference returns the paired IPS estimate of value(p) − value(q) for
// outcome over cs: the per-customer IPS terms of the two policies are
// subtracted before averaging, so the intervals (normal, and bootstrap over
// customers with reps resamples) account for the two policies agreeing on
// most customers. It is far tighter than comparing two separate intervals.
func Difference(cs []Customer, p, q Policy, outcome Outcome, reps int, seed uint64) Value {
	tp, counts := ipsTerms(cs, p, outcome)
	tq, _ := ipsTerms(cs, q, outcome)
	d := offpolicy.Terms{Num: make([]float64, len(tp.Num))}
	for i := range d.Num {
		d.Num[i] = tp.Num[i] - tq.Num[i]
	}
	v := Value{Estimate: offpolicy.Summarize(d, counts)}
	v.BootLower, v.BootUpper = offpolicy.Bootstrap(d, reps, seed)
	return v
}

// ipsTerms returns the per-customer IPS terms of p for outcome over cs, one
// per customer in the order of cs (every design propensity is valid).
func ipsTerms(cs []Customer, p Policy, outcome Outcome) (offpolicy.Terms, offpolicy.Estimate) {
	logs := make([]offpolicy.Logged, len(cs))
	probs := make([][NumArms]float64, len(cs))
	for i := range cs {
		logs[i] = offpolicy.Logged{Action: int(cs[i].Arm), Propensity: Propensity, Reward: outcome.Value(&cs[i])}
		probs[i] = p(&cs[i])
	}
	return offpolicy.IPSTerms(logs, func(i, a int) float64 { return probs[i][a] })
}
