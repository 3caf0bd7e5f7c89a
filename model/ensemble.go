package model

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"unsafe"
)

// MissingRule says which input values a numeric split treats as missing.
type MissingRule uint8

const (
	// MissingNaN: only NaN is missing (XGBoost; LightGBM missing_type NaN).
	MissingNaN MissingRule = iota
	// MissingZero: NaN is first replaced by 0; then |x| <= ZeroThreshold is missing
	// (LightGBM missing_type Zero).
	MissingZero
	// MissingNone: NaN is replaced by 0; nothing is missing (LightGBM
	// missing_type None).
	MissingNone
)

// ZeroThreshold bounds the values MissingZero treats as zero: LightGBM's
// kZeroThreshold, the float 1e-35f, compared in double precision.
const ZeroThreshold = float64(float32(1e-35))

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
	// everything else left (XGBoost). A value is truncated toward zero to
	// an integer code, as both libraries do (2.7 is category 2); XGBoost
	// takes values >= 0, LightGBM (static_cast<int>) every value > -1, so
	// that with CatSetLeft values in (-1, 0) are category 0. Other values
	// and those beyond the bitset are non-members. NaN follows DefaultLeft
	// when Missing == MissingNaN, else it is a non-member.
	CatBits     []uint32
	CatSetLeft  bool
	Left, Right int
}

// Tree is one tree; Group is the output (class) it adds to; Weight scales its
// output (DART), 1 otherwise (0 is read as 1).
type Tree struct {
	Nodes  []TreeNode
	Group  int
	Weight float64
}

// Link turns margins into predictions.
type Link uint8

const (
	// LinkIdentity leaves margins as they are.
	LinkIdentity Link = iota
	// LinkSigmoid is 1/(1+exp(-SigmoidScale*x)); SigmoidScale 0 means 1.
	LinkSigmoid
	// LinkExp is exp(x): poisson, gamma, tweedie.
	LinkExp
	// LinkSoftmax normalises exp(x) across outputs.
	LinkSoftmax
	// LinkArgmax is the index of the largest margin (XGBoost multi:softmax);
	// the model has one output. PredictRaw then writes the largest margin.
	LinkArgmax
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

// Limits of a compiled ensemble. They bound what a model file can make the
// loader allocate; real models are far below them.
const (
	// MaxFeatures is the largest number of input features of a model.
	MaxFeatures = 1 << 20
	// MaxNodes is the largest total number of tree nodes of an ensemble.
	MaxNodes = 1 << 28
	// MaxCategoryWords is the largest total size, in 32-bit words, of the
	// categorical split bitsets of an ensemble (64 MiB).
	MaxCategoryWords = 1 << 24
)

// node is one compiled node: 16 bytes, so four share a cache line.
//
// Every split is reduced at compile time to "x < thr goes left" in float64:
// LessEqual thresholds are moved one float64 step up, and Float32 thresholds
// t are replaced by the smallest float64 that rounds to a float32 >= t, so
// float32(x) < t holds exactly when x < thr and the request path never
// converts. The children of a node are adjacent (right = left+1).
//
// The block scorer copies each row r into 2*nf+1 columns: r with NaN
// replaced by -Inf, r with NaN replaced by +Inf, and -Inf. A split whose
// missing values go left reads feature f from the first copy and one whose
// missing values go right reads column nf+f (the feature field holds the
// column), so that "go right when x >= thr" is the whole step: -Inf goes
// left and +Inf right at every threshold above -Inf (a threshold of -Inf is
// left to the slow path). A leaf holds its value (times the tree weight) in
// thr, reads column 2*nf (-Inf, never >= the value) and points at itself, so
// stepping from a leaf stays there: a tree is walked for a fixed number of
// steps (its depth) without testing for leaves, and the value is read from
// the node reached. Predict reads the mask table when the model has one
// (maskTable); otherwise it copies its row the same way onto the stack and
// walks eight trees together (marginsLanes), unless the model has a binned
// layout (binTrees, chosen by binWorthIt); for models with more than
// maxLaneFeatures features it reads the row itself, tests for NaN and stops
// at the leaf flag (leaf).
type node struct {
	thr  float64
	left int32
	meta uint32 // feature | flag bits
}

const (
	featMask        = 1<<24 - 1
	flagDefaultLeft = 1 << 24 // missing (NaN) goes left
	flagSpecial     = 1 << 25 // categorical or MissingZero: see Ensemble.special
	flagLeaf        = 1 << 26
	flagCat         = 1 << 27 // categorical: thr holds the bitset's offset<<32 | length
	flagCatSetLeft  = 1 << 28 // categorical: members go left
)

// special describes a node the fast step cannot decide: a categorical split,
// a MissingZero split or a "x <= +Inf" split.
type special struct {
	kind       uint8
	catSetLeft bool
	nanDefault bool // categorical: NaN follows the default direction
	allLeft    bool // numeric: the threshold is "<= +Inf"
	catOff     int32
	catLen     int32
}

const (
	specialCat uint8 = iota
	specialZero
	specialAllLeft // x <= +Inf: every non-missing value goes left
	specialNumeric // thr = -Inf: only missing values may go left
)

// Ensemble is a compiled tree ensemble: all trees flattened into one node
// array (16 bytes a node, leaves inline, siblings adjacent) with per-tree root
// offsets and depths. Predict reads a mask table instead when the model fits
// one (maskTable: trees of at most 64 leaves), else walks a binned layout
// for models with categorical splits or leaf-wise trees (binTrees). It is
// immutable and safe for concurrent use; Predict and PredictRaw do not
// allocate, nor does PredictRows in steady state.
//
// Scores are exactly those of the contract's node-by-node description of
// TreeNode (the tests compare both on random ensembles), with Float32
// comparisons made on float32(x) and Float32 sums rounded to float32 after
// every tree, in tree order, starting from the base margin, as XGBoost does.
// For Float32 models the transformed prediction is rounded to float32 too.
// Limits: MaxFeatures features, MaxNodes nodes, MaxCategoryWords bitset words;
// CompileEnsemble rejects larger models.
type Ensemble struct {
	info     Info
	features []string
	groups   int
	link     Link
	sigScale float64
	f32      bool
	divisor  float64 // AverageOutput: number of iterations; else 0

	base    []float64 // per group
	nodes   []node
	roots   []int32 // per tree
	depths  []int32 // per tree: longest root-to-leaf path
	tgroup  []int32 // per tree: output group
	special []int32 // per node: index into specials (only for special nodes); nil when none
	specs   []special
	catBits []uint32
	// byGroup lists the trees of each group in order (LinkArgmax only).
	byGroup [][]int32
	// blocks selects the block scorer for PredictRows (see blockWorthIt).
	blocks bool
	// bins is the binned layout Predict walks, nil when the model is
	// outside its limits (see binTrees).
	bins *binTrees
	// masks is the mask table Predict reads instead of walking, nil when
	// the model is outside its limits (see maskTable).
	masks *maskTable
}

// blockWorthIt says whether PredictRows should walk trees for blocks of rows
// rather than row by row. Walking row by row stops at each leaf and lets the
// branch predictor learn small, shallow trees; the block scorer always walks
// a tree's full depth but never mispredicts and overlaps the rows' memory
// loads. Measured on this package's benchmarks (bench/RESULTS.md, "Model
// scoring"), blocks win from depth 6 (numeric XGBoost models at depth 6 and
// 8: 2 to 3 times faster) or once the nodes outgrow the first cache levels,
// and lose on ensembles of depth-4 trees with a few hundred nodes.
func blockWorthIt(nodes int, depths []int32) bool {
	if nodes >= 4096 {
		return true
	}
	sum := 0
	for _, d := range depths {
		sum += int(d)
	}
	return len(depths) > 0 && sum >= 5*len(depths)
}

// CompileEnsemble validates a spec (child indices in range, no cycles,
// features in range) and flattens it into contiguous arrays with no per-node
// pointers. The result implements Model. Nodes that cannot be reached from a
// tree's root are ignored.
func CompileEnsemble(spec EnsembleSpec) (*Ensemble, error) {
	nf := len(spec.FeatureNames)
	if spec.NumGroups < 1 {
		return nil, fmt.Errorf("num_groups must be at least 1, got %d", spec.NumGroups)
	}
	if spec.Link > LinkArgmax {
		return nil, fmt.Errorf("unknown link %d", spec.Link)
	}
	if err := checkFeatureNames(spec.FeatureNames); err != nil {
		return nil, err
	}
	if len(spec.BaseMargin) > spec.NumGroups {
		return nil, fmt.Errorf("%d base margins for %d groups", len(spec.BaseMargin), spec.NumGroups)
	}
	e := &Ensemble{
		features: spec.FeatureNames,
		groups:   spec.NumGroups,
		link:     spec.Link,
		sigScale: spec.SigmoidScale,
		f32:      spec.Float32,
		base:     make([]float64, spec.NumGroups),
		roots:    make([]int32, len(spec.Trees)),
		depths:   make([]int32, len(spec.Trees)),
		tgroup:   make([]int32, len(spec.Trees)),
	}
	if e.sigScale == 0 {
		e.sigScale = 1
	}
	for k, b := range spec.BaseMargin {
		if spec.Float32 {
			b = float64(float32(b))
		}
		e.base[k] = b
	}
	total := 0
	for ti, t := range spec.Trees {
		if len(t.Nodes) == 0 {
			return nil, fmt.Errorf("tree %d: no nodes", ti)
		}
		if t.Group < 0 || t.Group >= spec.NumGroups {
			return nil, fmt.Errorf("tree %d: group %d out of range [0,%d)", ti, t.Group, spec.NumGroups)
		}
		total += len(t.Nodes)
		if total > MaxNodes {
			return nil, fmt.Errorf("tree %d: more than %d nodes in the ensemble", ti, MaxNodes)
		}
	}
	c := compiler{e: e, nf: nf}
	e.nodes = make([]node, 0, total)
	for ti := range spec.Trees {
		if err := c.tree(ti, &spec.Trees[ti]); err != nil {
			return nil, fmt.Errorf("tree %d: %w", ti, err)
		}
	}
	if spec.AverageOutput && len(spec.Trees) > 0 {
		e.divisor = float64(len(spec.Trees) / spec.NumGroups)
		if e.divisor == 0 {
			e.divisor = 1
		}
	}
	if e.link == LinkArgmax {
		e.byGroup = make([][]int32, e.groups)
		for t, g := range e.tgroup {
			e.byGroup[g] = append(e.byGroup[g], int32(t))
		}
	}
	e.blocks = blockWorthIt(len(e.nodes), e.depths)
	if e.link != LinkArgmax {
		e.masks = e.compileMasks()
	}
	switch {
	case e.masks != nil:
		// Measured (BenchmarkEnsembleLayouts): the mask table row by row
		// beats the block scorer on models with special splits, which
		// the blocks leave to a slow path; the blocks stay ahead on
		// numeric depth-wise trees.
		if e.specs != nil {
			e.blocks = false
		}
	case e.link != LinkArgmax && e.binWorthIt():
		if e.bins = e.compileBins(); e.bins != nil {
			e.blocks = false // measured slower than binTrees row by row
		}
	}
	e.info = Info{Format: spec.Format, Objective: spec.Objective, Trees: len(spec.Trees),
		Features: nf, Outputs: e.NumOutputs(), Version: spec.Version}
	return e, nil
}

// checkFeatureNames rejects names the engine could not bind: empty or
// duplicate ones.
func checkFeatureNames(names []string) error {
	if len(names) > MaxFeatures {
		return fmt.Errorf("%d features, more than the limit of %d", len(names), MaxFeatures)
	}
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if n == "" {
			return fmt.Errorf("feature %d: empty name", i)
		}
		if j, dup := seen[n]; dup {
			return fmt.Errorf("feature %d: name %q already used by feature %d", i, n, j)
		}
		seen[n] = i
	}
	return nil
}

