package state

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// A profile's identity part (custState.ident), nil for a profile that was
// never linked: its identifiers with provenance, and the marks of the merge
// protocol (Identities.merge):
//
//  1. mark: the absorbed profile B is marked "merging into A" (a write to
//     B's own value, atomic on every backend); from then on every write to
//     B fails with a MovedError and B's state is frozen;
//  2. absorb: A's value becomes the union of A and B's frozen state, in one
//     write that remembers the merge's receipt, so it applies once however
//     often it is retried; A keeps its own value from before (for unmerge);
//  3. forward: B becomes a stub that forwards to A and keeps its own value
//     from before (for unmerge); the identifier index is pointed at A.
//
// A reader or writer that meets a mark finishes the merge first (each step
// is idempotent), so a merge interrupted by a crash or a lost race is
// completed by whoever meets it next, and no write to either side is lost:
// a write to B after the mark fails and is retried on A after step 2.
type identPart struct {
	ids         []Identifier
	mergingInto string // step 1 done: B's writes are refused
	fwd         string // step 3 done: B is a stub
	receipt     string // of the merge mergingInto or fwd belongs to
	saved       []byte // stub: B's own value before the merge
	merges      []mergeReceipt

	// ttls are the namespaces' ttls as of the last link: an identifier
	// not used within its namespace's is dropped at the profile's next
	// write (noteWrite) and remembered in gone, newest last, so that the
	// index entry still pointing here resolves to its fresh anonymous
	// profile (FreshID) until a link repoints it.
	ttls []nsLimit
	gone []goneID
}

// goneID is an identifier dropped by its ttl or its namespace's max: its
// key and the anonymous profile it names from then on (its first one,
// AnonymousID, forwards to the profile that dropped it).
type goneID struct{ key, fresh string }

// maxGone bounds the dropped identifiers a profile remembers.
const maxGone = 64

// noteDropped sets p's identifiers to ids (p.ids after a link or absorb at
// at, unix ns) and remembers each identifier of p.ids not in ids as gone:
// one not used within its namespace's ttl names the fresh profile of its
// expiry, one dropped by its namespace's max that of at. An identifier of
// ids is no longer gone.
func (p *identPart) noteDropped(ids []Identifier, at int64) {
	gone := slices.Clone(p.gone)
	for _, id := range p.ids {
		if slices.ContainsFunc(ids, func(x Identifier) bool { return x.NS == id.NS && x.Value == id.Value }) {
			continue
		}
		key := id.Key()
		fresh := FreshID(key, at)
		if k := slices.IndexFunc(p.ttls, func(l nsLimit) bool { return l.ns == id.NS }); k >= 0 && id.Last.UnixNano()+p.ttls[k].ttl < at {
			fresh = FreshID(key, id.Last.UnixNano()+p.ttls[k].ttl)
		}
		gone = slices.DeleteFunc(gone, func(g goneID) bool { return g.key == key })
		gone = append(gone, goneID{key: key, fresh: fresh})
	}
	p.ids = ids
	// A relinked identifier is no longer gone here.
	gone = slices.DeleteFunc(gone, func(g goneID) bool {
		return slices.ContainsFunc(ids, func(id Identifier) bool { return id.isKey(g.key) })
	})
	if len(gone) > maxGone {
		gone = gone[len(gone)-maxGone:]
	}
	p.gone = gone
}

// Dropped calls f with the key of each identifier the profile dropped by a
// bound that it still remembers, and the anonymous profile the identifier
// names since (FreshID), oldest first.
func (c *custState) Dropped(f func(key, fresh string)) {
	if c == nil || c.ident == nil {
		return
	}
	for _, g := range c.ident.gone {
		f(g.key, g.fresh)
	}
}

// FreshID is the anonymous profile an identifier (by its key) names once
// its ttl ran out at expiry: not AnonymousID(key), which the link of the
// identifier made a forward to the profile it expired from.
func FreshID(key string, expiry int64) string {
	return AnonymousID(key) + "@" + strconv.FormatInt(expiry/1e9, 10)
}

// ttlsOf returns the namespaces of rules that have a ttl.
func ttlsOf(rules []nsLimit) []nsLimit {
	var out []nsLimit
	for _, r := range rules {
		if r.ttl > 0 {
			out = append(out, nsLimit{ns: r.ns, ttl: r.ttl})
		}
	}
	return out
}

// expired returns the fresh anonymous profile of the identifier key when
// its ttl ran out at now (unix ns) in p, or was dropped for it; ok false
// when it is live or p does not know it. It allocates only when it
// expired just now.
func (p *identPart) expired(key string, ttl, now int64) (fresh string, ok bool) {
	for i := range p.ids {
		if id := &p.ids[i]; id.isKey(key) {
			if exp := id.Last.UnixNano() + ttl; ttl > 0 && exp < now {
				return FreshID(key, exp), true
			}
			return "", false
		}
	}
	for i := len(p.gone) - 1; i >= 0; i-- {
		if p.gone[i].key == key {
			return p.gone[i].fresh, true
		}
	}
	return "", false
}

// mergeReceipt is what a survivor keeps of one merge it absorbed.
type mergeReceipt struct {
	receipt, from string
	pre           []byte // the survivor's value before the merge

	// since logs the writes made to the survivor after the merge, oldest
	// first, each with the identifier that brought it (record.via), so
	// that an unmerge gives each side the writes its identifiers brought
	// by replaying them (Identities.Unmerge). full: writes past the log's
	// bounds, or after a later merge, were not logged; an unmerge leaves
	// them to the survivor as a whole (Model.unmerge's difference rule).
	since      []sinceEntry
	sinceBytes int // of since's records (not encoded)
	full       bool
}

// sinceEntry is one write logged by a merge receipt: the record as applied
// (encoded without its sequence number, with its via) and the snapshot
// as-of time it was applied with, so that a replay computes the same.
type sinceEntry struct {
	asOf int64
	rec  []byte
}

// maxMergeReceipts bounds the merges a profile can still undo;
// maxSinceRecords and maxSinceBytes bound the writes each one logs after
// its merge (past them it is full).
const (
	maxMergeReceipts = 8
	maxSinceRecords  = 256
	maxSinceBytes    = 32 << 10
)

// maxVia bounds a record's via: an identifier key (a namespace of at most
// 64 bytes, a colon, a value of at most 512 bytes or its hash).
const maxVia = 64 + 1 + 512

func checkVia(via string) error {
	if len(via) > maxVia {
		return fmt.Errorf("via of %d bytes exceeds the limit of %d", len(via), maxVia)
	}
	return nil
}

