package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// genCSV returns a snapshot of n customers whose every value is version.
func genCSV(n int, version int) []byte {
	var b strings.Builder
	b.WriteString("id,a,b\n")
	for i := range n {
		fmt.Fprintf(&b, "c%d,%d,%d\n", i, version, version)
	}
	return []byte(b.String())
}

// TestStoreHotSwap swaps snapshots while 8 readers check that every row
// they read is from one snapshot: both columns carry the snapshot's number,
// and rows of the same snapshot never change. Run with -race.
func TestStoreHotSwap(t *testing.T) {
	st := NewStore(Config{})
	if st.Current() != nil || st.Status().Ready {
		t.Fatal("a new store is not empty")
	}
	if err := st.Swap(mustParse(t, genCSV(1000, 0), Config{})); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := []byte(fmt.Sprintf("c%d", w*100))
			for !stop.Load() || reads.Load() < 1000 {
				s := st.Current()
				r, ok := s.Lookup(id)
				if !ok {
					errs <- fmt.Errorf("reader %d: %s not found in %s", w, id, s.Version())
					return
				}
				a, b := s.Number(0, r), s.Number(1, r)
				if a != b {
					errs <- fmt.Errorf("reader %d: torn read: a=%v b=%v", w, a, b)
					return
				}
				reads.Add(1)
			}
		}()
	}
	for v := 1; v <= 20; v++ {
		if err := st.Swap(mustParse(t, genCSV(1000, v), Config{})); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := st.Current().Number(0, 0); got != 20 {
		t.Errorf("current value %v, want 20", got)
	}
	if s := st.Status(); s.Loads != 21 || s.Failures != 0 {
		t.Errorf("status %+v, want 21 loads and no failures", s)
	}
}

func mustParse(t testing.TB, data []byte, cfg Config) *Snapshot {
	t.Helper()
	s, err := Parse("mem", data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreRejects loads bad snapshots into a serving store: each must be
// rejected with an error naming the problem, and reads must not change.
func TestStoreRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	schema := &Schema{Columns: []Column{{"a", KindNumber}, {"b", KindNumber}}}
	st := NewStore(Config{Schema: schema, MaxShrink: 0.2})
	good := write("good.csv", string(genCSV(100, 1)))
	if err := st.LoadFile(good); err != nil {
		t.Fatal(err)
	}
	want := st.Current()
	tests := []struct {
		name, content string
		want          []string
	}{
		{"bad columns", "id,a,c\nc1,1,1\n", []string{"bad columns", `column "c" is not in the schema`}},
		{"duplicate ids", "id,a,b\n" + strings.Repeat("c1,1,1\n", 2), []string{"duplicate ids", `duplicate id: rows 1 and 2`}},
		{"unparsable", "id,a,b\nc1,1,1\nc2,x,1\n", []string{"unparsable", "line 3", `column "a"`}},
		{"truncated", string(genCSV(79, 2)), []string{"truncated", "79 rows", "100"}},
		{"missing", "", []string{"no such file"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if tc.content != "" {
				path = write(tc.name, tc.content)
			}
			err := st.LoadFile(path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if st.Current() != want {
				t.Error("the current snapshot changed")
			}
			if r, ok := st.Current().LookupString("c5"); !ok || st.Current().Number(0, r) != 1 {
				t.Error("reads changed")
			}
			s := st.Status()
			if s.Failures != uint64(i+1) || s.LastError != err.Error() || s.Loads != 1 {
				t.Errorf("status %+v after failure %d", s, i+1)
			}
		})
	}
	// A shrink within the limit is accepted.
	if err := st.LoadFile(write("ok.csv", string(genCSV(80, 3)))); err != nil {
		t.Fatalf("shrink of 20%%: %v", err)
	}
	// Swap also checks the schema of snapshots parsed elsewhere.
	other := mustParse(t, []byte("id,a\nc1,1\n"), Config{})
	if err := st.Swap(other); err == nil || !strings.Contains(err.Error(), "1 columns, the schema declares 2") {
		t.Errorf("Swap of a mismatched snapshot: %v", err)
	}
}
