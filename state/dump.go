package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// CustomerDump is the whole of one customer's state as plain values: what
// Porter.Each reads and Porter.Restore writes, for moving state between
// directories and backends (nba state export and import). Restoring what
// Each read gives a customer whose View answers every question the same.
type CustomerDump struct {
	ID string
	// Contacts are the kept history, the latest recorded first (as
	// View.History); their Customer and ID are empty (ids are in IDs).
	Contacts []Contact
	// Fields are the set overlay values a View shows.
	Fields []FieldValue
	// Journeys are the customer's journey positions.
	Journeys []JourneyState
	// IDs are the remembered idempotency keys, oldest first.
	IDs []RememberedID
	// Counters are the cap-window aggregates, which keep counting
	// contacts no longer in Contacts. Restore rebuilds them from
	// Contacts when there are none.
	Counters []Counter
	// Consent is the customer's consent per channel and purpose, each with
	// its audit trail, oldest first (consent.go).
	Consent []ConsentStatus
	// Identifiers are the profile's linked identifiers with their
	// provenance (identity stitching; a hashed namespace's value as stored,
	// so the target must hash with the same identity key). Restore points
	// the identifier index at the customer again (ClaimIdentifiers).
	Identifiers []Identifier
	// MergedInto is the profile this one was merged into ("" when it was
	// not): it is restored as a forward, so its id still reaches the merged
	// profile. A merge still in progress at the export (identity_model.go,
	// step 1 done, step 3 not) is exported as if not begun.
	MergedInto string
	// Receipt is, for a profile merged into MergedInto, the merge's
	// receipt, and Saved the profile's own state from before the merge
	// (nil: it had none): with them and the survivor's Merges, an unmerge
	// after an import gives both sides what it would have before the
	// export.
	Receipt string
	Saved   *CustomerDump
	// Merges are the merges the profile absorbed that can still be undone
	// (Identities.Unmerge), oldest first.
	Merges []MergeDump
	// Expired are identifiers the profile dropped because their
	// namespace's ttl ran out, newest last: the anonymous profile each
	// first had forwards here, and this tells where it leads since.
	Expired []ExpiredIdentifier
	// Reservations are the customer's reservations of exact caps
	// (reserve.go), oldest first, their Customer empty: a decision's slot
	// held until its impression comes or the reservation expires. Without
	// them a moved customer could be given the slot a second time.
	Reservations []Reservation
}

// ExpiredIdentifier is an identifier dropped by its ttl: its index key
// (Identifier.Key) and the anonymous profile it names since (FreshID).
type ExpiredIdentifier struct {
	Key, Fresh string
}

// MergeDump is one merge a profile absorbed, as its survivor keeps it for
// an unmerge.
type MergeDump struct {
	Receipt string
	From    string        // the absorbed profile
	Before  *CustomerDump // the survivor's state before the merge; nil: it had none
	// Since are the writes made to the survivor since the merge, oldest
	// first, which an unmerge splits by the identifier that brought each;
	// Full: later ones were not logged (past the bounds, or after a later
	// merge) and stay with the survivor.
	Since []LoggedWrite
	Full  bool
}

// LoggedWrite is one write a merge logged: its record in the state log's
// format (which names overlay fields, not slots, so it reads the same on
// every backend and after a change of mappings) and the snapshot as-of
// time (unix ns) it was applied with.
type LoggedWrite struct {
	AsOf   int64
	Record []byte
}

// maxDumpDepth bounds the nesting of dumps (Saved, MergeDump.Before):
// each level is a merge undone inside another's saved state.
const maxDumpDepth = 8

// FieldValue is one overlay field's value and the time of the event that
// last changed it.
type FieldValue struct {
	Field string
	Type  FieldType
	Num   float64   // TypeNumber; TypeBool as 0 or 1
	Time  time.Time // TypeTime
	Str   string    // TypeCategory
	At    time.Time
}

// RememberedID is one remembered idempotency key: a Contact.ID or, if
// Event, an Event.ID, or, if Consent, a Consent.ID.
type RememberedID struct {
	ID      string
	Event   bool
	Consent bool
}

