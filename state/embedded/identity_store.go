package embedded

import (
	"context"
	"sync"

	"nba/state"
)

// The embedded store's side of identity stitching (IdentityBackend): an
// identity record is a log record like any other, and the identifier index
// is a map in memory, built on first use from the profiles' identifiers
// (which the log and checkpoints keep) and kept by Identities from then on.

// storeIndex is the embedded identifier index.
type storeIndex struct {
	once sync.Once
	mu   sync.RWMutex
	m    map[string]string // identifier key → profile id
}

var _ state.IdentityBackend = (*Store)(nil)

// IdentityModel implements IdentityBackend.
func (s *Store) IdentityModel() *state.Model { return s.Model }

// WriteRecord implements IdentityBackend: the record is logged and applied
// as every write is, atomically per customer.
func (s *Store) WriteRecord(_ context.Context, r *state.Record) (bool, error) {
	recs := []state.Record{*r}
	w, err := s.write(recs)
	return w.dups > 0, err
}

// Get implements IdentityBackend.
func (s *Store) Get(_ context.Context, customer string) (*state.Customer, error) {
	st := &s.stripes[s.stripeOf(customer)]
	st.mu.RLock()
	e := st.m[customer]
	st.mu.RUnlock()
	if e == nil {
		return nil, nil
	}
	return e.p.Load(), nil
}

func (s *Store) index() *storeIndex {
	x := &s.idx
	x.once.Do(func() {
		m, dropped := map[string]string{}, map[string]string{}
		for i := range s.stripes {
			st := &s.stripes[i]
			st.mu.RLock()
			for _, e := range st.m {
				c := e.p.Load()
				if to, _ := c.Moved(); to != "" {
					continue
				}
				for _, id := range c.Identifiers() {
					m[id.Key()] = c.ID()
				}
				c.Dropped(func(key, fresh string) { dropped[key] = max(dropped[key], fresh) })
			}
			st.mu.RUnlock()
		}
		// An identifier a profile dropped by a bound names its fresh
		// anonymous profile (the latest, FreshID's time), unless linked.
		for key, fresh := range dropped {
			if _, ok := m[key]; !ok {
				m[key] = fresh
			}
		}
		x.mu.Lock()
		x.m = m
		x.mu.Unlock()
	})
	return x
}

// IndexGet implements IdentityBackend: a map lookup.
func (s *Store) IndexGet(_ context.Context, key string, _ bool) (string, error) {
	x := s.index()
	x.mu.RLock()
	v := x.m[key]
	x.mu.RUnlock()
	return v, nil
}

// IndexClaim implements IdentityBackend.
func (s *Store) IndexClaim(_ context.Context, key, customer string) (string, error) {
	x := s.index()
	x.mu.Lock()
	defer x.mu.Unlock()
	if v, ok := x.m[key]; ok {
		return v, nil
	}
	x.m[key] = customer
	return customer, nil
}

// IndexSet implements IdentityBackend.
func (s *Store) IndexSet(_ context.Context, key, customer string) error {
	x := s.index()
	x.mu.Lock()
	x.m[key] = customer
	x.mu.Unlock()
	return nil
}

// IndexDelete implements IdentityBackend.
func (s *Store) IndexDelete(_ context.Context, key, customer string) error {
	x := s.index()
	x.mu.Lock()
	if x.m[key] == customer {
		delete(x.m, key)
	}
	x.mu.Unlock()
	return nil
}
