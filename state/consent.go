package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Consent is one change of a customer's consent for a purpose on a channel
// (e.g. e-mail marketing withdrawn), from the consent API, an event
// mapping or a snapshot column. Changes are ordered by At, not by arrival:
// a change older than the newest one kept for the channel and purpose is
// kept in the audit trail but does not change the status.
type Consent struct {
	Customer string
	Channel  string
	Purpose  string
	Granted  bool
	At       time.Time
	// Source says where the change came from ("preference_center",
	// "event:unsubscribe", ...); may be empty.
	Source string
	// ID, when not empty, is the caller's idempotency key: a change whose
	// ID the customer's state remembers is not applied again. Consent ids
	// are a namespace of their own, beside contact and event ids.
	ID string
	// Via is the change's provenance, as Contact.Via.
	Via string
}

// ConsentChange is one entry of the audit trail of a channel and purpose.
type ConsentChange struct {
	Granted bool
	At      time.Time
	Source  string
}

// ConsentStatus is a customer's consent for a purpose on a channel: the
// status is that of the newest change by At, Trail the changes kept
// (oldest first, at most ConsentTrail).
type ConsentStatus struct {
	Channel, Purpose string
	Trail            []ConsentChange // shared with the state: do not change
}

// Current returns the change in force: the newest by time.
func (s ConsentStatus) Current() ConsentChange { return s.Trail[len(s.Trail)-1] }

// Limits of consent state per customer.
const (
	// ConsentTrail is the number of changes kept per channel and purpose
	// (the audit trail); past it the oldest is dropped (Result.Dropped).
	ConsentTrail = 8
	// MaxConsentPairs bounds the channel × purpose pairs kept per
	// customer; a change for a new pair past it is refused (ErrInvalid).
	MaxConsentPairs = 256
)

// consentPair is the consent state of one channel and purpose; trail is
// ordered by time, oldest first, and never empty.
type consentPair struct {
	channel, purpose string
	trail            []ConsentChange
}

// ConsentRecord validates a consent change and returns the record that
// applies it to its customer; an error means the change is invalid
// (ErrInvalid for the caller).
func (m *Model) ConsentRecord(c Consent) (Record, error) {
	err := errors.Join(m.checkString("customer", c.Customer, true), m.checkString("channel", c.Channel, true),
		m.checkString("purpose", c.Purpose, true), m.checkString("source", c.Source, false),
		m.checkString("id", c.ID, false), checkVia(c.Via), checkTime(c.At))
	if err != nil {
		return record{}, err
	}
	r := record{typ: recConsent, customer: c.Customer, id: c.ID, at: c.At.UnixNano(),
		channel: c.Channel, group: c.Purpose, action: c.Source, via: c.Via}
	if c.Granted {
		r.num = 1
	}
	return r, nil
}

// applyConsent inserts the change of r into the customer's trail for its
// channel and purpose, in time order (a change at the same time as one
// kept goes after it: the later arrival wins a tie).
func (m *Model) applyConsent(cs *custState, r *record, res *Result) error {
	ch := ConsentChange{Granted: r.num == 1, At: time.Unix(0, r.at).UTC(), Source: m.intern.get(r.action, &m.ctr.internFull)}
	i := slices.IndexFunc(cs.consent, func(p consentPair) bool { return p.channel == r.channel && p.purpose == r.group })
	if i < 0 {
		if len(cs.consent) >= MaxConsentPairs {
			return invalidf("cannot set consent: the customer has %d channel and purpose pairs, the limit", MaxConsentPairs)
		}
		cs.consent = append(slices.Clip(cs.consent), consentPair{channel: m.intern.get(r.channel, &m.ctr.internFull),
			purpose: m.intern.get(r.group, &m.ctr.internFull), trail: []ConsentChange{ch}})
		return nil
	}
	cs.consent = slices.Clone(cs.consent)
	p := &cs.consent[i]
	at := r.at
	j := len(p.trail)
	for j > 0 && p.trail[j-1].At.UnixNano() > at {
		j--
	}
	trail := slices.Insert(slices.Clone(p.trail), j, ch)
	if drop := len(trail) - ConsentTrail; drop > 0 {
		trail = trail[drop:]
		res.Dropped += drop
	}
	p.trail = trail
	return nil
}

