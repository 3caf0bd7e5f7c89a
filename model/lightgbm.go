package model

// LightGBM text models.
//
// parseLightGBM reads what LightGBM's save_model writes and translates it into
// an EnsembleSpec; scoring is the Ensemble's job. The rules below are those of
// LightGBM's include/LightGBM/tree.h (NumericalDecision, CategoricalDecision),
// src/io/tree.cpp (Tree::Tree(const char*)) and
// src/boosting/gbdt_model_text.cpp (LoadModelFromString):
//
//   - Internal nodes are numbered 0..num_leaves-2 with the root at 0; a child
//     c >= 0 is internal node c, a child c < 0 is leaf ^c. The loader renumbers
//     every tree in pre-order (left subtree first), so a child always comes
//     after its parent, and rejects trees with cycles, shared or unreachable
//     nodes.
//   - decision_type bit 0 is "categorical", bit 1 "default left", bits 2-3 the
//     missing type (0 None, 1 Zero, 2 NaN). Numeric splits compare
//     fval <= threshold in double precision.
//   - A categorical split's threshold is an index into cat_boundaries, which
//     delimits its bitset words in cat_threshold; members go left. NaN always
//     goes right, whatever the missing type (LightGBM >= 3.3, PR #4468).
//   - Leaf values are stored already multiplied by the learning rate (and by
//     DART's normalisation), so the shrinkage lines are ignored.
//   - Tree i adds to output i % num_tree_per_iteration. With average_output
//     (random forest) the sum is divided by the number of iterations.
//   - Everything after "end of trees" (feature importances, parameters,
//     pandas_categorical) is ignored; the marker itself is required, so that a
//     file cut at a tree boundary is rejected rather than scored with fewer
//     trees.
//
// Limits: linear trees (is_linear=1), the sqrt transform of the regression
// objectives and cross_entropy_lambda are rejected with an error, because
// EnsembleSpec cannot express them (see TODO(contract) below). A categorical
// input that is not integer-valued is a non-member for the Ensemble, whereas
// LightGBM truncates it toward zero first (2.7 is category 2); callers pass
// category codes, so only malformed inputs see the difference.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// lgbModel is a LightGBM text model as the file states it, before
// translation.
type lgbModel struct {
	objective    string // first word of the objective line, "" when absent
	link         Link
	sigmoid      float64
	outputs      int // num_tree_per_iteration (= num_class)
	average      bool
	featureNames []string
	trees        []lgbTree
}

// lgbTree is one tree in LightGBM's own arrays.
type lgbTree struct {
	numLeaves     int
	splitFeature  []int
	threshold     []float64
	decisionType  []int
	left, right   []int
	leafValue     []float64
	catBoundaries []int
	catThreshold  []uint32
}

// LightGBM decision_type bits.
const (
	lgbCategorical = 1
	lgbDefaultLeft = 2
)

// parseLightGBM loads a LightGBM text model.
func parseLightGBM(name string, data []byte) (Model, error) {
	lm, err := parseLightGBMText(string(data))
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", name, err)
	}
	spec, err := lm.spec()
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", name, err)
	}
	spec.Version = version(data)
	e, err := CompileEnsemble(spec)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", name, err)
	}
	return e, nil
}

// lgbLines walks the lines of a model file; "\r\n" endings are accepted.
type lgbLines struct {
	s   string
	pos int
}

func (l *lgbLines) next() (string, bool) {
	if l.pos >= len(l.s) {
		return "", false
	}
	rest := l.s[l.pos:]
	line := rest
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		line = rest[:i]
		l.pos += i + 1
	} else {
		l.pos = len(l.s)
	}
	return strings.TrimRight(line, "\r"), true
}

func (l *lgbLines) peek() (string, bool) {
	save := l.pos
	line, ok := l.next()
	l.pos = save
	return line, ok
}

// nextInSection returns the next line of the header or of a tree. At the
// end of the section, which is the next "Tree=" line, the "end of trees"
// marker or the end of the file, it returns false and leaves that line
// unread. A blank line is returned as ""; the caller says what it means.
func (l *lgbLines) nextInSection() (string, bool) {
	line, ok := l.peek()
	if !ok || strings.HasPrefix(line, "Tree=") || line == "end of trees" {
		return "", false
	}
	l.next()
	return line, true
}

