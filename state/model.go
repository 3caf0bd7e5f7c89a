package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Customer is one customer's state: immutable once built (a change builds
// the next one, sharing what did not change), so a reader holding one is
// never affected by writes. Model.Apply computes it, Model.View reads it,
// Model.AppendCustomer and Model.DecodeCustomer encode it.
type Customer = custState

// Record is one change to one customer, built and validated by the model
// (ContactRecord, EventRecord, JourneyRecord) and applied by Model.Apply.
type Record = record

// NewModel validates cfg (its mappings, snapshot fields and per-customer
// bounds; WAL and the store's own settings are not read) and returns the
// model that applies it. Every backend serving one bundle builds its model
// from the same Config, so that all apply the same rules.
func NewModel(cfg Config) (*Model, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cm, err := compile(cfg.Mappings, cfg.SnapshotFields)
	if err != nil {
		return nil, fmt.Errorf("mappings: %w", err)
	}
	m := new(Model)
	m.init(cfg, cm)
	return m, nil
}

// init sets up m for a validated cfg and its compiled mappings.
func (m *Model) init(cfg Config, cm *compiled) {
	m.m, m.days = cm, int((cfg.MaxWindow+time.Duration(dayNanos)-1)/time.Duration(dayNanos))+1
	m.maxEvents, m.maxKeys, m.maxJourneys = cfg.MaxEventsPerCustomer, cfg.MaxKeysPerCustomer, cfg.MaxJourneysPerCustomer
	m.maxIDs, m.maxString, m.ctr = cfg.MaxIDsPerCustomer, cfg.MaxStringBytes, new(counters)
	m.intern.max = cfg.MaxInterned
}

// View fills v with c (nil: a customer without state) as readers see it
// while a snapshot with the as-of time asOf (unix nanoseconds) is served.
func (m *Model) View(c *Customer, asOf int64, v *View) {
	v.c, v.m, v.asOf = c, m.m, asOf
}

// AppendCustomer appends the encoding of c to dst: the per-customer format
// of the embedded store's checkpoints, and the value a shared backend
// keeps per customer. Field values are stored by slot: decode with a model
// of the same mappings (a backend keeps a digest of them beside the value).
//
// A customer without sections (consent.go) encodes as before sections
// existed, so older readers still load it; one with sections ends with
// them and their end tag.
func (m *Model) AppendCustomer(dst []byte, c *Customer) []byte {
	dst = m.appendCustomer(dst, c)
	if hasSections(c) {
		dst = appendSections(dst, c)
	}
	return dst
}

// DecodeCustomer decodes a value AppendCustomer wrote, applying this
// model's bounds.
func (m *Model) DecodeCustomer(b []byte) (*Customer, error) {
	types := make([]FieldType, len(m.m.fields))
	remap := make([]int, len(m.m.fields))
	for i, f := range m.m.fields {
		types[i], remap[i] = f.Type, i
	}
	d := &rd{r: bufio.NewReader(bytes.NewReader(b)), one: true}
	var res Result
	c, id := m.decodeCustomer(d, ckptVersion, remap, types, &res)
	if d.err != nil {
		return nil, fmt.Errorf("cannot decode customer state: %w", d.err)
	}
	if _, err := d.r.ReadByte(); err == nil {
		return nil, errors.New("cannot decode customer state: trailing bytes")
	}
	c.id = m.intern.get(id, &m.ctr.internFull)
	return c, nil
}

// Stats returns the counters the model keeps while building records:
// UnmappedEvents, MissingAttrs and InternFull (the other fields are zero;
// a backend counts them from Result).
func (m *Model) Stats() Stats {
	return Stats{UnmappedEvents: m.ctr.unmapped.Load(), MissingAttrs: m.ctr.missingAttrs.Load(), InternFull: m.ctr.internFull.Load()}
}

// ID returns the customer's id.
func (c *custState) ID() string { return c.id }

// Journeys returns the customer's journey states; the slice is shared and
// must not be changed.
func (c *custState) Journeys() []JourneyState { return c.journeys }

