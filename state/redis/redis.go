// Package redisstate is the customer state backend on Redis (state.Backend):
// several sidecar processes, the batch run and the agent desktop share one
// customer state, so caps, journeys and idempotency agree across them.
//
// Data model: one customer is one Redis hash, key "{c:<id>}" (the hash tag
// keeps it on one Cluster shard), with fields v (version, a decimal counter),
// d (a digest of the mappings and snapshot fields, since values are stored by
// slot), s (the customer's value, state.Model.AppendCustomer) and w (the
// nonce of the write that stored it, so that only that write's retry is
// taken as applied).
//
// Reads: Load reads the hash with rueidis's client-side cache (RESP3
// tracking: Redis invalidates the entry when any client writes the key), so
// a repeat visitor costs no network call and a miss costs one round trip.
// Decoded customers are kept per customer with the nonce of the write that
// stored them (a version restarts when a key is deleted and written
// again; a nonce never repeats), bounded by Config.MaxCustomers, so a hit
// does not decode again. A decoded value
// read through the client-side cache is also marked fresh until Redis
// invalidates its key (ClientOption.OnInvalidations), the connection
// closes (every mark is dropped, as rueidis drops its cache) or
// Config.CacheTTL passes: a Load of a fresh customer is answered from the
// decoded value by the id's bytes, without a rueidis call, a context or a
// key string, and does not allocate. An invalidation that arrives while a
// read is in flight keeps the value read from being marked (checked under
// the shard's lock), so a mark never outlives the invalidation of what it
// holds. Prefetch reads many customers in one pipelined round trip (the
// batch run's chunks).
//
// Writes: a write builds its records with the model, applies them in Go to
// the loaded value (state.Model.Apply: idempotency, computed and conditional
// journey moves, bounds) and sends one compare-and-set script: when the
// version and the nonce still match, the new value is stored with the
// version plus one;
// otherwise the script answers the current value and the write is applied
// again on it, without another read, at most Config.MaxRetries times
// (then ErrConflict). A write returns after Redis answered (and, with
// Config.WaitReplicas, after WAIT on the same connection): what that is
// worth depends on the server's persistence, read at Open (Durability).
//
// Faults: a network error or a timeout is an error of kind
// state.ErrUnavailable. Such a write may still have been applied (the
// request may have reached Redis): writes carrying an id are idempotent, so
// a retry is safe. Err reports an unreachable server from the last call
// and a background PING. During an outage Load answers from the last value
// this process read or wrote for the customer (bounded with the decoded
// values), with found true and an ErrUnavailable error: the decision uses
// it and is marked stale.
//
// Moving state (port.go, state.Porter): Each SCANs the customer keys of
// every master, Restore replaces customers, RecordContacts imports contact
// history; nba state export and import use them.
// Erasure (erase.go): Erase keeps the tombstone in the hash
// "{nba:tombstones}" (field the pseudonym, value its end in unix ns) and
// then deletes the customer's hash; every process reads the tombstones
// there.
//
// Mappings: Open records the fingerprint of the mappings and snapshot
// fields in mappingsKey and refuses a Redis that holds another (unless
// Config.Remap); a customer written with other mappings is an error of
// kind state.ErrMismatch on reads and writes (retrying never helps).
//
// Limits: Customers in Stats is not counted (the keys are in Redis).
package redisstate

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/rueidis"

	"nba/state"
)

// Config configures a Backend. Zero values pick the documented defaults.
type Config struct {
	// URL is the server, in the forms rueidis.ParseURL accepts: redis://,
	// rediss://, several ?addr= seeds for a Cluster, ?master_set= for
	// Sentinel.
	URL string
	// State holds the mappings, snapshot fields and per-customer bounds,
	// the same as every other process serving the bundle (its WAL, Stripes,
	// MaxCustomers and CheckpointEvery are not read).
	State state.Config
	// WaitReplicas makes each write wait (WAIT) until this many replicas
	// have it before it is acknowledged; fewer in WaitTimeout fails the
	// write with ErrUnavailable (it may still be applied on the primary).
	WaitReplicas int
	// WaitTimeout bounds the WAIT. Default 500ms.
	WaitTimeout time.Duration
	// IdentityKey is the fingerprint of the identity key hashed
	// identifiers are hashed with (an HMAC under the key, never the key),
	// or "" when none is used. Open records it in identityKeyKey, or
	// refuses a Redis that holds another: replicas must hash alike.
	IdentityKey string
	// IdentityKeyCheckOnly compares IdentityKey with the one recorded and
	// records none (offline tools: an import refused for its file must not
	// leave its key behind).
	IdentityKeyCheckOnly bool
	// AllowVolatile opens a server without an append-only file (an
	// acknowledged write is lost when Redis restarts). Default: refused.
	AllowVolatile bool
	// ReadTimeout bounds a Load without a context deadline and the health
	// PING. Default 100ms.
	ReadTimeout time.Duration
	// WriteTimeout bounds one write, retries included. Default 2s.
	WriteTimeout time.Duration
	// ConnTimeout is the dial timeout, the connection's I/O deadline and
	// the gap between health PINGs of an idle connection: a stalled server
	// is dropped (with the client-side cache) after about twice it.
	// Default 200ms.
	ConnTimeout time.Duration
	// CacheTTL is how long the client-side cache keeps a customer without
	// an invalidation. Default 1m.
	CacheTTL time.Duration
	// CacheBytes bounds the client-side cache per connection. Default
	// 128 MiB.
	CacheBytes int
	// MaxCustomers bounds the decoded customers kept (the decode cache and
	// the last-good copies served during an outage). Default 100,000.
	MaxCustomers int
	// MaxRetries bounds the compare-and-set attempts of one write. Default 16.
	MaxRetries int
	// HealthInterval is the gap between the background PINGs that clear
	// (or set) Err without traffic. Default 250ms.
	HealthInterval time.Duration
	// Remap opens a Redis whose customers were written with other profile
	// mappings or snapshot fields (another fingerprint in mappingsKey) and
	// records this process's: the customers written with the old ones are
	// refused (state.ErrMismatch) until replaced (nba state import) or
	// erased. Default: Open refuses such a Redis.
	Remap bool
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.WaitTimeout, 500*time.Millisecond)
	def(&c.ReadTimeout, 100*time.Millisecond)
	def(&c.WriteTimeout, 2*time.Second)
	def(&c.ConnTimeout, 200*time.Millisecond)
	def(&c.CacheTTL, time.Minute)
	def(&c.HealthInterval, 250*time.Millisecond)
	if c.CacheBytes <= 0 {
		c.CacheBytes = 128 << 20
	}
	if c.MaxCustomers <= 0 {
		c.MaxCustomers = 100_000
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 16
	}
}

