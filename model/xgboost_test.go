package model

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readTSV reads tab-separated numbers ("nan" is NaN), one row per line.
func readTSV(t testing.TB, path string) [][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var row []float64
		for _, s := range strings.Split(sc.Text(), "\t") {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// close reports whether got agrees with XGBoost's want: within 1e-6
// relative, or 1e-7 absolute near zero.
func close(got, want float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) == math.IsNaN(want)
	}
	d := math.Abs(got - want)
	return d <= 1e-7 || d <= 1e-6*math.Abs(want)
}

// xgbFixtures lists the models of testdata/xgboost (see gen.py) and the
// expected outputs each is compared with.
var xgbFixtures = []struct {
	model, expect string
	trees         int
}{
	{"binary_logistic", "binary_logistic", 20},
	{"binary_logistic_bracketed", "binary_logistic", 20},
	{"binary_logitraw", "binary_logitraw", 15},
	{"reg_logistic", "reg_logistic", 15},
	{"reg_squarederror", "reg_squarederror", 25},
	{"reg_linear", "reg_squarederror", 25},
	{"count_poisson", "count_poisson", 20},
	{"reg_tweedie", "reg_tweedie", 20},
	{"multi_softprob", "multi_softprob", 30},
	{"multi_softmax", "multi_softmax", 30},
	{"rank_pairwise", "rank_pairwise", 15},
	{"gblinear", "gblinear", 0},
	{"gblinear_logistic", "gblinear_logistic", 0},
	{"gblinear_softprob", "gblinear_softprob", 0},
	{"dart", "dart", 30},
	{"large_depth8", "large_depth8", 200},
}

func TestXGBoostParity(t *testing.T) {
	dir := filepath.Join("testdata", "xgboost")
	rows := readTSV(t, filepath.Join(dir, "rows.tsv"))
	for _, fx := range xgbFixtures {
		t.Run(fx.model, func(t *testing.T) {
			m, err := Load(filepath.Join(dir, fx.model+".json"))
			if err != nil {
				t.Fatal(err)
			}
			info := m.Info()
			if info.Format != "xgboost-json" || info.Trees != fx.trees || info.Features != 7 || len(info.Version) != 16 {
				t.Errorf("Info() = %+v", info)
			}
			margins := readTSV(t, filepath.Join(dir, fx.expect+".margin.tsv"))
			preds := readTSV(t, filepath.Join(dir, fx.expect+".pred.tsv"))
			if len(margins) != len(rows) || len(preds) != len(rows) {
				t.Fatalf("fixtures have %d rows, %d margins, %d predictions", len(rows), len(margins), len(preds))
			}
			no := m.NumOutputs()
			if no != len(preds[0]) {
				t.Fatalf("NumOutputs() = %d, XGBoost predicts %d values", no, len(preds[0]))
			}
			out := make([]float64, no)
			bad := 0
			for i, row := range rows {
				m.PredictRaw(row, out)
				want := margins[i]
				if fx.expect == "multi_softmax" {
					// One output: PredictRaw writes the largest margin.
					want = []float64{maxOf(want)}
				}
				for k := range want {
					// XGBoost's margins are float32 sums, written with
					// nine digits: they must be reproduced exactly.
					if float32(out[k]) != float32(want[k]) && bad < 10 {
						bad++
						t.Errorf("row %d: margin[%d] = %.9g, XGBoost %.9g", i+1, k, out[k], want[k])
					}
				}
				m.Predict(row, out)
				for k := range preds[i] {
					// Within 1e-6: the link's expf may differ from ours by
					// one float32 step (it does on one row of count_poisson).
					if !close(out[k], preds[i][k]) && bad < 10 {
						bad++
						t.Errorf("row %d: prediction[%d] = %.9g, XGBoost %.9g", i+1, k, out[k], preds[i][k])
					}
				}
			}
			checkBatchMatchesRows(t, m, rows)
		})
	}
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v[1:] {
		m = max(m, x)
	}
	return m
}

// checkBatchMatchesRows checks that PredictRows and PredictBatch give exactly
// the results of Predict and PredictRaw row by row.
func checkBatchMatchesRows(t *testing.T, m Model, rows [][]float64) {
	t.Helper()
	nf, no := len(m.Features()), m.NumOutputs()
	flat := make([]float64, 0, len(rows)*nf)
	for _, r := range rows {
		flat = append(flat, r...)
	}
	for _, raw := range []bool{false, true} {
		got := make([]float64, len(rows)*no)
		PredictRows(m, flat, len(rows), got, raw)
		got2 := make([]float64, len(rows)*no)
		PredictBatch(m, flat, len(rows), got2, raw)
		one := make([]float64, no)
		for i, r := range rows {
			if raw {
				m.PredictRaw(r, one)
			} else {
				m.Predict(r, one)
			}
			for k := range one {
				if got[i*no+k] != one[k] || got2[i*no+k] != one[k] {
					t.Fatalf("raw=%v row %d output %d: PredictRows %v, PredictBatch %v, Predict %v",
						raw, i+1, k, got[i*no+k], got2[i*no+k], one[k])
				}
			}
		}
	}
}