// ContactRecord validates a contact and returns the record that adds it to
// its customer; an error means the contact is invalid (ErrInvalid for the
// caller).
func (m *Model) ContactRecord(c Contact) (Record, error) {
	err := errors.Join(m.checkString("customer", c.Customer, true), m.checkString("action", c.Action, true),
		m.checkString("group", c.Group, false), m.checkString("channel", c.Channel, false),
		m.checkString("id", c.ID, false), checkVia(c.Via), checkTime(c.At))
	if err == nil && c.Outcome >= numOutcomes {
		err = fmt.Errorf("unknown outcome %d", c.Outcome)
	}
	if err == nil && (math.IsNaN(c.Value) || math.IsInf(c.Value, 0)) {
		err = fmt.Errorf("value %v is not finite", c.Value)
	}
	if err != nil {
		return record{}, err
	}
	typ := recContact2
	if c.Decision != "" && c.Outcome == Impression {
		if err := m.checkString("decision", c.Decision, false); err != nil {
			return record{}, err
		}
		typ = recContact3
	}
	return record{typ: typ, customer: c.Customer, id: c.ID, at: c.At.UnixNano(), decision: c.Decision,
		action: c.Action, group: c.Group, channel: c.Channel, outcome: c.Outcome, num: c.Value, via: c.Via}, nil
}

// EventRecord validates an event and resolves it through the mappings
// into the record that applies it to its customer (overlay changes and
// journey moves); an error means the event is invalid (ErrInvalid for the
// caller). A record with no change and no JourneysFrom changes nothing.
func (m *Model) EventRecord(e Event) (Record, error) {
	err := errors.Join(m.checkString("customer", e.Customer, true), m.checkString("event type", e.Type, true),
		m.checkString("id", e.ID, false), checkVia(e.Via), checkTime(e.At))
	if err == nil && len(e.Journeys) > maxDecodedJourn {
		err = fmt.Errorf("%d journey moves exceed the limit of %d", len(e.Journeys), maxDecodedJourn)
	}
	for j, mv := range e.Journeys {
		if err != nil {
			break
		}
		err = m.checkMove(mv.Journey, mv.Step, mv.Status)
		if err != nil {
			err = fmt.Errorf("journey move %d: %w", j, err)
		}
	}
	if err != nil {
		return record{}, err
	}
	r := record{typ: recEvent2, customer: e.Customer, id: e.ID, at: e.At.UnixNano(), via: e.Via}
	for _, mv := range e.Journeys {
		st := mv.Status
		if st == 0 {
			st = JourneyActive
		}
		r.moves = append(r.moves, move{journey: mv.Journey, step: mv.Step, status: st})
	}
	ops, ok := m.m.events[e.Type]
	if !ok {
		m.ctr.unmapped.Add(1)
	}
	for _, op := range ops {
		f := m.m.fields[op.slot]
		eff := effect{field: f.Name, typ: op.typ}
		switch op.kind {
		case opStamp:
			eff.op, eff.v = opSet, value{unix: r.at}
		case opIncr:
			eff.op, eff.v = opIncr, op.konst
			if op.attr != "" {
				x, ok := e.Attrs[op.attr]
				if !ok {
					m.ctr.missingAttrs.Add(1)
					continue
				}
				v, err := attrValue(x, TypeNumber)
				if err != nil {
					return record{}, fmt.Errorf("%s: incr %s from %s: %w", e.Type, f.Name, op.attr, err)
				}
				eff.v = v
			}
		case opSet:
			eff.op, eff.v = opSet, op.konst
			if op.attr != "" {
				x, ok := e.Attrs[op.attr]
				if !ok {
					m.ctr.missingAttrs.Add(1)
					continue
				}
				v, err := attrValue(x, op.typ)
				if err != nil {
					return record{}, fmt.Errorf("%s: set %s from %s: %w", e.Type, f.Name, op.attr, err)
				}
				eff.v = v
			}
			if op.typ == TypeCategory {
				if err := m.checkString("category value", eff.v.str, false); err != nil {
					return record{}, fmt.Errorf("%s: set %s: %w", e.Type, f.Name, err)
				}
			}
		}
		r.effects = append(r.effects, eff)
	}
	r.movesFrom, r.given = e.JourneysFrom, len(r.moves)
	return r, nil
}

// JourneyRecord validates a journey move and returns the record that makes
// it; an error means the move is invalid (ErrInvalid for the caller).
func (m *Model) JourneyRecord(u JourneyUpdate) (Record, error) {
	err := errors.Join(m.checkString("customer", u.Customer, true), checkVia(u.Via), checkTime(u.At))
	if err == nil {
		err = m.checkMove(u.Journey, u.Step, u.Status)
	}
	if err == nil && u.Conditional && (u.FromStatus > JourneyExited || u.FromStep < 0) {
		err = fmt.Errorf("precondition step %d status %d is out of range", u.FromStep, u.FromStatus)
	}
	if err != nil {
		return record{}, err
	}
	st := u.Status
	if st == 0 {
		st = JourneyActive
	}
	return record{typ: recJourney, customer: u.Customer, at: u.At.UnixNano(), journey: u.Journey, step: u.Step, status: st,
		cond: u.Conditional, fromStep: u.FromStep, fromStatus: u.FromStatus, via: u.Via}, nil
}

