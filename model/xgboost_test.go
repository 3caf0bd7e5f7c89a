package model

import (
	"bufio"
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
					if !close(out[k], want[k]) && bad < 10 {
						bad++
						t.Errorf("row %d: margin[%d] = %.9g, XGBoost %.9g", i+1, k, out[k], want[k])
					}
				}
				m.Predict(row, out)
				for k := range preds[i] {
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