// Counter is one cap-window aggregate of a customer's contacts for a
// (kind, key, outcome): see the precision notes in agg.go. Rings are listed
// newest bucket first, trailing zero buckets omitted.
type Counter struct {
	Kind    Kind
	Key     string
	Outcome Outcome
	Seen    uint32  // contacts counted, saturating
	Recent  []int64 // the latest min(Seen, 8) contact times, unix ns, newest first
	HourTop int64   // unix hour of Hours[0]
	Hours   []uint16
	DayTop  int64 // unix day of Days[0]
	Days    []uint16
}

// Dump copies cs into a CustomerDump, without the overlay values a View
// would hide at asOf (unix ns): what Each reads, for every backend.
func (m *Model) Dump(cs *Customer, asOf int64) *CustomerDump {
	c := &CustomerDump{ID: cs.id}
	v := View{c: cs, m: m.m, asOf: asOf}
	c.Contacts = v.History(make([]Contact, 0, cs.histN), cs.histN)
	for i := range c.Contacts {
		c.Contacts[i].Customer = ""
	}
	for i := range cs.overlay {
		x := &cs.overlay[i]
		if v.hidden(Slot(i), x) {
			continue
		}
		f := m.m.fields[i]
		fv := FieldValue{Field: f.Name, Type: f.Type, At: time.Unix(0, x.at).UTC()}
		switch f.Type {
		case TypeTime:
			fv.Time = time.Unix(0, x.unix).UTC()
		case TypeCategory:
			fv.Str = x.str
		default:
			fv.Num = x.num
		}
		c.Fields = append(c.Fields, fv)
	}
	c.Journeys = slices.Clone(cs.journeys)
	for _, k := range cs.ids {
		c.IDs = append(c.IDs, RememberedID{ID: k.id, Event: k.kind == idEvent, Consent: k.kind == idConsent})
	}
	for _, p := range cs.consent {
		c.Consent = append(c.Consent, ConsentStatus{Channel: p.channel, Purpose: p.purpose, Trail: slices.Clone(p.trail)})
	}
	for _, ref := range cs.aggs {
		a := ref.a
		k := Counter{Kind: a.kind, Key: a.key, Outcome: a.outcome, Seen: a.seen,
			Recent: slices.Clone(a.recent[:min(int(a.seen), recentN)]), HourTop: a.hourTop, DayTop: a.dayTop}
		k.Hours = newestFirst(a.hours[:], a.hourTop)
		k.Days = newestFirst(a.days, a.dayTop)
		c.Counters = append(c.Counters, k)
	}
	for _, r := range cs.res {
		x := Reservation{Decision: r.decision, Action: r.action, Group: r.group, Channel: r.channel,
			At: time.Unix(0, r.at).UTC(), Expires: time.Unix(0, r.expires).UTC()}
		for _, k := range r.caps {
			x.Caps = append(x.Caps, ExactCap{Kind: k.kind, Key: k.key, Window: time.Duration(k.window), Max: int(k.max)})
		}
		c.Reservations = append(c.Reservations, x)
	}
	if p := cs.ident; p != nil {
		c.Identifiers, c.MergedInto = slices.Clone(p.ids), p.fwd
		if p.fwd != "" {
			c.Receipt = p.receipt
			c.Saved = m.dumpValue(p.saved, asOf)
		}
		for _, g := range p.gone {
			c.Expired = append(c.Expired, ExpiredIdentifier{Key: g.key, Fresh: g.fresh})
		}
		for _, mr := range p.merges {
			md := MergeDump{Receipt: mr.receipt, From: mr.from, Full: mr.full, Before: m.dumpValue(mr.pre, asOf)}
			for _, e := range mr.since {
				md.Since = append(md.Since, LoggedWrite{AsOf: e.asOf, Record: slices.Clone(e.rec)})
			}
			c.Merges = append(c.Merges, md)
		}
	}
	return c
}

