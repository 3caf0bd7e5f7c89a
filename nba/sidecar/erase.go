package sidecar

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nba/nba/server"
	"nba/state"
)

// Erasure (DELETE /admin/customers/{id}): EraseCustomer removes what the
// sidecar keeps of a customer, and keeps a tombstone so that nothing
// brings it back for Config.ErasureKeep:
//
//   - live state on the backend (contacts, caps, overlay fields, journeys,
//     consent, idempotency keys), durably (the embedded store then
//     checkpoints, so its log no longer names the customer);
//   - impressions awaiting an outcome (their observations are never
//     learned; on Redis, for every action of the catalog) and what the
//     decision memory remembers of its decisions. Decision features shared
//     on Redis (learnshare.go) are keyed by decision id and expire with
//     their TTL (the response window plus ten minutes), and cached model
//     scores (Config.ScoreCacheBytes) age out of their cache: neither is
//     read for the customer again, who is anonymous from now on;
//   - the tombstone: a keyed hash of the id (HMAC-SHA256 with
//     Config.ErasureKey, the first 16 bytes in hex), never the id, kept on
//     the backend (shared by every replica on Redis). While it lasts,
//     feedback, events and consent for the id answer 410 erased, decisions
//     write no journey change for it, and decisions treat the customer
//     as anonymous: its snapshot row is absent (the upstream must drop the
//     row from the snapshots it builds within Config.ErasureKeep);
//   - the decision log records the erasure by the log's pseudonym, and
//     every reader of the log skips that pseudonym's records (package
//     declog).
//
// Without Config.ErasureKey, the state, pending observations and memory
// are still erased, but no tombstone is kept: a late event recreates the
// customer, and the snapshot row is served again. nba serve warns at start.
//
// Identity linking adds the identifiers linked to a customer through the
// linked argument of EraseCustomer: each is erased the same way.

// DefaultErasureKeep is Config.ErasureKeep's default.
const DefaultErasureKeep = 30 * 24 * time.Hour

// tombRefresh is how often a decision path reads the backend's tombstones
// again (erasures through other replicas reach it within this long).
const tombRefresh = 10 * time.Second

// tombCache is the set of tombstoned pseudonyms a decision checks, read
// from the backend every tombRefresh.
type tombCache struct {
	set       atomic.Pointer[map[string]struct{}]
	read      atomic.Int64 // unix ns of the last read
	reading   atomic.Bool
	macs      sync.Pool // *keyedMAC with the erasure key
	key       []byte
	readFails atomic.Uint64
}

// pseudonym appends the hex pseudonym of id to dst (32 bytes).
func (t *tombCache) pseudonym(dst []byte, id string) []byte {
	m, _ := t.macs.Get().(*keyedMAC)
	if m == nil {
		m = &keyedMAC{h: hmac.New(sha256.New, t.key), sum: make([]byte, 0, sha256.Size)}
	}
	m.h.Reset()
	m.h.Write(bytesOf(id))
	m.sum = m.h.Sum(m.sum[:0])
	dst = hex.AppendEncode(dst, m.sum[:16])
	t.macs.Put(m)
	return dst
}

// keyedMAC is a pooled HMAC with its output buffer, so that a decision's
// check allocates nothing.
type keyedMAC struct {
	h   hash.Hash
	sum []byte
}

// Pseudonym is the tombstone's name of a customer id, "" without an
// erasure key.
func (s *Sidecar) Pseudonym(id string) string {
	if len(s.tombs.key) == 0 {
		return ""
	}
	return string(s.tombs.pseudonym(nil, id))
}

// erasedCached reports whether a decision must treat id as erased: its
// pseudonym is in the set read from the backend. It costs a map lookup
// when no tombstone exists, an HMAC otherwise; it does not allocate.
func (s *Sidecar) erasedCached(id string) bool {
	t := &s.tombs
	if len(t.key) == 0 || id == "" {
		return false
	}
	if now := s.now().UnixNano(); now-t.read.Load() > int64(tombRefresh) && t.reading.CompareAndSwap(false, true) {
		go func() {
			defer t.reading.Store(false)
			s.refreshTombstones()
		}()
	}
	set := t.set.Load()
	if set == nil || len(*set) == 0 {
		return false
	}
	var buf [32]byte
	_, ok := (*set)[string(t.pseudonym(buf[:0], id))]
	return ok
}

// refreshTombstones reads the backend's tombstones into the cache.
func (s *Sidecar) refreshTombstones() {
	ts, err := s.state.Tombstones(s.now())
	s.tombs.read.Store(s.now().UnixNano())
	if err != nil {
		s.tombs.readFails.Add(1)
		return // the last set read keeps serving
	}
	set := make(map[string]struct{}, len(ts))
	for _, x := range ts {
		set[x.Pseudonym] = struct{}{}
	}
	s.tombs.set.Store(&set)
}

