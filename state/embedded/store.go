// Package embedded is the embedded state backend: live customer state
// (package state's model: a profile overlay changed by events through
// declarative mappings, contact history with cap-window aggregates, journey
// positions, consent, identities) held in this process's memory. Every
// change is made durable through a write-ahead log (package state/wal)
// before the write call returns, and checkpoints keep start-up fast.
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
//     the fields that reset on a snapshot (state.FieldInfo.ResetOnSnapshot:
//     the snapshot carries them, or the mappings say so) stamped at or
//     before asOf are hidden at once and dropped from memory. Every other field
//     keeps its value: a snapshot supersedes only what it carries.
//   - Open loads the newest checkpoint and replays the log after it; every
//     acknowledged write survives a crash. One event (its overlay changes and
//     the journey moves it carries) is one log record: after a crash it is
//     applied whole or not at all.
//   - Every error of a write is of one kind (state.ErrInvalid,
//     ErrUnavailable, ErrConflict; see state.KindOf), and nothing of a
//     failed write is applied, in memory or, after a restart, from the log.
//     When the log cannot be written (a full disk), writes fail with
//     ErrUnavailable and Err says so until the log heals by itself (package
//     wal), within about Config.WAL.RetryInterval of the cause going away.
//   - A contact or event with an idempotency key (Contact.ID, Event.ID) that
//     the customer's state still remembers is acknowledged without being
//     applied again (Stats.Duplicates). The check and the write are atomic
//     per customer, and the keys are kept in the customer's state, so they
//     survive restarts (log replay and checkpoints) like the rest of it.
//
// Limits (per customer, from state.Config, each with a counter in Stats):
// contacts kept in History, aggregate keys, journeys, idempotency keys
// remembered (MaxIDsPerCustomer, default 64). Cap-window counts are exact
// for the latest 8 events of a key and otherwise rounded out to whole hours
// (windows up to a day) or whole UTC days; see Config.MaxWindow. Strings
// (ids, keys, categories) are limited to Config.MaxStringBytes. The number
// of customers who are not in the feature snapshot (SetInSnapshot) and have
// live state is bounded by Config.MaxCustomers: past it the least recently
// written of them are evicted (Stats.CustomersEvicted). Customers in the
// snapshot are not bounded here: the snapshot bounds them.
//
// A Store is safe for concurrent use.
//
// Layout: store.go is the Store (stripes of customers, the write path, log
// replay, Compact, Checkpoint), checkpoint.go its checkpoints (the format
// is the model's: state.Model.NewCheckpointWriter), evict.go the bound on
// customers, erase.go erasure and tombstones, dump.go export and import
// (state.Porter), identity_store.go the identifier index
// (state.IdentityBackend). What a customer is and how a change applies to
// it is package state's model, shared with package state/redis: this
// package only orders, logs and installs the values the model computes.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"nba/state"
	"nba/state/wal"
)

var (
	_ state.Reader  = (*Store)(nil)
	_ state.Writer  = (*Store)(nil)
	_ state.Backend = (*Store)(nil)
	_ state.Porter  = (*Store)(nil)
)

// Store is the live customer state. It is safe for concurrent use.
type Store struct {
	*state.Model // the rules that change a customer, shared with every backend
	cfg          state.Config
	seed         maphash.Seed
	stripes      []stripe
	log          *wal.Log
	lsn          atomic.Uint64 // last sequence number assigned
	asOf         atomic.Int64  // overlay values stamped at or before are hidden (unix ns)
	st           counters

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

	stubs erasedStubs // erase.go: customers erased within state.ErasedStubTTL
}

type stripe struct {
	wmu sync.Mutex   // serialises writers: held across log append and apply
	mu  sync.RWMutex // guards m (insertions only; values are atomic)
	m   map[string]*entry
	_   [40]byte // keep hot stripes on separate cache lines
}

type entry struct {
	p atomic.Pointer[state.Customer]
}

// counters are the store's cumulative counters; the model keeps its own
// (state.Model.Stats).
type counters struct {
	contacts, events, journeys                                  atomic.Uint64
	histEvicted, keysEvicted, journeysEvicted                   atomic.Uint64
	replayed, replaySkipped, replayDropped, customers, compacts atomic.Uint64
	checkpoints, checkpointErrors, duplicates, idsEvicted       atomic.Uint64
	unavailable, evicted, replayCorrupt, conflicts              atomic.Uint64
}