// dumpValue dumps an encoded customer value kept by the identity part (nil
// for none, or one this model cannot decode).
func (m *Model) dumpValue(b []byte, asOf int64) *CustomerDump {
	if len(b) == 0 {
		return nil
	}
	cs, err := m.DecodeCustomer(b)
	if err != nil {
		return nil
	}
	return m.Dump(cs, asOf)
}

// newestFirst lists a ring's buckets from top backwards, without trailing
// zeros.
func newestFirst(ring []uint16, top int64) []uint16 {
	out := make([]uint16, len(ring))
	for i := range out {
		out[i] = ring[mod(top-int64(i), len(ring))]
	}
	for len(out) > 0 && out[len(out)-1] == 0 {
		out = out[:len(out)-1]
	}
	return out
}

// checkCustomer reports why Restore would refuse c, or nil.
func (m *Model) checkCustomer(c *CustomerDump) error { return m.checkDump(c, 0) }

// checkDump is checkCustomer of a dump nested depth deep.
func (m *Model) checkDump(c *CustomerDump, depth int) error {
	if depth > maxDumpDepth {
		return fmt.Errorf("saved states nested deeper than %d", maxDumpDepth)
	}
	if err := m.checkString("customer", c.ID, true); err != nil {
		return err
	}
	if len(c.Contacts) > maxDecodedHist {
		return fmt.Errorf("%d contacts exceed the limit of %d", len(c.Contacts), maxDecodedHist)
	}
	for i, k := range c.Contacts {
		err := errors.Join(m.checkString("action", k.Action, true), m.checkString("group", k.Group, false),
			m.checkString("channel", k.Channel, false), checkTime(k.At))
		if err == nil && k.Outcome >= numOutcomes {
			err = fmt.Errorf("unknown outcome %d", k.Outcome)
		}
		if err == nil && (math.IsNaN(k.Value) || math.IsInf(k.Value, 0)) {
			err = errors.New("value is not finite")
		}
		if err != nil {
			return fmt.Errorf("contact %d: %w", i, err)
		}
	}
	for i, f := range c.Fields {
		err := errors.Join(m.checkString("field", f.Field, true), checkTime(f.At))
		switch {
		case err != nil:
		case !validType(f.Type):
			err = fmt.Errorf("unknown type %d", f.Type)
		case f.Type == TypeTime:
			if f.Time.Year() < 1678 || f.Time.Year() > 2261 {
				err = errors.New("time value out of range")
			}
		case f.Type == TypeCategory:
			err = m.checkString("category value", f.Str, false)
		case f.Type == TypeBool && f.Num != 0 && f.Num != 1:
			err = errors.New("bool value is not 0 or 1")
		case math.IsNaN(f.Num) || math.IsInf(f.Num, 0):
			err = errors.New("value is not finite")
		}
		if err == nil && slices.ContainsFunc(c.Fields[:i], func(g FieldValue) bool { return g.Field == f.Field }) {
			err = errors.New("field given twice")
		}
		if err != nil {
			return fmt.Errorf("field %d: %w", i, err)
		}
	}
	if len(c.Journeys) > maxDecodedJourn {
		return fmt.Errorf("%d journeys exceed the limit of %d", len(c.Journeys), maxDecodedJourn)
	}
	for i, j := range c.Journeys {
		err := m.checkMove(j.Journey, j.Step, j.Status)
		if err == nil && j.Status == 0 {
			err = errors.New("journey status is missing")
		}
		if err == nil {
			err = errors.Join(checkTime(j.EnteredAt), checkTime(j.StepAt))
		}
		if err == nil && slices.ContainsFunc(c.Journeys[:i], func(k JourneyState) bool { return k.Journey == j.Journey }) {
			err = errors.New("journey given twice")
		}
		if err != nil {
			return fmt.Errorf("journey %d: %w", i, err)
		}
	}
	if len(c.IDs) > maxDecodedIDs {
		return fmt.Errorf("%d idempotency keys exceed the limit of %d", len(c.IDs), maxDecodedIDs)
	}
	for i, k := range c.IDs {
		if err := m.checkString("id", k.ID, true); err != nil {
			return fmt.Errorf("idempotency key %d: %w", i, err)
		}
		if k.Event && k.Consent {
			return fmt.Errorf("idempotency key %d: both an event and a consent id", i)
		}
	}
	if err := m.checkConsentDump(c.Consent); err != nil {
		return err
	}
	if err := m.checkIdentityDump(c, depth); err != nil {
		return err
	}
	if len(c.Reservations) > MaxReservations {
		return fmt.Errorf("%d reservations exceed the limit of %d", len(c.Reservations), MaxReservations)
	}
	for i, r := range c.Reservations {
		r.Customer = c.ID
		_, err := m.ReserveRecord(r)
		if err == nil && slices.ContainsFunc(c.Reservations[:i], func(o Reservation) bool { return o.Decision == r.Decision && o.Action == r.Action }) {
			err = errors.New("reservation given twice")
		}
		if err != nil {
			return fmt.Errorf("reservation %d: %w", i, err)
		}
	}
	if len(c.Counters) > maxDecodedAggs {
		return fmt.Errorf("%d counters exceed the limit of %d", len(c.Counters), maxDecodedAggs)
	}
	for i, k := range c.Counters {
		err := m.checkString("key", k.Key, true)
		switch {
		case err != nil:
		case k.Kind >= numKinds:
			err = fmt.Errorf("unknown kind %d", k.Kind)
		case k.Outcome >= numOutcomes:
			err = fmt.Errorf("unknown outcome %d", k.Outcome)
		case len(k.Recent) != min(int(k.Seen), recentN):
			err = fmt.Errorf("%d recent times for a count of %d", len(k.Recent), k.Seen)
		case len(k.Hours) > hourBuckets:
			err = fmt.Errorf("%d hour buckets exceed %d", len(k.Hours), hourBuckets)
		case len(k.Days) > maxDecodedDays:
			err = fmt.Errorf("%d day buckets exceed %d", len(k.Days), maxDecodedDays)
		case k.HourTop < 0 || k.HourTop > math.MaxInt64/hourNanos || k.DayTop < 0 || k.DayTop > math.MaxInt64/dayNanos:
			err = errors.New("bucket index out of range")
		}
		for j, t := range k.Recent {
			if err == nil && (t <= 0 || j > 0 && t > k.Recent[j-1]) {
				err = errors.New("recent times are not positive and newest first")
			}
		}
		if err == nil && slices.ContainsFunc(c.Counters[:i], func(o Counter) bool {
			return o.Kind == k.Kind && o.Outcome == k.Outcome && o.Key == k.Key
		}) {
			err = errors.New("counter given twice")
		}
		if err != nil {
			return fmt.Errorf("counter %d: %w", i, err)
		}
	}
	return nil
}

