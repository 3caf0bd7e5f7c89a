package state

import (
	"encoding/binary"
	"fmt"
	"sync"
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

// Eraser is the erasure half of a backend: it removes a customer's state
// and keeps its tombstone. Safe for concurrent use.
type Eraser interface {
	// Erase removes the customer's state and, when t.Pseudonym is not
	// empty, keeps the tombstone until t.Until; it reports what was
	// removed. It is durable when it returns.
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

// tombstones is the embedded store's set: pseudonym → until (unix ns).
type tombstones struct {
	mu sync.RWMutex
	m  map[string]int64
}

func (t *tombstones) add(p string, until int64) {
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]int64{}
	}
	if until > t.m[p] {
		t.m[p] = until
	}
	t.mu.Unlock()
}

// Erase removes the customer's state durably (a log record, then a
// checkpoint so that the log segments naming the customer are dropped)
// and keeps the tombstone. The raw id is in the log until that checkpoint
// completes; a failed checkpoint is counted (Stats.CheckpointErrors) and
// the next one drops them.
func (s *Store) Erase(customer string, t Tombstone) (Erased, error) {
	if err := s.checkString("customer", customer, true); err != nil {
		return Erased{}, invalidf("cannot erase customer: %w", err)
	}
	if err := s.checkString("pseudonym", t.Pseudonym, false); err != nil {
		return Erased{}, invalidf("cannot erase customer: %w", err)
	}
	if t.Pseudonym != "" {
		s.tomb.mu.RLock()
		n := len(s.tomb.m)
		s.tomb.mu.RUnlock()
		if n >= MaxTombstones {
			return Erased{}, unavailable(fmt.Errorf("cannot erase customer: %d tombstones, the limit", n))
		}
	}
	st := &s.stripes[s.stripeOf(customer)]
	unlock := s.lockWriters([]int{s.stripeOf(customer)})
	st.mu.RLock()
	e := st.m[customer]
	st.mu.RUnlock()
	var old *custState
	if e != nil {
		old = e.p.Load()
	}
	r := record{typ: recErase, customer: customer, id: t.Pseudonym, at: t.Until.UnixNano(), lsn: s.lsn.Add(1)}
	if err := s.log.Append(appendRecord(nil, &r)); err != nil {
		unlock()
		return Erased{}, fmt.Errorf("cannot erase customer: %w", s.logError(err))
	}
	if old != nil {
		s.forget(st, customer, ^uint64(0))
	}
	if t.Pseudonym != "" {
		s.tomb.add(t.Pseudonym, r.at)
	}
	unlock()
	s.Checkpoint() // counted on failure; see above
	return ErasedOf(old), nil
}

// Tombstoned reports whether the pseudonym's tombstone lasts at now.
func (s *Store) Tombstoned(pseudonym string, now time.Time) (bool, error) {
	s.tomb.mu.RLock()
	until, ok := s.tomb.m[pseudonym]
	s.tomb.mu.RUnlock()
	return ok && until > now.UnixNano(), nil
}

// Tombstones lists the tombstones that last at now.
func (s *Store) Tombstones(now time.Time) ([]Tombstone, error) {
	s.tomb.mu.RLock()
	defer s.tomb.mu.RUnlock()
	var ts []Tombstone
	for p, u := range s.tomb.m {
		if u > now.UnixNano() {
			ts = append(ts, Tombstone{Pseudonym: p, Until: time.Unix(0, u).UTC()})
		}
	}
	return ts, nil
}

// replayErase applies an erase record read from the log.
func (s *Store) replayErase(r *record) bool {
	s.forget(&s.stripes[s.stripeOf(r.customer)], r.customer, r.lsn)
	if r.id != "" {
		s.tomb.add(r.id, r.at)
	}
	return true
}

// appendTombstones appends the tombstones lasting now to a checkpoint;
// expired ones are dropped from memory.
func (s *Store) appendTombstones(b []byte) []byte {
	now := time.Now().UnixNano()
	s.tomb.mu.Lock()
	defer s.tomb.mu.Unlock()
	for p, u := range s.tomb.m {
		if u <= now {
			delete(s.tomb.m, p)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s.tomb.m)))
	for p, u := range s.tomb.m {
		b = appendString(b, p)
		b = binary.AppendVarint(b, u)
	}
	return b
}

// loadTombstones reads a checkpoint's tombstones.
func (s *Store) loadTombstones(d *rd) {
	n := d.count(MaxTombstones, "tombstones")
	for i := 0; i < n && d.err == nil; i++ {
		p, u := d.str(), d.varint()
		if d.err == nil && p == "" {
			d.fail("empty pseudonym")
		}
		if d.err == nil {
			s.tomb.add(p, u)
		}
	}
}

func appendEraseRecord(b []byte, r *record) []byte { return appendString(b, r.id) }

func decodeEraseRecord(d *dec, r *record) {
	r.id = d.str()
	if d.err == nil && r.customer == "" {
		d.fail("erase record without customer")
	}
}
