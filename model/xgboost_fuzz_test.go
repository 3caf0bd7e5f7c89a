package model

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// fuzzRows are the inputs a fuzzed model is scored on.
func fuzzRows(nf int) [][]float64 {
	vals := [][]float64{{math.NaN()}, {0}, {1}, {-1.5, 3, math.Inf(1), 40, math.NaN(), 0.25, math.Inf(-1)}}
	rows := make([][]float64, len(vals))
	for i, v := range vals {
		rows[i] = make([]float64, nf)
		for j := range rows[i] {
			rows[i][j] = v[j%len(v)]
		}
	}
	return rows
}

// checkFuzzedModel scores a model that loaded: Predict and PredictRaw must
// not panic, and PredictRows must agree with them row by row.
func checkFuzzedModel(t *testing.T, m Model) {
	nf, no := len(m.Features()), m.NumOutputs()
	if info := m.Info(); info.Features != nf || info.Outputs != no || no < 1 {
		t.Fatalf("Info() = %+v with %d features and %d outputs", info, nf, no)
	}
	if nf > 10000 || no > 1000 {
		return // legal but too slow to score here
	}
	rows := fuzzRows(nf)
	flat := make([]float64, 0, len(rows)*nf)
	for _, r := range rows {
		flat = append(flat, r...)
	}
	for _, raw := range []bool{false, true} {
		batch := make([]float64, len(rows)*no)
		PredictRows(m, flat, len(rows), batch, raw)
		out := make([]float64, no)
		for i, r := range rows {
			if raw {
				m.PredictRaw(r, out)
			} else {
				m.Predict(r, out)
			}
			for k := range out {
				if !sameFloat(out[k], batch[i*no+k]) {
					t.Fatalf("raw=%v row %v output %d: Predict %v, PredictRows %v", raw, r, k, out[k], batch[i*no+k])
				}
			}
		}
	}
}

func FuzzParseXGBoost(f *testing.F) {
	for _, name := range []string{"handwritten_v2.json", "gblinear.json", "gblinear_softprob.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "xgboost", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"learner":{"gradient_booster":{"name":"dart","gbtree":{"model":{"trees":[],"tree_info":[]}},"weight_drop":[]},"objective":{"name":"multi:softmax"},"learner_model_param":{"num_class":"2","num_feature":"1","base_score":"[1,2]"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseXGBoost("fuzz.json", data)
		if err != nil {
			return
		}
		checkFuzzedModel(t, m)
	})
}