// compiler flattens trees into an Ensemble.
type compiler struct {
	e     *Ensemble
	nf    int
	seen  []bool
	queue []bfsItem
}

type bfsItem struct {
	src   int   // index in the spec's tree
	dst   int32 // index in Ensemble.nodes
	depth int32
}

// tree appends one tree in breadth-first order, so that siblings are
// adjacent.
func (c *compiler) tree(ti int, t *Tree) error {
	e := c.e
	w := t.Weight
	if w == 0 {
		w = 1
	}
	if cap(c.seen) < len(t.Nodes) {
		c.seen = make([]bool, len(t.Nodes))
	}
	c.seen = c.seen[:len(t.Nodes)]
	clear(c.seen)
	root := int32(len(e.nodes))
	e.roots[ti] = root
	e.tgroup[ti] = int32(t.Group)
	e.nodes = append(e.nodes, node{})
	c.seen[0] = true
	c.queue = append(c.queue[:0], bfsItem{src: 0, dst: root})
	var depth int32
	for qi := 0; qi < len(c.queue); qi++ {
		it := c.queue[qi]
		n := &t.Nodes[it.src]
		depth = max(depth, it.depth)
		if n.Leaf {
			v := n.Value * w
			if e.f32 {
				v = float64(float32(n.Value) * float32(w))
			}
			nd := node{thr: v, left: it.dst, meta: flagLeaf | uint32(2*c.nf)}
			if v == math.Inf(-1) {
				nd.left-- // -Inf >= -Inf: the step goes "right", to itself
			}
			e.nodes[it.dst] = nd
			continue
		}
		if n.Feature < 0 || n.Feature >= c.nf {
			return fmt.Errorf("node %d: feature %d out of range [0,%d)", it.src, n.Feature, c.nf)
		}
		for _, ch := range [2]int{n.Left, n.Right} {
			if ch < 0 || ch >= len(t.Nodes) {
				return fmt.Errorf("node %d: child %d out of range [0,%d)", it.src, ch, len(t.Nodes))
			}
			if c.seen[ch] {
				return fmt.Errorf("node %d: child %d is reached twice (cycle or shared subtree)", it.src, ch)
			}
			c.seen[ch] = true
		}
		left := int32(len(e.nodes))
		e.nodes = append(e.nodes, node{}, node{})
		c.queue = append(c.queue,
			bfsItem{src: n.Left, dst: left, depth: it.depth + 1},
			bfsItem{src: n.Right, dst: left + 1, depth: it.depth + 1})
		nd, err := c.split(n)
		if err != nil {
			return fmt.Errorf("node %d: %w", it.src, err)
		}
		nd.left = left
		e.nodes[it.dst] = nd
		if nd.meta&flagSpecial != 0 {
			if e.special == nil {
				e.special = make([]int32, cap(e.nodes))
			}
			if int(it.dst) >= len(e.special) {
				e.special = append(e.special, make([]int32, int(it.dst)+1-len(e.special))...)
			}
			e.special[it.dst] = int32(len(e.specs) - 1)
		}
	}
	e.depths[ti] = depth
	return nil
}

