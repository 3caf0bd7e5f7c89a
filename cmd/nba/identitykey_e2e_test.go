package main

import (
	"strings"
	"testing"
	"time"

	"nba/state/redis/redistest"
)

// TestReplicasOtherIdentityKeyRefusedE2E is the regression test of
// replicas with different NBA_IDENTITY_KEY on one Redis starting silently
// (one e-mail then resolved to two people): a replica, or nba state
// export, with another key than the one recorded is refused at start,
// naming the key to set; with the same key they start.
func TestReplicasOtherIdentityKeyRefusedE2E(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	dir := exportDemoWithIdentity(t)
	t.Setenv("NBA_IDENTITY_KEY", "e2e-identity-key-0123456789")
	args := func() []string {
		return []string{"-bundle", dir, "-state", t.TempDir(), "-state.redis", rs.URL, "-state.redis.allowVolatile", "-decisionlog=false"}
	}
	export := func() (int, string) {
		code, _, stderr := runNBA(t, "state", "export", "-bundle", dir, "-state.redis", rs.URL, "-state.redis.allowVolatile", "-out", t.TempDir()+"/x.jsonl")
		return code, stderr
	}
	startServe(t, args()...)
	startServe(t, args()...)
	if code, stderr := export(); code != 0 {
		t.Fatalf("state export with the same identity key: exit %d\n%s", code, stderr)
	}

	t.Setenv("NBA_IDENTITY_KEY", "e2e-other-key-0123456789ab")
	p := launch(t, args()...)
	select {
	case <-p.exited:
	case <-time.After(waitDeadline):
		t.Fatal("a replica with another identity key kept running")
	}
	if !p.logs.contains("another identity key") || !p.logs.contains("NBA_IDENTITY_KEY") {
		t.Errorf("the refusal does not say why or what to do:\n%s", p.logs)
	}
	if code, stderr := export(); code == 0 || !strings.Contains(stderr, "another identity key") {
		t.Errorf("state export with another identity key: exit %d, want a refusal\n%s", code, stderr)
	}
}