// Restored checks d and builds the customer state it describes, as
// Porter.Restore installs it and every backend restores it: fields the
// mappings do not have are dropped (Result.Dropped), fields that reset on
// a snapshot stamped at or before asOf (unix ns) are left out, and the
// per-customer bounds apply (the newest contacts, keys, journeys and
// idempotency keys are kept; Result counts what they evicted). An error
// (ErrInvalid) means d is invalid.
func (m *Model) Restored(d *CustomerDump, asOf int64) (*Customer, Result, error) {
	if err := m.checkCustomer(d); err != nil {
		return nil, Result{}, invalid(err)
	}
	next, res := m.restored(d, asOf)
	return next, res, nil
}

// restored builds the state of a checked dump.
func (m *Model) restored(c *CustomerDump, asOf int64) (*custState, Result) {
	var res Result
	next := &custState{id: m.intern.get(c.ID, &m.ctr.internFull)}
	if len(c.Counters) == 0 {
		// History and aggregates as if the contacts were recorded again,
		// oldest first.
		for i := len(c.Contacts) - 1; i >= 0; i-- {
			k := &c.Contacts[i]
			r := record{action: k.Action, group: k.Group, channel: k.Channel, outcome: k.Outcome, num: k.Value, at: k.At.UnixNano()}
			m.applyContact(next, &r, &res)
		}
	} else {
		m.restoreHistory(next, c.Contacts, &res)
		m.restoreCounters(next, c.Counters, &res)
	}
	for _, f := range c.Fields {
		sl, ok := m.m.slots[f.Field]
		if !ok || m.m.fields[sl].Type != f.Type {
			res.Dropped++
			continue
		}
		at := f.At.UnixNano()
		if m.m.fields[sl].ResetOnSnapshot && at <= asOf {
			continue // the snapshot covers it
		}
		if next.overlay == nil {
			next.overlay = make([]value, len(m.m.fields))
		}
		v := value{num: f.Num, at: at}
		switch f.Type {
		case TypeTime:
			v = value{unix: f.Time.UnixNano(), at: at}
		case TypeCategory:
			v = value{str: m.intern.get(f.Str, &m.ctr.internFull), at: at}
		}
		next.overlay[sl] = v
	}
	for _, j := range c.Journeys {
		j.Journey = m.intern.get(j.Journey, &m.ctr.internFull)
		j.EnteredAt, j.StepAt = j.EnteredAt.UTC(), j.StepAt.UTC()
		next.journeys = append(next.journeys, j)
	}
	if n := len(next.journeys) - m.maxJourneys; n > 0 {
		// Keep the active ones, then the most recently moved.
		slices.SortStableFunc(next.journeys, func(a, b JourneyState) int {
			if (a.Status == JourneyActive) != (b.Status == JourneyActive) {
				if a.Status == JourneyActive {
					return -1
				}
				return 1
			}
			return b.StepAt.Compare(a.StepAt)
		})
		next.journeys = next.journeys[:m.maxJourneys]
		res.JourneysEvicted += n
	}
	ids := c.IDs[max(0, len(c.IDs)-m.maxIDs):]
	res.IDsEvicted += len(c.IDs) - len(ids)
	for _, k := range ids {
		kind := idContact
		if k.Event {
			kind = idEvent
		}
		if k.Consent {
			kind = idConsent
		}
		next.ids = append(next.ids, idKey{kind: kind, id: strings.Clone(k.ID)})
	}
	m.restoreConsent(next, c.Consent)
	for _, r := range c.Reservations {
		x := reservation{decision: strings.Clone(r.Decision), action: m.intern.get(r.Action, &m.ctr.internFull),
			group: m.intern.get(r.Group, &m.ctr.internFull), channel: m.intern.get(r.Channel, &m.ctr.internFull),
			at: r.At.UnixNano(), expires: r.Expires.UnixNano()}
		for _, k := range r.Caps {
			x.caps = append(x.caps, capKey{kind: k.Kind, key: m.intern.get(k.Key, &m.ctr.internFull), window: int64(k.Window), max: int32(k.Max)})
		}
		next.res = append(next.res, x)
	}
	if len(c.Identifiers) > 0 || c.MergedInto != "" || len(c.Merges) > 0 || len(c.Expired) > 0 {
		p := &identPart{fwd: strings.Clone(c.MergedInto), receipt: strings.Clone(c.Receipt)}
		for _, g := range c.Expired {
			p.gone = append(p.gone, goneID{key: strings.Clone(g.Key), fresh: strings.Clone(g.Fresh)})
		}
		for _, id := range c.Identifiers {
			p.ids = append(p.ids, Identifier{NS: strings.Clone(id.NS), Value: strings.Clone(id.Value),
				First: id.First.UTC(), Last: id.Last.UTC(), Source: strings.Clone(id.Source)})
		}
		p.saved = m.restoredValue(c.Saved, asOf)
		for _, md := range c.Merges {
			mr := mergeReceipt{receipt: strings.Clone(md.Receipt), from: strings.Clone(md.From), full: md.Full, pre: m.restoredValue(md.Before, asOf)}
			for _, w := range md.Since {
				mr.since = append(mr.since, sinceEntry{asOf: w.AsOf, rec: slices.Clone(w.Record)})
				mr.sinceBytes += len(w.Record)
			}
			p.merges = append(p.merges, mr)
		}
		next.ident = p
	}
	return next, res
}

