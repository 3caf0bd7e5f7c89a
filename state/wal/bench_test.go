package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// BenchmarkAppend measures durable appends (one 128-byte record per Append)
// with concurrent writers; group commit shares each fsync among them.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, err := Open(Config{Dir: b.TempDir()}, nil, func([]byte) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			rec := make([]byte, 128)
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / writers
			for w := range writers {
				n := per
				if w == 0 {
					n += b.N % writers
				}
				wg.Go(func() {
					for range n {
						if err := l.Append(rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			st := l.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			b.ReportMetric(float64(st.Appends)/float64(max(st.Fsyncs, 1)), "records/fsync")
		})
	}
}

// BenchmarkFsyncBaseline is the naive log: write one record and fsync it,
// one writer, no batching. It is what a single durable write costs on this
// disk.
func BenchmarkFsyncBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "naive.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := appendFrame(nil, make([]byte, 128))
	b.ReportAllocs()
	b.SetBytes(128)
	for b.Loop() {
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
