package redisstate_test

import (
	"context"
	"fmt"
	"runtime/debug"
	"testing"
	"time"

	"nba/state"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// warm Loads customer until the Load is answered without a round trip
// (its value marked fresh: an invalidation of the customer's own earlier
// write may still have been in flight during the first reads).
func warm(t *testing.T, b *redisstate.Backend, customer string) {
	t.Helper()
	var v state.View
	for i := 0; i < 100; i++ {
		before := b.Counters()
		if _, err := b.Load(context.Background(), []byte(customer), &v); err != nil {
			t.Fatal(err)
		}
		if b.Counters().CacheHits > before.CacheHits && i > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("customer %s: no Load answered from the cache after 100 tries", customer)
}

// TestWarmLoadDoesNotAllocate: a repeat visitor's Load (the decision
// path's one read) allocates nothing, for a customer with contacts and
// for one without state. Before, a client-side cache hit made a deadline
// context and a key string and rueidis built its cache key: 7 allocations.
func TestWarmLoadDoesNotAllocate(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	b := open(t, redisstate.Config{URL: s.URL, AllowVolatile: true})
	for i := range 10 {
		if err := b.RecordContact(impression("c1", fmt.Sprint(i), t0)); err != nil {
			t.Fatal(err)
		}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, tc := range []struct {
		customer string
		found    bool
	}{{"c1", true}, {"nobody", false}} {
		t.Run(tc.customer, func(t *testing.T) {
			warm(t, b, tc.customer)
			id := []byte(tc.customer)
			var v state.View
			ctx := context.Background()
			load := func() {
				if found, err := b.Load(ctx, id, &v); err != nil || found != tc.found {
					t.Fatalf("Load: found %v err %v", found, err)
				}
			}
			if n := testing.AllocsPerRun(200, load); n > 0 {
				t.Errorf("warm Load allocates %.1f times per call, want 0", n)
			}
			if tc.found {
				if got := v.Count(state.KindAction, "a", state.Impression, 24*time.Hour, t0.Add(time.Hour)); got != 10 {
					t.Errorf("warm Load counts %d impressions, want 10", got)
				}
			}
		})
	}
}

// TestWarmLoadAfterReconnect: a Load answered locally stops being so when
// the connection closes (Redis restarted: the server forgot what this
// client tracks, so an invalidation of a later write would never come);
// a write by another process after the restart is seen.
func TestWarmLoadAfterReconnect(t *testing.T) {
	s := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	a := open(t, redisstate.Config{URL: s.URL})
	b := open(t, redisstate.Config{URL: s.URL})
	if err := a.RecordContact(impression("r", "1", t0)); err != nil {
		t.Fatal(err)
	}
	warm(t, b, "r")
	s.Stop()
	s.Restart()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if a.RecordContact(impression("r", "2", t0)) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no write accepted 5s after the restart")
		}
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var v state.View
		_, err := b.Load(context.Background(), []byte("r"), &v)
		if err == nil && v.Count(state.KindAction, "a", state.Impression, 24*time.Hour, t0.Add(time.Hour)) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a write made after Redis restarted is not seen 2s later (err %v)", err)
		}
	}
}

// TestPrefetch: customers prefetched in one call are then loaded without
// a round trip each, with their stored values; a write after the
// prefetch is still seen.
func TestPrefetch(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	a := open(t, redisstate.Config{URL: s.URL, AllowVolatile: true})
	b := open(t, redisstate.Config{URL: s.URL, AllowVolatile: true})
	var ids []string
	for i := range 50 {
		id := fmt.Sprint("p", i)
		ids = append(ids, id)
		for j := range i % 4 {
			if err := a.RecordContact(impression(id, fmt.Sprint(j), t0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Prefetch(context.Background(), append(ids, "p0")); err != nil {
		t.Fatal(err)
	}
	before := b.Counters()
	if before.CacheMisses != 50 {
		t.Errorf("prefetch of 50 customers: %d misses, want 50", before.CacheMisses)
	}
	for i, id := range ids {
		if got := count(t, b, id); got != i%4 {
			t.Errorf("%s: %d impressions, want %d", id, got, i%4)
		}
	}
	if after := b.Counters(); after.CacheMisses != before.CacheMisses || after.CacheHits != before.CacheHits+50 {
		t.Errorf("Loads after the prefetch: %+v, before %+v; want 50 hits, no miss", after, before)
	}
	if err := a.RecordContact(impression("p1", "new", t0)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Second); count(t, b, "p1") != 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a write after the prefetch is not seen 1s later")
		}
	}
}