// restoredValue encodes the state a checked nested dump describes (nil:
// none), as the identity part keeps it.
func (m *Model) restoredValue(d *CustomerDump, asOf int64) []byte {
	if d == nil {
		return nil
	}
	cs, _ := m.restored(d, asOf)
	return m.AppendCustomer(nil, cs)
}

// checkIdentityDump reports why the identity part of c (depth deep in a
// dump) cannot be restored.
func (m *Model) checkIdentityDump(c *CustomerDump, depth int) error {
	if len(c.Identifiers) > maxIdentifiers {
		return fmt.Errorf("%d identifiers exceed the limit of %d", len(c.Identifiers), maxIdentifiers)
	}
	for i, id := range c.Identifiers {
		err := errors.Join(m.checkString("identifier namespace", id.NS, true), m.checkString("identifier", id.Value, true),
			m.checkString("identifier source", id.Source, false), checkTime(id.First), checkTime(id.Last))
		if err == nil && slices.ContainsFunc(c.Identifiers[:i], func(o Identifier) bool { return o.NS == id.NS && o.Value == id.Value }) {
			err = errors.New("identifier given twice")
		}
		if err != nil {
			return fmt.Errorf("identifier %d: %w", i, err)
		}
	}
	if err := m.checkString("merged_into", c.MergedInto, false); err != nil {
		return err
	}
	if c.MergedInto == c.ID {
		return errors.New("merged into itself")
	}
	if err := m.checkString("receipt", c.Receipt, false); err != nil {
		return err
	}
	if (c.Receipt != "" || c.Saved != nil) && c.MergedInto == "" {
		return errors.New("a receipt or saved state without merged_into")
	}
	if c.Saved != nil {
		if err := m.checkSaved(c.Saved, c.ID, depth); err != nil {
			return fmt.Errorf("saved: %w", err)
		}
	}
	if len(c.Expired) > maxGone {
		return fmt.Errorf("%d expired identifiers exceed the limit of %d", len(c.Expired), maxGone)
	}
	for i, g := range c.Expired {
		if err := errors.Join(m.checkString("expired identifier", g.Key, true), m.checkString("fresh profile", g.Fresh, true)); err != nil {
			return fmt.Errorf("expired identifier %d: %w", i, err)
		}
	}
	if len(c.Merges) > maxMergeReceipts {
		return fmt.Errorf("%d merges exceed the limit of %d", len(c.Merges), maxMergeReceipts)
	}
	for i, md := range c.Merges {
		if err := m.checkMergeDump(&md, c.ID, depth); err != nil {
			return fmt.Errorf("merge %d: %w", i, err)
		}
	}
	return nil
}

