package nba

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// Kind is the type of a profile or context field.
type Kind uint8

const (
	// KindNumber is a float64; NaN means missing.
	KindNumber Kind = iota + 1
	// KindCategory is a string compared by equality; "" means missing. Its
	// numeric slot holds the category code, which is what models see.
	KindCategory
	// KindTime is a point in time held as unix seconds; NaN means missing.
	KindTime
	// KindBool is 1 or 0; NaN (missing) reads as false in rules.
	KindBool
)

var kindNames = [...]string{KindNumber: "number", KindCategory: "category", KindTime: "time", KindBool: "bool"}

// String returns the name the catalog uses for the kind.
func (k Kind) String() string { return enumName(kindNames[:], uint8(k), "kind") }

// ParseKind reads a kind name: number, category (or string), time, bool.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "number", "float", "int":
		return KindNumber, nil
	case "category", "string":
		return KindCategory, nil
	case "time", "date":
		return KindTime, nil
	case "bool", "boolean":
		return KindBool, nil
	}
	return 0, fmt.Errorf("unknown kind %q (want number, category, time or bool)", s)
}

// Field is one named, typed field of a profile or of a request context.
type Field struct {
	Name string
	Kind Kind
}

// Schema lists the profile fields a catalog compiles against, in slot order:
// field i is read from Profile.Num[i] and Profile.Str[i]. The caller builds it
// from the snapshot's columns plus the overlay fields declared in the bundle.
type Schema struct {
	Fields []Field
}

// Profile is one customer's field values, one slot per schema field. Number,
// time (unix seconds), bool (1/0) and category (code) values go in Num, NaN
// when missing; category values also go in Str, "" when missing. The engine
// only reads a Profile, and only during the Decide call that filled it.
type Profile struct {
	Num []float64
	Str []string
}

// reset sizes p for n fields, all missing.
func (p *Profile) reset(n int) {
	if cap(p.Num) < n {
		p.Num = make([]float64, n)
		p.Str = make([]string, n)
	}
	p.Num, p.Str = p.Num[:n], p.Str[:n]
	nan := math.NaN()
	for i := range p.Num {
		p.Num[i] = nan
		p.Str[i] = ""
	}
}

// Profiles gives the engine one customer's profile. The integration adapts
// the feature snapshot and the live overlay to it. Implementations must be
// safe for concurrent use and should not allocate.
type Profiles interface {
	// Profile fills p (sized to the schema, all fields missing) with the
	// customer's values and reports whether the customer is known.
	Profile(customer string, p *Profile) bool
	// Version names the data the profiles come from (e.g. the snapshot id).
	Version() string
}

// Scope is what a contact-history count is keyed by.
type Scope uint8

const (
	// ScopeAction counts contacts of one action, across channels.
	ScopeAction Scope = iota + 1
	// ScopeGroup counts contacts of any action of a group (at any depth),
	// across channels.
	ScopeGroup
	// ScopeChannel counts contacts on a channel, across actions.
	ScopeChannel
)

var scopeNames = [...]string{ScopeAction: "action", ScopeGroup: "group", ScopeChannel: "channel"}

// String returns the name the catalog uses for the scope.
func (s Scope) String() string { return enumName(scopeNames[:], uint8(s), "scope") }

// Outcome is the kind of a recorded contact.
type Outcome uint8

const (
	// Impression: the action was shown.
	Impression Outcome = iota + 1
	// Click: the customer clicked or opened it.
	Click
	// Accept: the customer took the offer (converted).
	Accept
	// Reject: the customer dismissed or declined it.
	Reject
)

var outcomeNames = [...]string{Impression: "impression", Click: "click", Accept: "accept", Reject: "reject"}

// String returns the name the catalog uses for the outcome.
func (o Outcome) String() string { return enumName(outcomeNames[:], uint8(o), "outcome") }

func parseOutcome(s string) (Outcome, error) {
	switch strings.TrimSuffix(strings.ToLower(s), "s") {
	case "impression":
		return Impression, nil
	case "click":
		return Click, nil
	case "accept":
		return Accept, nil
	case "reject":
		return Reject, nil
	}
	return 0, fmt.Errorf("unknown outcome %q (want impression, click, accept or reject)", s)
}