// parseLightGBMText parses the header and the trees of a LightGBM text model.
func parseLightGBMText(s string) (*lgbModel, error) {
	lines := &lgbLines{s: strings.TrimPrefix(s, "\ufeff")}
	first := ""
	for first == "" {
		line, ok := lines.next()
		if !ok {
			return nil, fmt.Errorf("file is empty")
		}
		first = strings.TrimSpace(line)
	}
	if first != "tree" {
		return nil, fmt.Errorf("first line is %s, want \"tree\"", quoteShort(first))
	}

	// Header: key=value lines (or a bare key) up to the first tree.
	header := map[string]string{}
	for {
		line, ok := lines.nextInSection()
		if !ok {
			break
		}
		if line == "" {
			continue
		}
		key, value, _ := strings.Cut(line, "=")
		header[key] = value
	}
	lm := &lgbModel{}
	if err := lm.parseHeader(header); err != nil {
		return nil, err
	}

	for ended := false; !ended; {
		line, ok := lines.next()
		switch {
		case !ok:
			return nil, fmt.Errorf("truncated after %d trees: no \"end of trees\" line", len(lm.trees))
		case line == "":
		case line == "end of trees":
			ended = true
		default:
			ti := len(lm.trees)
			if line != "Tree="+strconv.Itoa(ti) {
				return nil, fmt.Errorf("tree %d: got line %s, want \"Tree=%d\"", ti, quoteShort(line), ti)
			}
			t, err := parseLightGBMTree(lines, len(lm.featureNames))
			if err != nil {
				return nil, fmt.Errorf("tree %d: %w", ti, err)
			}
			lm.trees = append(lm.trees, t)
		}
	}

	if v, ok := header["tree_sizes"]; ok {
		if n := countFields(v); n != len(lm.trees) {
			return nil, fmt.Errorf("header: field \"tree_sizes\" lists %d trees, file has %d", n, len(lm.trees))
		}
	}
	if len(lm.trees) == 0 {
		return nil, fmt.Errorf("model has no trees")
	}
	if len(lm.trees)%lm.outputs != 0 {
		return nil, fmt.Errorf("%d trees is not a whole number of iterations of %d trees (num_tree_per_iteration)", len(lm.trees), lm.outputs)
	}
	return lm, nil
}

// parseHeader reads the model-level fields.
func (lm *lgbModel) parseHeader(h map[string]string) error {
	headerInt := func(key string) (int, error) {
		v, ok := h[key]
		if !ok {
			return 0, fmt.Errorf("header: missing field %q", key)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("header: field %q: %w", key, err)
		}
		return n, nil
	}
	numClass, err := headerInt("num_class")
	if err != nil {
		return err
	}
	lm.outputs = numClass
	if _, ok := h["num_tree_per_iteration"]; ok {
		if lm.outputs, err = headerInt("num_tree_per_iteration"); err != nil {
			return err
		}
	}
	if numClass < 1 || lm.outputs != numClass {
		return fmt.Errorf("header: num_class %d and num_tree_per_iteration %d: want equal and at least 1", numClass, lm.outputs)
	}
	maxFeature, err := headerInt("max_feature_idx")
	if err != nil {
		return err
	}
	names, ok := h["feature_names"]
	if !ok {
		return fmt.Errorf("header: missing field \"feature_names\"")
	}
	// Count before allocating: max_feature_idx is not to be trusted.
	if n := countFields(names); maxFeature < 0 || n != maxFeature+1 {
		return fmt.Errorf("header: field \"feature_names\" has %d names, want max_feature_idx+1 = %d", n, int64(maxFeature)+1)
	}
	lm.featureNames = make([]string, 0, maxFeature+1)
	fields(names, func(_ int, name string) error {
		// Cloned: a substring would keep the whole file in memory.
		lm.featureNames = append(lm.featureNames, strings.Clone(name))
		return nil
	})
	_, lm.average = h["average_output"]
	return lm.parseObjective(h["objective"], numClass)
}

// TODO(contract): linear trees need per-leaf linear models in TreeNode
// (leaf_const, leaf_features, leaf_coeff: value = const + sum coeff*x, with
// the leaf's constant used when one of its features is NaN).
var errLinearTrees = fmt.Errorf("linear trees (is_linear=1) are not supported")

