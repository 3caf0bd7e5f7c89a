package state

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reservations make a cap exact across processes. A cap counted from
// impressions alone lets every replica that read the customer before the
// impression came back give the last slot: with ten replicas, ten
// e-mails. A decision that gives an action under an exact cap therefore
// reserves the slot first, in the same atomic per-customer step that
// checks the cap (Model.Apply of a reservation record): granted only if,
// for each exact cap it names, the contacts counted in the cap's window
// plus the customer's live reservations under that cap are below the
// cap's max; else ErrConflict and nothing written. The impression that
// quotes the decision id (Contact.Decision) turns the reservation into
// the contact in one step: the slot is counted once, never twice. A
// reservation that no impression follows stops counting at Expires (read
// time) and is dropped by the customer's next reservation.

// Reservation reserves one action a decision gives under the exact caps
// listed. Decision and Action identify it: a reservation repeated while
// the first is live is a duplicate (granted, nothing written).
type Reservation struct {
	Customer string
	Decision string // the decision's id, quoted by the impression's Contact.Decision
	Action   string
	Group    string // the action's group, as contacts record it
	Channel  string
	// At is when the decision was made: the caps' windows end there.
	At time.Time
	// Expires is when the reservation stops counting if no impression
	// quoting the decision came; after At.
	Expires time.Time
	// Caps are the exact caps the action must respect (at most
	// MaxReservationCaps): the reservation counts toward each of them.
	Caps []ExactCap
}

// ExactCap is one exact cap or channel limit: at most Max impressions for
// Key (of Kind) in any Window.
type ExactCap struct {
	Kind   Kind
	Key    string
	Window time.Duration
	Max    int
}

// Bounds of reservations.
const (
	// MaxReservationCaps bounds the caps one reservation names.
	MaxReservationCaps = 16
	// MaxReservations bounds a customer's live reservations: one more is
	// refused with ErrConflict (exact caps fail closed).
	MaxReservations = 256
)

// Record types of reservations (see the record list in codec.go).
const (
	recReserve  byte = 20 // decision, action, group, channel strings | expires varint | caps: count uvarint, per cap: kind (1) | key string | window varint | max uvarint
	recContact3 byte = 21 // id string | decision string | as recContact: an impression quoting its decision
)

// reservation is one live reservation in a customer's state.
type reservation struct {
	decision, action, group, channel string
	at, expires                      int64 // unix ns
	caps                             []capKey
}

// capKey is an exact cap as a reservation records it.
type capKey struct {
	kind   Kind
	key    string
	window int64 // ns
	max    int32
}

// ReserveRecord validates a reservation and returns the record that makes
// it; an error means it is invalid (ErrInvalid for the caller).
func (m *Model) ReserveRecord(r Reservation) (Record, error) {
	err := errors.Join(m.checkString("customer", r.Customer, true), m.checkString("decision", r.Decision, true),
		m.checkString("action", r.Action, true), m.checkString("group", r.Group, false),
		m.checkString("channel", r.Channel, false), checkTime(r.At), checkTime(r.Expires))
	if err == nil && !r.Expires.After(r.At) {
		err = fmt.Errorf("expires %v is not after %v", r.Expires, r.At)
	}
	if err == nil && (len(r.Caps) == 0 || len(r.Caps) > MaxReservationCaps) {
		err = fmt.Errorf("%d caps, want 1 to %d", len(r.Caps), MaxReservationCaps)
	}
	rec := record{typ: recReserve, customer: r.Customer, at: r.At.UnixNano(), decision: r.Decision,
		action: r.Action, group: r.Group, channel: r.Channel, expires: r.Expires.UnixNano()}
	for i, c := range r.Caps {
		if err != nil {
			break
		}
		err = m.checkString("cap key", c.Key, true)
		if err == nil && (c.Kind >= numKinds || c.Window <= 0 || c.Window > m.MaxWindow() || c.Max < 0 || c.Max > 1<<30) {
			err = fmt.Errorf("cap %d: %s %q window %v max %d is out of range", i, c.Kind, c.Key, c.Window, c.Max)
		}
		rec.caps = append(rec.caps, capKey{kind: c.Kind, key: c.Key, window: int64(c.Window), max: int32(c.Max)})
	}
	if err != nil {
		return record{}, err
	}
	return rec, nil
}

// Reserved returns how many of the viewed customer's reservations, live at
// now, count toward the exact cap on key of kind k.
func (v *View) Reserved(k Kind, key string, now time.Time) int {
	if v.c == nil {
		return 0
	}
	return v.c.reserved(k, key, now.UnixNano())
}

