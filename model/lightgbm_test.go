package model

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// ---- fixtures: models, rows and LightGBM's own predictions ----

// lgbReadTable reads a whitespace-separated table of numbers.
func lgbReadTable(t testing.TB, path string) [][]float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float64
	for ln, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var row []float64
		for _, f := range strings.Fields(line) {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, ln+1, err)
			}
			row = append(row, x)
		}
		rows = append(rows, row)
	}
	return rows
}

func lgbLoadFixture(t testing.TB, name string) Model {
	t.Helper()
	m, err := Load(filepath.Join("testdata", "lightgbm", name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// lgbClose reports whether got agrees with want within 1e-6 relative, or 1e-7
// absolute near zero.
func lgbClose(got, want float64) bool {
	d := math.Abs(got - want)
	return d <= 1e-7 || d <= 1e-6*math.Abs(want)
}

func TestLightGBMFixtures(t *testing.T) {
	for _, tc := range []struct {
		model, rows, want string
		raw               bool // the reference holds raw scores
		objective         string
		trees, outputs    int
	}{
		{"lg_dart_breast_cancer.model", "breast_cancer_test.tsv", "lg_dart_breast_cancer_true_predictions.txt", false, "binary", 10, 1},
		{"lg_kddcup99.model", "kddcup99_test.tsv", "lg_kddcup99_true_predictions.txt", true, "multiclass", 130, 13},
		{"genlin_fmtp_poisson_Frequency.model", "genlin_fmtp_poisson_Frequency_features.tsv", "genlin_fmtp_poisson_Frequency_true_predictions.txt", false, "poisson", 100, 1},
	} {
		t.Run(tc.model, func(t *testing.T) {
			m := lgbLoadFixture(t, tc.model)
			info := m.Info()
			if info.Format != "lightgbm-text" || info.Objective != tc.objective || info.Trees != tc.trees || info.Outputs != tc.outputs || len(info.Version) != 16 {
				t.Errorf("Info() = %+v", info)
			}
			rows := lgbReadTable(t, filepath.Join("testdata", "lightgbm", tc.rows))
			want := lgbReadTable(t, filepath.Join("testdata", "lightgbm", tc.want))
			if len(rows) != len(want) {
				t.Fatalf("%d rows, %d predictions", len(rows), len(want))
			}
			out := make([]float64, m.NumOutputs())
			bad := 0
			for i, row := range rows {
				if len(row) != len(m.Features()) || len(want[i]) != len(out) {
					t.Fatalf("row %d: %d features, %d predictions; model has %d and %d", i, len(row), len(want[i]), len(m.Features()), len(out))
				}
				if tc.raw {
					m.PredictRaw(row, out)
				} else {
					m.Predict(row, out)
				}
				for k := range out {
					if !lgbClose(out[k], want[i][k]) {
						if bad++; bad <= 5 {
							t.Errorf("row %d output %d: got %.17g, LightGBM %.17g", i, k, out[k], want[i][k])
						}
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d rows disagree with LightGBM", bad, len(rows))
			}
		})
	}
}

// TestLightGBMFixtureTranslation checks the renumbered node lists against a
// direct walk of LightGBM's own arrays (lgbPredictRaw, a transcription of
// Tree::Predict) on every fixture row, raw scores bit for bit.
func TestLightGBMFixtureTranslation(t *testing.T) {
	for _, tc := range []struct{ model, rows string }{
		{"lg_dart_breast_cancer.model", "breast_cancer_test.tsv"},
		{"lg_kddcup99.model", "kddcup99_test.tsv"},
		{"genlin_fmtp_poisson_Frequency.model", "genlin_fmtp_poisson_Frequency_features.tsv"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "lightgbm", tc.model))
			if err != nil {
				t.Fatal(err)
			}
			lm, err := parseLightGBMText(string(data))
			if err != nil {
				t.Fatal(err)
			}
			m := lgbLoadFixture(t, tc.model)
			got, want := make([]float64, lm.outputs), make([]float64, lm.outputs)
			rows := lgbReadTable(t, filepath.Join("testdata", "lightgbm", tc.rows))
			// Also walk rows with missing values, to exercise default directions.
			for _, row := range rows[:20] {
				r := append([]float64(nil), row...)
				for j := range r {
					switch j % 3 {
					case 0:
						r[j] = math.NaN()
					case 1:
						r[j] = 0
					}
				}
				rows = append(rows, r)
			}
			for i, row := range rows {
				m.PredictRaw(row, got)
				lm.predictRaw(row, want)
				for k := range got {
					if got[k] != want[k] {
						t.Fatalf("row %d output %d: ensemble %.17g, LightGBM arrays %.17g", i, k, got[k], want[k])
					}
				}
			}
		})
	}
}

// predictRaw scores a row by walking LightGBM's arrays the way LightGBM's
// GBDT::PredictRaw and Tree::Predict do. It is the test oracle for the
// translation and the benchmark's baseline.
func (lm *lgbModel) predictRaw(row, out []float64) {
	for k := range out[:lm.outputs] {
		out[k] = 0
	}
	for i := range lm.trees {
		out[i%lm.outputs] += lm.trees[i].predict(row)
	}
	if lm.average {
		iters := float64(len(lm.trees) / lm.outputs)
		for k := range out[:lm.outputs] {
			out[k] /= iters
		}
	}
}

func (t *lgbTree) predict(row []float64) float64 {
	if t.numLeaves <= 1 {
		return t.leafValue[0]
	}
	const zero = float64(float32(1e-35)) // kZeroThreshold = 1e-35f
	node := 0
	for node >= 0 {
		fval, d := row[t.splitFeature[node]], t.decisionType[node]
		left := false
		if d&lgbCategorical != 0 {
			if !math.IsNaN(fval) && int(fval) >= 0 {
				c, iv := int(t.threshold[node]), int(fval)
				lo, hi := t.catBoundaries[c], t.catBoundaries[c+1]
				left = iv/32 < hi-lo && t.catThreshold[lo+iv/32]>>(iv%32)&1 != 0
			}
		} else {
			missing := (d >> 2) & 3
			if math.IsNaN(fval) && missing != 2 {
				fval = 0
			}
			if (missing == 1 && fval >= -zero && fval <= zero) || (missing == 2 && math.IsNaN(fval)) {
				left = d&lgbDefaultLeft != 0
			} else {
				left = fval <= t.threshold[node]
			}
		}
		if left {
			node = t.left[node]
		} else {
			node = t.right[node]
		}
	}
	return t.leafValue[^node]
}

// ---- hand-written models ----

// lgbTestTree is one tree of a hand-written model, in LightGBM's arrays.
type lgbTestTree struct {
	feature     []int
	threshold   []float64
	decision    []int
	left, right []int
	leaves      []float64
	catBounds   []int
	catWords    []uint32
}

// lgbText writes a model in LightGBM's text format. header holds the lines
// between max_feature_idx and feature_names (objective, average_output).
func lgbText(numClass, numFeatures int, header string, trees ...lgbTestTree) string {
	var b strings.Builder
	join := func(xs any) string {
		s := fmt.Sprint(xs)
		return s[1 : len(s)-1]
	}
	fmt.Fprintf(&b, "tree\nversion=v4\nnum_class=%d\nnum_tree_per_iteration=%d\nlabel_index=0\nmax_feature_idx=%d\n%s", numClass, numClass, numFeatures-1, header)
	names := make([]string, numFeatures)
	infos := make([]string, numFeatures)
	for i := range names {
		names[i], infos[i] = fmt.Sprintf("x%d", i), "none"
	}
	fmt.Fprintf(&b, "feature_names=%s\nfeature_infos=%s\n", strings.Join(names, " "), strings.Join(infos, " "))
	sizes := make([]int, len(trees))
	for i := range sizes {
		sizes[i] = 100
	}
	fmt.Fprintf(&b, "tree_sizes=%s\n\n", join(sizes))
	for i, t := range trees {
		fmt.Fprintf(&b, "Tree=%d\nnum_leaves=%d\nnum_cat=%d\n", i, len(t.leaves), max(len(t.catBounds)-1, 0))
		if len(t.leaves) > 1 {
			thr := make([]string, len(t.threshold))
			for j, x := range t.threshold {
				thr[j] = strconv.FormatFloat(x, 'g', -1, 64)
			}
			fmt.Fprintf(&b, "split_feature=%s\nsplit_gain=%s\nthreshold=%s\ndecision_type=%s\nleft_child=%s\nright_child=%s\n",
				join(t.feature), join(make([]int, len(t.feature))), strings.Join(thr, " "), join(t.decision), join(t.left), join(t.right))
		}
		vals := make([]string, len(t.leaves))
		for j, x := range t.leaves {
			vals[j] = strconv.FormatFloat(x, 'g', -1, 64)
		}
		fmt.Fprintf(&b, "leaf_value=%s\nleaf_count=%s\n", strings.Join(vals, " "), join(make([]int, len(t.leaves))))
		if len(t.catBounds) > 0 {
			fmt.Fprintf(&b, "cat_boundaries=%s\ncat_threshold=%s\n", join(t.catBounds), join(t.catWords))
		}
		b.WriteString("is_linear=0\nshrinkage=0.1\n\n\n")
	}
	b.WriteString("end of trees\n\nfeature_importances:\nx0=1\n\nparameters:\n[boosting: gbdt]\nend of parameters\n\npandas_categorical:null\n")
	return b.String()
}

// lgbStump is a one-split tree on feature 0: leaf value 1 on the left, 2 on the
// right.
func lgbStump(threshold float64, decision int) lgbTestTree {
	return lgbTestTree{feature: []int{0}, threshold: []float64{threshold}, decision: []int{decision},
		left: []int{-1}, right: []int{-2}, leaves: []float64{1, 2}}
}

func lgbMustParse(t *testing.T, text string) Model {
	t.Helper()
	m, err := Parse("hand.txt", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func lgbRaw1(m Model, x ...float64) float64 {
	out := make([]float64, m.NumOutputs())
	m.PredictRaw(x, out)
	return out[0]
}

func TestLightGBMNumericMissing(t *testing.T) {
	const (
		left, right = 1.0, 2.0
		dl          = lgbDefaultLeft
		none, zero  = 0 << 2, 1 << 2
		nan         = 2 << 2
	)
	nan64 := math.NaN()
	tiny := 1e-36 // |x| <= kZeroThreshold (1e-35f): zero for missing type Zero
	for _, tc := range []struct {
		name      string
		threshold float64
		decision  int
		x         float64
		want      float64
	}{
		// fval <= threshold goes left, in double precision.
		{"equal goes left", 0.5, nan, 0.5, left},
		{"above goes right", 0.5, nan, math.Nextafter(0.5, 1), right},
		{"double precision", 0.1, nan, float64(float32(0.1)), right},
		{"negative threshold", -1, none, -1.5, left},

		// Missing type NaN: only NaN follows the default direction.
		{"NaN default left", -1, nan | dl, nan64, left},
		{"NaN default right", 1, nan, nan64, right},
		{"NaN type: zero is a value", -1, nan | dl, 0, right},

		// Missing type Zero: NaN becomes 0, then |x| <= 1e-35 is missing.
		{"Zero: NaN default left", -1, zero | dl, nan64, left},
		{"Zero: NaN default right", 1, zero, nan64, right},
		{"Zero: 0 default left", -1, zero | dl, 0, left},
		{"Zero: 0 default right", 1, zero, 0, right},
		{"Zero: tiny default right", 1, zero, tiny, right},
		{"Zero: -tiny default left", -1, zero | dl, -tiny, left},
		{"Zero: 1e-30 is a value", 1, zero, 1e-30, left},

		// Missing type None: NaN becomes 0 and is compared; the default
		// direction is never used.
		{"None: NaN as 0 goes left", 0.5, none, nan64, left},
		{"None: NaN as 0 goes right", -0.5, none | dl, nan64, right},
		{"None: 0 compared", -0.5, none | dl, 0, right},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := lgbMustParse(t, lgbText(1, 1, "objective=regression\n", lgbStump(tc.threshold, tc.decision)))
			if got := lgbRaw1(m, tc.x); got != tc.want {
				t.Errorf("x=%v: got leaf %v, want %v", tc.x, got, tc.want)
			}
		})
	}
}

func TestLightGBMCategorical(t *testing.T) {
	// Categories {1, 3, 40} go left: bits 1 and 3 of word 0, bit 8 of word 1.
	set := []uint32{1<<1 | 1<<3, 1 << 8}
	cat := func(decision int) lgbTestTree {
		return lgbTestTree{feature: []int{0}, threshold: []float64{1}, decision: []int{decision},
			left: []int{-1}, right: []int{-2}, leaves: []float64{1, 2},
			// Two bitsets; the split uses the second (threshold = index 1).
			catBounds: []int{0, 1, 3}, catWords: append([]uint32{0xffffffff}, set...)}
	}
	const left, right = 1.0, 2.0
	for _, missing := range []int{0, 1, 2} {
		for _, dl := range []int{0, lgbDefaultLeft} {
			decision := lgbCategorical | dl | missing<<2
			m := lgbMustParse(t, lgbText(1, 1, "objective=regression\n", cat(decision)))
			for _, tc := range []struct {
				x    float64
				want float64
			}{
				{1, left}, {3, left}, {40, left},
				{0, right}, {2, right}, {39, right}, {41, right},
				{63, right}, {64, right}, {1e12, right}, // beyond the bitset
				{-1, right}, {-40, right}, // negative
				{math.NaN(), right}, // always right, whatever the missing type (LightGBM PR #4468)
				{math.Inf(1), right}, {math.Inf(-1), right},
			} {
				if got := lgbRaw1(m, tc.x); got != tc.want {
					t.Errorf("decision_type %d, x=%v: got leaf %v, want %v", decision, tc.x, got, tc.want)
				}
			}
		}
	}
	// A bitset of zero words holds no category: everything goes right.
	empty := lgbTestTree{feature: []int{0}, threshold: []float64{0}, decision: []int{lgbCategorical},
		left: []int{-1}, right: []int{-2}, leaves: []float64{1, 2}, catBounds: []int{0, 0}}
	m := lgbMustParse(t, lgbText(1, 1, "objective=regression\n", empty))
	for _, x := range []float64{0, 1, math.NaN()} {
		if got := lgbRaw1(m, x); got != right {
			t.Errorf("empty set, x=%v: got leaf %v, want %v", x, got, right)
		}
	}
}

func TestLightGBMTrees(t *testing.T) {
	single := lgbTestTree{leaves: []float64{0.25}}
	// A deeper tree: node 0 splits x0 <= 0; its right child is internal
	// node 1 (x1 <= 5), whose left child is internal node 2 (x0 <= 10).
	deep := lgbTestTree{
		feature: []int{0, 1, 0}, threshold: []float64{0, 5, 10}, decision: []int{2, 2, 2},
		left: []int{-1, 2, -2}, right: []int{1, -4, -3}, leaves: []float64{10, 20, 30, 40},
	}
	// The same tree numbered so that a child has a smaller index than its
	// parent (node 2 is the root's right child, node 1 its left child):
	// valid for LightGBM, and the loader must renumber it.
	reordered := lgbTestTree{
		feature: []int{0, 0, 1}, threshold: []float64{0, 10, 5}, decision: []int{2, 2, 2},
		left: []int{-1, -2, 1}, right: []int{2, -3, -4}, leaves: []float64{10, 20, 30, 40},
	}
	for _, tc := range []struct {
		name  string
		trees []lgbTestTree
		x     []float64
		want  float64
	}{
		{"single leaf", []lgbTestTree{single}, []float64{0, 0}, 0.25},
		{"single leaf plus lgbStump", []lgbTestTree{single, lgbStump(0, 2)}, []float64{1, 0}, 2.25},
		{"deep left", []lgbTestTree{deep}, []float64{-1, 0}, 10},
		{"deep right left left", []lgbTestTree{deep}, []float64{5, 5}, 20},
		{"deep right left right", []lgbTestTree{deep}, []float64{11, 5}, 30},
		{"deep right right", []lgbTestTree{deep}, []float64{5, 6}, 40},
		{"reordered left", []lgbTestTree{reordered}, []float64{-1, 0}, 10},
		{"reordered right left left", []lgbTestTree{reordered}, []float64{5, 5}, 20},
		{"reordered right left right", []lgbTestTree{reordered}, []float64{11, 5}, 30},
		{"reordered right right", []lgbTestTree{reordered}, []float64{5, 6}, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := lgbMustParse(t, lgbText(1, 2, "objective=regression\n", tc.trees...))
			if got := lgbRaw1(m, tc.x...); got != tc.want {
				t.Errorf("x=%v: got %v, want %v", tc.x, got, tc.want)
			}
		})
	}
}

func TestLightGBMObjectives(t *testing.T) {
	const leaf = 0.75 // x0 = 1 reaches the right leaf of every tree below
	tree := lgbTestTree{feature: []int{0}, threshold: []float64{0}, decision: []int{2},
		left: []int{-1}, right: []int{-2}, leaves: []float64{-3, leaf}}
	sigmoid := func(s, x float64) float64 { return 1 / (1 + math.Exp(-s*x)) }
	for _, tc := range []struct {
		objective string
		want      float64 // Predict for raw score `leaf`
	}{
		{"binary sigmoid:1", sigmoid(1, leaf)},
		{"binary sigmoid:2.5", sigmoid(2.5, leaf)},
		{"cross_entropy", sigmoid(1, leaf)},
		{"regression", leaf},
		{"regression_l1", leaf},
		{"huber", leaf},
		{"fair", leaf},
		{"quantile", leaf},
		{"mape", leaf},
		{"poisson", math.Exp(leaf)},
		{"gamma", math.Exp(leaf)},
		{"tweedie", math.Exp(leaf)},
		{"lambdarank", leaf},
		{"rank_xendcg", leaf},
		{"", leaf}, // no objective line: a custom objective, raw scores
	} {
		t.Run(tc.objective, func(t *testing.T) {
			header := ""
			if tc.objective != "" {
				header = "objective=" + tc.objective + "\n"
			}
			m := lgbMustParse(t, lgbText(1, 1, header, tree))
			out := []float64{0}
			m.PredictRaw([]float64{1}, out)
			if out[0] != leaf {
				t.Errorf("PredictRaw = %v, want %v", out[0], leaf)
			}
			m.Predict([]float64{1}, out)
			if !lgbClose(out[0], tc.want) {
				t.Errorf("Predict = %.17g, want %.17g", out[0], tc.want)
			}
			if name, _, _ := strings.Cut(tc.objective, " "); m.Info().Objective != name {
				t.Errorf("Info().Objective = %q, want %q", m.Info().Objective, name)
			}
		})
	}
}

func TestLightGBMMulticlass(t *testing.T) {
	// Two iterations of three classes; tree i adds to class i%3. Every tree
	// splits on x0 <= 0; with x0 = 1 each adds its right leaf.
	right := []float64{0.1, -0.2, 0.3, 0.4, 0.5, -0.6}
	var trees []lgbTestTree
	for _, v := range right {
		trees = append(trees, lgbTestTree{feature: []int{0}, threshold: []float64{0}, decision: []int{2},
			left: []int{-1}, right: []int{-2}, leaves: []float64{9, v}})
	}
	wantRaw := []float64{right[0] + right[3], right[1] + right[4], right[2] + right[5]}

	t.Run("softmax", func(t *testing.T) {
		m := lgbMustParse(t, lgbText(3, 1, "objective=multiclass num_class:3\n", trees...))
		if m.NumOutputs() != 3 {
			t.Fatalf("NumOutputs() = %d, want 3", m.NumOutputs())
		}
		out := make([]float64, 3)
		m.PredictRaw([]float64{1}, out)
		sum := 0.0
		for k := range out {
			if !lgbClose(out[k], wantRaw[k]) {
				t.Errorf("class %d: raw %v, want %v", k, out[k], wantRaw[k])
			}
			sum += math.Exp(wantRaw[k])
		}
		m.Predict([]float64{1}, out)
		for k := range out {
			if want := math.Exp(wantRaw[k]) / sum; !lgbClose(out[k], want) {
				t.Errorf("class %d: probability %v, want %v", k, out[k], want)
			}
		}
	})
	t.Run("one-vs-all", func(t *testing.T) {
		m := lgbMustParse(t, lgbText(3, 1, "objective=multiclassova num_class:3 sigmoid:1.5\n", trees...))
		out := make([]float64, 3)
		m.Predict([]float64{1}, out)
		for k := range out {
			if want := 1 / (1 + math.Exp(-1.5*wantRaw[k])); !lgbClose(out[k], want) {
				t.Errorf("class %d: probability %v, want %v", k, out[k], want)
			}
		}
	})
}

func TestLightGBMRandomForest(t *testing.T) {
	// Three iterations; average_output divides the sum by 3 before the link.
	var trees []lgbTestTree
	for _, v := range []float64{0.2, 0.5, 1.1} {
		trees = append(trees, lgbTestTree{feature: []int{0}, threshold: []float64{0}, decision: []int{2},
			left: []int{-1}, right: []int{-2}, leaves: []float64{v, -v}})
	}
	m := lgbMustParse(t, lgbText(1, 1, "objective=binary sigmoid:1\naverage_output\n", trees...))
	out := []float64{0}
	m.PredictRaw([]float64{-1}, out)
	if want := (0.2 + 0.5 + 1.1) / 3; !lgbClose(out[0], want) {
		t.Errorf("raw = %v, want the mean %v", out[0], want)
	}
	m.Predict([]float64{1}, out)
	if want := 1 / (1 + math.Exp((0.2+0.5+1.1)/3)); !lgbClose(out[0], want) {
		t.Errorf("probability = %v, want %v", out[0], want)
	}
}

func TestLightGBMFeatureNames(t *testing.T) {
	text := lgbText(1, 3, "objective=regression\n", lgbStump(0, 2))
	text = strings.Replace(text, "feature_names=x0 x1 x2", "feature_names=age  income\tregion", 1)
	m := lgbMustParse(t, text)
	if got := strings.Join(m.Features(), ","); got != "age,income,region" {
		t.Errorf("Features() = %q", got)
	}
	if m.Info().Features != 3 {
		t.Errorf("Info().Features = %d", m.Info().Features)
	}
	// Windows line endings are read the same.
	m = lgbMustParse(t, strings.ReplaceAll(text, "\n", "\r\n"))
	if got := lgbRaw1(m, 1, 0, 0); got != 2 {
		t.Errorf("CRLF model: got %v, want 2", got)
	}
}

func TestLightGBMMalformed(t *testing.T) {
	good := lgbText(1, 2, "objective=binary sigmoid:1\n", lgbStump(0, 2), lgbTestTree{
		feature: []int{0, 1, 0}, threshold: []float64{0, 5, 10}, decision: []int{2, 2, 2},
		left: []int{-1, 2, -2}, right: []int{1, -4, -3}, leaves: []float64{10, 20, 30, 40},
	}, lgbTestTree{feature: []int{1}, threshold: []float64{0}, decision: []int{lgbCategorical},
		left: []int{-1}, right: []int{-2}, leaves: []float64{1, 2}, catBounds: []int{0, 1}, catWords: []uint32{6}})
	if _, err := Parse("m.txt", []byte(good)); err != nil {
		t.Fatalf("the unmodified model does not load: %v", err)
	}
	for _, tc := range []struct {
		name     string
		old, new string // replace the last occurrence of old by new
		want     string // in the error
	}{
		{"bad first line", "tree\nversion", "trees\nversion", `first line is "trees"`},
		{"missing num_class", "num_class=1\n", "", `header: missing field "num_class"`},
		{"num_class zero", "num_class=1\nnum_tree_per_iteration=1", "num_class=0\nnum_tree_per_iteration=0", "want equal and at least 1"},
		{"num_tree_per_iteration differs", "num_tree_per_iteration=1", "num_tree_per_iteration=2", "num_tree_per_iteration 2"},
		{"feature_names count", "feature_names=x0 x1", "feature_names=x0", `field "feature_names" has 1 names, want max_feature_idx+1 = 2`},
		{"huge max_feature_idx", "max_feature_idx=1", "max_feature_idx=2147483647", `want max_feature_idx+1 = 2147483648`},
		{"missing feature_names", "feature_names=x0 x1\n", "", `missing field "feature_names"`},
		{"unknown objective", "objective=binary sigmoid:1", "objective=ranking", `objective "ranking" is not supported`},
		{"sqrt regression", "objective=binary sigmoid:1", "objective=regression sqrt", "sqrt transform is not supported"},
		{"cross_entropy_lambda", "objective=binary sigmoid:1", "objective=cross_entropy_lambda", "not supported"},
		{"bad sigmoid", "sigmoid:1", "sigmoid:-1", `sigmoid parameter "-1" must be a positive number`},
		{"multiclass mismatch", "objective=binary sigmoid:1", "objective=multiclass num_class:3", `num_class "3" does not match`},
		{"linear tree", "is_linear=0", "is_linear=1", "tree 2: linear trees"},
		{"tree numbering", "Tree=1", "Tree=7", `tree 1: got line "Tree=7", want "Tree=1"`},
		{"missing end marker", "end of trees\n\nfeature_importances:\nx0=1\n\nparameters:\n[boosting: gbdt]\nend of parameters\n\npandas_categorical:null\n", "", `truncated after 3 trees: no "end of trees" line`},
		{"tree_sizes count", "tree_sizes=100 100 100", "tree_sizes=100 100 100 100", `field "tree_sizes" lists 4 trees, file has 3`},
		{"missing threshold", "threshold=0 5 10\n", "", `tree 1: missing field "threshold"`},
		{"short threshold", "threshold=0 5 10", "threshold=0 5", `tree 1: field "threshold": got 2 values, want 3`},
		{"bad threshold", "threshold=0 5 10", "threshold=0 five 10", `tree 1: field "threshold": value 1: "five" is not a number`},
		{"bad left_child", "left_child=-1 2 -2", "left_child=-1 2 x", `tree 1: field "left_child": value 2: "x" is not a 32-bit integer`},
		{"num_leaves zero", "num_leaves=4", "num_leaves=0", `tree 1: field "num_leaves": 0, want at least 1`},
		{"num_leaves huge", "num_leaves=4", "num_leaves=1000000000", `tree 1: field "leaf_value": got 4 values, want 1000000000`},
		{"missing leaf_value", "leaf_value=10 20 30 40\n", "", `tree 1: missing field "leaf_value"`},
		{"feature out of range", "split_feature=0 1 0", "split_feature=0 2 0", `tree 1: node 1: field "split_feature": feature 2 out of range [0,2)`},
		{"internal child out of range", "right_child=1 -4 -3", "right_child=3 -4 -3", `tree 1: node 0: field "right_child": child 3 out of range`},
		{"leaf child out of range", "right_child=1 -4 -3", "right_child=1 -5 -3", `tree 1: node 1: field "right_child": child -5 out of range`},
		{"cycle", "left_child=-1 2 -2", "left_child=-1 2 1", "tree 1: node 1 is reached twice"},
		{"self loop", "left_child=-1 2 -2", "left_child=0 2 -2", "tree 1: node 0 is reached twice"},
		{"shared leaf", "left_child=-1 2 -2", "left_child=-1 2 -3", "tree 1: leaf 2 is reached twice"},
		{"unreachable node", "right_child=1 -4 -3", "right_child=-2 -4 -3", "tree 1: node 1 is unreachable from the root"},
		{"bad decision_type", "decision_type=2 2 2", "decision_type=2 14 2", `tree 1: node 1: field "decision_type": unknown value 14`},
		{"categorical index", "decision_type=2 2 2", "decision_type=2 3 2", `tree 1: node 1: field "threshold": categorical split 5 is not an index in [0,0)`},
		{"duplicate field", "shrinkage=0.1\n\n\nend", "shrinkage=0.1\nshrinkage=1\n\n\nend", `tree 2: field "shrinkage" appears twice`},
		{"not key=value", "shrinkage=0.1\n\n\nend", "shrinkage=0.1\ngarbage\n\n\nend", `tree 2: line "garbage" is not key=value`},
		{"stray line", "end of trees", "bogus\nend of trees", `tree 3: got line "bogus", want "Tree=3"`},
		{"cat_boundaries decreasing", "cat_boundaries=0 1", "cat_boundaries=1 0", `tree 2: field "cat_boundaries": value 1 (0) is negative or decreasing`},
		{"bad cat word", "cat_threshold=6", "cat_threshold=-6", `tree 2: field "cat_threshold": value 0: "-6" is not a 32-bit unsigned integer`},
		{"cat_threshold count", "cat_threshold=6", "cat_threshold=6 7", `tree 2: field "cat_threshold": got 2 values, want 1`},
		{"missing cat_threshold", "cat_threshold=6\n", "", `tree 2: missing field "cat_threshold"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := strings.LastIndex(good, tc.old)
			if i < 0 {
				t.Fatalf("%q is not in the model", tc.old)
			}
			text := good[:i] + tc.new + good[i+len(tc.old):]
			m, err := Parse("m.txt", []byte(text))
			if err == nil {
				t.Fatalf("no error; model %+v", m.Info())
			}
			if !strings.HasPrefix(err.Error(), `cannot load model "m.txt": `) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to name the file and contain %q", err, tc.want)
			}
		})
	}

	for _, tc := range []struct{ text, want string }{
		{lgbText(1, 1, "objective=regression\n"), "model has no trees"},
		{lgbText(2, 1, "objective=multiclass num_class:2\n", lgbStump(0, 2), lgbStump(0, 2), lgbStump(0, 2)),
			"3 trees is not a whole number of iterations of 2 trees"},
	} {
		if _, err := Parse("m.txt", []byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}

	// Cut the file anywhere before the end-of-trees marker: always an error
	// naming the file, never a panic.
	end := strings.Index(good, "end of trees")
	for n := 0; n < end+len("end of tree"); n++ {
		if _, err := Parse("m.txt", []byte(good[:n])); err == nil {
			t.Fatalf("prefix of %d bytes loads:\n%s", n, good[:n])
		} else if !strings.HasPrefix(err.Error(), `cannot load model "m.txt"`) {
			t.Fatalf("prefix of %d bytes: error %q does not name the file", n, err)
		}
	}
}

func TestLightGBMPredictDoesNotAllocate(t *testing.T) {
	m := lgbLoadFixture(t, "genlin_fmtp_poisson_Frequency.model")
	rows := lgbReadTable(t, filepath.Join("testdata", "lightgbm", "genlin_fmtp_poisson_Frequency_features.tsv"))
	out := make([]float64, 1)
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		m.Predict(rows[i%len(rows)], out)
		m.PredictRaw(rows[i%len(rows)], out)
		i++
	})
	if allocs > 0 {
		t.Errorf("Predict+PredictRaw allocate %v times per row, want 0", allocs)
	}
}

// FuzzParseLightGBM feeds arbitrary bytes to the loader: it must return a
// model or an error naming the file, never panic; a model it returns must
// score rows of the declared width, with missing and odd values.
func FuzzParseLightGBM(f *testing.F) {
	f.Add([]byte(lgbText(1, 2, "objective=binary sigmoid:1\n", lgbStump(0, 2), lgbTestTree{leaves: []float64{0.5}})))
	f.Add([]byte(lgbText(2, 1, "objective=multiclass num_class:2\naverage_output\n", lgbStump(1, 6), lgbStump(-1, 9))))
	f.Add([]byte(lgbText(1, 1, "objective=poisson\n", lgbTestTree{feature: []int{0}, threshold: []float64{0}, decision: []int{1},
		left: []int{-1}, right: []int{-2}, leaves: []float64{1, 2}, catBounds: []int{0, 2}, catWords: []uint32{5, 1}})))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || !strings.HasPrefix(strings.TrimLeft(string(data), " \t\r\n\ufeff"), "tree") {
			return // not routed to this loader by Parse
		}
		m, err := Parse("fuzz.txt", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), `cannot load model "fuzz.txt": `) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		nf, no := len(m.Features()), m.NumOutputs()
		if nf < 1 || no < 1 || m.Info().Trees < 1 {
			t.Fatalf("loaded a model with %d features, %d outputs, %d trees", nf, no, m.Info().Trees)
		}
		out := make([]float64, no)
		for _, v := range []float64{0, 1, -1, 1e-36, 3, 40, math.NaN(), math.Inf(1), -1e300} {
			row := make([]float64, nf)
			for j := range row {
				row[j] = v
			}
			m.PredictRaw(row, out)
			m.Predict(row, out)
		}
	})
}

// BenchmarkLightGBMPoisson scores the rows of the genlin Poisson fixture
// (100 trees of 32 leaves, 9 features) one at a time; ns/op is ns/row.
// "lightgbm-arrays" is the baseline in the same run: LightGBM's own node
// arrays walked as LightGBM's Tree::Predict does. On a shared machine the wall
// time per row mostly measures the wait for a core, so the benchmark also
// reports cpu-ns/row: the CPU time of its own thread per row, where Linux
// exposes it.
func BenchmarkLightGBMPoisson(b *testing.B) {
	const name = "genlin_fmtp_poisson_Frequency.model"
	data, err := os.ReadFile(filepath.Join("testdata", "lightgbm", name))
	if err != nil {
		b.Fatal(err)
	}
	m, err := Parse(name, data)
	if err != nil {
		b.Fatal(err)
	}
	lm, err := parseLightGBMText(string(data))
	if err != nil {
		b.Fatal(err)
	}
	rows := lgbReadTable(b, filepath.Join("testdata", "lightgbm", "genlin_fmtp_poisson_Frequency_features.tsv"))
	out := make([]float64, 1)
	b.Run("ensemble", func(b *testing.B) {
		b.ReportAllocs()
		cpu := lgbStartCPU()
		for i := 0; b.Loop(); i++ {
			m.Predict(rows[i%len(rows)], out)
		}
		cpu.report(b)
	})
	b.Run("lightgbm-arrays", func(b *testing.B) {
		b.ReportAllocs()
		cpu := lgbStartCPU()
		for i := 0; b.Loop(); i++ {
			lm.predictRaw(rows[i%len(rows)], out)
			out[0] = math.Exp(out[0])
		}
		cpu.report(b)
	})
}

// lgbCPU measures the CPU time of the benchmark's thread, read from
// /proc/thread-self/schedstat (nanoseconds on a CPU); ok is false where that
// file does not exist.
type lgbCPU struct {
	start int64
	ok    bool
}

func lgbThreadCPU() (int64, bool) {
	data, err := os.ReadFile("/proc/thread-self/schedstat")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, false
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	return ns, err == nil
}

func lgbStartCPU() lgbCPU {
	runtime.LockOSThread() // the loop stays on the thread being measured
	ns, ok := lgbThreadCPU()
	return lgbCPU{ns, ok}
}

func (c lgbCPU) report(b *testing.B) {
	ns, ok := lgbThreadCPU()
	runtime.UnlockOSThread()
	if c.ok && ok && b.N > 0 {
		b.ReportMetric(float64(ns-c.start)/float64(b.N), "cpu-ns/row")
	}
}

func BenchmarkLightGBMLoad(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "lightgbm", "lg_kddcup99.model"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("kdd", data); err != nil {
			b.Fatal(err)
		}
	}
}
