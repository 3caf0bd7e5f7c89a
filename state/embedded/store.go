// Package state holds live customer state: a profile overlay changed by
// events through declarative mappings, contact history with cap-window
// aggregates, and journey positions. Every change is made durable through a
// write-ahead log (package wal) before the write call returns, and
// checkpoints keep start-up fast.
//
// Guarantees:
//   - A write (RecordContact, ApplyEvent, SetJourney, Compact) returns only
//     after its log record is fsynced; it becomes visible to readers only
//     after that, so a failed write is never seen. The next View after a
//     successful write sees it.
//   - Readers never wait on disk I/O: each customer's state is an immutable
//     snapshot behind an atomic pointer that writers replace
//     (copy-on-write); a View holds one snapshot, consistent and unaffected
//     by later writes. View and its accessors do not allocate.
//   - State is keyed by customer id and does not depend on any feature
//     snapshot. Compact(asOf) says a new snapshot is served: the values of
//     the fields that reset on a snapshot (FieldInfo.ResetOnSnapshot: the
//     snapshot carries them, or the mappings say so) stamped at or before
//     asOf are hidden at once and dropped from memory. Every other field
//     keeps its value: a snapshot supersedes only what it carries.
//   - Open loads the newest checkpoint and replays the log after it; every
//     acknowledged write survives a crash. One event (its overlay changes and
//     the journey moves it carries) is one log record: after a crash it is
//     applied whole or not at all.
//   - Every error of a write is of one kind (ErrInvalid, ErrUnavailable,
//     ErrConflict; see KindOf), and nothing of a failed write is applied,
//     in memory or, after a restart, from the log. When the log cannot be
//     written (a full disk), writes fail with ErrUnavailable and Err says
//     so until the log heals by itself (package wal), within about
//     Config.WAL.RetryInterval of the cause going away.
//   - A contact or event with an idempotency key (Contact.ID, Event.ID) that
//     the customer's state still remembers is acknowledged without being
//     applied again (Stats.Duplicates). The check and the write are atomic
//     per customer, and the keys are kept in the customer's state, so they
//     survive restarts (log replay and checkpoints) like the rest of it.
//
// Limits (per customer, from Config, each with a counter in Stats): contacts
// kept in History, aggregate keys, journeys, idempotency keys remembered
// (MaxIDsPerCustomer, default 64). Cap-window counts are exact for the
// latest 8 events of a key and otherwise rounded out to whole hours
// (windows up to a day) or whole UTC days; see Config.MaxWindow. Strings
// (ids, keys, categories) are limited to Config.MaxStringBytes. The number
// of customers who are not in the feature snapshot (SetInSnapshot) and have
// live state is bounded by Config.MaxCustomers: past it the least recently
// written of them are evicted (Stats.CustomersEvicted). Customers in the
// snapshot are not bounded here: the snapshot bounds them.
//
// A Store is safe for concurrent use.
//
// Layout: backend.go is the contract every state backend implements
// (Backend) and errors.go its error kinds; model.go (Model: records built
// from contacts, events and journey moves, Apply, one customer's value
// codec), types.go, agg.go, mapping.go, view.go and the record codec in
// codec.go are the customer model shared by backends; store.go, evict.go
// and the checkpoint half of codec.go are the embedded backend, durable
// through package wal; consent.go (consent per channel and purpose with its
// audit trail, a section of the customer's value) and erase.go (erasure
// and tombstones) are both. Package statetest is the behaviour table every
// backend passes.
package state

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nba/state/wal"
)

// Reader is what the decision engine needs from customer state. *Store
// implements it; a shared store (e.g. Redis) could stand behind it later.
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

var (
	_ Reader = (*Store)(nil)
	_ Writer = (*Store)(nil)
)

