package main

// Load benchmarks for package snapshot live beside the generator so that
// they share its writer. Files are generated once per run into a temporary
// directory; nothing large is committed.
//
//	go test ./bench/gen -run '^$' -bench Load -benchtime 3x -count 3
//	go test ./bench/gen -run '^$' -bench Load -benchtime 3x -gen.large   # adds 1M customers

import (
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"nba/cache/snapshot"
)

var large = flag.Bool("gen.large", false, "also benchmark 1,000,000 customers")

var (
	genMu    sync.Mutex
	genDir   string
	genFiles = map[snapshotSpec]string{}
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if genDir != "" {
		os.RemoveAll(genDir)
	}
	os.Exit(code)
}

// generated returns the path of a file for sp, writing it on first use.
func generated(b *testing.B, sp snapshotSpec) string {
	genMu.Lock()
	defer genMu.Unlock()
	if p, ok := genFiles[sp]; ok {
		return p
	}
	if genDir == "" {
		d, err := os.MkdirTemp("", "nba-gen-bench-")
		if err != nil {
			b.Fatal(err)
		}
		genDir = d
	}
	dir := filepath.Join(genDir, fmt.Sprintf("%s-%d-%d", sp.Format, sp.Customers, sp.Features))
	p, err := writeSnapshotFile(dir, sp)
	if err != nil {
		b.Fatal(err)
	}
	genFiles[sp] = p
	return p
}

// vmRSS returns the resident set size of this process in bytes.
func vmRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// settled returns the live heap and the RSS after a GC that returns freed
// memory to the OS.
func settled() (heap, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc), vmRSS()
}

// benchLoad measures loading path with load, and reports the memory the
// loaded value keeps against the raw payload (4 bytes per value + ids).
func benchLoad(b *testing.B, sp snapshotSpec, load func(path string) (any, error)) {
	path := generated(b, sp)
	raw := float64(sp.Customers * sp.Features * 4)
	for i := range sp.Customers {
		raw += float64(len("c") + len(strconv.Itoa(i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	var heapDelta, rssDelta int64
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		h0, r0 := settled()
		c0 := cpuTime()
		b.StartTimer()
		v, err := load(path)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime() - c0
		h1, r1 := settled()
		heapDelta, rssDelta = h1-h0, r1-r0
		runtime.KeepAlive(v)
		v = nil
		b.StartTimer()
	}
	b.ReportMetric(float64(heapDelta)/raw, "heap/raw")
	b.ReportMetric(float64(rssDelta)/raw, "rss/raw")
	b.ReportMetric(float64(heapDelta)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(rssDelta)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime returns the user+system CPU time of the process.
func cpuTime() time.Duration {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

func BenchmarkLoad(b *testing.B) {
	sizes := []int{100_000}
	if *large {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		for _, format := range []string{"csv", "jsonl", "parquet"} {
			sp := snapshotSpec{Customers: n, Features: 32, Seed: 1, Format: format, Compress: "zstd", Missing: 0.02}
			b.Run(fmt.Sprintf("%s.zst/%dk/snapshot", format, n/1000), func(b *testing.B) {
				benchLoad(b, sp, func(path string) (any, error) { return snapshot.Load(path, snapshot.Config{}) })
			})
			if format == "csv" {
				b.Run(fmt.Sprintf("%s.zst/%dk/naive-encoding-csv-map", format, n/1000), func(b *testing.B) {
					benchLoad(b, sp, naiveLoad)
				})
			}
		}
	}
}

// naiveLoad is the baseline: zstd stream -> encoding/csv ->
// map[string][]float64.
func naiveLoad(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	r := csv.NewReader(d)
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return nil, err
	}
	m := make(map[string][]float64)
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		vals := make([]float64, len(rec)-1)
		for i, s := range rec[1:] {
			if s == "" {
				vals[i] = nan64
				continue
			}
			if vals[i], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, err
			}
		}
		m[strings.Clone(rec[0])] = vals
	}
}

var nan64 = func() float64 { var z float64; return z / z }()