// Open loads the newest checkpoint in cfg.WAL.Dir, replays the log after it
// and returns a store ready for reads and writes.
func Open(cfg state.Config) (*Store, error) {
	s, err := newStore(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot open state: %w", err)
	}
	var r state.Record
	s.log, err = wal.Open(cfg.WAL, s.loadCheckpoint, func(b []byte) error {
		if err := state.DecodeRecord(b, &r); err != nil {
			if cfg.WAL.SkipCorrupt {
				s.st.replayCorrupt.Add(1) // its checksum held: written so, by a bug or another version
				return nil
			}
			return err
		}
		s.lsn.Store(max(s.lsn.Load(), r.Seq()))
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
	if s.cfg.CheckpointEvery > 0 {
		s.bg.Go(s.checkpointLoop)
	}
	if s.cfg.MaxCustomers > 0 { // the validated config: 0 means the default bound, not none
		s.bg.Go(s.evictLoop)
	}
	return s, nil
}

// newStore validates cfg and builds an empty store without a log.
func newStore(cfg state.Config) (*Store, error) {
	cfg, err := cfg.Validated()
	if err != nil {
		return nil, err
	}
	m, err := state.NewModel(cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{
		Model:   m,
		cfg:     cfg,
		seed:    maphash.MakeSeed(),
		stripes: make([]stripe, cfg.Stripes),
		stop:    make(chan struct{}),
	}
	s.evictKick = make(chan struct{}, 1)
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

// View fills v with the customer's current state and reports whether the
// customer has any. It does not allocate and never waits on disk I/O.
func (s *Store) View(customer []byte, v *state.View) bool {
	st := &s.stripes[int(maphashBytes(s, customer))&(len(s.stripes)-1)]
	st.mu.RLock()
	e := st.m[string(customer)]
	st.mu.RUnlock()
	if e == nil {
		s.Model.View(nil, s.asOf.Load(), v)
		return false
	}
	s.Model.View(e.p.Load(), s.asOf.Load(), v)
	return true
}

// Load implements Backend.Load: View, which cannot fail (the state is in
// memory) and does not wait.
func (s *Store) Load(_ context.Context, customer []byte, v *state.View) (bool, error) {
	return s.View(customer, v), nil
}

// Stats returns the store's counters, with the model's.
func (s *Store) Stats() state.Stats {
	c, m := &s.st, s.Model.Stats()
	return state.Stats{
		Customers: c.customers.Load(), Contacts: c.contacts.Load(), Events: c.events.Load(),
		Journeys: c.journeys.Load(), UnmappedEvents: m.UnmappedEvents, MissingAttrs: m.MissingAttrs,
		HistoryEvicted: c.histEvicted.Load(), KeysEvicted: c.keysEvicted.Load(),
		JourneysEvicted: c.journeysEvicted.Load(), InternFull: m.InternFull,
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

// RecordContact records contacts durably. All are validated first; on any
// error none is recorded. A contact whose ID the customer's state remembers
// (or that repeats the ID of an earlier contact of the call) is skipped and
// counted in Stats.Duplicates.
func (s *Store) RecordContact(cs ...state.Contact) error {
	_, err := s.recordContact(cs)
	return err
}

// RecordContactOnce records c like RecordContact and reports whether it was
// a duplicate: its ID remembered, so nothing was recorded.
func (s *Store) RecordContactOnce(c state.Contact) (dup bool, err error) {
	n, err := s.recordContact([]state.Contact{c})
	return n > 0, err
}

func (s *Store) recordContact(cs []state.Contact) (dups int, err error) {
	recs := make([]state.Record, len(cs))
	for i, c := range cs {
		var err error
		if recs[i], err = s.ContactRecord(c); err != nil {
			return 0, invalidf("cannot record contact %d: %w", i, err)
		}
	}
	w, err := s.write(recs)
	if err != nil {
		return 0, fmt.Errorf("cannot record contact: %w", err)
	}
	s.st.contacts.Add(uint64(len(cs) - w.dups))
	return w.dups, nil
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
func (s *Store) ApplyEvent(es ...state.Event) error {
	_, err := s.applyEvent(es)
	return err
}

// ApplyEventOnce applies e like ApplyEvent and reports whether it was a
// duplicate: its ID remembered, so nothing was applied.
func (s *Store) ApplyEventOnce(e state.Event) (dup bool, err error) {
	n, err := s.applyEvent([]state.Event{e})
	return n > 0, err
}

func (s *Store) applyEvent(es []state.Event) (dups int, err error) {
	recs := make([]state.Record, 0, len(es))
	for i, e := range es {
		r, err := s.EventRecord(e)
		if err != nil {
			return 0, invalidf("cannot apply event %d: %w", i, err)
		}
		if r.Changes() {
			recs = append(recs, r)
		}
	}
	w, err := s.write(recs)
	if err != nil {
		return 0, fmt.Errorf("cannot apply event: %w", err)
	}
	s.st.events.Add(uint64(w.applied))
	s.st.journeys.Add(uint64(w.moves))
	return w.dups, nil
}

// SetJourney records journey moves durably, in arrival order: moving to a
// new step sets StepAt, (re-)entering an active journey from a finished one
// sets EnteredAt. On any error none is recorded.
func (s *Store) SetJourney(us ...state.JourneyUpdate) error {
	recs := make([]state.Record, len(us))
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

// Reserve makes reservations durably, as one atomic write: all of them or,
// when one is refused (an exact cap full: ErrConflict) or invalid, none. A
// reservation live with the same decision and action is a duplicate and
// skipped.
func (s *Store) Reserve(rs ...state.Reservation) error {
	recs := make([]state.Record, len(rs))
	for i, r := range rs {
		var err error
		if recs[i], err = s.ReserveRecord(r); err != nil {
			return invalidf("cannot reserve %d: %w", i, err)
		}
	}
	if _, err := s.write(recs); err != nil {
		return fmt.Errorf("cannot reserve: %w", err)
	}
	return nil
}

// SetConsent records consent changes durably (see ConsentWriter).
func (s *Store) SetConsent(cs ...state.Consent) (dups int, err error) {
	recs := make([]state.Record, len(cs))
	for i, c := range cs {
		if recs[i], err = s.ConsentRecord(c); err != nil {
			return 0, invalidf("cannot set consent %d: %w", i, err)
		}
	}
	w, err := s.write(recs)
	if err != nil {
		return 0, fmt.Errorf("cannot set consent: %w", err)
	}
	return w.dups, nil
}

// written is what one write did.
type written struct {
	dups    int // records skipped as duplicates
	applied int // records logged and applied (neither duplicates nor empty)
	moves   int // journey moves of the records applied (state.Result.Journeys)
}

// write logs recs durably and then applies them, except duplicates: records
// whose idempotency key the customer's state remembers, or an earlier record
// of recs carries. It counts them and returns how many there were, with
// how many records it applied and the journey moves they made. Writers of the customers' stripes are excluded from the
// duplicate check through log append to apply, so the check is atomic with
// the write, and per customer the order of sequence numbers is the order of
// application (checkpoints rely on it).
func (s *Store) write(recs []state.Record) (w written, err error) {
	if len(recs) == 0 {
		return w, nil
	}
	idx := make([]int, len(recs))
	for i := range recs {
		idx[i] = s.stripeOf(recs[i].Customer())
	}
	defer s.lockWriters(slices.Clone(idx))()
	// Each record's next state is computed by the model from the state as
	// it stands after the records before it: the duplicate check, the
	// journey moves an event computes (JourneysFrom) and the change are
	// one step per customer. Nothing is installed before the log has it.
	bufs := make([][]byte, 0, len(recs))
	next := make([]*state.Customer, len(recs))
	skip := make([]bool, len(recs)) // duplicates, and events that turned out to change nothing
	var sum state.Result
	asOf := s.asOf.Load()
	for i := range recs {
		r := &recs[i]
		if s.stubs.erased(r.Customer()) {
			return written{}, state.ErasedErrorf(r.Customer())
		}
		old := s.latest(&s.stripes[idx[i]], recs[:i], next[:i], skip[:i], r.Customer())
		n, res, err := s.Model.Apply(old, r, asOf)
		switch {
		case err != nil:
			if res.Conflict {
				s.st.conflicts.Add(1)
			}
			return written{}, err
		case res.Duplicate:
			skip[i] = true
			w.dups++
			continue
		case res.Empty:
			skip[i] = true // changes nothing: not logged, its id not remembered
			continue
		}
		r.SetSeq(s.lsn.Add(1))
		if n != old {
			n.SetSeq(r.Seq()) // n is this write's own value
		}
		next[i] = n
		addResult(&sum, res)
		w.applied++
		w.moves += res.Journeys
		bufs = append(bufs, state.AppendRecord(nil, r))
	}
	if len(bufs) > 0 {
		if err := s.log.Append(bufs...); err != nil {
			return written{}, s.logError(err)
		}
	}
	for i := range recs {
		if !skip[i] {
			s.install(&s.stripes[idx[i]], recs[i].Customer(), next[i])
		}
	}
	s.count(sum)
	s.st.duplicates.Add(uint64(w.dups))
	return w, nil
}

// latest returns the customer's state as the write stands at a record: the
// next state of the last earlier record of the same customer, else the
// stored state (nil when none). The caller holds st.wmu.
func (s *Store) latest(st *stripe, earlier []state.Record, next []*state.Customer, skip []bool, customer string) *state.Customer {
	for i := len(earlier) - 1; i >= 0; i-- {
		if earlier[i].Customer() == customer && !skip[i] {
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
func (s *Store) install(st *stripe, customer string, next *state.Customer) {
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
	st.m[next.ID()] = e
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
func (s *Store) replay(r *state.Record) bool {
	switch r.LogOp() {
	case state.LogCompact:
		s.raiseAsOf(r.At())
		return true
	case state.LogForget:
		return s.forget(&s.stripes[s.stripeOf(r.Customer())], r.Customer(), r.Seq())
	case state.LogErase:
		return s.replayErase(r)
	}
	return s.apply(&s.stripes[s.stripeOf(r.Customer())], r)
}

// apply installs the effect of a record read back from the log on its
// customer, computed by the model (Model.ApplyLogged), unless the
// customer's state already holds it. It is called replaying,
// single-threaded.
func (s *Store) apply(st *stripe, r *state.Record) bool {
	st.mu.RLock()
	e := st.m[r.Customer()]
	st.mu.RUnlock()
	var old *state.Customer
	if e != nil {
		old = e.p.Load()
		if r.Seq() <= old.Seq() {
			return false
		}
	}
	next, res := s.Model.ApplyLogged(old, r, s.asOf.Load())
	s.count(res)
	if next != old {
		s.install(st, r.Customer(), next)
	}
	return true
}

// addResult sums what two applications of the model evicted and dropped.
func addResult(r *state.Result, o state.Result) {
	r.HistoryEvicted += o.HistoryEvicted
	r.KeysEvicted += o.KeysEvicted
	r.JourneysEvicted += o.JourneysEvicted
	r.IDsEvicted += o.IDsEvicted
	r.Dropped += o.Dropped
}

// count adds what one application of the model evicted or dropped to the
// store's counters.
func (s *Store) count(res state.Result) {
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
	r := state.CompactRecord(t)
	r.SetSeq(s.lsn.Add(1))
	if err := s.log.Append(state.AppendRecord(nil, &r)); err != nil {
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
	if !slices.ContainsFunc(s.Fields(), func(f state.FieldInfo) bool { return f.ResetOnSnapshot }) {
		return
	}
	for i := range s.stripes {
		st := &s.stripes[i]
		st.wmu.Lock()
		st.mu.RLock()
		for _, e := range st.m {
			old := e.p.Load()
			if next := s.Compacted(old, t); next != old {
				e.p.Store(next)
			}
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
	s.stubs.sweep(time.Now())
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

func maphashBytes(s *Store, b []byte) uint64 { return maphash.Bytes(s.seed, b) }

func invalid(err error) error     { return &state.Error{Kind: state.ErrInvalid, Err: err} }
func unavailable(err error) error { return &state.Error{Kind: state.ErrUnavailable, Err: err} }

func invalidf(format string, args ...any) error { return invalid(fmt.Errorf(format, args...)) }
