package offpolicy

import "math"

// Group accumulates the responses and values of one group (treatment or
// control) of an experiment. The zero value is empty and ready; it is not
// safe for concurrent use.
type Group struct {
	N         int
	Responses float64 // number of responses
	Value     float64 // Σ value
	ValueSq   float64 // Σ value²
}

// Add records one member of the group: whether it responded and the value it
// brought (0 when none).
func (g *Group) Add(responded bool, value float64) {
	g.N++
	if responded {
		g.Responses++
	}
	g.Value += value
	g.ValueSq += value * value
}

// Interval is a point estimate with its 95% interval.
type Interval struct {
	Value, Lower, Upper float64
}

// Uplift compares a treatment group with a control group.
type Uplift struct {
	// RateT and RateC are the response rates with Wilson score intervals.
	RateT, RateC Interval
	// RateDiff is RateT - RateC with Newcombe's hybrid score interval
	// (Newcombe 1998, method 10), which keeps its coverage for small or
	// extreme rates where the normal approximation fails.
	RateDiff Interval
	// ValueT and ValueC are the mean values per member with normal
	// intervals; ValueDiff their difference with Welch's normal interval.
	ValueT, ValueC, ValueDiff Interval
}

// CompareGroups returns the uplift of treatment over control. Rates and values
// of an empty group are NaN.
func CompareGroups(treatment, control Group) Uplift {
	var u Uplift
	u.RateT = wilson(treatment.Responses, treatment.N)
	u.RateC = wilson(control.Responses, control.N)
	d := u.RateT.Value - u.RateC.Value
	u.RateDiff = Interval{
		Value: d,
		Lower: d - math.Sqrt(sq(u.RateT.Value-u.RateT.Lower)+sq(u.RateC.Upper-u.RateC.Value)),
		Upper: d + math.Sqrt(sq(u.RateT.Upper-u.RateT.Value)+sq(u.RateC.Value-u.RateC.Lower)),
	}
	var seT, seC float64
	u.ValueT, seT = meanInterval(treatment)
	u.ValueC, seC = meanInterval(control)
	dv, se := u.ValueT.Value-u.ValueC.Value, math.Sqrt(seT*seT+seC*seC)
	u.ValueDiff = Interval{Value: dv, Lower: dv - Z95*se, Upper: dv + Z95*se}
	return u
}

func sq(x float64) float64 { return x * x }

// wilson returns the proportion k/n with its Wilson score interval.
func wilson(k float64, n int) Interval {
	if n <= 0 {
		return Interval{math.NaN(), math.NaN(), math.NaN()}
	}
	nf, z2 := float64(n), Z95*Z95
	p := k / nf
	center := (p + z2/(2*nf)) / (1 + z2/nf)
	half := Z95 / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return Interval{Value: p, Lower: max(0, center-half), Upper: min(1, center+half)}
}

// meanInterval returns the mean value of g with its normal interval and
// standard error.
func meanInterval(g Group) (Interval, float64) {
	if g.N <= 0 {
		return Interval{math.NaN(), math.NaN(), math.NaN()}, math.NaN()
	}
	n := float64(g.N)
	mean := g.Value / n
	se := 0.0
	if g.N > 1 {
		se = math.Sqrt(max(0, g.ValueSq-n*mean*mean) / (n - 1) / n)
	}
	return Interval{Value: mean, Lower: mean - Z95*se, Upper: mean + Z95*se}, se
}
