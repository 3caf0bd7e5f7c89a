package snapshot

import (
	"bytes"
	"math"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
)

// compress wraps data in the named compression ("none", "zstd", "gzip").
func compress(t testing.TB, data []byte, how string) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch how {
	case "none":
		return data
	case "zstd":
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown compression %q", how)
	}
	return buf.Bytes()
}

// pqCol is a column for writeParquet; values hold nil for null.
type pqCol struct {
	name string
	node parquet.Node
	vals []any
}

// writeParquet writes a flat Parquet file with optional columns.
func writeParquet(t testing.TB, cols []pqCol) []byte {
	t.Helper()
	g := parquet.Group{}
	for _, c := range cols {
		g[c.name] = parquet.Optional(c.node)
	}
	schema := parquet.NewSchema("snapshot", g)
	// Leaf order is the schema's (sorted by name), not cols' order.
	order := make([]int, len(cols))
	for i, f := range schema.Fields() {
		for j, c := range cols {
			if c.name == f.Name() {
				order[i] = j
			}
		}
	}
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, schema)
	n := len(cols[0].vals)
	for r := 0; r < n; r++ {
		row := make(parquet.Row, len(cols))
		for leaf, j := range order {
			v := cols[j].vals[r]
			var pv parquet.Value
			switch x := v.(type) {
			case nil:
				pv = parquet.NullValue()
			case string:
				pv = parquet.ByteArrayValue([]byte(x))
			case float32:
				pv = parquet.FloatValue(x)
			case float64:
				pv = parquet.DoubleValue(x)
			case int32:
				pv = parquet.Int32Value(x)
			case int64:
				pv = parquet.Int64Value(x)
			case bool:
				pv = parquet.BooleanValue(x)
			default:
				t.Fatalf("unsupported value %T", v)
			}
			if v == nil {
				pv = pv.Level(0, 0, leaf)
			} else {
				pv = pv.Level(0, 1, leaf)
			}
			row[leaf] = pv
		}
		if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func isNaN(f float32) bool { return f != f }

// sameFloat reports whether a and b are equal or both NaN.
func sameFloat(a, b float32) bool { return a == b || (isNaN(a) && isNaN(b)) }

var nan = float32(math.NaN())