// parseObjective maps the objective line (as written by each objective's
// ToString in LightGBM) to a link function.
func (lm *lgbModel) parseObjective(line string, numClass int) error {
	words := strings.Fields(line)
	if len(words) == 0 {
		// No objective line: a custom objective; LightGBM outputs raw scores.
		lm.link = LinkIdentity
		return nil
	}
	lm.objective = words[0]
	param := func(key string) (string, bool) {
		for _, w := range words[1:] {
			if v, ok := strings.CutPrefix(w, key+":"); ok {
				return v, true
			}
		}
		return "", false
	}
	sigmoid := func() error {
		v, _ := param("sigmoid")
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("objective %q: sigmoid parameter %q must be a positive number", line, v)
		}
		lm.sigmoid = s
		return nil
	}
	classes := func() error {
		v, _ := param("num_class")
		if n, err := strconv.Atoi(v); err != nil || n != numClass {
			return fmt.Errorf("objective %q: num_class %q does not match the header's num_class %d", line, v, numClass)
		}
		return nil
	}
	single := func() error {
		if numClass != 1 {
			return fmt.Errorf("objective %q with num_class %d: want 1", line, numClass)
		}
		return nil
	}
	// The names are those LightGBM's ObjectiveFunction::ToString writes and
	// CreateObjectiveFunction reads back; aliases are never saved.
	switch lm.objective {
	case "binary":
		lm.link = LinkSigmoid
		if err := single(); err != nil {
			return err
		}
		return sigmoid()
	case "cross_entropy":
		lm.link, lm.sigmoid = LinkSigmoid, 1
		return single()
	case "multiclass":
		lm.link = LinkSoftmax
		return classes()
	case "multiclassova":
		lm.link = LinkSigmoid
		if err := classes(); err != nil {
			return err
		}
		return sigmoid()
	case "poisson", "gamma", "tweedie":
		lm.link = LinkExp
		return single()
	case "regression", "regression_l1", "huber", "fair", "quantile", "mape":
		for _, w := range words[1:] {
			if w == "sqrt" {
				// TODO(contract): reg_sqrt needs a link sign(x)*x*x.
				return fmt.Errorf("objective %q: the sqrt transform is not supported", line)
			}
		}
		lm.link = LinkIdentity
		return single()
	case "lambdarank", "rank_xendcg", "custom":
		lm.link = LinkIdentity
		return nil
	case "cross_entropy_lambda":
		// TODO(contract): cross_entropy_lambda needs a link log(1+exp(x)).
		return fmt.Errorf("objective %q is not supported", line)
	}
	return fmt.Errorf("objective %q is not supported", line)
}