// Reservations returns how many reservations the customer holds, live at
// now.
func (v *View) Reservations(now time.Time) int {
	if v.c == nil {
		return 0
	}
	n := 0
	for i := range v.c.res {
		if v.c.res[i].expires > now.UnixNano() {
			n++
		}
	}
	return n
}

func (cs *custState) reserved(k Kind, key string, now int64) int {
	n := 0
	for i := range cs.res {
		r := &cs.res[i]
		if r.expires <= now {
			continue
		}
		for _, c := range r.caps {
			if c.kind == k && c.key == key {
				n++
				break
			}
		}
	}
	return n
}

// impressions counts the customer's impressions on key of kind k from
// now-window on, including those stamped after now: an impression of
// another decision can be recorded, stamped a moment later, between the
// moment a decision is made and the moment its reservation is checked.
func (cs *custState) impressions(k Kind, key string, window, now int64) int {
	for i := range cs.aggs {
		if r := &cs.aggs[i]; r.kind == k && r.outcome == Impression && r.key == key {
			n := r.a.count(time.Duration(window), now)
			for _, t := range r.a.recent[:min(int(r.a.seen), recentN)] {
				if t > now { // the newest: in the exact list
					n++
				}
			}
			return n
		}
	}
	return 0
}

// liveRes returns cs's reservations live at t: res itself when none
// expired, else a copy without the expired ones (older states share res).
func liveRes(res []reservation, t int64) []reservation {
	for i := range res {
		if res[i].expires <= t {
			out := slices.Clone(res[:i])
			for _, x := range res[i+1:] {
				if x.expires > t {
					out = append(out, x)
				}
			}
			return out
		}
	}
	return res
}

// checkReserve decides a reservation record on old (live writes only):
// a duplicate, a refusal (ErrConflict) or nil (to be applied).
func checkReserve(old *custState, r *record, res *Result) error {
	if old == nil {
		for _, c := range r.caps {
			if c.max < 1 {
				res.Conflict = true
				return capConflict(r, c, 0, 0)
			}
		}
		return nil
	}
	live := 0
	for i := range old.res {
		x := &old.res[i]
		if x.expires <= r.at {
			continue
		}
		live++
		if x.decision == r.decision && x.action == r.action {
			res.Duplicate = true
			return nil
		}
	}
	if live >= MaxReservations {
		res.Conflict = true
		return &Error{Kind: ErrConflict, Err: fmt.Errorf("cannot reserve %q for customer %q: %d reservations live, the limit", r.action, r.customer, live)}
	}
	for _, c := range r.caps {
		n, held := old.impressions(c.kind, c.key, c.window, r.at), old.reserved(c.kind, c.key, r.at)
		if n+held >= int(c.max) {
			res.Conflict = true
			return capConflict(r, c, n, held)
		}
	}
	return nil
}

func capConflict(r *record, c capKey, n, held int) error {
	return &Error{Kind: ErrConflict, Err: fmt.Errorf("cannot reserve %q for customer %q: exact cap %s %s at most %d in %v: %d impressions and %d reserved",
		r.action, r.customer, c.kind, c.key, c.max, time.Duration(c.window), n, held)}
}

// applyReserve adds r's reservation to next, dropping expired ones.
func (m *Model) applyReserve(next *custState, r *record) {
	res := liveRes(next.res, r.at)
	if len(res) == len(next.res) {
		res = slices.Clip(res) // append below copies: older states share next.res
	}
	for i := range res {
		if res[i].decision == r.decision && res[i].action == r.action {
			next.res = res // a replayed duplicate
			return
		}
	}
	caps := make([]capKey, len(r.caps))
	for i, c := range r.caps {
		caps[i] = capKey{kind: c.kind, key: m.intern.get(c.key, &m.ctr.internFull), window: c.window, max: c.max}
	}
	next.res = append(res, reservation{decision: strings.Clone(r.decision), action: m.intern.get(r.action, &m.ctr.internFull),
		group: m.intern.get(r.group, &m.ctr.internFull), channel: m.intern.get(r.channel, &m.ctr.internFull),
		at: r.at, expires: r.expires, caps: caps})
}

// convertReserve drops the reservation an impression quoting its decision
// turns into a contact. Expired ones are left to the next reservation: an
// impression's time is the caller's (it may lie ahead), a reservation's
// the deciding server's.
func convertReserve(next *custState, r *record) {
	res := next.res
	for i := range res {
		if res[i].decision == r.decision && res[i].action == r.action {
			out := make([]reservation, 0, len(res)-1)
			out = append(out, res[:i]...)
			next.res = append(out, res[i+1:]...)
			return
		}
	}
}

