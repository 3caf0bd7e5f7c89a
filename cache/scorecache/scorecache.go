// Package scorecache caches per-customer model outputs so that a visitor who
// comes back within a session is not scored again.
//
// An entry is keyed by everything its scores depend on: the customer, the
// snapshot version, the version of that customer's live overlay, and the
// model version. When any of them changes the old entry is simply never
// asked for again and ages out; there is no invalidation to get wrong.
//
// The cache is never the source of truth: Set may drop an entry under
// contention or by admission policy (ristretto's TinyLFU), and entries
// expire after Config.TTL. Keys are 64-bit hashes, so every entry keeps its
// full key and Get verifies it; a hash collision is a miss, never a wrong
// answer.
//
// Most visitors are seen once: caching their scores costs an allocation, a
// copy and garbage for nothing. A doorkeeper (as in TinyLFU) admits a
// customer's scores from the second Set for that customer on: the first only
// marks the customer in a bitset, without allocating. A returning visitor
// is then scored twice before the cache serves them (Config.AdmitFirst
// restores caching on first sight).
//
// A Cache is safe for concurrent use. Get does not allocate (ristretto
// replaces a 512-byte read-buffer stripe once per 64 Gets it hands to its
// admission policy, far below one allocation per Get); Set allocates
// one entry (it copies the key and the scores, so borrowed memory may be
// passed in).
package scorecache

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Config sizes a Cache. Zero fields take the documented defaults.
type Config struct {
	// MaxBytes is the memory budget of the cached entries in bytes,
	// counting the key bytes, 8 bytes per score and entryOverhead per entry.
	// Default 64 MiB.
	MaxBytes int64
	// MaxEntries is the number of entries expected when the cache is full;
	// it sizes the admission counters (10 per entry, about 1 byte each).
	// Default MaxBytes/256.
	MaxEntries int64
	// TTL is how long an entry lives: about a session. Default 30 minutes;
	// negative means no expiry.
	TTL time.Duration
	// MaxScores is the longest score vector accepted; longer ones are not
	// cached (counted in Stats.SetsTooLarge). Default 4096.
	MaxScores int
	// AdmitFirst caches a customer's scores on the first Set; by default
	// the doorkeeper lets only customers seen before in.
	AdmitFirst bool
}

// entryOverhead is the estimated fixed cost of one entry in bytes: the entry
// struct, its slice and string headers, and ristretto's bookkeeping.
const entryOverhead = 160

// Key is everything a cached score vector depends on.
type Key struct {
	Customer string // customer id
	Snapshot string // feature snapshot version
	Overlay  uint64 // version of the customer's live overlay
	Model    string // model version
}

// entry is an immutable cached value with its full key.
type entry struct {
	key     string // Customer + Snapshot + Model, back to back
	custLen int32
	snapLen int32
	overlay uint64
	scores  []float64
}

func (e *entry) matches(k *Key) bool {
	c, s := int(e.custLen), int(e.snapLen)
	return e.overlay == k.Overlay && len(e.key) == c+s+len(k.Model) &&
		e.key[:c] == k.Customer && e.key[c:c+s] == k.Snapshot && e.key[c+s:] == k.Model
}

// Stats are the counters of a Cache, for metrics.
type Stats struct {
	Hits         uint64 `json:"hits"`           // Get found the key
	Misses       uint64 `json:"misses"`         // Get did not find it (collisions included)
	Collisions   uint64 `json:"collisions"`     // Get found another key under the same hash
	Sets         uint64 `json:"sets"`           // Set calls
	SetsDropped  uint64 `json:"sets_dropped"`   // Set dropped under contention (buffer full)
	SetsRejected uint64 `json:"sets_rejected"`  // entries refused by the admission policy
	SetsTooLarge uint64 `json:"sets_too_large"` // score vectors longer than MaxScores
	SetsDeferred uint64 `json:"sets_deferred"`  // first sight of a customer: marked by the doorkeeper, not cached
	Evicted      uint64 `json:"evicted"`        // entries evicted to make room
	CostAdded    uint64 `json:"cost_added"`     // bytes admitted
	CostEvicted  uint64 `json:"cost_evicted"`   // bytes evicted
}

// Cache is a bounded, concurrent cache of score vectors.
type Cache struct {
	c         *ristretto.Cache[uint64, *entry]
	seed      maphash.Seed
	ttl       time.Duration
	maxScores int
	collide   bool // tests: every key hashes alike

	// door is the doorkeeper's bitset of customers seen (nil with
	// AdmitFirst); marks counts the bits set since it was last cleared,
	// which happens after doorLimit marks, so that it forgets.
	door      []atomic.Uint64
	marks     atomic.Int64
	doorLimit int64

	hits, misses, collisions, sets, dropped, tooLarge, deferred atomic.Uint64
}