// Model is the rules that change a customer: Apply computes a customer's
// next state from its current one and one record (a contact, an event's
// overlay changes and journey moves, a journey move), idempotency by the
// record's id and the per-customer bounds included. It is a function of
// its inputs and the configuration (mappings, bounds, window): it reads no
// clock and no store, and changes nothing but the interner that shares
// strings, so every backend applies it the same way: the embedded store
// to replay its log and to make live writes, a shared store to compute a
// value it writes back with a compare-and-set. Safe for concurrent use.
type Model struct {
	m      *compiled
	days   int // day buckets per aggregate
	intern interner

	maxEvents, maxKeys, maxJourneys, maxIDs int
	maxString                               int
	ctr                                     *counters // unmapped events, missing attributes, a full interner
}

// Result tells what one Apply did besides the change itself: what the
// customer's bounds evicted, overlay changes dropped (fields no longer
// mapped), and whether the record was a duplicate (its id remembered by
// the customer's state: nothing applied).
type Result struct {
	Duplicate bool
	// Conflict: a conditional journey move whose precondition failed (the
	// customer is no longer where the move was decided from); nothing
	// applied. Empty: an event whose computed moves left it changing
	// nothing; nothing to write.
	Conflict, Empty bool
	// Journeys is the number of journey moves applied.
	Journeys                                                 int
	HistoryEvicted, KeysEvicted, JourneysEvicted, IDsEvicted int
	Dropped                                                  int
}

// add sums what two applications evicted and dropped.
func (r *Result) add(o Result) {
	r.HistoryEvicted += o.HistoryEvicted
	r.KeysEvicted += o.KeysEvicted
	r.JourneysEvicted += o.JourneysEvicted
	r.IDsEvicted += o.IDsEvicted
	r.Dropped += o.Dropped
}

// Apply is one atomic per-customer step: it returns the customer's state
// after r, given its state before (old; nil for a customer without state)
// and the as-of time of the served snapshot (overlay changes to fields
// that reset on a snapshot, stamped at or before it, are ignored). In
// order: a record whose id old remembers is a duplicate
// (Result.Duplicate); an event's JourneysFrom computes its moves from
// old's journeys (an event that then changes nothing is
// Result.Empty); a conditional journey move whose precondition old does
// not meet fails with ErrConflict. In these cases, and for an event that
// changes no field of this configuration for a customer without state,
// it returns old itself: nothing is to be written. old is never changed:
// the next state shares what did not change with it (copy-on-write), so a
// backend that loses a compare-and-set calls Apply again on the newer
// state. The next state's sequence number is r's (see SetSeq). Errors are
// of a kind (KindOf).
func (m *Model) Apply(old *Customer, r *Record, asOf int64) (*Customer, Result, error) {
	return m.apply(old, r, asOf, true)
}

// ApplyLogged is Apply for a record read back from a log, which was
// checked and completed (computed moves) when it was written: it is
// applied whatever ids the state remembers (after a restart with a larger
// Config.MaxIDsPerCustomer the state may remember an id the writer had
// forgotten).
func (m *Model) ApplyLogged(old *Customer, r *Record, asOf int64) (*Customer, Result) {
	next, res, _ := m.apply(old, r, asOf, false)
	return next, res
}

// SetSeq sets the sequence number of r (a log position, a version): the
// embedded store numbers its records in log order.
func (r *record) SetSeq(seq uint64) { r.lsn = seq }