// isKey reports whether key is id's index key (Identifier.Key), without
// building it.
func (id *Identifier) isKey(key string) bool {
	n := len(id.NS)
	return len(key) == n+1+len(id.Value) && key[n] == ':' && key[:n] == id.NS && key[n+1:] == id.Value
}

// noteWrite notes r, just applied to next (a profile with an identity
// part), in next's identity part: the identifier r came via is used at r's
// time (its Last, which its namespace's ttl runs from), and r is logged by
// every merge receipt that is not full.
func (m *Model) noteWrite(next *custState, r *record, asOf int64) {
	if !carriesVia(r.typ) {
		return
	}
	p := *next.ident
	changed := false
	if r.via != "" {
		if i := slices.IndexFunc(p.ids, func(id Identifier) bool { return id.isKey(r.via) }); i >= 0 && p.ids[i].Last.UnixNano() < r.at {
			p.ids = slices.Clone(p.ids)
			p.ids[i].Last = time.Unix(0, r.at).UTC()
			changed = true
		}
	}
	if slices.ContainsFunc(p.merges, func(mr mergeReceipt) bool { return !mr.full }) {
		c := *r
		c.lsn, c.movesFrom = 0, nil
		rec := appendRecord(nil, &c)
		p.merges = slices.Clone(p.merges)
		for i := range p.merges {
			mr := &p.merges[i]
			switch {
			case mr.full:
			case len(mr.since) >= maxSinceRecords || mr.sinceBytes+len(rec) > maxSinceBytes:
				mr.full = true
			default:
				mr.since = append(slices.Clip(mr.since), sinceEntry{asOf: asOf, rec: rec})
				mr.sinceBytes += len(rec)
			}
		}
		changed = true
	}
	if len(p.ttls) > 0 {
		var keep []Identifier
		dropped := false
		for i, id := range p.ids {
			k := slices.IndexFunc(p.ttls, func(l nsLimit) bool { return l.ns == id.NS })
			if k < 0 || id.Last.UnixNano()+p.ttls[k].ttl >= r.at {
				if dropped {
					keep = append(keep, id)
				}
				continue
			}
			if !dropped {
				keep, dropped = slices.Clone(p.ids[:i]), true
			}
			key := id.Key()
			p.gone = append(slices.Clip(p.gone), goneID{key: key, fresh: FreshID(key, id.Last.UnixNano()+p.ttls[k].ttl)})
		}
		if dropped {
			p.ids, changed = keep, true
			if len(p.gone) > maxGone {
				p.gone = p.gone[len(p.gone)-maxGone:]
			}
		}
	}
	if changed {
		next.ident = &p
	}
}

// Identity record operations (record.ident.op).
const (
	identLink    byte = 1 // add ids (rules bound them)
	identMark    byte = 2 // mark merging into peer, receipt
	identUnmark  byte = 3 // undo identMark of receipt (the absorb was refused)
	identAbsorb  byte = 4 // union with value (peer's frozen state), receipt
	identForward byte = 5 // become a stub forwarding to peer, receipt
	identRestore byte = 6 // replace the value by value (unmerge), receipt; if expect, only the value it digests
	identSeal    byte = 7 // an anonymous profile without state becomes a forward to peer
	identUnmerge byte = 8 // the survivor's side of undoing receipt, computed from its value: peer, rules, value (peer's value when merged), logged, expect
)

// identOp is the body of an identity record.
type identOp struct {
	op      byte
	ids     []Identifier // link: NS, Value, Source; First/Last are the record's time
	rules   []nsLimit    // link, absorb: the namespaces' bounds as configured when written
	peer    string
	receipt string
	value   []byte
	// expect (restore) is the digest (stateDigest) of the value the
	// restore was computed from: a live restore onto any other value is
	// refused with ErrConflict, so that a write made since the unmerge
	// read the profile is not replaced. Encoded in peer's place, which a
	// restore does not use (records written before it have none).
	expect []byte
	// logged (unmerge) is how many of the writes the receipt logged the
	// unmerge split by provenance; later ones stay with the survivor.
	// expect (unmerge) is the digest of the absorbed profile's value it
	// computed: the survivor's side is refused when it gives back other
	// writes than the absorbed side's record holds.
	logged int
}

