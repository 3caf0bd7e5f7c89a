package model

import (
	"fmt"
	"math"
)

// MissingRule says which input values a numeric split treats as missing.
type MissingRule uint8

const (
	// MissingNaN: only NaN is missing (XGBoost; LightGBM missing_type NaN).
	MissingNaN MissingRule = iota
	// MissingZero: NaN is first replaced by 0; then |x| <= 1e-35 is missing
	// (LightGBM missing_type Zero).
	MissingZero
	// MissingNone: NaN is replaced by 0; nothing is missing (LightGBM
	// missing_type None).
	MissingNone
)

// TreeNode is one node as a loader describes it, before compilation. Index 0
// of a tree is its root.
type TreeNode struct {
	Leaf      bool
	Value     float64 // leaf output
	Feature   int     // split feature index
	Threshold float64 // numeric: x < Threshold goes left (x <= Threshold when LessEqual)
	LessEqual bool
	Missing   MissingRule
	// DefaultLeft is the direction of missing values.
	DefaultLeft bool
	// CatBits makes the split categorical when non-nil: a bitset over integer
	// category codes (bit c of word c/32). When CatSetLeft, members go left and
	// everything else right (LightGBM); otherwise members go right and
	// everything else left (XGBoost). Negative, non-integer-valued or
	// out-of-bitset values are non-members. NaN follows DefaultLeft when
	// Missing == MissingNaN, else it is a non-member.
	CatBits     []uint32
	CatSetLeft  bool
	Left, Right int
}

// Tree is one tree; Group is the output (class) it adds to; Weight scales its
// output (DART), 1 otherwise.
type Tree struct {
	Nodes  []TreeNode
	Group  int
	Weight float64
}

// Link turns margins into predictions.
type Link uint8

const (
	LinkIdentity Link = iota
	LinkSigmoid       // 1/(1+exp(-SigmoidScale*x)); SigmoidScale 0 means 1
	LinkExp           // exp(x): poisson, gamma, tweedie
	LinkSoftmax       // across outputs
	LinkArgmax        // index of the largest margin (XGBoost multi:softmax), one output
)

// EnsembleSpec is what a loader hands to CompileEnsemble.
type EnsembleSpec struct {
	Format, Objective string
	FeatureNames      []string // len = number of features
	NumGroups         int      // outputs
	Trees             []Tree
	// BaseMargin is per group, added to the sum of tree outputs (already in
	// margin space).
	BaseMargin []float64
	// Float32 selects XGBoost semantics: inputs and thresholds compared as
	// float32, sums in float32 as XGBoost does.
	Float32 bool
	// AverageOutput divides the sum by the number of iterations (LightGBM
	// random forest).
	AverageOutput bool
	Link          Link
	SigmoidScale  float64
	Version       string
}

// Ensemble is a compiled tree ensemble. It is immutable and safe for
// concurrent use.
type Ensemble struct {
	spec EnsembleSpec
}

// CompileEnsemble validates a spec (child indices in range, no cycles,
// features in range) and flattens it into contiguous arrays with no per-node
// pointers. The result implements Model.
func CompileEnsemble(spec EnsembleSpec) (*Ensemble, error) {
	nf := len(spec.FeatureNames)
	if spec.NumGroups < 1 {
		return nil, fmt.Errorf("num_groups must be at least 1, got %d", spec.NumGroups)
	}
	for ti, t := range spec.Trees {
		if len(t.Nodes) == 0 {
			return nil, fmt.Errorf("tree %d: no nodes", ti)
		}
		if t.Group < 0 || t.Group >= spec.NumGroups {
			return nil, fmt.Errorf("tree %d: group %d out of range [0,%d)", ti, t.Group, spec.NumGroups)
		}
		for ni, n := range t.Nodes {
			if n.Leaf {
				continue
			}
			if n.Feature < 0 || n.Feature >= nf {
				return nil, fmt.Errorf("tree %d: node %d: feature %d out of range [0,%d)", ti, ni, n.Feature, nf)
			}
			// Children must come after their parent: this rules out cycles.
			if n.Left <= ni || n.Left >= len(t.Nodes) || n.Right <= ni || n.Right >= len(t.Nodes) {
				return nil, fmt.Errorf("tree %d: node %d: children %d,%d out of range", ti, ni, n.Left, n.Right)
			}
		}
	}
	return &Ensemble{spec: spec}, nil
}