func (m *Model) apply(old *custState, r *record, asOf int64, live bool) (*custState, Result, error) {
	var res Result
	if live {
		if old != nil && r.id != "" && old.seen(r.idKind(), r.id) {
			res.Duplicate = true
			return old, res, nil
		}
		if r.movesFrom != nil {
			if err := m.computeMoves(r, old); err != nil {
				return old, res, err
			}
			if len(r.effects) == 0 && len(r.moves) == 0 {
				res.Empty = true // changes nothing: not written, its id not remembered
				return old, res, nil
			}
		}
		if r.typ != recIdent {
			if err := moved(old); err != nil {
				return old, res, err
			}
		}
		if r.typ == recReserve {
			if err := checkReserve(old, r, &res); err != nil || res.Duplicate {
				return old, res, err
			}
		}
		if r.typ == recIdent && r.ident.op == identRestore && len(r.ident.expect) > 0 && !bytes.Equal(m.stateDigest(old), r.ident.expect) {
			res.Conflict = true
			return old, res, &Error{Kind: ErrConflict, Err: fmt.Errorf("customer %q changed since the unmerge read it", r.customer)}
		}
		if r.typ == recJourney && r.cond && !journeyAt(old, r.journey, r.fromStep, r.fromStatus) {
			res.Conflict = true
			return old, res, &Error{Kind: ErrConflict, Err: fmt.Errorf("journey %q of customer %q is no longer at step %d (%s)", r.journey, r.customer, r.fromStep, r.fromStatus)}
		}
	}
	var next custState
	if old != nil {
		next = *old
	} else {
		next.id = m.intern.get(r.customer, &m.ctr.internFull)
	}
	next.lsn = r.lsn
	switch r.typ {
	case recContact, recContact2, recContact3:
		m.applyContact(&next, r, &res)
		if r.typ == recContact3 {
			convertReserve(&next, r)
		}
	case recReserve:
		m.applyReserve(&next, r)
	case recEvent, recEvent2:
		if !m.applyEffects(&next, r, asOf, &res) && old == nil && len(r.moves) == 0 && r.id == "" {
			return old, res, nil // no field of this config changed; keep no state
		}
		for _, mv := range r.moves {
			m.applyJourney(&next, mv.journey, mv.step, mv.status, r.at, &res)
		}
	case recJourney:
		m.applyJourney(&next, r.journey, r.step, r.status, r.at, &res)
	case recConsent:
		if err := m.applyConsent(&next, r, &res); err != nil {
			return old, res, err
		}
	case recIdent:
		n, err := m.applyIdent(old, &next, r, &res, live)
		if err != nil || n == old {
			if live {
				return old, res, err
			}
			return old, res, nil
		}
		return n, res, nil
	}
	if r.id != "" {
		m.remember(&next, r.idKind(), r.id, &res)
	}
	if next.ident != nil {
		m.noteWrite(&next, r, asOf)
	}
	return &next, res, nil
}

// computeMoves sets r's journey moves to those the event gave plus those
// its JourneysFrom computes from the customer's journeys in old,
// validated. It can be called again for a retry: it starts from the given
// moves each time.
func (m *Model) computeMoves(r *record, old *custState) error {
	var cur []JourneyState
	if old != nil {
		cur = old.journeys
	}
	ms := r.movesFrom(cur)
	r.moves = r.moves[:r.given]
	if len(r.moves)+len(ms) > maxDecodedJourn {
		return invalidf("cannot apply event: %d journey moves exceed the limit of %d", len(r.moves)+len(ms), maxDecodedJourn)
	}
	for j, mv := range ms {
		if err := m.checkMove(mv.Journey, mv.Step, mv.Status); err != nil {
			return invalidf("cannot apply event: computed journey move %d: %w", j, err)
		}
		st := mv.Status
		if st == 0 {
			st = JourneyActive
		}
		r.moves = append(r.moves, move{journey: mv.Journey, step: mv.Step, status: st})
	}
	return nil
}

func (m *Model) applyContact(cs *custState, r *record, res *Result) {
	c := Contact{
		Action:  m.intern.get(r.action, &m.ctr.internFull),
		Group:   m.intern.get(r.group, &m.ctr.internFull),
		Channel: m.intern.get(r.channel, &m.ctr.internFull),
		Outcome: r.outcome, Value: r.num, At: time.Unix(0, r.at).UTC(),
	}
	// History: a persistent list, newest first; rebuilt when the chain
	// holds twice the visible entries so evicted ones can be collected.
	cs.hist = &histNode{c: c, next: cs.hist}
	cs.histLen++
	if cs.histN < m.maxEvents {
		cs.histN++
	} else {
		res.HistoryEvicted++
	}
	if cs.histLen >= 2*m.maxEvents {
		nodes := make([]histNode, cs.histN)
		n := cs.hist
		for i := range nodes {
			nodes[i].c = n.c
			if i > 0 {
				nodes[i-1].next = &nodes[i]
			}
			n = n.next
		}
		cs.hist, cs.histLen = &nodes[0], cs.histN
	}
	// Aggregates.
	cs.aggs = slices.Clone(cs.aggs)
	bump := func(k Kind, key string) {
		if key == "" {
			return
		}
		for i, ref := range cs.aggs {
			if ref.kind == k && ref.outcome == r.outcome && ref.key == key {
				a := ref.a.clone()
				a.add(r.at)
				cs.aggs[i].a, cs.aggs[i].last = a, a.recent[0]
				return
			}
		}
		a := &agg{kind: k, outcome: r.outcome, key: key, days: make([]uint16, m.days)}
		a.add(r.at)
		ref := aggRef{kind: k, outcome: r.outcome, key: key, last: a.recent[0], a: a}
		if len(cs.aggs) < m.maxKeys {
			cs.aggs = append(cs.aggs, ref)
			return
		}
		oldest := 0
		for i, b := range cs.aggs {
			if b.last < cs.aggs[oldest].last {
				oldest = i
			}
		}
		cs.aggs[oldest] = ref
		res.KeysEvicted++
	}
	bump(KindAction, c.Action)
	bump(KindGroup, c.Group)
	bump(KindChannel, c.Channel)
}

