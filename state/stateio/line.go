// Package stateio moves customer state in and out of a state store as JSON
// Lines, for nba state export and import: migrating between state
// directories and backends, and loading existing contact history so that
// caps hold from the first day.
//
// A file is JSON Lines (optionally zstd-compressed) or CSV. A JSON line is
// one of:
//
//   - the fingerprint of the identity key the file's hashed identifiers
//     were hashed with (KeyFingerprint, never the key), first, as export
//     writes it when it knows the key: {"identity_key":"hmac-sha256:..."}.
//     Import checks it against the target's key (Options.CheckIdentityKey)
//     before anything is imported.
//
//   - a customer's whole state, as export writes it, one object per
//     customer (so a customer is restored whole, in one step):
//
//     {"customer":"c1",
//     "contacts":[{"action":"a","group":"g","channel":"web","outcome":"click","value":2.5,"at":"2026-01-02T03:04:05.000000006Z"}],
//     "fields":[{"field":"tier","type":"category","value":"gold","at":"..."}],
//     "journeys":[{"journey":"j","step":1,"status":"active","entered_at":"...","step_at":"..."}],
//     "ids":[{"id":"fb-1"},{"id":"ev-9","event":true},{"id":"pc-3","consent":true}],
//     "consent":[{"channel":"email","purpose":"marketing","trail":[{"status":"denied","at":"...","source":"pc"}]}],
//     "counters":[{"kind":"action","key":"a","outcome":"click","seen":3,"recent":[...],"hour_top":..,"hours":[..],"day_top":..,"days":[..]}],
//     "identifiers":[{"ns":"cookie","value":"c-91","first":"...","last":"...","source":"login-1"}],
//     "merged_into":"c00042", "receipt":"...", "saved":{"customer":"~cookie:c-91",...},
//     "merges":[{"receipt":"...","from":"~cookie:c-91","before":{"customer":"c00042",...},
//     "since":[{"as_of":0,"record":"<base64>"}],"full":false}],
//     "expired":[{"key":"cookie:c-1","fresh":"~cookie:c-1@1780000000"}],
//     "reservations":[{"decision":"d-7","action":"a","group":"g","channel":"email","at":"...","expires":"...",
//     "caps":[{"kind":"channel","key":"email","window":"24h0m0s","max":1}]}]}
//
//     Contacts are the latest recorded first; ids oldest first (event ids marked);
//     counters are the store's cap-window aggregates, which keep counting
//     contacts no longer in the bounded history: with them a round trip is
//     lossless, without them (a hand-written line) they are rebuilt from
//     the contacts. identifiers are the profile's linked identifiers
//     (identity stitching; hashed namespaces as stored, so import with the
//     same identity key), which the import points the identifier index at
//     again; merged_into marks a profile merged into another, restored as
//     a forward to it, with the merge's receipt and its own state from
//     before the merge (saved); merges are the merges a profile absorbed
//     that can still be undone: its state before each (before, a nested
//     state) and the writes made since (since: each a state log record,
//     the log's own format, and the snapshot as-of time it was applied
//     with), so that an unmerge after the import gives what it would have
//     before the export; expired are identifiers the profile dropped as
//     their ttl ran out, and the anonymous profile each names since;
//     reservations are the slots of exact caps decisions hold until their
//     impression comes or they expire, so that a moved customer is not
//     given a reserved slot again. Importing such a line replaces the
//     customer's state.
//
//   - an erased customer's tombstone, as export writes it after the
//     customers: {"tombstone":"<pseudonym>","until":"2027-01-06T10:00:00Z"}.
//     The pseudonym is the keyed hash of the id the erasure kept (never the
//     id; the target must be served with the same $NBA_ERASURE_KEY), and
//     importing it keeps the tombstone until then, so that after a move a
//     late event for the erased customer is still refused.
//
//   - one contact of a contact history, with the columns bench/bundlegen's
//     contacts.csv has: {"customer_id":"c1","action":"a","group":"g",
//     "channel":"web","outcome":"impression","at":"2026-01-02T03:04:05Z"}
//     and optionally "value" and "id" (the idempotency key: a contact
//     whose id the customer's state remembers is not recorded again).
//     Importing it adds the contact, as feedback would.
//
// A CSV file has a header naming its columns, customer_id, action,
// channel, outcome and at required, group, value and id optional, and one
// contact per row. Times are RFC 3339 with up to nanoseconds.
//
// Unknown keys and columns are refused, so that a misspelt one is not
// silently ignored (JSON keys match regardless of case, as encoding/json
// matches them).
package stateio

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"nba/state"
)

