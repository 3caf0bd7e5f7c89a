package state

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"
)

// Log records. Each is
//
//	type (1) | lsn uvarint | at varint (unix ns) | customer string | body by type
//	| via string (writes named by an identifier only: record.via)
//
// where a string is a uvarint length and its bytes. Overlay changes are
// logged by field name and resolved value, so a change of mappings never
// reinterprets old events.
//
// Versions: types 1 and 2 are what stores before idempotency keys wrote;
// they are still read (a replayed record without an id dedupes nothing).
// Writers now use 5 and 6, which carry the caller's idempotency key and, for
// events, the journey moves the event caused, so that an event's overlay
// changes and journey moves are one record: after a crash either all of it
// is replayed or none.
const (
	recContact  byte = 1  // action, group, channel strings | outcome (1) | value f64
	recEvent    byte = 2  // effects: count uvarint | per effect: field string | op (1) | type (1) | value
	recJourney  byte = 3  // journey string | step uvarint | status (1)
	recCompact  byte = 4  // no customer (empty string), no body
	recContact2 byte = 5  // id string | as recContact
	recEvent2   byte = 6  // id string | effects as recEvent | moves: count uvarint | per move: journey string | step uvarint | status (1)
	recForget   byte = 7  // no body: the customer's state was evicted (Config.MaxCustomers); at is when
	recConsent  byte = 8  // consent.go: id, channel, purpose strings | granted (1) | source string
	recErase    byte = 9  // erase.go: pseudonym string (may be empty); the customer's state was erased; at is when its tombstone ends
	recIdent    byte = 10 // identity operation (identity_model.go: appendIdentOp)
)

// Hard limits of the decoders, independent of Config so that state written
// under a larger Config still loads.
const (
	maxDecodedString = 1 << 16
	maxDecodedHist   = 100_000
	maxDecodedAggs   = 1 << 16
	maxDecodedJourn  = 1 << 12
	maxDecodedDays   = 402
	maxDecodedStep   = 1 << 30
	maxDecodedIDs    = 1 << 12 // idempotency keys per customer in a checkpoint
)

// effect is one resolved overlay change.
type effect struct {
	field string
	op    opKind // opSet or opIncr
	typ   FieldType
	v     value // at unused
}

// move is one journey move of an event record.
type move struct {
	journey string
	step    int
	status  JourneyStatus
}

// record is one decoded log record; contact, event and journey fields are
// used according to typ.
type record struct {
	typ      byte
	lsn      uint64
	at       int64
	customer string
	id       string // idempotency key (recContact2, recEvent2); may be empty

	action, group, channel string
	outcome                Outcome
	num                    float64

	effects []effect
	moves   []move // recEvent2

	journey string
	step    int
	status  JourneyStatus

	// Not encoded: the precondition of a conditional journey move
	// (JourneyUpdate.Conditional), checked when the record is written.
	cond       bool
	fromStep   int
	fromStatus JourneyStatus

	// Reservations (recReserve) and impressions quoting their decision
	// (recContact3); see reserve.go.
	decision string
	expires  int64
	caps     []capKey

	movesFrom func([]JourneyState) []JourneyMove // not encoded: Event.JourneysFrom
	given     int                                // not encoded: moves the event gave, before the computed ones

	ident *identOp // recIdent

	// via is the key of the identifier that named the customer (Contact.Via);
	// encoded after the body when not empty, so records written before it
	// existed (no bytes after the body) read as empty.
	via string
}