// stateDigest returns the digest of c's value without its sequence number
// (nil c: of no value): what a conditional restore (identOp.expect)
// checks.
func (m *Model) stateDigest(c *custState) []byte {
	var b []byte
	if c != nil {
		b = m.AppendState(nil, c)
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// nsLimit is a namespace's bounds carried by a record, so that replaying
// the record applies what was configured when it was written.
type nsLimit struct {
	ns     string
	unique bool
	max    int
	ttl    int64
}

// MovedError is returned by a write to a profile that is being merged into
// another or was: the write was not applied; retry it on To (after
// finishing the merge, when Merging).
type MovedError struct {
	From, To, Receipt string
	Merging           bool
}

// Error says where the profile went.
func (e *MovedError) Error() string {
	if e.Merging {
		return fmt.Sprintf("customer %q is being merged into %q", e.From, e.To)
	}
	return fmt.Sprintf("customer %q was merged into %q", e.From, e.To)
}

// moved returns the MovedError of a write to cs, or nil.
func moved(cs *custState) error {
	if cs == nil || cs.ident == nil {
		return nil
	}
	if p := cs.ident; p.fwd != "" || p.mergingInto != "" {
		to := cmp.Or(p.fwd, p.mergingInto)
		return &Error{Kind: ErrConflict, Err: &MovedError{From: cs.id, To: to, Receipt: p.receipt, Merging: p.fwd == ""}}
	}
	return nil
}

// Identifiers returns the profile's linked identifiers (shared: do not
// change them).
func (c *custState) Identifiers() []Identifier {
	if c == nil || c.ident == nil {
		return nil
	}
	return c.ident.ids
}

// Moved returns where the profile was merged (or is being merged) to, and
// whether the merge is still in progress; "" when it was not.
func (c *custState) Moved() (to string, merging bool) {
	if c == nil || c.ident == nil {
		return "", false
	}
	if c.ident.fwd != "" {
		return c.ident.fwd, false
	}
	return c.ident.mergingInto, c.ident.mergingInto != ""
}

// Moved returns where the viewed profile was merged to ("" when it was
// not); merging reports a merge still in progress.
func (v *View) Moved() (to string, merging bool) { return v.c.Moved() }

// Identifiers returns the viewed profile's linked identifiers (shared).
func (v *View) Identifiers() []Identifier { return v.c.Identifiers() }

// IdentityRecord builds the record of one identity operation on customer.
func (m *Model) identityRecord(customer string, at time.Time, op identOp) record {
	return record{typ: recIdent, customer: customer, at: at.UnixNano(), ident: &op}
}

// applyIdent applies an identity record to next (a copy of old); it
// returns an error (nothing applied) or whether anything changed.
func (m *Model) applyIdent(old, next *custState, r *record, res *Result, live bool) (*custState, error) {
	op := r.ident
	var p identPart
	if old != nil && old.ident != nil {
		p = *old.ident
	}
	switch op.op {
	case identLink:
		if err := moved(old); err != nil {
			return nil, err
		}
		ids, err := linkIDs(p.ids, op.ids, op.rules, r.at, next.id)
		if err != nil {
			return nil, err
		}
		p.ttls = ttlsOf(op.rules)
		p.noteDropped(ids, r.at)
	case identMark:
		if p.fwd != "" || (p.mergingInto != "" && p.receipt != op.receipt) {
			return nil, moved(old)
		}
		if p.mergingInto == op.peer && p.receipt == op.receipt {
			res.Duplicate = true
			return old, nil
		}
		p.mergingInto, p.receipt = op.peer, op.receipt
	case identUnmark:
		if p.mergingInto == "" || p.receipt != op.receipt {
			res.Duplicate = true
			return old, nil
		}
		p.mergingInto, p.receipt = "", ""
	case identAbsorb:
		for _, mr := range p.merges {
			if mr.receipt == op.receipt {
				res.Duplicate = true
				return old, nil
			}
		}
		if err := moved(old); err != nil {
			return nil, err
		}
		from, err := m.DecodeCustomer(op.value)
		if err != nil {
			return nil, invalid(err)
		}
		var pre []byte
		if old != nil {
			// Without its receipts: a receipt never holds another, so a
			// profile's bookkeeping is bounded however often it merges
			// (each nested the earlier ones and the value doubled per
			// merge). Unmerge takes the earlier receipts from the value
			// it undoes the merge in.
			own := *old
			own.ident = old.ident.withoutReceipts()
			pre = m.AppendCustomer(nil, &own)
		}
		merged := m.merge(next, from, res)
		if from.ident != nil {
			ids, err := linkIDs(p.ids, from.ident.ids, op.rules, r.at, next.id)
			if err != nil {
				return nil, err
			}
			// Dropped by a bound: the absorbed profile's, which never
			// got here, and the survivor's own.
			p.ids = append(slices.Clone(p.ids), from.ident.ids...)
			p.noteDropped(ids, r.at)
		}
		// The earlier merges' logs end here: what they log must replay
		// onto the state they recompute, which this merge changes.
		p.merges = slices.Clone(p.merges)
		for i := range p.merges {
			p.merges[i].full = true
		}
		p.merges = append(p.merges, mergeReceipt{receipt: op.receipt, from: op.peer, pre: pre})
		if len(p.merges) > maxMergeReceipts {
			p.merges = p.merges[len(p.merges)-maxMergeReceipts:]
		}
		*next = *merged
	case identForward:
		if p.fwd == op.peer && p.receipt == op.receipt {
			res.Duplicate = true
			return old, nil
		}
		if p.mergingInto != op.peer || p.receipt != op.receipt {
			return nil, &Error{Kind: ErrConflict, Err: fmt.Errorf("customer %q is not being merged by receipt %q", next.id, op.receipt)}
		}
		own := *old
		own.ident = old.ident.withoutMark()
		saved := m.AppendCustomer(nil, &own)
		stub := custState{id: next.id, lsn: next.lsn}
		*next = stub
		p = identPart{fwd: op.peer, receipt: op.receipt, saved: saved}
	case identSeal:
		if p.fwd == op.peer {
			res.Duplicate = true
			return old, nil
		}
		if old != nil {
			return nil, &Error{Kind: ErrConflict, Err: fmt.Errorf("customer %q has state: merge it instead of sealing it", next.id)}
		}
		p = identPart{fwd: op.peer}
	case identUnmerge:
		restored, absorbed, _, _, err := m.unmergeSides(old, op.receipt, op.peer, op.value, op.rules, op.logged)
		if err != nil {
			return nil, err
		}
		if live && !bytes.Equal(m.stateDigest(absorbed), op.expect) {
			return nil, &Error{Kind: ErrConflict, Err: fmt.Errorf("customer %q: the writes an unmerge gives back changed", next.id)}
		}
		lsn := next.lsn
		*next = *restored
		next.id, next.lsn = old.id, lsn
		return next, nil
	case identRestore:
		c, err := m.DecodeCustomer(op.value)
		if err != nil {
			return nil, invalid(err)
		}
		if c.id != next.id {
			return nil, invalidf("cannot restore customer %q from the value of %q", next.id, c.id)
		}
		lsn := next.lsn
		*next = *c
		next.id, next.lsn = cmp.Or(old, next).id, lsn
		return next, nil
	default:
		return nil, invalidf("unknown identity operation %d", op.op)
	}
	next.ident = p.orNil()
	return next, nil
}

// unmergeSides computes the unmerge of receipt on cur, the survivor: its
// value restored (its value from before the merge plus the writes its
// identifiers brought since, with the identifiers linked to it since that
// did not come from the absorbed profile), the absorbed profile's (saved,
// its value when the merge finished, plus the writes its identifiers
// brought since), the identifiers that go back with it, and how many
// logged writes were split. Only the first logged writes the receipt
// logged are split (logged < 0: all); the later ones, like those not
// logged (mergeReceipt.full), stay with the survivor.
func (m *Model) unmergeSides(cur *custState, receipt, from string, savedValue []byte, rules []nsLimit, logged int) (restored, absorbed *custState, back []Identifier, n int, err error) {
	var mr *mergeReceipt
	if cur != nil && cur.ident != nil {
		for i := range cur.ident.merges {
			if cur.ident.merges[i].receipt == receipt {
				mr = &cur.ident.merges[i]
			}
		}
	}
	if mr == nil {
		return nil, nil, nil, 0, &Error{Kind: ErrInvalid, Err: fmt.Errorf("cannot unmerge: the profile the merge kept no longer remembers it (at most %d are kept)", maxMergeReceipts)}
	}
	// Recompute the merge: anything else in the value arrived after it.
	var pre *custState
	if len(mr.pre) > 0 {
		if pre, err = m.DecodeCustomer(mr.pre); err != nil {
			return nil, nil, nil, 0, err
		}
	} else {
		pre = &custState{id: cur.id}
	}
	want, _, err := m.Apply(pre, &record{typ: recIdent, customer: cur.id, at: 0, ident: &identOp{op: identAbsorb, peer: from, receipt: receipt, rules: rules, value: savedValue}}, 0)
	if err != nil {
		return nil, nil, nil, 0, &Error{Kind: ErrConflict, Err: fmt.Errorf("cannot unmerge: cannot recompute the merge: %w", err)}
	}
	saved, err := m.DecodeCustomer(savedValue)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	back = saved.Identifiers() // what goes back with the absorbed profile
	for _, id := range cur.Identifiers() {
		if AnonymousID(id.Key()) == from {
			back = append(slices.Clip(back), id) // the identifier the anonymous profile is named by
		}
	}
	// The writes logged since the merge go to the side whose identifier
	// brought them, replayed onto its value from before; what was not
	// logged (mergeReceipt.full) stays with the survivor.
	since := mr.since
	if logged >= 0 {
		if logged > len(since) {
			return nil, nil, nil, 0, &Error{Kind: ErrConflict, Err: fmt.Errorf("cannot unmerge: %d writes logged, %d read", len(since), logged)}
		}
		since = since[:logged]
	}
	survivor, absorbed, err := m.split(pre, want, saved, since, func(via string) bool {
		return slices.ContainsFunc(back, func(id Identifier) bool { return id.isKey(via) })
	})
	if err != nil {
		return nil, nil, nil, 0, &Error{Kind: ErrConflict, Err: fmt.Errorf("cannot unmerge: %w", err)}
	}
	r := *m.unmerge(survivor.pre, survivor.want, cur)
	pre = survivor.pre
	var ids []Identifier
	ids = append(ids, pre.Identifiers()...)
	for _, id := range cur.Identifiers() {
		has := func(y Identifier) bool { return y.NS == id.NS && y.Value == id.Value }
		if !slices.ContainsFunc(ids, has) && !slices.ContainsFunc(back, has) {
			ids = append(ids, id)
		}
	}
	// The merges before this one, which its receipt does not hold (a
	// receipt never holds another): as the survivor remembers them now,
	// their logs ended by this merge.
	earlier := cur.ident.merges[:slices.IndexFunc(cur.ident.merges, func(r mergeReceipt) bool { return r.receipt == receipt })]
	if len(ids) > len(pre.Identifiers()) || len(earlier) > 0 {
		p := identPart{}
		if pre.ident != nil {
			p = *pre.ident
		}
		p.ids = ids
		p.merges = slices.Clone(earlier)
		r.ident = p.orNil()
	}
	return &r, absorbed, back, len(since), nil
}

// orNil returns p, or nil when it holds nothing (a profile never linked
// encodes without an identity part).
func (p identPart) orNil() *identPart {
	if len(p.ids) == 0 && p.mergingInto == "" && p.fwd == "" && len(p.merges) == 0 && len(p.saved) == 0 && len(p.gone) == 0 {
		return nil
	}
	return &p
}

// withoutReceipts returns p without its merge receipts (nil p: nil).
func (p *identPart) withoutReceipts() *identPart {
	if p == nil {
		return nil
	}
	q := *p
	q.merges = nil
	return q.orNil()
}

// withoutMark returns p without the mark of a merge in progress: the
// profile's own identity part, as it was before the mark.
func (p *identPart) withoutMark() *identPart {
	q := *p
	q.mergingInto, q.receipt = "", ""
	return q.orNil()
}

// linkIDs returns cur with add linked at at (unix ns): a value already
// linked is touched (Last), a new one added with provenance; values not
// used within their namespace's ttl are dropped, and past a namespace's
// max the least recently used. A second value of a unique namespace is an
// identity conflict and nothing changes.
func linkIDs(cur, add []Identifier, rules []nsLimit, at int64, customer string) ([]Identifier, error) {
	out := slices.Clone(cur)
	t := time.Unix(0, at).UTC()
	for _, a := range add {
		i := slices.IndexFunc(out, func(x Identifier) bool { return x.NS == a.NS && x.Value == a.Value })
		if i >= 0 {
			if a.Last.After(out[i].Last) || a.Last.IsZero() && t.After(out[i].Last) {
				out[i].Last = cmp.Or(a.Last, t)
			}
			if !a.First.IsZero() && a.First.Before(out[i].First) {
				out[i].First = a.First
			}
			continue
		}
		if a.First.IsZero() {
			a.First, a.Last = t, t
		}
		out = append(out, a)
	}
	for _, r := range rules {
		var in []int
		for i, x := range out {
			if x.NS == r.ns {
				in = append(in, i)
			}
		}
		if r.unique && len(in) > 1 {
			return nil, &Error{Kind: ErrConflict, Err: fmt.Errorf("%w: customer %q would hold %d values of unique namespace %q", ErrIdentityConflict, customer, len(in), r.ns)}
		}
		drop := map[int]bool{}
		if r.ttl > 0 {
			for _, i := range in {
				if out[i].Last.UnixNano() < at-r.ttl {
					drop[i] = true
				}
			}
		}
		live := slices.DeleteFunc(slices.Clone(in), func(i int) bool { return drop[i] })
		slices.SortFunc(live, func(a, b int) int { return out[a].Last.Compare(out[b].Last) })
		for len(live) > r.max && r.max > 0 {
			drop[live[0]] = true
			live = live[1:]
		}
		if len(drop) > 0 {
			k := 0
			for i, x := range out {
				if !drop[i] {
					out[k] = x
					k++
				}
			}
			out = out[:k]
		}
	}
	if len(out) > maxIdentifiers {
		out = out[len(out)-maxIdentifiers:]
	}
	return out, nil
}

// merge returns the union of a and b's state (a's id): contacts deduplicated
// (the same contact in both histories is kept, and counted, once), counts
// summed over the union, journeys by the journey rule (mergeJourney),
// overlay fields by the latest change (counters summed), idempotency keys
// by union. res
// counts what the bounds evicted.
func (m *Model) merge(a, b *custState, res *Result) *custState {
	out := *a
	// Overlay: per field, the later change wins; a counter (a field an
	// incr mapping changes) is the sum of both, stamped with the later.
	if b.overlay != nil {
		if out.overlay == nil {
			out.overlay = make([]value, len(m.m.fields))
		} else {
			out.overlay = slices.Clone(out.overlay)
		}
		counter := make([]bool, len(m.m.fields))
		for _, ops := range m.m.events {
			for _, op := range ops {
				if op.kind == opIncr {
					counter[op.slot] = true
				}
			}
		}
		for i := range min(len(out.overlay), len(b.overlay)) {
			x, y := &out.overlay[i], b.overlay[i]
			switch {
			case y.at == 0:
			case counter[i] && x.at != 0:
				x.num += y.num
				x.at = max(x.at, y.at)
			case y.at > x.at:
				*x = y
			}
		}
	}
	// History: merged newest first, exact duplicates once.
	var ha, hb []Contact
	for n, i := a.hist, 0; i < a.histN; n, i = n.next, i+1 {
		ha = append(ha, n.c)
	}
	for n, i := b.hist, 0; i < b.histN; n, i = n.next, i+1 {
		hb = append(hb, n.c)
	}
	var dups []Contact
	all := make([]Contact, 0, len(ha)+len(hb))
	i, j := 0, 0
	for i < len(ha) || j < len(hb) {
		switch {
		case j == len(hb) || i < len(ha) && ha[i].At.After(hb[j].At):
			all = append(all, ha[i])
			i++
		case i == len(ha) || hb[j].At.After(ha[i].At):
			all = append(all, hb[j])
			j++
		default: // same time: a duplicate if equal
			k := slices.IndexFunc(hb[j:], func(c Contact) bool { return !c.At.Equal(ha[i].At) || c == ha[i] })
			if k >= 0 && hb[j+k] == ha[i] {
				dups = append(dups, ha[i])
				hb = slices.Delete(slices.Clone(hb), j+k, j+k+1)
			}
			all = append(all, ha[i])
			i++
		}
	}
	if len(all) > m.maxEvents {
		res.HistoryEvicted += len(all) - m.maxEvents
		all = all[:m.maxEvents]
	}
	out.hist, out.histN, out.histLen = nil, len(all), len(all)
	if len(all) > 0 {
		nodes := make([]histNode, len(all))
		for k := range nodes {
			nodes[k].c = all[k]
			if k > 0 {
				nodes[k-1].next = &nodes[k]
			}
		}
		out.hist = &nodes[0]
	}
	// Aggregates: summed per key; duplicates taken out again.
	out.aggs = slices.Clone(a.aggs)
	for _, y := range b.aggs {
		k := slices.IndexFunc(out.aggs, func(x aggRef) bool { return x.kind == y.kind && x.outcome == y.outcome && x.key == y.key })
		if k < 0 {
			out.aggs = append(out.aggs, y)
			continue
		}
		s := out.aggs[k].a.clone()
		s.addAll(y.a)
		out.aggs[k].a, out.aggs[k].last = s, max(out.aggs[k].last, y.last)
	}
	for _, c := range dups {
		for _, kk := range [...]struct {
			k   Kind
			key string
		}{{KindAction, c.Action}, {KindGroup, c.Group}, {KindChannel, c.Channel}} {
			k := slices.IndexFunc(out.aggs, func(x aggRef) bool { return x.kind == kk.k && x.outcome == c.Outcome && x.key == kk.key })
			if kk.key == "" || k < 0 {
				continue
			}
			s := out.aggs[k].a.clone()
			s.remove(c.At.UnixNano())
			out.aggs[k].a = s
		}
	}
	if len(out.aggs) > m.maxKeys {
		slices.SortStableFunc(out.aggs, func(x, y aggRef) int { return cmp.Compare(y.last, x.last) })
		res.KeysEvicted += len(out.aggs) - m.maxKeys
		out.aggs = out.aggs[:m.maxKeys]
	}
	// Journeys.
	out.journeys = slices.Clone(a.journeys)
	for _, y := range b.journeys {
		k := slices.IndexFunc(out.journeys, func(x JourneyState) bool { return x.Journey == y.Journey })
		if k < 0 {
			out.journeys = append(out.journeys, y)
			continue
		}
		out.journeys[k] = mergeJourney(out.journeys[k], y)
	}
	if len(out.journeys) > m.maxJourneys {
		res.JourneysEvicted += len(out.journeys) - m.maxJourneys
		out.journeys = out.journeys[:m.maxJourneys]
	}
	// Idempotency keys: union, oldest first, the newest kept.
	ids := slices.Clone(a.ids)
	for _, k := range b.ids {
		if !slices.Contains(ids, k) {
			ids = append(ids, k)
		}
	}
	if len(ids) > m.maxIDs {
		res.IDsEvicted += len(ids) - m.maxIDs
		ids = ids[len(ids)-m.maxIDs:]
	}
	out.ids = ids
	out.consent = mergeConsent(a.consent, b.consent)
	out.res = mergeReservations(a.res, b.res)
	return &out
}

// mergeConsent combines two merged profiles' consent: per channel and
// purpose, the two audit trails in time order (a change on both sides
// once), the newest ConsentTrail kept; the later change decides, as it
// does for one profile.
func mergeConsent(a, b []consentPair) []consentPair {
	if len(b) == 0 {
		return a
	}
	out := slices.Clone(a)
	for _, y := range b {
		k := slices.IndexFunc(out, func(x consentPair) bool { return x.channel == y.channel && x.purpose == y.purpose })
		if k < 0 {
			if len(out) < MaxConsentPairs {
				out = append(out, y)
			}
			continue
		}
		trail := append(slices.Clone(out[k].trail), y.trail...)
		slices.SortStableFunc(trail, func(p, q ConsentChange) int { return p.At.Compare(q.At) })
		trail = slices.CompactFunc(trail, func(p, q ConsentChange) bool { return p.At.Equal(q.At) && p == q })
		if len(trail) > ConsentTrail {
			trail = trail[len(trail)-ConsentTrail:]
		}
		out[k] = consentPair{channel: y.channel, purpose: y.purpose, trail: trail}
	}
	return out
}

// mergeReservations combines two merged profiles' reservations of exact
// caps: the union by decision and action (both still hold their slots),
// the newest MaxReservations kept.
func mergeReservations(a, b []reservation) []reservation {
	if len(b) == 0 {
		return a
	}
	out := slices.Clone(a)
	for _, y := range b {
		if !slices.ContainsFunc(out, func(x reservation) bool { return x.decision == y.decision && x.action == y.action }) {
			out = append(out, y)
		}
	}
	slices.SortStableFunc(out, func(p, q reservation) int { return cmp.Compare(p.at, q.at) })
	if len(out) > MaxReservations {
		out = out[len(out)-MaxReservations:]
	}
	return out
}

// mergeJourney combines one journey's state in two merged profiles: an
// active state beats a finished one (the person is in the journey; either
// way the journey stays in the state, so an entry made once is not made
// again: its lock is kept); of two active ones the more advanced step wins
// (ties: the earlier entry); of two finished ones the later.
func mergeJourney(a, b JourneyState) JourneyState {
	aa, ba := a.Status == JourneyActive, b.Status == JourneyActive
	switch {
	case aa != ba:
		if aa {
			return a
		}
		return b
	case aa:
		if b.Step > a.Step || b.Step == a.Step && b.EnteredAt.Before(a.EnteredAt) {
			return b
		}
		return a
	default:
		if b.StepAt.After(a.StepAt) {
			return b
		}
		return a
	}
}

// addAll adds b's counts to a (same kind, outcome and key).
func (a *agg) addAll(b *agg) {
	na, nb := min(int(a.seen), recentN), min(int(b.seen), recentN)
	rec := append(append(make([]int64, 0, na+nb), a.recent[:na]...), b.recent[:nb]...)
	slices.SortFunc(rec, func(x, y int64) int { return cmp.Compare(y, x) })
	a.seen = uint32(min(uint64(a.seen)+uint64(b.seen), uint64(^uint32(0))))
	copy(a.recent[:], rec[:min(len(rec), recentN)])
	addRing(a.hours[:], &a.hourTop, b.hours[:], b.hourTop)
	addRing(a.days, &a.dayTop, b.days, b.dayTop)
}

// remove takes one event at t out of a (a duplicate counted twice).
func (a *agg) remove(t int64) {
	if a.seen == 0 {
		return
	}
	n := min(int(a.seen), recentN)
	if k := slices.Index(a.recent[:n], t); k >= 0 {
		copy(a.recent[k:], a.recent[k+1:n])
		a.recent[n-1] = 0
	}
	a.seen--
	for _, r := range [...]struct {
		ring []uint16
		top  int64
		b    int64
	}{{a.hours[:], a.hourTop, floorDiv(t, hourNanos)}, {a.days, a.dayTop, floorDiv(t, dayNanos)}} {
		if r.b <= r.top && r.b > r.top-int64(len(r.ring)) {
			if i := mod(r.b, len(r.ring)); r.ring[i] > 0 {
				r.ring[i]--
			}
		}
	}
}

// addRing adds the buckets of ring src (newest srcTop) to dst.
func addRing(dst []uint16, top *int64, src []uint16, srcTop int64) {
	for i := range int64(len(src)) {
		b := srcTop - i
		c := src[mod(b, len(src))]
		if c == 0 {
			continue
		}
		advance(dst, top, b) // moves the ring and counts one
		if b > *top-int64(len(dst)) {
			k := mod(b, len(dst))
			dst[k] = uint16(min(int(dst[k])+int(c)-1, int(^uint16(0))))
		}
	}
}

// Identity part of the customer encoding (checkpoint version 3 on, and
// shared backends' values; a value without it, as older versions wrote,
// decodes with none):
//
//	flag (1): 0 none, 1 present
//	| ids: count uvarint, per id: ns, value strings | first, last varint | source string
//	| merging-into, forward, receipt strings | saved bytes (string)
//	| merges: count uvarint, per merge: receipt, from strings | pre bytes (string)
//	| extensions, each absent when empty (and in values written before it
//	  existed), in tag order:
//	  1 (1) | per merge: full (1) | count uvarint, per logged write:
//	    as-of varint | record bytes (string)
//	  2 (1) | ttls: count uvarint, per namespace: ns string | ttl varint (ns)
//	  3 (1) | expired: count uvarint, per identifier: key, fresh strings
func appendIdent(b []byte, p *identPart) []byte {
	if p == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(p.ids)))
	for _, id := range p.ids {
		b = appendString(b, id.NS)
		b = appendString(b, id.Value)
		b = binary.AppendVarint(b, id.First.UnixNano())
		b = binary.AppendVarint(b, id.Last.UnixNano())
		b = appendString(b, id.Source)
	}
	b = appendString(b, p.mergingInto)
	b = appendString(b, p.fwd)
	b = appendString(b, p.receipt)
	b = appendBytes(b, p.saved)
	b = binary.AppendUvarint(b, uint64(len(p.merges)))
	for _, mr := range p.merges {
		b = appendString(b, mr.receipt)
		b = appendString(b, mr.from)
		b = appendBytes(b, mr.pre)
	}
	if slices.ContainsFunc(p.merges, func(mr mergeReceipt) bool { return mr.full || len(mr.since) > 0 }) {
		b = append(b, identExtLog)
		for _, mr := range p.merges {
			f := byte(0)
			if mr.full {
				f = 1
			}
			b = append(b, f)
			b = binary.AppendUvarint(b, uint64(len(mr.since)))
			for _, e := range mr.since {
				b = binary.AppendVarint(b, e.asOf)
				b = appendBytes(b, e.rec)
			}
		}
	}
	if len(p.ttls) > 0 {
		b = append(b, identExtTTL)
		b = binary.AppendUvarint(b, uint64(len(p.ttls)))
		for _, l := range p.ttls {
			b = appendString(b, l.ns)
			b = binary.AppendVarint(b, l.ttl)
		}
	}
	if len(p.gone) > 0 {
		b = append(b, identExtGone)
		b = binary.AppendUvarint(b, uint64(len(p.gone)))
		for _, g := range p.gone {
			b = appendString(b, g.key)
			b = appendString(b, g.fresh)
		}
	}
	return b
}