// Row is one decoded line: the identity key's fingerprint, a customer's
// state, an erased customer's tombstone or one contact.
type Row struct {
	IdentityKey string              // the fingerprint of the identity key the file's hashed identifiers were hashed with, or ""
	Customer    *state.CustomerDump // a customer's whole state, or nil
	Tombstone   *state.Tombstone    // an erased customer's tombstone, or nil
	Contact     state.Contact       // when the others are empty
}

// KeyFingerprint names an identity key without revealing it: an HMAC of a
// fixed text under the key. Two states hash identifiers alike exactly when
// their keys' fingerprints are equal.
func KeyFingerprint(key []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("nba identity key fingerprint"))
	return "hmac-sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// AppendKeyLine appends the line naming the identity key by its
// fingerprint (KeyFingerprint), with its newline, to dst.
func AppendKeyLine(dst []byte, fingerprint string) []byte {
	b, _ := json.Marshal(struct {
		IdentityKey string `json:"identity_key"`
	}{fingerprint})
	return append(append(dst, b...), '\n')
}

// wireTombstone is an erased customer's tombstone: its pseudonym (a keyed
// hash of the id, never the id) and when it ends.
type wireTombstone struct {
	Tombstone string `json:"tombstone"`
	Until     string `json:"until"`
}

type wireContact struct {
	Action  string  `json:"action"`
	Group   string  `json:"group,omitempty"`
	Channel string  `json:"channel,omitempty"`
	Outcome string  `json:"outcome"`
	Value   float64 `json:"value,omitempty"`
	At      string  `json:"at"`
}