// History counts a customer's recorded contacts. The integration adapts the
// contact-history store to it. Implementations must be safe for concurrent
// use and should not allocate.
type History interface {
	// Any reports whether the customer has any contact recorded at all; when
	// false the engine treats every count as 0 without asking Count.
	Any(customer string) bool
	// Count returns the number of contacts with the outcome in (now-window,
	// now] for the key (action id, group id or channel name) of the scope.
	Count(customer string, scope Scope, key string, outcome Outcome, window time.Duration, now time.Time) int
}

// ContactLister is implemented by a History that can also list a
// customer's contacts. Suppressions ("pause P after N impressions without a
// click within W") depend on the order of the contacts, not only on their
// counts: with a ContactLister they are decided exactly (see the catalog
// reference); with a History that lacks it, from counts over within+pause,
// which can pause longer than configured.
type ContactLister interface {
	// Contacts appends to dst the customer's recorded contacts for the key
	// (action id, group id or channel name) of the scope, in any order,
	// and returns it. It should not allocate when dst has room.
	Contacts(customer string, scope Scope, key string, dst []ContactAt) []ContactAt
}

// ContactAt is one recorded contact as a ContactLister lists it.
type ContactAt struct {
	At      int64   // unix nanoseconds
	Outcome Outcome // 0 for an outcome the engine has no name for
}

// JourneyStatus is where a customer stands in a journey.
type JourneyStatus uint8

const (
	// JourneyActive: in the journey; Step is the next step to deliver.
	JourneyActive JourneyStatus = iota + 1
	// JourneyCompleted: every step was delivered.
	JourneyCompleted
	// JourneyExited: left by an exit event, an exit rule or a timeout.
	JourneyExited
)

var journeyStatusNames = [...]string{JourneyActive: "active", JourneyCompleted: "completed", JourneyExited: "exited"}

// String names the status.
func (s JourneyStatus) String() string { return enumName(journeyStatusNames[:], uint8(s), "status") }

// JourneyState is one customer's position in one journey.
type JourneyState struct {
	Journey    string // journey id
	Step       int    // index of the next step to deliver
	Status     JourneyStatus
	EnteredAt  time.Time
	LastStepAt time.Time // when the previous step was delivered; zero before the first
}

// JourneyUpdate is a journey state change the caller must persist for the
// customer of the decision or event (never on dry_run). Reason says why:
// "enter", "step", "complete", "exit".
type JourneyUpdate struct {
	JourneyState
	Reason string
	// FromStep and FromStatus are the customer's state in the journey the
	// change was decided from (FromStatus 0: not in it). A store writes
	// the change only if the customer is still there, so that of two
	// decisions made from the same state (on two replicas) only one
	// delivers the step.
	FromStep   int
	FromStatus JourneyStatus
}

// Journeys reads a customer's journey states. The integration adapts the
// journey store to it. Implementations must be safe for concurrent use and
// should not allocate when dst has room.
type Journeys interface {
	// Journeys appends the customer's journey states to dst and returns it.
	Journeys(customer string, dst []JourneyState) []JourneyState
}

// Customer is one customer's state as one decision reads it: filled once
// per decision by Customers.Load into a value the engine reuses, so that a
// decision makes one read of the customer's state, not one per count. The
// engine only reads it, and only during the decision that filled it.
type Customer struct {
	// Profile holds the customer's field values. Before Load the engine
	// sizes it to the schema with every field missing.
	Profile Profile
	// History answers the customer's contact history; nil reads as no
	// contacts and no contact lists (suppressions decided from counts).
	History CustomerHistory
	// Journeys are the customer's journey states. Before Load the engine
	// truncates it to zero length; Load appends.
	Journeys []JourneyState
	// Consent is the customer's consent per channel and purpose, the
	// change in force of each pair with one (the rest take the catalog's
	// defaults). Before Load the engine truncates it; Load appends.
	Consent []ConsentStatus
	// Scratch belongs to the Customers implementation: memory it keeps
	// with this value between loads (e.g. the view History points into),
	// so that a warm load allocates nothing. The engine never reads it.
	Scratch any

	split splitHistory // History of a Customers made by SplitCustomers
}