// Extensions of the identity part, in this order, each absent when empty
// (and in values written before it existed).
const (
	identExtLog  byte = 1 // the merge receipts' logged writes
	identExtTTL  byte = 2 // the namespaces' ttls
	identExtGone byte = 3 // identifiers dropped by their ttl
)

// appendIdentSection appends the identity section of cs (a section of the
// customer's value, consent.go), if it has identifiers or marks.
func appendIdentSection(b []byte, cs *custState) []byte {
	if cs.ident == nil {
		return b
	}
	body := appendIdent(nil, cs.ident)
	b = append(b, sectionIdent)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// decodeIdentSection decodes an identity section's body into cs.
func (m *Model) decodeIdentSection(body []byte, cs *custState) error {
	d := &rd{r: bufio.NewReader(bytes.NewReader(body))}
	m.decodeIdent(d, cs)
	if d.err == nil {
		if _, err := d.r.ReadByte(); err == nil {
			d.fail("trailing bytes")
		}
	}
	return d.err
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// maxDecodedSaved bounds a saved value in the identity part.
const maxDecodedSaved = 64 << 20

// decodeIdent reads the identity part; the end of the input in place of
// its flag means none (an older value).
func (m *Model) decodeIdent(d *rd, cs *custState) {
	if d.err != nil {
		return
	}
	f, err := d.r.ReadByte()
	if err == io.EOF {
		return
	}
	if err != nil || f > 1 {
		d.fail("bad identity flag")
		return
	}
	if f == 0 {
		return
	}
	p := &identPart{}
	n := d.count(maxIdentifiers, "identifiers")
	for range n {
		id := Identifier{NS: d.str(), Value: d.str(), First: time.Unix(0, d.varint()).UTC(), Last: time.Unix(0, d.varint()).UTC(), Source: d.str()}
		if d.err == nil && (id.NS == "" || id.Value == "") {
			d.fail("empty identifier")
		}
		p.ids = append(p.ids, id)
	}
	p.mergingInto, p.fwd, p.receipt = d.str(), d.str(), d.str()
	p.saved = d.bytes()
	nm := d.count(maxMergeReceipts, "merge receipts")
	for range nm {
		p.merges = append(p.merges, mergeReceipt{receipt: d.str(), from: d.str(), pre: d.bytes()})
	}
	for last := byte(0); d.err == nil; {
		tag, err := d.r.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil || tag <= last || tag > identExtGone {
			d.fail("bad identity extension %d", tag)
			break
		}
		last = tag
		switch tag {
		case identExtLog:
			for i := range p.merges {
				mr := &p.merges[i]
				f := d.byte()
				if d.err == nil && f > 1 {
					d.fail("bad merge log flag")
				}
				mr.full = f == 1
				n := d.count(maxSinceRecords, "logged writes")
				for range n {
					e := sinceEntry{asOf: d.varint(), rec: d.bytes()}
					mr.sinceBytes += len(e.rec)
					if d.err == nil && (len(e.rec) == 0 || mr.sinceBytes > maxSinceBytes) {
						d.fail("logged writes of %d bytes", mr.sinceBytes)
					}
					mr.since = append(mr.since, e)
				}
			}
		case identExtTTL:
			n := d.count(maxIdentifiers, "namespaces")
			for range n {
				l := nsLimit{ns: d.str(), ttl: d.varint()}
				if d.err == nil && (l.ns == "" || l.ttl <= 0) {
					d.fail("bad namespace ttl")
				}
				p.ttls = append(p.ttls, l)
			}
		case identExtGone:
			n := d.count(maxGone, "expired identifiers")
			for range n {
				g := goneID{key: d.str(), fresh: d.str()}
				if d.err == nil && (g.key == "" || g.fresh == "") {
					d.fail("bad expired identifier")
				}
				p.gone = append(p.gone, g)
			}
		}
	}
	if d.err == nil {
		cs.ident = p
	}
}

func (d *rd) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > maxDecodedSaved {
		d.fail("saved value of %d bytes", n)
		return nil
	}
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.fail("short saved value")
		return nil
	}
	return b
}

