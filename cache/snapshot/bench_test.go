package snapshot

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// benchCSV returns an uncompressed CSV of n customers x 32 numbers shaped
// like real exports (short decimals, 2% missing).
func benchCSV(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("id")
	for j := range 32 {
		fmt.Fprintf(&b, ",f%02d", j)
	}
	b.WriteByte('\n')
	var line []byte
	for i := range n {
		line = append(line[:0], 'c')
		line = strconv.AppendInt(line, int64(i), 10)
		for j := range 32 {
			line = append(line, ',')
			if rng.Float64() < 0.02 {
				continue
			}
			line = strconv.AppendFloat(line, float64(float32(rng.NormFloat64()*100)), 'f', j%4, 32)
		}
		b.Write(append(line, '\n'))
	}
	return []byte(b.String())
}

// BenchmarkParseCSV measures parsing alone (no decompression) on all cores;
// MB/s is of CSV text.
func BenchmarkParseCSV(b *testing.B) {
	data := benchCSV(100_000)
	for _, schema := range []bool{false, true} {
		b.Run(fmt.Sprintf("100k/schema=%v", schema), func(b *testing.B) {
			cfg := Config{Version: "bench"}
			if schema {
				sc := &Schema{}
				for j := range 32 {
					sc.Columns = append(sc.Columns, Column{fmt.Sprintf("f%02d", j), KindNumber})
				}
				cfg.Schema = sc
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse("bench", data, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLookup compares Lookup with the map[string]int it replaces.
func BenchmarkLookup(b *testing.B) {
	s, err := Parse("bench", benchCSV(100_000), Config{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([][]byte, 4096)
	for i := range ids {
		ids[i] = []byte("c" + strconv.Itoa(i*24))
	}
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := s.Lookup(ids[i&4095]); !ok {
				b.Fatal("not found")
			}
		}
	})
	m := make(map[string]int, s.Len())
	for r := range s.Len() {
		m[s.ID(r)] = r
	}
	b.Run("baseline-map-string-int", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := m[string(ids[i&4095])]; !ok {
				b.Fatal("not found")
			}
		}
	})
}

// rowReadSnapshot is the snapshot of BenchmarkRowRead, built once per
// process: 1M customers x 35 columns (26 numbers, 4 categories, 3 times,
// 2 bools), interleaved the way exports mix them.
var rowReadSnapshot = sync.OnceValues(func() (*Snapshot, error) {
	const rows, cols = 1_000_000, 35
	kinds := make([]Kind, cols)
	sc := &Schema{}
	for j := range cols {
		switch {
		case j%9 == 4:
			kinds[j] = KindCategory
		case j%12 == 7:
			kinds[j] = KindTime
		case j%17 == 10:
			kinds[j] = KindBool
		default:
			kinds[j] = KindNumber
		}
		sc.Columns = append(sc.Columns, Column{fmt.Sprintf("f%02d", j), kinds[j]})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 0, rows*cols*5)
	data = append(data, "id"...)
	for _, c := range sc.Columns {
		data = append(append(data, ','), c.Name...)
	}
	data = append(data, '\n')
	for i := range rows {
		data = strconv.AppendInt(append(data, 'c'), int64(i), 10)
		for j := range cols {
			data = append(data, ',')
			if rng.IntN(50) == 0 {
				continue // 2% missing
			}
			switch kinds[j] {
			case KindNumber:
				data = strconv.AppendInt(data, int64(rng.IntN(1000)), 10)
			case KindCategory:
				data = append(data, "abcdefgh"[rng.IntN(8)])
			case KindTime:
				data = strconv.AppendInt(data, 1_700_000_000+int64(rng.IntN(1e7)), 10)
			case KindBool:
				data = strconv.AppendInt(data, int64(rng.IntN(2)), 10)
			}
		}
		data = append(data, '\n')
	}
	return Parse("rowread", data, Config{Schema: sc, Version: "bench"})
})

// BenchmarkRowRead reads every column of one customer row, as a decision
// does, for a fixed pseudo-random sequence of rows of a snapshot far larger
// than the CPU caches; one op is one row. "accessors" calls the accessor of
// each column's kind (the sidecar's Profile), "numbers" calls Numbers, and
// "baseline-columnar" reads copies of the same values kept one slice per
// column, the layout the accessors are measured against.
func BenchmarkRowRead(b *testing.B) {
	s, err := rowReadSnapshot()
	if err != nil {
		b.Fatal(err)
	}
	cols := s.Columns()
	order := make([]int, 1<<16)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range order {
		order[i] = rng.IntN(s.Len())
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/row")
	}
	var sink float64
	b.Run("accessors", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			row := order[i&(len(order)-1)]
			for c := range cols {
				switch cols[c].Kind {
				case KindNumber:
					sink += float64(s.Number(c, row))
				case KindBool:
					if v, ok := s.Bool(c, row); ok && v {
						sink++
					}
				case KindTime:
					if v, ok := s.Time(c, row); ok {
						sink += float64(v)
					}
				case KindCategory:
					if v, ok := s.Category(c, row); ok {
						sink += float64(v)
					}
				}
			}
		}
		report(b)
	})
	idx := make([]int, len(cols))
	for c := range idx {
		idx[c] = c
	}
	dst := make([]float64, len(cols))
	b.Run("numbers", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			s.Numbers(dst, order[i&(len(order)-1)], idx)
			sink += dst[0]
		}
		report(b)
	})
	type column struct {
		kind Kind
		f32  []float32
		i64  []int64
		cat  []int32
	}
	base := make([]column, len(cols))
	for c := range base {
		base[c].kind = cols[c].Kind
		switch cols[c].Kind {
		case KindNumber, KindBool:
			base[c].f32 = make([]float32, s.Len())
			for r := range s.Len() {
				base[c].f32[r] = s.Number(c, r)
			}
		case KindTime:
			base[c].i64 = make([]int64, s.Len())
			for r := range s.Len() {
				v, ok := s.Time(c, r)
				if !ok {
					v = missingTime
				}
				base[c].i64[r] = v
			}
		case KindCategory:
			base[c].cat = make([]int32, s.Len())
			for r := range s.Len() {
				base[c].cat[r], _ = s.Category(c, r)
			}
		}
	}
	b.Run("baseline-columnar", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			row := order[i&(len(order)-1)]
			for c := range base {
				col := &base[c]
				switch col.kind {
				case KindNumber:
					sink += float64(col.f32[row])
				case KindBool:
					if v := col.f32[row]; v == 1 {
						sink++
					}
				case KindTime:
					if v := col.i64[row]; v != missingTime {
						sink += float64(v)
					}
				case KindCategory:
					if v := col.cat[row]; v >= 0 {
						sink += float64(v)
					}
				}
			}
		}
		report(b)
	})
	runtime.KeepAlive(sink)
}
