package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"sync"
)

// Model is a loaded, immutable scoring model. It is safe for concurrent use,
// and Predict and PredictRaw never allocate.
type Model interface {
	Info() Info
	// Features returns the input feature names in column order (from the file;
	// "f0", "f1", ... when the file names none).
	Features() []string
	// NumOutputs is 1, or the number of classes of a multiclass model.
	NumOutputs() int
	// PredictRaw writes the margin(s) of one row into out[:NumOutputs()].
	// NaN in row means missing.
	PredictRaw(row []float64, out []float64)
	// Predict writes the transformed prediction(s): probability, exp-link
	// mean, softmax, ...
	Predict(row []float64, out []float64)
}

// Info describes a model for status pages and logs.
type Info struct {
	Format    string `json:"format"`    // "xgboost-json", "lightgbm-text", "linear-json"
	Objective string `json:"objective"` // as named in the file, e.g. "binary:logistic", "poisson"
	Trees     int    `json:"trees"`
	Features  int    `json:"features"`
	Outputs   int    `json:"outputs"`
	Version   string `json:"version"` // hex prefix of the SHA-256 of the file's bytes
}

// Load reads a model file and detects its format from the content.
func Load(path string) (Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load model: %w", err)
	}
	return Parse(path, data)
}

// Parse detects the format of data from its content (see detect.go) and
// loads it; name is used in error messages.
func Parse(name string, data []byte) (Model, error) {
	switch detect(data) {
	case formatEmpty:
		return nil, fmt.Errorf("cannot load model %q: file is empty", name)
	case formatXGBoost:
		return parseXGBoost(name, data)
	case formatLinear:
		return parseLinear(name, data)
	case formatLightGBM:
		return parseLightGBM(name, data)
	case formatUBJSON:
		return nil, fmt.Errorf("cannot load model %q: binary (UBJSON or legacy) XGBoost models are not supported: save the model as .json", name)
	}
	return nil, fmt.Errorf("cannot load model %q: unknown format (want XGBoost JSON, LightGBM text or nba-linear JSON)", name)
}

// version returns the hex prefix of the SHA-256 of a model file's bytes.
func version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// PredictBatch scores n rows stored row-major in rows (n*len(m.Features())
// values) into out (n*m.NumOutputs() values), on all cores when n is large.
// The predictions are transformed unless raw is set.
func PredictBatch(m Model, rows []float64, n int, out []float64, raw bool) {
	nf, no := len(m.Features()), m.NumOutputs()
	workers := runtime.GOMAXPROCS(0)
	const minRowsPerWorker = 256
	if workers <= 1 || n < 2*minRowsPerWorker {
		PredictRows(m, rows, n, out, raw)
		return
	}
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			PredictRows(m, rows[lo*nf:hi*nf], hi-lo, out[lo*no:hi*no], raw)
		}()
	}
	wg.Wait()
}

// PredictRows is PredictBatch on the calling goroutine only. Tree ensembles
// walk each tree for several rows at once, which is faster per row than
// calling Predict row by row. It does not allocate.
func PredictRows(m Model, rows []float64, n int, out []float64, raw bool) {
	if e, ok := m.(*Ensemble); ok {
		e.predictRows(rows, n, out, raw)
		return
	}
	nf, no := len(m.Features()), m.NumOutputs()
	for i := 0; i < n; i++ {
		r, o := rows[i*nf:(i+1)*nf], out[i*no:(i+1)*no]
		if raw {
			m.PredictRaw(r, o)
		} else {
			m.Predict(r, o)
		}
	}
}