type wireField struct {
	Field string          `json:"field"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
	At    string          `json:"at"`
}

type wireJourney struct {
	Journey   string `json:"journey"`
	Step      int    `json:"step"`
	Status    string `json:"status"`
	EnteredAt string `json:"entered_at"`
	StepAt    string `json:"step_at"`
}

type wireID struct {
	ID      string `json:"id"`
	Event   bool   `json:"event,omitempty"`
	Consent bool   `json:"consent,omitempty"`
}

// wireConsent is one channel and purpose's consent with its audit trail,
// oldest first.
type wireConsent struct {
	Channel string              `json:"channel"`
	Purpose string              `json:"purpose"`
	Trail   []wireConsentChange `json:"trail"`
}

type wireConsentChange struct {
	Status string `json:"status"` // granted or denied
	At     string `json:"at"`
	Source string `json:"source,omitempty"`
}

type wireIdentifier struct {
	NS     string `json:"ns"`
	Value  string `json:"value"`
	First  string `json:"first"`
	Last   string `json:"last"`
	Source string `json:"source,omitempty"`
}

type wireCounter struct {
	Kind    string   `json:"kind"`
	Key     string   `json:"key"`
	Outcome string   `json:"outcome"`
	Seen    uint32   `json:"seen"`
	Recent  []int64  `json:"recent,omitempty"`
	HourTop int64    `json:"hour_top"`
	Hours   []uint16 `json:"hours,omitempty"`
	DayTop  int64    `json:"day_top"`
	Days    []uint16 `json:"days,omitempty"`
}

type wireCustomer struct {
	Customer string        `json:"customer"`
	Contacts []wireContact `json:"contacts,omitempty"`
	Fields   []wireField   `json:"fields,omitempty"`
	Journeys []wireJourney `json:"journeys,omitempty"`
	IDs      []wireID      `json:"ids,omitempty"`
	Counters []wireCounter `json:"counters,omitempty"`
	Consent  []wireConsent `json:"consent,omitempty"`

	Identifiers []wireIdentifier `json:"identifiers,omitempty"`
	MergedInto  string           `json:"merged_into,omitempty"`
	Receipt     string           `json:"receipt,omitempty"`
	Saved       *wireCustomer    `json:"saved,omitempty"`
	Merges      []wireMerge      `json:"merges,omitempty"`
	Expired     []wireExpired    `json:"expired,omitempty"`

	Reservations []wireReservation `json:"reservations,omitempty"`
}

// wireReservation is a reservation of exact caps (state.Reservation).
type wireReservation struct {
	Decision string         `json:"decision"`
	Action   string         `json:"action"`
	Group    string         `json:"group,omitempty"`
	Channel  string         `json:"channel,omitempty"`
	At       string         `json:"at"`
	Expires  string         `json:"expires"`
	Caps     []wireExactCap `json:"caps"`
}

// wireExactCap is an exact cap a reservation counts toward; its window in
// Go's duration syntax ("24h0m0s").
type wireExactCap struct {
	Kind   string `json:"kind"`
	Key    string `json:"key"`
	Window string `json:"window"`
	Max    int    `json:"max"`
}

// wireExpired is an identifier dropped by its ttl (state.ExpiredIdentifier).
type wireExpired struct {
	Key   string `json:"key"`
	Fresh string `json:"fresh"`
}

// wireMerge is a merge the customer absorbed (state.MergeDump); wireMergeIn
// the same, decoded.
type wireMerge struct {
	Receipt string        `json:"receipt"`
	From    string        `json:"from"`
	Before  *wireCustomer `json:"before,omitempty"`
	Since   []wireLogged  `json:"since,omitempty"`
	Full    bool          `json:"full,omitempty"`
}

type wireMergeIn struct {
	Receipt string       `json:"receipt"`
	From    string       `json:"from"`
	Before  *wireLine    `json:"before"`
	Since   []wireLogged `json:"since"`
	Full    bool         `json:"full"`
}

// wireLogged is a logged write: its state log record (base64) and as-of
// time (unix ns).
type wireLogged struct {
	AsOf   int64  `json:"as_of"`
	Record []byte `json:"record"`
}

// wireLine is either shape; which keys are present decides.
type wireLine struct {
	Customer *string       `json:"customer"`
	Contacts []wireContact `json:"contacts"`
	Fields   []wireField   `json:"fields"`
	Journeys []wireJourney `json:"journeys"`
	IDs      []wireID      `json:"ids"`
	Counters []wireCounter `json:"counters"`
	Consent  []wireConsent `json:"consent"`

	Identifiers []wireIdentifier `json:"identifiers"`
	MergedInto  string           `json:"merged_into"`
	Receipt     string           `json:"receipt"`
	Saved       *wireLine        `json:"saved"`
	Merges      []wireMergeIn    `json:"merges"`
	Expired     []wireExpired    `json:"expired"`

	Reservations []wireReservation `json:"reservations"`

	Tombstone *string `json:"tombstone"`
	Until     *string `json:"until"`

	IdentityKey *string `json:"identity_key"`

	CustomerID *string  `json:"customer_id"`
	Action     *string  `json:"action"`
	Group      string   `json:"group"`
	Channel    string   `json:"channel"`
	Outcome    *string  `json:"outcome"`
	Value      *float64 `json:"value"`
	At         *string  `json:"at"`
	ID         string   `json:"id"`
}

// AppendTombstone appends t as one JSON line (with its newline) to dst.
func AppendTombstone(dst []byte, t state.Tombstone) ([]byte, error) {
	b, err := json.Marshal(wireTombstone{Tombstone: t.Pseudonym, Until: formatTime(t.Until)})
	if err != nil {
		return dst, fmt.Errorf("cannot encode tombstone: %w", err)
	}
	return append(append(dst, b...), '\n'), nil
}

// tombstone converts a decoded tombstone line, which has no other key.
func (w *wireLine) tombstone() (*state.Tombstone, error) {
	only := wireLine{Tombstone: w.Tombstone, Until: w.Until}
	switch {
	case w.Tombstone == nil:
		return nil, errors.New(`"until" without "tombstone"`)
	case w.Until == nil:
		return nil, errors.New(`"tombstone" without "until"`)
	case !reflect.DeepEqual(*w, only):
		return nil, errors.New(`a tombstone ("tombstone") with other keys`)
	case *w.Tombstone == "":
		return nil, errors.New("tombstone: empty")
	}
	until, err := parseTime(*w.Until)
	if err != nil {
		return nil, fmt.Errorf("until: %w", err)
	}
	return &state.Tombstone{Pseudonym: *w.Tombstone, Until: until}, nil
}

// AppendCustomer appends c as one JSON line (with its newline) to dst.
func AppendCustomer(dst []byte, c *state.CustomerDump) ([]byte, error) {
	w, err := toWire(c)
	if err != nil {
		return dst, err
	}
	b, err := json.Marshal(w)
	if err != nil {
		return dst, fmt.Errorf("cannot encode customer: %w", err)
	}
	return append(append(dst, b...), '\n'), nil
}

// toWire converts c, and the states nested in it, for encoding.
func toWire(c *state.CustomerDump) (*wireCustomer, error) {
	w := &wireCustomer{Customer: c.ID}
	for _, k := range c.Contacts {
		w.Contacts = append(w.Contacts, wireContact{Action: k.Action, Group: k.Group, Channel: k.Channel,
			Outcome: k.Outcome.String(), Value: k.Value, At: formatTime(k.At)})
	}
	for _, f := range c.Fields {
		var v any
		switch f.Type {
		case state.TypeTime:
			v = formatTime(f.Time)
		case state.TypeCategory:
			v = f.Str
		case state.TypeBool:
			v = f.Num != 0
		default:
			v = f.Num
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("cannot encode field %s: %w", f.Field, err)
		}
		w.Fields = append(w.Fields, wireField{Field: f.Field, Type: f.Type.String(), Value: raw, At: formatTime(f.At)})
	}
	for _, j := range c.Journeys {
		w.Journeys = append(w.Journeys, wireJourney{Journey: j.Journey, Step: j.Step, Status: j.Status.String(),
			EnteredAt: formatTime(j.EnteredAt), StepAt: formatTime(j.StepAt)})
	}
	for _, k := range c.IDs {
		w.IDs = append(w.IDs, wireID(k))
	}
	for _, p := range c.Consent {
		wc := wireConsent{Channel: p.Channel, Purpose: p.Purpose}
		for _, x := range p.Trail {
			wc.Trail = append(wc.Trail, wireConsentChange{Status: state.ConsentStatusName(x.Granted), At: formatTime(x.At), Source: x.Source})
		}
		w.Consent = append(w.Consent, wc)
	}
	for _, id := range c.Identifiers {
		w.Identifiers = append(w.Identifiers, wireIdentifier{NS: id.NS, Value: id.Value, First: formatTime(id.First), Last: formatTime(id.Last), Source: id.Source})
	}
	w.MergedInto, w.Receipt = c.MergedInto, c.Receipt
	for _, g := range c.Expired {
		w.Expired = append(w.Expired, wireExpired(g))
	}
	for _, r := range c.Reservations {
		wr := wireReservation{Decision: r.Decision, Action: r.Action, Group: r.Group, Channel: r.Channel,
			At: formatTime(r.At), Expires: formatTime(r.Expires)}
		for _, k := range r.Caps {
			wr.Caps = append(wr.Caps, wireExactCap{Kind: k.Kind.String(), Key: k.Key, Window: k.Window.String(), Max: k.Max})
		}
		w.Reservations = append(w.Reservations, wr)
	}
	for _, k := range c.Counters {
		w.Counters = append(w.Counters, wireCounter{Kind: k.Kind.String(), Key: k.Key, Outcome: k.Outcome.String(), Seen: k.Seen,
			Recent: k.Recent, HourTop: k.HourTop, Hours: k.Hours, DayTop: k.DayTop, Days: k.Days})
	}
	var err error
	if c.Saved != nil {
		if w.Saved, err = toWire(c.Saved); err != nil {
			return nil, err
		}
	}
	for _, md := range c.Merges {
		wm := wireMerge{Receipt: md.Receipt, From: md.From, Full: md.Full}
		if md.Before != nil {
			if wm.Before, err = toWire(md.Before); err != nil {
				return nil, err
			}
		}
		for _, l := range md.Since {
			wm.Since = append(wm.Since, wireLogged{AsOf: l.AsOf, Record: l.Record})
		}
		w.Merges = append(w.Merges, wm)
	}
	return w, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// DecodeLine decodes one JSON line (without its newline). Its errors name
// the key or position at fault, never a value: lines carry customer ids.
func DecodeLine(line []byte) (Row, error) {
	var w wireLine
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return Row{}, jsonError(err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return Row{}, errors.New("data after the object")
	}
	if w.IdentityKey != nil {
		switch {
		case !reflect.DeepEqual(w, wireLine{IdentityKey: w.IdentityKey}):
			return Row{}, errors.New(`the identity key's fingerprint ("identity_key") with other keys`)
		case *w.IdentityKey == "":
			return Row{}, errors.New("identity_key: empty")
		}
		return Row{IdentityKey: *w.IdentityKey}, nil
	}
	if w.Tombstone != nil || w.Until != nil {
		t, err := w.tombstone()
		return Row{Tombstone: t}, err
	}
	switch {
	case w.Customer != nil && w.CustomerID == nil && w.Action == nil && w.Outcome == nil && w.At == nil && w.Value == nil &&
		w.Group == "" && w.Channel == "" && w.ID == "":
		c, err := w.customer()
		return Row{Customer: c}, err
	case w.CustomerID != nil && w.Customer == nil && w.Contacts == nil && w.Fields == nil && w.Journeys == nil && w.IDs == nil && w.Counters == nil && w.Consent == nil &&
		w.Identifiers == nil && w.MergedInto == "" && w.Receipt == "" && w.Saved == nil && w.Merges == nil && w.Expired == nil &&
		w.Reservations == nil:
		k := contactRow{Customer: *w.CustomerID, Group: w.Group, Channel: w.Channel, ID: w.ID}
		if w.Action != nil {
			k.Action = *w.Action
		}
		if w.Outcome != nil {
			k.Outcome = *w.Outcome
		}
		if w.At != nil {
			k.At = *w.At
		}
		c, err := k.contact(w.Value)
		return Row{Contact: c}, err
	case w.Customer != nil && w.CustomerID != nil:
		return Row{}, errors.New(`both "customer" (a customer's state) and "customer_id" (a contact)`)
	case w.Customer != nil:
		return Row{}, errors.New(`a customer's state ("customer") with a contact's keys`)
	case w.CustomerID == nil:
		return Row{}, errors.New(`neither "customer" (a customer's state) nor "customer_id" (a contact)`)
	default:
		return Row{}, errors.New(`a contact ("customer_id") with a customer state's keys`)
	}
}