// appendIdentOp and decodeIdentOp encode an identity record's body.
func appendIdentOp(b []byte, op *identOp) []byte {
	b = append(b, op.op)
	b = binary.AppendUvarint(b, uint64(len(op.ids)))
	for _, id := range op.ids {
		b = appendString(b, id.NS)
		b = appendString(b, id.Value)
		b = appendString(b, id.Source)
	}
	b = binary.AppendUvarint(b, uint64(len(op.rules)))
	for _, r := range op.rules {
		b = appendString(b, r.ns)
		u := byte(0)
		if r.unique {
			u = 1
		}
		b = append(b, u)
		b = binary.AppendUvarint(b, uint64(r.max))
		b = binary.AppendVarint(b, r.ttl)
	}
	peer := op.peer
	if op.op == identRestore {
		peer = string(op.expect)
	}
	b = appendString(b, peer)
	b = appendString(b, op.receipt)
	b = appendBytes(b, op.value)
	if op.op == identUnmerge {
		b = binary.AppendUvarint(b, uint64(op.logged))
		b = appendBytes(b, op.expect)
	}
	return b
}

func decodeIdentOp(d *dec) *identOp {
	op := &identOp{op: d.byte()}
	n := d.uvarint()
	if n > maxIdentifiers {
		d.fail("%d identifiers", n)
		return op
	}
	for range n {
		op.ids = append(op.ids, Identifier{NS: d.str(), Value: d.str(), Source: d.str()})
	}
	n = d.uvarint()
	if n > maxIdentifiers {
		d.fail("%d namespaces", n)
		return op
	}
	for range n {
		r := nsLimit{ns: d.str(), unique: d.byte() == 1}
		r.max, r.ttl = int(d.uvarint()), d.varint()
		op.rules = append(op.rules, r)
	}
	op.peer, op.receipt = d.str(), d.str()
	if op.op == identRestore && op.peer != "" {
		op.expect, op.peer = []byte(op.peer), ""
	}
	n = d.uvarint()
	if d.err == nil && (n > maxDecodedSaved || n > uint64(len(d.b))) {
		d.fail("value of %d bytes does not fit", n)
	}
	if d.err == nil && n > 0 {
		op.value = append([]byte(nil), d.b[:n]...)
		d.b = d.b[n:]
	}
	if d.err == nil && op.op == identUnmerge {
		n := d.uvarint()
		if n > maxDecodedSaved {
			d.fail("unmerge of %d logged writes", n)
			return op
		}
		op.logged = int(n)
		op.expect = []byte(d.str())
	}
	if d.err == nil && (op.op < identLink || op.op > identUnmerge) {
		d.fail("unknown identity operation %d", op.op)
	}
	return op
}

