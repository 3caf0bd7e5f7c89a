package state

import (
	"context"
	"time"
)

// Backend is the contract between the sidecar and a customer state store:
// the embedded log (package state/embedded, over package state/wal) and
// Redis (package state/redis). Every backend keeps the guarantees of the
// package documentation per customer: a write
// returns after it is durable as the backend defines it, is atomic per
// customer, remembers idempotency keys with the customer's state, and fails
// with an error of one kind (KindOf). A backend is safe for concurrent use.
//
// Reads go through View, filled from the customer model of this package,
// so that every backend answers reads with the same code. A new backend
// (cas_test.go has a minimal one, in memory):
//   - builds its Model with NewModel from the same Config as every other
//     process serving the bundle;
//   - turns each write into records (Model.ContactRecord, EventRecord,
//     JourneyRecord; an error is ErrInvalid and nothing is written), then
//     per customer: reads the customer's value (Model.DecodeCustomer),
//     applies the records in order (Model.Apply: duplicates, computed
//     journey moves, conditional moves, bounds), encodes the result
//     (Model.AppendCustomer) and writes it back only if the value did not
//     change meanwhile, else applies again on the newer value;
//   - answers Load and View with Model.View over the decoded value
//     (decoding allocates: cache decoded values per version);
//   - passes statetest.Run.
type Backend interface {
	Reader
	Writer
	ConsentWriter // consent.go
	Eraser        // erase.go
	// Load fills v with the customer's state as View does, within ctx,
	// and reports whether any exists. An error (of kind ErrUnavailable)
	// means the state could not be read (a shared store out of reach); a
	// decision then goes on without it and is marked stale; with found
	// true, v holds the last value the backend held for the customer (a
	// shared store's copy from before the outage) and the decision uses
	// it, marked stale. A backend whose reads cannot fail (the embedded
	// store) never returns one.
	Load(ctx context.Context, customer []byte, v *View) (found bool, err error)
	// RecordContactOnce and ApplyEventOnce write one contact or event and
	// report whether it was a duplicate (its id remembered: nothing
	// applied).
	RecordContactOnce(c Contact) (dup bool, err error)
	ApplyEventOnce(e Event) (dup bool, err error)
	// Reserve makes reservations of exact caps (Reservation) as one
	// atomic write per customer, checked against the stored state: one
	// refused because an exact cap is full fails with ErrConflict and,
	// for its customer, none is made.
	Reserve(rs ...Reservation) error
	// Fields lists the overlay fields the mappings define, by slot.
	Fields() []FieldInfo
	// MaxWindow is the longest contact-history window counted.
	MaxWindow() time.Duration
	// Compact says a feature snapshot with this as-of time is served: the
	// fields that reset on a snapshot, stamped at or before, are hidden.
	Compact(asOf time.Time) error
	// SetInSnapshot tells the backend which customers the served
	// snapshot holds (the bound on live-only customers spares them).
	SetInSnapshot(f func(customer string) bool)
	// Stats returns the backend's counters.
	Stats() Stats
	// Close flushes and releases the backend; writes after it fail.
	Close() error
}

// Porter is what moving state in and out of a backend needs (nba state
// export and import, contact-history import into a running sidecar):
// both backends implement it besides Backend.
type Porter interface {
	// Each calls fn with every customer's state (Model.Dump), in no
	// particular order, until fn fails; each customer is one consistent
	// snapshot.
	Each(fn func(*CustomerDump) error) error
	// Restore replaces customers' states (Model.Restored); all are checked
	// first and an ErrInvalid error restores none.
	Restore(cs ...CustomerDump) error
	// RecordContacts records contacts as RecordContact does and returns
	// how many were duplicates (their id remembered).
	RecordContacts(cs []Contact) (dups int, err error)
	// Checkpoint makes restored states durable.
	Checkpoint() error
	// Tombstones lists the tombstones of erased customers that last at
	// now (Eraser.Tombstones): keyed hashes, never ids.
	Tombstones(now time.Time) ([]Tombstone, error)
	// RestoreTombstones keeps each tombstone until its Until (a later one
	// already kept stays), so that a moved state still refuses an erased
	// customer's late events; durable after Checkpoint. An ErrInvalid
	// error keeps none.
	RestoreTombstones(ts ...Tombstone) error
}

// Reader is what the decision engine needs from customer state; every
// Backend implements it.
type Reader interface {
	// View fills v with the customer's state and reports whether any
	// exists. v is reusable; filling it does not allocate.
	View(customer []byte, v *View) bool
	// Slot resolves an overlay field name once, at compile time.
	Slot(field string) (Slot, FieldType, bool)
}

// Writer is what the feedback and event endpoints need. Each call returns
// after its changes are durable; an error is of a kind (ErrInvalid,
// ErrUnavailable, ErrConflict: see KindOf) and means nothing was applied.
type Writer interface {
	RecordContact(cs ...Contact) error
	ApplyEvent(es ...Event) error
	SetJourney(us ...JourneyUpdate) error
	// Err returns an ErrUnavailable error while writes cannot succeed (a
	// log that cannot be written, a shared store out of reach), else nil;
	// readiness checks call it, so it must be cheap.
	Err() error
}