// checkSaved checks a saved state of customer id.
func (m *Model) checkSaved(d *CustomerDump, id string, depth int) error {
	if d.ID != id {
		return errors.New("the state of another customer")
	}
	if d.MergedInto != "" {
		return errors.New("a forward")
	}
	return m.checkDump(d, depth+1)
}

// checkMergeDump checks one merge the survivor id absorbed.
func (m *Model) checkMergeDump(md *MergeDump, id string, depth int) error {
	err := errors.Join(m.checkString("receipt", md.Receipt, true), m.checkString("from", md.From, true))
	if err == nil && md.From == id {
		err = errors.New("merged from itself")
	}
	if err == nil && md.Before != nil {
		if err = m.checkSaved(md.Before, id, depth); err != nil {
			err = fmt.Errorf("before: %w", err)
		}
	}
	if err == nil && len(md.Since) > maxSinceRecords {
		err = fmt.Errorf("%d logged writes exceed the limit of %d", len(md.Since), maxSinceRecords)
	}
	n := 0
	for i, w := range md.Since {
		if err != nil {
			break
		}
		n += len(w.Record)
		var r record
		switch {
		case n > maxSinceBytes:
			err = fmt.Errorf("logged writes of more than %d bytes", maxSinceBytes)
		case decodeRecord(w.Record, &r) != nil || !carriesVia(r.typ):
			err = fmt.Errorf("logged write %d is not a write's record", i)
		}
	}
	return err
}