var errNoIdentity = errors.New("identity stitching is not configured (the bundle has no identity: section)")

// Customer returns the customer the record changes.
func (r *record) Customer() string { return r.customer }

// AppendState appends c's encoding without the backend's sequence number
// (the embedded store's log position): equal bytes for equal state, e.g.
// a profile before a merge and after its unmerge.
func (m *Model) AppendState(dst []byte, c *Customer) []byte {
	d := *c
	d.lsn = 0
	return m.AppendCustomer(dst, &d)
}

// AppendProfile appends c's encoding without the backend's sequence number
// and without its merge receipts: equal bytes for equal state and
// identifiers, whatever merges the profile can still undo (an unmerge
// gives back the value from before the merge, less the receipt that merge
// pushed out of the last maxMergeReceipts).
func (m *Model) AppendProfile(dst []byte, c *Customer) []byte {
	d := *c
	d.lsn = 0
	d.ident = c.ident.withoutReceipts()
	return m.AppendCustomer(dst, &d)
}

// sides is one side of a split: its value from before the merge with the
// writes it is given replayed (pre), and the merge's result with every
// logged write replayed (want), which the survivor's value now differs
// from only by the writes not logged.
type sides struct{ pre, want *custState }

// split replays the writes a merge receipt logged (since, oldest first):
// those that came via an identifier of the absorbed profile (back) onto its
// saved value, the others onto the survivor's value from before the merge
// (pre), and all of them onto the merge's result (want). Replaying through
// the model makes each side exactly what it would be had the writes been
// made to it; absorbed is saved itself when no write went back.
func (m *Model) split(pre, want, saved *custState, since []sinceEntry, back func(via string) bool) (survivor sides, absorbed *custState, err error) {
	survivor = sides{pre: pre, want: want}
	absorbed = saved
	for i, e := range since {
		var r record
		if err := decodeRecord(e.rec, &r); err != nil {
			return sides{}, nil, fmt.Errorf("logged write %d: %w", i, err)
		}
		survivor.want, _ = m.ApplyLogged(survivor.want, &r, e.asOf)
		if r.via != "" && back(r.via) {
			r.customer = saved.id
			absorbed, _ = m.ApplyLogged(absorbed, &r, e.asOf)
			continue
		}
		r.customer = pre.id
		survivor.pre, _ = m.ApplyLogged(survivor.pre, &r, e.asOf)
	}
	return survivor, absorbed, nil
}