// New validates cfg and returns an empty Cache. Close it when done.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = max(cfg.MaxBytes/256, 1)
	}
	if cfg.TTL == 0 {
		cfg.TTL = 30 * time.Minute
	}
	if cfg.MaxScores == 0 {
		cfg.MaxScores = 4096
	}
	if cfg.MaxBytes < 0 || cfg.MaxEntries < 0 || cfg.MaxScores < 0 {
		return nil, errors.New("invalid score cache config: sizes must not be negative")
	}
	if cfg.MaxBytes < entryOverhead {
		return nil, fmt.Errorf("invalid score cache config: MaxBytes=%d is smaller than one entry", cfg.MaxBytes)
	}
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, *entry]{
		NumCounters:        10 * cfg.MaxEntries,
		MaxCost:            cfg.MaxBytes,
		BufferItems:        64, // the value ristretto recommends
		Metrics:            true,
		IgnoreInternalCost: true, // entryOverhead accounts for it
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create score cache: %w", err)
	}
	ttl := cfg.TTL
	if ttl < 0 {
		ttl = 0 // ristretto: no expiry
	}
	c := &Cache{c: rc, seed: maphash.MakeSeed(), ttl: ttl, maxScores: cfg.MaxScores}
	if !cfg.AdmitFirst {
		// 8 bits per expected entry (a power of two, at least 4096):
		// cleared after MaxEntries marks, it holds at most one in eight
		// bits set, so at most one first sight in eight is let in.
		bits := uint64(4096)
		for bits < 8*uint64(cfg.MaxEntries) && bits < 1<<32 {
			bits <<= 1
		}
		c.door = make([]atomic.Uint64, bits/64)
		c.doorLimit = int64(bits / 8)
	}
	return c, nil
}

// admit is the doorkeeper: it reports whether the customer was marked
// before, and marks them.
func (c *Cache) admit(customer string) bool {
	if c.door == nil {
		return true
	}
	w, bit := c.doorBit(customer)
	if w.Load()&bit != 0 {
		return true
	}
	w.Or(bit)
	if c.marks.Add(1) >= c.doorLimit {
		// Forget everyone; concurrent marks may be lost, which only
		// defers one more Set.
		c.marks.Store(0)
		for i := range c.door {
			c.door[i].Store(0)
		}
	}
	return false
}

// doorBit returns the doorkeeper's word and bit for a customer.
func (c *Cache) doorBit(customer string) (*atomic.Uint64, uint64) {
	h := maphash.String(c.seed, customer)
	return &c.door[(h>>6)&uint64(len(c.door)-1)], uint64(1) << (h & 63)
}

// seen reports whether the doorkeeper has marked the customer.
func (c *Cache) seen(customer string) bool {
	w, bit := c.doorBit(customer)
	return w.Load()&bit != 0
}

// hash combines per-field hashes (maphash.String is much cheaper than
// streaming the fields through a maphash.Hash); rotations keep fields from
// commuting. Quality only matters for spread: Get verifies the full key.
func (c *Cache) hash(k *Key) uint64 {
	if c.collide {
		return 42
	}
	h := maphash.String(c.seed, k.Customer)
	h = bits.RotateLeft64(h, 21) ^ maphash.String(c.seed, k.Snapshot)
	h = bits.RotateLeft64(h, 21) ^ maphash.String(c.seed, k.Model)
	h = (h ^ k.Overlay) * 0x9e3779b97f4a7c15
	return h ^ h>>29
}

// Get returns the scores cached under k. The returned slice is shared and
// immutable: the caller must not modify it. Get does not allocate.
func (c *Cache) Get(k Key) ([]float64, bool) {
	if c.door != nil && !c.seen(k.Customer) {
		// Never Set since the doorkeeper last forgot: a first visit,
		// settled by one bit instead of a lookup. (An entry Set before
		// the doorkeeper forgot is missed once; the Set that follows
		// marks the customer again.)
		c.misses.Add(1)
		return nil, false
	}
	e, ok := c.c.Get(c.hash(&k))
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	if !e.matches(&k) {
		c.collisions.Add(1)
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return e.scores, true
}

// Set caches a copy of scores under k. It reports whether the entry was
// queued: not on the doorkeeper's first sight of k.Customer; even then the admission policy may refuse it, so a Get right
// after a Set may miss.
func (c *Cache) Set(k Key, scores []float64) bool {
	c.sets.Add(1)
	if len(scores) > c.maxScores {
		c.tooLarge.Add(1)
		return false
	}
	if !c.admit(k.Customer) {
		c.deferred.Add(1)
		return false
	}
	e := &entry{
		key:     k.Customer + k.Snapshot + k.Model, // one copy of all three
		custLen: int32(len(k.Customer)),
		snapLen: int32(len(k.Snapshot)),
		overlay: k.Overlay,
		scores:  append([]float64(nil), scores...),
	}
	cost := int64(len(e.key)) + 8*int64(len(scores)) + entryOverhead
	if !c.c.SetWithTTL(c.hash(&k), e, cost, c.ttl) {
		c.dropped.Add(1)
		return false
	}
	return true
}

// Wait blocks until the queued Sets are applied. It is meant for tests and
// warm-up, not for the request path. A nil Cache (the score cache is off)
// has nothing to wait for.
func (c *Cache) Wait() {
	if c != nil {
		c.c.Wait()
	}
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	m := c.c.Metrics
	return Stats{
		Hits:         c.hits.Load(),
		Misses:       c.misses.Load(),
		Collisions:   c.collisions.Load(),
		Sets:         c.sets.Load(),
		SetsDropped:  c.dropped.Load(),
		SetsRejected: m.SetsRejected(),
		SetsTooLarge: c.tooLarge.Load(),
		SetsDeferred: c.deferred.Load(),
		Evicted:      m.KeysEvicted(),
		CostAdded:    m.CostAdded(),
		CostEvicted:  m.CostEvicted(),
	}
}

// Close stops the cache's goroutines and releases its entries. The Cache
// must not be used afterwards.
func (c *Cache) Close() { c.c.Close() }