// Backend is the state backend on Redis. Safe for concurrent use.
type Backend struct {
	cfg    Config
	m      *state.Model
	client rueidis.Client
	digest string
	dur    string
	asOf   atomic.Int64

	shards [numShards]shard
	seed   maphash.Seed
	// writers serialises this process's writers of one customer (striped),
	// so that only other processes make a compare-and-set retry.
	writers [256]sync.Mutex

	down      atomic.Pointer[error] // non-nil while the server is unreachable
	full      atomic.Pointer[error] // non-nil while Redis refuses writes for memory (OOM)
	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	contacts, events, journeys, dups, conflicts, unavailable    atomic.Uint64
	histEvicted, keysEvicted, journEvicted, idsEvicted, dropped atomic.Uint64
	retries, cacheHits, cacheMisses, stale                      atomic.Uint64

	// tracked: the client-side cache is on (not client_cache=0), so
	// Redis sends invalidations and a value read can be marked fresh.
	tracked bool
	// flushes counts the client-side cache flushes (a connection closed, a
	// FLUSHALL): a fresh mark holds only while it is unchanged.
	flushes atomic.Uint64

	// nonce (random, per process) and writes make each compare-and-set's
	// nonce (casScript).
	nonce  string
	writes atomic.Uint64
}

var _ state.Backend = (*Backend)(nil)

// casScript stores ARGV[2..4] (version, digest, value) and ARGV[5] (the
// write's nonce, field w) when the stored version is ARGV[1] ("0": no
// value) and the stored nonce is ARGV[6] (the value the write was applied
// on; "" for none), answering 1. The version alone does not tell values
// apart: it restarts at 1 when the key is deleted and written again (an
// erasure, FLUSHALL, a volatile Redis restarted), and a write applied on
// the old version 1 would then replace the new customer; a nonce never
// repeats. It also answers 1 when this very write is already
// stored (version ARGV[2] with nonce ARGV[5]: a retry of a write whose
// answer was lost), so a compare-and-set can be sent again after a network
// error. The nonce, not the value, tells a retry: another process's write
// from the same version may store identical bytes (two id-less impressions
// at one time), and both must count. Otherwise it answers the stored
// {version, digest, value, nonce} so the writer applies again on it.
// A customer's erased stub (field e, see Erase) refuses every write: it
// answers 2.
const casScript = `local cur = redis.call('HMGET', KEYS[1], 'v', 'd', 's', 'w', 'e')
if cur[5] then
  return 2
end
if (cur[1] or '0') == ARGV[1] and (cur[4] or '') == ARGV[6] then
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3], 's', ARGV[4], 'w', ARGV[5])
  return 1
end
if cur[1] == ARGV[2] and cur[4] == ARGV[5] then
  return 1
end
return {cur[1], cur[2], cur[3], cur[4]}`

var casSHA = func() string { h := sha1.Sum([]byte(casScript)); return hex.EncodeToString(h[:]) }()

// Open connects to cfg.URL, reads the servers' persistence settings and
// returns the backend. It fails when no server answers, when persistence
// is off (unless cfg.AllowVolatile), and on invalid mappings.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	cfg.defaults()
	m, err := state.NewModel(cfg.State)
	if err != nil {
		return nil, fmt.Errorf("cannot open redis state: %w", err)
	}
	opt, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("cannot open redis state: %w", err)
	}
	opt.ConnWriteTimeout = cfg.ConnTimeout
	opt.Dialer = net.Dialer{Timeout: cfg.ConnTimeout, KeepAlive: cfg.ConnTimeout}
	opt.DisableRetry = true
	opt.CacheSizeEachConn = cfg.CacheBytes
	b := &Backend{cfg: cfg, m: m, seed: maphash.MakeSeed(), stop: make(chan struct{}), done: make(chan struct{})}
	b.digest = digest(cfg.State)
	var nb [12]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, fmt.Errorf("cannot open redis state: %w", err)
	}
	b.nonce = hex.EncodeToString(nb[:]) + "-"
	b.tracked = !opt.DisableCache
	for i := range b.shards {
		b.shards[i].m = map[string]entry{}
	}
	opt.OnInvalidations = b.invalidate
	volatile, dur, err := b.connect(ctx, opt)
	if err != nil {
		return nil, err
	}
	client := b.client
	b.dur = dur
	if volatile && !cfg.AllowVolatile {
		client.Close()
		return nil, fmt.Errorf("cannot open redis state %s: %s; turn on appendonly, or allow volatile state (AllowVolatile, -state.redis.allowVolatile)", redact(cfg.URL), dur)
	}
	if err := b.checkMappings(ctx); err != nil {
		client.Close()
		return nil, err
	}
	if err := b.checkIdentityKey(ctx); err != nil {
		client.Close()
		return nil, err
	}
	go b.health()
	return b, nil
}

// mappingsKey holds the fingerprint (digest) of the profile mappings and
// snapshot fields the customers on this Redis are written with, recorded
// by the first process that opened it.
const mappingsKey = "{nba:mappings}"

// checkMappings records this process's fingerprint in mappingsKey, or
// refuses to start when another is recorded (unless Config.Remap): every
// customer written with the other mappings would be refused one by one at
// run time, while the process reported ready.
func (b *Backend) checkMappings(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// SET NX, then GET: SET NX GET needs Redis 7.
	err := b.client.Do(cctx, b.client.B().Set().Key(mappingsKey).Value(b.digest).Nx().Build()).Error()
	if rueidis.IsRedisNil(err) {
		err = nil // already recorded
	}
	old := b.digest
	if err == nil {
		old, err = b.client.Do(cctx, b.client.B().Get().Key(mappingsKey).Build()).ToString()
	}
	switch {
	case err == nil && old == b.digest:
		return nil // recorded now, or the same
	case err != nil:
		return fmt.Errorf("cannot open redis state %s: cannot read the mappings' fingerprint (%s): %w", redact(b.cfg.URL), mappingsKey, err)
	case b.cfg.Remap:
		if err := b.client.Do(cctx, b.client.B().Set().Key(mappingsKey).Value(b.digest).Build()).Error(); err != nil {
			return fmt.Errorf("cannot open redis state %s: cannot record the mappings' fingerprint (%s): %w", redact(b.cfg.URL), mappingsKey, err)
		}
		return nil
	}
	return &state.Error{Kind: state.ErrMismatch, Err: fmt.Errorf("cannot open redis state %s: its customers were written with other profile mappings or snapshot fields (fingerprint %.12s; this bundle's %.12s), "+
		"so every one of them would be refused: serve the bundle they were written with; or, to change the mappings, stop every process on this Redis, "+
		"export the state with the old bundle (nba state export), delete the key %s (redis-cli DEL '%s'), start with the new bundle and import the export (nba state import)",
		redact(b.cfg.URL), old, b.digest, mappingsKey, mappingsKey)}
}

// identityKeyKey holds the fingerprint of the identity key the hashed
// identifiers on this Redis are hashed with, recorded by the first process
// that opened it with one (Config.IdentityKey).
const identityKeyKey = "{nba:identity-key}"

