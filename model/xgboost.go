package model

// XGBoost JSON models.
//
// parseXGBoost reads what Booster.save_model("m.json") writes (XGBoost 1.x to
// 3.x; doc/model.schema) and translates it into an EnsembleSpec, or into a
// linear model for gblinear. The rules are those of XGBoost's
// src/tree/tree_model.cc (RegTree::LoadModel), src/predictor/cpu_predictor.cc,
// include/xgboost/tree_model.h and src/common/categorical.h:
//
//   - A node whose left child is -1 is a leaf; its value is split_conditions
//     (the leaf value shares the split condition's slot). A numeric split
//     sends float32(x) < split_condition left and a missing value (NaN) to
//     default_left. Inputs, thresholds and leaf values are float32, and the
//     tree outputs are summed in float32 in tree order, starting from the base
//     margin: the Ensemble is compiled with Float32 to do the same.
//   - split_type 1 marks a categorical split; categories_nodes,
//     categories_segments and categories_sizes locate its category list in
//     categories. Listed categories go right, everything else (negative,
//     unlisted, beyond the list) goes left, NaN goes to default_left.
//   - tree_info gives the output group of each tree; num_class (or num_target)
//     the number of groups.
//   - base_score is in prediction space, as a number ("5E-1") or a bracketed
//     vector ("[5E-1]", XGBoost >= 2). It becomes a margin through the
//     objective's ProbToMargin: logit for binary:logistic and reg:logistic;
//     log for count:poisson, reg:tweedie and reg:gamma; identity otherwise,
//     binary:logitraw included (its ProbToMargin is the identity). The
//     arithmetic is float32, as in XGBoost.
//   - The links are computed in float32 too (1.0f/(1.0f+expf(-x)), expf,
//     XGBoost's Softmax), so that margins match XGBoost's bit for bit and
//     predictions digit for digit, but where its expf rounds differently
//     (one float32 step; once in the 390 fixture rows of count_poisson).
//   - dart: each tree's output is multiplied by its weight_drop in float32.
//   - gblinear: weights holds (num_feature+1)*groups floats, feature-major
//     with the biases last; the margin is base + bias + sum of w*x over the
//     non-missing inputs, accumulated in float32 in feature order.
//
// Limits: multi-target trees with vector leaves (size_leaf_vector > 1) and
// objectives outside the list in xgbObjectives are rejected with an error
// that names them. A categorical input that is not integer-valued is a
// non-member for the Ensemble, whereas XGBoost truncates it (2.7 is category
// 2); callers pass category codes. The per-class intercepts that XGBoost >= 3.1
// may write for multi-class models are read as margins (identity), which is
// what ProbToMargin does for the softmax objectives up to 3.0.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// xgbObjective says how an XGBoost objective transforms margins.
type xgbObjective struct {
	link Link
	// baseToMargin is ProbToMargin: 'l' logit, 'g' log, 0 identity.
	baseToMargin byte
	multiclass   bool
}

// xgbObjectives lists the supported objectives.
var xgbObjectives = map[string]xgbObjective{
	"binary:logistic":      {link: LinkSigmoid, baseToMargin: 'l'},
	"reg:logistic":         {link: LinkSigmoid, baseToMargin: 'l'},
	"binary:logitraw":      {link: LinkIdentity}, // ProbToMargin is the identity here
	"reg:squarederror":     {link: LinkIdentity},
	"reg:linear":           {link: LinkIdentity},
	"reg:squaredlogerror":  {link: LinkIdentity},
	"reg:pseudohubererror": {link: LinkIdentity},
	"reg:absoluteerror":    {link: LinkIdentity},
	"count:poisson":        {link: LinkExp, baseToMargin: 'g'},
	"reg:tweedie":          {link: LinkExp, baseToMargin: 'g'},
	"reg:gamma":            {link: LinkExp, baseToMargin: 'g'},
	"multi:softprob":       {link: LinkSoftmax, multiclass: true},
	"multi:softmax":        {link: LinkArgmax, multiclass: true},
	"rank:pairwise":        {link: LinkIdentity},
	"rank:ndcg":            {link: LinkIdentity},
	"rank:map":             {link: LinkIdentity},
}

