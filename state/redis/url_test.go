package redisstate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	redisstate "nba/state/redis"
)

// TestOpenBadURLHidesPassword: an unparsable URL's error (it reaches the
// start-up log) does not quote the password, as url.Parse's error does.
func TestOpenBadURLHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://:s3cret@host:6379/%zz",
		"redis://user:s3cret@ho st:6379/",
		"redis://user:s3cret@host:port/",
	} {
		t.Run(u, func(t *testing.T) {
			_, err := redisstate.Open(context.Background(), redisstate.Config{URL: u})
			if err == nil || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Open: %v", err)
			}
			_, err = redisstate.OpenLearn(redisstate.LearnConfig{URL: u, DecisionTTL: time.Minute})
			if err == nil || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("OpenLearn: %v", err)
			}
		})
	}
}
