package embedded

import (
	"fmt"
	"io"
	"time"

	"nba/state"
)

// The embedded store's checkpoints: the format is the model's
// (state.Model.NewCheckpointWriter, ReadCheckpoint); the store supplies its
// customers, sequence number, as-of and tombstones.

func (s *Store) writeCheckpoint(w io.Writer) error {
	cw := s.NewCheckpointWriter(w, s.lsn.Load(), s.asOf.Load())
	if err := s.each(cw.Customer); err != nil {
		return err
	}
	return cw.Finish(s.liveTombstones())
}

// each calls fn with every customer's current value, a stripe at a time:
// the stripe's values are collected under its read lock and fn runs
// without it, so fn may take its time (write a file, encode a dump).
func (s *Store) each(fn func(*state.Customer) error) error {
	var snaps []*state.Customer
	for i := range s.stripes {
		st := &s.stripes[i]
		snaps = snaps[:0]
		st.mu.RLock()
		for _, e := range st.m {
			snaps = append(snaps, e.p.Load())
		}
		st.mu.RUnlock()
		for _, cs := range snaps {
			if err := fn(cs); err != nil {
				return err
			}
		}
	}
	return nil
}

// liveTombstones returns the tombstones lasting now, for a checkpoint;
// expired ones are dropped from memory.
func (s *Store) liveTombstones() []state.Tombstone {
	now := time.Now().UnixNano()
	s.tomb.mu.Lock()
	defer s.tomb.mu.Unlock()
	ts := make([]state.Tombstone, 0, len(s.tomb.m))
	for p, u := range s.tomb.m {
		if u <= now {
			delete(s.tomb.m, p)
			continue
		}
		ts = append(ts, state.Tombstone{Pseudonym: p, Until: time.Unix(0, u).UTC()})
	}
	return ts
}

// loadCheckpoint replaces the store's (empty) state with a checkpoint body.
// Fields no longer mapped are dropped; per-customer limits of the current
// Config are applied.
func (s *Store) loadCheckpoint(r io.Reader) error {
	return s.ReadCheckpoint(r, state.CheckpointLoader{
		Header: func(seq uint64, asOf int64) {
			s.lsn.Store(seq)
			s.asOf.Store(asOf)
		},
		Customer:  s.loadCustomer,
		Tombstone: s.tomb.add,
	})
}

func (s *Store) loadCustomer(cs *state.Customer, res state.Result) error {
	s.count(res)
	st := &s.stripes[s.stripeOf(cs.ID())]
	if _, dup := st.m[cs.ID()]; dup {
		return fmt.Errorf("a customer appears twice (%d bytes of id)", len(cs.ID()))
	}
	e := &entry{}
	e.p.Store(cs)
	st.m[cs.ID()] = e
	s.st.customers.Add(1)
	return nil
}