// checkIdentityKey records Config.IdentityKey in identityKeyKey, or
// refuses to start when another is recorded: a replica with another key
// hashes one e-mail to another identifier, which then resolves to another
// person on each replica.
func (b *Backend) checkIdentityKey(ctx context.Context) error {
	fp := b.cfg.IdentityKey
	if fp == "" {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var err error
	if !b.cfg.IdentityKeyCheckOnly {
		err = b.client.Do(cctx, b.client.B().Set().Key(identityKeyKey).Value(fp).Nx().Build()).Error()
		if rueidis.IsRedisNil(err) {
			err = nil // already recorded
		}
	}
	old := fp
	if err == nil {
		old, err = b.client.Do(cctx, b.client.B().Get().Key(identityKeyKey).Build()).ToString()
		if rueidis.IsRedisNil(err) && b.cfg.IdentityKeyCheckOnly {
			return nil // none recorded yet: the first sidecar records its own
		}
	}
	switch {
	case err != nil:
		return fmt.Errorf("cannot open redis state %s: cannot read the identity key's fingerprint (%s): %w", redact(b.cfg.URL), identityKeyKey, err)
	case old != fp:
		return &state.Error{Kind: state.ErrMismatch, Err: fmt.Errorf("cannot open redis state %s: its hashed identifiers were hashed with another identity key (fingerprint %s; this process's %s), "+
			"so the same identifier would name another person here: set the identity key (NBA_IDENTITY_KEY) to the one every other process on this Redis uses; "+
			"to change the key, stop every process on this Redis and delete the key %s (redis-cli DEL '%s'): identifiers hashed with the old key then resolve to no one",
			redact(b.cfg.URL), old, fp, identityKeyKey, identityKeyKey)}
	}
	return nil
}

// openTimeout bounds how long Open waits for a Redis that does not answer
// when its context has no deadline.
const openTimeout = 10 * time.Second

// connect makes the client and reads the servers' persistence settings.
// A Redis that does not answer (not started yet, or slower than
// ConnTimeout for the dial or the handshake on a loaded machine) is tried
// again every 100ms until ctx ends (at most openTimeout when ctx has no
// deadline), instead of failing the start at once. An answer that refuses
// (a wrong or missing password, Cluster seeds against a server without
// Cluster, an unknown SENTINEL command) fails at once with the server's
// words, and so does TLS to a port that answers plain text: waiting cannot
// change them.
func (b *Backend) connect(ctx context.Context, opt rueidis.ClientOption) (volatile bool, dur string, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	for try := 0; ; try++ {
		var client rueidis.Client
		var cause error
		if client, cause = rueidis.NewClient(opt); cause != nil {
			err = fmt.Errorf("cannot open redis state %s: %w", redact(b.cfg.URL), cause)
		} else {
			b.client = client
			if volatile, dur, err = b.persistence(ctx); err == nil {
				return volatile, dur, nil
			}
			cause = err
			client.Close()
		}
		if !isNetErr(cause) {
			return false, "", err
		}
		if try == 0 && opt.TLSConfig != nil && plainText(opt.InitAddress, opt.Dialer.Timeout) {
			return false, "", fmt.Errorf("cannot open redis state %s: the server answers plain text, not TLS: use redis:// or turn TLS on in Redis: %w", redact(b.cfg.URL), cause)
		}
		select {
		case <-ctx.Done():
			return false, "", err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// plainText reports whether a server of addrs answers a plain-text PING
// (a rediss:// URL pointed at a port without TLS: the TLS handshake then
// waits for an answer that never comes, like a server that is down).
func plainText(addrs []string, timeout time.Duration) bool {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, timeout)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(timeout))
		var buf [1]byte
		_, err = c.Write([]byte("PING\r\n"))
		if err == nil {
			_, err = io.ReadFull(c, buf[:])
		}
		c.Close()
		if err == nil && (buf[0] == '+' || buf[0] == '-') {
			return true
		}
	}
	return false
}

// persistence reads every master's AOF settings and describes what an
// acknowledged write is worth, the weakest node deciding.
func (b *Backend) persistence(ctx context.Context) (volatile bool, dur string, err error) {
	rank := 3 // 3 always, 2 everysec, 1 no, 0 off or unknown
	var notes []string
	for addr, n := range b.client.Nodes() {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		kv, err := n.Do(cctx, n.B().ConfigGet().Parameter("appendonly", "appendfsync", "no-appendfsync-on-rewrite", "maxmemory", "maxmemory-policy").Build()).AsStrMap()
		cancel()
		r := 0
		switch {
		case err != nil && isNetErr(err):
			return false, "", fmt.Errorf("cannot open redis state: %s: %w", addr, err)
		case err != nil:
			notes = append(notes, addr+": CONFIG GET refused ("+err.Error()+"): persistence unknown")
		case kv["appendonly"] != "yes":
			notes = append(notes, addr+": appendonly no")
		default:
			switch kv["appendfsync"] {
			case "always":
				r = 3
			case "everysec":
				r = 2
			default:
				r = 1
			}
			if kv["no-appendfsync-on-rewrite"] == "yes" && r > 1 {
				notes = append(notes, addr+": no-appendfsync-on-rewrite yes (no fsync while the AOF is rewritten)")
			}
		}
		if strings.HasPrefix(kv["maxmemory-policy"], "allkeys-") && kv["maxmemory"] != "0" {
			// Customer keys have no expiry: only allkeys policies evict them.
			notes = append(notes, addr+": maxmemory-policy "+kv["maxmemory-policy"]+" (when full, Redis drops whole customers: their caps forget contacts; noeviction refuses writes instead)")
		}
		rank = min(rank, r)
	}
	dur = [...]string{
		"persistence off: an acknowledged write is lost when Redis restarts",
		"appendfsync no: an acknowledged write survives a Redis restart, not a machine crash (the OS flushes when it likes)",
		"appendfsync everysec: an acknowledged write survives a Redis restart; a machine crash loses up to a second",
		"appendfsync always: an acknowledged write is on disk",
	}[rank]
	if b.cfg.WaitReplicas > 0 {
		dur += fmt.Sprintf("; and on %d replica(s)", b.cfg.WaitReplicas)
	}
	for _, n := range notes {
		dur += "; " + n
	}
	return rank == 0, dur, nil
}

// Durability says what an acknowledged write is worth on the servers
// opened (their persistence settings at Open), for the start-up log.
func (b *Backend) Durability() string { return b.dur }

// Close stops the health check and closes the connections; later calls fail.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.stop)
		<-b.done
		b.client.Close()
	})
	return nil
}

// health PINGs the server in the background so that Err clears (or is
// set) without traffic.
func (b *Backend) health() {
	defer close(b.done)
	t := time.NewTicker(b.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.ReadTimeout)
		err := b.client.Do(ctx, b.client.B().Ping().Build()).Error()
		if err == nil && b.full.Load() != nil && !b.overMemory(ctx) {
			b.full.Store(nil)
		}
		cancel()
		b.observe(err)
	}
}

// ErrFull is wrapped by the errors of writes Redis refused because it is
// full (maxmemory reached with noeviction, or nothing it may evict): a
// write fails until memory is freed or maxmemory raised.
// ErrClosed is the cause of Err after Close.
var ErrClosed = errors.New("redis state closed")

// ErrReplicasShort is wrapped by the error of a write the primary applied
// but fewer replicas than Config.WaitReplicas confirmed within
// Config.WaitTimeout: not acknowledged, yet recorded on the primary (a
// failover to a replica without it would lose it). It is a reply, not a
// broken connection: the write is not sent again.
var ErrReplicasShort = errors.New("the write is applied on the primary, not yet on enough replicas")

var ErrFull = errors.New("redis is full (used memory over maxmemory): writes are refused until memory is freed or maxmemory raised")

