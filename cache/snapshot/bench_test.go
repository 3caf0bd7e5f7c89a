package snapshot

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
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
