package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// sameBits says whether two scores are the same float64, NaN matching NaN.
func sameBits(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// checkPlan scores batches through a plan with a random set of varying
// features and compares every output with Predict and PredictRaw on the
// full row, bit for bit. Each batch takes its shared values from one row and
// each variant's values from another.
func checkPlan(t *testing.T, e *Ensemble, rows [][]float64, rng *rand.Rand, batches int) {
	t.Helper()
	nf := len(e.features)
	var varying []int
	switch rng.IntN(4) {
	case 0: // none varies
	case 1: // all vary
		varying = rng.Perm(nf)
	default:
		for _, f := range rng.Perm(nf) {
			if rng.IntN(3) == 0 {
				varying = append(varying, f)
			}
		}
	}
	p, err := e.NewPlan(varying)
	if err != nil {
		t.Fatal(err)
	}
	var s PlanScratch
	// With the mask table's shared masks, then with the scan over nodes.
	tables := []*maskTable{p.table}
	if p.table != nil {
		tables = append(tables, nil)
	}
	for _, table := range tables {
		p.table = table
		checkPlanBatches(t, e, p, varying, rows, rng, batches, &s)
	}
}

func checkPlanBatches(t *testing.T, e *Ensemble, p *Plan, varying []int, rows [][]float64, rng *rand.Rand, batches int, s *PlanScratch) {
	t.Helper()
	var err error
	no := e.NumOutputs()
	for b := 0; b < batches; b++ {
		shared := rows[rng.IntN(len(rows))]
		nv := 1 + rng.IntN(20)
		vs := make([]*Variant, nv)
		full := make([][]float64, nv)
		for i := range vs {
			src := rows[rng.IntN(len(rows))]
			vals := make([]float64, len(varying))
			row := append([]float64(nil), shared...)
			for j, f := range varying {
				vals[j] = src[f]
				row[f] = src[f]
			}
			full[i] = row
			if vs[i], err = p.Variant(vals); err != nil {
				t.Fatal(err)
			}
		}
		// Garbage in the varying positions of the shared row must not matter.
		sh := append([]float64(nil), shared...)
		for _, f := range varying {
			sh[f] = rng.NormFloat64() * 100
		}
		raw := make([]float64, nv*no)
		pred := make([]float64, nv*no)
		p.ScoreRaw(sh, vs, raw, s)
		p.Score(sh, vs, pred, s)
		want := make([]float64, no)
		for i, row := range full {
			e.PredictRaw(row, want)
			for k := range want {
				if !sameBits(raw[i*no+k], want[k]) {
					t.Fatalf("varying %v (mask table %v), row %v: ScoreRaw output %d = %v, PredictRaw = %v", varying, p.table != nil, row, k, raw[i*no+k], want[k])
				}
			}
			e.Predict(row, want)
			for k := range want {
				if !sameBits(pred[i*no+k], want[k]) {
					t.Fatalf("varying %v (mask table %v), row %v: Score output %d = %v, Predict = %v", varying, p.table != nil, row, k, pred[i*no+k], want[k])
				}
			}
		}
	}
}

func TestPlanMatchesPredictOnFixtures(t *testing.T) {
	xgbRows := readTSV(t, filepath.Join("testdata", "xgboost", "rows.tsv"))
	type fixture struct {
		path string
		rows [][]float64
	}
	var fixtures []fixture
	for _, fx := range xgbFixtures {
		if fx.trees > 0 && fx.model != "binary_logistic_bracketed" {
			fixtures = append(fixtures, fixture{filepath.Join("testdata", "xgboost", fx.model+".json"), xgbRows})
		}
	}
	lgb := func(model, rows string) fixture {
		return fixture{filepath.Join("testdata", "lightgbm", model),
			lgbReadTable(t, filepath.Join("testdata", "lightgbm", rows))}
	}
	fixtures = append(fixtures,
		lgb("lg_dart_breast_cancer.model", "breast_cancer_test.tsv"),
		lgb("lg_kddcup99.model", "kddcup99_test.tsv"),
		lgb("genlin_fmtp_poisson_Frequency.model", "genlin_fmtp_poisson_Frequency_features.tsv"))
	// The hand-written XGBoost 2 model has a categorical split: rows around
	// its categories, NaN and negative codes.
	var catRows [][]float64
	for _, x := range []float64{math.NaN(), -1, 0, 1.4, 1.5, 2, 3} {
		for _, c := range []float64{math.NaN(), -1, -0.5, 0, 1, 1.9, 2, 3, 7, 40} {
			catRows = append(catRows, []float64{x, c})
		}
	}
	fixtures = append(fixtures, fixture{filepath.Join("testdata", "xgboost", "handwritten_v2.json"), catRows})

	for _, fx := range fixtures {
		t.Run(filepath.Base(fx.path), func(t *testing.T) {
			m, err := Load(fx.path)
			if err != nil {
				t.Fatal(err)
			}
			e, ok := m.(*Ensemble)
			if !ok {
				t.Fatalf("%T is not an ensemble", m)
			}
			if p, err := e.NewPlan(nil); err == nil && e.masks != nil && p.table == nil {
				t.Errorf("the model has a mask table but its plan does not use it")
			}
			rng := rand.New(rand.NewPCG(7, uint64(len(fx.path))))
			for split := 0; split < 12; split++ {
				checkPlan(t, e, fx.rows, rng, 8)
			}
		})
	}
}

// TestPlanMatchesPredictOnRandomEnsembles covers what the fixtures may not:
// every missing rule, thresholds at ±Inf and NaN, float32 and float64
// comparisons, categorical splits either way round, DART weights, average
// output, several groups and rows of special values.
func TestPlanMatchesPredictOnRandomEnsembles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for it := 0; it < 300; it++ {
		spec := randomSpec(rng, it%3 == 0, it%5 == 0)
		if it%7 == 0 {
			spec.Link = LinkArgmax
		}
		e, err := CompileEnsemble(spec)
		if err != nil {
			t.Fatal(err)
		}
		rows := make([][]float64, 40)
		for i := range rows {
			rows[i] = randomRow(rng, len(spec.FeatureNames))
		}
		checkPlan(t, e, rows, rng, 4)
	}
}