// handwritten_v2.json is written by hand in the style of XGBoost >= 2:
// base_score "[5E-1]", default_left as booleans, size_leaf_vector "1", a
// categorical split whose split_condition is NaN. Tree 0 sends x < 1.5 (and
// missing x) left to 0.25, else -0.5; tree 1 sends colors 1 and 3 right to
// -0.25, everything else (missing included) left to 0.125.
func TestXGBoostHandwritten(t *testing.T) {
	m, err := Load(filepath.Join("testdata", "xgboost", "handwritten_v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Features(), ","); got != "x,color" {
		t.Errorf("Features() = %s", got)
	}
	if info := m.Info(); info.Objective != "binary:logistic" || info.Trees != 2 || info.Outputs != 1 {
		t.Errorf("Info() = %+v", info)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "xgboost", "handwritten_v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); m.Info().Version != hex.EncodeToString(sum[:8]) {
		t.Errorf("Version %s is not the SHA-256 prefix of the file", m.Info().Version)
	}
	nan := math.NaN()
	for _, c := range []struct {
		x, color, margin float64
	}{
		{0, 0, 0.375},
		{2, 1, -0.75},
		{nan, 3, 0},
		{1.5, nan, -0.75},
		{1, 7, 0.375},  // beyond the listed categories
		{1, 40, 0.375}, // beyond the bitset
		{1, -1, 0.375}, // negative: not a category
	} {
		out := []float64{0}
		m.PredictRaw([]float64{c.x, c.color}, out)
		if out[0] != c.margin {
			t.Errorf("x=%v color=%v: margin %v, want %v", c.x, c.color, out[0], c.margin)
		}
		m.Predict([]float64{c.x, c.color}, out)
		// 1.0f / (1.0f + expf(-x)), as XGBoost computes it.
		if want := float64(float32(1) / (1 + float32(math.Exp(-c.margin)))); out[0] != want {
			t.Errorf("x=%v color=%v: prediction %v, want %v", c.x, c.color, out[0], want)
		}
	}
}

func TestXGBoostErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "xgboost", "handwritten_v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, old, new, want string }{
		{"objective", `"binary:logistic"`, `"binary:hinge"`, `learner: objective "binary:hinge" is not supported`},
		{"booster", `"name":"gbtree"`, `"name":"gbforest"`, `gradient_booster: booster "gbforest" is not supported`},
		{"child", `"right_children":[2,-1,-1],"split_conditions":[NaN`, `"right_children":[9,-1,-1],"split_conditions":[NaN`, `tree 1: node 0: children 1,9 out of range [0,3)`},
		{"feature", `"split_indices":[0,0,0]`, `"split_indices":[5,0,0]`, `tree 0: node 0: split_indices: feature 5 out of range [0,2)`},
		{"missing array", `"split_conditions":[1.5E0,2.5E-1,-5E-1],`, ``, `tree 0: field "split_conditions": 0 entries for 3 nodes`},
		{"short array", `"default_left":[true,false,false]`, `"default_left":[true,false]`, `tree 0: field "default_left": 2 entries for 3 nodes`},
		{"vector leaf", `"num_nodes":"3","size_leaf_vector":"1"}},
  {`, `"num_nodes":"3","size_leaf_vector":"3"}},
  {`, `tree 0: tree_param: size_leaf_vector 3: multi-target trees are not supported`},
		{"base_score", `"[5E-1]"`, `"[5E-1"`, `base_score "[5E-1": missing ]`},
		{"base_score range", `"[5E-1]"`, `"1"`, `must be in (0,1) for a logistic objective`},
		{"category", `"categories":[1,3]`, `"categories":[1,-3]`, `tree 1: node 0: category -3 out of range`},
		{"category segment", `"categories_sizes":[2]`, `"categories_sizes":[3]`, `tree 1: node 0: categories segment [0,+3) out of range [0,2)`},
		{"categorical without categories", `"categories_nodes":[0],"categories_segments":[0],"categories_sizes":[2]`, `"categories_nodes":[],"categories_segments":[],"categories_sizes":[]`, `tree 1: node 0: categorical split without categories`},
		{"tree_info", `"tree_info":[0,0]`, `"tree_info":[0,1]`, `tree 1: tree_info 1 out of range [0,1)`},
		{"tree_info length", `"tree_info":[0,0]`, `"tree_info":[0]`, `2 trees but 1 tree_info entries`},
		{"feature names", `"feature_names":["x","color"]`, `"feature_names":["x","x"]`, `name "x" already used`},
		{"num_feature", `"num_feature":"2","num_target"`, `"num_feature":"3","num_target"`, `2 feature_names for num_feature 3`},
		{"default_left", `"default_left":[true,false,false]`, `"default_left":[2,false,false]`, `want 0, 1, true or false`},
		{"number", `2.5E-1,-5E-1]`, `2.5E-1,-5E-1x]`, `invalid JSON`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(string(good), tc.old, tc.new, 1)
			if doc == string(good) {
				t.Fatalf("%q not found in the model", tc.old)
			}
			_, err := Parse("m.json", []byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `cannot load model "m.json": `) {
				t.Fatalf("Parse: %v\nwant an error naming the file and containing %q", err, tc.want)
			}
		})
	}
}

