package state

import (
	"fmt"
	"time"
)

// Outcome is what a customer did with a shown action.
type Outcome uint8

// Outcomes of a contact.
const (
	Impression Outcome = iota
	Click
	Accept
	Reject
	Convert
	Dismiss
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"impression", "click", "accept", "reject", "convert", "dismiss"}

// String returns the outcome's lower-case name.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// ParseOutcome parses a lower-case outcome name.
func ParseOutcome(s string) (Outcome, error) {
	for i, n := range outcomeNames {
		if n == s {
			return Outcome(i), nil
		}
	}
	return 0, fmt.Errorf("unknown outcome %q", s)
}

// Kind selects which key of a contact an aggregate counts by.
type Kind uint8

// Kinds of contact aggregates.
const (
	KindAction  Kind = iota // the action's id
	KindGroup               // the action's group, as given in the contact
	KindChannel             // the channel
	numKinds
)

var kindNames = [numKinds]string{"action", "group", "channel"}

// String returns the kind's lower-case name.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// JourneyStatus is where a customer stands in a journey.
type JourneyStatus uint8

// Journey statuses. The zero value of JourneyUpdate.Status means Active.
const (
	JourneyActive JourneyStatus = iota + 1
	JourneyCompleted
	JourneyExited
)

var journeyNames = [...]string{"", "active", "completed", "exited"}

// String returns the status's lower-case name.
func (s JourneyStatus) String() string {
	if int(s) < len(journeyNames) && s != 0 {
		return journeyNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseJourneyStatus parses a lower-case journey status name.
func ParseJourneyStatus(s string) (JourneyStatus, error) {
	for i, n := range journeyNames[1:] {
		if n == s {
			return JourneyStatus(i + 1), nil
		}
	}
	return 0, fmt.Errorf("unknown journey status %q", s)
}

// Contact records that an action was shown to a customer on a channel and
// what came of it. Group is the action's group in the caller's catalog (the
// store does not know the catalog); empty means none.
type Contact struct {
	Customer string
	Action   string
	Group    string
	Channel  string
	Outcome  Outcome
	Value    float64 // optional, e.g. the order value of a conversion
	At       time.Time
	// ID, when not empty, is the caller's idempotency key: a contact whose
	// ID the store still remembers for the customer is acknowledged and not
	// recorded again (Stats.Duplicates). See Config.MaxIDsPerCustomer for
	// how many are remembered. Contact and event ids are separate.
	ID string
	// Decision, on an impression, is the id of the decision that gave the
	// action: the impression turns the decision's reservation of the
	// action (Reservation) into this contact. Empty: none.
	Decision string
	// Via, when not empty, is the key of the identifier that named the
	// customer (identity stitching: Identities.Via), the write's
	// provenance: an unmerge gives the write to the side that identifier
	// belongs to, and the identifier counts as used at the write's time
	// (its namespace's ttl). Empty: the customer id itself, which counts
	// as the profile's own.
	Via string
}

// Event is a customer event that changes profile fields through the
// configured Mappings. Attribute values may be float64, float32, any Go
// integer, string, bool or time.Time.
type Event struct {
	Customer string
	Type     string
	At       time.Time
	Attrs    map[string]any
	// ID, when not empty, is the caller's idempotency key: an event whose
	// ID the store still remembers for the customer is acknowledged and
	// applied neither to the overlay nor to the journeys again
	// (Stats.Duplicates). See Config.MaxIDsPerCustomer.
	ID string
	// Journeys are the journey moves the event causes (entries, exits),
	// made at At in the same log record as the overlay changes: after a
	// crash either all of the event is applied or none of it.
	Journeys []JourneyMove
	// JourneysFrom, when set, computes more journey moves from the
	// customer's journeys as they stand when the event is applied: the
	// read and the write are one atomic step per customer, so two events
	// of one customer cannot both enter a journey. Its moves follow
	// Journeys in the record. It must be a pure function of its argument
	// (a shared backend may call it again when it retries after a
	// conflict) and must not keep the slice.
	JourneysFrom func(cur []JourneyState) []JourneyMove
	// Via is the write's provenance, as Contact.Via.
	Via string
}

// JourneyMove moves the customer of an Event to a step of a journey, as
// JourneyUpdate does.
type JourneyMove struct {
	Journey string
	Step    int
	Status  JourneyStatus // zero means JourneyActive
}

// JourneyUpdate moves a customer to a step of a journey.
type JourneyUpdate struct {
	Customer string
	Journey  string
	Step     int
	Status   JourneyStatus // zero means JourneyActive
	At       time.Time
	// Conditional makes the move a conditional write: it is made only if
	// the customer's state in the journey is still FromStep and
	// FromStatus (FromStatus 0: never in the journey); otherwise
	// SetJourney fails with ErrConflict and records none of its moves.
	// Decisions deliver journey steps so: of two decisions made from the
	// same state, one delivers step k and the other's write conflicts.
	Conditional bool
	FromStep    int
	FromStatus  JourneyStatus
	// Via is the write's provenance, as Contact.Via.
	Via string
}

// JourneyState is a customer's position in one journey.
type JourneyState struct {
	Journey   string
	Step      int
	Status    JourneyStatus
	EnteredAt time.Time // when the customer (re-)entered the journey
	StepAt    time.Time // when the customer reached the current step
}