// parseLightGBMTree reads the key=value lines of one tree, up to a blank line,
// the next tree or the end marker. nf is the number of features.
func parseLightGBMTree(lines *lgbLines, nf int) (lgbTree, error) {
	raw := map[string]string{}
	for {
		line, ok := lines.nextInSection()
		if !ok || line == "" {
			break
		}
		key, value, found := strings.Cut(line, "=")
		if !found {
			return lgbTree{}, fmt.Errorf("line %s is not key=value", quoteShort(line))
		}
		if _, dup := raw[key]; dup {
			return lgbTree{}, fmt.Errorf("field %q appears twice", key)
		}
		raw[key] = value
	}

	var t lgbTree
	var err error
	need := func(key string) (string, error) {
		v, ok := raw[key]
		if !ok {
			return "", fmt.Errorf("missing field %q", key)
		}
		return v, nil
	}
	v, err := need("num_leaves")
	if err != nil {
		return t, err
	}
	if t.numLeaves, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
		return t, fmt.Errorf("field \"num_leaves\": %w", err)
	}
	if t.numLeaves < 1 {
		return t, fmt.Errorf("field \"num_leaves\": %d, want at least 1", t.numLeaves)
	}
	if v, ok := raw["is_linear"]; ok && strings.TrimSpace(v) != "0" {
		return t, errLinearTrees
	}
	if v, err = need("leaf_value"); err != nil {
		return t, err
	}
	if t.leafValue, err = parseFloats("leaf_value", v, t.numLeaves); err != nil {
		return t, err
	}
	if t.numLeaves == 1 {
		return t, nil
	}
	ni := t.numLeaves - 1
	ints := func(key string, dst *[]int, optional bool) error {
		v, ok := raw[key]
		if !ok {
			if optional {
				*dst = make([]int, ni)
				return nil
			}
			return fmt.Errorf("missing field %q", key)
		}
		var err error
		*dst, err = parseInts(key, v, ni)
		return err
	}
	if err := ints("split_feature", &t.splitFeature, false); err != nil {
		return t, err
	}
	if err := ints("left_child", &t.left, false); err != nil {
		return t, err
	}
	if err := ints("right_child", &t.right, false); err != nil {
		return t, err
	}
	if err := ints("decision_type", &t.decisionType, true); err != nil {
		return t, err
	}
	if v, err = need("threshold"); err != nil {
		return t, err
	}
	if t.threshold, err = parseFloats("threshold", v, ni); err != nil {
		return t, err
	}

	numCat := 0
	if v, ok := raw["num_cat"]; ok {
		if numCat, err = strconv.Atoi(strings.TrimSpace(v)); err != nil || numCat < 0 {
			return t, fmt.Errorf("field \"num_cat\": %q is not a count", v)
		}
	}
	if numCat > 0 {
		if v, err = need("cat_boundaries"); err != nil {
			return t, err
		}
		if t.catBoundaries, err = parseInts("cat_boundaries", v, numCat+1); err != nil {
			return t, err
		}
		for i, b := range t.catBoundaries {
			if b < 0 || (i > 0 && b < t.catBoundaries[i-1]) {
				return t, fmt.Errorf("field \"cat_boundaries\": value %d (%d) is negative or decreasing", i, b)
			}
		}
		if v, err = need("cat_threshold"); err != nil {
			return t, err
		}
		if t.catThreshold, err = parseWords("cat_threshold", v, t.catBoundaries[numCat]); err != nil {
			return t, err
		}
	}

	for i := 0; i < ni; i++ {
		if f := t.splitFeature[i]; f < 0 || f >= nf {
			return t, fmt.Errorf("node %d: field \"split_feature\": feature %d out of range [0,%d)", i, f, nf)
		}
		d := t.decisionType[i]
		if d < 0 || d > 15 || (d>>2)&3 == 3 {
			return t, fmt.Errorf("node %d: field \"decision_type\": unknown value %d", i, d)
		}
		if d&lgbCategorical != 0 {
			c := t.threshold[i]
			if !(c >= 0 && c < float64(numCat) && c == math.Trunc(c)) {
				return t, fmt.Errorf("node %d: field \"threshold\": categorical split %v is not an index in [0,%d)", i, c, numCat)
			}
		}
		for _, side := range [2]struct {
			name string
			c    int
		}{{"left_child", t.left[i]}, {"right_child", t.right[i]}} {
			if side.c >= ni || ^side.c >= t.numLeaves {
				return t, fmt.Errorf("node %d: field %q: child %d out of range", i, side.name, side.c)
			}
		}
	}
	return t, nil
}

// spec translates the model into an EnsembleSpec.
func (lm *lgbModel) spec() (EnsembleSpec, error) {
	spec := EnsembleSpec{
		Format:        "lightgbm-text",
		Objective:     lm.objective,
		FeatureNames:  lm.featureNames,
		NumGroups:     lm.outputs,
		Trees:         make([]Tree, len(lm.trees)),
		AverageOutput: lm.average,
		Link:          lm.link,
		SigmoidScale:  lm.sigmoid,
	}
	for i := range lm.trees {
		nodes, err := lm.trees[i].nodes()
		if err != nil {
			return spec, fmt.Errorf("tree %d: %w", i, err)
		}
		spec.Trees[i] = Tree{Nodes: nodes, Group: i % lm.outputs, Weight: 1}
	}
	return spec, nil
}

