// Package sidecar wires the parts of nba into one serving process: it loads a
// bundle (manifest, models, catalog, customer snapshot), opens the durable
// customer state, runs the decision engine, and implements the HTTP server's
// Backend. Reloads compile a new bundle beside the one serving and swap it
// in atomically; a bundle that fails to load leaves the last good one
// serving and is reported in status and metrics.
//
// Journey changes produced by decisions are persisted in the background
// through a bounded queue (a decision is not delayed by an fsync); feedback
// and events are acknowledged only once durable.
package sidecar

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"nba/cache/scorecache"
	"nba/cache/snapshot"
	"nba/nba"
	"nba/nba/declog"
	"nba/nba/eventstream"
	"nba/nba/server"
	"nba/state"
	"nba/state/embedded"
	redisstate "nba/state/redis"
	"nba/state/wal"
)

// Config configures a Sidecar.
type Config struct {
	// Bundle holds the bundle's files (os.DirFS of a directory, or the
	// embedded demo). Required.
	Bundle fs.FS
	// BundleName describes Bundle in logs and status ("demo" or a path).
	BundleName string
	// StateDir holds the durable customer state and the decision log.
	// Required; created if absent. A Sidecar locks it while open (see
	// LockFile): a second Open of the same directory fails until Close.
	StateDir string
	// StateRedis, when set, keeps the customer state on Redis (package
	// state/redis; the URL forms rueidis.ParseURL accepts) instead of in
	// StateDir/state, shared by every process on that Redis. StateDir
	// then holds only this process's files (decision log, learner file):
	// give each process its own. The online learning is then shared too
	// (learnshare.go): decision features, observations, impressions
	// awaiting an outcome and the learner checkpoint live in Redis.
	StateRedis string
	// StateRedisWaitReplicas makes each state write wait for this many
	// Redis replicas before it is acknowledged (redisstate.Config.WaitReplicas).
	StateRedisWaitReplicas int
	// StateRedisAllowVolatile opens a Redis without an append-only file.
	StateRedisAllowVolatile bool
	// StateRedisReadTimeout bounds how long a decision waits for the
	// customer's state from Redis before deciding without it (stale).
	// Default 100ms.
	StateRedisReadTimeout time.Duration
	// SyncInterval is the longest the state log waits to batch an fsync.
	// Default 2ms.
	SyncInterval time.Duration
	// CheckpointEvery compacts the state log at this interval. Default 10m.
	CheckpointEvery time.Duration
	// StateMaxCustomers bounds the customers with live state who are not
	// in the snapshot; past it the least recently written are evicted
	// (state.Config.MaxCustomers). 0 means state.DefaultMaxCustomers,
	// negative no bound.
	StateMaxCustomers int
	// StateSkipCorrupt makes Open skip damaged state log records, counted
	// and logged, instead of failing (wal.Config.SkipCorrupt): what they
	// recorded is lost.
	StateSkipCorrupt bool
	// DecisionLog enables the decision log in StateDir/decisions.
	DecisionLog bool
	// DecisionLogNoInputs leaves the decision inputs (profile fields,
	// history counts, journeys) out of the decision log: about half the
	// log's cost, but nba replay and nba evaluate then have nothing to
	// decide from.
	DecisionLogNoInputs bool
	// DecisionLogCodec compresses the decision log's files (default
	// declog.CodecZstd).
	DecisionLogCodec declog.Codec
	// LogSecret keys customer pseudonyms in the decision log (at least 16
	// bytes). Empty: a random secret kept in StateDir/declog.secret.
	LogSecret []byte
	// ScoreCacheBytes is the memory budget of the cache of model scores per
	// customer (repeat visitors are not scored again). Default 0: no cache;
	// in the traffic measured it cost more CPU than the scoring it saved
	// (bench/RESULTS.md, "Score cache default").
	ScoreCacheBytes int64
	// ResponseWindow is how long a shown action may wait for an accept,
	// convert, reject or dismiss before it is learned from as ignored.
	// Default 24h.
	ResponseWindow time.Duration
	// LearnCheckpointEvery writes the online models and the impressions
	// awaiting an outcome to StateDir/learner.bin at this interval (and at
	// Close), atomically, when anything changed. Default 1m.
	LearnCheckpointEvery time.Duration
	// MaxPending bounds the impressions awaiting an outcome for learning.
	// Default 1,000,000. Each takes about 150 bytes plus 8 per learning
	// feature (the features its decision saw).
	MaxPending int
	// DecisionMemory is the number of recent decisions whose learning
	// features are kept for their feedback (nba.Config.DecisionMemory):
	// 0 means nba.DefaultDecisionMemory, negative none.
	DecisionMemory int
	// ReserveTTL is how long a decision's reservation of exact caps holds
	// its slot when no impression quoting the decision follows. Default
	// DefaultReserveTTL.
	ReserveTTL time.Duration
	// LenientContext decides a request whose context field has another
	// type than the catalog declares as if the field were missing, as
	// before; by default such a request is refused (400 invalid_request).
	LenientContext bool
	// AcceptUnknownEvents records events of a type that no profile mapping
	// or journey names, counting them; by default they are refused (400
	// unknown_event_type), since such a type is usually a typo.
	AcceptUnknownEvents bool
	// EventStream, when its Stream is set, consumes events from a Redis
	// stream (package eventstream) and applies them as POST /v1/events
	// does. Its URL defaults to StateRedis; Apply is set by Open.
	EventStream eventstream.Config
	// ErasureKey keys the pseudonyms of erased customers' tombstones
	// (erase.go); every process sharing one state must use the same.
	// Empty: erasures keep no tombstone.
	ErasureKey []byte
	// ErasureKeep is how long a tombstone lasts. Default DefaultErasureKeep
	// (30 days).
	ErasureKeep time.Duration
	// LinkedIDs, when set, returns the identifiers linked to a customer
	// (identity linking): DELETE /admin/customers/{id} erases them too.
	LinkedIDs func(customer string) []string
	// IdentityKey keys the hash of hashed identity namespaces (at least 16
	// bytes; IdentityKeyEnv). Empty: a random key kept in
	// StateDir/identity.key with the embedded state; required with
	// StateRedis, where every replica must hash alike.
	IdentityKey []byte
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Sidecar serves decisions from a bundle and customer state. It implements
// server.Backend and is safe for concurrent use.
type Sidecar struct {
	cfg    Config
	log    *slog.Logger
	state  state.Backend
	ident  *state.Identities // nil without identity stitching
	snaps  *snapshot.Store
	cust   *customers
	engine *nba.Engine
	parts  atomic.Pointer[parts]
	declog *declog.Logger
	scores *scorecache.Cache // nil when disabled
	lock   *os.File          // holds the state directory's lock until Close

	// decideIDs resolves a decision's ids when the index is out of reach;
	// nil without identity stitching.
	decideIDs *decideResolver
	// mismatch is the last write refused as written with other mappings;
	// nil: none.
	mismatch atomic.Pointer[mismatchMark]

	stream *eventstream.Consumer // nil without Config.EventStream

	// candidate is the studio's candidate bundle (studio.go); nil without.
	candidate atomic.Pointer[candidate]

	reloadMu         sync.Mutex
	snapStamp        time.Time // modification time of the snapshot file served; guarded by reloadMu
	reloads          atomic.Uint64
	reloadFailures   atomic.Uint64
	lastReloadErr    atomic.Pointer[reloadError]
	lastReloadOK     atomic.Int64  // unix nanos of the last successful reload
	effectsDropped   atomic.Uint64 // journey steps not given: their move could not be written (journeymove.go)
	effectsFailed    atomic.Uint64
	effectsConflicts atomic.Uint64 // journey moves refused by their precondition: the request was decided again
	resv             reserveCounters
	feedbackUnknown  atomic.Uint64
	eventsUnknown    atomic.Uint64
	stateLogged      atomic.Int64 // when a write refused as state_unavailable was last logged (unix ns)
	observeErrors    atomic.Uint64

	pending   pending
	tombs     tombCache    // erase.go
	share     *learnShare  // learning shared on Redis; nil without StateRedis
	memSeed   maphash.Seed // decision ids -> decision memory keys
	learnStop chan struct{}
	learnDone chan struct{}

	// What the last learner checkpoint held; used by the learn loop, then
	// by Close, never at once.
	learnerSaved                bool
	savedObserved, savedChanges uint64

	metrics  *sidecarMetrics
	counters atomic.Pointer[counters]

	pool    sync.Pool
	now     func() time.Time
	started time.Time
}

type reloadError struct {
	at  time.Time
	err string
}

var _ server.Backend = (*Sidecar)(nil)

// Open loads the bundle, replays the customer state and returns a Sidecar
// ready to decide. It fails when the first bundle cannot be loaded.
func Open(cfg Config) (*Sidecar, error) {
	if cfg.Bundle == nil {
		return nil, errors.New("cannot open sidecar: no bundle")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("cannot open sidecar: no state directory")
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 2 * time.Millisecond
	}
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = 10 * time.Minute
	}
	if cfg.ResponseWindow == 0 {
		cfg.ResponseWindow = 24 * time.Hour
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 1_000_000
	}
	if cfg.LearnCheckpointEvery <= 0 {
		cfg.LearnCheckpointEvery = time.Minute
	}
	if cfg.ReserveTTL <= 0 {
		cfg.ReserveTTL = DefaultReserveTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ErasureKeep <= 0 {
		cfg.ErasureKeep = DefaultErasureKeep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot open sidecar: %w", err)
	}
	// One process per state directory: a second one would append to the
	// same log and compact it under the first, losing acknowledged writes.
	lock, err := lockDir(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("cannot open sidecar: %w", err)
	}
	opened := false
	defer func() {
		if !opened {
			lock.Close()
		}
	}()
	m, _, err := readManifest(cfg.Bundle)
	if err != nil {
		return nil, fmt.Errorf("cannot load bundle %s: %w", cfg.BundleName, err)
	}
	st, err := openState(filepath.Join(cfg.StateDir, "state"), m, cfg)
	if err != nil {
		where := cfg.StateDir
		if cfg.StateRedis != "" {
			where = "on Redis"
		}
		return nil, fmt.Errorf("cannot open customer state %s: %w", where, err)
	}
	st, ident, decideIDs, err := withIdentity(st, m, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot load bundle %s: %w", cfg.BundleName, err)
	}
	if sst := st.Stats(); sst.WAL.CorruptRecords > 0 || sst.ReplayCorrupt > 0 {
		cfg.Logger.Warn("skipped damaged customer state log records; what they recorded is lost",
			"damaged", sst.WAL.CorruptRecords, "undecodable", sst.ReplayCorrupt, "replayed", sst.Replayed)
	}
	s := &Sidecar{cfg: cfg, log: cfg.Logger, started: time.Now(), state: st, ident: ident, decideIDs: decideIDs, cust: &customers{state: st}, now: cfg.Now, lock: lock,
		pending: pending{max: cfg.MaxPending, at: map[pendingKey]pendingImpression{}}, memSeed: maphash.MakeSeed(), learnStop: make(chan struct{}), learnDone: make(chan struct{})}
	s.tombs.key = cfg.ErasureKey
	s.cust.erased = s.erasedCached
	if len(cfg.ErasureKey) > 0 {
		s.refreshTombstones()
	}
	p, err := loadParts(cfg.Bundle, st)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("cannot load bundle %s: %w", cfg.BundleName, err)
	}
	s.snaps = snapshot.NewStore(p.snapshotConfig())
	snap, err := readSnapshot(cfg.Bundle, p)
	if err == nil {
		err = s.snaps.Swap(snap)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("cannot load bundle %s: %w", cfg.BundleName, err)
	}
	s.snapStamp = fileStamp(cfg.Bundle, p.manifest.Snapshot.File)
	// A snapshot newer than the state's as-of, served since this start,
	// resets what it supersedes as a reload would (a no-op otherwise).
	if err := st.Compact(snap.AsOf()); err != nil {
		s.log.Warn("cannot compact overlay", "error", err)
	}
	st.SetInSnapshot(s.inSnapshot)
	s.cust.binding.Store(newBinding(snap, p.src, p.consentCols...))
	s.parts.Store(p)
	var cache nba.ScoreCache
	if cfg.ScoreCacheBytes > 0 {
		if s.scores, err = scorecache.New(scorecache.Config{MaxBytes: cfg.ScoreCacheBytes}); err != nil {
			st.Close()
			return nil, fmt.Errorf("cannot create score cache: %w", err)
		}
		cache = scores{s.scores}
	}
	s.engine, err = nba.NewEngine(nba.Config{Catalog: p.catalog, Customers: s.cust, Scores: cache,
		DecisionMemory: cfg.DecisionMemory})
	if err != nil {
		st.Close()
		return nil, err
	}
	if cfg.DecisionLog {
		secret := cfg.LogSecret
		if len(secret) == 0 {
			if secret, err = loadSecret(filepath.Join(cfg.StateDir, "declog.secret")); err != nil {
				st.Close()
				return nil, err
			}
		}
		s.declog, err = declog.New(declog.Config{Dir: filepath.Join(cfg.StateDir, "decisions"), Secret: secret, Codec: cfg.DecisionLogCodec})
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("cannot open decision log: %w", err)
		}
	}
	if cfg.StateRedis != "" {
		if err := s.openLearnShare(); err != nil {
			st.Close()
			return nil, fmt.Errorf("cannot open the learning shared on Redis: %w", err)
		}
	} else {
		s.loadLearner()
	}
	go s.learnLoop(s.learnStop, s.learnDone)
	opened = true
	if err := s.startEventStream(); err != nil {
		s.Close()
		return nil, err
	}
	s.log.Info("bundle loaded", "bundle", cfg.BundleName, "version", p.version, "catalog", p.catalog.Version(),
		"actions", len(p.catalog.Actions()), "customers", snap.Len(), "snapshot", snap.Version())
	return s, nil
}