// Config configures a Store. Zero values pick the documented defaults.
type Config struct {
	// Mappings turn events into overlay field changes.
	Mappings Mappings
	// SnapshotFields are the fields the feature snapshot carries (its
	// columns). Those that are also overlay fields reset on a new snapshot
	// (see Compact); the others are ignored.
	SnapshotFields []string
	// MaxEventsPerCustomer bounds the contacts kept in a customer's
	// history (aggregates keep counting evicted ones). Default 100; at
	// most 100000.
	MaxEventsPerCustomer int
	// MaxKeysPerCustomer bounds a customer's (kind, key, outcome)
	// aggregates; the least recently updated is evicted. Default 64.
	MaxKeysPerCustomer int
	// MaxJourneysPerCustomer bounds the journeys kept per customer; a
	// finished journey is evicted before an active one, the oldest first.
	// Default 16.
	MaxJourneysPerCustomer int
	// MaxIDsPerCustomer bounds the idempotency keys (Contact.ID and
	// Event.ID together) remembered per customer: the newest are kept, so
	// a retry is recognised as long as fewer than this many newer keyed
	// writes of the same customer came in between. Keys are not expired by
	// time. Memory: up to this many keys of at most MaxStringBytes each per
	// customer that sends keys. Default 64; at most 4096.
	MaxIDsPerCustomer int
	// MaxWindow is the longest cap window counted, rounded up to whole
	// days; longer windows are clamped (Store.MaxWindow tells a catalog
	// compiler, which refuses them). Default DefaultMaxWindow; at most 400
	// days.
	MaxWindow time.Duration
	// MaxStringBytes bounds customer ids, keys, journey ids, event types
	// and category values. Default 256.
	MaxStringBytes int
	// MaxInterned bounds the distinct strings interned (deduplicated) in
	// memory; past it strings are stored as given. Default 1<<20.
	MaxInterned int
	// Stripes is the number of lock stripes (a power of two). Default 256.
	Stripes int
	// MaxCustomers bounds the customers with live state who are not in the
	// feature snapshot (see SetInSnapshot): new ids seen by feedback or
	// events. Past it, a background pass evicts the least recently written
	// of them (by their last write: feedback, event or journey move) down
	// to MaxCustomers minus 1/16, durably (a log record), and counts them
	// in Stats.CustomersEvicted. An evicted customer loses all of its live
	// state: contact history (caps and pauses count from zero again),
	// overlay fields, journey positions and idempotency keys. Memory: a
	// customer with a few contacts takes about 1 KiB. Default 200,000;
	// negative: no bound.
	MaxCustomers int
	// CheckpointEvery makes the store checkpoint in the background at
	// this interval. Zero disables it: call Checkpoint yourself.
	CheckpointEvery time.Duration
	// WAL configures the log; WAL.Dir is required.
	WAL wal.Config
}

func (c *Config) validate() error {
	def := func(v *int, d, lo, hi int, name string) error {
		if *v == 0 {
			*v = d
		}
		if *v < lo || *v > hi {
			return fmt.Errorf("%s %d is outside [%d, %d]", name, *v, lo, hi)
		}
		return nil
	}
	if err := def(&c.MaxEventsPerCustomer, 100, 1, 100_000, "MaxEventsPerCustomer"); err != nil {
		return err
	}
	if err := def(&c.MaxKeysPerCustomer, 64, 1, 1<<16, "MaxKeysPerCustomer"); err != nil {
		return err
	}
	if err := def(&c.MaxJourneysPerCustomer, 16, 1, 1<<12, "MaxJourneysPerCustomer"); err != nil {
		return err
	}
	if err := def(&c.MaxIDsPerCustomer, 64, 1, maxDecodedIDs, "MaxIDsPerCustomer"); err != nil {
		return err
	}
	if err := def(&c.MaxStringBytes, 256, 1, 1<<16, "MaxStringBytes"); err != nil {
		return err
	}
	if err := def(&c.MaxInterned, 1<<20, 0, 1<<30, "MaxInterned"); err != nil {
		return err
	}
	if err := def(&c.Stripes, 256, 1, 1<<16, "Stripes"); err != nil {
		return err
	}
	if c.Stripes&(c.Stripes-1) != 0 {
		return fmt.Errorf("Stripes %d is not a power of two", c.Stripes)
	}
	if c.MaxWindow == 0 {
		c.MaxWindow = DefaultMaxWindow
	}
	if c.MaxWindow < 0 || c.MaxWindow > 400*24*time.Hour {
		return fmt.Errorf("MaxWindow %v is outside (0, 400 days]", c.MaxWindow)
	}
	if c.CheckpointEvery < 0 {
		return fmt.Errorf("CheckpointEvery %v is negative", c.CheckpointEvery)
	}
	if c.MaxCustomers == 0 {
		c.MaxCustomers = DefaultMaxCustomers
	}
	return nil
}

// DefaultMaxCustomers is the default of Config.MaxCustomers.
const DefaultMaxCustomers = 200_000