// isOOM reports whether err is Redis refusing a write for memory.
func isOOM(err error) bool {
	e, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(e.Error(), "OOM")
}

// overMemory reports whether a master still counts more memory than its
// maxmemory (INFO memory, as Redis's own check: used memory less what is
// not counted for eviction), so that a full Redis stays reported until it
// would take writes again. A node that does not answer counts as full.
func (b *Backend) overMemory(ctx context.Context) bool {
	for _, n := range b.client.Nodes() {
		info, err := n.Do(ctx, n.B().Info().Section("memory").Build()).ToString()
		if err != nil {
			return true
		}
		var used, max, not int64
		for line := range strings.Lines(info) {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			x, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "used_memory":
				used = x
			case "maxmemory":
				max = x
			case "mem_not_counted_for_evict":
				not = x
			}
		}
		if max > 0 && used-not > max {
			return true
		}
	}
	return false
}

// observe records whether the server answered.
func (b *Backend) observe(err error) {
	if err == nil {
		if b.down.Load() != nil {
			b.down.Store(nil)
		}
		return
	}
	if isNetErr(err) {
		e := error(&state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("redis state unreachable: %w", err)})
		b.down.Store(&e)
	}
	if isOOM(err) {
		// Reads still work, so PINGs do not clear it: health does, once
		// no master is over maxmemory, or a write that succeeds.
		e := error(&state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("redis state cannot be written: %w (%w)", ErrFull, err)})
		b.full.Store(&e)
	}
}

// Err returns an ErrUnavailable error while the server does not answer,
// and while it refuses writes because it is full (wrapping ErrFull).
func (b *Backend) Err() error {
	if b.closed.Load() {
		return &state.Error{Kind: state.ErrUnavailable, Err: ErrClosed}
	}
	if p := b.down.Load(); p != nil {
		return *p
	}
	if p := b.full.Load(); p != nil {
		return *p
	}
	return nil
}

func key(customer string) string { return "{c:" + customer + "}" }

// value is one customer as read: the version, the nonce of the write that
// stored it (field w) and the decoded state (nil: none stored).
type value struct {
	ver uint64
	w   string
	c   *state.Customer
	own bool // this process's newer write, preferred to the older value read
}

// ownWriteLag is how long a value this process wrote is preferred to an
// older one read back: Redis 7 sends the writer's own invalidation after
// the write's reply, so the client-side cache may answer the old value
// for a moment after an acknowledgement. The preference also ends at the
// first invalidation of the key or flush after the write: the cache then
// holds nothing older, and what is read (a deletion by another process,
// a FLUSHALL) is newer.
const ownWriteLag = time.Second

// parse turns an HMGET v d s w answer (or the script's refusal) into a
// value. The decoded copy held is reused only when it is the very write
// read (same nonce w, same version): a version number alone repeats when
// a key is deleted and written again. Unless strict, a newer value this process wrote within
// ownWriteLag wins over the one read (read-your-own-writes): the read is
// older when it is the value that write replaced, or an older version.
func (b *Backend) parse(customer string, msgs []rueidis.RedisMessage, strict bool) (value, error) {
	sh := b.shard(customer)
	e, have := sh.get(customer)
	own := have && !strict && e.own != 0 && e.gen == b.flushes.Load() && time.Since(time.Unix(0, e.own)) < ownWriteLag
	if len(msgs) != 4 || msgs[0].IsNil() {
		if own {
			return value{ver: e.ver, w: e.w, c: e.c, own: true}, nil
		}
		if have {
			// Deleted (erased, flushed): no last-good copy of it is
			// served during an outage.
			sh.forget(customer, e.w)
		}
		return value{}, nil
	}
	vs, err := msgs[0].ToString()
	if err != nil {
		return value{}, err
	}
	ver, err := strconv.ParseUint(vs, 10, 64)
	if err != nil {
		return value{}, fmt.Errorf("bad version %q", vs)
	}
	w, _ := msgs[3].ToString()
	if have && e.w == w && e.ver == ver && w != "" {
		return value{ver: e.ver, w: e.w, c: e.c}, nil
	}
	if own && (w == e.base || e.ver > ver) {
		return value{ver: e.ver, w: e.w, c: e.c, own: true}, nil
	}
	d, _ := msgs[1].ToString()
	if d != b.digest {
		return value{}, b.mismatch(d)
	}
	s, err := msgs[2].ToString()
	if err != nil {
		return value{}, err
	}
	c, err := b.m.DecodeCustomer([]byte(s))
	if err != nil {
		return value{}, fmt.Errorf("cannot decode the customer: %w", err)
	}
	b.remember(customer, entry{ver: ver, w: w, c: c})
	return value{ver: ver, w: w, c: c}, nil
}

// read returns the customer's value, from the client-side cache when
// cached is true (reporting whether it was a hit).
func (b *Backend) read(ctx context.Context, customer string, cached bool) (v value, hit bool, err error) {
	if b.closed.Load() {
		return value{}, false, b.Err()
	}
	sh := b.shard(customer)
	tok := b.token(sh)
	// ToStaticTTL: a miss sends CLIENT CACHING YES and HMGET, without
	// rueidis's MULTI, PTTL, EXEC wrapper (5 commands), which only caps
	// the entry by the key's expiry: a customer's key has none.
	var res rueidis.RedisResult
	for try := 0; ; try++ {
		if cached {
			res = b.client.DoCache(ctx, b.client.B().Hmget().Key(key(customer)).Field("v", "d", "s", "w").Cache().ToStaticTTL(), b.cfg.CacheTTL)
		} else {
			res = b.client.Do(ctx, b.client.B().Hmget().Key(key(customer)).Field("v", "d", "s", "w").Build())
		}
		if try > 0 || !retryable(ctx, res.Error()) {
			break
		}
	}
	msgs, err := res.ToArray()
	b.observe(err)
	if err != nil {
		return value{}, false, b.kind(err, "cannot read customer state")
	}
	v, err = b.parse(customer, msgs, !cached)
	if err != nil {
		return value{}, false, parseErr(err)
	}
	if cached && !v.own {
		b.markFresh(sh, tok, customer, v, res.CachePTTL())
	}
	return v, res.IsCacheHit(), nil
}

// parseErr wraps an error of parse: a customer written with other
// mappings keeps its kind (ErrMismatch: retrying never helps), anything
// else unexpected in the answer is ErrUnavailable.
func parseErr(err error) error {
	if errors.Is(err, state.ErrMismatch) {
		return err
	}
	return &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("cannot read customer state: %w", err)}
}

// mismatch is the error of a customer stored with the mappings digest d.
func (b *Backend) mismatch(d string) error {
	return &state.Error{Kind: state.ErrMismatch, Err: fmt.Errorf("cannot read customer state: the customer was written with other mappings (fingerprint %.12s, ours %.12s): serve the bundle it was written with, or migrate the state (nba state export with the old bundle, import with the new)", d, b.digest)}
}

// kind wraps a client error as an error of a state kind.
func (b *Backend) kind(err error, format string, args ...any) error {
	if isOOM(err) {
		return &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf(format+": %w (%w)", append(args, ErrFull, err)...)}
	}
	return &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf(format+": %w", append(args, err)...)}
}