// openState opens the live state with the manifest's profile mappings; the
// live fields the snapshot also carries reset when a new snapshot is served.
func openState(dir string, m Manifest, cfg Config) (state.Backend, error) {
	scfg := state.Config{Mappings: m.Profile, SnapshotFields: sortedKeys(m.Snapshot.Columns), CheckpointEvery: cfg.CheckpointEvery,
		MaxCustomers: cfg.StateMaxCustomers, WAL: wal.Config{Dir: dir, SyncInterval: cfg.SyncInterval, SkipCorrupt: cfg.StateSkipCorrupt}}
	if cfg.StateRedis == "" {
		return embedded.Open(scfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := redisstate.Open(ctx, redisstate.Config{URL: cfg.StateRedis, State: scfg, WaitReplicas: cfg.StateRedisWaitReplicas,
		AllowVolatile: cfg.StateRedisAllowVolatile, ReadTimeout: cfg.StateRedisReadTimeout, IdentityKey: identityKeyFingerprint(m, cfg)})
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("customer state on Redis", "acknowledgement", b.Durability())
	return b, nil
}

// inSnapshot reports whether a customer is in the served snapshot: the
// state store evicts only the others.
func (s *Sidecar) inSnapshot(customer string) bool {
	snap := s.snaps.Current()
	if snap == nil {
		return true // not known yet: evict nothing
	}
	_, ok := snap.LookupString(customer)
	return ok
}

// loadSecret reads the decision log's pseudonym key, creating it on first use.
func loadSecret(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		key, err := hex.DecodeString(string(b))
		if err != nil || len(key) < 16 {
			return nil, fmt.Errorf("cannot read decision log secret %q: want at least 16 hex-encoded bytes", path)
		}
		return key, nil
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write decision log secret: %w", err)
	}
	return key, nil
}

// Reload loads the bundle again beside the one serving and swaps it in. On
// error the last good bundle keeps serving.
func (s *Sidecar) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	err := s.reload()
	if err != nil {
		s.reloadFailures.Add(1)
		s.lastReloadErr.Store(&reloadError{at: s.now(), err: err.Error()})
		s.log.Warn("reload failed; the last good bundle keeps serving", "bundle", s.cfg.BundleName, "error", err)
		return err
	}
	s.reloads.Add(1)
	s.lastReloadOK.Store(s.now().UnixNano())
	return nil
}

