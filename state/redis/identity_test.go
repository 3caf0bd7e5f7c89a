package redisstate_test

import (
	"testing"

	"nba/state"
	"nba/state/identitytest"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// TestIdentity runs the identity behaviour table against a standalone
// server and a 3-master Cluster, where the two profiles of a merge and
// their identifier keys sit on different shards.
func TestIdentity(t *testing.T) {
	run := func(url string) identitytest.NewBackend {
		return func(t *testing.T, cfg state.Config) state.IdentityBackend {
			flush(t, url)
			return open(t, redisstate.Config{URL: url, State: cfg, AllowVolatile: true})
		}
	}
	t.Run("standalone", func(t *testing.T) {
		s := redistest.Start(t, redistest.Options{})
		identitytest.Run(t, run(s.URL))
	})
	t.Run("cluster", func(t *testing.T) {
		cl := redistest.StartCluster(t, redistest.Options{})
		identitytest.Run(t, run(cl.URL))
	})
}
