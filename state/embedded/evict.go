package embedded

import (
	"fmt"
	"slices"
	"time"

	"nba/state"
)

// SetInSnapshot tells the store which customers are in the feature
// snapshot: those are never evicted, the others are bounded by
// Config.MaxCustomers. f is called by the eviction pass, concurrently with
// everything else; it must be safe for concurrent use and cheap. Call it
// again when the snapshot changes (it recounts). Until it is called nothing
// is evicted: at start-up the state is replayed before the snapshot is
// loaded. A store without a snapshot bounds every customer with
// SetInSnapshot(func(string) bool { return false }).
func (s *Store) SetInSnapshot(f func(customer string) bool) {
	s.inSnapshot.Store(&f)
	s.liveBase.Store(int64(s.st.customers.Load()) - int64(s.created.Load())) // recount at worst
	s.kickEviction()
}

// evictSlack: a pass evicts down to 1/evictSlack below the bound, so that
// passes (a scan of every customer and one fsync) run once per
// MaxCustomers/evictSlack new customers, not once per customer.
const evictSlack = 16

func (s *Store) kickEviction() {
	select {
	case s.evictKick <- struct{}{}:
	default:
	}
}

func (s *Store) evictLoop() {
	for {
		select {
		case <-s.stop:
			return
		case <-s.evictKick:
			// An error (the log cannot be written) leaves the bound
			// exceeded: the next new customer tries again.
			s.evict()
		}
	}
}

// evict counts the customers with live state who are not in the snapshot
// and, if there are more than Config.MaxCustomers, evicts the least
// recently written of them down to MaxCustomers minus 1/evictSlack (so a pass
// runs once per many new customers, not once per customer). A customer
// written since the count is spared. The evictions are logged as one append
// before they are applied. It returns how many customers it evicted.
func (s *Store) evict() (int, error) {
	max := s.cfg.MaxCustomers
	if max <= 0 {
		return 0, nil
	}
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	type candidate struct {
		lsn    uint64
		id     string
		stripe int
	}
	f := s.inSnapshot.Load()
	if f == nil {
		return 0, nil
	}
	in := *f
	created := s.created.Load()
	var cands []candidate
	for i := range s.stripes {
		st := &s.stripes[i]
		st.mu.RLock() // delays only the insertion of new customers of the stripe
		for id, e := range st.m {
			if !in(id) {
				cands = append(cands, candidate{lsn: e.p.Load().Seq(), id: id, stripe: i})
			}
		}
		st.mu.RUnlock()
	}
	live := len(cands)
	defer func() { s.liveBase.Store(int64(live) - int64(created)) }()
	if live <= max {
		return 0, nil
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		switch {
		case a.lsn < b.lsn:
			return -1
		case a.lsn > b.lsn:
			return 1
		}
		return 0
	})
	victims := cands[:live-(max-max/evictSlack)]
	locks := make([]int, 0, len(victims))
	for _, v := range victims {
		locks = append(locks, v.stripe)
	}
	defer s.lockWriters(locks)()
	recs := make([][]byte, 0, len(victims))
	kept := victims[:0]
	now := time.Now().UnixNano()
	for _, v := range victims {
		st := &s.stripes[v.stripe]
		st.mu.RLock()
		e := st.m[v.id]
		st.mu.RUnlock()
		if e == nil || e.p.Load().Seq() != v.lsn {
			continue // written since the count: recently active
		}
		r := state.ForgetRecord(v.id, now)
		r.SetSeq(s.lsn.Add(1))
		recs = append(recs, state.AppendRecord(nil, &r))
		kept = append(kept, v)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if err := s.log.Append(recs...); err != nil {
		return 0, fmt.Errorf("cannot evict customers: %w", s.logError(err))
	}
	for _, v := range kept {
		s.forget(&s.stripes[v.stripe], v.id, ^uint64(0))
	}
	live -= len(kept)
	s.st.evicted.Add(uint64(len(kept)))
	return len(kept), nil
}

// forget drops a customer's state if it was last written before lsn. The
// caller holds the stripe's wmu (or is replaying, single-threaded).
func (s *Store) forget(st *stripe, customer string, lsn uint64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	e := st.m[customer]
	if e == nil || e.p.Load().Seq() >= lsn {
		return false
	}
	delete(st.m, customer)
	s.st.customers.Add(^uint64(0))
	return true
}