// CustomerHistory is one loaded customer's contact history.
type CustomerHistory interface {
	// Count returns the number of contacts with the outcome in
	// (now-window, now] for the key (action id, group id or channel name)
	// of the scope.
	Count(scope Scope, key string, outcome Outcome, window time.Duration, now time.Time) int
	// Contacts appends to dst the contacts recorded for the key of the
	// scope, in any order, and returns it with true; it returns dst and
	// false when the history cannot list contacts (suppressions are then
	// decided from counts, see ContactLister). It should not allocate when
	// dst has room.
	Contacts(scope Scope, key string, dst []ContactAt) ([]ContactAt, bool)
}

// Customers loads customers for the engine: one Load per decision. It is
// the engine's one read of customer state, and the seam where a state
// backend (an embedded log, a shared store) plugs in. Implementations must
// be safe for concurrent use and should not allocate when dst is warm.
type Customers interface {
	// Load fills dst (prepared by the engine, see Customer) with the
	// customer's state and reports whether the customer is known (has a
	// profile). An error means the live state could not be read (e.g. the
	// state store does not answer): dst.Profile then holds what could be
	// read without it (the feature snapshot), and the engine decides from
	// that alone, with no contacts and no journeys, and marks the decision
	// Stale. An outage is never read as "no contacts" silently. An error
	// with known true means dst holds a last-good copy of the live state
	// (a shared store's, from before the outage): the engine counts caps
	// from its contacts, ignores its journeys and marks the decision Stale.
	// An error without such a copy (dst.History nil) leaves the customer's
	// consent changes unknown: purposes with stale: deny are denied.
	Load(ctx context.Context, customer string, dst *Customer) (known bool, err error)
	// Version names the data the profiles come from (e.g. the snapshot id).
	Version() string
}

// SplitCustomers adapts separate profile, history and journey readers to
// Customers, for sources where a lookup is free (in-memory tables, a
// decision log being replayed). h and j may be nil (no contacts, no
// journeys). A Load never fails. When h is a ContactLister, suppressions
// are decided from contact lists.
func SplitCustomers(p Profiles, h History, j Journeys) Customers {
	sc := &splitCustomers{p: p, h: h, j: j}
	sc.l, _ = h.(ContactLister)
	return sc
}

type splitCustomers struct {
	p Profiles
	h History
	l ContactLister
	j Journeys
}

func (sc *splitCustomers) Version() string { return sc.p.Version() }

func (sc *splitCustomers) Load(_ context.Context, customer string, dst *Customer) (bool, error) {
	known := sc.p.Profile(customer, &dst.Profile)
	dst.History = nil
	if sc.h != nil {
		dst.split = splitHistory{h: sc.h, l: sc.l, customer: customer, any: sc.h.Any(customer)}
		dst.History = &dst.split
	}
	if sc.j != nil {
		dst.Journeys = sc.j.Journeys(customer, dst.Journeys)
	}
	return known, nil
}

// splitHistory is one customer's view of a History (and ContactLister).
type splitHistory struct {
	h        History
	l        ContactLister
	customer string
	any      bool
}

func (s *splitHistory) Count(scope Scope, key string, outcome Outcome, window time.Duration, now time.Time) int {
	if !s.any {
		return 0 // History.Any promised every count is 0
	}
	return s.h.Count(s.customer, scope, key, outcome, window, now)
}

func (s *splitHistory) Contacts(scope Scope, key string, dst []ContactAt) ([]ContactAt, bool) {
	if s.l == nil {
		return dst, false
	}
	return s.l.Contacts(s.customer, scope, key, dst), true
}

// enumName returns the name of the enum value v from its type's table, or
// "kind(v)" for a value the table does not name, so that a corrupt value
// still prints. It does not allocate for a named value.
func enumName(names []string, v uint8, kind string) string {
	if int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", kind, v)
}
