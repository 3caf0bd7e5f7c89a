package main

import (
	"fmt"
	"math"

	"nba/model"
)

// Online learning from the logged experiment: the training half's arms and
// visits are fed, in file order, as feedback to an online Bayesian logistic
// regression per arm (model.Online), and the policy it has learnt (greedy on
// the posterior predictive mean) is then evaluated on the evaluation half.
//
// The engine does not host online models yet, so this calls the model
// package directly: the same Update and Mean a serving process would call,
// without the HTTP feedback path.

// customerFeatures are the online model's inputs: FeatureNames without the
// arm flags (the arm is the online model's action).
var customerFeatures = func() []string {
	var out []string
	for _, f := range FeatureNames {
		if !armFeatures[f] {
			out = append(out, f)
		}
	}
	return out
}()

// Scaler standardises the customer features with means and standard
// deviations measured on the training half. The online model's prior is
// N(0, 1) on every weight, which only makes sense for inputs of unit scale
// (history is in dollars, up to about 3,000).
type Scaler struct {
	Mean, SD []float64
}

// NewScaler measures the customer features of cs.
func NewScaler(cs []Customer) Scaler {
	n := len(customerFeatures)
	s := Scaler{Mean: make([]float64, n), SD: make([]float64, n)}
	var sum, sum2 = make([]float64, n), make([]float64, n)
	var x []float64
	for i := range cs {
		x = customerRow(&cs[i], x)
		for j, v := range x {
			sum[j] += v
			sum2[j] += v * v
		}
	}
	for j := range n {
		m := sum[j] / float64(len(cs))
		s.Mean[j] = m
		s.SD[j] = math.Sqrt(max(sum2[j]/float64(len(cs))-m*m, 0))
		if s.SD[j] == 0 {
			s.SD[j] = 1
		}
	}
	return s
}

// Row writes the standardised customer features of c into dst.
func (s Scaler) Row(c *Customer, dst []float64) []float64 {
	dst = customerRow(c, dst)
	for j := range dst {
		dst[j] = (dst[j] - s.Mean[j]) / s.SD[j]
	}
	return dst
}

// customerRow writes c's customer features (customerFeatures order) into dst.
func customerRow(c *Customer, dst []float64) []float64 {
	var full [16]float64
	x := c.Features(NoEmail, full[:0])
	dst = dst[:0]
	for j, f := range FeatureNames {
		if !armFeatures[f] {
			dst = append(dst, x[j])
		}
	}
	return dst
}

// OnlineLearner is an online model per arm trained from logged feedback,
// with the offline model whose logit is its offset (nil: offset 0).
type OnlineLearner struct {
	Model   *model.Online
	Offline model.Model
	Scaler  Scaler
}

// offset returns the offline visit logit of c under arm, or 0 without an
// offline model.
func (l *OnlineLearner) offset(c *Customer, arm Arm) float64 {
	if l.Offline == nil {
		return 0
	}
	var row, out [16]float64
	l.Offline.PredictRaw(c.Features(arm, row[:0]), out[:1])
	return out[0]
}

// LearnOnline feeds the arm and visit of every customer of train, in order,
// to a new online model (prior variance 1, no forgetting, no groups) with
// the offline model's logit as offset when offline is not nil.
func LearnOnline(train []Customer, offline model.Model) (*OnlineLearner, error) {
	if offline != nil && (len(offline.Features()) != len(FeatureNames) || offline.NumOutputs() != 1) {
		return nil, fmt.Errorf("cannot learn online: offline model %q has %d features and %d outputs, want %d and 1",
			offline.Info().Version, len(offline.Features()), offline.NumOutputs(), len(FeatureNames))
	}
	m, err := model.NewOnline(model.OnlineConfig{Features: customerFeatures, Actions: int(NumArms)})
	if err != nil {
		return nil, err
	}
	l := &OnlineLearner{Model: m, Offline: offline, Scaler: NewScaler(train)}
	var x []float64
	for i := range train {
		c := &train[i]
		x = l.Scaler.Row(c, x)
		m.Update(int(c.Arm), x, l.offset(c, c.Arm), b2f(c.Visit))
	}
	if ok, bad := m.Updates(); bad > 0 || ok != uint64(len(train)) {
		return nil, fmt.Errorf("cannot learn online: %d updates accepted, %d rejected, of %d", ok, bad, len(train))
	}
	return l, nil
}

// Predict returns the posterior predictive visit probability of c under arm.
func (l *OnlineLearner) Predict(c *Customer, arm Arm) float64 {
	var row [16]float64
	return l.Model.Mean(int(arm), l.Scaler.Row(c, row[:0]), l.offset(c, arm))
}

// Policy sends each customer the arm of highest posterior mean visit
// probability, ties to the lowest arm.
func (l *OnlineLearner) Policy() Policy {
	return Deterministic(func(c *Customer) Arm {
		best, bestP := NoEmail, math.Inf(-1)
		for a := range NumArms {
			if p := l.Predict(c, a); p > bestP {
				best, bestP = a, p
			}
		}
		return best
	})
}

// LogLoss returns the mean log loss of predict's visit probability for the
// logged arm over cs.
func LogLoss(cs []Customer, predict func(c *Customer, arm Arm) float64) float64 {
	var sum float64
	for i := range cs {
		p := min(max(predict(&cs[i], cs[i].Arm), 1e-15), 1-1e-15)
		if cs[i].Visit {
			sum -= math.Log(p)
		} else {
			sum -= math.Log(1 - p)
		}
	}
	return sum / float64(len(cs))
}

// constant predicts the visit rate of cs for every customer and arm.
func constant(cs []Customer) func(*Customer, Arm) float64 {
	var n float64
	for i := range cs {
		n += b2f(cs[i].Visit)
	}
	rate := n / float64(len(cs))
	return func(*Customer, Arm) float64 { return rate }
}