// split compiles one split node (children are filled in by the caller). A
// special node appends its description to e.specs.
func (c *compiler) split(n *TreeNode) (node, error) {
	e := c.e
	nd := node{meta: uint32(n.Feature)}
	if n.CatBits != nil {
		if len(e.catBits)+len(n.CatBits) > MaxCategoryWords {
			return nd, fmt.Errorf("categorical bitsets exceed %d words", MaxCategoryWords)
		}
		nd.meta |= flagSpecial | flagCat
		if n.DefaultLeft {
			nd.meta |= flagDefaultLeft
		}
		if n.CatSetLeft {
			nd.meta |= flagCatSetLeft
		}
		// The scorers decide non-missing values from the node alone.
		nd.thr = math.Float64frombits(uint64(len(e.catBits))<<32 | uint64(len(n.CatBits)))
		e.specs = append(e.specs, special{kind: specialCat, catSetLeft: n.CatSetLeft,
			nanDefault: n.Missing == MissingNaN, catOff: int32(len(e.catBits)), catLen: int32(len(n.CatBits))})
		e.catBits = append(e.catBits, n.CatBits...)
		return nd, nil
	}
	if n.Missing > MissingNone {
		return nd, fmt.Errorf("unknown missing rule %d", n.Missing)
	}
	thr, allLeft := strictThreshold(n.Threshold, n.LessEqual, e.f32)
	nd.thr = thr
	switch {
	case allLeft || n.Missing == MissingZero:
		nd.meta |= flagSpecial
		kind := specialZero
		if allLeft && n.Missing != MissingZero {
			kind = specialAllLeft
		}
		// With MissingNone, NaN is read as 0, which goes left of +Inf.
		if n.DefaultLeft || (kind == specialAllLeft && n.Missing == MissingNone) {
			nd.meta |= flagDefaultLeft
		}
		e.specs = append(e.specs, special{kind: kind, allLeft: allLeft})
	case n.Missing == MissingNone:
		// NaN is read as 0: it goes where 0 goes.
		if 0 < thr || allLeft {
			nd.meta |= flagDefaultLeft
		}
	case n.DefaultLeft:
		nd.meta |= flagDefaultLeft
	}
	if nd.meta&flagSpecial == 0 {
		if math.IsInf(thr, -1) {
			// Nothing goes left but missing values may: the column trick
			// below cannot express it.
			nd.meta |= flagSpecial
			e.specs = append(e.specs, special{kind: specialNumeric})
		} else if nd.meta&flagDefaultLeft == 0 {
			// Read the copy of the feature where NaN is +Inf (see node).
			nd.meta += uint32(c.nf)
		}
	}
	return nd, nil
}

// strictThreshold returns thr such that a non-NaN float64 x goes left exactly
// when x < thr. allLeft reports the one case no thr can express: x <= +Inf.
//
// With f32, the reference compares float32(x) < float32(t). Rounding to
// float32 is monotone, so the values of x that go left are those below the
// smallest float64 B with float32(B) >= float32(t). B is the midpoint between
// float32(t) and the float32 below it when a tie rounds up to float32(t) (its
// significand is even), else the next float64 after that midpoint.
func strictThreshold(t float64, lessEqual, f32 bool) (thr float64, allLeft bool) {
	if math.IsNaN(t) {
		// Every comparison with NaN is false: nothing goes left.
		return math.Inf(-1), false
	}
	if !f32 {
		if !lessEqual {
			return t, false
		}
		if math.IsInf(t, 1) {
			return t, true
		}
		return math.Nextafter(t, math.Inf(1)), false
	}
	t32 := float32(t)
	if lessEqual {
		// float32(x) <= t32 is float32(x) < the next float32.
		if math.IsInf(float64(t32), 1) {
			return float64(t32), true
		}
		t32 = math.Nextafter32(t32, float32(math.Inf(1)))
	}
	if math.IsInf(float64(t32), -1) {
		return math.Inf(-1), false
	}
	below := float64(math.Nextafter32(t32, float32(math.Inf(-1))))
	upper := float64(t32)
	if math.IsInf(upper, 1) {
		upper = 0x1p128 // the value float32 overflow rounds toward
	}
	if math.IsInf(below, -1) {
		below = -0x1p128
	}
	mid := below/2 + upper/2 // exact: both are float32 values
	if float32(mid) >= t32 {
		return mid, false
	}
	return math.Nextafter(mid, math.Inf(1)), false
}

// Info implements Model.
func (e *Ensemble) Info() Info { return e.info }

// Features implements Model.
func (e *Ensemble) Features() []string { return e.features }

// NumOutputs implements Model.
func (e *Ensemble) NumOutputs() int {
	if e.link == LinkArgmax {
		return 1
	}
	return e.groups
}

// b2u converts a bool to 0 or 1 without a branch (a Go bool is one byte
// holding 0 or 1).
func b2u(b bool) uint32 { return uint32(*(*uint8)(unsafe.Pointer(&b))) }

// catStep decides categorical node n (index i) for a value x that is not
// NaN, from the node alone.
func (e *Ensemble) catStep(i int32, n *node, x float64) int32 {
	bits := math.Float64bits(n.thr)
	off, words := uint32(bits>>32), uint32(bits)
	member := false
	setLeft := n.meta&flagCatSetLeft != 0
	if c, ok := catCode(x, setLeft, 32*words); ok {
		member = e.catBits[off+c/32]&(1<<(c%32)) != 0
	}
	return n.left + int32(b2u(member != setLeft))
}