// xgbFile is the part of an XGBoost JSON model that scoring needs.
type xgbFile struct {
	Learner *struct {
		FeatureNames      []string        `json:"feature_names"`
		GradientBooster   json.RawMessage `json:"gradient_booster"`
		LearnerModelParam struct {
			BaseScore  *string `json:"base_score"`
			NumClass   string  `json:"num_class"`
			NumFeature string  `json:"num_feature"`
			NumTarget  string  `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
	} `json:"learner"`
}

type xgbBooster struct {
	Name       string          `json:"name"`
	Model      json.RawMessage `json:"model"`
	GBTree     *xgbBooster     `json:"gbtree"` // dart
	WeightDrop []xgbFloat      `json:"weight_drop"`
}

type xgbTreeModel struct {
	Trees    []xgbTree `json:"trees"`
	TreeInfo []int64   `json:"tree_info"`
}

type xgbTree struct {
	TreeParam struct {
		NumNodes       string `json:"num_nodes"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
	LeftChildren       []int64    `json:"left_children"`
	RightChildren      []int64    `json:"right_children"`
	SplitIndices       []int64    `json:"split_indices"`
	SplitConditions    []xgbFloat `json:"split_conditions"`
	DefaultLeft        []xgbBool  `json:"default_left"`
	SplitType          []int64    `json:"split_type"`
	Categories         []int64    `json:"categories"`
	CategoriesNodes    []int64    `json:"categories_nodes"`
	CategoriesSegments []int64    `json:"categories_segments"`
	CategoriesSizes    []int64    `json:"categories_sizes"`
}

// xgbBool reads default_left entries, written as 0/1 or as booleans.
type xgbBool bool

func (b *xgbBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "0", "false":
		*b = false
	case "1", "true":
		*b = true
	default:
		return fmt.Errorf("want 0, 1, true or false, got %.20s", data)
	}
	return nil
}

// parseXGBoost loads an XGBoost JSON model.
func parseXGBoost(name string, data []byte) (Model, error) {
	m, err := loadXGBoost(data)
	if err != nil {
		return nil, fmt.Errorf("cannot load model %q: %w", name, err)
	}
	return m, nil
}

func loadXGBoost(data []byte) (Model, error) {
	spec, lin, err := xgbSpec(data)
	if err != nil || lin != nil {
		return lin, err
	}
	return CompileEnsemble(spec)
}

// xgbSpec translates an XGBoost JSON model into an EnsembleSpec, or into a
// linear model for gblinear.
func xgbSpec(data []byte) (EnsembleSpec, Model, error) {
	var none EnsembleSpec
	ver := version(data) // of the file's own bytes
	data = quoteNonFinite(data)
	var f xgbFile
	if err := json.Unmarshal(data, &f); err != nil {
		return none, nil, jsonError(data, err)
	}
	l := f.Learner
	if l == nil {
		return none, nil, errors.New("missing field \"learner\"")
	}
	objName := l.Objective.Name
	obj, ok := xgbObjectives[objName]
	if !ok {
		if objName == "" {
			return none, nil, errors.New("learner: missing field \"objective.name\"")
		}
		return none, nil, fmt.Errorf("learner: objective %q is not supported", objName)
	}
	p := &l.LearnerModelParam
	numFeature, err := paramInt("num_feature", p.NumFeature, 0, MaxFeatures)
	if err != nil {
		return none, nil, err
	}
	numClass, err := paramInt("num_class", p.NumClass, 0, 1<<20)
	if err != nil {
		return none, nil, err
	}
	numTarget, err := paramInt("num_target", p.NumTarget, 0, 1<<20)
	if err != nil {
		return none, nil, err
	}
	groups := max(numClass, numTarget, 1)
	if obj.multiclass && numClass < 1 {
		return none, nil, fmt.Errorf("learner_model_param: objective %q needs num_class", objName)
	}
	features := l.FeatureNames
	if len(features) == 0 {
		features = make([]string, numFeature)
		for i := range features {
			features[i] = "f" + strconv.Itoa(i)
		}
	} else if len(features) != numFeature {
		return none, nil, fmt.Errorf("learner: %d feature_names for num_feature %s", len(features), p.NumFeature)
	}
	base, err := baseMargins(p.BaseScore, obj.baseToMargin, groups)
	if err != nil {
		return none, nil, err
	}
	if len(l.GradientBooster) == 0 {
		return none, nil, errors.New("learner: missing field \"gradient_booster\"")
	}
	var gb xgbBooster
	if err := json.Unmarshal(l.GradientBooster, &gb); err != nil {
		return none, nil, fmt.Errorf("gradient_booster: %w", err)
	}
	switch gb.Name {
	case "gbtree", "dart":
	case "gblinear":
		lin, err := xgbLinear(&gb, features, groups, base, obj, objName, ver)
		if err != nil {
			return none, nil, err
		}
		return none, lin, nil
	case "":
		return none, nil, errors.New("gradient_booster: missing field \"name\"")
	default:
		return none, nil, fmt.Errorf("gradient_booster: booster %q is not supported", gb.Name)
	}
	trees := &gb
	var weights []xgbFloat
	if gb.Name == "dart" {
		if gb.GBTree == nil {
			return none, nil, errors.New("gradient_booster: dart: missing field \"gbtree\"")
		}
		trees, weights = gb.GBTree, gb.WeightDrop
	}
	var tm xgbTreeModel
	if len(trees.Model) == 0 {
		return none, nil, errors.New("gradient_booster: missing field \"model\"")
	}
	if err := json.Unmarshal(trees.Model, &tm); err != nil {
		return none, nil, fmt.Errorf("gradient_booster: model: %w", err)
	}
	if len(tm.TreeInfo) != len(tm.Trees) {
		return none, nil, fmt.Errorf("gradient_booster: model: %d trees but %d tree_info entries", len(tm.Trees), len(tm.TreeInfo))
	}
	if gb.Name == "dart" && len(weights) != len(tm.Trees) {
		return none, nil, fmt.Errorf("gradient_booster: dart: %d trees but %d weight_drop entries", len(tm.Trees), len(weights))
	}
	spec := EnsembleSpec{
		Format:       "xgboost-json",
		Objective:    objName,
		FeatureNames: features,
		NumGroups:    groups,
		Trees:        make([]Tree, len(tm.Trees)),
		BaseMargin:   base,
		Float32:      true,
		Link:         obj.link,
		Version:      ver,
	}
	for i := range tm.Trees {
		g := tm.TreeInfo[i]
		if g < 0 || g >= int64(groups) {
			return none, nil, fmt.Errorf("tree %d: tree_info %d out of range [0,%d)", i, g, groups)
		}
		w := 1.0
		if weights != nil {
			w = float64(weights[i])
		}
		nodes, err := tm.Trees[i].nodes(numFeature)
		if err != nil {
			return none, nil, fmt.Errorf("tree %d: %w", i, err)
		}
		spec.Trees[i] = Tree{Nodes: nodes, Group: int(g), Weight: w}
	}
	return spec, nil, nil
}

// nodes translates one tree into the contract's node list.
func (t *xgbTree) nodes(numFeature int) ([]TreeNode, error) {
	if s := t.TreeParam.SizeLeafVector; s != "" && s != "0" && s != "1" {
		return nil, fmt.Errorf("tree_param: size_leaf_vector %s: multi-target trees are not supported", s)
	}
	n := len(t.LeftChildren)
	if n == 0 {
		return nil, errors.New("field \"left_children\": no nodes")
	}
	if nn := t.TreeParam.NumNodes; nn != "" && nn != strconv.Itoa(n) {
		return nil, fmt.Errorf("tree_param: num_nodes %s but %d left_children", nn, n)
	}
	for _, a := range []struct {
		name string
		n    int
	}{
		{"right_children", len(t.RightChildren)},
		{"split_indices", len(t.SplitIndices)},
		{"split_conditions", len(t.SplitConditions)},
		{"default_left", len(t.DefaultLeft)},
	} {
		if a.n != n {
			return nil, fmt.Errorf("field %q: %d entries for %d nodes", a.name, a.n, n)
		}
	}
	if t.SplitType != nil && len(t.SplitType) != n {
		return nil, fmt.Errorf("field \"split_type\": %d entries for %d nodes", len(t.SplitType), n)
	}
	cats, err := t.categories(n)
	if err != nil {
		return nil, err
	}
	out := make([]TreeNode, n)
	for i := range out {
		v := t.SplitConditions[i]
		if t.LeftChildren[i] == -1 {
			out[i] = TreeNode{Leaf: true, Value: float64(v)}
			continue
		}
		l, r, f := t.LeftChildren[i], t.RightChildren[i], t.SplitIndices[i]
		if l < 0 || l >= int64(n) || r < 0 || r >= int64(n) {
			return nil, fmt.Errorf("node %d: children %d,%d out of range [0,%d)", i, l, r, n)
		}
		if f < 0 || f >= int64(numFeature) {
			return nil, fmt.Errorf("node %d: split_indices: feature %d out of range [0,%d)", i, f, numFeature)
		}
		nd := TreeNode{Feature: int(f), Threshold: float64(v), Missing: MissingNaN,
			DefaultLeft: bool(t.DefaultLeft[i]), Left: int(l), Right: int(r)}
		switch st := t.splitType(i); st {
		case 0:
		case 1:
			bits, ok := cats[i]
			if !ok {
				return nil, fmt.Errorf("node %d: categorical split without categories", i)
			}
			nd.CatBits = bits
		default:
			return nil, fmt.Errorf("node %d: split_type %d is not supported", i, st)
		}
		out[i] = nd
	}
	return out, nil
}

func (t *xgbTree) splitType(i int) int64 {
	if t.SplitType == nil {
		return 0
	}
	return t.SplitType[i]
}

// maxXGBCategory bounds category codes: XGBoost stores them in float32 and
// rejects codes from 2^24 on.
const maxXGBCategory = 1 << 24

// categories builds the category bitset of each categorical node.
func (t *xgbTree) categories(n int) (map[int][]uint32, error) {
	k := len(t.CategoriesNodes)
	if len(t.CategoriesSegments) != k || len(t.CategoriesSizes) != k {
		return nil, fmt.Errorf("fields \"categories_nodes\", \"categories_segments\", \"categories_sizes\": lengths %d, %d, %d differ",
			k, len(t.CategoriesSegments), len(t.CategoriesSizes))
	}
	if k == 0 {
		return nil, nil
	}
	out := make(map[int][]uint32, k)
	words := 0
	for j, nid := range t.CategoriesNodes {
		if nid < 0 || nid >= int64(n) {
			return nil, fmt.Errorf("categories_nodes[%d]: node %d out of range [0,%d)", j, nid, n)
		}
		if t.splitType(int(nid)) != 1 {
			return nil, fmt.Errorf("node %d: listed in categories_nodes but split_type is not categorical", nid)
		}
		if _, dup := out[int(nid)]; dup {
			return nil, fmt.Errorf("node %d: listed twice in categories_nodes", nid)
		}
		beg, size := t.CategoriesSegments[j], t.CategoriesSizes[j]
		if beg < 0 || size < 0 || beg > int64(len(t.Categories)) || size > int64(len(t.Categories))-beg {
			return nil, fmt.Errorf("node %d: categories segment [%d,+%d) out of range [0,%d)", nid, beg, size, len(t.Categories))
		}
		list := t.Categories[beg : beg+size]
		hi := int64(-1)
		for _, c := range list {
			if c < 0 || c >= maxXGBCategory {
				return nil, fmt.Errorf("node %d: category %d out of range [0,%d)", nid, c, maxXGBCategory)
			}
			hi = max(hi, c)
		}
		bits := make([]uint32, (hi+32)/32) // non-nil even when empty
		words += len(bits)
		if words > MaxCategoryWords {
			return nil, fmt.Errorf("node %d: categorical bitsets exceed %d words", nid, MaxCategoryWords)
		}
		for _, c := range list {
			bits[c/32] |= 1 << (c % 32)
		}
		out[int(nid)] = bits
	}
	return out, nil
}

// baseMargins parses base_score ("0.5", "5E-1" or "[5E-1]", one value or one
// per group) and turns it into per-group margins in float32 arithmetic.
func baseMargins(s *string, kind byte, groups int) ([]float64, error) {
	text := "0.5"
	if s != nil {
		text = strings.TrimSpace(*s)
	}
	var parts []string
	if strings.HasPrefix(text, "[") {
		if !strings.HasSuffix(text, "]") {
			return nil, fmt.Errorf("learner_model_param: base_score %q: missing ]", text)
		}
		parts = strings.Split(text[1:len(text)-1], ",")
	} else {
		parts = []string{text}
	}
	if len(parts) != 1 && len(parts) != groups {
		return nil, fmt.Errorf("learner_model_param: base_score %q: %d values for %d outputs", text, len(parts), groups)
	}
	out := make([]float64, groups)
	for k := range out {
		p := strings.TrimSpace(parts[min(k, len(parts)-1)])
		v, err := strconv.ParseFloat(p, 32)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("learner_model_param: base_score %q: not a finite number", text)
		}
		b := float32(v)
		switch kind {
		case 'l':
			if !(b > 0 && b < 1) {
				return nil, fmt.Errorf("learner_model_param: base_score %v must be in (0,1) for a logistic objective", b)
			}
			// -logf(1.0f / base_score - 1.0f)
			b = -float32(math.Log(float64(1/b - 1)))
		case 'g':
			if !(b > 0) {
				return nil, fmt.Errorf("learner_model_param: base_score %v must be positive for a log-link objective", b)
			}
			b = float32(math.Log(float64(b)))
		}
		out[k] = float64(b)
	}
	return out, nil
}