// applyEffects applies overlay changes; it reports whether any field of the
// current mappings changed.
func (m *Model) applyEffects(cs *custState, r *record, asOf int64, res *Result) bool {
	changed := false
	for _, eff := range r.effects {
		slot, ok := m.m.slots[eff.field]
		if !ok || m.m.fields[slot].Type != eff.typ {
			res.Dropped++
			continue
		}
		reset := m.m.fields[slot].ResetOnSnapshot
		if reset && r.at <= asOf {
			continue // the snapshot already covers it
		}
		if !changed {
			if cs.overlay == nil {
				cs.overlay = make([]value, len(m.m.fields))
			} else {
				cs.overlay = slices.Clone(cs.overlay)
			}
			changed = true
		}
		cur := &cs.overlay[slot]
		v := eff.v
		if eff.typ == TypeCategory {
			v.str = m.intern.get(v.str, &m.ctr.internFull)
		}
		if eff.op == opIncr {
			if !reset || cur.at > asOf {
				v.num += cur.num
			}
			v.at = max(r.at, cur.at)
		} else {
			v.at = r.at
		}
		*cur = v
	}
	return changed
}

// remember adds an idempotency key to cs, forgetting the oldest beyond
// MaxIDsPerCustomer. The slice is copied: older snapshots share the old one.
func (m *Model) remember(cs *custState, k idKind, id string, res *Result) {
	keep := min(len(cs.ids), m.maxIDs-1)
	if drop := len(cs.ids) - keep; drop > 0 {
		res.IDsEvicted += drop
	}
	ids := make([]idKey, keep, keep+1)
	copy(ids, cs.ids[len(cs.ids)-keep:])
	// Cloned: the id may be borrowed from a request buffer. Not interned:
	// keys are unique by design and would only fill the interner.
	cs.ids = append(ids, idKey{kind: k, id: strings.Clone(id)})
}

func (m *Model) applyJourney(cs *custState, journey string, step int, status JourneyStatus, atNanos int64, res *Result) {
	res.Journeys++
	at := time.Unix(0, atNanos).UTC()
	cs.journeys = slices.Clone(cs.journeys)
	for i := range cs.journeys {
		j := &cs.journeys[i]
		if j.Journey != journey {
			continue
		}
		switch {
		case j.Status != JourneyActive && status == JourneyActive:
			j.EnteredAt, j.StepAt = at, at
		case j.Step != step:
			j.StepAt = at
		}
		j.Step, j.Status = step, status
		return
	}
	j := JourneyState{Journey: m.intern.get(journey, &m.ctr.internFull), Step: step, Status: status, EnteredAt: at, StepAt: at}
	if len(cs.journeys) < m.maxJourneys {
		cs.journeys = append(cs.journeys, j)
		return
	}
	victim := 0
	for i, x := range cs.journeys {
		v := cs.journeys[victim]
		if (x.Status != JourneyActive) != (v.Status != JourneyActive) {
			if x.Status != JourneyActive {
				victim = i
			}
			continue
		}
		if x.StepAt.Before(v.StepAt) {
			victim = i
		}
	}
	cs.journeys[victim] = j
	res.JourneysEvicted++
}

// journeyAt reports whether the customer's state in the journey is step
// with status (status 0: not in the journey).
func journeyAt(cs *custState, journey string, step int, status JourneyStatus) bool {
	if cs != nil {
		for i := range cs.journeys {
			if j := &cs.journeys[i]; j.Journey == journey {
				return j.Status == status && (status != JourneyActive || j.Step == step)
			}
		}
	}
	return status == 0
}
