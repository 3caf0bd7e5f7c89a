package sidecar

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"nba/nba/server"
	"nba/state"
)

// decideResolver resolves a decide request's "ids" when the identifier
// index cannot be read (state on Redis out of reach): a decision must not
// fail for it, as a decision by customer_id does not. It is a second
// state.Identities over the same backend, used only by the decide path,
// whose index reads go through lastIndex: on a read that fails, the
// profile this process last read for the identifier, else none (the
// identifier's anonymous profile, as state.Identities names it, hashed
// namespaces included). The decision's state read then fails too, so it is
// answered "state":"stale" from the last copy held, as by customer_id.
// Writes (feedback, events, consent, identify) never use it: they answer
// 503 when the index cannot be read. Safe for concurrent use.
type decideResolver struct {
	x    *state.Identities
	last *lastIndex
}

func newDecideResolver(ib state.IdentityBackend, key []byte, c *state.IdentityConfig, now func() time.Time) (*decideResolver, error) {
	last := &lastIndex{IdentityBackend: ib}
	x := state.NewIdentities(last, key)
	x.SetClock(now)
	if err := x.Configure(c); err != nil {
		return nil, err
	}
	return &decideResolver{x: x, last: last}, nil
}

// lastIndexMax bounds lastIndex: past it, a shard is emptied (the
// fallback is best effort; the index on the backend is the truth).
const lastIndexMax = 1 << 16

// lastIndex is an IdentityBackend whose cached index reads remember their
// answer by index key, and answer it (or none) when the backend cannot be
// read. The keys are the index's own (hashed namespaces hashed), as the
// client-side cache of the Redis backend holds them. Safe for concurrent
// use.
type lastIndex struct {
	state.IdentityBackend
	shards [16]struct {
		mu sync.Mutex
		m  map[string]string
	}
}

func (l *lastIndex) shard(key string) int {
	return int(maphash.String(lastIndexSeed, key) % uint64(len(l.shards)))
}

var lastIndexSeed = maphash.MakeSeed()

// IndexGet implements state.IdentityBackend.
func (l *lastIndex) IndexGet(ctx context.Context, key string, cached bool) (string, error) {
	v, err := l.IdentityBackend.IndexGet(ctx, key, cached)
	sh := &l.shards[l.shard(key)]
	if err == nil {
		sh.mu.Lock()
		if old, ok := sh.m[key]; !ok || old != v {
			if sh.m == nil || len(sh.m) >= lastIndexMax/len(l.shards) {
				sh.m = map[string]string{}
			}
			sh.m[strings.Clone(key)] = v // key may be the caller's reused buffer
		}
		sh.mu.Unlock()
		return v, nil
	}
	if !errors.Is(err, state.ErrUnavailable) {
		return v, err
	}
	sh.mu.Lock()
	v = sh.m[key]
	sh.mu.Unlock()
	return v, nil
}

// forget drops what is remembered of the profiles (an erasure).
func (l *lastIndex) forget(profiles []string) {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for k, v := range sh.m {
			if slices.Contains(profiles, v) {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}

// resolveForDecide is resolveVia (without provenance) for the decide path: an index out of
// reach does not fail the decision (decideResolver), and while the state
// is known to be down the index read waits at most as long as the decision
// waits for the customer's state.
func (s *Sidecar) resolveForDecide(customerID string, ids []server.Field) (string, error) {
	if customerID != "" || len(ids) == 0 || s.decideIDs == nil {
		id, _, err := s.resolveVia(customerID, ids, false)
		return id, err
	}
	if s.state.Err() == nil {
		// The usual case, without a timer (it would allocate): a read
		// that fails still falls back.
		id, _, err := s.resolveWith(context.Background(), s.decideIDs.x, ids, false)
		return id, err
	}
	wait := s.cfg.StateRedisReadTimeout
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id, _, err := s.resolveWith(ctx, s.decideIDs.x, ids, false)
	return id, err
}
