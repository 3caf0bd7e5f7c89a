package redisstate_test

import (
	"context"
	"strings"
	"testing"

	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// TestOtherIdentityKeyRefused is the regression test of replicas with
// different identity keys on one Redis starting silently (one e-mail then
// resolved to two people): the first records its key's fingerprint, one
// with the same key opens, one with another key is refused naming both
// fingerprints and what to do, and one hashing nothing is not held to it.
func TestOtherIdentityKeyRefused(t *testing.T) {
	s := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	cfg := portConfig(t)
	const a, b = "hmac-sha256:aaaa1111", "hmac-sha256:bbbb2222"
	// A tool checks and records nothing: the first sidecar records its key.
	open(t, redisstate.Config{URL: s.URL, State: cfg, IdentityKey: b, IdentityKeyCheckOnly: true})
	open(t, redisstate.Config{URL: s.URL, State: cfg, IdentityKey: a})
	open(t, redisstate.Config{URL: s.URL, State: cfg, IdentityKey: a})
	if bk, err := redisstate.Open(context.Background(), redisstate.Config{URL: s.URL, State: cfg, IdentityKey: b, IdentityKeyCheckOnly: true}); err == nil {
		bk.Close()
		t.Error("a tool with another identity key: opened; want refused")
	}
	open(t, redisstate.Config{URL: s.URL, State: cfg})
	bk, err := redisstate.Open(context.Background(), redisstate.Config{URL: s.URL, State: cfg, IdentityKey: b})
	if err == nil {
		bk.Close()
		t.Fatal("Open with another identity key: started; want refused")
	}
	for _, want := range []string{a, b, "NBA_IDENTITY_KEY", "{nba:identity-key}"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not name %s", err, want)
		}
	}
}
