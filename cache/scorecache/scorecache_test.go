package scorecache

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
)

// newCache returns a Cache without the doorkeeper (see TestDoorkeeper), so
// that one Set caches.
func newCache(t testing.TB, cfg Config) *Cache {
	t.Helper()
	cfg.AdmitFirst = true
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestGetSet(t *testing.T) {
	c := newCache(t, Config{MaxBytes: 1 << 20})
	k := Key{Customer: "c1", Snapshot: "s1", Overlay: 3, Model: "m1"}
	scores := []float64{0.1, 0.2, 0.3}
	if !c.Set(k, scores) {
		t.Fatal("Set dropped on an idle cache")
	}
	scores[0] = 9 // the cache holds a copy
	c.Wait()
	got, ok := c.Get(k)
	if !ok || len(got) != 3 || got[0] != 0.1 || got[2] != 0.3 {
		t.Fatalf("Get = %v, %v", got, ok)
	}
	tests := []struct {
		name string
		k    Key
	}{
		{"other customer", Key{"c2", "s1", 3, "m1"}},
		{"new snapshot", Key{"c1", "s2", 3, "m1"}},
		{"overlay changed", Key{"c1", "s1", 4, "m1"}},
		{"new model", Key{"c1", "s1", 3, "m2"}},
		{"shifted bytes", Key{"c1s", "1", 3, "m1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := c.Get(tc.k); ok {
				t.Errorf("Get(%+v) = %v, want a miss", tc.k, got)
			}
		})
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != uint64(len(tests)) || s.Sets != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestHashCollisionIsAMiss forces every key onto one hash: a Get for a key
// other than the stored one must miss and be counted as a collision.
func TestHashCollisionIsAMiss(t *testing.T) {
	c := newCache(t, Config{MaxBytes: 1 << 20})
	c.collide = true
	a, b := Key{"a", "s", 1, "m"}, Key{"b", "s", 1, "m"}
	c.Set(a, []float64{1})
	c.Wait()
	if got, ok := c.Get(b); ok {
		t.Fatalf("Get(b) = %v, want a miss", got)
	}
	if got, ok := c.Get(a); !ok || got[0] != 1 {
		t.Fatalf("Get(a) = %v, %v", got, ok)
	}
	if s := c.Stats(); s.Collisions != 1 || s.Misses != 1 || s.Hits != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestLimits(t *testing.T) {
	c := newCache(t, Config{MaxBytes: 1 << 20, MaxScores: 4})
	if c.Set(Key{Customer: "x"}, make([]float64, 5)) {
		t.Error("Set accepted more than MaxScores scores")
	}
	if s := c.Stats(); s.SetsTooLarge != 1 {
		t.Errorf("stats %+v", s)
	}
	// A budget of ~10 entries keeps the cost bounded.
	small := newCache(t, Config{MaxBytes: 10 * (entryOverhead + 16), MaxEntries: 10})
	for i := range 1000 {
		small.Set(Key{Customer: fmt.Sprint(i)}, []float64{1})
		small.Wait()
	}
	s := small.Stats()
	if s.CostAdded-s.CostEvicted > 10*(entryOverhead+16) {
		t.Errorf("cache holds %d bytes, over its budget", s.CostAdded-s.CostEvicted)
	}
	for _, bad := range []Config{{MaxBytes: -1}, {MaxBytes: 10}, {MaxScores: -1}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", bad)
		}
	}
}

// TestGetDoesNotAllocate: the only allocation on Get is ristretto's
// read-buffer stripe (one per 64 Gets handed to the admission policy),
// which averages below one per run.
func TestGetDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := newCache(t, Config{})
	hit := Key{"customer-1", "snap-v1", 7, "model-v3"}
	c.Set(hit, []float64{1, 2, 3})
	c.Wait()
	miss := Key{"customer-2", "snap-v1", 7, "model-v3"}
	allocs := testing.AllocsPerRun(1000, func() {
		c.Get(hit)
		c.Get(miss)
	})
	if allocs != 0 {
		t.Errorf("Get allocates %v times per run, want 0", allocs)
	}
}

// TestConcurrent runs Gets and Sets from 8 goroutines; run with -race. A hit
// must return the scores stored for that very key.
func TestConcurrent(t *testing.T) {
	c := newCache(t, Config{MaxBytes: 1 << 20})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := Key{Customer: fmt.Sprint(i % 100), Snapshot: "s", Overlay: uint64(w), Model: "m"}
				if got, ok := c.Get(k); ok && (got[0] != float64(i%100) || got[1] != float64(w)) {
					t.Errorf("Get(%+v) = %v", k, got)
					return
				}
				c.Set(k, []float64{float64(i % 100), float64(w)})
			}
		}()
	}
	wg.Wait()
}