func (s *Sidecar) reload() error {
	old := s.parts.Load()
	p, err := loadParts(s.cfg.Bundle, s.state)
	if err != nil {
		return err
	}
	if !sameProfile(s.state, old.manifest, p.manifest) {
		return errors.New("profile fields and event mappings changed: restart to apply them")
	}
	if (old.manifest.Identity == nil) != (p.manifest.Identity == nil) {
		return errors.New("identity: section added or removed: restart to apply it")
	}
	if s.ident != nil {
		if err := s.ident.Configure(p.manifest.Identity); err != nil {
			return err
		}
		if err := s.decideIDs.x.Configure(p.manifest.Identity); err != nil {
			return err
		}
	}
	snap := s.snaps.Current()
	stamp := fileStamp(s.cfg.Bundle, p.manifest.Snapshot.File)
	if p.manifest.Snapshot.File != old.manifest.Snapshot.File || stamp.IsZero() || !stamp.Equal(s.snapStamp) {
		next, err := readSnapshot(s.cfg.Bundle, p)
		if err != nil {
			return err
		}
		if next.Version() != snap.Version() {
			if err := s.snaps.Swap(next); err != nil {
				return err // the stamp stays: the next reload tries this file again
			}
			snap = next
			s.state.SetInSnapshot(s.inSnapshot) // recount who is not in it
			if err := s.state.Compact(snap.AsOf()); err != nil {
				s.log.Warn("cannot compact overlay", "error", err)
			}
		}
		s.snapStamp = stamp
	}
	s.cust.binding.Store(newBinding(snap, p.src, p.consentCols...))
	s.counters.Store(s.metrics.forCatalog(p.catalog))
	s.engine.Swap(p.catalog)
	s.parts.Store(p)
	s.log.Info("bundle reloaded", "version", p.version, "catalog", p.catalog.Version(), "snapshot", snap.Version())
	return nil
}