// Load fills v with the customer's state. When Redis does not answer, it
// fills v from the last value this process had for the customer, if any,
// and returns found true with the ErrUnavailable error: the caller marks
// its answer stale.
func (b *Backend) Load(ctx context.Context, customer []byte, v *state.View) (bool, error) {
	if c, ok := b.fresh(customer); ok {
		b.cacheHits.Add(1)
		b.m.View(c, b.asOf.Load(), v)
		return c != nil, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.ReadTimeout)
		defer cancel()
	}
	id := string(customer)
	val, hit, err := b.read(ctx, id, true)
	if err != nil {
		b.stale.Add(1)
		if e, ok := b.shard(id).get(id); ok {
			b.m.View(e.c, b.asOf.Load(), v)
			return true, err
		}
		b.m.View(nil, b.asOf.Load(), v)
		return false, err
	}
	if hit {
		b.cacheHits.Add(1)
	} else {
		b.cacheMisses.Add(1)
	}
	b.m.View(val.c, b.asOf.Load(), v)
	return val.c != nil, nil
}

// Prefetch reads the customers not marked fresh through the client-side
// cache in one pipelined round trip per Redis node, so that their Loads
// that follow answer locally: a batch of cold customers costs about one
// round trip instead of one each. Without a deadline in ctx it is bounded
// by Config.WriteTimeout (a bulk read). It returns the first error; the
// customers it concerns are read again by their Load.
func (b *Backend) Prefetch(ctx context.Context, customers []string) error {
	if b.closed.Load() {
		return b.Err()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.WriteTimeout)
		defer cancel()
	}
	ids := make([]string, 0, len(customers))
	toks := make([]readToken, 0, len(customers))
	cmds := make([]rueidis.CacheableTTL, 0, len(customers))
	seen := make(map[string]bool, len(customers))
	for _, c := range customers {
		if seen[c] {
			continue
		}
		seen[c] = true
		if _, ok := b.freshString(c); ok {
			continue
		}
		ids = append(ids, c)
		toks = append(toks, b.token(b.shard(c)))
		cmds = append(cmds, rueidis.CT(b.client.B().Hmget().Key(key(c)).Field("v", "d", "s", "w").Cache().ToStaticTTL(), b.cfg.CacheTTL))
	}
	if len(cmds) == 0 {
		return nil
	}
	var first error
	for i, res := range b.client.DoMultiCache(ctx, cmds...) {
		msgs, err := res.ToArray()
		b.observe(err)
		if err != nil {
			if first == nil {
				first = b.kind(err, "cannot read customer state")
			}
			continue
		}
		if !res.IsCacheHit() {
			b.cacheMisses.Add(1)
		}
		v, err := b.parse(ids[i], msgs, false)
		if err != nil {
			if first == nil {
				first = parseErr(err)
			}
			continue
		}
		if !v.own {
			b.markFresh(b.shard(ids[i]), toks[i], ids[i], v, res.CachePTTL())
		}
	}
	return first
}

// View is Load without a context; an outage reads as the last value held.
func (b *Backend) View(customer []byte, v *state.View) bool {
	found, _ := b.Load(context.Background(), customer, v)
	return found
}

// write applies one customer's records, in order, atomically.
func (b *Backend) write(ctx context.Context, customer string, recs []*state.Record) (dups int, err error) {
	mu := &b.writers[maphash.String(b.seed, customer)%uint64(len(b.writers))]
	mu.Lock()
	defer mu.Unlock()
	cur, hit, err := b.read(ctx, customer, true)
	if err != nil {
		return 0, err
	}
	verified := !hit
	asOf := b.asOf.Load()
	for attempt := 0; attempt < b.cfg.MaxRetries; attempt++ {
		next, n := cur.c, 0
		var sum state.Result
		var aerr error
		for _, r := range recs {
			nx, res, err := b.m.Apply(next, r, asOf)
			if err != nil {
				aerr = err
				break
			}
			if res.Duplicate {
				n++
			}
			next = nx
			sum.Journeys += res.Journeys
			sum.HistoryEvicted += res.HistoryEvicted
			sum.KeysEvicted += res.KeysEvicted
			sum.JourneysEvicted += res.JourneysEvicted
			sum.IDsEvicted += res.IDsEvicted
			sum.Dropped += res.Dropped
		}
		// With WaitReplicas, a duplicate (a retry of a write whose
		// answer was lost, maybe before its WAIT) or a no-op is stored
		// again, unchanged but as a new write, and acknowledged only
		// after WAIT: replication is in order, so replicas that have it
		// have the first write too. Without this, a retry after a failed
		// WAIT was acknowledged at once.
		rewrite := aerr == nil && next == cur.c && cur.c != nil && b.cfg.WaitReplicas > 0
		if aerr != nil || next == cur.c && !rewrite {
			// Nothing to write: a refusal or a no-op decided on a cached
			// value is checked against the stored one first.
			if !verified && (aerr != nil || n < len(recs)) {
				fresh, _, err := b.read(ctx, customer, false)
				if err != nil {
					return 0, err
				}
				verified = true
				if fresh.w != cur.w || fresh.ver != cur.ver {
					cur = fresh
					continue
				}
			}
			if aerr != nil {
				if errors.Is(aerr, state.ErrConflict) {
					b.conflicts.Add(1)
				}
				return 0, aerr
			}
			b.dups.Add(uint64(n))
			return n, nil
		}
		val := b.m.AppendCustomer(nil, next)
		ok, w, other, err := b.cas(ctx, customer, cur, val)
		if err != nil {
			return 0, err
		}
		if ok {
			b.remember(customer, entry{ver: cur.ver + 1, w: w, base: cur.w, c: next, own: time.Now().UnixNano()})
			b.dups.Add(uint64(n))
			b.journeys.Add(uint64(sum.Journeys))
			b.histEvicted.Add(uint64(sum.HistoryEvicted))
			b.keysEvicted.Add(uint64(sum.KeysEvicted))
			b.journEvicted.Add(uint64(sum.JourneysEvicted))
			b.idsEvicted.Add(uint64(sum.IDsEvicted))
			b.dropped.Add(uint64(sum.Dropped))
			return n, nil
		}
		b.retries.Add(1)
		cur, verified = other, true
	}
	b.conflicts.Add(1)
	return 0, &state.Error{Kind: state.ErrConflict, Err: fmt.Errorf("cannot write customer state: %d concurrent changes won", b.cfg.MaxRetries)}
}