// deepSpec builds trees of up to 2^depth leaves over nf features, so that
// masks span several words.
func deepSpec(rng *rand.Rand, depth, trees int, f32 bool) EnsembleSpec {
	const nf = 6
	spec := EnsembleSpec{Format: "test", NumGroups: 1, Float32: f32, BaseMargin: []float64{0.5}}
	for i := 0; i < nf; i++ {
		spec.FeatureNames = append(spec.FeatureNames, "f"+string(rune('a'+i)))
	}
	for t := 0; t < trees; t++ {
		var nodes []TreeNode
		var grow func(d int) int
		grow = func(d int) int {
			i := len(nodes)
			nodes = append(nodes, TreeNode{})
			if d == 0 || rng.IntN(12) == 0 {
				nodes[i] = TreeNode{Leaf: true, Value: rng.NormFloat64()}
				return i
			}
			n := TreeNode{Feature: rng.IntN(nf), Threshold: float64(rng.IntN(40)) + rng.Float64(),
				DefaultLeft: rng.IntN(2) == 0, LessEqual: rng.IntN(2) == 0}
			n.Left = grow(d - 1)
			n.Right = grow(d - 1)
			nodes[i] = n
			return i
		}
		grow(depth)
		spec.Trees = append(spec.Trees, Tree{Nodes: nodes})
	}
	return spec
}

func TestPlanMultiWordTrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, depth := range []int{7, 8} {
		for _, f32 := range []bool{false, true} {
			e, err := CompileEnsemble(deepSpec(rng, depth, 12, f32))
			if err != nil {
				t.Fatal(err)
			}
			rows := make([][]float64, 60)
			for i := range rows {
				rows[i] = randomRow(rng, 6)
			}
			p, err := e.NewPlan(nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.tw == 1 {
				t.Fatalf("depth %d: every tree fits one word; the test needs wider trees", depth)
			}
			for k := 0; k < 6; k++ {
				checkPlan(t, e, rows, rng, 6)
			}
		}
	}
}

