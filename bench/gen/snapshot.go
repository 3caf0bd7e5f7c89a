package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
)

// snapshotSpec describes a synthetic snapshot.
type snapshotSpec struct {
	Customers int
	Features  int
	Seed      uint64
	Format    string  // csv, tsv, jsonl, parquet
	Compress  string  // zstd, gzip, none
	Mixed     bool    // add segment (category), last_purchase (date), opted_in (bool)
	Missing   float64 // fraction of missing values
}

// segments are the values of the "segment" column.
var segments = []string{"bronze", "silver", "gold", "platinum", "new"}

// epoch is the base of the "last_purchase" dates.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// row is one generated customer. NaN in Values and negative Segment/Days
// and OptIn mean missing.
type row struct {
	ID      string
	Values  []float32
	Segment int   // index into segments
	Days    int64 // days since epoch
	OptIn   int   // 0, 1, or -1
}

// rows generates the customers of spec in order and calls fn for each. The
// row (and its Values) is reused between calls.
func (sp snapshotSpec) rows(fn func(r *row) error) error {
	rng := rand.New(rand.NewPCG(sp.Seed, 0x6e6261))
	r := row{Values: make([]float32, sp.Features)}
	for i := range sp.Customers {
		r.ID = "c" + strconv.Itoa(i)
		for j := range r.Values {
			if rng.Float64() < sp.Missing {
				r.Values[j] = float32(math.NaN())
				continue
			}
			r.Values[j] = feature(rng, j)
		}
		if sp.Mixed {
			r.Segment, r.Days, r.OptIn = -1, -1, -1
			if rng.Float64() >= sp.Missing {
				r.Segment = int(rng.ExpFloat64()) % len(segments)
			}
			if rng.Float64() >= sp.Missing {
				r.Days = int64(rng.IntN(700))
			}
			if rng.Float64() >= sp.Missing {
				r.OptIn = rng.IntN(2)
			}
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

// feature draws feature j: counts, log-normal amounts, rates, or scores,
// rounded so that the text form is short, as in real exports.
func feature(rng *rand.Rand, j int) float32 {
	switch j % 4 {
	case 0: // count of events
		return float32(math.Floor(math.Exp(rng.NormFloat64() + 1)))
	case 1: // amount spent
		return float32(math.Round(math.Exp(rng.NormFloat64()*1.2+3)*100) / 100)
	case 2: // rate in [0, 1)
		return float32(math.Round(rng.Float64()*1000) / 1000)
	default: // standardised score
		return float32(math.Round(rng.NormFloat64()*1e4) / 1e4)
	}
}

// columnNames returns the feature column names of spec (without the id).
func (sp snapshotSpec) columnNames() []string {
	names := make([]string, 0, sp.Features+3)
	for j := range sp.Features {
		names = append(names, fmt.Sprintf("f%02d", j))
	}
	if sp.Mixed {
		names = append(names, "segment", "last_purchase", "opted_in")
	}
	return names
}

// fileName returns the base name of the file for spec.
func (sp snapshotSpec) fileName() string {
	name := "snapshot." + sp.Format
	switch sp.Compress {
	case "zstd":
		name += ".zst"
	case "gzip":
		name += ".gz"
	}
	return name
}

// writeSnapshotFile writes spec into dir and returns the file's path.
func writeSnapshotFile(dir string, sp snapshotSpec) (path string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path = filepath.Join(dir, sp.fileName())
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	return path, writeSnapshot(f, sp)
}

// writeSnapshot writes spec to w in its format and compression.
func writeSnapshot(w io.Writer, sp snapshotSpec) error {
	if sp.Customers < 0 || sp.Features < 0 || sp.Missing < 0 || sp.Missing > 1 {
		return errors.New("invalid snapshot spec: negative size or missing fraction outside [0, 1]")
	}
	var closer io.Closer
	switch sp.Compress {
	case "zstd":
		// One encoder per file: encoders are not shared across goroutines.
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return err
		}
		w, closer = zw, zw
	case "gzip":
		gw := gzip.NewWriter(w)
		w, closer = gw, gw
	case "none", "":
	default:
		return fmt.Errorf("unknown compression %q", sp.Compress)
	}
	var err error
	switch sp.Format {
	case "csv":
		err = writeDelimited(w, sp, ',')
	case "tsv":
		err = writeDelimited(w, sp, '\t')
	case "jsonl":
		err = writeJSONL(w, sp)
	case "parquet":
		err = writeParquet(w, sp)
	default:
		err = fmt.Errorf("unknown format %q", sp.Format)
	}
	if closer != nil {
		if cerr := closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func appendFloat(b []byte, v float32) []byte {
	return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
}

func writeDelimited(w io.Writer, sp snapshotSpec, delim byte) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	line := []byte("id")
	for _, n := range sp.columnNames() {
		line = append(append(line, delim), n...)
	}
	line = append(line, '\n')
	bw.Write(line)
	err := sp.rows(func(r *row) error {
		line = append(line[:0], r.ID...)
		for _, v := range r.Values {
			line = append(line, delim)
			if v == v {
				line = appendFloat(line, v)
			}
		}
		if sp.Mixed {
			line = append(line, delim)
			if r.Segment >= 0 {
				line = append(line, segments[r.Segment]...)
			}
			line = append(line, delim)
			if r.Days >= 0 {
				line = epoch.AddDate(0, 0, int(r.Days)).AppendFormat(line, time.DateOnly)
			}
			line = append(line, delim)
			if r.OptIn >= 0 {
				line = strconv.AppendBool(line, r.OptIn == 1)
			}
		}
		line = append(line, '\n')
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func writeJSONL(w io.Writer, sp snapshotSpec) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	names := sp.columnNames()
	var line []byte
	err := sp.rows(func(r *row) error {
		line = append(line[:0], `{"id":`...)
		line = strconv.AppendQuote(line, r.ID)
		for j, v := range r.Values {
			line = append(append(append(line, `,"`...), names[j]...), `":`...)
			if v == v {
				line = appendFloat(line, v)
			} else {
				line = append(line, "null"...)
			}
		}
		if sp.Mixed {
			if r.Segment >= 0 {
				line = append(append(append(line, `,"segment":"`...), segments[r.Segment]...), '"')
			}
			if r.Days >= 0 {
				line = append(line, `,"last_purchase":"`...)
				line = append(epoch.AddDate(0, 0, int(r.Days)).AppendFormat(line, time.DateOnly), '"')
			}
			line = append(line, `,"opted_in":`...)
			if r.OptIn >= 0 {
				line = strconv.AppendBool(line, r.OptIn == 1)
			} else {
				line = append(line, "null"...)
			}
		}
		line = append(line, "}\n"...)
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func writeParquet(w io.Writer, sp snapshotSpec) error {
	g := parquet.Group{"id": parquet.String()}
	for j, n := range sp.columnNames() {
		switch {
		case j < sp.Features:
			g[n] = parquet.Optional(parquet.Leaf(parquet.FloatType))
		case n == "segment":
			g[n] = parquet.Optional(parquet.String())
		case n == "last_purchase":
			g[n] = parquet.Optional(parquet.Date())
		case n == "opted_in":
			g[n] = parquet.Optional(parquet.Leaf(parquet.BooleanType))
		}
	}
	schema := parquet.NewSchema("snapshot", g)
	// Leaves are ordered by name; map each generated column to its leaf.
	leafOf := map[string]int{}
	for i, f := range schema.Fields() {
		leafOf[f.Name()] = i
	}
	names := sp.columnNames()
	leaves := make([]int, len(names))
	for j, n := range names {
		leaves[j] = leafOf[n]
	}
	idLeaf := leafOf["id"]
	pw := parquet.NewWriter(w, schema, parquet.MaxRowsPerRowGroup(128<<10))
	const batch = 1024
	rows := make([]parquet.Row, 0, batch)
	buf := make([]parquet.Value, 0, batch*(len(names)+1))
	flush := func() error {
		_, err := pw.WriteRows(rows)
		rows, buf = rows[:0], buf[:0]
		return err
	}
	opt := func(v parquet.Value, ok bool, leaf int) parquet.Value {
		if !ok {
			return parquet.NullValue().Level(0, 0, leaf)
		}
		return v.Level(0, 1, leaf)
	}
	err := sp.rows(func(r *row) error {
		start := len(buf)
		buf = buf[:start+len(names)+1]
		vals := buf[start:]
		vals[idLeaf] = parquet.ByteArrayValue([]byte(r.ID)).Level(0, 0, idLeaf)
		for j, v := range r.Values {
			vals[leaves[j]] = opt(parquet.FloatValue(v), v == v, leaves[j])
		}
		if sp.Mixed {
			k := sp.Features
			vals[leaves[k]] = opt(parquet.ByteArrayValue([]byte(segments[max(r.Segment, 0)])), r.Segment >= 0, leaves[k])
			days := int32(epoch.Unix()/86400) + int32(r.Days)
			vals[leaves[k+1]] = opt(parquet.Int32Value(days), r.Days >= 0, leaves[k+1])
			vals[leaves[k+2]] = opt(parquet.BooleanValue(r.OptIn == 1), r.OptIn >= 0, leaves[k+2])
		}
		rows = append(rows, parquet.Row(vals))
		if len(rows) == batch {
			return flush()
		}
		return nil
	})
	if err == nil && len(rows) > 0 {
		err = flush()
	}
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	return err
}
