package redisstate_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"nba/state"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// TestOtherMappingsRefused is the regression test of the backend half of
// redis-6: a process whose profile mappings differ from the ones the
// customers were written with refuses to start, naming both fingerprints
// and what to do, instead of starting ready and failing every existing
// customer as "unavailable, retry later". With Remap it starts, and a
// customer written with the old mappings is a permanent error of its own
// kind (state.ErrMismatch), on reads and writes, not ErrUnavailable.
func TestOtherMappingsRefused(t *testing.T) {
	s := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	oldCfg := portConfig(t)
	newCfg := portConfig(t)
	newCfg.Mappings.Fields = map[string]string{"vip_flag": "bool"}
	for k, v := range oldCfg.Mappings.Fields {
		newCfg.Mappings.Fields[k] = v
	}
	a := open(t, redisstate.Config{URL: s.URL, State: oldCfg})
	if err := a.RecordContact(impression("mixcust", "1", t0)); err != nil {
		t.Fatal(err)
	}
	// The same mappings open again.
	open(t, redisstate.Config{URL: s.URL, State: oldCfg})

	_, err := redisstate.Open(context.Background(), redisstate.Config{URL: s.URL, State: newCfg})
	if !errors.Is(err, state.ErrMismatch) {
		t.Fatalf("Open with other mappings: %v, want ErrMismatch", err)
	}
	if n := len(regexp.MustCompile(`fingerprint [0-9a-f]{12}; this bundle's [0-9a-f]{12}`).FindString(err.Error())); n == 0 {
		t.Errorf("Open error %q does not name both fingerprints", err)
	}
	if !regexp.MustCompile(`nba state export.*nba state import`).MatchString(err.Error()) {
		t.Errorf("Open error %q does not say how to migrate", err)
	}

	b := open(t, redisstate.Config{URL: s.URL, State: newCfg, Remap: true})
	var v state.View
	if _, err := b.Load(context.Background(), []byte("mixcust"), &v); !errors.Is(err, state.ErrMismatch) || errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Load of a customer written with other mappings: %v, want ErrMismatch only", err)
	}
	if err := b.RecordContact(impression("mixcust", "2", t0)); !errors.Is(err, state.ErrMismatch) || errors.Is(err, state.ErrUnavailable) {
		t.Errorf("write to a customer written with other mappings: %v, want ErrMismatch only", err)
	}
	if k := state.KindOf(err); k != nil && k != state.ErrMismatch {
		t.Errorf("KindOf: %v", k)
	}
	if b.Err() != nil {
		t.Errorf("Err %v: one customer's mappings do not make the store unwritable", b.Err())
	}
	// A new customer is written with the new mappings; the old process
	// now refuses to start.
	if err := b.RecordContact(impression("newcust", "1", t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := redisstate.Open(context.Background(), redisstate.Config{URL: s.URL, State: oldCfg}); !errors.Is(err, state.ErrMismatch) {
		t.Errorf("Open with the old mappings after the remap: %v, want ErrMismatch", err)
	}
}