// catCode returns the category code of a categorical split's non-NaN
// value x (see TreeNode.CatBits) and whether it is one below limit:
// truncated toward zero, from x >= 0 for XGBoost and from x > -1 for
// LightGBM (lgb: members go left), whose static_cast<int> makes values in
// (-1, 0) category 0.
func catCode(x float64, lgb bool, limit uint32) (uint32, bool) {
	if (x >= 0 || (lgb && x > -1)) && x < float64(limit) {
		c := uint32(int64(x)) // in (-1, limit): 0 <= c <= limit
		return c, c < limit
	}
	return 0, false
}

// slowStep decides special nodes; x is the value of the node's feature.
func (e *Ensemble) slowStep(i int32, x float64) int32 {
	n := &e.nodes[i]
	s := &e.specs[e.special[i]]
	dl := n.meta&flagDefaultLeft != 0
	var left bool
	switch s.kind {
	case specialCat:
		if x != x && s.nanDefault {
			left = dl
			break
		}
		member := false
		if c, ok := catCode(x, s.catSetLeft, uint32(32*s.catLen)); ok {
			member = e.catBits[uint32(s.catOff)+c/32]&(1<<(c%32)) != 0
		}
		left = member == s.catSetLeft
	case specialZero:
		if x != x {
			x = 0
		}
		if x >= -ZeroThreshold && x <= ZeroThreshold {
			left = dl
		} else {
			left = x < n.thr || s.allLeft
		}
	case specialAllLeft:
		left = x == x || dl
	default: // specialNumeric
		left = x < n.thr || (x != x && dl)
	}
	if left {
		return n.left
	}
	return n.left + 1
}

// leaf walks tree t for row and returns its (weighted) leaf value.
func (e *Ensemble) leaf(t int, row []float64) float64 {
	nodes, nf := e.nodes, len(e.features)
	i := e.roots[t]
	for {
		n := &nodes[i]
		meta := n.meta
		if meta&(flagLeaf|flagSpecial) != 0 {
			if meta&flagLeaf != 0 {
				return n.thr
			}
			x := row[meta&featMask]
			if meta&flagCat != 0 && x == x {
				i = e.catStep(i, n, x)
			} else {
				i = e.slowStep(i, x)
			}
			continue
		}
		// Without a branch on the node's default direction, which the
		// branch predictor cannot learn: ndl is 1 when missing goes right,
		// and then the feature field holds nf+f.
		ndl := ^meta >> 24 & 1
		x := row[int(meta&featMask)-nf*int(ndl)]
		right := b2u(x >= n.thr) | (b2u(x != x) & ndl)
		i = n.left + int32(right)
	}
}

// margins writes the margins of all groups into out[:e.groups].
func (e *Ensemble) margins(row []float64, out []float64) {
	out = out[:e.groups]
	copy(out, e.base)
	if e.masks != nil {
		e.marginsMasks(row, out)
		return
	}
	if b := e.bins; b != nil {
		// Go zeroes the whole array: the small one is enough for most
		// models.
		if b.words <= binSmallWords {
			var masks [binSmallWords]uint64
			e.marginsBins(b.rowMasks(masks[:b.words], row), row, out)
		} else {
			var masks [binMaxWords]uint64
			e.marginsBins(b.rowMasks(masks[:b.words], row), row, out)
		}
		return
	}
	if nf := len(e.features); nf > 0 && nf <= maxLaneFeatures {
		var buf [2*maxLaneFeatures + 1]float64
		e.marginsLanes(layoutRow(buf[:2*nf+1], row[:nf]), out)
		return
	}
	if e.f32 {
		if e.groups == 1 {
			s := float32(out[0])
			for t := range e.roots {
				s += float32(e.leaf(t, row))
			}
			out[0] = float64(s)
			return
		}
		for t := range e.roots {
			g := e.tgroup[t]
			out[g] = float64(float32(out[g]) + float32(e.leaf(t, row)))
		}
		return
	}
	if e.groups == 1 {
		s := out[0]
		for t := range e.roots {
			s += e.leaf(t, row)
		}
		out[0] = s
	} else {
		for t := range e.roots {
			out[e.tgroup[t]] += e.leaf(t, row)
		}
	}
	if e.divisor != 0 {
		for k := range out {
			out[k] /= e.divisor
		}
	}
}

// groupMargin returns the margin of group g alone (LinkArgmax).
func (e *Ensemble) groupMargin(g int, row []float64) float64 {
	if e.f32 {
		s := float32(e.base[g])
		for _, t := range e.byGroup[g] {
			s += float32(e.leaf(int(t), row))
		}
		return float64(s)
	}
	s := e.base[g]
	for _, t := range e.byGroup[g] {
		s += e.leaf(int(t), row)
	}
	if e.divisor != 0 {
		s /= e.divisor
	}
	return s
}

// argmax returns the index and margin of the largest group margin without
// needing room for all of them; the first of equal margins wins.
func (e *Ensemble) argmax(row []float64) (int, float64) {
	best, bm := 0, e.groupMargin(0, row)
	for g := 1; g < e.groups; g++ {
		if m := e.groupMargin(g, row); m > bm {
			best, bm = g, m
		}
	}
	return best, bm
}

// PredictRaw implements Model. row must hold len(Features()) values. For
// LinkArgmax (one output) it writes the largest margin.
func (e *Ensemble) PredictRaw(row []float64, out []float64) {
	if e.link == LinkArgmax {
		_, out[0] = e.argmax(row)
		return
	}
	e.margins(row, out)
}

// Predict implements Model. row must hold len(Features()) values.
func (e *Ensemble) Predict(row []float64, out []float64) {
	if e.link == LinkArgmax {
		best, _ := e.argmax(row)
		out[0] = float64(best)
		return
	}
	e.margins(row, out)
	e.link32(out[:e.groups])
}

// link32 applies the link, in float32 for Float32 models (applyLink32).
func (e *Ensemble) link32(out []float64) {
	if e.f32 {
		applyLink32(e.link, e.sigScale, out)
	} else {
		applyLink(e.link, e.sigScale, out)
	}
}

// applyLink32 is applyLink in XGBoost's float32 arithmetic, so that printed
// predictions match XGBoost's own digit for digit (expf is taken as the
// correctly rounded float32 exp).
func applyLink32(link Link, scale float64, out []float64) {
	expf := func(x float32) float32 { return float32(math.Exp(float64(x))) }
	switch link {
	case LinkSigmoid:
		// 1.0f / (1.0f + expf(-x))
		for k, v := range out {
			out[k] = float64(1 / (1 + expf(-float32(scale)*float32(v))))
		}
	case LinkExp:
		for k, v := range out {
			out[k] = float64(expf(float32(v)))
		}
	case LinkSoftmax:
		// common::Softmax: expf(x - max) summed in double, each divided by
		// the sum rounded to float.
		mx := float32(out[0])
		for _, v := range out[1:] {
			mx = max(mx, float32(v))
		}
		sum := 0.0
		for k, v := range out {
			x := expf(float32(v) - mx)
			out[k] = float64(x)
			sum += float64(x)
		}
		for k, v := range out {
			out[k] = float64(float32(v) / float32(sum))
		}
	}
}

