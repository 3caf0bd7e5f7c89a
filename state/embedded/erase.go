package embedded

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"nba/state"
)

// tombstones is the embedded store's set: pseudonym → until (unix ns).
type tombstones struct {
	mu sync.RWMutex
	m  map[string]int64
}

func (t *tombstones) add(p string, until int64) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]int64{}
	}
	if until > t.m[p] {
		t.m[p] = until
	}
	t.mu.Unlock()
}

// erasedStubs are the customers erased within state.ErasedStubTTL:
// customer → until (unix ns, wall clock). Writes of them are refused
// (state.ErrErased). In memory only: a write in flight does not outlive
// the process. Expired ones are dropped at each checkpoint.
type erasedStubs struct {
	n  atomic.Int64 // len(m): a write reads only this when no stub lasts
	mu sync.Mutex
	m  map[string]int64
}

func (t *erasedStubs) add(customer string, now time.Time) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]int64{}
	}
	t.m[customer] = now.Add(state.ErasedStubTTL).UnixNano()
	t.n.Store(int64(len(t.m)))
	t.mu.Unlock()
}

// erased reports whether a stub of the customer lasts now.
func (t *erasedStubs) erased(customer string) bool {
	if t.n.Load() == 0 {
		return false // the usual case: no clock read, no lock
	}
	t.mu.Lock()
	u, ok := t.m[customer]
	t.mu.Unlock()
	return ok && u > time.Now().UnixNano()
}

// sweep drops the stubs expired at now.
func (t *erasedStubs) sweep(now time.Time) {
	if t.n.Load() == 0 {
		return
	}
	t.mu.Lock()
	for c, u := range t.m {
		if u <= now.UnixNano() {
			delete(t.m, c)
		}
	}
	t.n.Store(int64(len(t.m)))
	t.mu.Unlock()
}

// Erase removes the customer's state durably (a log record, then a
// checkpoint so that the log segments naming the customer are dropped)
// and keeps the tombstone. The raw id is in the log until that checkpoint
// completes; a failed checkpoint is counted (Stats.CheckpointErrors) and
// the next one drops them. Under the customer's writer lock it leaves the
// erased stub, so that a write decided before the erasure and waiting for
// the lock is refused rather than applied on the emptied state.
func (s *Store) Erase(customer string, t state.Tombstone) (state.Erased, error) {
	if err := s.CheckString("customer", customer, true); err != nil {
		return state.Erased{}, invalidf("cannot erase customer: %w", err)
	}
	if err := s.CheckString("pseudonym", t.Pseudonym, false); err != nil {
		return state.Erased{}, invalidf("cannot erase customer: %w", err)
	}
	if t.Pseudonym != "" {
		s.tomb.mu.RLock()
		n := len(s.tomb.m)
		s.tomb.mu.RUnlock()
		if n >= state.MaxTombstones {
			return state.Erased{}, unavailable(fmt.Errorf("cannot erase customer: %d tombstones, the limit", n))
		}
	}
	si := s.stripeOf(customer)
	st := &s.stripes[si]
	unlock := s.lockWriters([]int{si})
	st.mu.RLock()
	e := st.m[customer]
	st.mu.RUnlock()
	var old *state.Customer
	if e != nil {
		old = e.p.Load()
	}
	r := state.EraseRecord(customer, t.Pseudonym, t.Until.UnixNano())
	r.SetSeq(s.lsn.Add(1))
	if err := s.log.Append(state.AppendRecord(nil, &r)); err != nil {
		unlock()
		return state.Erased{}, fmt.Errorf("cannot erase customer: %w", s.logError(err))
	}
	if old != nil {
		s.forget(st, customer, ^uint64(0))
	}
	if t.Pseudonym != "" {
		s.tomb.add(t.Pseudonym, r.At())
	}
	s.stubs.add(customer, time.Now())
	unlock()
	s.Checkpoint() // counted on failure; see above
	return state.ErasedOf(old), nil
}

// Tombstoned reports whether the pseudonym's tombstone lasts at now.
func (s *Store) Tombstoned(pseudonym string, now time.Time) (bool, error) {
	s.tomb.mu.RLock()
	until, ok := s.tomb.m[pseudonym]
	s.tomb.mu.RUnlock()
	return ok && until > now.UnixNano(), nil
}

// Tombstones lists the tombstones that last at now.
func (s *Store) Tombstones(now time.Time) ([]state.Tombstone, error) {
	s.tomb.mu.RLock()
	defer s.tomb.mu.RUnlock()
	var ts []state.Tombstone
	for p, u := range s.tomb.m {
		if u > now.UnixNano() {
			ts = append(ts, state.Tombstone{Pseudonym: p, Until: time.Unix(0, u).UTC()})
		}
	}
	return ts, nil
}

// replayErase applies an erase record read from the log.
func (s *Store) replayErase(r *state.Record) bool {
	s.forget(&s.stripes[s.stripeOf(r.Customer())], r.Customer(), r.Seq())
	if p := r.Pseudonym(); p != "" {
		s.tomb.add(p, r.At())
	}
	return true
}
