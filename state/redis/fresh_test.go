package redisstate

import (
	"context"
	"testing"

	"nba/state/redis/redistest"
)

// TestFreshMarks: a value read is answered locally only while no
// invalidation of its customer, and no flush, has come since the read was
// sent; an invalidation that arrives while the read is in flight (between
// the token and the mark) keeps it unmarked, else the stale value would
// be served until the TTL (Redis sends one invalidation per read).
func TestFreshMarks(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	b, err := Open(context.Background(), Config{URL: s.URL, AllowVolatile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sh := b.shard("x")
	fresh := func() bool { _, ok := b.freshString("x"); return ok }
	for _, tc := range []struct {
		name       string
		inFlight   func() // between the read's token and its mark
		afterMark  func()
		wantMarked bool
	}{
		{"no invalidation", func() {}, func() {}, true},
		{"invalidation of the customer in flight", func() { b.invalidateKey("{c:x}") }, func() {}, false},
		{"invalidation of another customer's key in flight", func() { b.invalidateKey("{c:other}") }, func() {}, sh != b.shard("other")},
		{"flush in flight", func() { b.invalidate(nil) }, func() {}, false},
		{"invalidation after the mark", func() {}, func() { b.invalidateKey("{c:x}") }, false},
		{"flush after the mark", func() {}, func() { b.invalidate(nil) }, false},
		{"another key of the tag", func() {}, func() { b.invalidateKey("{c:x}:features") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.invalidateKey("{c:x}")
			tok := b.token(sh)
			tc.inFlight()
			b.markFresh(sh, tok, "x", value{ver: 1}, 0)
			tc.afterMark()
			if got := fresh(); got != tc.wantMarked {
				t.Errorf("fresh %v, want %v", got, tc.wantMarked)
			}
		})
	}
}
