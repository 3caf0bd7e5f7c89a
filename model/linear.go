package model

// Linear models: the nba-linear JSON format, and XGBoost's gblinear booster.
//
// An nba-linear file is one JSON object:
//
//	{
//	  "format": "nba-linear",
//	  "objective": "accept-logit",
//	  "features": ["age", "tenure", "spend"],
//	  "weights": {"age": 0.012, "spend": -0.4},
//	  "intercept": -1.5,
//	  "link": "logistic"
//	}
//
//   - format (required) is "nba-linear".
//   - features (required) names the inputs in column order: non-empty, unique.
//   - weights (required) maps feature names to weights; every key must be
//     one of features; a feature without a weight has weight 0.
//   - intercept (optional, default 0) is added to the margin.
//   - link (optional, default "identity") is "identity", "logistic"
//     (1/(1+exp(-margin))) or "exp".
//   - objective (optional) is a free label shown in Info; it defaults to the
//     link's name.
//
// Unknown members are rejected, so that a misspelt member is not silently
// ignored. The margin is intercept + sum of weight*x in float64, in feature
// order; a missing input (NaN) contributes nothing, which is the same as
// imputing 0.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// linearSpec describes a linear model before validation.
type linearSpec struct {
	format, objective, version string
	features                   []string
	groups                     int
	weights                    []float64 // feature-major: weights[j*groups+g]
	bias                       []float64 // per group, already including any base margin
	link                       Link
	float32                    bool // XGBoost gblinear arithmetic
}

// linear is a compiled linear model. It is immutable and safe for concurrent
// use; Predict and PredictRaw do not allocate.
type linear struct {
	info     Info
	features []string
	groups   int
	weights  []float64
	bias     []float64
	link     Link
	f32      bool
}

func newLinear(s linearSpec) (*linear, error) {
	if err := checkFeatureNames(s.features); err != nil {
		return nil, err
	}
	if s.groups < 1 || len(s.bias) != s.groups || len(s.weights) != len(s.features)*s.groups {
		return nil, fmt.Errorf("linear model: %d weights and %d biases for %d features and %d outputs",
			len(s.weights), len(s.bias), len(s.features), s.groups)
	}
	m := &linear{features: s.features, groups: s.groups, weights: s.weights, bias: s.bias,
		link: s.link, f32: s.float32}
	m.info = Info{Format: s.format, Objective: s.objective, Features: len(s.features),
		Outputs: m.NumOutputs(), Version: s.version}
	return m, nil
}

// Info implements Model.
func (m *linear) Info() Info { return m.info }

// Features implements Model.
func (m *linear) Features() []string { return m.features }

// NumOutputs implements Model.
func (m *linear) NumOutputs() int {
	if m.link == LinkArgmax {
		return 1
	}
	return m.groups
}

// margin returns the margin of group g.
func (m *linear) margin(row []float64, g int) float64 {
	G := m.groups
	w := m.weights
	if m.f32 {
		s := float32(m.bias[g])
		for j, x := range row[:len(m.features)] {
			if x == x {
				// The conversion keeps the product rounded (no fused multiply-add).
				s += float32(float32(x) * float32(w[j*G+g]))
			}
		}
		return float64(s)
	}
	s := m.bias[g]
	for j, x := range row[:len(m.features)] {
		if x == x {
			s += x * w[j*G+g]
		}
	}
	return s
}

func (m *linear) argmax(row []float64) (int, float64) {
	best, bm := 0, m.margin(row, 0)
	for g := 1; g < m.groups; g++ {
		if v := m.margin(row, g); v > bm {
			best, bm = g, v
		}
	}
	return best, bm
}

// PredictRaw implements Model. For LinkArgmax it writes the largest margin.
func (m *linear) PredictRaw(row []float64, out []float64) {
	if m.link == LinkArgmax {
		_, out[0] = m.argmax(row)
		return
	}
	for g := 0; g < m.groups; g++ {
		out[g] = m.margin(row, g)
	}
}

// Predict implements Model.
func (m *linear) Predict(row []float64, out []float64) {
	if m.link == LinkArgmax {
		best, _ := m.argmax(row)
		out[0] = float64(best)
		return
	}
	m.PredictRaw(row, out)
	if m.f32 {
		applyLink32(m.link, 1, out[:m.groups])
	} else {
		applyLink(m.link, 1, out[:m.groups])
	}
}

// linearFile is the nba-linear JSON document.
type linearFile struct {
	Format    string              `json:"format"`
	Objective string              `json:"objective"`
	Features  []string            `json:"features"`
	Weights   map[string]*float64 `json:"weights"`
	Intercept *float64            `json:"intercept"`
	Link      string              `json:"link"`
}

var linearLinks = map[string]Link{"": LinkIdentity, "identity": LinkIdentity, "logistic": LinkSigmoid, "exp": LinkExp}

// parseLinear loads an nba-linear JSON model.
func parseLinear(name string, data []byte) (Model, error) {
	m, err := loadLinear(data)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", name, err)
	}
	return m, nil
}

func loadLinear(data []byte) (*linear, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var f linearFile
	if err := dec.Decode(&f); err != nil {
		return nil, jsonError(data, err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: data after the model object")
	}
	if f.Format != "nba-linear" {
		return nil, fmt.Errorf("field \"format\": %q, want \"nba-linear\"", f.Format)
	}
	if f.Features == nil {
		return nil, errors.New("missing field \"features\"")
	}
	if f.Weights == nil {
		return nil, errors.New("missing field \"weights\"")
	}
	link, ok := linearLinks[f.Link]
	if !ok {
		return nil, fmt.Errorf("field \"link\": %q, want identity, logistic or exp", f.Link)
	}
	if err := checkFeatureNames(f.Features); err != nil {
		return nil, fmt.Errorf("field \"features\": %w", err)
	}
	index := make(map[string]int, len(f.Features))
	for i, n := range f.Features {
		index[n] = i
	}
	w := make([]float64, len(f.Features))
	for k, v := range f.Weights {
		i, ok := index[k]
		if !ok {
			return nil, fmt.Errorf("field \"weights\": %q is not one of the features", k)
		}
		if v == nil {
			return nil, fmt.Errorf("field \"weights\": %q: null weight", k)
		}
		w[i] = *v
	}
	b := 0.0
	if f.Intercept != nil {
		b = *f.Intercept
	}
	if math.IsNaN(b) || math.IsInf(b, 0) {
		return nil, errors.New("field \"intercept\": not finite")
	}
	obj := f.Objective
	if obj == "" {
		obj = f.Link
		if obj == "" {
			obj = "identity"
		}
	}
	return newLinear(linearSpec{
		format:    "linear-json",
		objective: obj,
		features:  f.Features,
		groups:    1,
		weights:   w,
		bias:      []float64{b},
		link:      link,
		version:   version(data),
	})
}
