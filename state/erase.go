package state

import (
	"fmt"
	"time"
)

// Tombstone marks an erased customer by pseudonym: a keyed hash of its id
// (the caller computes it; the state never sees the key), never the id
// itself. While it lasts, writers refuse changes for the customer, so a
// late event or a replay cannot bring it back.
type Tombstone struct {
	Pseudonym string
	Until     time.Time
}

// Erased is what an erasure removed from a customer's state.
type Erased struct {
	Found    bool `json:"found"`    // the customer had live state
	Contacts int  `json:"contacts"` // contact history entries
	Counters int  `json:"counters"` // cap-window aggregates
	Fields   int  `json:"fields"`   // overlay field values
	Journeys int  `json:"journeys"` // journey positions
	Consents int  `json:"consents"` // channel × purpose consent statuses (with their trails)
	IDs      int  `json:"ids"`      // idempotency keys remembered
}

// ErasedOf counts what c holds (nil: nothing), for Erased.
func ErasedOf(c *Customer) Erased {
	if c == nil {
		return Erased{}
	}
	e := Erased{Found: true, Contacts: c.histN, Counters: len(c.aggs), Journeys: len(c.journeys), Consents: len(c.consent), IDs: len(c.ids)}
	for _, v := range c.overlay {
		if v.at != 0 {
			e.Fields++
		}
	}
	return e
}

// ErasedStubTTL is how long a store refuses every write of a customer
// after erasing it (ErrErased), in place of its state: the stub holds no
// data, only that the customer was erased. It covers the writes decided
// before the erasure (they passed the caller's tombstone check) and
// applied after it, which would otherwise bring the customer back; a
// write decided later is refused by the caller's tombstone check. It is
// far above any write's timeout.
const ErasedStubTTL = time.Minute

// ErasedErrorf is the ErrErased error of a write of customer.
func ErasedErrorf(customer string) error {
	return &Error{Kind: ErrErased, Err: fmt.Errorf("cannot write customer state: customer %q was erased", customer)}
}

// Eraser is the erasure half of a backend: it removes a customer's state
// and keeps its tombstone. Safe for concurrent use.
type Eraser interface {
	// Erase removes the customer's state and, when t.Pseudonym is not
	// empty, keeps the tombstone until t.Until; it reports what was
	// removed. It is durable when it returns. Atomically with the
	// removal, it leaves the customer's erased stub: for ErasedStubTTL
	// every write of the customer fails with ErrErased, whether or not
	// it was decided before the erasure.
	Erase(customer string, t Tombstone) (Erased, error)
	// Tombstoned reports whether a tombstone for the pseudonym lasts at
	// now, reading the backend (not a cache).
	Tombstoned(pseudonym string, now time.Time) (bool, error)
	// Tombstones lists the tombstones that last at now.
	Tombstones(now time.Time) ([]Tombstone, error)
}

// MaxTombstones bounds the tombstones the embedded store keeps; past it
// Erase still removes the state but fails to keep the tombstone
// (ErrUnavailable, nothing else changed). Expired ones are dropped at
// each checkpoint.
const MaxTombstones = 1 << 20

func appendEraseRecord(b []byte, r *record) []byte { return appendString(b, r.id) }

func decodeEraseRecord(d *dec, r *record) {
	r.id = d.str()
	if d.err == nil && r.customer == "" {
		d.fail("erase record without customer")
	}
}