// jsonError describes a decoding error by position or key, without the
// text of a value.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("column %d: invalid JSON", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Errorf("key %s: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return fmt.Errorf("want a JSON object, got JSON %s", te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unknown key %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case err.Error() == "EOF" || err.Error() == "unexpected EOF":
		return errors.New("incomplete JSON")
	}
	return errors.New("invalid JSON")
}

// contactRow is one contact row as text, from CSV columns or JSON keys.
type contactRow struct {
	Customer, Action, Group, Channel, Outcome, At, ID string
}

// contact parses and checks the row's values; value, if not nil, is the
// contact's value.
func (k *contactRow) contact(value *float64) (state.Contact, error) {
	c := state.Contact{Customer: k.Customer, Action: k.Action, Group: k.Group, Channel: k.Channel, ID: k.ID}
	if c.Customer == "" {
		return c, errors.New("customer_id: empty")
	}
	if c.Action == "" {
		return c, errors.New("action: empty")
	}
	o, err := state.ParseOutcome(k.Outcome)
	if err != nil {
		return c, errors.New("outcome: want impression, click, accept, reject, convert or dismiss")
	}
	c.Outcome = o
	if c.At, err = parseTime(k.At); err != nil {
		return c, fmt.Errorf("at: %w", err)
	}
	if value != nil {
		if math.IsNaN(*value) || math.IsInf(*value, 0) {
			return c, errors.New("value: not a finite number")
		}
		c.Value = *value
	}
	return c, nil
}

