package model

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// naiveLeaf walks a tree of the loader's TreeNode structs, as the first
// version of this package did: the baseline the flattened layout is measured
// against. XGBoost semantics only (numeric and categorical, NaN missing).
func naiveLeaf(t *Tree, row []float64) float64 {
	i := 0
	for {
		n := &t.Nodes[i]
		if n.Leaf {
			return n.Value
		}
		x := row[n.Feature]
		var left bool
		switch {
		case math.IsNaN(x):
			left = n.DefaultLeft
		case n.CatBits != nil:
			member := false
			if x >= 0 && x == math.Trunc(x) && x < float64(32*len(n.CatBits)) {
				c := int(x)
				member = n.CatBits[c/32]&(1<<(c%32)) != 0
			}
			left = member == n.CatSetLeft
		default:
			left = float32(x) < float32(n.Threshold)
		}
		if left {
			i = n.Left
		} else {
			i = n.Right
		}
	}
}

// benchFlat returns rows flattened, repeated to at least n rows.
func benchFlat(rows [][]float64, n int) ([]float64, int) {
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

// BenchmarkXGBoost scores the XGBoost fixtures, and with
// NBA_XGBCOMPARE_DIR set the models of bench/xgbcompare (d8x300, d6x150),
// three ways: naive (TreeNode structs, one row at a time, the baseline),
// Predict (one row at a time) and PredictRows (blocks of rows).
func BenchmarkXGBoost(b *testing.B) {
	type fixture struct{ name, model, rows string }
	dir := filepath.Join("testdata", "xgboost")
	var fixtures []fixture
	for _, name := range []string{"binary_logistic", "multi_softprob", "dart", "large_depth8"} {
		fixtures = append(fixtures, fixture{name, filepath.Join(dir, name+".json"), filepath.Join(dir, "rows.tsv")})
	}
	if d := os.Getenv("NBA_XGBCOMPARE_DIR"); d != "" {
		for _, name := range []string{"d8x300", "d6x150"} {
			fixtures = append(fixtures, fixture{name, filepath.Join(d, name+".json"), filepath.Join(d, "rows.tsv")})
		}
	}
	for _, fx := range fixtures {
		data, err := os.ReadFile(fx.model)
		if err != nil {
			b.Fatal(err)
		}
		spec, _, err := xgbSpec(data)
		if err != nil {
			b.Fatal(err)
		}
		m, err := CompileEnsemble(spec)
		if err != nil {
			b.Fatal(err)
		}
		rows := readTSV(b, fx.rows)
		if len(rows) > 4096 {
			rows = rows[:4096]
		}
		flat, n := benchFlat(rows, 1024)
		nf, no := len(m.Features()), m.NumOutputs()
		trees := float64(len(spec.Trees))
		report := func(b *testing.B, rowsPerOp int) {
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N*rowsPerOp)
			b.ReportMetric(ns, "ns/row")
			b.ReportMetric(ns/trees, "ns/tree")
		}
		b.Run(fx.name+"/naive", func(b *testing.B) {
			b.ReportAllocs()
			out := make([]float64, spec.NumGroups)
			i := 0
			for b.Loop() {
				row := flat[i*nf : (i+1)*nf]
				for k := range out {
					out[k] = spec.BaseMargin[k]
				}
				for t := range spec.Trees {
					tr := &spec.Trees[t]
					out[tr.Group] = float64(float32(out[tr.Group]) + float32(naiveLeaf(tr, row)))
				}
				if i++; i == n {
					i = 0
				}
			}
			report(b, 1)
		})
		b.Run(fx.name+"/Predict", func(b *testing.B) {
			b.ReportAllocs()
			out := make([]float64, no)
			i := 0
			for b.Loop() {
				m.Predict(flat[i*nf:(i+1)*nf], out)
				if i++; i == n {
					i = 0
				}
			}
			report(b, 1)
		})
		b.Run(fx.name+"/PredictRows", func(b *testing.B) {
			b.ReportAllocs()
			out := make([]float64, n*no)
			for b.Loop() {
				PredictRows(m, flat, n, out, false)
			}
			report(b, n)
		})
	}
}

// BenchmarkEnsembleLayouts scores fixture rows one row at a time with
// Predict, which walks the binned layout (binTrees), against the same-run
// baseline "lanes": Predict with the binned layout switched off, i.e. the
// eight-lane fixed-step walk of marginsLanes that Predict used before (and
// still uses beyond the bins' limits). "rows" is PredictRows over 1 024+
// rows. cpu-ns/row is the CPU time of the benchmark's thread (see
// BenchmarkLightGBMPoisson), which the load of a shared machine disturbs
// far less than the wall time.
func BenchmarkEnsembleLayouts(b *testing.B) {
	type fixture struct {
		name, model, rows string
		lgb               bool // rows in lgbReadTable's format
	}
	fixtures := []fixture{
		{"lightgbm_poisson", "testdata/lightgbm/genlin_fmtp_poisson_Frequency.model", "testdata/lightgbm/genlin_fmtp_poisson_Frequency_features.tsv", true},
		{"xgboost_large_depth8", "testdata/xgboost/large_depth8.json", "testdata/xgboost/rows.tsv", false},
		{"xgboost_binary_logistic", "testdata/xgboost/binary_logistic.json", "testdata/xgboost/rows.tsv", false},
	}
	if d := os.Getenv("NBA_XGBCOMPARE_DIR"); d != "" {
		for _, name := range []string{"d8x300", "d6x150"} {
			fixtures = append(fixtures, fixture{name, filepath.Join(d, name+".json"), filepath.Join(d, "rows.tsv"), false})
		}
	}
	for _, fx := range fixtures {
		m, err := Load(fx.model)
		if err != nil {
			b.Fatal(err)
		}
		e := m.(*Ensemble)
		var rows [][]float64
		if fx.lgb {
			rows = lgbReadTable(b, fx.rows)
		} else {
			rows = readTSV(b, fx.rows)
		}
		if len(rows) > 4096 {
			rows = rows[:4096]
		}
		flat, n := benchFlat(rows, 1024)
		nf, no := len(e.Features()), e.NumOutputs()
		one := func(bins *binTrees, masks *maskTable) func(b *testing.B) {
			return func(b *testing.B) {
				savedBins, savedMasks := e.bins, e.masks
				e.bins, e.masks = bins, masks
				defer func() { e.bins, e.masks = savedBins, savedMasks }()
				b.ReportAllocs()
				out := make([]float64, no)
				cpu := lgbStartCPU()
				for i := 0; b.Loop(); i = (i + 1) % n {
					e.Predict(flat[i*nf:(i+1)*nf], out)
				}
				cpu.report(b)
			}
		}
		b.Run(fx.name+"/lanes", one(nil, nil))
		if bins := e.compileBins(); bins != nil {
			b.Run(fx.name+"/bins", one(bins, nil))
		}
		if masks := e.compileMasks(); masks != nil {
			b.Run(fx.name+"/masks", one(nil, masks))
		}
		b.Run(fx.name+"/rows", func(b *testing.B) {
			b.ReportAllocs()
			out := make([]float64, n*no)
			cpu := lgbStartCPU()
			for b.Loop() {
				PredictRows(e, flat, n, out, false)
			}
			if ns, ok := lgbThreadCPU(); ok && cpu.ok {
				b.ReportMetric(float64(ns-cpu.start)/float64(b.N*n), "cpu-ns/row")
			}
			runtime.UnlockOSThread()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}