// Every truncation of a model file is an error naming the file, never a
// panic or a smaller model.
func TestXGBoostTruncated(t *testing.T) {
	for _, name := range []string{"handwritten_v2.json", "gblinear_softprob.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "xgboost", name))
		if err != nil {
			t.Fatal(err)
		}
		end := len(bytes.TrimRight(data, "\n"))
		for i := 0; i < end; i++ {
			_, err := Parse(name, data[:i])
			if err == nil || !strings.HasPrefix(err.Error(), "cannot load model \""+name+"\": ") {
				t.Fatalf("%s cut at byte %d: %v", name, i, err)
			}
		}
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want modelFormat
	}{
		{"", formatEmpty},
		{" \n\t", formatEmpty},
		{"tree\nversion=v3\n", formatLightGBM},
		{"\ufefftree\n", formatLightGBM},
		{`{"learner":{}}`, formatXGBoost},
		{` {"format":"nba-linear"}`, formatLinear},
		{`{"format":"other"}`, formatLinear},
		{`{"version":[1,7,4],"learner":{"feature_names":["nba-linear"]}}`, formatXGBoost},
		{`{"learner":{"objective":`, formatXGBoost},
		{`{"format":"nba-linear","features":[`, formatLinear},
		{"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{", formatUBJSON},
		{`{"something":1}`, formatUnknown},
		{`[1,2]`, formatUnknown},
		{"binf", formatUnknown},
	} {
		if got := detect([]byte(tc.in)); got != tc.want {
			t.Errorf("detect(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestQuoteNonFinite(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(quoteNonFinite([]byte(in))); got != want {
			t.Errorf("quoteNonFinite(%s) = %s, want %s", in, got, want)
		}
	}
	f(`[1,NaN,-Infinity,Infinity]`, `[1,"NaN","-Infinity","Infinity"]`)
	f(`{"a":"NaN is a word","b":[NaN]}`, `{"a":"NaN is a word","b":["NaN"]}`)
	f(`{"a\"NaN":1}`, `{"a\"NaN":1}`)
	f(`[NaNx,null,nan]`, `[NaNx,null,"nan"]`)
	f(`[1,2]`, `[1,2]`)
}

// Predict and PredictRaw never allocate; nor does PredictRows once its
// scratch buffer is pooled.
func TestPredictAllocs(t *testing.T) {
	rows := readTSV(t, filepath.Join("testdata", "xgboost", "rows.tsv"))
	models := map[string]Model{}
	for _, name := range []string{"binary_logistic", "multi_softprob", "multi_softmax", "dart", "large_depth8", "gblinear", "gblinear_softprob"} {
		m, err := Load(filepath.Join("testdata", "xgboost", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		models[name] = m
	}
	lin, err := Parse("linear.json", []byte(linearDoc))
	if err != nil {
		t.Fatal(err)
	}
	models["linear"] = lin
	for name, m := range models {
		nf, no := len(m.Features()), m.NumOutputs()
		out := make([]float64, no)
		in := rows[7]
		if nf != len(in) {
			in = make([]float64, nf)
		}
		if a := testing.AllocsPerRun(100, func() { m.Predict(in, out) }); a != 0 {
			t.Errorf("%s: Predict allocates %v times", name, a)
		}
		if a := testing.AllocsPerRun(100, func() { m.PredictRaw(in, out) }); a != 0 {
			t.Errorf("%s: PredictRaw allocates %v times", name, a)
		}
		flat := make([]float64, 0, 100*nf)
		for i := 0; i < 100; i++ {
			flat = append(flat, in...)
		}
		bout := make([]float64, 100*no)
		if a := testing.AllocsPerRun(20, func() { PredictRows(m, flat, 100, bout, false) }); a != 0 {
			t.Errorf("%s: PredictRows allocates %v times", name, a)
		}
	}
}