// applyLink transforms margins in place. LinkArgmax is handled by callers.
func applyLink(link Link, scale float64, out []float64) {
	switch link {
	case LinkSigmoid:
		for k, x := range out {
			out[k] = 1 / (1 + math.Exp(-scale*x))
		}
	case LinkExp:
		for k, x := range out {
			out[k] = math.Exp(x)
		}
	case LinkSoftmax:
		mx := out[0]
		for _, x := range out[1:] {
			mx = max(mx, x)
		}
		sum := 0.0
		for k, x := range out {
			out[k] = math.Exp(x - mx)
			sum += out[k]
		}
		for k := range out {
			out[k] /= sum
		}
	}
}

// blockRows is how many rows predictRows walks through a tree together: their
// paths are independent, so the CPU overlaps their memory loads, and a tree's
// nodes are fetched into cache once for the whole block (XGBoost's CPU
// predictor also scores blocks of 64 rows).
const blockRows = 64

// layoutRow copies row into dst (2*len(row)+1 values) in the layout the
// nodes expect (see node) and returns dst.
func layoutRow(dst, row []float64) []float64 {
	nf := len(row)
	neg, pos := dst[:nf], dst[nf:2*nf]
	inf := math.Inf(1)
	for j, x := range row {
		if x == x {
			neg[j], pos[j] = x, x
		} else {
			neg[j], pos[j] = -inf, inf
		}
	}
	dst[2*nf] = -inf
	return dst
}

// scratchPool holds the row copies of predictRows (*[]float64).
var scratchPool sync.Pool

// predictRows scores n rows on the calling goroutine, blockRows at a time.
// It copies each block of rows in the layout the nodes expect (see node) into
// a pooled buffer, so it does not allocate in steady state.
func (e *Ensemble) predictRows(rows []float64, n int, out []float64, raw bool) {
	nf, no := len(e.features), e.NumOutputs()
	if e.link == LinkArgmax || nf == 0 || !e.blocks {
		for r := 0; r < n; r++ {
			if raw {
				e.PredictRaw(rows[r*nf:(r+1)*nf], out[r*no:(r+1)*no])
			} else {
				e.Predict(rows[r*nf:(r+1)*nf], out[r*no:(r+1)*no])
			}
		}
		return
	}
	rows, out = rows[:n*nf], out[:n*no]
	bp, _ := scratchPool.Get().(*[]float64)
	if bp == nil {
		bp = new([]float64)
	}
	stride := 2*nf + 1
	// One spare row: stepRows advances its row pointer past the last row,
	// which must stay inside the allocation.
	if need := (blockRows + 1) * stride; cap(*bp) < need {
		*bp = make([]float64, need)
	}
	scratch := (*bp)[:blockRows*stride]
	var idx [blockRows]int32
	for lo := 0; lo < n; lo += blockRows {
		hi := min(lo+blockRows, n)
		m := hi - lo
		for r := 0; r < m; r++ {
			layoutRow(scratch[r*stride:(r+1)*stride], rows[(lo+r)*nf:(lo+r+1)*nf])
		}
		e.block(scratch[:m*stride], stride, out[lo*no:hi*no], idx[:m])
		if !raw {
			for r := lo; r < hi; r++ {
				e.link32(out[r*no : (r+1)*no])
			}
		}
	}
	scratchPool.Put(bp)
}

// block writes the margins of len(idx) rows into out; rows holds the copies
// described at node, stride values per row; idx is scratch.
func (e *Ensemble) block(rows []float64, stride int, out []float64, idx []int32) {
	g := e.groups
	m := len(idx)
	rows, out = rows[:m*stride], out[:m*g]
	for r := 0; r < m; r++ {
		copy(out[r*g:(r+1)*g], e.base)
	}
	nodes := e.nodes
	base := unsafe.Pointer(unsafe.SliceData(nodes))
	rowBase := unsafe.Pointer(unsafe.SliceData(rows))
	for t, root := range e.roots {
		for r := range idx {
			idx[r] = root
		}
		if e.specs == nil {
			for d := e.depths[t]; d > 0; d-- {
				stepRowsPlain(base, idx, rowBase, uintptr(stride)*8)
			}
		}
		for d := e.depths[t]; d > 0 && e.specs != nil; d-- {
			if stepRows(base, idx, rowBase, uintptr(stride)*8) {
				e.fixup(idx, rows, stride)
			}
		}
		k := int(e.tgroup[t])
		if e.f32 {
			for r, i := range idx {
				o := &out[r*g+k]
				*o = float64(float32(*o) + float32(nodes[i].thr))
			}
		} else {
			for r, i := range idx {
				out[r*g+k] += nodes[i].thr
			}
		}
	}
	if e.divisor != 0 {
		for k := range out {
			out[k] /= e.divisor
		}
	}
}

// fixup decides the special nodes at which stepRows left rows (marked ^i);
// rows has the layout described at node, lane r reading at r*stride (stride
// 0: one row for every lane).
func (e *Ensemble) fixup(idx []int32, rows []float64, stride int) {
	nf := len(e.features)
	for r, i := range idx {
		if i >= 0 {
			continue
		}
		j := ^i
		n := &e.nodes[j]
		f := int(n.meta & featMask)
		x := rows[r*stride+f]
		// Column f holds NaN as -Inf and column nf+f as +Inf; no other
		// value is both.
		if x == math.Inf(-1) && rows[r*stride+nf+f] == math.Inf(1) {
			x = math.NaN()
		}
		if n.meta&flagCat != 0 && x == x {
			idx[r] = e.catStep(j, n, x)
		} else {
			idx[r] = e.slowStep(j, x)
		}
	}
}

// treeLanes is how many trees marginsLanes walks together for one row.
const treeLanes = 8

// maxLaneFeatures bounds the models whose rows marginsLanes copies onto the
// stack (2*maxLaneFeatures+1 float64s); wider models are walked tree by tree.
const maxLaneFeatures = 128

// marginsLanes is margins for one row copied in the block layout (see node):
// it walks treeLanes trees at once, which gives the CPU independent paths to
// overlap where a single path waits on each load in turn.
func (e *Ensemble) marginsLanes(rows []float64, out []float64) {
	nodes := e.nodes
	base := unsafe.Pointer(unsafe.SliceData(nodes))
	rowp := unsafe.Pointer(unsafe.SliceData(rows))
	var lanes [treeLanes]int32
	for t0 := 0; t0 < len(e.roots); t0 += treeLanes {
		idx := lanes[:min(treeLanes, len(e.roots)-t0)]
		var depth int32
		for j := range idx {
			idx[j] = e.roots[t0+j]
			depth = max(depth, e.depths[t0+j])
		}
		for d := depth; d > 0; d-- {
			if e.specs == nil {
				stepRowsPlain(base, idx, rowp, 0)
			} else if stepRows(base, idx, rowp, 0) {
				e.fixup(idx, rows, 0)
			}
		}
		for j, i := range idx {
			g := e.tgroup[t0+j]
			if e.f32 {
				out[g] = float64(float32(out[g]) + float32(nodes[i].thr))
			} else {
				out[g] += nodes[i].thr
			}
		}
	}
	if e.divisor != 0 {
		for k := range out {
			out[k] /= e.divisor
		}
	}
}

