package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// captureStdout runs f with os.Stdout redirected and returns what it wrote.
func captureStdout(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	ferr := f()
	w.Close()
	os.Stdout = old
	return <-done, ferr
}

func readTable(t *testing.T, path string) [][]float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]float64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var row []float64
		for _, f := range strings.Fields(line) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			row = append(row, v)
		}
		out = append(out, row)
	}
	return out
}

func close1e6(got, want float64) bool {
	return math.Abs(got-want) <= 1e-6*math.Abs(want) || math.Abs(got-want) <= 1e-7
}

// TestScoreCLIContract checks "nba score" against the reference libraries'
// own predictions, in the exact output format other tools depend on.
func TestScoreCLIContract(t *testing.T) {
	lgb := filepath.Join("..", "..", "model", "testdata", "lightgbm")
	xgb := filepath.Join("..", "..", "model", "testdata", "xgboost")
	tests := []struct {
		name  string
		args  []string
		truth string
	}{
		{"lightgbm dart probabilities", []string{"-model", filepath.Join(lgb, "lg_dart_breast_cancer.model"), "-input", filepath.Join(lgb, "breast_cancer_test.tsv")},
			filepath.Join(lgb, "lg_dart_breast_cancer_true_predictions.txt")},
		{"lightgbm multiclass raw, one column per class", []string{"-model", filepath.Join(lgb, "lg_kddcup99.model"), "-input", filepath.Join(lgb, "kddcup99_test.tsv"), "-raw"},
			filepath.Join(lgb, "lg_kddcup99_true_predictions.txt")},
		{"xgboost binary logistic", []string{"-model", filepath.Join(xgb, "binary_logistic.json"), "-input", filepath.Join(xgb, "rows.tsv")},
			filepath.Join(xgb, "binary_logistic.pred.tsv")},
		{"xgboost margins", []string{"-model", filepath.Join(xgb, "reg_tweedie.json"), "-input", filepath.Join(xgb, "rows.tsv"), "-raw"},
			filepath.Join(xgb, "reg_tweedie.margin.tsv")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := captureStdout(t, func() error { return runScore(tt.args) })
			if err != nil {
				t.Fatal(err)
			}
			want := readTable(t, tt.truth)
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if len(lines) != len(want) {
				t.Fatalf("%d output lines, want %d", len(lines), len(want))
			}
			for i, line := range lines {
				fields := strings.Split(line, "\t")
				if len(fields) != len(want[i]) {
					t.Fatalf("line %d: %d tab-separated values, want %d", i+1, len(fields), len(want[i]))
				}
				for j, f := range fields {
					v, err := strconv.ParseFloat(f, 64)
					if err != nil || fmt.Sprintf("%.9g", v) != f {
						t.Fatalf("line %d value %q is not formatted %%.9g", i+1, f)
					}
					if !close1e6(v, want[i][j]) {
						t.Errorf("line %d col %d: %v, want %v", i+1, j+1, v, want[i][j])
					}
				}
			}
		})
	}
}

func TestScoreCLIBenchAndErrors(t *testing.T) {
	lgb := filepath.Join("..", "..", "model", "testdata", "lightgbm")
	model := filepath.Join(lgb, "lg_dart_breast_cancer.model")
	out, err := captureStdout(t, func() error {
		return runScore([]string{"-model", model, "-input", filepath.Join(lgb, "breast_cancer_test.tsv"), "-bench", "50ms"})
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !regexp.MustCompile(`^ns/row=[0-9.]+ rows=[0-9]+ trees=10$`).MatchString(lines[len(lines)-1]) {
		t.Errorf("bench output %q does not end with ns/row=<n> rows=<n> trees=10", out)
	}

	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	row := strings.Repeat("1,", 29) + "1"
	short := write("short.csv", row+"\n1,2,3\n")
	if _, err := captureStdout(t, func() error { return runScore([]string{"-model", model, "-input", short}) }); err == nil ||
		!strings.Contains(err.Error(), "line 2") {
		t.Errorf("a row with the wrong number of features: got %v, want an error naming line 2", err)
	}
	// -skip-cols drops leading columns (an id here); empty and nan are missing.
	skipped := write("skip.csv", "id7,"+row+"\nid8,"+strings.Repeat("nan,", 29)+"\n")
	out, err = captureStdout(t, func() error { return runScore([]string{"-model", model, "-input", skipped, "-skip-cols", "1"}) })
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("-skip-cols: %d output lines, want 2: %q", n, out)
	}
	if _, err := captureStdout(t, func() error {
		return runScore([]string{"-model", write("bad.json", `{"learner":`), "-input", short})
	}); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("a truncated model: got %v, want an error naming the file", err)
	}
}