func TestNewPlanErrors(t *testing.T) {
	e, err := CompileEnsemble(deepSpec(rand.New(rand.NewPCG(1, 1)), 3, 2, false))
	if err != nil {
		t.Fatal(err)
	}
	big, err := CompileEnsemble(deepSpec(rand.New(rand.NewPCG(1, 1)), 9, 1, false))
	if err != nil {
		t.Fatal(err)
	}
	f := func(e *Ensemble, varying []int, want string) {
		t.Helper()
		_, err := e.NewPlan(varying)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewPlan(%v) error = %v, want it to contain %q", varying, err, want)
		}
	}
	f(e, []int{6}, "varying feature 6 out of range [0,6)")
	f(e, []int{-1}, "varying feature -1 out of range")
	f(e, []int{2, 3, 2}, `varying feature 2 ("fc") listed twice`)
	f(big, nil, "tree 0 has more than 256 leaves")

	p, err := e.NewPlan([]int{1, 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Variant([]float64{1}); err == nil || !strings.Contains(err.Error(), "1 values for 2 varying features") {
		t.Errorf("Variant with one value: error = %v", err)
	}
	q, err := e.NewPlan(nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := q.Variant(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("ScoreRaw with another plan's variant did not panic")
		}
	}()
	p.ScoreRaw(make([]float64, 6), []*Variant{v}, make([]float64, 1), &PlanScratch{})
}

func TestPlanScoreDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, depth := range []int{6, 8} {
		e, err := CompileEnsemble(deepSpec(rng, depth, 50, true))
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.NewPlan([]int{4, 5})
		if err != nil {
			t.Fatal(err)
		}
		vs := make([]*Variant, 15)
		for i := range vs {
			if vs[i], err = p.Variant([]float64{float64(i), float64(2 * i)}); err != nil {
				t.Fatal(err)
			}
		}
		row := randomRow(rng, 6)
		out := make([]float64, len(vs))
		var s PlanScratch
		p.Score(row, vs, out, &s) // sizes the scratch
		if a := testing.AllocsPerRun(100, func() { p.Score(row, vs, out, &s) }); a != 0 {
			t.Errorf("depth %d: Score allocates %.1f times per call, want 0", depth, a)
		}
	}
}

// A model over a customer's age and an offer's discount: the discount
// varies per offer, the age is shared by every offer of one decision.
func ExampleEnsemble_NewPlan() {
	e, err := CompileEnsemble(EnsembleSpec{
		FeatureNames: []string{"age", "discount"},
		NumGroups:    1,
		Trees: []Tree{
			{Nodes: []TreeNode{{Feature: 0, Threshold: 30, Left: 1, Right: 2},
				{Leaf: true, Value: 1}, {Leaf: true, Value: 2}}},
			{Nodes: []TreeNode{{Feature: 1, Threshold: 10, Left: 1, Right: 2},
				{Leaf: true, Value: 0.25}, {Leaf: true, Value: 0.5}}},
		},
	})
	if err != nil {
		panic(err)
	}
	p, err := e.NewPlan([]int{1}) // discount varies
	if err != nil {
		panic(err)
	}
	// At catalog load: one variant per offer.
	small, _ := p.Variant([]float64{5})
	large, _ := p.Variant([]float64{20})
	// Per decision: the customer's row (the discount position is ignored).
	var s PlanScratch
	out := make([]float64, 2)
	p.ScoreRaw([]float64{42, math.NaN()}, []*Variant{small, large}, out, &s)
	fmt.Println(out)
	// Output: [2.25 2.5]
}

// TestPlanConcurrent scores one plan and its variants from several
// goroutines, each with its own scratch (run with -race).
func TestPlanConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	e, err := CompileEnsemble(deepSpec(rng, 6, 40, true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.NewPlan([]int{0, 3})
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]float64, 32)
	vs := make([]*Variant, len(rows))
	for i := range rows {
		rows[i] = randomRow(rng, 6)
		if vs[i], err = p.Variant([]float64{rows[i][0], rows[i][3]}); err != nil {
			t.Fatal(err)
		}
	}
	want := make([][]float64, len(rows))
	for i := range rows {
		want[i] = make([]float64, len(vs))
		p.Score(rows[i], vs, want[i], &PlanScratch{})
	}
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			var s PlanScratch
			out := make([]float64, len(vs))
			for it := 0; it < 200; it++ {
				i := (it + g) % len(rows)
				p.Score(rows[i], vs, out, &s)
				for k := range out {
					if !sameBits(out[k], want[i][k]) {
						done <- fmt.Errorf("goroutine %d, row %d, variant %d: %v, want %v", g, i, k, out[k], want[i][k])
						return
					}
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestNewPlanRejectsDeepChain: a tree that is a chain of a million splits
// (each with a leaf on the right) is rejected from its depth, before any
// recursion along it.
func TestNewPlanRejectsDeepChain(t *testing.T) {
	const n = 1_000_000
	nodes := make([]TreeNode, 0, 2*n+1)
	for i := 0; i < n; i++ {
		nodes = append(nodes, TreeNode{Feature: 0, Threshold: float64(n - i), Left: 2*i + 2, Right: 2*i + 1},
			TreeNode{Leaf: true, Value: 1})
	}
	nodes = append(nodes, TreeNode{Leaf: true})
	e, err := CompileEnsemble(EnsembleSpec{FeatureNames: []string{"x"}, NumGroups: 1, Trees: []Tree{{Nodes: nodes}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.NewPlan(nil); err == nil || !strings.Contains(err.Error(), "tree 0 has more than 256 leaves") {
		t.Errorf("NewPlan error = %v", err)
	}
}