// paramInt parses an integer parameter written as a string; empty means 0.
func paramInt(field, s string, lo, hi int) (int, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("learner_model_param: %s %q: want an integer in [%d,%d]", field, s, lo, hi)
	}
	return v, nil
}

// xgbFloat is a float32 model value. It is parsed directly to float32, so
// that a decimal written for a float32 gets the same float32 back without
// double rounding. XGBoost writes the non-finite values as the bare words NaN,
// Infinity and -Infinity (a categorical split's split_condition is NaN), which
// quoteNonFinite has turned into strings before decoding.
type xgbFloat float32

func (f *xgbFloat) UnmarshalJSON(data []byte) error {
	s := string(data)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		switch s[1 : len(s)-1] {
		case "NaN", "nan", "-NaN", "-nan":
			*f = xgbFloat(math.NaN())
			return nil
		case "Infinity", "inf":
			*f = xgbFloat(math.Inf(1))
			return nil
		case "-Infinity", "-inf":
			*f = xgbFloat(math.Inf(-1))
			return nil
		}
		return fmt.Errorf("invalid number %.40s", s)
	}
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		return fmt.Errorf("invalid float32 %.40s", s)
	}
	*f = xgbFloat(v)
	return nil
}

// quoteNonFinite returns data with the bare words NaN, Infinity and
// -Infinity (and nan, inf, -inf) outside strings turned into JSON strings.
// It returns data itself when there are none.
func quoteNonFinite(data []byte) []byte {
	var out []byte
	inString, escaped := false, false
	last := 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			continue
		}
		if c != 'N' && c != 'I' && c != '-' && c != 'n' && c != 'i' {
			continue
		}
		for _, w := range nonFiniteWords {
			if bytes.HasPrefix(data[i:], w) && (i+len(w) == len(data) || !isWordByte(data[i+len(w)])) {
				out = append(out, data[last:i]...)
				out = append(out, '"')
				out = append(out, w...)
				out = append(out, '"')
				i += len(w) - 1
				last = i + 1
				break
			}
		}
	}
	if out == nil {
		return data
	}
	return append(out, data[last:]...)
}

