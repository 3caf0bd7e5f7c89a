package sidecar

import (
	"context"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"nba/cache/snapshot"
	"nba/nba"
	"nba/state"
)

// customers adapts the feature snapshot and the live state store to the
// engine's Customers interface: one state lookup per decision. It is safe
// for concurrent use and allocates nothing once a Customer is warm.
type customers struct {
	state   state.Backend
	binding atomic.Pointer[binding]
	// erased reports a customer erased (erase.go): decided as anonymous.
	erased func(customer string) bool
}

// binding pairs the snapshot being served with the column of each profile
// field in it; it is rebuilt whenever the snapshot or the bundle changes.
type binding struct {
	snap    *snapshot.Snapshot
	src     []fieldSource
	col     []int        // snapshot column per field, -1 when not from the snapshot
	consent []consentCol // consent columns the snapshot has, with their index (consent.go)
}

func newBinding(snap *snapshot.Snapshot, src []fieldSource, consent ...consentCol) *binding {
	b := &binding{snap: snap, src: src, col: make([]int, len(src))}
	b.bindConsent(consent)
	for i, f := range src {
		b.col[i] = -1
		if f.inSnap && snap != nil {
			if c, ok := snap.ColumnIndex(f.name); ok {
				b.col[i] = c
			}
		}
	}
	return b
}

// bytesOf borrows a string's bytes for a read-only call that keeps nothing.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Load implements nba.Customers with one lookup of the state store: the
// snapshot's values, then the live overlay values, decided per field: for
// a field the snapshot carries, the overlay value wins only when stamped
// after the snapshot's as-of time; a live-only field keeps its overlay
// value whatever the snapshot (unless its mapping resets it on a new
// snapshot: the state store hides it then). dst.History and dst.Journeys
// read the same consistent view of the customer. When the state store
// cannot be read, Load returns the snapshot's profile and the error: the
// engine decides without live state and marks the decision stale.
func (c *customers) Load(ctx context.Context, customer string, dst *nba.Customer) (k bool, stale error) {
	lv, _ := dst.Scratch.(*liveView)
	if lv == nil {
		lv = new(liveView)
		dst.Scratch = lv
	}
	if c.erased != nil && c.erased(customer) {
		dst.History = nil
		return false, nil // no snapshot row, no live state: anonymous
	}
	b := c.binding.Load() // once: the profile and the overlay read one snapshot
	known := snapshotProfile(b, customer, &dst.Profile)
	if known && len(b.consent) > 0 {
		// After the live changes are loaded, whatever the return.
		defer func() { dst.Consent = b.snapshotConsent(customer, dst.Consent) }()
	}
	lv.found = false
	if c.state != nil {
		found, err := c.state.Load(ctx, bytesOf(customer), &lv.v)
		if err != nil && !found {
			lv.v = state.View{}
			return known, err
		}
		if err != nil {
			// A shared backend out of reach answered its last-good copy:
			// decide from it, marked stale (known tells the engine to
			// keep it).
			defer func() { stale, k = err, true }()
		}
		lv.found = found
	}
	dst.History = lv
	if !lv.found {
		lv.v = state.View{}
		return known, nil
	}
	if overlayProfile(b, &lv.v, &dst.Profile) {
		known = true
	}
	dst.Consent = loadConsent(&lv.v, dst.Consent)
	for i := 0; i < lv.v.Journeys(); i++ {
		j := lv.v.JourneyAt(i)
		dst.Journeys = append(dst.Journeys, journeyOf(j))
	}
	return known, nil
}

// journeyOf is a stored journey state as the engine reads it.
func journeyOf(j state.JourneyState) nba.JourneyState {
	return nba.JourneyState{Journey: j.Journey, Step: j.Step, Status: nba.JourneyStatus(j.Status), EnteredAt: j.EnteredAt, LastStepAt: j.StepAt}
}

// liveView is one loaded customer's contact history: the state store's
// view, kept in nba.Customer.Scratch so a warm load allocates nothing.
type liveView struct {
	v     state.View
	found bool
}

// Count implements nba.CustomerHistory.
func (lv *liveView) Count(scope nba.Scope, key string, outcome nba.Outcome, window time.Duration, now time.Time) int {
	if !lv.found {
		return 0
	}
	return lv.v.Count(kindOf(scope), key, outcomeOf(outcome), window, now)
}

// Contacts implements nba.CustomerHistory: the contacts the state keeps
// for the customer (the latest state.Config.MaxEventsPerCustomer).
func (lv *liveView) Contacts(scope nba.Scope, key string, dst []nba.ContactAt) ([]nba.ContactAt, bool) {
	if lv.found {
		lv.v.EachContact(kindOf(scope), key, func(at int64, o state.Outcome) {
			dst = append(dst, nba.ContactAt{At: at, Outcome: outcomeFrom(o)})
		})
	}
	return dst, true
}

// Profile fills p (sized to the schema, all fields missing) as Load does
// and reports whether the customer is known: for the customer pages.
func (c *customers) Profile(customer string, p *nba.Profile) bool {
	var v state.View
	found := c.state != nil && c.state.View(bytesOf(customer), &v)
	return c.profileOf(customer, &v, found, p)
}

// profileOf is Profile over the customer's state v already read (found:
// it has some), so that one page reads the state once.
func (c *customers) profileOf(customer string, v *state.View, found bool, p *nba.Profile) bool {
	if c.erased != nil && c.erased(customer) {
		return false
	}
	b := c.binding.Load()
	known := snapshotProfile(b, customer, p)
	if found && overlayProfile(b, v, p) {
		known = true
	}
	return known
}

