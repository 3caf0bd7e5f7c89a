package redisstate_test

import (
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