// Store is the live customer state. It is safe for concurrent use.
type Store struct {
	Model   // the rules that change a customer, shared with every backend
	cfg     Config
	seed    maphash.Seed
	stripes []stripe
	log     *wal.Log
	lsn     atomic.Uint64 // last sequence number assigned
	asOf    atomic.Int64  // overlay values stamped at or before are hidden (unix ns)
	st      counters

	ckptMu  sync.Mutex // one checkpoint at a time
	stop    chan struct{}
	bg      sync.WaitGroup // background loops
	closeMu sync.Mutex
	closed  bool

	// Eviction of customers not in the snapshot (Config.MaxCustomers).
	inSnapshot atomic.Pointer[func(customer string) bool]
	created    atomic.Uint64 // customers created since Open
	liveBase   atomic.Int64  // live-only customers at the last count minus created then: an upper bound is liveBase+created
	evictKick  chan struct{} // capacity 1
	evictMu    sync.Mutex    // one eviction pass at a time

	tomb tombstones // erase.go
	idx  storeIndex // identifier index (identity_store.go)
}

type stripe struct {
	wmu sync.Mutex   // serialises writers: held across log append and apply
	mu  sync.RWMutex // guards m (insertions only; values are atomic)
	m   map[string]*entry
	_   [40]byte // keep hot stripes on separate cache lines
}

type entry struct {
	p atomic.Pointer[custState]
}

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

// counters are the store's cumulative counters.
type counters struct {
	contacts, events, journeys, unmapped, missingAttrs          atomic.Uint64
	histEvicted, keysEvicted, journeysEvicted, internFull       atomic.Uint64
	replayed, replaySkipped, replayDropped, customers, compacts atomic.Uint64
	checkpoints, checkpointErrors, duplicates, idsEvicted       atomic.Uint64
	unavailable, evicted, replayCorrupt, conflicts              atomic.Uint64
}

// Stats are the store's cumulative counters.
type Stats struct {
	Customers        uint64    `json:"customers"`        // customers with state
	Contacts         uint64    `json:"contacts"`         // contacts recorded
	Events           uint64    `json:"events"`           // events applied (with at least one mapped change or journey move)
	Journeys         uint64    `json:"journeys"`         // journey updates
	UnmappedEvents   uint64    `json:"unmapped_events"`  // events of a type without mappings (ignored)
	MissingAttrs     uint64    `json:"missing_attrs"`    // mapping ops skipped because the event lacked the attribute
	HistoryEvicted   uint64    `json:"history_evicted"`  // contacts dropped from histories (MaxEventsPerCustomer)
	KeysEvicted      uint64    `json:"keys_evicted"`     // aggregates dropped (MaxKeysPerCustomer)
	JourneysEvicted  uint64    `json:"journeys_evicted"` // journeys dropped (MaxJourneysPerCustomer)
	Duplicates       uint64    `json:"duplicates"`       // contacts and events acknowledged but not applied: their idempotency key was remembered
	IDsEvicted       uint64    `json:"ids_evicted"`      // idempotency keys forgotten (MaxIDsPerCustomer)
	InternFull       uint64    `json:"intern_full"`      // strings not interned because MaxInterned was reached
	Replayed         uint64    `json:"replayed"`         // log records applied at Open
	ReplaySkipped    uint64    `json:"replay_skipped"`   // log records already in the checkpoint
	ReplayDropped    uint64    `json:"replay_dropped"`   // overlay changes to fields no longer mapped
	Compactions      uint64    `json:"compactions"`
	Checkpoints      uint64    `json:"checkpoints"`
	CheckpointErrors uint64    `json:"checkpoint_errors"`
	WAL              wal.Stats `json:"wal"`

	// Faults and bounds.
	Unavailable      uint64 `json:"unavailable"`       // writes refused because the log could not be written (ErrUnavailable)
	Conflicts        uint64 `json:"conflicts"`         // conditional journey moves refused: the customer had moved on (ErrConflict)
	CustomersEvicted uint64 `json:"customers_evicted"` // customers not in the snapshot whose state was evicted (MaxCustomers)
	ReplayCorrupt    uint64 `json:"replay_corrupt"`    // log records whose checksum held but that could not be decoded, skipped (WAL.SkipCorrupt)
}

