package snapshot

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkInvariants verifies what every parsed snapshot guarantees.
func checkInvariants(t *testing.T, s *Snapshot) {
	t.Helper()
	for r := range s.Len() {
		id := s.ID(r)
		if got, ok := s.LookupString(id); !ok || got != r {
			t.Fatalf("Lookup(ID(%d)=%q) = %d, %v", r, id, got, ok)
		}
		for c, col := range s.Columns() {
			if i, ok := s.ColumnIndex(col.Name); !ok || i != c {
				t.Fatalf("ColumnIndex(%q) = %d, %v; want %d", col.Name, i, ok, c)
			}
			if col.Kind == KindCategory {
				code, ok := s.Category(c, r)
				if ok && (code < 0 || int(code) >= len(s.Dict(c))) {
					t.Fatalf("row %d column %q: code %d outside a dictionary of %d", r, col.Name, code, len(s.Dict(c)))
				}
				if ok {
					if back, _ := s.CategoryCode(c, s.Dict(c)[code]); back != code {
						t.Fatalf("CategoryCode(Dict[%d]) = %d", code, back)
					}
				}
			}
		}
	}
}

// appendCSV writes s back as CSV, quoting every text value.
func appendCSV(dst []byte, s *Snapshot) []byte {
	quote := func(dst []byte, v string) []byte {
		return append(append(dst, '"'), append([]byte(strings.ReplaceAll(v, `"`, `""`)), '"')...)
	}
	dst = append(dst, "id"...)
	for _, c := range s.Columns() {
		dst = quote(append(dst, ','), c.Name)
	}
	dst = append(dst, '\n')
	for r := range s.Len() {
		dst = quote(dst, s.ID(r))
		for c, col := range s.Columns() {
			dst = append(dst, ',')
			switch col.Kind {
			case KindNumber:
				if v := s.Number(c, r); v == v {
					dst = strconv.AppendFloat(dst, float64(v), 'g', -1, 32)
				}
			case KindBool:
				if v, ok := s.Bool(c, r); ok {
					dst = strconv.AppendBool(dst, v)
				}
			case KindTime:
				if v, ok := s.Time(c, r); ok {
					dst = time.Unix(v, 0).UTC().AppendFormat(dst, time.RFC3339)
				}
			case KindCategory:
				if code, ok := s.Category(c, r); ok {
					dst = quote(dst, s.Dict(c)[code])
				}
			}
		}
		dst = append(dst, '\n')
	}
	return dst
}

// sameSnapshot compares two snapshots value by value.
func sameSnapshot(t *testing.T, a, b *Snapshot) {
	t.Helper()
	if a.Len() != b.Len() || len(a.Columns()) != len(b.Columns()) {
		t.Fatalf("shape %dx%d vs %dx%d", a.Len(), len(a.Columns()), b.Len(), len(b.Columns()))
	}
	for c, col := range a.Columns() {
		if b.Columns()[c] != col {
			t.Fatalf("column %d: %+v vs %+v", c, col, b.Columns()[c])
		}
	}
	for r := range a.Len() {
		if a.ID(r) != b.ID(r) {
			t.Fatalf("row %d: id %q vs %q", r, a.ID(r), b.ID(r))
		}
		for c, col := range a.Columns() {
			switch col.Kind {
			case KindNumber, KindBool:
				if x, y := a.Number(c, r), b.Number(c, r); !sameFloat(x, y) {
					t.Fatalf("row %d column %q: %v vs %v", r, col.Name, x, y)
				}
			case KindTime:
				x, ok1 := a.Time(c, r)
				y, ok2 := b.Time(c, r)
				if x != y || ok1 != ok2 {
					t.Fatalf("row %d column %q: %d vs %d", r, col.Name, x, y)
				}
			case KindCategory:
				x, ok1 := a.Category(c, r)
				y, ok2 := b.Category(c, r)
				if ok1 != ok2 || (ok1 && a.Dict(c)[x] != b.Dict(c)[y]) {
					t.Fatalf("row %d column %q: %d vs %d", r, col.Name, x, y)
				}
			}
		}
	}
}

// FuzzParseCSV parses arbitrary CSV/TSV; whatever parses must satisfy the
// invariants and survive a write-and-parse round trip unchanged.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte(sampleCSV))
	f.Add([]byte(sampleTSV))
	f.Add([]byte("id,a\n\"x\"\"y\",\" 1 \"\n"))
	f.Add([]byte("id,t\nx,2024-02-29T23:59:59+14:00\ny,1999-12-31\n"))
	f.Add(genCSV(50, 3))
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.HasPrefix(data, magicZstd) || bytes.HasPrefix(data, magicGzip) || bytes.HasPrefix(data, magicParquet) {
			return
		}
		cfg := Config{Workers: 2, MaxDecompressedBytes: 1 << 20}
		s, err := Parse("fuzz", data, cfg)
		if err != nil {
			return
		}
		checkInvariants(t, s)
		if len(s.Columns()) == 0 || s.Len() == 0 {
			return
		}
		out := appendCSV(nil, s)
		s2, err := Parse("fuzz-rt", out, cfg)
		if err != nil {
			t.Fatalf("cannot parse the round trip: %v\n%s", err, out)
		}
		sameSnapshot(t, s, s2)
	})
}

// FuzzParseJSONL parses arbitrary JSON Lines.
func FuzzParseJSONL(f *testing.F) {
	f.Add([]byte(sampleJSONL))
	f.Add([]byte(`{"id":"a\u00e9\ud83d\ude00","x":"\"q\"","y":1e3}` + "\n" + `{"id":7,"x":null}`))
	f.Add([]byte(`{"id":"a","b":true}` + "\n" + `{"id":"b","b":"false"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.HasPrefix(data, magicZstd) || bytes.HasPrefix(data, magicGzip) || bytes.HasPrefix(data, magicParquet) {
			return
		}
		s, err := Parse("fuzz", data, Config{Workers: 2, MaxDecompressedBytes: 1 << 20})
		if err != nil {
			return
		}
		checkInvariants(t, s)
	})
}

// FuzzParseParquet parses arbitrary (mostly corrupted) Parquet files.
func FuzzParseParquet(f *testing.F) {
	f.Add(sampleParquet(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, magicParquet) {
			return
		}
		s, err := Parse("fuzz", data, Config{Workers: 2, MaxDecompressedBytes: 1 << 20})
		if err != nil {
			return
		}
		checkInvariants(t, s)
	})
}
