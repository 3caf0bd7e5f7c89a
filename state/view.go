package state

import (
	"time"
)

// View is a read-only, consistent snapshot of one customer's state, filled by
// a backend's View (Model.View). A View is reusable and owned by one
// goroutine at a time; the snapshot it holds is immutable, so it is
// unaffected by later writes. No method allocates.
type View struct {
	c    *custState
	m    *compiled
	asOf int64
}

// SeenContactID reports whether the viewed customer's state remembers the
// idempotency key of a contact (Contact.ID): a retry of a contact already
// recorded.
func (v *View) SeenContactID(id string) bool {
	return v.c != nil && id != "" && v.c.seen(idContact, id)
}

// Found reports whether the viewed customer has state.
func (v *View) Found() bool { return v.c != nil }

// Customer returns the viewed customer's id, or "".
func (v *View) Customer() string {
	if v.c == nil {
		return ""
	}
	return v.c.id
}

// field returns a set overlay value of type t in slot, if not hidden by the
// compaction as-of (see hidden).
func (v *View) field(slot Slot, t FieldType) (*value, bool) {
	if v.c == nil || int(slot) < 0 || int(slot) >= len(v.c.overlay) || v.m.fields[slot].Type != t {
		return nil, false
	}
	x := &v.c.overlay[slot]
	if v.hidden(slot, x) {
		return nil, false
	}
	return x, true
}

// hidden reports whether x, the value in slot, is unset or superseded by
// the snapshot: decided per field, only fields that reset on a snapshot
// are hidden by its as-of time.
func (v *View) hidden(slot Slot, x *value) bool {
	return x.at == 0 || x.at <= v.asOf && v.m.fields[slot].ResetOnSnapshot
}

// Number returns a number field.
func (v *View) Number(slot Slot) (float64, bool) {
	x, ok := v.field(slot, TypeNumber)
	if !ok {
		return 0, false
	}
	return x.num, true
}

// Time returns a time field.
func (v *View) Time(slot Slot) (time.Time, bool) {
	x, ok := v.field(slot, TypeTime)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, x.unix).UTC(), true
}

// Bool returns a bool field.
func (v *View) Bool(slot Slot) (bool, bool) {
	x, ok := v.field(slot, TypeBool)
	if !ok {
		return false, false
	}
	return x.num != 0, true
}

// Category returns a category field.
func (v *View) Category(slot Slot) (string, bool) {
	x, ok := v.field(slot, TypeCategory)
	if !ok {
		return "", false
	}
	return x.str, true
}

// StampedAt returns the time of the event that last changed a field, so a
// caller can prefer a feature snapshot whose as-of time is later.
func (v *View) StampedAt(slot Slot) (time.Time, bool) {
	if v.c == nil || int(slot) < 0 || int(slot) >= len(v.c.overlay) {
		return time.Time{}, false
	}
	x := &v.c.overlay[slot]
	if v.hidden(slot, x) {
		return time.Time{}, false
	}
	return time.Unix(0, x.at).UTC(), true
}

func (v *View) agg(k Kind, key string, o Outcome) *agg {
	if v.c == nil {
		return nil
	}
	for i := range v.c.aggs {
		if r := &v.c.aggs[i]; r.kind == k && r.outcome == o && r.key == key {
			return r.a
		}
	}
	return nil
}

// Count returns how many contacts with outcome o the customer had for key
// (an action id, group or channel, by kind) in (now-window, now]. See the
// package documentation for its precision. It scans the customer's
// aggregates (at most MaxKeysPerCustomer), never the history.
func (v *View) Count(k Kind, key string, o Outcome, window time.Duration, now time.Time) int {
	a := v.agg(k, key, o)
	if a == nil {
		return 0
	}
	return a.count(window, now.UnixNano())
}

// Last returns the time of the latest contact with outcome o for key, e.g.
// to pause an action for 30 days after a reject.
func (v *View) Last(k Kind, key string, o Outcome) (time.Time, bool) {
	a := v.agg(k, key, o)
	if a == nil || a.seen == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, a.recent[0]).UTC(), true
}

// Journey returns the customer's state in a journey.
func (v *View) Journey(id string) (JourneyState, bool) {
	if v.c == nil {
		return JourneyState{}, false
	}
	for _, j := range v.c.journeys {
		if j.Journey == id {
			return j, true
		}
	}
	return JourneyState{}, false
}

// Journeys returns how many journeys the customer has state in; JourneyAt
// returns them by index.
func (v *View) Journeys() int {
	if v.c == nil {
		return 0
	}
	return len(v.c.journeys)
}

// JourneyAt returns the i-th journey, 0 <= i < Journeys().
func (v *View) JourneyAt(i int) JourneyState { return v.c.journeys[i] }

// HistoryLen returns how many recent contacts are kept.
func (v *View) HistoryLen() int {
	if v.c == nil {
		return 0
	}
	return v.c.histN
}

// History appends up to n of the most recent contacts, newest first, to dst
// and returns it; with enough capacity in dst it does not allocate.
func (v *View) History(dst []Contact, n int) []Contact {
	if v.c == nil {
		return dst
	}
	for node, i := v.c.hist, 0; i < min(n, v.c.histN); node, i = node.next, i+1 {
		c := node.c
		c.Customer = v.c.id
		dst = append(dst, c)
	}
	return dst
}

// EachContact calls fn with the time (unix nanoseconds) and outcome of each
// kept contact (see History) whose key of kind k (action id, group as
// recorded, channel) is key, the latest recorded first. It does not
// allocate; fn must not keep the View.
func (v *View) EachContact(k Kind, key string, fn func(at int64, o Outcome)) {
	if v.c == nil {
		return
	}
	for node, i := v.c.hist, 0; i < v.c.histN; node, i = node.next, i+1 {
		c := &node.c
		var ck string
		switch k {
		case KindAction:
			ck = c.Action
		case KindGroup:
			ck = c.Group
		case KindChannel:
			ck = c.Channel
		}
		if ck == key {
			fn(c.At.UnixNano(), c.Outcome)
		}
	}
}
