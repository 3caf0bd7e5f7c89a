package redisstate_test

import (
	"context"
	"errors"
	"time"

	"nba/state"
	"strings"
	"testing"

	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// TestDurabilitySaysAnEvictingMemoryPolicy: a Redis that may evict any key
// when full drops whole customers (their caps then forget contacts); the
// start-up log says so. noeviction (writes refused when full) and the
// volatile policies (customer keys have no expiry) are not mentioned.
func TestDurabilitySaysAnEvictingMemoryPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy string
		warn   bool
	}{
		{"allkeys-lru", true},
		{"allkeys-random", true},
		{"noeviction", false},
		{"volatile-lru", false},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			s := redistest.Start(t, redistest.Options{AppendFsync: "everysec", Args: []string{"--maxmemory", "100mb", "--maxmemory-policy", tc.policy}})
			d := open(t, redisstate.Config{URL: s.URL}).Durability()
			if got := strings.Contains(d, "maxmemory-policy "+tc.policy); got != tc.warn {
				t.Errorf("durability %q: mentions the policy %v, want %v", d, got, tc.warn)
			}
		})
	}
}

// TestFullRedisIsNotWritable is the regression test of redis-7: a Redis
// over maxmemory with noeviction refuses writes; Err (readiness,
// nba_state_writable) must say the state cannot be written and that Redis
// is full, not report it writable; once maxmemory is raised it clears by
// itself and writes succeed again.
func TestFullRedisIsNotWritable(t *testing.T) {
	s := redistest.Start(t, redistest.Options{AppendFsync: "everysec", Args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "noeviction"}})
	b := open(t, redisstate.Config{URL: s.URL, HealthInterval: 20 * time.Millisecond})
	if err := b.RecordContact(impression("m", "1", t0)); err != nil {
		t.Fatal(err)
	}
	rc := raw(t, s.URL)
	ctx := context.Background()
	config := func(max string) {
		t.Helper()
		if err := rc.Do(ctx, rc.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", max).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Do(ctx, rc.B().Set().Key("filler").Value(strings.Repeat("x", 5<<20)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	config("4mb") // now over it, with nothing Redis may evict
	err := b.RecordContact(impression("m", "2", t0))
	if !errors.Is(err, state.ErrUnavailable) || !errors.Is(err, redisstate.ErrFull) {
		t.Fatalf("write to a full Redis: %v, want ErrUnavailable and ErrFull", err)
	}
	time.Sleep(100 * time.Millisecond) // health PINGs answer: Redis is up, still full
	if err := b.Err(); !errors.Is(err, state.ErrUnavailable) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("Err with Redis full: %v, want ErrUnavailable saying Redis is full", err)
	}
	config("100mb")
	deadline := time.Now().Add(5 * time.Second)
	for b.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Err still %v 5s after maxmemory was raised", b.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.RecordContact(impression("m", "3", t0)); err != nil {
		t.Fatalf("write after maxmemory was raised: %v", err)
	}
}