// unmerge returns the survivor's state after an unmerge: its state from
// before the merge (pre) plus what changed since the merge, the difference
// between its state now (cur) and the merge's result (want). Everything
// written after the merge was written to the survivor, so it stays there;
// what the absorbed profile brought goes back with it. With nothing
// written since, the result is pre exactly.
func (m *Model) unmerge(pre, want, cur *custState) *custState {
	out := *pre
	// Overlay: a field unchanged since the merge is pre's; a counter
	// changed since keeps the increments made since; another field
	// changed since keeps its new value.
	if cur.overlay != nil {
		counter := make([]bool, len(m.m.fields))
		for _, ops := range m.m.events {
			for _, op := range ops {
				if op.kind == opIncr {
					counter[op.slot] = true
				}
			}
		}
		ov := make([]value, len(m.m.fields))
		copy(ov, pre.overlay)
		changed := false
		for i := range min(len(cur.overlay), len(ov)) {
			var w value
			if i < len(want.overlay) {
				w = want.overlay[i]
			}
			c := cur.overlay[i]
			if c == w {
				continue
			}
			changed = true
			if counter[i] && w.at != 0 {
				ov[i].num += c.num - w.num
				ov[i].at = c.at
			} else {
				ov[i] = c
			}
		}
		if changed || pre.overlay != nil {
			out.overlay = ov
		}
	}
	// History: pre's, and the contacts in cur not in want, newest first.
	var later []Contact
	wantH := map[Contact]int{}
	for n, i := want.hist, 0; i < want.histN; n, i = n.next, i+1 {
		wantH[n.c]++
	}
	for n, i := cur.hist, 0; i < cur.histN; n, i = n.next, i+1 {
		if wantH[n.c] > 0 {
			wantH[n.c]--
			continue
		}
		later = append(later, n.c)
	}
	if len(later) > 0 {
		var all []Contact
		for n, i := pre.hist, 0; i < pre.histN; n, i = n.next, i+1 {
			all = append(all, n.c)
		}
		all = append(all, later...)
		slices.SortStableFunc(all, func(a, b Contact) int { return b.At.Compare(a.At) })
		if len(all) > m.maxEvents {
			all = all[:m.maxEvents]
		}
		nodes := make([]histNode, len(all))
		for k := range nodes {
			nodes[k].c = all[k]
			if k > 0 {
				nodes[k-1].next = &nodes[k]
			}
		}
		out.hist, out.histN, out.histLen = &nodes[0], len(nodes), len(nodes)
	}
	// Aggregates: pre's plus, per key, cur's counts less want's.
	out.aggs = slices.Clone(pre.aggs)
	for _, c := range cur.aggs {
		var w *agg
		if k := slices.IndexFunc(want.aggs, func(x aggRef) bool { return x.kind == c.kind && x.outcome == c.outcome && x.key == c.key }); k >= 0 {
			w = want.aggs[k].a
		}
		d := c.a.minus(w)
		if d == nil {
			continue
		}
		k := slices.IndexFunc(out.aggs, func(x aggRef) bool { return x.kind == c.kind && x.outcome == c.outcome && x.key == c.key })
		if k < 0 {
			out.aggs = append(out.aggs, aggRef{kind: c.kind, outcome: c.outcome, key: c.key, last: c.last, a: d})
			continue
		}
		s := out.aggs[k].a.clone()
		s.addAll(d)
		out.aggs[k].a, out.aggs[k].last = s, max(out.aggs[k].last, c.last)
	}
	if len(out.aggs) > m.maxKeys {
		slices.SortStableFunc(out.aggs, func(x, y aggRef) int { return cmp.Compare(y.last, x.last) })
		out.aggs = out.aggs[:m.maxKeys]
	}
	// Journeys: unchanged since the merge, pre's (or none); changed, cur's.
	out.journeys = slices.Clone(pre.journeys)
	for _, c := range cur.journeys {
		k := slices.IndexFunc(want.journeys, func(x JourneyState) bool { return x.Journey == c.Journey })
		if k >= 0 && want.journeys[k] == c {
			continue
		}
		if i := slices.IndexFunc(out.journeys, func(x JourneyState) bool { return x.Journey == c.Journey }); i >= 0 {
			out.journeys[i] = c
		} else if len(out.journeys) < m.maxJourneys {
			out.journeys = append(out.journeys, c)
		}
	}
	// Idempotency keys: pre's and those remembered since.
	for _, k := range cur.ids {
		if !slices.Contains(want.ids, k) && !slices.Contains(out.ids, k) {
			out.ids = append(slices.Clip(out.ids), k)
		}
	}
	if len(out.ids) > m.maxIDs {
		out.ids = out.ids[len(out.ids)-m.maxIDs:]
	}
	return &out
}