// Consent returns the viewed customer's consent for the purpose on the
// channel, false when no change was ever recorded (the catalog's default
// applies).
func (v *View) Consent(channel, purpose string) (ConsentChange, bool) {
	if v.c == nil {
		return ConsentChange{}, false
	}
	for i := range v.c.consent {
		if p := &v.c.consent[i]; p.channel == channel && p.purpose == purpose {
			return p.trail[len(p.trail)-1], true
		}
	}
	return ConsentChange{}, false
}

// Consents returns the number of channel and purpose pairs with changes.
func (v *View) Consents() int {
	if v.c == nil {
		return 0
	}
	return len(v.c.consent)
}

// ConsentAt returns pair i (0 ≤ i < Consents) with its audit trail.
func (v *View) ConsentAt(i int) ConsentStatus {
	p := &v.c.consent[i]
	return ConsentStatus{Channel: p.channel, Purpose: p.purpose, Trail: p.trail}
}

// Sections of a customer's value after the idempotency keys (checkpoint
// version 3 on): tag (1) | length uvarint | body, ended by tag 0. A value
// written before sections existed ends after the keys: it has none. A
// decoder skips the sections it does not know, so each feature keeps its
// own section and an older reader can still load a newer value.
const (
	sectionEnd     byte = 0
	sectionConsent byte = 'C' // pairs: count uvarint, per pair: channel, purpose strings | trail count uvarint | per change: granted (1) | at varint | source string
	sectionReserve byte = 'R' // reserve.go: appendReservations
	sectionIdent   byte = 'I' // identity_model.go: appendIdent
)

// appendConsentSection appends the consent section of cs, if it has any.
func appendConsentSection(b []byte, cs *custState) []byte {
	if len(cs.consent) == 0 {
		return b
	}
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(cs.consent)))
	for _, p := range cs.consent {
		body = appendString(body, p.channel)
		body = appendString(body, p.purpose)
		body = binary.AppendUvarint(body, uint64(len(p.trail)))
		for _, c := range p.trail {
			g := byte(0)
			if c.Granted {
				g = 1
			}
			body = append(body, g)
			body = binary.AppendVarint(body, c.At.UnixNano())
			body = appendString(body, c.Source)
		}
	}
	b = append(b, sectionConsent)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// decodeConsentSection decodes a consent section's body into cs.
