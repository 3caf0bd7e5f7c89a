package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refEnsemble scores a spec the plain way, node by node, straight from the
// contract's description of TreeNode; the compiled Ensemble must agree with
// it exactly.
type refEnsemble struct{ spec EnsembleSpec }

func (r refEnsemble) goLeft(n *TreeNode, x float64) bool {
	if n.CatBits != nil {
		if math.IsNaN(x) && n.Missing == MissingNaN {
			return n.DefaultLeft
		}
		// As the libraries: XGBoost takes codes from x >= 0; LightGBM's
		// static_cast<int>(x) truncates toward zero and only a negative
		// int is a non-member, so values in (-1, 0) are category 0.
		member := false
		if (x >= 0 || (n.CatSetLeft && x > -1)) && x < float64(32*len(n.CatBits)) {
			if c := int(x); c < 32*len(n.CatBits) {
				member = n.CatBits[c/32]&(1<<(c%32)) != 0
			}
		}
		return member == n.CatSetLeft
	}
	if math.IsNaN(x) && n.Missing != MissingNaN {
		x = 0
	}
	if math.IsNaN(x) || (n.Missing == MissingZero && math.Abs(x) <= ZeroThreshold) {
		return n.DefaultLeft
	}
	switch {
	case r.spec.Float32 && n.LessEqual:
		return float32(x) <= float32(n.Threshold)
	case r.spec.Float32:
		return float32(x) < float32(n.Threshold)
	case n.LessEqual:
		return x <= n.Threshold
	}
	return x < n.Threshold
}

func (r refEnsemble) margins(row []float64) []float64 {
	s := r.spec
	out := make([]float64, s.NumGroups)
	copy(out, s.BaseMargin)
	if s.Float32 {
		for k := range out {
			out[k] = float64(float32(out[k]))
		}
	}
	for _, t := range s.Trees {
		i := 0
		for !t.Nodes[i].Leaf {
			if r.goLeft(&t.Nodes[i], row[t.Nodes[i].Feature]) {
				i = t.Nodes[i].Left
			} else {
				i = t.Nodes[i].Right
			}
		}
		w := t.Weight
		if w == 0 {
			w = 1
		}
		if s.Float32 {
			v := float32(t.Nodes[i].Value) * float32(w)
			out[t.Group] = float64(float32(out[t.Group]) + v)
		} else {
			out[t.Group] += w * t.Nodes[i].Value
		}
	}
	if s.AverageOutput && len(s.Trees) > 0 {
		iters := max(len(s.Trees)/s.NumGroups, 1) // fewer trees than groups: no division
		for k := range out {
			out[k] /= float64(iters)
		}
	}
	return out
}