// LiveField is one live overlay field as the customer's state holds it:
// for the customer pages.
type liveField struct {
	field   int       // index in the schema
	at      time.Time // when the event that set it happened
	applied bool      // it is the value decisions see (else an older stamp than the snapshot's)
}

// profileParts fills snap with the snapshot's values alone and live with
// the live overlay's values alone, and lists the live fields set; asOf is
// the snapshot's as-of time (zero without a snapshot). v is the customer's
// state (found: it has some).
func (c *customers) profileParts(customer string, v *state.View, found bool, snap, live *nba.Profile) (fields []liveField, asOf time.Time) {
	b := c.binding.Load()
	if b == nil {
		return nil, time.Time{}
	}
	snapshotProfile(b, customer, snap)
	snapAsOf := int64(math.MinInt64)
	if b.snap != nil {
		asOf = b.snap.AsOf()
		snapAsOf = asOf.UnixNano()
	}
	if !found {
		return nil, asOf
	}
	for i, f := range b.src {
		if f.slot < 0 || i >= len(live.Num) {
			continue
		}
		if !b.src[i].liveValue(v, i, live) {
			live.Num[i] = math.NaN()
			continue
		}
		at, _ := v.StampedAt(f.slot)
		fields = append(fields, liveField{field: i, at: at, applied: !f.inSnap || at.UnixNano() > snapAsOf})
	}
	return fields, asOf
}

// snapshotProfile fills p with the snapshot's values for the customer and
// reports whether the snapshot has a row for it.
func snapshotProfile(b *binding, customer string, p *nba.Profile) bool {
	if b == nil || b.snap == nil {
		return false
	}
	row, ok := b.snap.LookupString(customer)
	if !ok {
		return false
	}
	for i, col := range b.col {
		if col < 0 || i >= len(p.Num) {
			continue
		}
		switch b.src[i].kind {
		case nba.KindNumber:
			p.Num[i] = float64(b.snap.Number(col, row))
		case nba.KindBool:
			if v, ok := b.snap.Bool(col, row); ok {
				p.Num[i] = b2f(v)
			}
		case nba.KindTime:
			if v, ok := b.snap.Time(col, row); ok {
				p.Num[i] = float64(v)
			}
		case nba.KindCategory:
			if code, ok := b.snap.Category(col, row); ok {
				p.Num[i] = float64(code)
				p.Str[i] = b.snap.Dict(col)[code]
			}
		}
	}
	return true
}

// overlayProfile applies the live overlay values of v over p, per field
// (see Load), and reports whether any was set.
func overlayProfile(b *binding, v *state.View, p *nba.Profile) bool {
	if b == nil {
		return false
	}
	snapAsOf := int64(math.MinInt64)
	if b.snap != nil {
		snapAsOf = b.snap.AsOf().UnixNano()
	}
	known := false
	for i, f := range b.src {
		if f.slot < 0 || i >= len(p.Num) {
			continue
		}
		if f.inSnap {
			at, ok := v.StampedAt(f.slot)
			if !ok || at.UnixNano() <= snapAsOf {
				continue
			}
		}
		if b.src[i].liveValue(v, i, p) {
			known = true
		}
	}
	return known
}

// liveValue sets field i of p to the field's live overlay value in v and
// reports whether v has one; p is left as it was when it has not.
func (f *fieldSource) liveValue(v *state.View, i int, p *nba.Profile) bool {
	switch f.kind {
	case nba.KindNumber:
		if x, ok := v.Number(f.slot); ok {
			p.Num[i] = x
			return true
		}
	case nba.KindBool:
		if x, ok := v.Bool(f.slot); ok {
			p.Num[i] = b2f(x)
			return true
		}
	case nba.KindTime:
		if x, ok := v.Time(f.slot); ok {
			p.Num[i] = float64(x.Unix())
			return true
		}
	case nba.KindCategory:
		if x, ok := v.Category(f.slot); ok {
			p.Str[i] = x
			p.Num[i] = math.NaN()
			return true
		}
	}
	return false
}

// inSnapshot reports whether the served snapshot has a row for customer.
func (c *customers) inSnapshot(customer string) bool {
	if c.erased != nil && c.erased(customer) {
		return false
	}
	b := c.binding.Load()
	if b == nil || b.snap == nil {
		return false
	}
	_, ok := b.snap.LookupString(customer)
	return ok
}

// Version implements nba.Profiles.
func (c *customers) Version() string {
	if b := c.binding.Load(); b != nil && b.snap != nil {
		return b.snap.Version()
	}
	return ""
}

// outcomeFrom is the engine's outcome of a state outcome, 0 when it has none.
func outcomeFrom(o state.Outcome) nba.Outcome {
	switch o {
	case state.Impression:
		return nba.Impression
	case state.Click:
		return nba.Click
	case state.Accept:
		return nba.Accept
	case state.Reject:
		return nba.Reject
	}
	return 0
}

func kindOf(s nba.Scope) state.Kind {
	switch s {
	case nba.ScopeGroup:
		return state.KindGroup
	case nba.ScopeChannel:
		return state.KindChannel
	}
	return state.KindAction
}

func outcomeOf(o nba.Outcome) state.Outcome {
	switch o {
	case nba.Click:
		return state.Click
	case nba.Accept:
		return state.Accept
	case nba.Reject:
		return state.Reject
	}
	return state.Impression
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