// idKind returns the namespace of r's idempotency key: contact and event
// ids are separate, so a caller may use one id for both.
func (r *record) idKind() idKind {
	if r.typ == recContact || r.typ == recContact2 || r.typ == recContact3 {
		return idContact
	}
	if r.typ == recConsent {
		return idConsent
	}
	return idEvent
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendF64(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func appendValue(b []byte, t FieldType, v value) []byte {
	switch t {
	case TypeTime:
		return binary.AppendVarint(b, v.unix)
	case TypeCategory:
		return appendString(b, v.str)
	default:
		return appendF64(b, v.num)
	}
}

func appendRecord(b []byte, r *record) []byte {
	b = append(b, r.typ)
	b = binary.AppendUvarint(b, r.lsn)
	b = binary.AppendVarint(b, r.at)
	b = appendString(b, r.customer)
	switch r.typ {
	case recReserve:
		b = appendReserveBody(b, r)
	case recContact, recContact2, recContact3:
		if r.typ != recContact {
			b = appendString(b, r.id)
		}
		if r.typ == recContact3 {
			b = appendString(b, r.decision)
		}
		b = appendString(b, r.action)
		b = appendString(b, r.group)
		b = appendString(b, r.channel)
		b = append(b, byte(r.outcome))
		b = appendF64(b, r.num)
	case recEvent, recEvent2:
		if r.typ == recEvent2 {
			b = appendString(b, r.id)
		}
		b = binary.AppendUvarint(b, uint64(len(r.effects)))
		for _, e := range r.effects {
			b = appendString(b, e.field)
			b = append(b, byte(e.op), byte(e.typ))
			b = appendValue(b, e.typ, e.v)
		}
		if r.typ == recEvent2 {
			b = binary.AppendUvarint(b, uint64(len(r.moves)))
			for _, m := range r.moves {
				b = appendString(b, m.journey)
				b = binary.AppendUvarint(b, uint64(m.step))
				b = append(b, byte(m.status))
			}
		}
	case recJourney:
		b = appendString(b, r.journey)
		b = binary.AppendUvarint(b, uint64(r.step))
		b = append(b, byte(r.status))
	case recConsent:
		b = appendConsentRecord(b, r)
	case recErase:
		b = appendEraseRecord(b, r)
	case recIdent:
		b = appendIdentOp(b, r.ident)
	}
	if r.via != "" && carriesVia(r.typ) {
		b = appendString(b, r.via)
	}
	return b
}

// carriesVia reports whether records of type typ may carry a via: the
// writes a request makes for a customer.
func carriesVia(typ byte) bool {
	switch typ {
	case recContact, recContact2, recContact3, recEvent, recEvent2, recJourney, recConsent, recReserve:
		return true
	}
	return false
}

// dec reads from a byte slice; the first error sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *dec) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("unexpected end")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) f64() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("unexpected end")
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return f
}

func (d *dec) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxDecodedString || n > uint64(len(d.b)) {
		d.fail("string of %d bytes does not fit", n)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) value(t FieldType) value {
	switch t {
	case TypeTime:
		return value{unix: d.varint()}
	case TypeCategory:
		return value{str: d.str()}
	case TypeBool:
		f := d.f64()
		if f != 0 && f != 1 {
			d.fail("bool value %v", f)
		}
		return value{num: f}
	default:
		f := d.f64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail("number %v is not finite", f)
		}
		return value{num: f}
	}
}

func validType(t FieldType) bool { return t >= TypeNumber && t <= TypeCategory }