// randomSpec builds a random ensemble exercising every kind of split; a
// plain one has only the numeric splits the fast step decides alone.
func randomSpec(rng *rand.Rand, f32, plain bool) EnsembleSpec {
	nf := 1 + rng.IntN(6)
	groups := 1 + rng.IntN(3)
	spec := EnsembleSpec{Format: "test", NumGroups: groups, Float32: f32,
		AverageOutput: !f32 && rng.IntN(4) == 0}
	for i := 0; i < nf; i++ {
		spec.FeatureNames = append(spec.FeatureNames, "f"+string(rune('a'+i)))
	}
	for k := 0; k < groups; k++ {
		spec.BaseMargin = append(spec.BaseMargin, rng.NormFloat64())
	}
	thresholds := []float64{0, 1e-35, -1e-35, 0.1, 1.0 / 3, -2.5, 1e10, math.Inf(1), math.Inf(-1), math.NaN(), 3}
	for t := 0; t < 2+rng.IntN(12); t++ {
		var nodes []TreeNode
		var grow func(depth int) int
		grow = func(depth int) int {
			i := len(nodes)
			nodes = append(nodes, TreeNode{})
			if depth == 0 || rng.IntN(5) == 0 {
				v := rng.NormFloat64()
				if rng.IntN(20) == 0 {
					v = math.Inf(-1 + 2*rng.IntN(2))
				}
				nodes[i] = TreeNode{Leaf: true, Value: v}
				return i
			}
			n := TreeNode{Feature: rng.IntN(nf), Missing: MissingRule(rng.IntN(3)),
				DefaultLeft: rng.IntN(2) == 0, LessEqual: rng.IntN(2) == 0}
			if f32 {
				n.Missing = MissingNaN
			}
			if plain {
				n.Missing = MissingRule(2 * rng.IntN(2)) // NaN or None
				n.Threshold = rng.NormFloat64()
			} else if rng.IntN(4) == 0 {
				n.CatBits = make([]uint32, 1+rng.IntN(2))
				for w := range n.CatBits {
					n.CatBits[w] = rng.Uint32()
				}
				n.CatSetLeft = rng.IntN(2) == 0
			} else if rng.IntN(2) == 0 {
				n.Threshold = thresholds[rng.IntN(len(thresholds))]
			} else {
				n.Threshold = rng.NormFloat64()
			}
			l := grow(depth - 1)
			r := grow(depth - 1)
			n.Left, n.Right = l, r
			nodes[i] = n
			return i
		}
		grow(1 + rng.IntN(5))
		w := 0.0
		if rng.IntN(3) == 0 {
			w = rng.Float64() * 2
		}
		spec.Trees = append(spec.Trees, Tree{Nodes: nodes, Group: t % groups, Weight: w})
	}
	return spec
}

// randomRow draws values that sit on and around thresholds, categories,
// zero, infinities and NaN.
func randomRow(rng *rand.Rand, nf int) []float64 {
	special := []float64{math.NaN(), 0, math.Copysign(0, -1), 1e-35, -1e-35, 2e-35, math.Inf(1), math.Inf(-1),
		0.1, float64(float32(0.1)), math.Nextafter(0.1, 1), 1.0 / 3, float64(float32(1.0 / 3)), -2.5, 3, 5, 33, 40, 2.5, -1, 1e10}
	row := make([]float64, nf)
	for j := range row {
		switch rng.IntN(3) {
		case 0:
			row[j] = special[rng.IntN(len(special))]
		case 1:
			row[j] = float64(rng.IntN(70))
		default:
			row[j] = rng.NormFloat64()
		}
	}
	return row
}

func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

// wideMargins sums Ensemble.leaf over the trees, as margins does for models
// with more than maxLaneFeatures features.
func wideMargins(e *Ensemble, row []float64) []float64 {
	out := append([]float64(nil), e.base...)
	for t := range e.roots {
		g := e.tgroup[t]
		if e.f32 {
			out[g] = float64(float32(out[g]) + float32(e.leaf(t, row)))
		} else {
			out[g] += e.leaf(t, row)
		}
	}
	if e.divisor != 0 {
		for k := range out {
			out[k] /= e.divisor
		}
	}
	return out
}

func TestEnsembleMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for it := 0; it < 400; it++ {
		spec := randomSpec(rng, it%2 == 0, it%3 == 0)
		e, err := CompileEnsemble(spec)
		if err != nil {
			t.Fatalf("spec %d: %v", it, err)
		}
		if it%3 == 0 && e.specs != nil {
			t.Fatalf("spec %d: plain spec compiled with %d special nodes", it, len(e.specs))
		}
		e.blocks = it%4 != 1    // test both PredictRows paths
		bins := e.compileBins() // test the binned layout whether Predict picks it or not
		if bins == nil {
			t.Fatalf("spec %d: no binned layout", it)
		}
		masks := e.compileMasks() // and the mask table
		if masks == nil {
			t.Fatalf("spec %d: no mask table", it)
		}
		e.bins, e.masks = bins, nil
		ref := refEnsemble{spec}
		nf, g := len(spec.FeatureNames), spec.NumGroups
		const n = 150 // more than two blocks of PredictRows
		rows := make([]float64, 0, n*nf)
		for r := 0; r < n; r++ {
			rows = append(rows, randomRow(rng, nf)...)
		}
		batch := make([]float64, n*g)
		PredictRows(e, rows, n, batch, true)
		got := make([]float64, g)
		for r := 0; r < n; r++ {
			row := rows[r*nf : (r+1)*nf]
			want := ref.margins(row)
			e.PredictRaw(row, got)
			wide := wideMargins(e, row) // the path of models too wide for lanes
			e.bins = nil                // the path of models outside the bins' limits
			lanes := make([]float64, g)
			e.PredictRaw(row, lanes)
			e.masks = masks
			table := make([]float64, g)
			e.PredictRaw(row, table)
			e.bins, e.masks = bins, nil
			for k := range want {
				if !sameFloat(got[k], want[k]) || !sameFloat(batch[r*g+k], want[k]) || !sameFloat(wide[k], want[k]) ||
					!sameFloat(lanes[k], want[k]) || !sameFloat(table[k], want[k]) {
					t.Fatalf("spec %d (float32 %v) row %v group %d: PredictRaw %v, PredictRows %v, tree by tree %v, lanes %v, mask table %v, reference %v",
						it, spec.Float32, row, k, got[k], batch[r*g+k], wide[k], lanes[k], table[k], want[k])
				}
			}
		}
	}
}

func TestStrictThresholdFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(t32 float32, x float64, lessEqual bool) {
		t.Helper()
		thr, allLeft := strictThreshold(float64(t32), lessEqual, true)
		want := float32(x) < t32
		if lessEqual {
			want = float32(x) <= t32
		}
		got := allLeft || x < thr
		if got != want {
			t.Fatalf("t=%v (bits %#x) x=%v lessEqual=%v: compiled says left=%v, float32 comparison %v",
				t32, math.Float32bits(t32), x, lessEqual, got, want)
		}
	}
	ts := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.1, math.MaxFloat32, -math.MaxFloat32,
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, float32(math.Inf(1)), float32(math.Inf(-1)), 3, 16777216}
	for i := 0; i < 2000; i++ {
		ts = append(ts, math.Float32frombits(rng.Uint32()))
	}
	for _, t32 := range ts {
		if t32 != t32 {
			continue
		}
		prev := float64(math.Nextafter32(t32, float32(math.Inf(-1))))
		next := float64(math.Nextafter32(t32, float32(math.Inf(1))))
		cands := []float64{float64(t32), prev, next, prev/2 + float64(t32)/2, float64(t32)/2 + next/2,
			math.Inf(1), math.Inf(-1), 0, 1e300, -1e300}
		for _, c := range cands[:5] {
			cands = append(cands, math.Nextafter(c, math.Inf(1)), math.Nextafter(c, math.Inf(-1)))
		}
		for _, x := range cands {
			if math.IsNaN(x) {
				continue
			}
			check(t32, x, false)
			check(t32, x, true)
		}
	}
}