// cas runs the compare-and-set script of val on base (and WAIT on the
// same connection when configured): ok and the write's nonce, or the
// stored value that won.
func (b *Backend) cas(ctx context.Context, customer string, base value, val []byte) (ok bool, w string, cur value, err error) {
	k := key(customer)
	args := b.casArgs(base, val)
	w = args[4]
	// Commands are recycled once sent: build one per send.
	evalsha := func() rueidis.Completed {
		return b.client.B().Evalsha().Sha1(casSHA).Numkeys(1).Key(k).Arg(args...).Build()
	}
	eval := func() rueidis.Completed {
		return b.client.B().Eval().Script(casScript).Numkeys(1).Key(k).Arg(args...).Build()
	}
	var res rueidis.RedisResult
	for try := 0; ; try++ {
		if b.cfg.WaitReplicas > 0 {
			res, err = b.casWait(ctx, evalsha, eval)
		} else {
			res = b.client.Do(ctx, evalsha())
			if e, isErr := rueidis.IsRedisErr(res.Error()); isErr && e.IsNoScript() {
				res = b.client.Do(ctx, eval())
			}
		}
		if err == nil {
			err = res.Error()
		}
		// A connection found broken (a server restarted since its last
		// use) is replaced by the next call: send the same
		// compare-and-set once more, which is safe (see casScript).
		if !resend(ctx, err, try) {
			break
		}
		err = nil
	}
	// A WAIT that fell short answers for a script that ran: the script's
	// own answer says whether the write was applied.
	short := errors.Is(err, ErrReplicasShort)
	if short {
		b.observe(nil)
	} else {
		b.observe(err)
	}
	if err != nil && !short {
		return false, "", value{}, b.kind(err, "cannot write customer state")
	}
	n, err2 := res.AsInt64()
	if err2 == nil && n == 2 {
		return false, "", value{}, state.ErasedErrorf(customer)
	}
	if err2 == nil && n == 1 {
		if b.full.Load() != nil {
			b.full.Store(nil) // Redis takes writes again
		}
		if short {
			return false, "", value{}, &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("cannot write customer state: %w", err)}
		}
		return true, w, value{}, nil
	}
	msgs, err := res.ToArray()
	if err == nil {
		cur, err = b.parse(customer, msgs, true)
	}
	if errors.Is(err, state.ErrMismatch) {
		return false, "", value{}, err
	}
	if err != nil {
		return false, "", value{}, &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("cannot write customer state: %w", err)}
	}
	return false, "", cur, nil
}

// casArgs are the script's arguments for one write of val on base, with
// a nonce of its own (sent unchanged when the same write is retried).
func (b *Backend) casArgs(base value, val []byte) []string {
	nonce := b.nonce + strconv.FormatUint(b.writes.Add(1), 36)
	return []string{strconv.FormatUint(base.ver, 10), strconv.FormatUint(base.ver+1, 10), b.digest, rueidis.BinaryString(val), nonce, base.w}
}

// casWait sends the script and WAIT in one DoMulti: both go to one
// pooled connection, and WAIT counts the replicas that have that
// connection's writes (a WAIT sent alone would go to another connection
// and wait for nothing).
func (b *Backend) casWait(ctx context.Context, evalsha, eval func() rueidis.Completed) (rueidis.RedisResult, error) {
	wait := func() rueidis.Completed {
		return b.client.B().Wait().Numreplicas(int64(b.cfg.WaitReplicas)).Timeout(b.cfg.WaitTimeout.Milliseconds()).Build()
	}
	rs := b.client.DoMulti(ctx, evalsha(), wait())
	if e, isErr := rueidis.IsRedisErr(rs[0].Error()); isErr && e.IsNoScript() {
		rs = b.client.DoMulti(ctx, eval(), wait())
	}
	if rs[0].Error() != nil {
		return rs[0], nil
	}
	n, err := rs[1].AsInt64()
	if err != nil {
		return rs[0], err
	}
	if int(n) < b.cfg.WaitReplicas {
		return rs[0], fmt.Errorf("%d of %d replicas acknowledged within %v: %w", n, b.cfg.WaitReplicas, b.cfg.WaitTimeout, ErrReplicasShort)
	}
	return rs[0], nil
}

// writeAll validates every item first (nothing written on an error), then
// writes each customer's records in the order given.
func writeAll[T any](b *Backend, what string, items []T, build func(T) (state.Record, error), customer func(T) string) (int, error) {
	dups, _, err := writeRecords(b, what, items, build, customer, false)
	return dups, err
}

// writeEvents is writeAll for events: one that changes nothing (no mapped
// change, no journey move) is neither written nor remembered; applied
// reports how many were.
func writeEvents(b *Backend, es []state.Event) (dups, applied int, err error) {
	dups, kept, err := writeRecords(b, "apply event", es, b.m.EventRecord, eventOf, true)
	return dups, kept - dups, err
}