// stepRows moves every row of a block one level down: idx[r] is the node of
// row r, whose values start at rows + r*stride. It is the step of
// Ensemble.leaf without bounds checks (CompileEnsemble has checked every
// child index and feature, and the caller passes a block of len(idx) rows in
// the layout described at node) and without calls, which keeps the loop in
// registers. A row at a special node is left as ^i for the caller, and the
// result says whether there is one.
func stepRows(nodes unsafe.Pointer, idx []int32, rows unsafe.Pointer, stride uintptr) bool {
	var special uint32
	for r, i := range idx {
		n := (*node)(unsafe.Add(nodes, uintptr(i)*unsafe.Sizeof(node{})))
		meta := n.meta
		if meta&flagSpecial != 0 {
			special = 1
			idx[r] = ^i
		} else {
			x := *(*float64)(unsafe.Add(rows, uintptr(meta&featMask)*8))
			idx[r] = n.left + int32(b2u(x >= n.thr))
		}
		rows = unsafe.Add(rows, stride)
	}
	return special != 0
}

// stepRowsPlain is stepRows for ensembles without special nodes.
func stepRowsPlain(nodes unsafe.Pointer, idx []int32, rows unsafe.Pointer, stride uintptr) {
	for r, i := range idx {
		n := (*node)(unsafe.Add(nodes, uintptr(i)*unsafe.Sizeof(node{})))
		x := *(*float64)(unsafe.Add(rows, uintptr(n.meta&featMask)*8))
		idx[r] = n.left + int32(b2u(x >= n.thr))
		rows = unsafe.Add(rows, stride)
	}
}

// binTrees is the layout of an ensemble's trees that Predict walks when the
// model has no mask table (trees of more than 64 leaves, or a table beyond
// its bounds) and binWorthIt says so: every
// split reduced to one bit test, "go right when the row's mask word at
// column col has a bit in common with the node's mask".
//
// A row is first turned into mask words (rowMasks), LightGBM-style binning
// done per row: for each feature f, the sorted distinct thresholds T of its
// numeric splits give the row's bin b = #{k : x >= T[k]} (b = 0 when NaN
// goes left, len(T) when NaN goes right, as the columns of node do), and
// b is written as len(T)/64+1 words, word q being ^0 when b>>6 > q, 0 when
// b>>6 < q and 1<<(b&63) otherwise. A numeric split "x >= T[K-1] goes
// right" reads word K>>6 of its feature's column with mask ^0<<(K&63): the
// test holds exactly when b >= K, so the decision is the float comparison's
// bit for bit. A categorical split whose bitset only holds codes below 62
// reads its feature's code column, the one-hot mask 1<<code of the value
// (the category for a value whose integer part is in [0, 62), 62 for any
// other number, 63 for NaN), with the mask of the codes that go right (bit
// 62: non-members; bit 63: NaN). A leaf reads the zero column, so it steps
// to itself, and holds its value's bits in mask. Any other special node
// (binSlow) goes through slowStep.
//
// The step is then two loads, an AND and an add with no branch, the same
// for numeric and categorical splits, which matters for LightGBM models (35%
// of the splits of the genlin Poisson fixture are categorical). Trees are
// laid out depth-first, siblings adjacent, and walked treeLanes at a time
// like marginsLanes, for at most the depth of the deepest, but the walk
// stops as soon as every lane is at a leaf (binWalk); within each chunk of
// binChunk trees, trees are grouped by depth (deepest first, so a partial
// group is a shallow one), so that the shallow trees of a leaf-wise
// (LightGBM) model do not wait for the deep ones. On the genlin Poisson
// fixture that is 835 steps per row instead of 1 128 for the same grouping
// without the stop, and 534 nodes actually on the rows' paths.
//
// Tried and dropped, measured on that fixture in the same runs: a walk
// where each lane, at its leaf, moves on to its next tree without a branch
// (534 steps plus the lanes' imbalance, about 720, but twice the
// instructions per step: slower than grouping by depth with the early
// stop); the numeric and categorical tests computed side by side and
// selected (more instructions than the single mask test); four lanes held
// in registers instead of eight (20% slower: too little to overlap); a
// conditional move instead of the SETcc and shift (the compiler emitted a
// branch: 40% slower).
//
// Limits: models with at most maxLaneFeatures features, binMaxWords mask
// words (the row's masks are on the stack) and fewer than 1<<27 nodes (byte
// offsets are 32-bit); others use marginsLanes.
type binTrees struct {
	nodes []binNode
	roots []uint32 // per tree: byte offset of its root in nodes
	// order lists each chunk's trees by depth, and depth the number of
	// steps of each group of treeLanes trees in that order.
	order []int32
	depth []int32
	// thr holds the sorted distinct thresholds of each feature's numeric
	// splits; col the first mask word of each layout column (see node):
	// col[f] for NaN as -Inf, col[nf+f] for NaN as +Inf; code the word of
	// each feature's code; zero the constant zero word.
	thr       [][]float64
	col, code []int32
	catLGB    []bool // per feature: its code column follows LightGBM (catCode)
	zero      int32
	words     int
	slow      []int32 // index in Ensemble.nodes of each slow node
}

// binNode is one node of binTrees: 16 bytes.
type binNode struct {
	mask uint64
	left uint32 // byte offset of the left child; the right one follows
	meta uint32 // mask word index, or binSlow
}

// binSlow marks a node left to slowStep; its mask is its index in
// binTrees.slow.
const binSlow = 1 << 31

// Limits of binTrees.
const (
	// binMaxWords bounds a row's mask words (8 bytes each, on the stack):
	// 3 words a feature of fewer than 64 thresholds, 11 for 256.
	binMaxWords = 512
	// binSmallWords is the size of the smaller stack buffer of margins.
	binSmallWords = 64
	// binChunk is how many trees marginsBins orders by depth and scores
	// before adding their leaves to the margins, in tree order.
	binChunk = 128
)

// Codes of a categorical value that are not categories (see binTrees).
const (
	codeOther = 62
	codeNaN   = 63
)