// Info implements Model.
func (e *Ensemble) Info() Info {
	return Info{Format: e.spec.Format, Objective: e.spec.Objective, Trees: len(e.spec.Trees),
		Features: len(e.spec.FeatureNames), Outputs: e.NumOutputs(), Version: e.spec.Version}
}

// Features implements Model.
func (e *Ensemble) Features() []string { return e.spec.FeatureNames }

// NumOutputs implements Model.
func (e *Ensemble) NumOutputs() int {
	if e.spec.Link == LinkArgmax {
		return 1
	}
	return e.spec.NumGroups
}

func (e *Ensemble) leaf(t *Tree, row []float64) float64 {
	i := 0
	for {
		n := &t.Nodes[i]
		if n.Leaf {
			return n.Value
		}
		x := row[n.Feature]
		left := false
		switch {
		case n.CatBits != nil:
			if math.IsNaN(x) && n.Missing == MissingNaN {
				left = n.DefaultLeft
				break
			}
			member := false
			if x >= 0 && x == math.Trunc(x) && x < float64(32*len(n.CatBits)) {
				c := int(x)
				member = n.CatBits[c/32]&(1<<(c%32)) != 0
			}
			left = member == n.CatSetLeft
		default:
			if math.IsNaN(x) && n.Missing != MissingNaN {
				x = 0
			}
			missing := math.IsNaN(x) || (n.Missing == MissingZero && x > -1e-35 && x <= 1e-35)
			switch {
			case missing:
				left = n.DefaultLeft
			case e.spec.Float32:
				left = float32(x) < float32(n.Threshold)
			case n.LessEqual:
				left = x <= n.Threshold
			default:
				left = x < n.Threshold
			}
		}
		if left {
			i = n.Left
		} else {
			i = n.Right
		}
	}
}

// PredictRaw implements Model.
func (e *Ensemble) PredictRaw(row []float64, out []float64) {
	g := e.spec.NumGroups
	for k := 0; k < g; k++ {
		out[k] = 0
		if k < len(e.spec.BaseMargin) {
			out[k] = e.spec.BaseMargin[k]
		}
	}
	for ti := range e.spec.Trees {
		t := &e.spec.Trees[ti]
		w := t.Weight
		if w == 0 {
			w = 1
		}
		out[t.Group] += w * e.leaf(t, row)
	}
	if e.spec.AverageOutput && len(e.spec.Trees) > 0 {
		iters := float64(len(e.spec.Trees) / g)
		for k := 0; k < g; k++ {
			out[k] /= iters
		}
	}
}

// Predict implements Model.
func (e *Ensemble) Predict(row []float64, out []float64) {
	e.PredictRaw(row, out)
	g := e.spec.NumGroups
	switch e.spec.Link {
	case LinkSigmoid:
		s := e.spec.SigmoidScale
		if s == 0 {
			s = 1
		}
		for k := 0; k < g; k++ {
			out[k] = 1 / (1 + math.Exp(-s*out[k]))
		}
	case LinkExp:
		for k := 0; k < g; k++ {
			out[k] = math.Exp(out[k])
		}
	case LinkSoftmax:
		mx := out[0]
		for k := 1; k < g; k++ {
			mx = max(mx, out[k])
		}
		sum := 0.0
		for k := 0; k < g; k++ {
			out[k] = math.Exp(out[k] - mx)
			sum += out[k]
		}
		for k := 0; k < g; k++ {
			out[k] /= sum
		}
	case LinkArgmax:
		best := 0
		for k := 1; k < g; k++ {
			if out[k] > out[best] {
				best = k
			}
		}
		out[0] = float64(best)
	}
}
