package embedded

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"nba/state"
)

// The embedded store's side of export and import (package state/stateio):
// the dump format and its checks are the model's (state.Model.Dump,
// Restored).

// Each calls fn with the state of every customer, in no particular order,
// until fn returns an error, which Each returns. Each customer's state is
// one consistent snapshot; writes during Each are seen or not. fn may keep
// the Customer.
func (s *Store) Each(fn func(*state.CustomerDump) error) error {
	asOf := s.asOf.Load()
	return s.each(func(cs *state.Customer) error { return fn(s.Dump(cs, asOf)) })
}

// Restore replaces the state of each customer in cs with the one given
// (all are checked first; on an ErrInvalid error none is restored). Fields
// the mappings do not have are dropped (Stats.ReplayDropped); per-customer
// limits of the Config apply (the newest contacts, keys and journeys are
// kept). Restoring a customer twice leaves the same state as once. The
// identifiers the customers hold are claimed in the identifier index
// (ClaimIdentifiers).
//
// Restore is not logged: restored state becomes durable at the next
// successful Checkpoint, which the caller makes before it reports success
// (a crash before it loses the restored customers, not what was written
// before). It is meant for loading state into a store that nothing else
// writes to, as nba state import does.
func (s *Store) Restore(cs ...state.CustomerDump) error {
	asOf := s.asOf.Load()
	next := make([]*state.Customer, len(cs))
	res := make([]state.Result, len(cs))
	for i := range cs {
		var err error
		if next[i], res[i], err = s.Restored(&cs[i], asOf); err != nil {
			return invalidf("cannot restore customer %d: %w", i, err)
		}
	}
	for i, n := range next {
		s.count(res[i])
		st := &s.stripes[s.stripeOf(n.ID())]
		st.wmu.Lock()
		n.SetSeq(s.lsn.Add(1))
		s.install(st, n.ID(), n)
		st.wmu.Unlock()
	}
	return state.ClaimIdentifiers(context.Background(), s.IndexClaim, cs)
}

// RecordContacts records contacts as RecordContact does and returns how
// many were duplicates (their ID remembered), not recorded: one durable
// write for a batch, for importers.
func (s *Store) RecordContacts(cs []state.Contact) (dups int, err error) {
	return s.recordContact(cs)
}

// RestoreTombstones keeps each tombstone until its Until, or a later end
// already kept (all are checked first; on an ErrInvalid error none is
// kept). Like Restore it is not logged: the next Checkpoint makes the
// tombstones durable.
func (s *Store) RestoreTombstones(ts ...state.Tombstone) error {
	for i, t := range ts {
		if err := s.CheckString("pseudonym", t.Pseudonym, true); err != nil {
			return invalidf("cannot restore tombstone %d: %w", i, err)
		}
	}
	s.tomb.mu.RLock()
	n := len(s.tomb.m)
	s.tomb.mu.RUnlock()
	if n+len(ts) > state.MaxTombstones {
		return unavailable(fmt.Errorf("cannot restore tombstones: %d kept and %d more exceed the limit of %d", n, len(ts), state.MaxTombstones))
	}
	for _, t := range ts {
		s.tomb.add(t.Pseudonym, t.Until.UnixNano())
	}
	return nil
}

// HashedIdentifiers reports whether a profile holds an identifier of a
// hashed namespace (its value "h:" and a keyed hash), which only the
// identity key it was hashed with resolves. It stops at the first one.
func (s *Store) HashedIdentifiers() bool {
	found := errors.New("found")
	err := s.each(func(c *state.Customer) error {
		for _, id := range c.Identifiers() {
			if strings.HasPrefix(id.Value, "h:") {
				return found
			}
		}
		return nil
	})
	return err == found
}