// checkErased answers 410 erased for a write of an erased customer,
// reading the backend (an erasure through another replica counts at
// once).
func (s *Sidecar) checkErased(id string) error {
	if len(s.tombs.key) == 0 {
		return nil
	}
	gone, err := s.state.Tombstoned(s.Pseudonym(id), s.now())
	if err != nil {
		return s.stateError(err)
	}
	if !gone && s.ident != nil && strings.HasPrefix(id, "~") {
		// An anonymous profile's forward leads to the person it was
		// merged into: a write through it must not bring them back.
		if to := s.ident.Follow(id); to != id {
			if gone, err = s.state.Tombstoned(s.Pseudonym(to), s.now()); err != nil {
				return s.stateError(err)
			}
		}
	}
	if gone {
		return server.Erasedf("the customer was erased; its data is not accepted until %s after the erasure", s.cfg.ErasureKeep)
	}
	return nil
}

// Erasure is what EraseCustomer removed, per identifier.
type Erasure struct {
	// Pseudonym names the tombstone; empty without an erasure key.
	Pseudonym string `json:"pseudonym,omitempty"`
	// State is what the backend removed.
	State state.Erased `json:"state"`
	// Pending is the impressions awaiting an outcome dropped.
	Pending int `json:"pending_observations"`
	// DecisionMemory is the remembered decisions cleared.
	DecisionMemory int `json:"decision_memory"`
	// TombstoneUntil is when the tombstone ends; zero without one.
	TombstoneUntil time.Time `json:"tombstone_until,omitzero"`
	// DecisionLog says the erasure was recorded in the decision log.
	DecisionLog bool `json:"decision_log"`
}

// EraseCustomer erases id and each linked identifier (see the comment at
// the top of erase.go) and reports what it removed from each, in order.
// An error stops at the identifier it failed on: those before it are
// erased.
func (s *Sidecar) EraseCustomer(id string, linked ...string) ([]Erasure, error) {
	var out []Erasure
	for _, x := range append([]string{id}, linked...) {
		e, err := s.eraseOne(x)
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (s *Sidecar) eraseOne(id string) (Erasure, error) {
	now := s.now()
	var e Erasure
	t := state.Tombstone{}
	if len(s.tombs.key) > 0 {
		e.Pseudonym = s.Pseudonym(id)
		t = state.Tombstone{Pseudonym: e.Pseudonym, Until: now.Add(s.cfg.ErasureKeep)}
	}
	st, err := s.state.Erase(id, t)
	if err != nil {
		return e, s.stateErrorOn(err, opChange)
	}
	e.State, e.TombstoneUntil = st, t.Until
	if t.Pseudonym != "" {
		// This replica's decisions see it at once.
		set := map[string]struct{}{t.Pseudonym: {}}
		if old := s.tombs.set.Load(); old != nil {
			for p := range *old {
				set[p] = struct{}{}
			}
		}
		s.tombs.set.Store(&set)
	}
	e.Pending = s.pending.eraseCustomer(id)
	if s.share != nil {
		var actions []string
		for _, a := range s.parts.Load().catalog.Actions() {
			actions = append(actions, a.ID)
		}
		ctx, cancel := context.WithTimeout(context.Background(), learnShareTimeout)
		n, err := s.share.ls.ErasePending(ctx, id, actions)
		cancel()
		if err != nil {
			return e, server.StateUnavailablef("cannot erase the shared impressions awaiting an outcome: %v", err)
		}
		e.Pending += n
	}
	e.DecisionMemory = s.engine.ForgetCustomer(id)
	if s.declog != nil {
		if err := s.declog.LogErasure(id, now); err != nil {
			return e, fmt.Errorf("cannot record the erasure in the decision log: %w", err)
		}
		e.DecisionLog = true
	}
	return e, nil
}

// eraseCustomer drops the customer's impressions awaiting an outcome.
func (p *pending) eraseCustomer(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k := range p.at {
		if k.customer == id {
			delete(p.at, k)
			n++
		}
	}
	p.changes += uint64(n)
	return n
}

// AppendErasure implements server.ConsentBackend.
// The identifiers Config.LinkedIDs returns are erased with id, listed
// under "linked" by pseudonym (never by id).
func (s *Sidecar) AppendErasure(dst []byte, id string) ([]byte, error) {
	var linked []string
	if s.cfg.LinkedIDs != nil {
		linked = s.cfg.LinkedIDs(id)
	}
	if s.ident != nil {
		// The whole person: the profile holding the state now, every
		// identifier linked to it (out of the index) and the profiles
		// merged into it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		profiles, err := s.ident.Forget(ctx, id)
		cancel()
		if err != nil {
			return dst, s.identityErrorOn(err, opChange)
		}
		for _, p := range profiles {
			if p != id && !slices.Contains(linked, p) {
				linked = append(linked, p)
			}
		}
	}
	es, err := s.EraseCustomer(id, linked...)
	if s.decideIDs != nil {
		// The decide path's memory of resolutions must not lead to them.
		s.decideIDs.last.forget(append(slices.Clip(linked), id))
	}
	if err != nil {
		return dst, err
	}
	// found says whether anything at all was removed: an erasure of an id
	// nothing was kept for answers found false (and keeps its tombstone,
	// which refuses the id's later data), rather than reading as a
	// success that removed something.
	found := false
	for _, e := range es {
		found = found || e.State.Found || e.Pending > 0 || e.DecisionMemory > 0
	}
	out := map[string]any{"erased": es[0], "tombstone": es[0].Pseudonym != "", "found": found}
	if len(es) > 1 {
		out["linked"] = es[1:]
	}
	b, err := json.Marshal(out)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}