// appendReserveBody appends the body of a recReserve record.
func appendReserveBody(b []byte, r *record) []byte {
	b = appendString(b, r.decision)
	b = appendString(b, r.action)
	b = appendString(b, r.group)
	b = appendString(b, r.channel)
	b = binary.AppendVarint(b, r.expires)
	b = binary.AppendUvarint(b, uint64(len(r.caps)))
	for _, c := range r.caps {
		b = append(b, byte(c.kind))
		b = appendString(b, c.key)
		b = binary.AppendVarint(b, c.window)
		b = binary.AppendUvarint(b, uint64(c.max))
	}
	return b
}

// decodeReserveBody reads the body of a recReserve record.
func decodeReserveBody(d *dec, r *record) {
	r.decision, r.action, r.group, r.channel = d.str(), d.str(), d.str(), d.str()
	r.expires = d.varint()
	n := d.uvarint()
	if n > MaxReservationCaps {
		d.fail("%d caps in a reservation", n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		c := capKey{kind: Kind(d.byte()), key: d.str(), window: d.varint()}
		mx := d.uvarint()
		if d.err == nil && (c.kind >= numKinds || c.key == "" || c.window <= 0 || mx > 1<<30) {
			d.fail("invalid reservation cap %d", i)
		}
		c.max = int32(mx)
		r.caps = append(r.caps, c)
	}
	if d.err == nil && (r.customer == "" || r.decision == "" || r.action == "") {
		d.fail("invalid reservation")
	}
}

// appendReserveSection appends the reservations section of cs (a
// section of the customer's value, consent.go), if it has any.
func appendReserveSection(b []byte, cs *custState) []byte {
	if len(cs.res) == 0 {
		return b
	}
	body := appendReservations(nil, cs)
	b = append(b, sectionReserve)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// decodeReserveSection decodes a reservations section's body into cs.
func (m *Model) decodeReserveSection(body []byte, cs *custState) error {
	d := &rd{r: bufio.NewReader(bytes.NewReader(body))}
	m.decodeReservations(d, cs)
	if d.err == nil {
		if _, err := d.r.ReadByte(); err == nil {
			d.fail("trailing bytes")
		}
	}
	return d.err
}

// appendReservations appends a customer's reservations: the body of
// the reservations section.
func appendReservations(b []byte, cs *custState) []byte {
	b = binary.AppendUvarint(b, uint64(len(cs.res)))
	for _, x := range cs.res {
		b = appendString(b, x.decision)
		b = appendString(b, x.action)
		b = appendString(b, x.group)
		b = appendString(b, x.channel)
		b = binary.AppendVarint(b, x.at)
		b = binary.AppendVarint(b, x.expires)
		b = binary.AppendUvarint(b, uint64(len(x.caps)))
		for _, c := range x.caps {
			b = append(b, byte(c.kind))
			b = appendString(b, c.key)
			b = binary.AppendVarint(b, c.window)
			b = binary.AppendUvarint(b, uint64(c.max))
		}
	}
	return b
}

// decodeReservations reads what appendReservations wrote into cs.
func (m *Model) decodeReservations(d *rd, cs *custState) {
	n := d.count(maxDecodedIDs, "reservations")
	for i := range n {
		if d.err != nil {
			return
		}
		x := reservation{decision: d.str(), action: d.str(), group: d.str(), channel: d.str(), at: d.varint(), expires: d.varint()}
		nc := d.count(MaxReservationCaps, "reservation caps")
		for range nc {
			c := capKey{kind: Kind(d.byte()), key: d.str(), window: d.varint()}
			mx := d.uvarint()
			if d.err == nil && (c.kind >= numKinds || c.key == "" || c.window <= 0 || mx > 1<<30) {
				d.fail("invalid cap of reservation %d", i)
			}
			c.max = int32(mx)
			c.key = m.intern.get(c.key, &m.ctr.internFull)
			x.caps = append(x.caps, c)
		}
		if d.err == nil && (x.decision == "" || x.action == "") {
			d.fail("invalid reservation %d", i)
		}
		x.action = m.intern.get(x.action, &m.ctr.internFull)
		x.group = m.intern.get(x.group, &m.ctr.internFull)
		x.channel = m.intern.get(x.channel, &m.ctr.internFull)
		cs.res = append(cs.res, x)
	}
}
