package main

import (
	"flag"
	"strings"
	"testing"

	"nba/nba/server"
)

// TestEventStreamFlags: the -events.redis.* flags give the consumer's
// configuration, with the stream's URL defaulting to -state.redis, and
// refuse a stream without a group, a group without a stream, and a stream
// without any Redis URL.
func TestEventStreamFlags(t *testing.T) {
	f := func(stateRedis, wantErr string, args ...string) {
		t.Helper()
		fset := flag.NewFlagSet("serve", flag.ContinueOnError)
		var ef eventStreamFlags
		ef.register(fset)
		if err := fset.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg, err := ef.config(fset, server.Config{}, stateRedis)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("%v: error %v; want one saying %q", args, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if len(args) == 0 {
			if cfg.Stream != "" {
				t.Errorf("no flags: stream %q", cfg.Stream)
			}
			return
		}
		want := stateRedis
		if fset.Lookup("events.redis.url").Value.String() != "" {
			want = fset.Lookup("events.redis.url").Value.String()
		}
		if cfg.Stream != "s" || cfg.Group != "g" || cfg.URL != want || cfg.Decoder == nil {
			t.Errorf("%v: config %+v", args, cfg)
		}
	}
	f("", "")
	f("redis://a:6379", "", "-events.redis.stream", "s", "-events.redis.group", "g")
	f("redis://a:6379", "", "-events.redis.stream", "s", "-events.redis.group", "g", "-events.redis.url", "redis://b:6379")
	f("", "", "-events.redis.stream", "s", "-events.redis.group", "g", "-events.redis.url", "redis://b:6379")
	f("", "needs -events.redis.url", "-events.redis.stream", "s", "-events.redis.group", "g")
	f("redis://a:6379", "needs -events.redis.group", "-events.redis.stream", "s")
	f("redis://a:6379", "needs -events.redis.stream", "-events.redis.group", "g")
	// Regression: stream-only flags without a stream, and negative
	// counts and durations, were accepted without a word.
	f("redis://a:6379", "-events.redis.minIdle needs -events.redis.stream", "-events.redis.minIdle", "5s")
	f("redis://a:6379", "-events.redis.count needs -events.redis.stream", "-events.redis.count", "10")
	f("redis://a:6379", "-events.redis.consumer needs -events.redis.stream", "-events.redis.consumer", "c1")
	f("redis://a:6379", "-events.redis.count must not be negative", "-events.redis.stream", "s", "-events.redis.group", "g", "-events.redis.count", "-1")
	f("redis://a:6379", "-events.redis.minIdle must not be negative", "-events.redis.stream", "s", "-events.redis.group", "g", "-events.redis.minIdle", "-1s")
}

// TestRedisOnlyFlagsNeedRedis is the regression test of
// -state.redis.waitReplicas without -state.redis starting silently on the
// embedded state, and of negative -caps.reserveTTL accepted: serve, decide
// and batch refuse them before opening anything.
func TestRedisOnlyFlagsNeedRedis(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-state.redis.waitReplicas", "1"}, "-state.redis.waitReplicas needs -state.redis"},
		{[]string{"-state.redis.allowVolatile"}, "-state.redis.allowVolatile needs -state.redis"},
		{[]string{"-state.redis.readTimeout", "1s"}, "-state.redis.readTimeout needs -state.redis"},
		{[]string{"-state.redis", "redis://127.0.0.1:1", "-state.redis.waitReplicas", "-1"}, "-state.redis.waitReplicas must not be negative"},
		{[]string{"-caps.reserveTTL", "-1m"}, "-caps.reserveTTL must not be negative"},
	} {
		for _, cmd := range []struct {
			name string
			run  func([]string) error
			args []string
		}{
			// A bundle that does not exist: without the check, the
			// command fails opening it (and a serve never starts).
			{"serve", runServe, []string{"-bundle", "/nonexistent-bundle", "-http.addr", "127.0.0.1:0", "-admin.addr", "127.0.0.1:0", "-state", t.TempDir()}},
			{"decide", runDecide, []string{"-bundle", "/nonexistent-bundle", "-customer", "c1", "-channel", "web"}},
			{"batch", runBatch, []string{"-bundle", "/nonexistent-bundle", "-channel", "web"}},
		} {
			if tc.want == "-caps.reserveTTL must not be negative" && cmd.name == "decide" {
				continue // decide has no -caps.reserveTTL
			}
			t.Run(cmd.name+" "+strings.Join(tc.args, " "), func(t *testing.T) {
				err := cmd.run(append(append([]string(nil), cmd.args...), tc.args...))
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v; want one saying %q", err, tc.want)
				}
			})
		}
	}
}
