package main

import (
	"strings"
	"testing"
)

// TestStateRedisOnlyFlagsNeedRedis is the regression test of nba state
// export|import -state DIR -state.redis.allowVolatile accepted and ignored:
// a Redis-only flag without -state.redis is refused, as serve refuses it.
func TestStateRedisOnlyFlagsNeedRedis(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"export", "import"} {
		for _, tc := range []struct {
			name string
			args []string
			bad  string // "" when accepted
		}{
			{"volatile without redis", []string{"-state", dir, "-state.redis.allowVolatile"}, "-state.redis.allowVolatile needs -state.redis"},
			{"volatile=false without redis", []string{"-state", dir, "-state.redis.allowVolatile=false"}, "-state.redis.allowVolatile needs -state.redis"},
			{"volatile with redis", []string{"-state.redis", "redis://127.0.0.1:1", "-state.redis.allowVolatile"}, ""},
			{"directory alone", []string{"-state", dir}, ""},
		} {
			t.Run(cmd+"/"+tc.name, func(t *testing.T) {
				o := stateFlags(cmd)
				o.fset.SetOutput(&strings.Builder{})
				ok, err := o.parse(tc.args)
				switch {
				case tc.bad == "" && (err != nil || !ok):
					t.Errorf("parse(%q) = %v, %v; want accepted", tc.args, ok, err)
				case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
					t.Errorf("parse(%q) = %v, %v; want %q", tc.args, ok, err, tc.bad)
				}
			})
		}
	}
}