// Open loads the newest checkpoint in cfg.WAL.Dir, replays the log after it
// and returns a store ready for reads and writes.
func Open(cfg Config) (*Store, error) {
	s, err := newStore(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot open state: %w", err)
	}
	var r record
	s.log, err = wal.Open(cfg.WAL, s.loadCheckpoint, func(b []byte) error {
		if err := decodeRecord(b, &r); err != nil {
			if cfg.WAL.SkipCorrupt {
				s.st.replayCorrupt.Add(1) // its checksum held: written so, by a bug or another version
				return nil
			}
			return err
		}
		s.lsn.Store(max(s.lsn.Load(), r.lsn))
		if s.replay(&r) {
			s.st.replayed.Add(1)
		} else {
			s.st.replaySkipped.Add(1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open state: %w", err)
	}
	if t := s.asOf.Load(); t > 0 {
		s.dropStale(t) // values replayed before the compaction record
	}
	if cfg.CheckpointEvery > 0 {
		s.bg.Go(s.checkpointLoop)
	}
	if cfg.MaxCustomers > 0 {
		s.bg.Go(s.evictLoop)
	}
	return s, nil
}

// newStore validates cfg and builds an empty store without a log.
func newStore(cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := compile(cfg.Mappings, cfg.SnapshotFields)
	if err != nil {
		return nil, fmt.Errorf("mappings: %w", err)
	}
	s := &Store{
		cfg:     cfg,
		seed:    maphash.MakeSeed(),
		stripes: make([]stripe, cfg.Stripes),
		stop:    make(chan struct{}),
	}
	s.evictKick = make(chan struct{}, 1)
	s.Model.init(cfg, m, &s.st)
	for i := range s.stripes {
		s.stripes[i].m = map[string]*entry{}
	}
	return s, nil
}

func (s *Store) checkpointLoop() {
	t := time.NewTicker(s.cfg.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			// Errors are counted; the log keeps everything until the next
			// successful checkpoint.
			s.Checkpoint()
		}
	}
}

// Close stops background checkpoints, then flushes and closes the log.
// Writes after Close fail.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	close(s.stop)
	s.bg.Wait()
	if err := s.log.Close(); err != nil {
		return fmt.Errorf("cannot close state: %w", err)
	}
	return nil
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

// DefaultMaxWindow is Config.MaxWindow's default: contacts are counted up
// to 30 days back.
const DefaultMaxWindow = 30 * 24 * time.Hour

// MaxWindow is the longest cap window counted; the engine should reject
// contact policies with longer windows when it compiles them.
func (m *Model) MaxWindow() time.Duration { return time.Duration(m.days-1) * time.Duration(dayNanos) }

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	c := &s.st
	return Stats{
		Customers: c.customers.Load(), Contacts: c.contacts.Load(), Events: c.events.Load(),
		Journeys: c.journeys.Load(), UnmappedEvents: c.unmapped.Load(), MissingAttrs: c.missingAttrs.Load(),
		HistoryEvicted: c.histEvicted.Load(), KeysEvicted: c.keysEvicted.Load(),
		JourneysEvicted: c.journeysEvicted.Load(), InternFull: c.internFull.Load(),
		Duplicates: c.duplicates.Load(), IDsEvicted: c.idsEvicted.Load(),
		Replayed: c.replayed.Load(), ReplaySkipped: c.replaySkipped.Load(), ReplayDropped: c.replayDropped.Load(),
		Compactions: c.compacts.Load(), Checkpoints: c.checkpoints.Load(), CheckpointErrors: c.checkpointErrors.Load(),
		Unavailable: c.unavailable.Load(), Conflicts: c.conflicts.Load(), CustomersEvicted: c.evicted.Load(), ReplayCorrupt: c.replayCorrupt.Load(),
		WAL: s.log.Stats(),
	}
}

func (s *Store) stripeOf(customer string) int {
	return int(maphash.String(s.seed, customer)) & (len(s.stripes) - 1)
}

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

// RecordContact records contacts durably. All are validated first; on any
// error none is recorded. A contact whose ID the customer's state remembers
// (or that repeats the ID of an earlier contact of the call) is skipped and
// counted in Stats.Duplicates.
func (s *Store) RecordContact(cs ...Contact) error {
	_, err := s.recordContact(cs)
	return err
}

// RecordContactOnce records c like RecordContact and reports whether it was
// a duplicate: its ID remembered, so nothing was recorded.
func (s *Store) RecordContactOnce(c Contact) (dup bool, err error) {
	n, err := s.recordContact([]Contact{c})
	return n > 0, err
}

func (s *Store) recordContact(cs []Contact) (dups int, err error) {
	recs := make([]record, len(cs))
	for i, c := range cs {
		var err error
		if recs[i], err = s.ContactRecord(c); err != nil {
			return 0, invalidf("cannot record contact %d: %w", i, err)
		}
	}
	dups, err = s.write(recs)
	if err != nil {
		return 0, fmt.Errorf("cannot record contact: %w", err)
	}
	s.st.contacts.Add(uint64(len(cs) - dups))
	return dups, nil
}

// ApplyEvent applies events through the mappings, and the journey moves
// they carry, durably: each event is one log record. An event type without
// mappings changes no field (Stats.UnmappedEvents); an op whose attribute is
// missing is skipped (Stats.MissingAttrs); an attribute of the wrong type is
// an error. On any error no event is applied. Changes stamped at or before
// the as-of of the last Compact are ignored: the snapshot has them (journey
// moves and the ID are not). An event that changes nothing (no mapped
// change, no journey move) is not logged and its ID not remembered: its
// retry changes nothing either. An event whose ID the customer's state
// remembers (or that repeats the ID of an earlier event of the call) is
// skipped whole and counted in Stats.Duplicates.
func (s *Store) ApplyEvent(es ...Event) error {
	_, err := s.applyEvent(es)
	return err
}

// ApplyEventOnce applies e like ApplyEvent and reports whether it was a
// duplicate: its ID remembered, so nothing was applied.
func (s *Store) ApplyEventOnce(e Event) (dup bool, err error) {
	n, err := s.applyEvent([]Event{e})
	return n > 0, err
}

func (s *Store) applyEvent(es []Event) (dups int, err error) {
	recs := make([]record, 0, len(es))
	moves := 0
	for i, e := range es {
		r, err := s.EventRecord(e)
		if err != nil {
			return 0, invalidf("cannot apply event %d: %w", i, err)
		}
		if len(r.effects) > 0 || len(r.moves) > 0 || r.movesFrom != nil {
			recs = append(recs, r)
		}
	}
	dups, err = s.write(recs)
	if err != nil {
		return 0, fmt.Errorf("cannot apply event: %w", err)
	}
	applied := 0
	for i := range recs {
		if !recs[i].dup && !recs[i].empty {
			moves += len(recs[i].moves)
			applied++
		}
	}
	s.st.events.Add(uint64(applied))
	s.st.journeys.Add(uint64(moves))
	return dups, nil
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

// SetJourney records journey moves durably, in arrival order: moving to a
// new step sets StepAt, (re-)entering an active journey from a finished one
// sets EnteredAt. On any error none is recorded.
func (s *Store) SetJourney(us ...JourneyUpdate) error {
	recs := make([]record, len(us))
	for i, u := range us {
		var err error
		if recs[i], err = s.JourneyRecord(u); err != nil {
			return invalidf("cannot set journey %d: %w", i, err)
		}
	}
	if _, err := s.write(recs); err != nil {
		return fmt.Errorf("cannot set journey: %w", err)
	}
	s.st.journeys.Add(uint64(len(us)))
	return nil
}

// write logs recs durably and then applies them, except duplicates: records
// whose idempotency key the customer's state remembers, or an earlier record
// of recs carries. It marks them (record.dup), counts them and returns how
// many there were. Writers of the customers' stripes are excluded from the
// duplicate check through log append to apply, so the check is atomic with
// the write, and per customer the order of sequence numbers is the order of
// application (checkpoints rely on it).
func (s *Store) write(recs []record) (dups int, err error) {
	if len(recs) == 0 {
		return 0, nil
	}
	idx := make([]int, len(recs))
	for i := range recs {
		idx[i] = s.stripeOf(recs[i].customer)
	}
	defer s.lockWriters(slices.Clone(idx))()
	// Each record's next state is computed by the model from the state as
	// it stands after the records before it: the duplicate check, the
	// journey moves an event computes (JourneysFrom) and the change are
	// one step per customer. Nothing is installed before the log has it.
	bufs := make([][]byte, 0, len(recs))
	next := make([]*custState, len(recs))
	var sum Result
	asOf := s.asOf.Load()
	for i := range recs {
		r := &recs[i]
		old := s.latest(&s.stripes[idx[i]], recs[:i], next[:i], r.customer)
		n, res, err := s.Model.Apply(old, r, asOf)
		switch {
		case err != nil:
			if res.Conflict {
				s.st.conflicts.Add(1)
			}
			return 0, err
		case res.Duplicate:
			r.dup = true
			dups++
			continue
		case res.Empty:
			r.empty = true // changes nothing: not logged, its id not remembered
			continue
		}
		r.lsn = s.lsn.Add(1)
		if n != old {
			n.lsn = r.lsn // n is this write's own value
		}
		next[i] = n
		sum.add(res)
		bufs = append(bufs, appendRecord(nil, r))
	}
	if len(bufs) > 0 {
		if err := s.log.Append(bufs...); err != nil {
			return 0, s.logError(err)
		}
	}
	for i := range recs {
		if r := &recs[i]; !r.dup && !r.empty {
			s.install(&s.stripes[idx[i]], r.customer, next[i])
		}
	}
	s.count(sum)
	s.st.duplicates.Add(uint64(dups))
	return dups, nil
}

// latest returns the customer's state as the write stands at a record: the
// next state of the last earlier record of the same customer, else the
// stored state (nil when none). The caller holds st.wmu.
func (s *Store) latest(st *stripe, earlier []record, next []*custState, customer string) *custState {
	for i := len(earlier) - 1; i >= 0; i-- {
		if e := &earlier[i]; e.customer == customer && !e.dup && !e.empty {
			return next[i]
		}
	}
	st.mu.RLock()
	e := st.m[customer]
	st.mu.RUnlock()
	if e == nil {
		return nil
	}
	return e.p.Load()
}

// install makes next the customer's stored state (nil or unchanged: the
// model kept nothing). The caller holds st.wmu.
func (s *Store) install(st *stripe, customer string, next *custState) {
	if next == nil {
		return
	}
	st.mu.RLock()
	e := st.m[customer]
	st.mu.RUnlock()
	if e != nil {
		e.p.Store(next)
		return
	}
	e = &entry{}
	e.p.Store(next)
	st.mu.Lock()
	st.m[next.id] = e
	st.mu.Unlock()
	s.st.customers.Add(1)
	if n := s.created.Add(1); s.cfg.MaxCustomers > 0 && s.liveBase.Load()+int64(n) > int64(s.cfg.MaxCustomers) {
		s.kickEviction()
	}
}

// lockWriters takes the writer locks of the stripes listed (in any order,
// repeats allowed; the slice is sorted in place) in ascending order, so
// that concurrent multi-customer writes cannot deadlock, and returns the
// function that releases them.
func (s *Store) lockWriters(stripes []int) (unlock func()) {
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.stripes[i].wmu.Lock()
	}
	return func() {
		for _, i := range stripes {
			s.stripes[i].wmu.Unlock()
		}
	}
}

// logError gives an error of the log its kind: a record over the log's
// limit is the write's fault, anything else (a full disk, an I/O error, a
// backlog, a closed log) the store's, and counted.
func (s *Store) logError(err error) error {
	if errors.Is(err, wal.ErrRecordTooLarge) {
		return invalid(err)
	}
	s.st.unavailable.Add(1)
	return unavailable(err)
}

// Err returns an ErrUnavailable error while the store cannot write (its log
// failed and has not healed yet), or nil.
func (s *Store) Err() error {
	if err := s.log.Err(); err != nil {
		return unavailable(fmt.Errorf("cannot write the state log: %w", err))
	}
	return nil
}

// replay applies a record read from the log unless the checkpoint already
// holds it.
func (s *Store) replay(r *record) bool {
	if r.typ == recCompact {
		s.raiseAsOf(r.at)
		return true
	}
	if r.typ == recForget {
		return s.forget(&s.stripes[s.stripeOf(r.customer)], r.customer, r.lsn)
	}
	if r.typ == recErase {
		return s.replayErase(r)
	}
	return s.apply(&s.stripes[s.stripeOf(r.customer)], r, true)
}

// apply installs the effect of r on its customer, computed by the model
// (Model.Apply, or ApplyLogged when replaying). The caller holds the
// stripe's wmu (or is replaying, single-threaded).
func (s *Store) apply(st *stripe, r *record, replaying bool) bool {
	st.mu.RLock()
	e := st.m[r.customer]
	st.mu.RUnlock()
	var old *custState
	if e != nil {
		old = e.p.Load()
		if replaying && r.lsn <= old.lsn {
			return false
		}
	}
	next, res, _ := s.Model.apply(old, r, s.asOf.Load(), !replaying)
	s.count(res)
	if next != old {
		s.install(st, r.customer, next)
	}
	return true
}

// count adds what one application of the model evicted or dropped to the
// store's counters.
func (s *Store) count(res Result) {
	if res.HistoryEvicted > 0 {
		s.st.histEvicted.Add(uint64(res.HistoryEvicted))
	}
	if res.KeysEvicted > 0 {
		s.st.keysEvicted.Add(uint64(res.KeysEvicted))
	}
	if res.JourneysEvicted > 0 {
		s.st.journeysEvicted.Add(uint64(res.JourneysEvicted))
	}
	if res.IDsEvicted > 0 {
		s.st.idsEvicted.Add(uint64(res.IDsEvicted))
	}
	if res.Dropped > 0 {
		s.st.replayDropped.Add(uint64(res.Dropped))
	}
}

// Compact hides and then drops the values of the fields that reset on a
// snapshot (FieldInfo.ResetOnSnapshot) stamped at or before asOf: call it
// when a feature snapshot with that as-of time becomes active. The other
// fields are untouched: a snapshot that does not carry a field says nothing
// about it. Compact is durable and monotonic (an earlier asOf than a
// previous one does nothing). Counters incremented both before and after
// asOf keep their whole sum: the overlay cannot split them.
func (s *Store) Compact(asOf time.Time) error {
	t := asOf.UnixNano()
	// Under ckptMu so that a checkpoint cannot separate the record (in a
	// segment it removes) from the as-of it captures.
	s.ckptMu.Lock()
	if t <= s.asOf.Load() {
		s.ckptMu.Unlock()
		return nil
	}
	r := record{typ: recCompact, at: t, lsn: s.lsn.Add(1)}
	if err := s.log.Append(appendRecord(nil, &r)); err != nil {
		s.ckptMu.Unlock()
		return fmt.Errorf("cannot compact state: %w", s.logError(err))
	}
	s.raiseAsOf(t)
	s.ckptMu.Unlock()
	s.st.compacts.Add(1)
	s.dropStale(t)
	return nil
}

// dropStale frees the values of fields that reset on a snapshot stamped at
// or before t (already hidden from readers by the as-of).
func (s *Store) dropStale(t int64) {
	if !slices.ContainsFunc(s.m.fields, func(f FieldInfo) bool { return f.ResetOnSnapshot }) {
		return
	}
	for i := range s.stripes {
		st := &s.stripes[i]
		st.wmu.Lock()
		st.mu.RLock()
		for _, e := range st.m {
			old := e.p.Load()
			stale, fresh := false, false
			for j, v := range old.overlay {
				if v.at != 0 && v.at <= t && s.m.fields[j].ResetOnSnapshot {
					stale = true
				} else if v.at != 0 {
					fresh = true
				}
			}
			if !stale {
				continue
			}
			next := *old
			next.overlay = nil
			if fresh {
				next.overlay = slices.Clone(old.overlay)
				for j := range next.overlay {
					if next.overlay[j].at <= t && s.m.fields[j].ResetOnSnapshot {
						next.overlay[j] = value{}
					}
				}
			}
			e.p.Store(&next)
		}
		st.mu.RUnlock()
		st.wmu.Unlock()
	}
}

func (s *Store) raiseAsOf(t int64) {
	for {
		cur := s.asOf.Load()
		if t <= cur || s.asOf.CompareAndSwap(cur, t) {
			return
		}
	}
}

// Checkpoint writes the whole state to a new checkpoint and lets the log
// drop the segments it covers. Reads and writes continue meanwhile; a
// writer waits at most for one stripe to be captured.
func (s *Store) Checkpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	err := s.log.Checkpoint(func(w io.Writer) error {
		// Barrier: writers that appended to the old segments hold their
		// stripe's wmu until they have applied; after this loop all of
		// them have. Snapshots are immutable, so encoding needs no lock.
		for i := range s.stripes {
			s.stripes[i].wmu.Lock()
			s.stripes[i].wmu.Unlock()
		}
		return s.writeCheckpoint(w)
	})
	if err != nil {
		s.st.checkpointErrors.Add(1)
		return unavailable(fmt.Errorf("cannot checkpoint state: %w", err))
	}
	s.st.checkpoints.Add(1)
	return nil
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

func maphashBytes(s *Store, b []byte) uint64 { return maphash.Bytes(s.seed, b) }