// decodeRecord parses a log record into r, reusing r's effects and moves
// slices.
func decodeRecord(b []byte, r *record) error {
	d := dec{b: b}
	effects, moves := r.effects[:0], r.moves[:0]
	*r = record{typ: d.byte(), lsn: d.uvarint(), at: d.varint(), customer: d.str()}
	if r.typ == recContact2 || r.typ == recEvent2 || r.typ == recContact3 {
		r.id = d.str()
	}
	switch r.typ {
	case recReserve:
		decodeReserveBody(&d, r)
	case recContact, recContact2, recContact3:
		if r.typ == recContact3 {
			r.decision = d.str()
		}
		r.action, r.group, r.channel = d.str(), d.str(), d.str()
		r.outcome = Outcome(d.byte())
		r.num = d.f64()
		if d.err == nil && (r.outcome >= numOutcomes || r.customer == "" || r.action == "" || math.IsNaN(r.num) || math.IsInf(r.num, 0)) {
			d.fail("invalid contact")
		}
	case recEvent, recEvent2:
		n := d.uvarint()
		if n > uint64(len(d.b))/4 {
			d.fail("%d effects do not fit", n)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			e := effect{field: d.str(), op: opKind(d.byte()), typ: FieldType(d.byte())}
			if d.err == nil && (e.field == "" || (e.op != opSet && e.op != opIncr) || !validType(e.typ) || (e.op == opIncr && e.typ != TypeNumber)) {
				d.fail("invalid effect %d", i)
			}
			if d.err == nil {
				e.v = d.value(e.typ)
			}
			effects = append(effects, e)
		}
		r.effects = effects
		if r.typ == recEvent2 {
			n := d.uvarint()
			if n > uint64(len(d.b))/3 || n > maxDecodedJourn {
				d.fail("%d journey moves do not fit", n)
			}
			for i := uint64(0); i < n && d.err == nil; i++ {
				m := move{journey: d.str()}
				step := d.uvarint()
				m.status = JourneyStatus(d.byte())
				if d.err == nil && (m.journey == "" || step > maxDecodedStep || m.status < JourneyActive || m.status > JourneyExited) {
					d.fail("invalid journey move %d", i)
				}
				m.step = int(step)
				moves = append(moves, m)
			}
			r.moves = moves
		}
		if d.err == nil && r.customer == "" {
			d.fail("event without customer")
		}
	case recJourney:
		r.journey = d.str()
		step := d.uvarint()
		r.status = JourneyStatus(d.byte())
		if d.err == nil && (step > maxDecodedStep || r.status < JourneyActive || r.status > JourneyExited || r.customer == "" || r.journey == "") {
			d.fail("invalid journey update")
		}
		r.step = int(step)
	case recCompact:
		if d.err == nil && r.customer != "" {
			d.fail("compaction record names a customer")
		}
	case recForget:
		if d.err == nil && r.customer == "" {
			d.fail("eviction record without customer")
		}
	case recConsent:
		decodeConsentRecord(&d, r)
	case recErase:
		decodeEraseRecord(&d, r)
	case recIdent:
		r.ident = decodeIdentOp(&d)
		if d.err == nil && r.customer == "" {
			d.fail("identity record without customer")
		}
	default:
		d.fail("unknown record type %d", r.typ)
	}
	if d.err == nil && len(d.b) != 0 && carriesVia(r.typ) {
		r.via = d.str()
		if d.err == nil && (r.via == "" || len(r.via) > maxVia) {
			d.fail("invalid via")
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		r.effects, r.moves = effects, moves
		return fmt.Errorf("cannot decode state record: %w", d.err)
	}
	return nil
}

// Checkpoint body:
//
//	magic "NBASTATE" | version uvarint | last lsn uvarint | as-of varint
//	| fields: count uvarint, per field: name string | type (1)
//	| per customer: 1 (1) | customer | ... | 0 (1)
//
// customer:
//
//	id string | lsn uvarint
//	| overlay: count uvarint, per set value: field index uvarint | at varint | value
//	| aggregates: count uvarint, per aggregate: kind (1) | outcome (1) | key string
//	    | seen uvarint | min(seen, 8) × varint | hour top varint | 25 × uvarint
//	    | day top varint | day count uvarint | day count × uvarint
//	| history, newest first: count uvarint, per contact: action, group, channel strings
//	    | outcome (1) | value f64 | at varint
//	| journeys: count uvarint, per journey: id string | step uvarint | status (1)
//	    | entered varint | step-at varint
//	| idempotency keys (version 2 on), oldest first: count uvarint,
//	    per key: kind (1) | id string
//	| sections (version 3 on): see sectionEnd in consent.go
//	    (consent, reservations of exact caps, identity)
//
// and, version 3 on, after the customers' end marker: tombstones of erased
// customers (erase.go): count uvarint, per tombstone: pseudonym string |
// until varint. Versions 1 (before idempotency keys) and 2 (before
// sections and tombstones) are still read.
const ckptMagic = "NBASTATE"
const ckptVersion = 3

func (m *Model) appendCustomer(b []byte, cs *custState) []byte {
	b = appendString(b, cs.id)
	b = binary.AppendUvarint(b, cs.lsn)
	n := 0
	for _, v := range cs.overlay {
		if v.at != 0 {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i, v := range cs.overlay {
		if v.at != 0 {
			b = binary.AppendUvarint(b, uint64(i))
			b = binary.AppendVarint(b, v.at)
			b = appendValue(b, m.m.fields[i].Type, v)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(cs.aggs)))
	for _, ref := range cs.aggs {
		a := ref.a
		b = append(b, byte(a.kind), byte(a.outcome))
		b = appendString(b, a.key)
		b = binary.AppendUvarint(b, uint64(a.seen))
		for _, t := range a.recent[:min(int(a.seen), recentN)] {
			b = binary.AppendVarint(b, t)
		}
		b = binary.AppendVarint(b, a.hourTop)
		for _, c := range a.hours {
			b = binary.AppendUvarint(b, uint64(c))
		}
		b = binary.AppendVarint(b, a.dayTop)
		b = binary.AppendUvarint(b, uint64(len(a.days)))
		for _, c := range a.days {
			b = binary.AppendUvarint(b, uint64(c))
		}
	}
	b = binary.AppendUvarint(b, uint64(cs.histN))
	for n, i := cs.hist, 0; i < cs.histN; n, i = n.next, i+1 {
		b = appendString(b, n.c.Action)
		b = appendString(b, n.c.Group)
		b = appendString(b, n.c.Channel)
		b = append(b, byte(n.c.Outcome))
		b = appendF64(b, n.c.Value)
		b = binary.AppendVarint(b, n.c.At.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(cs.journeys)))
	for _, j := range cs.journeys {
		b = appendString(b, j.Journey)
		b = binary.AppendUvarint(b, uint64(j.Step))
		b = append(b, byte(j.Status))
		b = binary.AppendVarint(b, j.EnteredAt.UnixNano())
		b = binary.AppendVarint(b, j.StepAt.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(cs.ids)))
	for _, k := range cs.ids {
		b = append(b, byte(k.kind))
		b = appendString(b, k.id)
	}
	return b
}

// rd reads a checkpoint stream; the first error sticks.
type rd struct {
	r   *bufio.Reader
	err error
	buf []byte
	one bool // reading one value (Model.DecodeCustomer), not a checkpoint
}

func (d *rd) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *rd) byte() byte {
	if d.err != nil {
		return 0
	}
	c, err := d.r.ReadByte()
	if err != nil {
		d.fail("unexpected end")
	}
	return c
}

func (d *rd) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail("bad uvarint: %v", err)
	}
	return v
}