// binWorthIt says whether Predict (and PredictRows, row by row) should walk
// binTrees rather than marginsLanes (and the block scorer). Measured in the
// same runs (bench/RESULTS.md, "LightGBM scoring"; BenchmarkEnsembleLayouts,
// median CPU time per row), binTrees win when a model has categorical or
// other special splits, which marginsLanes and the block scorer leave to a
// slow path: 2.9 times on the genlin Poisson fixture, 1.8 on XGBoost's
// large_depth8, 4% on the shallow binary_logistic; PredictRows' blocks are
// slower than binTrees row by row on both of the first two. They are also
// taken for leaf-wise trees, whose longest paths are well above the paths
// rows take, for the early stop of binWalk (on the Poisson fixture it saves
// 26% of the steps; no numeric leaf-wise fixture measures it alone). On
// numeric depth-wise trees (XGBoost d6x150, d8x300) they are 2 to 8% slower
// than marginsLanes, whose step reads the row's value directly where
// binTrees first bin the row, and PredictRows' blocks are faster still.
//
// A tree is leaf-wise here when its expected path length, for a row going
// either way at every split with equal chance, is at most 3/4 of its depth
// (summed over trees); a complete tree has both equal.
func (e *Ensemble) binWorthIt() bool {
	if e.specs != nil {
		return true
	}
	var expected, longest float64
	type item struct{ i, depth int32 }
	var stack []item
	for t, root := range e.roots {
		longest += float64(e.depths[t])
		stack = append(stack[:0], item{root, 0})
		for len(stack) > 0 {
			it := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if n := &e.nodes[it.i]; n.meta&flagLeaf == 0 {
				stack = append(stack, item{n.left, it.depth + 1}, item{n.left + 1, it.depth + 1})
			} else {
				expected += float64(it.depth) * math.Ldexp(1, -int(it.depth))
			}
		}
	}
	return expected <= 0.75*longest
}

// compileBins lays out the compiled trees for marginsBins, or returns nil
// when the model is outside the limits of binTrees.
func (e *Ensemble) compileBins() *binTrees {
	nf := len(e.features)
	if nf == 0 || nf > maxLaneFeatures || len(e.nodes) >= 1<<27 {
		return nil
	}
	b := &binTrees{thr: make([][]float64, nf), col: make([]int32, 2*nf), code: make([]int32, nf), catLGB: make([]bool, nf)}
	// A feature's code column follows the library of its categorical
	// splits (catCode); a feature split both ways (only through
	// CompileEnsemble) leaves its categorical splits to slowStep.
	catSeen, catMixed := make([]bool, nf), make([]bool, nf)
	for i := range e.nodes {
		n := &e.nodes[i]
		f := int(n.meta&featMask) % nf
		switch {
		case n.meta&(flagLeaf|flagSpecial) == 0:
			b.thr[f] = append(b.thr[f], n.thr)
		case n.meta&flagLeaf == 0 && n.meta&flagCat != 0:
			lgb := n.meta&flagCatSetLeft != 0
			catMixed[f] = catMixed[f] || (catSeen[f] && b.catLGB[f] != lgb)
			catSeen[f], b.catLGB[f] = true, lgb
		}
	}
	w := 0
	for f, t := range b.thr {
		slices.Sort(t)
		b.thr[f] = slices.Compact(t)
		b.col[f], b.col[nf+f] = int32(w), int32(w+len(b.thr[f])/64+1)
		w += 2 * (len(b.thr[f])/64 + 1)
	}
	for f := range b.code {
		b.code[f] = int32(w)
		w++
	}
	b.zero = int32(w)
	b.words = w + 1
	if b.words > binMaxWords {
		return nil
	}
	// Node 0 is a sink: partial groups of trees wait there.
	b.nodes = append(make([]binNode, 0, len(e.nodes)+1), binNode{meta: uint32(b.zero)})
	var walk func(src int32, dst int)
	walk = func(src int32, dst int) {
		n := &e.nodes[src]
		var nd binNode
		switch {
		case n.meta&flagLeaf != 0:
			b.nodes[dst] = binNode{mask: math.Float64bits(n.thr), left: uint32(dst) * 16, meta: uint32(b.zero)}
			return
		case n.meta&flagSpecial == 0:
			c := int(n.meta & featMask)
			t := b.thr[c%nf]
			k, _ := slices.BinarySearch(t, n.thr)
			k++ // the bins at or above k+1 go right
			nd = binNode{mask: ^uint64(0) << (k % 64), meta: uint32(int(b.col[c]) + k/64)}
		default:
			if m, ok := e.binCatMask(src); ok && !catMixed[int(n.meta&featMask)%nf] {
				nd = binNode{mask: m, meta: uint32(b.code[n.meta&featMask])}
			} else {
				nd = binNode{mask: uint64(len(b.slow)), meta: binSlow}
				b.slow = append(b.slow, src)
			}
		}
		left := len(b.nodes)
		nd.left = uint32(left) * 16
		b.nodes[dst] = nd
		b.nodes = append(b.nodes, binNode{}, binNode{})
		walk(n.left, left)
		walk(n.left+1, left+1)
	}
	b.roots = make([]uint32, len(e.roots))
	for t, root := range e.roots {
		dst := len(b.nodes)
		b.roots[t] = uint32(dst) * 16
		b.nodes = append(b.nodes, binNode{})
		walk(root, dst)
	}
	for t0 := 0; t0 < len(e.roots); t0 += binChunk {
		order := make([]int32, min(binChunk, len(e.roots)-t0))
		for j := range order {
			order[j] = int32(t0 + j)
		}
		slices.SortStableFunc(order, func(a, b int32) int { return int(e.depths[b] - e.depths[a]) })
		for g := 0; g < len(order); g += treeLanes {
			var d int32
			for _, t := range order[g:min(g+treeLanes, len(order))] {
				d = max(d, e.depths[t])
			}
			b.depth = append(b.depth, d)
		}
		b.order = append(b.order, order...)
	}
	return b
}

// binCatMask returns the mask of binTrees for categorical node i, or false
// when its bitset holds codes above 61.
func (e *Ensemble) binCatMask(i int32) (uint64, bool) {
	n := &e.nodes[i]
	if n.meta&flagCat == 0 {
		return 0, false
	}
	s := &e.specs[e.special[i]]
	if s.catLen > 2 {
		return 0, false
	}
	var set uint64
	for w := range s.catLen {
		set |= uint64(e.catBits[s.catOff+w]) << (32 * w)
	}
	if set>>codeOther != 0 {
		return 0, false
	}
	right := set // members go right, non-members left
	other := uint64(0)
	if s.catSetLeft {
		right, other = ^set&^(3<<codeOther), 1
	}
	nan := other // NaN is a non-member
	if s.nanDefault {
		nan = uint64(b2u(n.meta&flagDefaultLeft == 0))
	}
	return right | other<<codeOther | nan<<codeNaN, true
}