// nodes renumbers the tree in pre-order into the contract's node list.
func (t *lgbTree) nodes() ([]TreeNode, error) {
	if t.numLeaves == 1 {
		return []TreeNode{{Leaf: true, Value: t.leafValue[0]}}, nil
	}
	ni := t.numLeaves - 1
	out := make([]TreeNode, 0, 2*t.numLeaves-1)
	seenNode := make([]bool, ni)
	seenLeaf := make([]bool, t.numLeaves)
	type item struct {
		child  int // LightGBM child reference: >= 0 internal, < 0 leaf
		parent int // index in out, -1 for the root
		left   bool
	}
	stack := []item{{child: 0, parent: -1}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		at := len(out)
		if it.parent >= 0 {
			if it.left {
				out[it.parent].Left = at
			} else {
				out[it.parent].Right = at
			}
		}
		if it.child < 0 {
			leaf := ^it.child
			if seenLeaf[leaf] {
				return nil, fmt.Errorf("leaf %d is reached twice", leaf)
			}
			seenLeaf[leaf] = true
			out = append(out, TreeNode{Leaf: true, Value: t.leafValue[leaf]})
			continue
		}
		i := it.child
		if seenNode[i] {
			return nil, fmt.Errorf("node %d is reached twice (cycle or shared subtree)", i)
		}
		seenNode[i] = true
		d := t.decisionType[i]
		n := TreeNode{Feature: t.splitFeature[i]}
		if d&lgbCategorical != 0 {
			c := int(t.threshold[i])
			lo, hi := t.catBoundaries[c], t.catBoundaries[c+1]
			// Non-nil even when empty: a nil CatBits would mean numeric.
			n.CatBits = append(make([]uint32, 0, hi-lo), t.catThreshold[lo:hi]...)
			n.CatSetLeft = true
			// NaN is a non-member, so it goes right like in LightGBM.
			n.Missing = MissingNone
			// TODO(contract): LightGBM truncates the input toward zero
			// (static_cast<int>) before the lookup, so 2.7 is category 2 and
			// -0.5 is category 0; the contract makes non-integers
			// non-members. Needs a TreeNode flag such as CatTruncate.
		} else {
			n.Threshold = t.threshold[i]
			n.LessEqual = true
			n.DefaultLeft = d&lgbDefaultLeft != 0
			switch (d >> 2) & 3 {
			case 0:
				n.Missing = MissingNone
			case 1:
				n.Missing = MissingZero
			case 2:
				n.Missing = MissingNaN
			}
		}
		out = append(out, n)
		stack = append(stack, item{t.right[i], at, false}, item{t.left[i], at, true})
	}
	for i, seen := range seenNode {
		if !seen {
			return nil, fmt.Errorf("node %d is unreachable from the root", i)
		}
	}
	for i, seen := range seenLeaf {
		if !seen {
			return nil, fmt.Errorf("leaf %d is unreachable from the root", i)
		}
	}
	return out, nil
}

// countFields counts the space-separated values of a field, like LightGBM's
// Common::Split, which skips empty tokens.
func countFields(v string) int {
	n, in := 0, false
	for i := 0; i < len(v); i++ {
		sp := v[i] == ' ' || v[i] == '\t'
		if !sp && !in {
			n++
		}
		in = !sp
	}
	return n
}

// fields calls f for each space-separated value of v; it stops at the first
// error.
func fields(v string, f func(i int, s string) error) error {
	i := 0
	for len(v) > 0 {
		v = strings.TrimLeft(v, " \t")
		if v == "" {
			break
		}
		end := strings.IndexAny(v, " \t")
		if end < 0 {
			end = len(v)
		}
		if err := f(i, v[:end]); err != nil {
			return err
		}
		v = v[end:]
		i++
	}
	return nil
}

// parseValues parses field key, which must hold want space-separated
// values. parse reports whether one value is valid; what names a valid value
// in the error ("a number").
func parseValues[T any](key, v string, want int, what string, parse func(s string) (T, bool)) ([]T, error) {
	// Count before allocating: want comes from the file too.
	if n := countFields(v); n != want {
		return nil, fmt.Errorf("field %q: got %d values, want %d", key, n, want)
	}
	out := make([]T, want)
	return out, fields(v, func(i int, s string) error {
		x, ok := parse(s)
		if !ok {
			return fmt.Errorf("field %q: value %d: %s is not %s", key, i, quoteShort(s), what)
		}
		out[i] = x
		return nil
	})
}

func parseInts(key, v string, want int) ([]int, error) {
	return parseValues(key, v, want, "a 32-bit integer", func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n == int(int32(n))
	})
}

func parseWords(key, v string, want int) ([]uint32, error) {
	return parseValues(key, v, want, "a 32-bit unsigned integer", func(s string) (uint32, bool) {
		n, err := strconv.ParseUint(s, 10, 32)
		return uint32(n), err == nil
	})
}

func parseFloats(key, v string, want int) ([]float64, error) {
	return parseValues(key, v, want, "a number", func(s string) (float64, bool) {
		x, err := strconv.ParseFloat(s, 64)
		// Out-of-range values become ±Inf with ErrRange, as with C's strtod,
		// which LightGBM uses: keep them.
		return x, err == nil || errors.Is(err, strconv.ErrRange)
	})
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