func (d *rd) count(limit int, what string) int {
	n := d.uvarint()
	if n > uint64(limit) {
		d.fail("%d %s exceed the limit of %d", n, what, limit)
		return 0
	}
	return int(n)
}

func (d *rd) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	if err != nil {
		d.fail("bad varint: %v", err)
	}
	return v
}

func (d *rd) f64() float64 {
	if d.err != nil {
		return 0
	}
	var b [8]byte
	if _, err := io.ReadFull(d.r, b[:]); err != nil {
		d.fail("unexpected end")
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
}

func (d *rd) str() string {
	n := d.count(maxDecodedString, "string bytes")
	if d.err != nil || n == 0 {
		return ""
	}
	if cap(d.buf) < n {
		d.buf = make([]byte, n)
	}
	d.buf = d.buf[:n]
	if _, err := io.ReadFull(d.r, d.buf); err != nil {
		d.fail("unexpected end")
		return ""
	}
	return string(d.buf)
}

func (d *rd) value(t FieldType) value {
	switch t {
	case TypeTime:
		return value{unix: d.varint()}
	case TypeCategory:
		return value{str: d.str()}
	default:
		f := d.f64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail("number %v is not finite", f)
		}
		return value{num: f}
	}
}

// decodeCustomer reads one customer of a checkpoint (or one value
// AppendCustomer wrote), applying this model's bounds and dropping fields
// it no longer maps (counted in res). It returns nil after an error of d.
func (m *Model) decodeCustomer(d *rd, version uint64, remap []int, types []FieldType, res *Result) (*custState, string) {
	id := d.str()
	cs := &custState{lsn: d.uvarint()}
	if d.err == nil && id == "" {
		d.fail("empty customer id")
	}
	nov := d.count(len(remap), "overlay values")
	for range nov {
		if d.err != nil {
			return nil, ""
		}
		fi := d.count(len(remap)-1, "field index")
		at := d.varint()
		if d.err != nil || fi >= len(types) {
			d.fail("bad field index")
			return nil, ""
		}
		v := d.value(types[fi])
		if at <= 0 {
			d.fail("overlay value without time")
		}
		if remap[fi] < 0 {
			res.Dropped++
			continue
		}
		if cs.overlay == nil {
			cs.overlay = make([]value, len(m.m.fields))
		}
		v.at = at
		v.str = m.intern.get(v.str, &m.ctr.internFull)
		cs.overlay[remap[fi]] = v
	}
	na := d.count(maxDecodedAggs, "aggregates")
	for range na {
		if d.err != nil {
			return nil, ""
		}
		a := &agg{kind: Kind(d.byte()), outcome: Outcome(d.byte()), key: d.str()}
		if d.err == nil && (a.kind >= numKinds || a.outcome >= numOutcomes || a.key == "") {
			d.fail("invalid aggregate")
		}
		seen := d.uvarint()
		if seen > math.MaxUint32 {
			d.fail("aggregate count %d", seen)
		}
		a.seen = uint32(seen)
		for i := range min(int(a.seen), recentN) {
			a.recent[i] = d.varint()
		}
		a.hourTop = d.varint()
		for i := range a.hours {
			a.hours[i] = uint16(min(d.uvarint(), math.MaxUint16))
		}
		a.dayTop = d.varint()
		nd := d.count(maxDecodedDays, "day buckets")
		if d.err == nil && nd == 0 {
			d.fail("aggregate without day buckets")
		}
		days := make([]uint16, nd)
		for i := range days {
			days[i] = uint16(min(d.uvarint(), math.MaxUint16))
		}
		if d.err != nil {
			return nil, ""
		}
		// Re-bucket into this Config's ring length.
		a.days = make([]uint16, m.days)
		for i := range min(nd, m.days) {
			day := a.dayTop - int64(i)
			a.days[mod(day, m.days)] = days[mod(day, nd)]
		}
		if len(cs.aggs) < m.maxKeys {
			m.internAgg(a)
			var last int64
			if a.seen > 0 {
				last = a.recent[0]
			}
			cs.aggs = append(cs.aggs, aggRef{kind: a.kind, outcome: a.outcome, key: a.key, last: last, a: a})
		} else {
			res.KeysEvicted++
		}
	}
	nh := d.count(maxDecodedHist, "history entries")
	var nodes []histNode
	for i := range nh {
		if d.err != nil {
			return nil, ""
		}
		c := Contact{Action: d.str(), Group: d.str(), Channel: d.str(), Outcome: Outcome(d.byte()), Value: d.f64()}
		c.At = time.Unix(0, d.varint()).UTC()
		if d.err == nil && (c.Action == "" || c.Outcome >= numOutcomes || math.IsNaN(c.Value) || math.IsInf(c.Value, 0)) {
			d.fail("invalid history entry %d", i)
		}
		if i >= m.maxEvents {
			res.HistoryEvicted++
			continue
		}
		c.Action = m.intern.get(c.Action, &m.ctr.internFull)
		c.Group = m.intern.get(c.Group, &m.ctr.internFull)
		c.Channel = m.intern.get(c.Channel, &m.ctr.internFull)
		nodes = append(nodes, histNode{c: c})
	}
	for i := range nodes {
		if i+1 < len(nodes) {
			nodes[i].next = &nodes[i+1]
		}
	}
	if len(nodes) > 0 {
		cs.hist, cs.histN, cs.histLen = &nodes[0], len(nodes), len(nodes)
	}
	nj := d.count(maxDecodedJourn, "journeys")
	for range nj {
		if d.err != nil {
			return nil, ""
		}
		j := JourneyState{Journey: d.str()}
		step := d.uvarint()
		j.Status = JourneyStatus(d.byte())
		j.EnteredAt = time.Unix(0, d.varint()).UTC()
		j.StepAt = time.Unix(0, d.varint()).UTC()
		if d.err == nil && (j.Journey == "" || step > maxDecodedStep || j.Status < JourneyActive || j.Status > JourneyExited) {
			d.fail("invalid journey")
		}
		j.Step = int(step)
		j.Journey = m.intern.get(j.Journey, &m.ctr.internFull)
		if len(cs.journeys) < m.maxJourneys {
			cs.journeys = append(cs.journeys, j)
		} else {
			res.JourneysEvicted++
		}
	}
	if version >= 2 {
		nk := d.count(maxDecodedIDs, "idempotency keys")
		// The newest MaxIDsPerCustomer are kept: they come last.
		skip := max(0, nk-m.maxIDs)
		for i := range nk {
			if d.err != nil {
				return nil, ""
			}
			k := idKey{kind: idKind(d.byte()), id: d.str()}
			if d.err == nil && (k.id == "" || (k.kind != idContact && k.kind != idEvent && k.kind != idConsent)) {
				d.fail("invalid idempotency key %d", i)
			}
			if i < skip {
				res.IDsEvicted++
				continue
			}
			if cs.ids == nil {
				cs.ids = make([]idKey, 0, nk-skip)
			}
			cs.ids = append(cs.ids, k)
		}
	}
	if version >= 3 {
		m.decodeSections(d, cs)
	}
	if d.err != nil {
		return nil, ""
	}
	return cs, id
}

func (m *Model) internAgg(a *agg) *agg {
	a.key = m.intern.get(a.key, &m.ctr.internFull)
	return a
}
