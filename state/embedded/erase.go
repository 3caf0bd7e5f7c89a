package embedded

import (
	"fmt"
	"sync"
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

// Erase removes the customer's state durably (a log record, then a
// checkpoint so that the log segments naming the customer are dropped)
// and keeps the tombstone. The raw id is in the log until that checkpoint
// completes; a failed checkpoint is counted (Stats.CheckpointErrors) and
// the next one drops them.
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
	st := &s.stripes[s.stripeOf(customer)]
	unlock := s.lockWriters([]int{s.stripeOf(customer)})
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
