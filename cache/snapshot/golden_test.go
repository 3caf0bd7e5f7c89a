package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden.txt from the current loader")

// goldenInputs are files of every format, compression and kind mix, large
// enough to span many blocks and chunks, generated deterministically.
func goldenInputs(t testing.TB) map[string][]byte {
	rng := rand.New(rand.NewPCG(7, 11))
	var csv, jsonl strings.Builder
	csv.WriteString("id,score,segment,last_seen,vip,zip,note\n")
	segs := []string{"gold", "silver", "bronze", "", "NA"}
	for i := range 30000 {
		score := fmt.Sprintf("%.3f", rng.NormFloat64()*50)
		if rng.IntN(40) == 0 {
			score = ""
		}
		seg := segs[rng.IntN(len(segs))]
		seen := fmt.Sprintf("2024-%02d-%02d", 1+rng.IntN(12), 1+rng.IntN(28))
		if rng.IntN(10) == 0 {
			seen = fmt.Sprintf("2024-03-02T10:%02d:00Z", rng.IntN(60))
		}
		vip := []string{"true", "false", "", "TRUE"}[rng.IntN(4)]
		zip := fmt.Sprintf("%05d", rng.IntN(100000))
		if i == 29000 {
			zip = "SW1A" // the column turns out to be a category late
		}
		note := fmt.Sprintf(`"say ""hi"", %d"`, rng.IntN(50))
		fmt.Fprintf(&csv, "c%06d,%s,%s,%s,%s,%s,%s\n", i, score, seg, seen, vip, zip, note)
		if i%997 == 0 {
			csv.WriteString("\n")
		}
		// JSON Lines: keys in varying order, a key that first appears late.
		late := ""
		if i > 20000 && rng.IntN(3) == 0 {
			late = fmt.Sprintf(`,"late":%d`, rng.IntN(9))
		}
		if i%2 == 0 {
			fmt.Fprintf(&jsonl, `{"id":"c%06d","score":%s,"seg":%q,"seen":%q%s}`+"\n", i, orNull(score), seg, seen, late)
		} else {
			fmt.Fprintf(&jsonl, `{"seen":%q,"seg":%q,"id":"c%06d"%s,"score":%s}`+"\n", seen, seg, i, late, orNull(score))
		}
	}
	tsv := strings.ReplaceAll(strings.ReplaceAll(csv.String(), ",", "\t"), "\"say \"\"hi\"\"\t", "\"say \"\"hi\"\" ")
	in := map[string][]byte{}
	for _, how := range []string{"none", "zstd", "gzip"} {
		in["mixed.csv."+how] = compress(t, []byte(csv.String()), how)
		in["mixed.jsonl."+how] = compress(t, []byte(jsonl.String()), how)
	}
	in["mixed.tsv"] = []byte(tsv)
	lines := strings.SplitAfter(csv.String(), "\n")
	lines[25000] = strings.TrimSuffix(lines[25000], "\n") + ",extra\n"
	in["badfields.csv.zstd"] = compress(t, []byte(strings.Join(lines, "")), "zstd")
	lines = strings.SplitAfter(jsonl.String(), "\n")
	lines[27000] = "{\"id\":\"x\",\"score\":[1]}\n"
	in["nested.jsonl"] = []byte(strings.Join(lines, ""))
	in["bench.csv"] = benchCSV(20000)
	in["sample.csv"] = []byte(sampleCSV)
	in["sample.tsv"] = []byte(sampleTSV)
	in["sample.jsonl"] = []byte(sampleJSONL)
	in["sample.parquet"] = sampleParquet(t)
	in["sample.parquet.zstd"] = compress(t, sampleParquet(t), "zstd")
	demo, err := os.ReadFile(filepath.Join("..", "..", "nba", "demo", "bundle", "customers.csv.zst"))
	if err != nil {
		t.Fatal(err)
	}
	in["demo.csv.zst"] = demo
	return in
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// digest is a canonical digest of everything a snapshot holds.
func digest(s *Snapshot) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %d %v\n", s.Version(), s.Len(), s.Columns())
	for c := range s.Columns() {
		fmt.Fprintf(h, "%q\n", s.Dict(c))
	}
	h.Write(appendCSV(nil, s))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// TestGolden checks that every input loads exactly as the loader that
// read whole files into memory loaded it (testdata/golden.txt was written
// by that loader), with and without a declared schema where one applies,
// and with one worker and several.
//
// The streaming loader is also run with blocks of text and segments of the
// table far smaller than the files (blocks shorter than some lines, a
// segment of 64 rows), so that kinds inferred late, keys first seen late
// and times that move the layout all cross block and segment boundaries;
// every size must give the same digest.
func TestGolden(t *testing.T) {
	in := goldenInputs(t)
	var got []string
	defer func(b, s int) { blockSize, segWords = b, s }(blockSize, segWords)
	for _, name := range sortedKeys(in) {
		for _, workers := range []int{1, 3} {
			var first string
			for _, sizes := range [][2]int{{4 << 20, 1 << 20}, {1 << 10, 64}} {
				blockSize, segWords = sizes[0], sizes[1]
				s, err := Parse(name, in[name], Config{Workers: workers})
				line := fmt.Sprintf("%s workers=%d ", name, workers)
				if err != nil {
					line += "error: " + err.Error()
				} else {
					line += digest(s)
				}
				if first == "" {
					first = line
					got = append(got, line)
				} else if line != first {
					t.Errorf("block %d, segment %d words:\n%s\nwant %s", sizes[0], sizes[1], line, first)
				}
			}
		}
	}
	path := filepath.Join("testdata", "golden.txt")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := strings.Split(strings.TrimSpace(string(want)), "\n")
	if len(wantLines) != len(got) {
		t.Fatalf("%d results, golden has %d", len(got), len(wantLines))
	}
	for i := range got {
		if got[i] != wantLines[i] {
			t.Errorf("got  %s\nwant %s", got[i], wantLines[i])
		}
	}
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestLoadStreamsFile is the regression test for loads that read the whole
// file, and then its whole decompressed text, into memory before parsing
// (a 1M x 32 CSV of 558 MB made the sidecar peak at 1.3 GB). Numbers
// written with many digits make the text eight times the table. A load
// allocates fixed costs (blocks of text, the decompressor's window) and
// what the table needs; the text must not be among them, so loading four
// times the rows may allocate at most half of the text added.
func TestLoadStreamsFile(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	defer func(b, s int) { blockSize, segWords = b, s }(blockSize, segWords)
	// Blocks and segments small beside the files, as they are beside the
	// files the sidecar loads.
	blockSize, segWords = 256<<10, 16<<10
	const cols = 16
	csv := func(rows int) []byte {
		var b strings.Builder
		b.WriteString("id")
		for j := range cols {
			fmt.Fprintf(&b, ",f%02d", j)
		}
		b.WriteByte('\n')
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range rows {
			fmt.Fprintf(&b, "c%07d", i)
			for range cols {
				fmt.Fprintf(&b, ",%.30f", rng.NormFloat64())
			}
			b.WriteByte('\n')
		}
		return []byte(b.String())
	}
	small, large := csv(8_000), csv(32_000)
	dir := t.TempDir()
	for _, how := range []string{"none", "zstd", "gzip"} {
		t.Run(how, func(t *testing.T) {
			for _, load := range []struct {
				name string
				fn   func(file string) (*Snapshot, error)
			}{
				{"Load", func(file string) (*Snapshot, error) {
					return Load(filepath.Join(dir, file), Config{Version: "v", Workers: 2})
				}},
				{"ParseReader(fs.File)", func(file string) (*Snapshot, error) {
					f, err := os.DirFS(dir).Open(file)
					if err != nil {
						return nil, err
					}
					defer f.Close()
					return ParseReader("s", f, Config{Version: "v", Workers: 2})
				}},
			} {
				var alloc [2]uint64
				for i, text := range [][]byte{small, large} {
					file := fmt.Sprintf("s%d.csv.%s", i, how)
					if err := os.WriteFile(filepath.Join(dir, file), compress(t, text, how), 0o644); err != nil {
						t.Fatal(err)
					}
					want, err := Parse("want", text, Config{Version: "v"})
					if err != nil {
						t.Fatal(err)
					}
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					s, err := load.fn(file)
					runtime.ReadMemStats(&after)
					if err != nil {
						t.Fatal(err)
					}
					sameSnapshot(t, want, s)
					alloc[i] = after.TotalAlloc - before.TotalAlloc
				}
				grew, text := int64(alloc[1])-int64(alloc[0]), len(large)-len(small)
				t.Logf("%s: %.1f MB more allocated for %.1f MB more text (%.1f, %.1f)", load.name, float64(grew)/1e6, float64(text)/1e6, float64(alloc[0])/1e6, float64(alloc[1])/1e6)
				if grew > int64(text)/2 {
					t.Errorf("%s allocated %d bytes more for %d bytes more text: the text is held, not streamed", load.name, grew, text)
				}
			}
		})
	}
}

// TestLineLongerThanBlock: a line longer than a block grows the block.
func TestLineLongerThanBlock(t *testing.T) {
	defer func(b int) { blockSize = b }(blockSize)
	for _, data := range []string{sampleCSV, sampleTSV, sampleJSONL} {
		blockSize = 4 << 20
		want, err := Parse("s", []byte(data), Config{})
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{1, 7, 16} {
			blockSize = size
			got, err := Parse("s", []byte(data), Config{})
			if err != nil {
				t.Fatalf("block of %d: %v", size, err)
			}
			sameSnapshot(t, want, got)
		}
	}
}

// TestLoadClosesDecompressor: a load, finished or failed part-way, leaves
// no zstd decoder goroutines behind (the decoder is made once per load,
// reset per pass and closed).
func TestLoadClosesDecompressor(t *testing.T) {
	defer func(b int) { blockSize = b }(blockSize)
	blockSize = 64 << 10
	good := compress(t, []byte(strings.Repeat("id,a\n", 1)+strings.Repeat("x,1\n", 1)), "zstd")
	// The bad line stops the load in its first block, with most of the
	// stream still to decode.
	var b strings.Builder
	b.WriteString("id,a\nbad line,1,2\n")
	for i := range 200000 {
		fmt.Fprintf(&b, "r%d,%d\n", i, i)
	}
	bad := compress(t, []byte(b.String()), "zstd")
	before := runtime.NumGoroutine()
	for range 5 {
		Parse("good", good, Config{Workers: 4})
		if _, err := Parse("bad", bad, Config{Workers: 4}); err == nil {
			t.Fatal("no error for the bad line")
		}
	}
	for range 100 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines before the loads, %d after", before, runtime.NumGoroutine())
}