var nonFiniteWords = [][]byte{[]byte("NaN"), []byte("-NaN"), []byte("Infinity"), []byte("-Infinity"),
	[]byte("nan"), []byte("-nan"), []byte("inf"), []byte("-inf")}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// jsonError names the byte offset of a JSON syntax error, or the field of a
// type error.
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Errorf("invalid JSON at line %d, byte %d: %v", line, se.Offset, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q: %s where %s was expected (byte %d)", te.Field, te.Value, te.Type, te.Offset)
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// xgbLinear builds a gblinear model.
func xgbLinear(gb *xgbBooster, features []string, groups int, base []float64, obj xgbObjective, objName, ver string) (Model, error) {
	var lm struct {
		Weights []xgbFloat `json:"weights"`
	}
	if len(gb.Model) == 0 {
		return nil, errors.New("gradient_booster: missing field \"model\"")
	}
	if err := json.Unmarshal(gb.Model, &lm); err != nil {
		return nil, fmt.Errorf("gradient_booster: model: %w", err)
	}
	nf := len(features)
	if want := (nf + 1) * groups; len(lm.Weights) != want {
		return nil, fmt.Errorf("gradient_booster: model: weights: %d entries, want (num_feature+1)*groups = %d", len(lm.Weights), want)
	}
	w := make([]float64, len(lm.Weights))
	for i, v := range lm.Weights {
		w[i] = float64(v)
	}
	// psum = bias + base, in float32.
	bias := make([]float64, groups)
	for g := range bias {
		bias[g] = float64(float32(w[nf*groups+g]) + float32(base[g]))
	}
	return newLinear(linearSpec{
		format:    "xgboost-json",
		objective: objName,
		features:  features,
		groups:    groups,
		weights:   w[:nf*groups],
		bias:      bias,
		link:      obj.link,
		float32:   true,
		version:   ver,
	})
}