// ClaimIdentifiers points the identifier index of b at each restored
// customer of cs for every identifier it holds (a forward's are not
// claimed: the profile it forwards to holds them), as Restore does on
// every IdentityBackend. An identifier the index already points elsewhere
// is left there and reported (ErrConflict) once the rest are claimed.
func ClaimIdentifiers(ctx context.Context, claim func(ctx context.Context, key, customer string) (string, error), cs []CustomerDump) error {
	var conflicts []string
	for i := range cs {
		c := &cs[i]
		if c.MergedInto != "" {
			continue
		}
		for _, id := range c.Identifiers {
			got, err := claim(ctx, id.Key(), c.ID)
			if err != nil {
				return err
			}
			if got != c.ID && len(conflicts) < 8 {
				conflicts = append(conflicts, fmt.Sprintf("an identifier of customer %d (namespace %q) is linked to another profile", i, id.NS))
			}
		}
	}
	if len(conflicts) > 0 {
		return &Error{Kind: ErrConflict, Err: fmt.Errorf("%w: %s", ErrIdentityConflict, strings.Join(conflicts, "; "))}
	}
	return nil
}

// restoreHistory sets cs's history to the newest MaxEventsPerCustomer of
// contacts (newest first).
func (m *Model) restoreHistory(cs *custState, contacts []Contact, res *Result) {
	n := min(len(contacts), m.maxEvents)
	res.HistoryEvicted += len(contacts) - n
	if n == 0 {
		return
	}
	nodes := make([]histNode, n)
	for i := range nodes {
		k := contacts[i]
		nodes[i].c = Contact{Action: m.intern.get(k.Action, &m.ctr.internFull), Group: m.intern.get(k.Group, &m.ctr.internFull),
			Channel: m.intern.get(k.Channel, &m.ctr.internFull), Outcome: k.Outcome, Value: k.Value, At: k.At.UTC()}
		if i > 0 {
			nodes[i-1].next = &nodes[i]
		}
	}
	cs.hist, cs.histN, cs.histLen = &nodes[0], n, n
}

// restoreCounters sets cs's aggregates to the MaxKeysPerCustomer most recently
// updated of counters, re-bucketed into this model's day ring.
func (m *Model) restoreCounters(cs *custState, counters []Counter, res *Result) {
	keep := counters
	if len(keep) > m.maxKeys {
		// Keep the most recently updated, as eviction would.
		keep = slices.Clone(keep)
		latest := func(k Counter) int64 {
			if len(k.Recent) == 0 {
				return 0
			}
			return k.Recent[0]
		}
		slices.SortStableFunc(keep, func(a, b Counter) int { return cmp.Compare(latest(b), latest(a)) })
		keep = keep[:m.maxKeys]
	}
	res.KeysEvicted += len(counters) - len(keep)
	for _, k := range keep {
		a := &agg{kind: k.Kind, outcome: k.Outcome, key: k.Key, seen: k.Seen, hourTop: k.HourTop, dayTop: k.DayTop,
			days: make([]uint16, m.days)}
		copy(a.recent[:], k.Recent)
		for i, n := range k.Hours {
			a.hours[mod(k.HourTop-int64(i), hourBuckets)] = n
		}
		for i, n := range k.Days[:min(len(k.Days), m.days)] {
			a.days[mod(k.DayTop-int64(i), m.days)] = n
		}
		m.internAgg(a)
		var last int64
		if a.seen > 0 {
			last = a.recent[0]
		}
		cs.aggs = append(cs.aggs, aggRef{kind: a.kind, outcome: a.outcome, key: a.key, last: last, a: a})
	}
}
