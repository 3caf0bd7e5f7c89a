package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"nba/model"
)

func init() {
	register(command{name: "score", summary: "score rows of numbers with a model file", run: runScore})
}

// runScore implements "nba score -model FILE -input ROWS [-skip-cols N] [-raw]
// [-bench DURATION]". ROWS holds tab- or comma-separated numbers, one row per
// line, no header; an empty field or "nan" is missing. It prints one line per
// row: the prediction (or the margin with -raw), tab-separated values for
// multiclass models, formatted %.9g. With -bench it scores the rows
// repeatedly on one goroutine for about DURATION and prints only
// "ns/row=<number> rows=<n> trees=<n>", where rows is the number of input rows.
func runScore(args []string) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: nba score -model FILE -input ROWS [flags]

Scores rows of numbers with a model file and prints one prediction per row
(tab-separated values for multiclass models). ROWS holds tab- or
comma-separated numbers, one row per line, no header; an empty field or
"nan" is missing.

Examples:
  nba score -model model.json -input rows.tsv
  nba score -model model.json -input rows.csv -skip-cols 1 -bench 5s

Flags:
`)
		fs.PrintDefaults()
	}
	modelPath := fs.String("model", "", "model `file`: XGBoost JSON, LightGBM text or nba-linear JSON (format detected from content)")
	input := fs.String("input", "", "rows `file` (\"-\" for standard input): tab- or comma-separated numbers, one row per line; empty or nan is missing")
	skip := fs.Int("skip-cols", 0, "skip the first `N` columns of each row (labels, ids)")
	raw := fs.Bool("raw", false, "print margins instead of transformed predictions")
	bench := fs.Duration("bench", 0, "score the rows repeatedly on one goroutine for about this `duration` and print only ns/row=, rows=, trees=")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *modelPath == "" || *input == "" {
		fs.Usage()
		return errors.New("-model and -input are required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *skip < 0 {
		return fmt.Errorf("-skip-cols %d: must not be negative", *skip)
	}
	m, err := model.Load(*modelPath)
	if err != nil {
		return err
	}
	var data []byte
	if *input == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(*input)
	}
	if err != nil {
		return fmt.Errorf("cannot read rows: %w", err)
	}
	nf := len(m.Features())
	rows, n, err := parseRows(data, *skip, nf)
	if err != nil {
		return fmt.Errorf("cannot read rows %q: %w", *input, err)
	}
	no := m.NumOutputs()
	out := make([]float64, n*no)
	if *bench > 0 {
		return benchRows(m, rows, n, out, *raw, *bench)
	}
	model.PredictBatch(m, rows, n, out, *raw)
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	buf := make([]byte, 0, 32*no)
	for i := 0; i < n; i++ {
		buf = buf[:0]
		for k := 0; k < no; k++ {
			if k > 0 {
				buf = append(buf, '\t')
			}
			buf = strconv.AppendFloat(buf, out[i*no+k], 'g', 9, 64) // %.9g
		}
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return w.Flush()
}

// benchRows scores all rows repeatedly on the calling goroutine for about d
// (wall clock) and prints the time per row. On Linux the time is the CPU time
// of the scoring thread, which a busy machine disturbs far less than the wall
// clock; elsewhere it is the wall clock.
func benchRows(m model.Model, rows []float64, n int, out []float64, raw bool, d time.Duration) error {
	if n == 0 {
		return errors.New("-bench: no rows")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	model.PredictRows(m, rows, n, out, raw) // warm up
	iters := 0
	start, cpu0 := time.Now(), threadCPU()
	for time.Since(start) < d {
		model.PredictRows(m, rows, n, out, raw)
		iters++
	}
	spent := threadCPU() - cpu0
	if spent <= 0 {
		spent = time.Since(start)
	}
	nsPerRow := float64(spent.Nanoseconds()) / float64(iters*n)
	fmt.Printf("ns/row=%.1f rows=%d trees=%d\n", nsPerRow, n, m.Info().Trees)
	return nil
}

// threadCPU returns the CPU time used by the calling thread on Linux, else 0.
func threadCPU() time.Duration {
	if runtime.GOOS != "linux" {
		return 0
	}
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parseRows reads rows of numbers, skipping the first skip columns, and
// checks that each has nf values. Lines end in \n or \r\n; a final line
// without a newline counts, an empty last line after the final newline does
// not.
func parseRows(data []byte, skip, nf int) ([]float64, int, error) {
	rows := make([]float64, 0, nf*(bytes.Count(data, []byte{'\n'})+1))
	n := 0
	for line := 1; len(data) > 0; line++ {
		var text []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			text, data = data[:i], data[i+1:]
		} else {
			text, data = data, nil
		}
		text = bytes.TrimSuffix(text, []byte{'\r'})
		col, got := 0, 0
		for {
			end := bytes.IndexAny(text, "\t,")
			field := text
			if end >= 0 {
				field = text[:end]
			}
			if col >= skip {
				v, err := parseField(field)
				if err != nil {
					return nil, 0, fmt.Errorf("line %d: column %d: %w", line, col+1, err)
				}
				rows = append(rows, v)
				got++
			}
			col++
			if end < 0 {
				break
			}
			text = text[end+1:]
		}
		if got != nf {
			return nil, 0, fmt.Errorf("line %d: %d features after skipping %d columns, the model wants %d", line, got, skip, nf)
		}
		n++
	}
	return rows, n, nil
}

// parseField reads one number; an empty field or nan (any case) is missing.
func parseField(f []byte) (float64, error) {
	f = bytes.TrimSpace(f)
	if len(f) == 0 || bytes.EqualFold(f, []byte("nan")) {
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(string(f), 64)
	if err != nil {
		return 0, fmt.Errorf("invalid number %q", f)
	}
	return v, nil
}