// fileStamp returns a file's modification time, zero when unknown.
func fileStamp(fsys fs.FS, file string) time.Time {
	fi, err := fs.Stat(fsys, file)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// sameProfile reports whether manifest b declares the live profile that
// the state store was opened with from a: the same mappings, compared
// compiled and by value, and the same live fields carried by the snapshot
// (they reset when a new snapshot is served).
func sameProfile(st state.Backend, a, b Manifest) bool {
	if !a.Profile.Equal(b.Profile) {
		return false
	}
	for _, f := range st.Fields() {
		_, carried := b.Snapshot.Columns[f.Name]
		if f.ResetOnSnapshot != (carried || slices.Contains(b.Profile.ResetOnSnapshot, f.Name)) {
			return false
		}
	}
	return true
}

// Ready implements server.Backend.
func (s *Sidecar) Ready() error {
	if s.parts.Load() == nil || s.snaps.Current() == nil {
		return errors.New("bundle not loaded")
	}
	if err := s.state.Err(); err != nil {
		// Decisions would still be answered, but no feedback or event
		// recorded: send the traffic to a replica that can.
		reason, _ := unavailableReason(err, s.cfg.StateRedis != "")
		return server.StateUnavailablef("customer state cannot be written (%s); it is retried every second", reason)
	}
	if m := s.mismatch.Load(); m != nil && appliedWrites(s.state.Stats()) == m.applied {
		// Every write since the last one refused failed too (or none
		// came): the shared state holds customers of other mappings.
		return &server.Error{Status: http.StatusServiceUnavailable, Code: server.CodeStateMismatch,
			Message: fmt.Sprintf("customer state was written with other profile mappings (last write refused %s ago, none applied since): serve the bundle that wrote it, or migrate the state", time.Since(m.at).Round(time.Second))}
	}
	return nil
}

// Close stops background work, flushes the decision log and closes the
// state store (fsync).
func (s *Sidecar) Close() error {
	s.stopEventStream()
	close(s.learnStop)
	<-s.learnDone
	if s.share != nil {
		s.share.close()
	}
	var errs []error
	if err := s.saveLearner(); err != nil {
		errs = append(errs, fmt.Errorf("cannot checkpoint online models: %w", err))
	}
	if s.declog != nil {
		errs = append(errs, s.declog.Close())
	}
	if s.scores != nil {
		s.scores.Close()
	}
	errs = append(errs, s.state.Close())
	errs = append(errs, s.lock.Close()) // after the state log is closed: releases the directory
	return errors.Join(errs...)
}

// CustomerIDs returns the ids of every customer in the served snapshot, for
// Catalog returns the catalog serving now, for commands that need its
// declarations (nba decide types -context values by them).
func (s *Sidecar) Catalog() *nba.Catalog { return s.engine.Catalog() }

// outbound batches.
func (s *Sidecar) CustomerIDs() []string {
	snap := s.snaps.Current()
	ids := make([]string, snap.Len())
	for i := range ids {
		ids[i] = snap.ID(i)
	}
	return ids
}

// InSnapshot reports whether the served snapshot has the customer id.
func (s *Sidecar) InSnapshot(id string) bool {
	_, ok := s.snaps.Current().Lookup([]byte(id))
	return ok
}
