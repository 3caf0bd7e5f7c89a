package redisstate_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"nba/state"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// raw returns a plain client of the server (no client-side cache), closed
// at cleanup.
func raw(t *testing.T, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestRecreatedKeyServesTheNewValue is the regression test of redis-1: a
// customer's hash deleted (erasure, DEL, FLUSHALL) and written again
// starts over at version 1; a backend that had decoded the old version 1
// must serve the new value, not the old one (the decode cache was keyed on
// the version), and so must a backend that writes the new value itself
// while holding the old one (remember kept the old entry over its own
// write). The last-good copy of a deleted customer is dropped too.
func TestRecreatedKeyServesTheNewValue(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	rc := raw(t, s.URL)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		remove func(a *redisstate.Backend, customer string)
	}{
		{"erase", func(a *redisstate.Backend, customer string) {
			if _, err := a.Erase(customer, state.Tombstone{}); err != nil {
				t.Fatal(err)
			}
			// The erased stub expires (state.ErasedStubTTL).
			if err := rc.Do(ctx, rc.B().Del().Key("{c:"+customer+"}").Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}},
		{"del", func(_ *redisstate.Backend, customer string) {
			if err := rc.Do(ctx, rc.B().Del().Key("{c:"+customer+"}").Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}},
		{"flushall", func(*redisstate.Backend, string) {
			if err := rc.Do(ctx, rc.B().Flushall().Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		for _, writer := range []string{"eraser", "reader"} {
			t.Run(tc.name+"/"+writer+" writes again", func(t *testing.T) {
				a := open(t, redisstate.Config{URL: s.URL, AllowVolatile: true})
				b := open(t, redisstate.Config{URL: s.URL, AllowVolatile: true})
				c := "c-" + tc.name + "-" + writer
				if err := a.RecordContact(impression(c, "old", t0)); err != nil {
					t.Fatal(err)
				}
				for _, be := range []*redisstate.Backend{a, b} {
					if got := count(t, be, c); got != 1 {
						t.Fatalf("before: %d impressions, want 1", got)
					}
				}
				tc.remove(a, c)
				time.Sleep(10 * time.Millisecond) // the invalidations arrive
				for i, be := range []*redisstate.Backend{a, b} {
					if got := count(t, be, c); got != 0 {
						t.Errorf("backend %d after the removal: %d impressions, want 0", i, got)
					}
				}
				// The new value is version 1 again, as the old one was.
				w := a
				if writer == "reader" {
					w = b
				}
				nw := impression(c, "new", t0)
				nw.Action = "other"
				if err := w.RecordContact(nw); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
				for i, be := range []*redisstate.Backend{a, b} {
					var v state.View
					if _, err := be.Load(ctx, []byte(c), &v); err != nil {
						t.Fatal(err)
					}
					old := v.Count(state.KindAction, "a", state.Impression, 24*time.Hour, t0.Add(time.Hour))
					nu := v.Count(state.KindAction, "other", state.Impression, 24*time.Hour, t0.Add(time.Hour))
					if old != 0 || nu != 1 {
						t.Errorf("backend %d after the new write: old impressions %d (want 0), new %d (want 1)", i, old, nu)
					}
				}
			})
		}
	}
}

// TestErasedStubHoldsNoDataAndExpires: an erasure leaves in place of the
// customer's hash its erased stub, with no data and an expiry of
// state.ErasedStubTTL (so that erased customers leave no keys behind);
// a restore of the customer over it keeps the restored value (no expiry).
func TestErasedStubHoldsNoDataAndExpires(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	rc := raw(t, s.URL)
	ctx := context.Background()
	b := open(t, redisstate.Config{URL: s.URL, AllowVolatile: true})
	if err := b.RecordContact(impression("c", "k1", t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Erase("c", state.Tombstone{Pseudonym: "p-c", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	m, err := rc.Do(ctx, rc.B().Hgetall().Key("{c:c}").Build()).AsStrMap()
	if err != nil || len(m) != 1 || m["e"] != "1" {
		t.Errorf("stub %v %v, want only e=1", m, err)
	}
	pttl, err := rc.Do(ctx, rc.B().Pttl().Key("{c:c}").Build()).AsInt64()
	if err != nil || pttl <= 0 || pttl > state.ErasedStubTTL.Milliseconds() {
		t.Errorf("stub PTTL %d %v, want in (0, %d]", pttl, err, state.ErasedStubTTL.Milliseconds())
	}
	if err := b.RecordContact(impression("c", "k2", t0)); state.KindOf(err) != state.ErrErased {
		t.Errorf("write over the stub: %v, want ErrErased", err)
	}
	if err := b.Restore(state.CustomerDump{ID: "c", Contacts: []state.Contact{{Action: "a", Outcome: state.Impression, At: t0}}}); err != nil {
		t.Fatal(err)
	}
	pttl, err = rc.Do(ctx, rc.B().Pttl().Key("{c:c}").Build()).AsInt64()
	if err != nil || pttl != -1 {
		t.Errorf("restored customer's PTTL %d %v, want -1 (none)", pttl, err)
	}
	if got := count(t, b, "c"); got != 1 {
		t.Errorf("restored customer: %d impressions, want 1", got)
	}
}