// parseValue parses a CSV value column; empty is 0.
func parseValue(s string) (*float64, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, errors.New("value: not a number")
	}
	return &v, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("not an RFC 3339 time")
	}
	if t.Year() < 1970 || t.Year() > 2200 {
		return time.Time{}, errors.New("time out of range [1970, 2200]")
	}
	return t.UTC(), nil
}

// customer converts a decoded customer line.
func (w *wireLine) customer() (*state.CustomerDump, error) {
	c := &state.CustomerDump{ID: *w.Customer}
	if c.ID == "" {
		return nil, errors.New("customer: empty")
	}
	for i, k := range w.Contacts {
		ck := contactRow{Customer: c.ID, Action: k.Action, Group: k.Group, Channel: k.Channel, Outcome: k.Outcome, At: k.At}
		v := k.Value
		x, err := ck.contact(&v)
		if err != nil {
			return nil, fmt.Errorf("contacts[%d].%w", i, err)
		}
		x.Customer = ""
		c.Contacts = append(c.Contacts, x)
	}
	for i, f := range w.Fields {
		fv, err := f.value()
		if err != nil {
			return nil, fmt.Errorf("fields[%d].%w", i, err)
		}
		c.Fields = append(c.Fields, fv)
	}
	for i, j := range w.Journeys {
		js := state.JourneyState{Journey: j.Journey, Step: j.Step}
		var err error
		switch {
		case j.Journey == "":
			err = errors.New("journey: empty")
		case j.Step < 0:
			err = errors.New("step: negative")
		}
		if err == nil {
			if js.Status, err = state.ParseJourneyStatus(j.Status); err != nil {
				err = errors.New("status: want active, completed or exited")
			}
		}
		if err == nil {
			if js.EnteredAt, err = parseTime(j.EnteredAt); err != nil {
				err = fmt.Errorf("entered_at: %w", err)
			}
		}
		if err == nil {
			if js.StepAt, err = parseTime(j.StepAt); err != nil {
				err = fmt.Errorf("step_at: %w", err)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("journeys[%d].%w", i, err)
		}
		c.Journeys = append(c.Journeys, js)
	}
	for i, k := range w.IDs {
		if k.ID == "" {
			return nil, fmt.Errorf("ids[%d].id: empty", i)
		}
		c.IDs = append(c.IDs, state.RememberedID(k))
	}
	for i, k := range w.Counters {
		ct := state.Counter{Key: k.Key, Seen: k.Seen, Recent: nilIfEmpty(k.Recent), HourTop: k.HourTop, Hours: nilIfEmpty(k.Hours),
			DayTop: k.DayTop, Days: nilIfEmpty(k.Days)}
		var err error
		if ct.Kind, err = parseKind(k.Kind); err != nil {
			return nil, fmt.Errorf("counters[%d].kind: want action, group or channel", i)
		}
		if ct.Outcome, err = state.ParseOutcome(k.Outcome); err != nil {
			return nil, fmt.Errorf("counters[%d].outcome: want impression, click, accept, reject, convert or dismiss", i)
		}
		c.Counters = append(c.Counters, ct)
	}
	for i, p := range w.Consent {
		cs := state.ConsentStatus{Channel: p.Channel, Purpose: p.Purpose}
		for j, x := range p.Trail {
			g, err := state.ParseConsentStatus(x.Status)
			if err != nil {
				return nil, fmt.Errorf("consent[%d].trail[%d].status: want granted or denied", i, j)
			}
			at, err := parseTime(x.At)
			if err != nil {
				return nil, fmt.Errorf("consent[%d].trail[%d].at: %w", i, j, err)
			}
			cs.Trail = append(cs.Trail, state.ConsentChange{Granted: g, At: at, Source: x.Source})
		}
		c.Consent = append(c.Consent, cs)
	}
	for i, x := range w.Identifiers {
		id := state.Identifier{NS: x.NS, Value: x.Value, Source: x.Source}
		var err error
		switch {
		case x.NS == "":
			err = errors.New("ns: empty")
		case x.Value == "":
			err = errors.New("value: empty")
		}
		if err == nil {
			if id.First, err = parseTime(x.First); err != nil {
				err = fmt.Errorf("first: %w", err)
			}
		}
		if err == nil {
			if id.Last, err = parseTime(x.Last); err != nil {
				err = fmt.Errorf("last: %w", err)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("identifiers[%d].%w", i, err)
		}
		c.Identifiers = append(c.Identifiers, id)
	}
	c.MergedInto, c.Receipt = w.MergedInto, w.Receipt
	for _, g := range w.Expired {
		c.Expired = append(c.Expired, state.ExpiredIdentifier(g))
	}
	for i, r := range w.Reservations {
		x, err := r.reservation()
		if err != nil {
			return nil, fmt.Errorf("reservations[%d].%w", i, err)
		}
		c.Reservations = append(c.Reservations, x)
	}
	var err error
	if w.Saved != nil {
		if c.Saved, err = w.Saved.nested(); err != nil {
			return nil, fmt.Errorf("saved.%w", err)
		}
	}
	for i, m := range w.Merges {
		md := state.MergeDump{Receipt: m.Receipt, From: m.From, Full: m.Full}
		if m.Before != nil {
			if md.Before, err = m.Before.nested(); err != nil {
				return nil, fmt.Errorf("merges[%d].before.%w", i, err)
			}
		}
		for _, l := range m.Since {
			md.Since = append(md.Since, state.LoggedWrite{AsOf: l.AsOf, Record: l.Record})
		}
		c.Merges = append(c.Merges, md)
	}
	return c, nil
}

// nested decodes a customer's state nested in another's (a saved state):
// a customer's keys only.
func (w *wireLine) nested() (*state.CustomerDump, error) {
	if w.Customer == nil || w.CustomerID != nil || w.Action != nil || w.Outcome != nil || w.At != nil || w.Value != nil ||
		w.Group != "" || w.Channel != "" || w.ID != "" {
		return nil, errors.New(`customer: want a customer's state ("customer") only`)
	}
	return w.customer()
}

// reservation converts one reservation of a customer line; the store
// checks the rest (state.Model.Restored).
func (r *wireReservation) reservation() (state.Reservation, error) {
	x := state.Reservation{Decision: r.Decision, Action: r.Action, Group: r.Group, Channel: r.Channel}
	var err error
	switch {
	case r.Decision == "":
		return x, errors.New("decision: empty")
	case r.Action == "":
		return x, errors.New("action: empty")
	}
	if x.At, err = parseTime(r.At); err != nil {
		return x, fmt.Errorf("at: %w", err)
	}
	if x.Expires, err = parseTime(r.Expires); err != nil {
		return x, fmt.Errorf("expires: %w", err)
	}
	for i, k := range r.Caps {
		c := state.ExactCap{Key: k.Key, Max: k.Max}
		if c.Kind, err = parseKind(k.Kind); err != nil {
			return x, fmt.Errorf("caps[%d].kind: want action, group or channel", i)
		}
		if c.Window, err = time.ParseDuration(k.Window); err != nil || c.Window <= 0 {
			return x, fmt.Errorf("caps[%d].window: want a positive duration (24h)", i)
		}
		x.Caps = append(x.Caps, c)
	}
	return x, nil
}

func parseKind(s string) (state.Kind, error) {
	for k := state.KindAction; k <= state.KindChannel; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, errors.New("unknown kind")
}

func parseFieldType(s string) (state.FieldType, bool) {
	for t := state.TypeNumber; t <= state.TypeCategory; t++ {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

// value converts one field of a customer line.
func (f *wireField) value() (state.FieldValue, error) {
	fv := state.FieldValue{Field: f.Field}
	if f.Field == "" {
		return fv, errors.New("field: empty")
	}
	t, ok := parseFieldType(f.Type)
	if !ok {
		return fv, errors.New("type: want number, time, bool or category")
	}
	fv.Type = t
	var err error
	if fv.At, err = parseTime(f.At); err != nil {
		return fv, fmt.Errorf("at: %w", err)
	}
	bad := func(want string) (state.FieldValue, error) { return fv, fmt.Errorf("value: want %s", want) }
	switch t {
	case state.TypeNumber:
		if json.Unmarshal(f.Value, &fv.Num) != nil || len(f.Value) == 0 || f.Value[0] == 'n' {
			return bad("a number")
		}
	case state.TypeBool:
		var b bool
		if json.Unmarshal(f.Value, &b) != nil || len(f.Value) == 0 || f.Value[0] == 'n' {
			return bad("true or false")
		}
		if b {
			fv.Num = 1
		}
	case state.TypeCategory:
		if json.Unmarshal(f.Value, &fv.Str) != nil || len(f.Value) == 0 || f.Value[0] == 'n' {
			return bad("a string")
		}
	case state.TypeTime:
		var s string
		if json.Unmarshal(f.Value, &s) != nil || len(f.Value) == 0 || f.Value[0] == 'n' {
			return bad("an RFC 3339 time")
		}
		tv, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || tv.Year() < 1678 || tv.Year() > 2261 {
			return bad("an RFC 3339 time in [1678, 2261]")
		}
		fv.Time = tv.UTC()
	}
	return fv, nil
}

// nilIfEmpty returns nil for an empty list, as encoding leaves it out.
func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