// writeRecords is writeAll; with events, records that change nothing are
// skipped. kept counts the records written or found duplicates.
func writeRecords[T any](b *Backend, what string, items []T, build func(T) (state.Record, error), customer func(T) string, events bool) (dups, kept int, err error) {
	recs := make([]state.Record, len(items))
	for i, x := range items {
		var err error
		if recs[i], err = build(x); err != nil {
			return 0, 0, &state.Error{Kind: state.ErrInvalid, Err: fmt.Errorf("cannot %s %d: %w", what, i, err)}
		}
	}
	if err := b.Err(); err != nil && b.closed.Load() {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
	defer cancel()
	var order []string
	by := map[string][]*state.Record{}
	for i, x := range items {
		if events && !recs[i].Changes() {
			continue // an event that changes nothing: not written, its id not remembered (as on the embedded store)
		}
		c := customer(x)
		if by[c] == nil {
			order = append(order, c)
		}
		by[c] = append(by[c], &recs[i])
		kept++
	}
	for _, c := range order {
		n, err := b.write(ctx, c, by[c])
		if err != nil {
			if errors.Is(err, state.ErrUnavailable) {
				b.unavailable.Add(1)
			}
			return dups, kept, err
		}
		dups += n
	}
	return dups, kept, nil
}

func contactOf(c state.Contact) string       { return c.Customer }
func eventOf(e state.Event) string           { return e.Customer }
func journeyOf(u state.JourneyUpdate) string { return u.Customer }

// RecordContact records contacts (impressions, outcomes).
func (b *Backend) RecordContact(cs ...state.Contact) error {
	n, err := writeAll(b, "record contact", cs, b.m.ContactRecord, contactOf)
	if err == nil {
		b.contacts.Add(uint64(len(cs) - n))
	}
	return err
}

// RecordContactOnce records c and reports whether it was a duplicate.
func (b *Backend) RecordContactOnce(c state.Contact) (bool, error) {
	n, err := writeAll(b, "record contact", []state.Contact{c}, b.m.ContactRecord, contactOf)
	if err == nil && n == 0 {
		b.contacts.Add(1)
	}
	return n > 0, err
}

// ApplyEvent applies profile events.
func (b *Backend) ApplyEvent(es ...state.Event) error {
	_, applied, err := writeEvents(b, es)
	if err == nil {
		b.events.Add(uint64(applied))
	}
	return err
}

// ApplyEventOnce applies e and reports whether it was a duplicate.
func (b *Backend) ApplyEventOnce(e state.Event) (bool, error) {
	n, applied, err := writeEvents(b, []state.Event{e})
	if err == nil {
		b.events.Add(uint64(applied))
	}
	return n > 0, err
}

// Reserve makes reservations of exact caps: per customer, one
// compare-and-set that checks the caps against the stored value (a
// refusal decided on a cached value is checked against Redis first).
func (b *Backend) Reserve(rs ...state.Reservation) error {
	_, err := writeAll(b, "reserve", rs, b.m.ReserveRecord, func(r state.Reservation) string { return r.Customer })
	return err
}

// SetJourney moves customers in journeys; a conditional move whose
// precondition the stored state does not meet fails with ErrConflict.
func (b *Backend) SetJourney(us ...state.JourneyUpdate) error {
	_, err := writeAll(b, "set journey", us, b.m.JourneyRecord, journeyOf)
	return err
}

// Slot resolves an overlay field name.
func (b *Backend) Slot(field string) (state.Slot, state.FieldType, bool) { return b.m.Slot(field) }

// Fields lists the overlay fields by slot.
func (b *Backend) Fields() []state.FieldInfo { return b.m.Fields() }

// MaxWindow is the longest contact-history window counted.
func (b *Backend) MaxWindow() time.Duration { return b.m.MaxWindow() }

// Compact hides overlay fields a snapshot with this as-of time resets.
// The as-of time is this process's: each process serving the same snapshot
// sets the same.
func (b *Backend) Compact(asOf time.Time) error {
	t := asOf.UnixNano()
	for {
		old := b.asOf.Load()
		if t <= old || b.asOf.CompareAndSwap(old, t) {
			return nil
		}
	}
}

// SetInSnapshot is a no-op: Redis bounds memory with its own policy.
func (b *Backend) SetInSnapshot(func(string) bool) {}

// Stats returns the counters of this process's calls.
func (b *Backend) Stats() state.Stats {
	st := b.m.Stats()
	st.Contacts, st.Events, st.Journeys = b.contacts.Load(), b.events.Load(), b.journeys.Load()
	st.Duplicates, st.Conflicts, st.Unavailable = b.dups.Load(), b.conflicts.Load(), b.unavailable.Load()
	st.HistoryEvicted, st.KeysEvicted, st.JourneysEvicted = b.histEvicted.Load(), b.keysEvicted.Load(), b.journEvicted.Load()
	st.IDsEvicted, st.ReplayDropped = b.idsEvicted.Load(), b.dropped.Load()
	return st
}

// Counters are the backend's own counters.
type Counters struct {
	CacheHits   uint64 `json:"cache_hits"`   // loads answered by the client-side cache
	CacheMisses uint64 `json:"cache_misses"` // loads (and prefetched customers) that took a round trip
	Retries     uint64 `json:"retries"`      // compare-and-set attempts lost to a concurrent write
	Stale       uint64 `json:"stale"`        // loads that failed (answered from the last value held, if any)
}

// Counters returns the backend's own counters.
func (b *Backend) Counters() Counters {
	return Counters{b.cacheHits.Load(), b.cacheMisses.Load(), b.retries.Load(), b.stale.Load()}
}

// The decoded customers, by (customer, version): the decode cache and the
// last-good copy served during an outage.
const numShards = 32

type entry struct {
	ver uint64
	w   string // the nonce of the write that stored c: a version repeats, w does not
	c   *state.Customer
	own int64 // when this process wrote it (unix ns); 0: read
	// base is, for this process's own write, the nonce of the value it
	// replaced: a read answering that value is older than c.
	base string
	// fresh is when the fresh mark ends (unix ns; 0: not fresh): until
	// then, and while flushes is still gen, c is what the client-side
	// cache holds for the customer and Load answers it without a call.
	// For an own write, gen is flushes when it was kept: its preference
	// ends at the next flush.
	fresh int64
	gen   uint64
}

type shard struct {
	mu sync.Mutex
	m  map[string]entry
	// invals counts the invalidations of the shard's customers (written
	// under mu): a read marks its value fresh only if none came since it
	// was sent.
	invals atomic.Uint64
}

// readToken is the invalidation state seen before a read was sent.
type readToken struct{ flushes, invals uint64 }

func (b *Backend) token(s *shard) readToken {
	return readToken{b.flushes.Load(), s.invals.Load()}
}

// fresh returns the customer's decoded value when it is marked fresh. It
// does not allocate (the map is looked up by the id's bytes).
func (b *Backend) fresh(customer []byte) (*state.Customer, bool) {
	if b.closed.Load() {
		return nil, false
	}
	s := &b.shards[maphash.Bytes(b.seed, customer)%numShards]
	s.mu.Lock()
	e, ok := s.m[string(customer)]
	s.mu.Unlock()
	return e.c, ok && b.isFresh(e)
}

// freshString is fresh for an id held as a string (Prefetch).
func (b *Backend) freshString(customer string) (*state.Customer, bool) {
	s := b.shard(customer)
	s.mu.Lock()
	e, ok := s.m[customer]
	s.mu.Unlock()
	return e.c, ok && b.isFresh(e)
}

// isFresh reports whether e's fresh mark still holds: set, not expired, and
// no flush since it was set.
func (b *Backend) isFresh(e entry) bool {
	return e.fresh != 0 && e.gen == b.flushes.Load() && time.Now().UnixNano() < e.fresh
}

// markFresh keeps v, read through the client-side cache with tok taken
// before the read was sent, as the customer's fresh value for the cache
// entry's remaining time (pttl ms, -1 or 0: Config.CacheTTL), unless an
// invalidation of the shard or a flush came in between: the value may
// then be older than what Redis holds, and the next Load reads again.
func (b *Backend) markFresh(s *shard, tok readToken, customer string, v value, pttl int64) {
	if !b.tracked {
		return
	}
	ttl := b.cfg.CacheTTL
	if pttl > 0 {
		ttl = min(ttl, time.Duration(pttl)*time.Millisecond)
	}
	until := time.Now().Add(ttl).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.flushes.Load() != tok.flushes || s.invals.Load() != tok.invals {
		return
	}
	e, ok := s.m[customer]
	if ok && e.w != v.w {
		// Another value was kept since this one was read (a concurrent
		// read or write): which is newer is not known, so neither is
		// marked and the next Load reads again.
		return
	}
	if !ok {
		s.evictOne(max(1, b.cfg.MaxCustomers/numShards))
	}
	// Cloned: customer may share memory with a request buffer (a map
	// assignment stores the key given, also over an existing one).
	s.m[strings.Clone(customer)] = entry{ver: v.ver, w: v.w, c: v.c, fresh: until, gen: tok.flushes}
}

// invalidate is the client's invalidation callback (on a connection's
// reader goroutine): it drops the fresh marks of the invalidated
// customers, or all of them (keys nil: a connection closed or a FLUSHALL).
// The decoded values stay, for the decode cache and the last-good copy.
func (b *Backend) invalidate(keys []rueidis.RedisMessage) {
	if keys == nil {
		b.flushes.Add(1)
		return
	}
	for i := range keys {
		if k, err := keys[i].ToString(); err == nil {
			b.invalidateKey(k)
		}
	}
}

// invalidateKey drops the fresh mark of the customer whose key k is; other
// keys are not the backend's reads.
func (b *Backend) invalidateKey(k string) {
	if !strings.HasPrefix(k, "{c:") || !strings.HasSuffix(k, "}") {
		return
	}
	id := k[3 : len(k)-1]
	s := b.shard(id)
	s.mu.Lock()
	s.invals.Add(1)
	if e, ok := s.m[id]; ok && (e.fresh != 0 || e.own != 0) {
		e.fresh, e.own = 0, 0
		s.m[id] = e
	}
	s.mu.Unlock()
}

// evictOne drops an arbitrary entry when the shard holds max (bounded,
// not LRU: a dropped one is read again on its next Load). Call with mu held.
func (s *shard) evictOne(max int) {
	if len(s.m) < max {
		return
	}
	for k := range s.m {
		delete(s.m, k)
		return
	}
}

func (b *Backend) shard(customer string) *shard {
	return &b.shards[maphash.String(b.seed, customer)%numShards]
}

func (s *shard) get(customer string) (entry, bool) {
	s.mu.Lock()
	e, ok := s.m[customer]
	s.mu.Unlock()
	return e, ok
}

// remember keeps e as the customer's decoded value. This process's own
// write (e.own set) always replaces what is held: its compare-and-set
// succeeded, so it is the newest value, even when its version is not
// larger (a key deleted and written again restarts at 1). A value read
// replaces what is held unless it is the same write (nonce w), which
// keeps the fresh mark; parse has already preferred a recent own write to
// an older read. A full shard drops an arbitrary entry (bounded, not LRU:
// a dropped one is decoded again on its next read).
func (b *Backend) remember(customer string, e entry) {
	s := b.shard(customer)
	max := max(1, b.cfg.MaxCustomers/numShards)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[customer]; ok && e.own == 0 && old.w == e.w && e.w != "" {
		return
	} else if !ok {
		s.evictOne(max)
	}
	if e.own != 0 {
		e.gen = b.flushes.Load() // the own-write preference ends at a flush (parse)
	}
	s.m[strings.Clone(customer)] = e // cloned as in markFresh
}

// forget drops the customer's decoded value if it is still the write w.
func (s *shard) forget(customer, w string) {
	s.mu.Lock()
	if e, ok := s.m[customer]; ok && e.w == w {
		delete(s.m, customer)
	}
	s.mu.Unlock()
}

// digest identifies the mappings and snapshot fields values are encoded
// for (fields are stored by slot).
func digest(cfg state.Config) string {
	fs := slices.Clone(cfg.SnapshotFields)
	slices.Sort(fs)
	j, _ := json.Marshal(struct {
		M state.Mappings
		S []string
	}{cfg.Mappings, fs})
	h := sha256.Sum256(j)
	return hex.EncodeToString(h[:16])
}

// writeAttempts bounds the sends of one write that keeps failing on
// connections found broken. A server restart leaves every pipelined
// connection of a client broken until used: each then fails one call (EOF)
// and is replaced. rueidis keeps up to 4 per node (PipelineMultiplex 2, its
// default from 4 CPUs) and picks one at random per command, so the first
// write after a restart may meet several in turn.
const writeAttempts = 5

// resend reports whether a write that failed with err on attempt try (0:
// the first) is sent again: once on any connection that broke while ctx
// has time, and up to writeAttempts in all while the failures are
// connections found already closed (not a refused dial, not a timeout:
// Redis down or stalled is answered at once). Every write here is safe to
// send again (a nonce tells a retry from a new write).
func resend(ctx context.Context, err error, try int) bool {
	if !retryable(ctx, err) || try >= writeAttempts-1 {
		return false
	}
	return try == 0 || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// retryable reports whether err is a connection that broke (not a
// timeout, not a reply) while ctx still has time: worth one more try on
// a fresh connection.
func retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrReplicasShort) || !isNetErr(err) {
		return false
	}
	_, reply := rueidis.IsRedisErr(err)
	return !reply
}

