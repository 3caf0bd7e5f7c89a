package state

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// custState is one customer's immutable state snapshot.
type custState struct {
	id       string
	lsn      uint64    // the last record applied
	overlay  []value   // by Slot; nil when no field was ever set
	aggs     []aggRef  // inline headers: Count scans them without dereferencing
	hist     *histNode // newest first
	histN    int       // visible entries (≤ MaxEventsPerCustomer)
	histLen  int       // nodes in the chain; rebuilt at 2×MaxEventsPerCustomer
	journeys []JourneyState
	ids      []idKey       // idempotency keys applied, oldest first (≤ MaxIDsPerCustomer)
	res      []reservation // reservations of exact caps, oldest first (reserve.go)
	consent  []consentPair // consent.go: by channel and purpose, with the audit trail
	ident    *identPart    // identifiers and merge marks (identity_model.go); nil: never linked
}

// idKind is the namespace of an idempotency key.
type idKind uint8

const (
	idContact idKind = 1
	idEvent   idKind = 2
	idConsent idKind = 3
)

// idKey is one remembered idempotency key.
type idKey struct {
	kind idKind
	id   string
}

// seen reports whether cs remembers the key.
func (cs *custState) seen(k idKind, id string) bool {
	for i := len(cs.ids) - 1; i >= 0; i-- { // newest first: a retry is usually recent
		if cs.ids[i].id == id && cs.ids[i].kind == k {
			return true
		}
	}
	return false
}

// aggRef is an aggregate's key, inline in custState.aggs, and the aggregate.
type aggRef struct {
	kind    Kind
	outcome Outcome
	last    int64 // the aggregate's latest event time, for eviction
	key     string
	a       *agg
}

type histNode struct {
	c    Contact // Customer is left empty
	next *histNode
}

// value is one overlay field value.
type value struct {
	num  float64 // number; bool as 0 or 1
	unix int64   // time, unix nanoseconds
	str  string  // category
	at   int64   // time of the event that last changed it (unix ns); 0 = unset
}

// Slot resolves an overlay field by name.
func (m *Model) Slot(field string) (Slot, FieldType, bool) {
	sl, ok := m.m.slots[field]
	if !ok {
		return 0, 0, false
	}
	return sl, m.m.fields[sl].Type, true
}

// Fields lists the overlay fields in slot order.
func (m *Model) Fields() []FieldInfo { return slices.Clone(m.m.fields) }

// MaxWindow is the longest cap window counted; the engine should reject
// contact policies with longer windows when it compiles them.
func (m *Model) MaxWindow() time.Duration { return time.Duration(m.days-1) * time.Duration(dayNanos) }

func (m *Model) checkString(what, v string, required bool) error {
	if v == "" && required {
		return fmt.Errorf("%s is empty", what)
	}
	if len(v) > m.maxString {
		return fmt.Errorf("%s of %d bytes exceeds the limit of %d", what, len(v), m.maxString)
	}
	return nil
}

func checkTime(t time.Time) error {
	// Year first: UnixNano is undefined before 1678 (year 1000 wraps).
	if t.Year() < 1970 || t.UnixNano() <= 0 || t.Year() > 2200 {
		return fmt.Errorf("time %v is out of range", t)
	}
	return nil
}

// checkMove validates one journey move.
func (m *Model) checkMove(journey string, step int, status JourneyStatus) error {
	err := m.checkString("journey", journey, true)
	if err == nil && (step < 0 || step > maxDecodedStep) {
		err = fmt.Errorf("step %d is out of range", step)
	}
	if err == nil && status > JourneyExited {
		err = fmt.Errorf("unknown journey status %d", status)
	}
	return err
}

// interner deduplicates strings, up to max of them.
type interner struct {
	mu  sync.Mutex
	m   map[string]string
	max int
}

func (in *interner) get(s string, full *atomic.Uint64) string {
	if s == "" {
		return ""
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.m[s]; ok {
		return v
	}
	// Cloned: the caller's string may share memory with a buffer.
	s = strings.Clone(s)
	if len(in.m) >= in.max {
		full.Add(1)
		return s
	}
	if in.m == nil {
		in.m = map[string]string{}
	}
	in.m[s] = s
	return s
}
