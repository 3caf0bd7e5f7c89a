package sidecar

import (
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"nba/nba"
	"nba/nba/server"
	"nba/state"
)

// DefaultReserveTTL is how long a reservation of exact caps holds its
// slot when no impression quoting its decision follows (Config.ReserveTTL).
const DefaultReserveTTL = 10 * time.Minute

// maxReserveAttempts bounds the decisions made for one request whose
// reservation lost to another decision's: the first and two more, each
// from the state as the lost reservation found it.
const maxReserveAttempts = 3

// reserveCounters count what exact caps did. Safe for concurrent use.
type reserveCounters struct {
	made      atomic.Uint64 // reservations written
	conflicts atomic.Uint64 // reservations refused (a slot taken elsewhere): the request decided again
	refused   atomic.Uint64 // actions not given because no reservation could be made (fail closed)
}

// reserve reserves, before the decision d is answered, each action it
// gives under exact caps (nba.Catalog.ExactCaps), in one atomic write to
// the customer state that checks the caps. When another decision took a
// slot first (ErrConflict), the request is decided again from the state
// the refusal read, at most maxReserveAttempts times in all; the engine
// then counts the other decision's reservation and removes the action,
// explained as an exact cap reserved elsewhere. A refused write of
// several actions is made again one action at a time, best first, and
// the actions refused are removed (they may contend with each other,
// which deciding again would not change). When no reservation can
// be made (the state unavailable, or still conflicting on the last
// attempt), the exact-capped actions are removed from d: an exact cap
// fails closed. Control-group decisions give nothing and reserve nothing.
func (s *Sidecar) reserve(sc *scratch, req *server.DecideRequest, d *nba.Decision, now time.Time) error {
	cat := s.engine.Catalog()
	if !cat.HasExact() || req.CustomerID == "" || !req.At.IsZero() {
		return nil // a decision as of another time reserves nothing
	}
	ch := cat.ChannelIndex(req.Channel)
	// Copied: the ids are borrowed from the request and the state may
	// keep them (an interned customer id, a reservation's decision).
	var customer, decision string
	for attempt := 1; ; attempt++ {
		if d.Control {
			return nil
		}
		sc.resv = sc.resv[:0]
		for i := range d.Actions {
			a := d.Actions[i].Action
			sc.caps = cat.ExactCaps(sc.caps[:0], a, ch)
			if len(sc.caps) == 0 {
				continue
			}
			if customer == "" {
				customer, decision = strings.Clone(req.CustomerID), strings.Clone(req.DecisionID)
			}
			r := state.Reservation{Customer: customer, Decision: decision, Action: a.ID, Group: a.Group, Channel: req.Channel,
				At: now, Expires: now.Add(s.cfg.ReserveTTL)}
			for _, c := range sc.caps {
				r.Caps = append(r.Caps, state.ExactCap{Kind: kindOf(c.Scope), Key: c.Key, Window: c.Window, Max: c.Max})
			}
			sc.resv = append(sc.resv, r)
		}
		if len(sc.resv) == 0 {
			return nil
		}
		err := s.state.Reserve(sc.resv...)
		if err == nil {
			s.resv.made.Add(uint64(len(sc.resv)))
			return nil
		}
		conflict := errors.Is(err, state.ErrConflict)
		if conflict {
			s.resv.conflicts.Add(1)
		}
		if conflict && len(sc.resv) > 1 {
			// Actions of one decision can contend for one slot (two
			// actions under one exact group cap), which deciding again
			// would not change: reserve them one by one, best first.
			s.reserveEach(sc, cat, ch, d)
			return nil
		}
		if !conflict || attempt == maxReserveAttempts {
			s.dropExact(cat, ch, d, conflict, nil)
			return nil
		}
		if err := s.engine.Decide(&sc.req, d); err != nil {
			return err
		}
	}
}

// reserveEach reserves the actions of sc.resv one at a time, in d's
// order, and removes from d those refused or not written.
func (s *Sidecar) reserveEach(sc *scratch, cat *nba.Catalog, ch int, d *nba.Decision) {
	kept := map[string]bool{}
	conflict := false
	for _, r := range sc.resv {
		err := s.state.Reserve(r)
		switch {
		case err == nil:
			s.resv.made.Add(1)
			kept[r.Action] = true
		case errors.Is(err, state.ErrConflict):
			s.resv.conflicts.Add(1)
			conflict = true
		}
	}
	s.dropExact(cat, ch, d, conflict, kept)
}

// dropExact removes from d the actions under exact caps, which could not
// be reserved (all but those in kept), and explains why.
func (s *Sidecar) dropExact(cat *nba.Catalog, ch int, d *nba.Decision, conflict bool, kept map[string]bool) {
	why := "customer state unavailable"
	if conflict {
		why = "its slots taken by concurrent decisions"
	}
	out := d.Actions[:0]
	for _, c := range d.Actions {
		caps := cat.ExactCaps(nil, c.Action, ch)
		if len(caps) == 0 || kept[c.Action.ID] {
			out = append(out, c)
			continue
		}
		s.resv.refused.Add(1)
		for i := range d.Explain {
			if e := &d.Explain[i]; e.Action == c.Action.ID && e.Stage == nba.StageChosen {
				// Count -1: no count hit the cap, the reservation failed.
				e.Stage, e.Reason, e.Rank = nba.StageContactPolicy, why, 0
				e.Policy = nba.PolicyHit{Scope: caps[0].Scope, Key: caps[0].Key, Outcome: caps[0].Outcome, Window: caps[0].Window,
					Max: caps[0].Max, Count: -1, Desc: caps[0].Desc}
			}
		}
	}
	clear(d.Actions[len(out):])
	d.Actions = out
}

// Reserved implements nba.ReservedHistory: the customer's live
// reservations under an exact cap.
func (lv *liveView) Reserved(scope nba.Scope, key string, now time.Time) int {
	if !lv.found {
		return 0
	}
	return lv.v.Reserved(kindOf(scope), key, now)
}