// rowMasks writes the mask words of row into dst (b.words words) and
// returns dst.
func (b *binTrees) rowMasks(dst []uint64, row []float64) []uint64 {
	nf := len(b.code)
	row = row[:nf]
	for f, x := range row {
		t := b.thr[f]
		lo, hi := 0, len(t) // NaN: bin 0 in column f, len(t) in column nf+f
		if x == x {
			lo = binOf(t, x)
			hi = lo
		}
		binWords(dst[b.col[f]:b.col[nf+f]], lo)
		binWords(dst[b.col[nf+f]:][:len(t)/64+1], hi)
		c := uint64(codeOther)
		if x != x {
			c = codeNaN
		} else if k, ok := catCode(x, b.catLGB[f], codeOther); ok {
			c = uint64(k)
		}
		dst[b.code[f]] = 1 << c
	}
	dst[b.zero] = 0
	return dst
}

// binOf returns #{k : t[k] <= x} for sorted t and x not NaN, by a binary
// search without branches on the comparisons, whose outcomes no predictor
// could learn.
func binOf(t []float64, x float64) int {
	if len(t) == 0 {
		return 0
	}
	base, n := 0, len(t)
	for n > 1 {
		h := n / 2
		base += h & -int(bit(t[base+h] <= x))
		n -= h
	}
	if t[base] <= x {
		base++
	}
	return base
}

// binWords writes bin v as the words of binTrees.
func binWords(dst []uint64, v int) {
	for q := range dst {
		var m uint64
		switch {
		case v>>6 > q:
			m = ^uint64(0)
		case v>>6 == q:
			m = 1 << (v & 63)
		}
		dst[q] = m
	}
}

// marginsBins is margins over binTrees; masks holds rowMasks(row).
func (e *Ensemble) marginsBins(masks []uint64, row []float64, out []float64) {
	b := e.bins
	nodes := unsafe.Pointer(unsafe.SliceData(b.nodes))
	mp := unsafe.Pointer(unsafe.SliceData(masks))
	var vals [binChunk]float64
	nt, gi := len(e.roots), 0
	for t0 := 0; t0 < nt; t0 += binChunk {
		m := min(binChunk, nt-t0)
		order := b.order[t0 : t0+m]
		for g := 0; g < m; g += treeLanes {
			trees := order[g:min(g+treeLanes, m)]
			var idx [treeLanes]uint32 // 0: the sink
			for j, t := range trees {
				idx[j] = b.roots[t]
			}
			if b.slow == nil {
				binWalk(nodes, &idx, mp, b.depth[gi])
			} else {
				for d := b.depth[gi]; d > 0; d-- {
					if binStep(nodes, &idx, mp) {
						e.binFixup(&idx, row)
					}
				}
			}
			gi++
			for j, t := range trees {
				vals[int(t)-t0] = math.Float64frombits((*binNode)(unsafe.Add(nodes, uintptr(idx[j]))).mask)
			}
		}
		e.addLeaves(vals[:m], e.tgroup[t0:t0+m], out)
	}
	if e.divisor != 0 {
		for k := range out {
			out[k] /= e.divisor
		}
	}
}

// addLeaves adds leaf values to out in order, vals[j] to group groups[j].
// The sums are serial (their order is the result's); with one group the
// running sum stays in a register instead of going through out[0] in memory,
// which halves their latency.
func (e *Ensemble) addLeaves(vals []float64, groups []int32, out []float64) {
	switch {
	case e.groups == 1 && e.f32:
		s := float32(out[0])
		for _, v := range vals {
			s += float32(v)
		}
		out[0] = float64(s)
	case e.groups == 1:
		s := out[0]
		for _, v := range vals {
			s += v
		}
		out[0] = s
	case e.f32:
		for j, v := range vals {
			g := groups[j]
			out[g] = float64(float32(out[g]) + float32(v))
		}
	default:
		for j, v := range vals {
			out[groups[j]] += v
		}
	}
}

// binStep moves every lane one step: idx holds byte offsets into nodes,
// masks the row's mask words. Like stepRows it has no bounds checks
// (compileBins has checked every index) and no calls; a lane at a slow node
// is left as ^i for binFixup, and the result says whether there is one.
func binStep(nodes unsafe.Pointer, idx *[treeLanes]uint32, masks unsafe.Pointer) bool {
	var slow uint32
	for j, i := range idx {
		n := (*binNode)(unsafe.Add(nodes, uintptr(i)))
		meta := n.meta
		if meta&binSlow != 0 {
			slow = 1
			idx[j] = ^i
			continue
		}
		m := *(*uint64)(unsafe.Add(masks, uintptr(meta)*8))
		idx[j] = n.left + bit(m&n.mask != 0)<<4
	}
	return slow != 0
}

// binFixup decides the slow nodes at which binStep left lanes.
func (e *Ensemble) binFixup(idx *[treeLanes]uint32, row []float64) {
	for j, i := range idx {
		if int32(i) >= 0 {
			continue
		}
		n := &e.bins.nodes[^i/16]
		src := e.bins.slow[n.mask]
		x := row[e.nodes[src].meta&featMask]
		idx[j] = n.left + uint32(e.slowStep(src, x)-e.nodes[src].left)<<4
	}
}

// bit is 1 for true and 0 for false, computed in a register (b2u goes
// through memory when its argument is not already there).
func bit(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// binWalk is at most d binSteps for models without slow nodes, with the
// eight lanes unrolled and held in registers; it stops early once a round
// moves no lane, i.e. every lane is at a leaf (leaves step to themselves).
func binWalk(nodes unsafe.Pointer, idx *[treeLanes]uint32, masks unsafe.Pointer, d int32) {
	i0, i1, i2, i3, i4, i5, i6, i7 := idx[0], idx[1], idx[2], idx[3], idx[4], idx[5], idx[6], idx[7]
	for ; d > 0; d-- {
		o0, o1, o2, o3 := i0, i1, i2, i3
		i0 = binNext(nodes, masks, i0)
		i1 = binNext(nodes, masks, i1)
		i2 = binNext(nodes, masks, i2)
		i3 = binNext(nodes, masks, i3)
		busy := (o0 ^ i0) | (o1 ^ i1) | (o2 ^ i2) | (o3 ^ i3)
		o0, o1, o2, o3 = i4, i5, i6, i7
		i4 = binNext(nodes, masks, i4)
		i5 = binNext(nodes, masks, i5)
		i6 = binNext(nodes, masks, i6)
		i7 = binNext(nodes, masks, i7)
		if busy|(o0^i4)|(o1^i5)|(o2^i6)|(o3^i7) == 0 {
			break
		}
	}
	*idx = [treeLanes]uint32{i0, i1, i2, i3, i4, i5, i6, i7}
}

// binNext is one step from the node at byte offset i (not a slow node).
func binNext(nodes, masks unsafe.Pointer, i uint32) uint32 {
	n := (*binNode)(unsafe.Add(nodes, uintptr(i)))
	m := *(*uint64)(unsafe.Add(masks, uintptr(n.meta)*8))
	return n.left + bit(m&n.mask != 0)<<4
}