func TestCompileEnsembleErrors(t *testing.T) {
	leaf := TreeNode{Leaf: true}
	split := func(f, l, r int) TreeNode { return TreeNode{Feature: f, Left: l, Right: r} }
	base := func(trees ...Tree) EnsembleSpec {
		return EnsembleSpec{FeatureNames: []string{"a", "b"}, NumGroups: 1, Trees: trees}
	}
	tests := []struct {
		name string
		spec EnsembleSpec
		want string
	}{
		{"no groups", EnsembleSpec{FeatureNames: []string{"a"}}, "num_groups must be at least 1"},
		{"empty tree", base(Tree{}), "tree 0: no nodes"},
		{"group", base(Tree{Nodes: []TreeNode{leaf}, Group: 1}), "tree 0: group 1 out of range"},
		{"feature", base(Tree{Nodes: []TreeNode{split(2, 1, 2), leaf, leaf}}), "tree 0: node 0: feature 2 out of range"},
		{"child", base(Tree{Nodes: []TreeNode{split(0, 1, 5), leaf, leaf}}), "tree 0: node 0: child 5 out of range"},
		{"cycle", base(Tree{Nodes: []TreeNode{split(0, 1, 2), split(1, 0, 2), leaf}}), "tree 0: node 1: child 0 is reached twice"},
		{"shared", base(Tree{Nodes: []TreeNode{split(0, 1, 1), leaf}}), "reached twice"},
		{"second tree", base(Tree{Nodes: []TreeNode{leaf}}, Tree{Nodes: []TreeNode{split(0, 1, 1), leaf}}), "tree 1: node 0"},
		{"empty name", EnsembleSpec{FeatureNames: []string{"a", ""}, NumGroups: 1}, "feature 1: empty name"},
		{"duplicate name", EnsembleSpec{FeatureNames: []string{"a", "b", "a"}, NumGroups: 1}, `feature 2: name "a" already used by feature 0`},
		{"base margins", EnsembleSpec{FeatureNames: []string{"a"}, NumGroups: 1, BaseMargin: []float64{1, 2}}, "2 base margins for 1 groups"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileEnsemble(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CompileEnsemble: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A node unreachable from the root (XGBoost keeps deleted nodes in its
// arrays) is ignored even when it is malformed.
func TestCompileEnsembleIgnoresUnreachableNodes(t *testing.T) {
	spec := EnsembleSpec{FeatureNames: []string{"a"}, NumGroups: 1, Trees: []Tree{{Nodes: []TreeNode{
		{Feature: 0, Threshold: 1, Left: 1, Right: 2},
		{Leaf: true, Value: -1},
		{Leaf: true, Value: 1},
		{Feature: 99, Left: 0, Right: 0}, // deleted node
	}}}}
	e, err := CompileEnsemble(spec)
	if err != nil {
		t.Fatal(err)
	}
	out := []float64{0}
	for _, c := range []struct{ x, want float64 }{{0, -1}, {1, 1}, {math.NaN(), 1}} {
		e.PredictRaw([]float64{c.x}, out)
		if out[0] != c.want {
			t.Errorf("x=%v: %v, want %v", c.x, out[0], c.want)
		}
	}
}

func TestArgmax(t *testing.T) {
	// Three groups with constant trees: margins 1, 3, 2 (+ base).
	spec := EnsembleSpec{FeatureNames: []string{"a"}, NumGroups: 3, Link: LinkArgmax, BaseMargin: []float64{0.5, 0.5, 0.5}}
	for g, v := range []float64{1, 3, 2} {
		spec.Trees = append(spec.Trees, Tree{Nodes: []TreeNode{{Leaf: true, Value: v}}, Group: g})
	}
	e, err := CompileEnsemble(spec)
	if err != nil {
		t.Fatal(err)
	}
	if e.NumOutputs() != 1 {
		t.Fatalf("NumOutputs() = %d, want 1", e.NumOutputs())
	}
	out := []float64{-1}
	e.Predict([]float64{0}, out)
	if out[0] != 1 {
		t.Errorf("Predict = %v, want class 1", out[0])
	}
	e.PredictRaw([]float64{0}, out)
	if out[0] != 3.5 {
		t.Errorf("PredictRaw = %v, want the largest margin 3.5", out[0])
	}
}

func TestLinks(t *testing.T) {
	f := func(link Link, scale float64, margins, want []float64) {
		t.Helper()
		out := append([]float64(nil), margins...)
		applyLink(link, scale, out)
		for k := range want {
			if math.Abs(out[k]-want[k]) > 1e-12 {
				t.Errorf("link %d %v: got %v, want %v", link, margins, out, want)
			}
		}
	}
	f(LinkIdentity, 1, []float64{-2, 3}, []float64{-2, 3})
	f(LinkSigmoid, 1, []float64{0, math.Log(3)}, []float64{0.5, 0.75})
	f(LinkSigmoid, 2, []float64{math.Log(3) / 2}, []float64{0.75})
	f(LinkExp, 1, []float64{0, math.Log(5)}, []float64{1, 5})
	f(LinkSoftmax, 1, []float64{0, math.Log(3)}, []float64{0.25, 0.75})
	f(LinkSoftmax, 1, []float64{1000, 1000 + math.Log(3)}, []float64{0.25, 0.75}) // no overflow
}

// TestCategoricalTruncatesLikeReference: XGBoost and LightGBM both cast a
// categorical value to an integer code, so 2.7 is category 2.
func TestCategoricalTruncatesLikeReference(t *testing.T) {
	for _, setLeft := range []bool{true, false} {
		e, err := CompileEnsemble(EnsembleSpec{FeatureNames: []string{"c"}, NumGroups: 1, Trees: []Tree{{Nodes: []TreeNode{
			{Feature: 0, CatBits: []uint32{1 << 2}, CatSetLeft: setLeft, Left: 1, Right: 2},
			{Leaf: true, Value: 1}, {Leaf: true, Value: 2},
		}}}})
		if err != nil {
			t.Fatal(err)
		}
		member, other := 1.0, 2.0
		if !setLeft {
			member, other = 2, 1
		}
		for _, tc := range []struct{ x, want float64 }{{2, member}, {2.7, member}, {2.9999, member}, {3, other}, {1.5, other}, {-0.5, other}, {-2, other}, {1e9, other}} {
			out := []float64{0}
			e.PredictRaw([]float64{tc.x}, out)
			if out[0] != tc.want {
				t.Errorf("CatSetLeft=%v x=%v: leaf %v, want %v", setLeft, tc.x, out[0], tc.want)
			}
			rows := []float64{tc.x}
			PredictRows(e, rows, 1, out, true)
			if out[0] != tc.want {
				t.Errorf("CatSetLeft=%v x=%v: PredictRows leaf %v, want %v", setLeft, tc.x, out[0], tc.want)
			}
		}
	}
}

// thresholdSpec has nf features, each split by trees of stumps and by
// chains (leaf-wise trees of depth depth) at up to nthr distinct thresholds,
// so that a feature's bins take several mask words: nthr/4 stumps and one
// chain per feature, or with stumps false, chains enough for nthr splits.
func thresholdSpec(rng *rand.Rand, nf, nthr, depth int, stumps, f32 bool) EnsembleSpec {
	spec := EnsembleSpec{Format: "test", NumGroups: 1, Float32: f32}
	for f := range nf {
		spec.FeatureNames = append(spec.FeatureNames, fmt.Sprintf("f%d", f))
	}
	split := func(f int) TreeNode {
		n := TreeNode{Feature: f, Threshold: float64(rng.IntN(nthr)) / 4, LessEqual: rng.IntN(2) == 0,
			DefaultLeft: rng.IntN(2) == 0}
		if !f32 {
			n.Missing = MissingRule(2 * rng.IntN(2)) // NaN or None
		}
		return n
	}
	chains := 1
	if !stumps {
		chains = nthr / depth
	}
	for f := range nf {
		for range nthr / 4 * b2i(stumps) {
			n := split(f)
			n.Left, n.Right = 1, 2
			spec.Trees = append(spec.Trees, Tree{Nodes: []TreeNode{n, {Leaf: true, Value: rng.NormFloat64()}, {Leaf: true, Value: rng.NormFloat64()}}})
		}
		for range chains {
			var chain []TreeNode
			for d := range depth {
				n := split(f)
				n.Left, n.Right = len(chain)+1, len(chain)+2
				if d == depth-1 {
					n.Right = len(chain) + 2
				}
				chain = append(chain, n, TreeNode{Leaf: true, Value: rng.NormFloat64()})
				if d%2 == 1 { // grow on the left as well as on the right
					chain[len(chain)-2].Left, chain[len(chain)-2].Right = len(chain), len(chain)-1
				}
			}
			chain = append(chain, TreeNode{Leaf: true, Value: rng.NormFloat64()})
			spec.Trees = append(spec.Trees, Tree{Nodes: chain})
		}
	}
	return spec
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestBinsManyThresholds checks the binned layout on features with more
// thresholds than one mask word holds, in the small and the large row
// buffer, and that a model beyond binMaxWords falls back to marginsLanes.
func TestBinsManyThresholds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name                  string
		nf, nthr              int
		stumps                bool
		bins, bigWords, masks bool
	}{
		{"one word", 3, 40, true, true, false, true},
		{"chains only", 3, 1200, false, true, true, true},
		{"several words", 3, 1200, true, true, false, false},
		{"large buffer", 12, 1200, true, true, true, false},
		{"beyond binMaxWords and maskMaxWords", 100, 1200, true, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f32 := range []bool{false, true} {
				spec := thresholdSpec(rng, tc.nf, tc.nthr, 40, tc.stumps, f32)
				e, err := CompileEnsemble(spec)
				if err != nil {
					t.Fatal(err)
				}
				e.bins = e.compileBins()
				if (e.bins != nil) != tc.bins || (e.bins != nil && (e.bins.words > binSmallWords) != tc.bigWords) {
					t.Fatalf("bins %v, want %v (large buffer %v)", e.bins != nil, tc.bins, tc.bigWords)
				}
				masks := e.compileMasks()
				if (masks != nil) != tc.masks {
					t.Fatalf("mask table %v, want %v", masks != nil, tc.masks)
				}
				ref := refEnsemble{spec}
				got := make([]float64, 1)
				row := make([]float64, tc.nf)
				for r := range 600 {
					e.masks = nil // bins (or lanes), then the mask table
					if r%2 == 1 {
						e.masks = masks
					}
					for j := range row {
						x := float64(rng.IntN(tc.nthr+8)-4) / 4
						switch rng.IntN(6) {
						case 0:
							x = math.Nextafter(x, math.Inf(1))
						case 1:
							x = math.Nextafter(x, math.Inf(-1))
						case 2:
							x = []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, float64(float32(0.1))}[rng.IntN(5)]
						}
						row[j] = x
					}
					want := ref.margins(row)
					e.PredictRaw(row, got)
					if !sameFloat(got[0], want[0]) {
						t.Fatalf("float32 %v row %d %v (mask table %v): PredictRaw %v, reference %v", f32, r, row, e.masks != nil, got[0], want[0])
					}
				}
				if allocs := testing.AllocsPerRun(20, func() { e.PredictRaw(row, got) }); allocs != 0 {
					t.Errorf("float32 %v: PredictRaw allocates %v times", f32, allocs)
				}
			}
		})
	}
}

// TestBinsCategoryCodes checks the categorical codes at the edges of the
// inline bitsets (codes 61, 62, 63 and beyond) against the reference, in the
// mask table and the binned layout.
func TestBinsCategoryCodes(t *testing.T) {
	xs := []float64{0, 0.5, 31, 32, 60.9, 61, 61.5, 62, 62.5, 63, 63.9, 64, 100, -0.5, -1, math.Copysign(0, -1),
		math.Nextafter(-1, 0), -1.5, -1e-300,
		math.NaN(), math.Inf(1), math.Inf(-1), 1e300}
	for _, set := range [][]uint32{{1 << 5}, {0, 1 << 29}, {0, 1 << 30}, {0, 1 << 31}, {1, 1<<29 | 1<<30}, {0, 0, 1}, {}} {
		for _, setLeft := range []bool{false, true} {
			for _, missing := range []MissingRule{MissingNaN, MissingNone} {
				for _, dl := range []bool{false, true} {
					spec := EnsembleSpec{FeatureNames: []string{"c"}, NumGroups: 1, Trees: []Tree{{Nodes: []TreeNode{
						{Feature: 0, CatBits: append([]uint32{}, set...), CatSetLeft: setLeft, Missing: missing, DefaultLeft: dl, Left: 1, Right: 2},
						{Leaf: true, Value: 1}, {Leaf: true, Value: 2},
					}}}}
					e, err := CompileEnsemble(spec)
					if err != nil {
						t.Fatal(err)
					}
					ref := refEnsemble{spec}
					out := []float64{0}
					masks := e.masks
					if masks == nil {
						t.Fatal("no mask table")
					}
					for _, layout := range []*maskTable{masks, nil} { // the mask table, then bins
						e.masks = layout
						for _, x := range xs {
							e.PredictRaw([]float64{x}, out)
							if want := ref.margins([]float64{x}); out[0] != want[0] {
								t.Errorf("set %x setLeft %v missing %d defaultLeft %v x=%v (mask table %v): leaf %v, want %v",
									set, setLeft, missing, dl, x, layout != nil, out[0], want[0])
							}
						}
					}
				}
			}
		}
	}
}

// TestBinWorthIt checks which models Predict walks through binTrees: those
// with categorical splits and those with leaf-wise trees, not numeric
// depth-wise ones.
func TestBinWorthIt(t *testing.T) {
	leaf := func(v float64) TreeNode { return TreeNode{Leaf: true, Value: v} }
	// complete builds a complete tree of the given depth on feature 0.
	var complete func(nodes []TreeNode, depth int) ([]TreeNode, int)
	complete = func(nodes []TreeNode, depth int) ([]TreeNode, int) {
		i := len(nodes)
		if depth == 0 {
			return append(nodes, leaf(float64(i))), i
		}
		nodes = append(nodes, TreeNode{Feature: 0, Threshold: float64(i)})
		nodes, l := complete(nodes, depth-1)
		nodes, r := complete(nodes, depth-1)
		nodes[i].Left, nodes[i].Right = l, r
		return nodes, i
	}
	// chain builds a leaf-wise tree: each split has a leaf on the left.
	chain := func(depth int) []TreeNode {
		var nodes []TreeNode
		for d := range depth {
			nodes = append(nodes, TreeNode{Feature: 0, Threshold: float64(d), Left: 2*d + 1, Right: 2*d + 2}, leaf(float64(d)))
		}
		return append(nodes, leaf(-1))
	}
	balanced, _ := complete(nil, 6)
	cat := []TreeNode{{Feature: 0, CatBits: []uint32{6}, Left: 1, Right: 2}, leaf(1), leaf(2)}
	for _, tc := range []struct {
		name  string
		trees [][]TreeNode
		want  bool
	}{
		{"depth-wise numeric", [][]TreeNode{balanced, balanced}, false},
		{"leaf-wise numeric", [][]TreeNode{chain(10), chain(8)}, true},
		{"depth-wise with a categorical split", [][]TreeNode{balanced, cat}, true},
		{"single leaves", [][]TreeNode{{leaf(1)}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := EnsembleSpec{FeatureNames: []string{"a"}, NumGroups: 1}
			for _, nodes := range tc.trees {
				spec.Trees = append(spec.Trees, Tree{Nodes: nodes})
			}
			e, err := CompileEnsemble(spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.binWorthIt(); got != tc.want {
				t.Errorf("binned layout worth it %v, want %v", got, tc.want)
			}
			// These small trees fit the mask table, which comes first.
			if e.masks == nil || e.bins != nil {
				t.Errorf("mask table %v, binned layout %v; want the mask table alone", e.masks != nil, e.bins != nil)
			}
			if e.specs != nil && e.blocks {
				t.Errorf("PredictRows uses blocks with the mask table on special splits")
			}
		})
	}
	e := lgbLoadFixture(t, "genlin_fmtp_poisson_Frequency.model").(*Ensemble)
	if e.masks == nil || e.blocks {
		t.Errorf("the genlin Poisson fixture: mask table %v, blocks %v; want the mask table row by row", e.masks != nil, e.blocks)
	}
}