func (m *Model) decodeConsentSection(body []byte, cs *custState) error {
	d := dec{b: body}
	n := d.uvarint()
	if n > MaxConsentPairs {
		return fmt.Errorf("%d consent pairs exceed the limit of %d", n, MaxConsentPairs)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		p := consentPair{channel: d.str(), purpose: d.str()}
		nt := d.uvarint()
		if d.err == nil && (p.channel == "" || p.purpose == "" || nt == 0 || nt > ConsentTrail) {
			d.fail("invalid consent pair %d", i)
		}
		for j := uint64(0); j < nt && d.err == nil; j++ {
			g := d.byte()
			at := d.varint()
			src := d.str()
			if d.err == nil && g > 1 {
				d.fail("invalid consent status %d", g)
			}
			if j > 0 && d.err == nil && at < p.trail[len(p.trail)-1].At.UnixNano() {
				d.fail("consent trail out of order")
			}
			p.trail = append(p.trail, ConsentChange{Granted: g == 1, At: time.Unix(0, at).UTC(), Source: m.intern.get(src, &m.ctr.internFull)})
		}
		p.channel, p.purpose = m.intern.get(p.channel, &m.ctr.internFull), m.intern.get(p.purpose, &m.ctr.internFull)
		cs.consent = append(cs.consent, p)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// hasSections reports whether cs has any section to encode.
func hasSections(cs *custState) bool {
	return len(cs.consent) > 0 || len(cs.res) > 0 || cs.ident != nil
}

// appendSections appends the sections of cs and the end tag.
func appendSections(b []byte, cs *custState) []byte {
	b = appendConsentSection(b, cs)
	b = appendReserveSection(b, cs)
	b = appendIdentSection(b, cs)
	return append(b, sectionEnd)
}

// decodeSections reads sections up to the end tag into cs; unknown
// sections are skipped.
func (m *Model) decodeSections(d *rd, cs *custState) {
	if _, err := d.r.Peek(1); err == io.EOF {
		return // a value written before sections: it ends after the keys
	}
	for first := true; d.err == nil; first = false {
		tag := d.byte()
		if d.err == nil && tag == sectionEnd && first && d.one {
			d.fail("a value with an empty list of sections") // AppendCustomer writes none then
		}
		if d.err != nil || tag == sectionEnd {
			return
		}
		n := d.count(1<<24, "section bytes")
		if d.err != nil {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(d.r, body); err != nil {
			d.fail("unexpected end of section %q", tag)
			return
		}
		switch tag {
		case sectionConsent:
			if err := m.decodeConsentSection(body, cs); err != nil {
				d.fail("consent section: %w", err)
			}
		case sectionReserve:
			if err := m.decodeReserveSection(body, cs); err != nil {
				d.fail("reservations section: %w", err)
			}
		case sectionIdent:
			if err := m.decodeIdentSection(body, cs); err != nil {
				d.fail("identity section: %w", err)
			}
		}
	}
}

// appendConsentRecord and decodeConsentRecord are the log body of a
// consent record: id, channel, purpose strings | granted (1) | source string.
func appendConsentRecord(b []byte, r *record) []byte {
	b = appendString(b, r.id)
	b = appendString(b, r.channel)
	b = appendString(b, r.group)
	b = append(b, byte(r.num))
	return appendString(b, r.action)
}

func decodeConsentRecord(d *dec, r *record) {
	r.id, r.channel, r.group = d.str(), d.str(), d.str()
	g := d.byte()
	r.num = float64(g)
	r.action = d.str()
	if d.err == nil && (g > 1 || r.customer == "" || r.channel == "" || r.group == "") {
		d.fail("invalid consent record")
	}
}

// ParseConsentStatus parses "granted" or "denied".
func ParseConsentStatus(s string) (granted bool, err error) {
	switch s {
	case "granted":
		return true, nil
	case "denied":
		return false, nil
	}
	return false, fmt.Errorf("unknown consent status %q (want granted or denied)", s)
}

// ConsentStatusName is "granted" or "denied".
func ConsentStatusName(granted bool) string {
	if granted {
		return "granted"
	}
	return "denied"
}

// ConsentWriter is the consent half of a backend.
type ConsentWriter interface {
	// SetConsent records consent changes durably, each customer's in the
	// order given; all are validated first (on an error none is
	// recorded). It returns how many were duplicates (their ID
	// remembered: not applied).
	SetConsent(cs ...Consent) (dups int, err error)
	// EventConsents returns the consent changes the mappings make for an
	// event (Model.EventConsents), for the caller to set.
	EventConsents(e Event) ([]Consent, error)
}

// consentOp is a compiled consent operation of an event mapping.
type consentOp struct {
	channel, purpose string
	granted          bool   // the constant status, when attr is ""
	attr             string // the attribute holding the status
}

func compileConsentOp(path string, op Op) (consentOp, error) {
	if op.Set != "" || op.Incr != "" || op.Stamp != "" || op.Value != nil || op.By != nil {
		return consentOp{}, fmt.Errorf("%s: consent takes status or from, nothing else", path)
	}
	ch, purpose, ok := strings.Cut(op.Consent, ".")
	if !ok || ch == "" || purpose == "" || strings.Contains(purpose, ".") {
		return consentOp{}, fmt.Errorf("%s: consent %q is not channel.purpose", path, op.Consent)
	}
	co := consentOp{channel: ch, purpose: purpose, attr: op.From}
	if (op.Status == "") == (op.From == "") {
		return consentOp{}, fmt.Errorf("%s: consent %q needs exactly one of status, from", path, op.Consent)
	}
	if op.Status != "" {
		g, err := ParseConsentStatus(op.Status)
		if err != nil {
			return consentOp{}, fmt.Errorf("%s: %w", path, err)
		}
		co.granted = g
	}
	return co, nil
}

func consentOpsEqual(a, b map[string][]consentOp) bool {
	if len(a) != len(b) {
		return false
	}
	for ev, ops := range a {
		if !slices.Equal(ops, b[ev]) {
			return false
		}
	}
	return true
}

// EventConsents returns the consent changes the mappings make for event e
// (none for most events), each with an idempotency key derived from e.ID
// (none without one) so that a retried event sets them once. An attribute
// that is missing is skipped (Stats.MissingAttrs); one that is not a
// status is an error (ErrInvalid for the caller).
func (m *Model) EventConsents(e Event) ([]Consent, error) {
	ops := m.m.consents[e.Type]
	if len(ops) == 0 {
		return nil, nil
	}
	out := make([]Consent, 0, len(ops))
	for i, op := range ops {
		c := Consent{Customer: e.Customer, Channel: op.channel, Purpose: op.purpose, Granted: op.granted, At: e.At, Source: "event:" + e.Type, Via: e.Via}
		if op.attr != "" {
			x, ok := e.Attrs[op.attr]
			if !ok {
				m.ctr.missingAttrs.Add(1)
				continue
			}
			switch v := x.(type) {
			case bool:
				c.Granted = v
			case string:
				g, err := ParseConsentStatus(v)
				if err != nil {
					return nil, invalidf("%s: consent %s.%s from %s: %w", e.Type, op.channel, op.purpose, op.attr, err)
				}
				c.Granted = g
			default:
				return nil, invalidf("%s: consent %s.%s from %s: want granted, denied or a bool, got %T", e.Type, op.channel, op.purpose, op.attr, x)
			}
		}
		if e.ID != "" {
			c.ID = e.ID + "/consent/" + strconv.Itoa(i)
		}
		out = append(out, c)
	}
	return out, nil
}

// ConsentMappings lists the channel and purpose of every consent operation
// of the mappings, for a caller that checks them against its catalog.
func (m *Model) ConsentMappings() (pairs [][2]string) {
	for _, ops := range m.m.consents {
		for _, op := range ops {
			pairs = append(pairs, [2]string{op.channel, op.purpose})
		}
	}
	return pairs
}

// checkConsentDump reports why Restore would refuse a customer's consent.
func (m *Model) checkConsentDump(cs []ConsentStatus) error {
	if len(cs) > MaxConsentPairs {
		return fmt.Errorf("%d consent pairs exceed the limit of %d", len(cs), MaxConsentPairs)
	}
	for i, p := range cs {
		err := errors.Join(m.checkString("channel", p.Channel, true), m.checkString("purpose", p.Purpose, true))
		if err == nil && (len(p.Trail) == 0 || len(p.Trail) > ConsentTrail) {
			err = fmt.Errorf("trail of %d changes, want 1 to %d", len(p.Trail), ConsentTrail)
		}
		for j, c := range p.Trail {
			if err == nil {
				err = errors.Join(checkTime(c.At), m.checkString("source", c.Source, false))
			}
			if err == nil && j > 0 && c.At.Before(p.Trail[j-1].At) {
				err = errors.New("trail is not oldest first")
			}
		}
		if err == nil && slices.ContainsFunc(cs[:i], func(o ConsentStatus) bool { return o.Channel == p.Channel && o.Purpose == p.Purpose }) {
			err = errors.New("channel and purpose given twice")
		}
		if err != nil {
			return fmt.Errorf("consent %d: %w", i, err)
		}
	}
	return nil
}

// restoreConsent sets cs's consent from a dump checked by checkConsentDump.
func (m *Model) restoreConsent(cs *custState, in []ConsentStatus) {
	for _, p := range in {
		trail := make([]ConsentChange, len(p.Trail))
		for i, c := range p.Trail {
			trail[i] = ConsentChange{Granted: c.Granted, At: c.At.UTC(), Source: m.intern.get(c.Source, &m.ctr.internFull)}
		}
		cs.consent = append(cs.consent, consentPair{channel: m.intern.get(p.Channel, &m.ctr.internFull),
			purpose: m.intern.get(p.Purpose, &m.ctr.internFull), trail: trail})
	}
}
