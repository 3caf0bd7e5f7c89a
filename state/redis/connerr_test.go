package redisstate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// TestOpenPermanentErrorsFailAtOnce is the regression test of redis-9: a
// server that answers with a refusal retrying cannot change (a wrong or
// missing password, Cluster seeds against a server without Cluster, a
// Sentinel master set against a plain server, TLS to a plain port) fails
// Open at once with the server's answer, not after the 10 s retry meant
// for a Redis that does not answer yet.
func TestOpenPermanentErrorsFailAtOnce(t *testing.T) {
	plain := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	pw := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	rc := raw(t, pw.URL)
	if err := rc.Do(context.Background(), rc.B().ConfigSet().ParameterValue().ParameterValue("requirepass", "s3cret").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(plain.URL, "redis://")
	pwHost := strings.TrimPrefix(pw.URL, "redis://")
	for _, tc := range []struct {
		name, url, want string
	}{
		{"wrong password", "redis://:wrong@" + pwHost, "WRONGPASS"},
		{"no password", "redis://" + pwHost, "NOAUTH"},
		{"cluster seeds", "redis://" + host + "?addr=" + host, "cluster"},
		{"sentinel", "redis://" + host + "?master_set=foo", "SENTINEL"},
		{"tls to a plain port", "rediss://" + host, "TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_, err := redisstate.Open(ctx, redisstate.Config{URL: tc.url})
			took := time.Since(start)
			t.Logf("%v after %v", err, took)
			if err == nil {
				t.Fatal("opened")
			}
			if took > 3*time.Second {
				t.Errorf("failed after %v, want at once", took)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Errorf("error %q does not give the server's answer (%s)", err, tc.want)
			}
		})
	}
}