// minus returns the events of a that are not in b (b nil: none), an
// aggregate of the same key; nil when there are none. Counts only grow
// after a merge, so the difference is what was added since.
func (a *agg) minus(b *agg) *agg {
	if b == nil {
		return a
	}
	if a.seen <= b.seen {
		return nil
	}
	d := &agg{kind: a.kind, outcome: a.outcome, key: a.key, seen: a.seen - b.seen, hourTop: a.hourTop, dayTop: a.dayTop, days: make([]uint16, len(a.days))}
	// The exact times: a's latest not among b's (as a multiset).
	br := map[int64]int{}
	for _, t := range b.recent[:min(int(b.seen), recentN)] {
		br[t]++
	}
	n := 0
	for _, t := range a.recent[:min(int(a.seen), recentN)] {
		if br[t] > 0 {
			br[t]--
			continue
		}
		if n < int(d.seen) && n < recentN {
			d.recent[n] = t
			n++
		}
	}
	subRing(d.hours[:], a.hours[:], a.hourTop, b.hours[:], b.hourTop)
	subRing(d.days, a.days, a.dayTop, b.days, b.dayTop)
	return d
}

// subRing sets dst (newest bucket top, as a's) to a's buckets less b's.
func subRing(dst, a []uint16, top int64, b []uint16, bTop int64) {
	n := int64(len(a))
	for i := range n {
		x := top - i
		v := int(a[mod(x, len(a))])
		if x <= bTop && x > bTop-int64(len(b)) {
			v -= int(b[mod(x, len(b))])
		}
		dst[mod(x, len(dst))] = uint16(max(v, 0))
	}
}