func BenchmarkGet(b *testing.B) {
	c := newCache(b, Config{})
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = Key{fmt.Sprintf("customer-%07d", i), "0123456789abcdef", uint64(i), "fedcba9876543210"}
		c.Set(keys[i], make([]float64, 20))
		c.Wait()
	}
	b.Run("scorecache/hit", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			c.Get(keys[i&1023])
		}
	})
	// Baseline: a map behind a RWMutex keyed by the struct itself.
	var mu sync.RWMutex
	m := make(map[Key][]float64, len(keys))
	for _, k := range keys {
		m[k] = make([]float64, 20)
	}
	b.Run("baseline-rwmutex-map/hit", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			mu.RLock()
			_ = m[keys[i&1023]]
			mu.RUnlock()
		}
	})
}

// TestDoorkeeper: the first Set for a customer is deferred without
// allocating, the second caches (whatever the rest of the key), and the
// doorkeeper forgets after doorLimit marks.
func TestDoorkeeper(t *testing.T) {
	c, err := New(Config{MaxBytes: 1 << 20, MaxEntries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := Key{Customer: "c1", Snapshot: "s", Overlay: 1, Model: "m"}
	if c.Set(k, []float64{1}) {
		t.Fatal("first sight cached")
	}
	k.Overlay = 2 // new inputs, same customer
	if !c.Set(k, []float64{2}) {
		t.Fatal("second sight not cached")
	}
	c.Wait()
	if v, ok := c.Get(k); !ok || v[0] != 2 {
		t.Fatalf("Get after the second Set: %v %v", v, ok)
	}
	if st := c.Stats(); st.SetsDeferred != 1 || st.Sets != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Forgetting: once doorLimit customers were marked, everyone is
	// forgotten and c1 is new again.
	for i := 0; ; i++ {
		if i > 10*int(c.doorLimit) {
			t.Fatal("the doorkeeper never cleared")
		}
		if !c.admit("other-"+strconv.Itoa(i)) && c.marks.Load() == 0 {
			break // just cleared
		}
	}
	// A forgotten customer's Get is settled by the doorkeeper: a miss,
	// though the entry is still cached.
	if _, ok := c.Get(k); ok {
		t.Fatal("Get of a forgotten customer went to the cache")
	}
	if c.admit("c1") {
		t.Fatal("the doorkeeper did not forget")
	}
	if !c.admit("c1") {
		t.Fatal("a customer marked just now is not admitted")
	}
	if v, ok := c.Get(k); !ok || v[0] != 2 {
		t.Fatalf("Get once marked again: %v %v", v, ok)
	}
}

// TestDeferredSetDoesNotAllocate: a first sight costs no allocation.
func TestDeferredSetDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c, err := New(Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	names := make([]string, 200)
	for i := range names {
		names[i] = "first-" + strconv.Itoa(i)
	}
	scores := []float64{1, 2, 3}
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		c.Set(Key{Customer: names[i]}, scores)
		i++
	})
	if allocs != 0 || c.Stats().SetsDeferred < 100 {
		t.Fatalf("%v allocations per deferred Set, %d deferred", allocs, c.Stats().SetsDeferred)
	}
}
