package model

import (
	"path/filepath"
	"testing"
)

// benchRows returns the fixture rows flattened, repeated to at least n rows.
func benchRowsFlat(b *testing.B, n int) ([]float64, int) {
	rows := readTSV(b, filepath.Join("testdata", "xgboost", "rows.tsv"))
	var flat []float64
	k := 0
	for k < n {
		for _, r := range rows {
			flat = append(flat, r...)
			k++
		}
	}
	return flat, k
}

func BenchmarkXGBoostPredict(b *testing.B) {
	for _, name := range []string{"binary_logistic", "multi_softprob", "dart", "large_depth8", "gblinear"} {
		m, err := Load(filepath.Join("testdata", "xgboost", name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		flat, n := benchRowsFlat(b, 1024)
		nf, no := len(m.Features()), m.NumOutputs()
		trees := max(m.Info().Trees, 1)
		b.Run(name+"/row", func(b *testing.B) {
			out := make([]float64, no)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Predict(flat[i*nf:(i+1)*nf], out)
				i++
				if i == n {
					i = 0
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns, "ns/row")
			b.ReportMetric(ns/float64(trees), "ns/tree")
		})
		b.Run(name+"/rows", func(b *testing.B) {
			out := make([]float64, n*no)
			b.ReportAllocs()
			for b.Loop() {
				PredictRows(m, flat, n, out, false)
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*n)
			b.ReportMetric(ns, "ns/row")
			b.ReportMetric(ns/float64(trees), "ns/tree")
		})
	}
}
