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
		cfg, err := ef.config(server.Config{}, stateRedis)
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
}