// isNetErr reports whether err is the server not answering (a network
// error, a timeout, a closed client) rather than a reply.
func isNetErr(err error) bool {
	if err == nil || rueidis.IsRedisNil(err) || errors.Is(err, ErrReplicasShort) {
		return false
	}
	var e *rueidis.RedisError
	if errors.As(err, &e) {
		// A loading, read-only or failing-over server does not take writes.
		return e.IsLoading() || e.IsClusterDown() || e.IsTryAgain() || strings.HasPrefix(e.Error(), "READONLY")
	}
	return true
}

// parseURL is rueidis.ParseURL with an error that does not quote the URL
// (url.Parse's does, password included, and it reaches the log), and with
// the mistakes rueidis lets through refused by name: a query parameter it
// does not know (ignored there: a mistyped Cluster seed became a
// standalone connection), one that is not valid URL encoding (dropped
// there), an addr= that is not host[:port], and protocol=2 (RESP2 has no
// client-side caching, which the backend needs).
func parseURL(u string) (rueidis.ClientOption, error) {
	if err := checkURL(u); err != nil {
		return rueidis.ClientOption{}, fmt.Errorf("invalid URL: %w", err)
	}
	opt, err := rueidis.ParseURL(u)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = fmt.Errorf("invalid URL: %w", ue.Err)
	}
	return opt, err
}

// urlParams are the query parameters rueidis.ParseURL reads.
var urlParams = []string{"addr", "client_cache", "client_name", "db", "dial_timeout", "master_set", "max_retries", "protocol", "skip_verify", "write_timeout"}

// checkURL refuses what rueidis.ParseURL would take silently or explain
// in its own terms. Its errors quote no password.
func checkURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return nil // rueidis.ParseURL's error, without the URL, says it
	}
	if p.Scheme == "" {
		return errors.New("no scheme: want redis://host:port, rediss:// (TLS) or unix://")
	}
	if p.Fragment != "" || strings.HasSuffix(u, "#") {
		return errors.New("a fragment (#...) means nothing in a Redis URL")
	}
	pathDB := p.Scheme != "unix" && strings.Trim(p.Path, "/") != ""
	for pair := range strings.SplitSeq(p.RawQuery, "&") {
		if pair == "" {
			continue
		}
		rk, rv, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(rk)
		if err != nil {
			return fmt.Errorf("query parameter %q: not valid URL encoding", rk)
		}
		v, err := url.QueryUnescape(rv)
		if err != nil {
			return fmt.Errorf("query parameter %s: value %q is not valid URL encoding", k, rv)
		}
		if !slices.Contains(urlParams, k) {
			return fmt.Errorf("unknown query parameter %q (known: %s)", k, strings.Join(urlParams, ", "))
		}
		switch k {
		case "db":
			if pathDB {
				return fmt.Errorf("the database is named twice: in the path (%s) and by db=%s", p.Path, v)
			}
		case "master_set":
			if v == "" {
				return errors.New("query parameter master_set is empty: name the Sentinel master set")
			}
		case "addr":
			if err := checkAddr(v); err != nil {
				return fmt.Errorf("query parameter addr=%q: %w", v, err)
			}
		case "protocol":
			if v != "3" {
				return fmt.Errorf("query parameter protocol=%q: the state backend needs RESP3 (protocol=3, the default: client-side caching and its invalidations); Redis 6 or later speaks it", v)
			}
		}
	}
	return nil
}

// checkAddr checks a Cluster seed: host or host:port, port 1-65535.
func checkAddr(a string) error {
	host, port := a, ""
	if strings.HasPrefix(a, "[") || strings.Count(a, ":") == 1 {
		h, p, err := net.SplitHostPort(a)
		if err != nil {
			return errors.New("want host:port")
		}
		host, port = h, p
	}
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return errors.New("want host:port")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("want host:port with a port from 1 to 65535")
		}
	}
	return nil
}

// redact hides a password in a URL for messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
