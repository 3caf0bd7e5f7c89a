package state

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// IdentityBackend is what Identities needs from a state backend besides
// Backend: single identity records written atomically per profile (as
// every other write), a profile's stored value, and the identifier index
// (identifier key → profile id). The index is a pointer that Identities
// keeps right; the truth of which identifiers a profile holds is in the
// profile's own value, so the embedded store rebuilds its index from the
// values and a shared store's index is repaired by the next link that meets
// a stale entry.
type IdentityBackend interface {
	Backend
	// IdentityModel returns the model the backend applies.
	IdentityModel() *Model
	// WriteRecord writes one record to its customer, atomically with the
	// read of the customer's value it is applied to, and reports a
	// duplicate (nothing to change).
	WriteRecord(ctx context.Context, r *Record) (dup bool, err error)
	// Get returns the customer's stored value (nil: none), not older than
	// the last write of this process.
	Get(ctx context.Context, customer string) (*Customer, error)
	// IndexGet returns the profile an identifier key points to ("":
	// none); cached allows a client-side cached read (the decide path).
	// It must not keep key (it may be in the caller's reused buffer).
	IndexGet(ctx context.Context, key string, cached bool) (string, error)
	// IndexClaim points key at customer unless it points elsewhere, and
	// returns where it points afterwards.
	IndexClaim(ctx context.Context, key, customer string) (string, error)
	// IndexSet points key at customer.
	IndexSet(ctx context.Context, key, customer string) error
	// IndexDelete removes key if it points at customer.
	IndexDelete(ctx context.Context, key, customer string) error
}

// Identities links identifiers into profiles and merges profiles over an
// IdentityBackend (identity_model.go describes the merge protocol). Every
// change is a write to one profile, atomic on every backend; a merge is
// three of them, each idempotent, and whoever meets an unfinished merge
// finishes it, so concurrent links, writes and crashes lose nothing. It
// wraps the backend's writes and reads to follow merged profiles (Backend).
// Safe for concurrent use.
type Identities struct {
	b   IdentityBackend
	m   *Model
	key []byte
	cfg atomic.Pointer[compiledIdentity]
	mu  sync.Mutex // serialises this process's links (other processes race through the backend's atomic writes)
	now atomic.Pointer[func() time.Time]

	links, merges, unmerges, conflicts, moved atomic.Uint64
}

// NewIdentities returns the identity layer over b; key keys hashed
// namespaces (at least 16 bytes when a bundle hashes one). It is off (every
// customer id its own profile) until Configure.
func NewIdentities(b IdentityBackend, key []byte) *Identities {
	return &Identities{b: b, m: b.IdentityModel(), key: slices.Clone(key)}
}

// Configure sets the identity configuration of the bundle served (nil: off).
func (x *Identities) Configure(c *IdentityConfig) error {
	if c == nil {
		x.cfg.Store(nil)
		return nil
	}
	ci, err := compileIdentity(c, x.key)
	if err != nil {
		return err
	}
	x.cfg.Store(ci)
	return nil
}

// SetClock sets the clock ResolveID and Resolve expire identifiers by
// (their namespace's ttl); nil: time.Now.
func (x *Identities) SetClock(now func() time.Time) {
	if now == nil {
		x.now.Store(nil)
		return
	}
	x.now.Store(&now)
}

func (x *Identities) clock() time.Time {
	if f := x.now.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// Enabled reports whether a configuration is set.
func (x *Identities) Enabled() bool { return x.cfg.Load() != nil }

// Backend returns the wrapped backend.
func (x *Identities) Backend() IdentityBackend { return x.b }

// IdentityStats are the identity layer's counters.
type IdentityStats struct {
	Links     uint64 `json:"links"`     // identify calls that linked
	Merges    uint64 `json:"merges"`    // profiles merged into another
	Unmerges  uint64 `json:"unmerges"`  // merges undone
	Conflicts uint64 `json:"conflicts"` // links refused: unique namespace
	Moved     uint64 `json:"moved"`     // writes redirected to the profile a merge kept
}

// Stats returns the counters.
func (x *Identities) Stats() IdentityStats {
	return IdentityStats{x.links.Load(), x.merges.Load(), x.unmerges.Load(), x.conflicts.Load(), x.moved.Load()}
}

// Link is the answer of Identify.
type Link struct {
	Customer string   // the canonical customer id
	Receipts []string // the merges this link made (for Unmerge)
}

type normID struct {
	r   *nsRule
	id  Identifier
	key string
}

func (ci *compiledIdentity) normalizeAll(ids map[string]string) ([]normID, error) {
	var out []normID
	for _, ns := range slices.Sorted(mapKeys(ids)) {
		r, v, blocked, err := ci.normalize(ns, ids[ns])
		if err != nil {
			return nil, err
		}
		if blocked {
			continue
		}
		// Cloned: the caller's strings may be borrowed from a request
		// buffer, and these are kept in the profile.
		id := Identifier{NS: strings.Clone(ns), Value: strings.Clone(v)}
		out = append(out, normID{r: r, id: id, key: id.Key()})
	}
	return out, nil
}

func (ci *compiledIdentity) rules() []nsLimit {
	out := make([]nsLimit, 0, len(ci.ns))
	for _, name := range slices.Sorted(mapKeys(ci.ns)) {
		r := ci.ns[name]
		out = append(out, nsLimit{ns: name, unique: r.unique, max: r.max, ttl: r.ttl})
	}
	return out
}

// Resolve returns the profile that the identifiers name: the primary
// identifier's value when given, else the first linked identifier's
// profile (namespaces in name order), following merges; "" when none is
// linked (an anonymous visitor not seen yet). It only reads: a map lookup
// on the embedded store, a client-side cached read on a shared one.
func (x *Identities) Resolve(ctx context.Context, ids map[string]string) (string, error) {
	ci := x.cfg.Load()
	if ci == nil {
		return "", invalid(errNoIdentity)
	}
	if v, ok := ids[ci.primary]; ok && ci.primary != "" && !ci.isBlocked(v) {
		if err := checkPrimary(v); err != nil {
			return "", invalidf("identifier %s: %w", ci.primary, err)
		}
		return v, nil
	}
	ns, err := ci.normalizeAll(ids)
	if err != nil {
		return "", err
	}
	for _, n := range ns {
		o, err := x.b.IndexGet(ctx, n.key, true)
		if err != nil {
			return "", err
		}
		if o == "" {
			continue
		}
		if n.r.ttl > 0 {
			if fresh, ok := x.expiredAt(o, n.key, n.r.ttl, x.clock().UnixNano()); ok {
				return fresh, nil
			}
		}
		return o, nil
	}
	return "", nil
}

// ResolveID resolves one identifier of a request (the decide, feedback and
// event paths): the primary namespace's value is the customer id itself;
// another identifier's linked profile, or, not linked yet, its anonymous
// profile (AnonymousID), which a later link merges. ok is false for a
// blocked value (it names nobody). It costs a map lookup on the embedded
// store and a client-side cached read on a shared one; the profile may
// have been merged since (reads and writes through Stitched follow).
func (x *Identities) ResolveID(ctx context.Context, ns, v string) (customer string, ok bool, err error) {
	return x.resolveID(ctx, ns, v, time.Time{})
}

// resolveID is ResolveID at time now: an identifier of a namespace with a
// ttl not used within it by now (its last link or write via it) names a
// fresh anonymous profile (FreshID), not the one it was linked to; that
// profile drops it at its next write, a link at once. A zero now reads the
// clock only when a ttl is to be checked (reading it costs as much as the
// rest on some machines).
func (x *Identities) resolveID(ctx context.Context, ns, v string, now time.Time) (customer string, ok bool, err error) {
	ci := x.cfg.Load()
	if ci == nil {
		return "", false, invalid(errNoIdentity)
	}
	if r := ci.ns[ns]; r != nil && r.primary && !ci.isBlocked(v) && len(v) <= 512 && checkPrimary(v) == nil {
		return v, true, nil
	}
	bp := keyBufs.Get().(*[]byte)
	defer keyBufs.Put(bp)
	r, key, blocked, err := ci.appendKey((*bp)[:0], ns, v)
	if err != nil || blocked {
		return "", false, err
	}
	// The key is in a pooled buffer: IndexGet does not keep it.
	k := unsafe.String(&key[0], len(key))
	o, err := x.b.IndexGet(ctx, k, true)
	if err != nil {
		return "", false, err
	}
	if o == "" {
		anon := AnonymousID(string(key))
		// Its anonymous profile may forward to a profile that dropped it
		// (its ttl, its namespace's max) whose index entry was lost (a
		// move between backends, a restart of the embedded store).
		if fresh, ok := x.expiredVia(anon, k, r.ttl); ok {
			return fresh, true, nil
		}
		return anon, true, nil
	}
	if r.ttl > 0 {
		if now.IsZero() {
			now = x.clock()
		}
		if fresh, ok := x.expiredAt(o, k, r.ttl, now.UnixNano()); ok {
			return fresh, true, nil
		}
	}
	return o, true, nil
}

// expiredVia returns the fresh anonymous profile of identifier key when its
// anonymous profile anon forwards to a profile that dropped it by its ttl.
func (x *Identities) expiredVia(anon, key string, ttl int64) (fresh string, ok bool) {
	v := views.Get().(*View)
	defer func() { *v = View{}; views.Put(v) }()
	if !x.b.View(unsafe.Slice(unsafe.StringData(anon), len(anon)), v) || v.c == nil {
		return "", false
	}
	to, merging := v.c.Moved()
	if to == "" || merging {
		return "", false
	}
	// Only what it remembers as dropped (by its ttl or its namespace's
	// max): a live identifier there resolves through the index.
	return x.expiredAt(to, key, 0, 0)
}

// expiredAt returns the fresh anonymous profile of identifier key, linked to
// customer, when its ttl ran out there by now (unix ns) or customer dropped
// it for that; ok false otherwise. It reads customer as the decide path
// does, without allocating unless the identifier expired.
func (x *Identities) expiredAt(customer, key string, ttl, now int64) (fresh string, ok bool) {
	if customer == "" {
		return "", false
	}
	v := views.Get().(*View)
	defer func() { *v = View{}; views.Put(v) }()
	if !x.b.View(unsafe.Slice(unsafe.StringData(customer), len(customer)), v) || v.c == nil || v.c.ident == nil {
		return "", false
	}
	if to, _ := v.c.Moved(); to != "" {
		return "", false
	}
	return v.c.ident.expired(key, ttl, now)
}

// Follow returns the profile customer's reads and writes reach: customer
// itself, or the profile it was merged into (or sealed to), following
// finished merges as a read does (a cached read on a shared backend), so
// that an answer names the profile whose state it used. A merge in
// progress is not finished here (Canonical does): its source still holds
// the state.
func (x *Identities) Follow(customer string) string {
	v := views.Get().(*View)
	defer func() { *v = View{}; views.Put(v) }()
	for range 8 {
		*v = View{}
		if !x.b.View(unsafe.Slice(unsafe.StringData(customer), len(customer)), v) || v.c == nil {
			return customer
		}
		to, merging := v.c.Moved()
		if to == "" || merging {
			return customer
		}
		customer = to
	}
	return customer
}

// views are the Views expiredAt reads in (one passed to a backend escapes).
var views = sync.Pool{New: func() any { return new(View) }}

// Via returns the provenance of a write named by identifier ns=v, for the
// Via of a Contact, Event, JourneyUpdate or Consent: its index key, "ns:"
// and the value as stored (hashed for a hashed namespace); "" for a blocked
// value. Only writes need it: it allocates.
func (x *Identities) Via(ns, v string) (string, error) {
	ci := x.cfg.Load()
	if ci == nil {
		return "", invalid(errNoIdentity)
	}
	_, stored, blocked, err := ci.normalize(ns, v)
	if err != nil || blocked {
		return "", err
	}
	return ns + ":" + stored, nil
}

// Canonical follows the merges of customer to the profile that holds its
// state now (customer itself when it was not merged).
func (x *Identities) Canonical(ctx context.Context, customer string) (string, error) {
	for range 8 {
		c, err := x.b.Get(ctx, customer)
		if err != nil {
			return "", err
		}
		to, merging := c.Moved()
		if to == "" {
			return customer, nil
		}
		if merging {
			if err := x.finish(ctx, customer, to, c.ident.receipt); err != nil && !errors.Is(err, errRetry) {
				return "", err
			}
			continue
		}
		customer = to
	}
	return "", &Error{Kind: ErrConflict, Err: fmt.Errorf("customer %q: merges do not settle", customer)}
}

var errRetry = errors.New("identity: retry")

// AnonymousID is the profile id of an anonymous profile first seen with an
// identifier: "~" and the identifier's key.
func AnonymousID(key string) string { return "~" + key }

// Identify links the identifiers into one profile and returns its
// canonical customer id: the primary identifier's value, or the profile
// one of them already belongs to, or a new anonymous profile. Profiles
// that the link joins are merged into it (Link.Receipts). A link that
// would put two values of a unique namespace into one profile is refused
// with an ErrConflict error wrapping ErrIdentityConflict, and nothing is
// changed. Blocked values are ignored; at and source are the link's
// provenance.
func (x *Identities) Identify(ctx context.Context, ids map[string]string, at time.Time, source string) (Link, error) {
	ci := x.cfg.Load()
	if ci == nil {
		return Link{}, invalid(errNoIdentity)
	}
	if err := checkTime(at); err != nil {
		return Link{}, invalidf("cannot link: %w", err)
	}
	ns, err := ci.normalizeAll(ids)
	if err != nil {
		return Link{}, err
	}
	if len(ns) == 0 {
		return Link{}, invalidf("cannot link: no identifier (every value is blocked or empty)")
	}
	source = strings.Clone(source)
	x.mu.Lock()
	defer x.mu.Unlock()
	var link Link
	for range 8 {
		err := x.identify(ctx, ci, ns, at, source, &link)
		if errors.Is(err, errRetry) {
			continue
		}
		if errors.Is(err, ErrIdentityConflict) {
			x.conflicts.Add(1)
		}
		if err == nil {
			x.links.Add(1)
		}
		return link, err
	}
	return link, &Error{Kind: ErrConflict, Err: errors.New("cannot link: concurrent links kept changing the profiles")}
}

func (x *Identities) identify(ctx context.Context, ci *compiledIdentity, ns []normID, at time.Time, source string, link *Link) error {
	// The profiles the identifiers belong to now.
	var owners []string
	primary := ""
	home := make([]string, len(ns)) // the anonymous profile of each identifier
	for i, n := range ns {
		if n.r.primary {
			primary = n.id.Value
		}
		o, err := x.b.IndexGet(ctx, n.key, false)
		if err != nil {
			return err
		}
		home[i] = AnonymousID(n.key)
		if n.r.ttl > 0 || o == "" {
			// Not used within its ttl, or dropped by a bound: the
			// identifier left the profile it was linked to and names a
			// fresh anonymous profile.
			var fresh string
			var ok bool
			if o == "" {
				fresh, ok = x.expiredVia(home[i], n.key, n.r.ttl)
			} else {
				fresh, ok = x.expiredAt(o, n.key, n.r.ttl, at.UnixNano())
			}
			if ok {
				if err := x.b.IndexDelete(ctx, n.key, o); err != nil {
					return err
				}
				if o, err = x.b.IndexClaim(ctx, n.key, fresh); err != nil {
					return err
				}
			}
		}
		if strings.HasPrefix(o, home[i]+"@") {
			home[i], o = o, "" // expired: its fresh profile is its anonymous one
		}
		cand := []string{o}
		if !n.r.primary {
			// Writes by this identifier before it was linked went to its
			// anonymous profile (ResolveID), which the link takes in;
			// sealed by an earlier link, it leads to that link's profile,
			// unless the identifier is linked elsewhere now (it expired
			// there, or was dropped by a bound): that forward is history.
			anon := home[i]
			c, err := x.b.Get(ctx, anon)
			if err != nil {
				return err
			}
			if to, _ := c.Moved(); c != nil && (o == "" || to == "") {
				cand = append(cand, anon)
			}
		}
		for _, o := range cand {
			if o == "" {
				continue
			}
			if o, err = x.Canonical(ctx, o); err != nil {
				return err
			}
			if !slices.Contains(owners, o) {
				owners = append(owners, o)
			}
		}
	}
	vals := map[string]*Customer{}
	for _, o := range owners {
		c, err := x.b.Get(ctx, o)
		if err != nil {
			return err
		}
		vals[o] = c
		if primary == "" {
			for _, id := range c.Identifiers() {
				if r := ci.ns[id.NS]; r != nil && r.primary {
					primary = o
				}
			}
		}
	}
	survivor := primary
	switch {
	case survivor != "":
		if _, ok := vals[survivor]; !ok {
			c, err := x.b.Get(ctx, survivor)
			if err != nil {
				return err
			}
			if to, _ := c.Moved(); to != "" {
				return fmt.Errorf("%w: %w", errRetry, x.settle(ctx, survivor))
			}
			vals[survivor] = c
		}
	case len(owners) > 0:
		survivor = slices.Min(owners)
	default:
		// A new anonymous profile, or where the anonymous profile of this
		// identifier went when it was merged (its identifier since
		// dropped by a bound).
		c, err := x.Canonical(ctx, home[0])
		if err != nil {
			return err
		}
		survivor = c
		if vals[survivor], err = x.b.Get(ctx, survivor); err != nil {
			return err
		}
	}
	// Unique namespaces: one value across everything linked.
	seen := map[string]string{}
	check := func(id Identifier) error {
		r := ci.ns[id.NS]
		if r == nil || !r.unique {
			return nil
		}
		if v, ok := seen[id.NS]; ok && v != id.Value {
			return &Error{Kind: ErrConflict, Err: fmt.Errorf("%w: the link would put two %s values into one profile", ErrIdentityConflict, id.NS)}
		}
		seen[id.NS] = id.Value
		return nil
	}
	if ci.primary != "" && !strings.HasPrefix(survivor, "~") {
		if err := check(Identifier{NS: ci.primary, Value: survivor}); err != nil {
			return err
		}
	}
	for _, c := range vals {
		for _, id := range c.Identifiers() {
			if err := check(id); err != nil {
				return err
			}
		}
	}
	for _, n := range ns {
		if err := check(n.id); err != nil {
			return err
		}
	}
	// Merge the others into the survivor, then link.
	for _, o := range owners {
		if o == survivor {
			continue
		}
		r, err := x.merge(ctx, ci, o, survivor, at)
		if err != nil {
			return err
		}
		link.Receipts = append(link.Receipts, r)
	}
	// Seal the anonymous profiles of the identifiers: a write that
	// resolved one before the link reaches it after (a stale cached
	// index, a request in flight) and follows the forward to the
	// survivor, instead of leaving state where no link looks again.
	for i, n := range ns {
		anon := home[i]
		if n.r.primary || anon == survivor || slices.Contains(owners, anon) {
			continue
		}
		if c, err := x.b.Get(ctx, anon); err != nil {
			return err
		} else if to, _ := c.Moved(); to != "" && to != survivor {
			continue // sealed by a link the identifier has left since (ttl, a bound)
		}
		rec := x.m.identityRecord(anon, at, identOp{op: identSeal, peer: survivor})
		if _, err := x.b.WriteRecord(ctx, &rec); err != nil {
			if KindOf(err) == ErrConflict {
				return errRetry // it got state, or another link sealed it elsewhere: merge it next round
			}
			return err
		}
	}
	op := identOp{op: identLink, rules: ci.rules()}
	for _, n := range ns {
		id := n.id
		id.Source = source
		op.ids = append(op.ids, id)
	}
	rec := x.m.identityRecord(survivor, at, op)
	if _, err := x.b.WriteRecord(ctx, &rec); err != nil {
		var mv *MovedError
		if errors.As(err, &mv) {
			return errRetry
		}
		return err
	}
	for _, n := range ns {
		o, err := x.b.IndexClaim(ctx, n.key, survivor)
		if err != nil {
			return err
		}
		if o != survivor {
			// Linked elsewhere meanwhile (another process), or a stale
			// entry of a merged profile: the next round merges or repairs.
			if c, err := x.Canonical(ctx, o); err == nil && c == survivor {
				if err := x.b.IndexSet(ctx, n.key, survivor); err != nil {
					return err
				}
				continue
			}
			return errRetry
		}
	}
	if err := x.repoint(ctx, survivor, vals[survivor]); err != nil {
		return err
	}
	link.Customer = survivor
	return nil
}

// repoint points the index entry of each identifier customer dropped by a
// bound (ttl or max) since its value before (nil: any it remembers) and
// still points at, at the fresh anonymous profile the identifier names
// since: its first anonymous profile forwards to customer, which it must
// no longer lead to. It reads the index once per identifier dropped.
func (x *Identities) repoint(ctx context.Context, customer string, before *Customer) error {
	now, err := x.b.Get(ctx, customer)
	if err != nil || now == nil || now.ident == nil {
		return err
	}
	for _, g := range now.ident.gone {
		if before != nil && before.ident != nil && slices.Contains(before.ident.gone, g) {
			continue
		}
		o, err := x.b.IndexGet(ctx, g.key, false)
		if err != nil {
			return err
		}
		if o != customer && o != "" {
			continue // linked elsewhere since, or repointed
		}
		if err := x.b.IndexDelete(ctx, g.key, customer); err != nil {
			return err
		}
		if _, err := x.b.IndexClaim(ctx, g.key, g.fresh); err != nil {
			return err
		}
	}
	return nil
}

// settle finishes a merge customer is part of, if any.
func (x *Identities) settle(ctx context.Context, customer string) error {
	_, err := x.Canonical(ctx, customer)
	return err
}

// merge merges profile from into profile into and returns the receipt.
func (x *Identities) merge(ctx context.Context, ci *compiledIdentity, from, into string, at time.Time) (string, error) {
	receipt := x.newReceipt(from)
	rec := x.m.identityRecord(from, at, identOp{op: identMark, peer: into, receipt: receipt})
	if _, err := x.b.WriteRecord(ctx, &rec); err != nil {
		var mv *MovedError
		if errors.As(err, &mv) {
			return "", fmt.Errorf("%w: %w", errRetry, x.settle(ctx, from))
		}
		return "", err
	}
	if err := x.finish(ctx, from, into, receipt); err != nil {
		return "", err
	}
	x.merges.Add(1)
	return receipt, nil
}

// newReceipt returns a new merge receipt for the absorbed profile from: a
// random nonce and from sealed with it (AES-CTR under a key derived from
// the identity key), in hex, so that a receipt carries no identifier in
// the clear (an anonymous profile's id holds one) while an unmerge still
// finds the profile. Without an identity key (no hashed namespace) the
// seal only obscures. The nonce makes every receipt unique; a forged one
// opens to a profile whose own receipt it is not, and is refused.
func (x *Identities) newReceipt(from string) string {
	var nonce [12]byte
	rand.Read(nonce[:])
	sealed := []byte(from)
	x.receiptStream(nonce[:]).XORKeyStream(sealed, sealed)
	return hex.EncodeToString(nonce[:]) + "." + hex.EncodeToString(sealed)
}

// receiptFrom returns the profiles a receipt may name: the one it seals,
// and for a receipt written before receipts were sealed (the profile id in
// hex), that one; none for a malformed receipt.
func (x *Identities) receiptFrom(receipt string) []string {
	dot := strings.LastIndexByte(receipt, '.')
	if dot < 0 {
		return nil
	}
	nonce, err1 := hex.DecodeString(receipt[:dot])
	b, err2 := hex.DecodeString(receipt[dot+1:])
	if err1 != nil || err2 != nil || len(nonce) != 12 || len(b) == 0 {
		return nil
	}
	legacy := string(b)
	x.receiptStream(nonce).XORKeyStream(b, b)
	return []string{string(b), legacy}
}

// receiptStream is the key stream that seals a receipt of nonce.
func (x *Identities) receiptStream(nonce []byte) cipher.Stream {
	k := sha256.Sum256(append([]byte("nba merge receipt\x00"), x.key...))
	blk, _ := aes.NewCipher(k[:]) // a 32-byte key never fails
	var iv [aes.BlockSize]byte
	copy(iv[:], nonce)
	return cipher.NewCTR(blk, iv[:])
}

// finish completes steps 2 and 3 of the merge of from into into by
// receipt (step 1 done); every step is idempotent.
func (x *Identities) finish(ctx context.Context, from, into, receipt string) error {
	c, err := x.b.Get(ctx, from)
	if err != nil {
		return err
	}
	if c == nil || c.ident == nil || c.ident.receipt != receipt {
		return errRetry // finished or undone by another
	}
	rules := x.absorbRules()
	var prev *Customer // into before the absorb: nil, every identifier it dropped is repointed
	if c.ident.mergingInto == into {
		if prev, err = x.b.Get(ctx, into); err != nil {
			return err
		}
		own := *c
		own.ident = c.ident.withoutMark()
		at := time.Now()
		rec := x.m.identityRecord(into, at, identOp{op: identAbsorb, peer: from, receipt: receipt, rules: rules, value: x.m.AppendCustomer(nil, &own)})
		if _, err := x.b.WriteRecord(ctx, &rec); err != nil {
			var mv *MovedError
			if errors.Is(err, ErrIdentityConflict) || errors.As(err, &mv) {
				// Refused: undo the mark so that from takes writes again.
				un := x.m.identityRecord(from, at, identOp{op: identUnmark, receipt: receipt})
				if _, err2 := x.b.WriteRecord(ctx, &un); err2 != nil {
					return err2
				}
				if mv != nil {
					return errRetry
				}
			}
			return err
		}
		fw := x.m.identityRecord(from, at, identOp{op: identForward, peer: into, receipt: receipt})
		if _, err := x.b.WriteRecord(ctx, &fw); err != nil {
			return err
		}
	}
	for _, id := range c.Identifiers() {
		if err := x.b.IndexSet(ctx, id.Key(), into); err != nil {
			return err
		}
	}
	return x.repoint(ctx, into, prev) // the absorb's bounds dropped some
}

// Unmerge undoes the merge of a receipt by provenance: the absorbed profile
// gets back the value it had before, with its identifiers, plus the writes
// made since the merge via one of its identifiers (Contact.Via); the
// survivor its value from before plus the other writes made since and the
// identifiers linked to it since. Writes the receipt did not log (past its
// bounds, or after a later merge) stay with the survivor, as do writes
// that land while the unmerge runs. With nothing written since, both
// values are byte for byte what they were.
func (x *Identities) Unmerge(ctx context.Context, receipt string) (Link, error) {
	froms := x.receiptFrom(receipt)
	if len(froms) == 0 {
		return Link{}, invalidf("cannot unmerge: malformed receipt")
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var stub *Customer
	var from string
	for _, f := range froms {
		c, err := x.b.Get(ctx, f)
		if err != nil {
			return Link{}, err
		}
		if c != nil && c.ident != nil && c.ident.receipt == receipt {
			stub, from = c, f
			break
		}
	}
	if stub == nil {
		// Neither the receipt nor a profile id in the error: both would
		// echo an identifier.
		return Link{}, &Error{Kind: ErrInvalid, Err: errors.New("cannot unmerge: the receipt is unknown or its merge was undone")}
	}
	if stub.ident.mergingInto != "" {
		if err := x.finish(ctx, from, stub.ident.mergingInto, receipt); err != nil {
			return Link{}, err
		}
		var err error
		if stub, err = x.b.Get(ctx, from); err != nil {
			return Link{}, err
		}
	}
	into := stub.ident.fwd
	// Writes do not take x.mu: the survivor's side is computed by the
	// model from the value it is applied to (unmergeOnce), so a write
	// landing between this read and that write (via either profile's
	// identifiers, which resolve to the survivor until the index is
	// repointed below) stays with the survivor instead of being replaced.
	// It is refused, nothing written, only when the writes it gives back
	// are no longer those read (the receipt's log changed): read again.
	var back []Identifier
	for attempt := 0; ; attempt++ {
		var err error
		back, err = x.unmergeOnce(ctx, receipt, from, into, stub)
		if err == nil {
			break
		}
		if !errors.Is(err, errRestoreRefused) || attempt == maxUnmergeAttempts-1 {
			return Link{}, err
		}
	}
	for _, id := range back {
		if err := x.b.IndexSet(ctx, id.Key(), from); err != nil {
			return Link{}, err
		}
	}
	x.unmerges.Add(1)
	return Link{Customer: from, Receipts: []string{receipt}}, nil
}

// maxUnmergeAttempts bounds the attempts of an unmerge whose survivor's
// side is refused (unmergeOnce).
const maxUnmergeAttempts = 4

// unmergeOnce reads the survivor into and writes the unmerge of receipt
// in two records: the survivor's (identUnmerge), which the model computes
// from the value it is applied to, so that a write landing between this
// read and that write stays with the survivor instead of being replaced;
// then the absorbed profile's value (from the stub, its value when the
// merge finished, and the writes its identifiers brought that the first
// record gave it), conditional on the stub being unchanged. It returns
// what goes back with the absorbed profile.
func (x *Identities) unmergeOnce(ctx context.Context, receipt, from, into string, stub *Customer) (back []Identifier, err error) {
	cur, err := x.b.Get(ctx, into)
	if err != nil {
		return nil, err
	}
	rules := x.absorbRules()
	_, absorbed, back, logged, err := x.m.unmergeSides(cur, receipt, from, stub.ident.saved, rules, -1)
	if err != nil {
		return nil, err
	}
	at := time.Now()
	ra := x.m.identityRecord(into, at, identOp{op: identUnmerge, peer: from, receipt: receipt, rules: rules, value: stub.ident.saved, logged: logged, expect: x.m.stateDigest(absorbed)})
	if _, err := x.b.WriteRecord(ctx, &ra); err != nil {
		if KindOf(err) == ErrConflict {
			return nil, &Error{Kind: ErrConflict, Err: fmt.Errorf("cannot unmerge: %w", errRestoreRefused)}
		}
		return nil, err
	}
	// A stub takes no write (it refuses them: MovedError), so the
	// condition holds unless another unmerge of the receipt got here.
	rb := x.m.identityRecord(from, at, identOp{op: identRestore, receipt: receipt, value: x.m.AppendCustomer(nil, absorbed), expect: x.m.stateDigest(stub)})
	if _, err := x.b.WriteRecord(ctx, &rb); err != nil {
		return nil, err
	}
	return back, nil
}

// errRestoreRefused marks the refusal of the survivor's unmerge: the
// writes it gives back to the absorbed profile are no longer the ones
// read, and nothing was written.
var errRestoreRefused = errors.New("the profile the merge kept changed during the unmerge")

// absorbRules are the namespace bounds an absorb applies: uniqueness and
// max, not ttl (expiry is a link's, at the link's time; an absorb is
// applied at whatever time a merge is finished, and Unmerge recomputes it).
func (x *Identities) absorbRules() []nsLimit {
	ci := x.cfg.Load()
	if ci == nil {
		return nil
	}
	rules := ci.rules()
	for i := range rules {
		rules[i].ttl = 0
	}
	return rules
}

// IdentifiersOf returns every identifier linked to customer's profile
// (after following merges): what an erasure removes with the profile.
func (x *Identities) IdentifiersOf(ctx context.Context, customer string) ([]Identifier, error) {
	c, err := x.Canonical(ctx, customer)
	if err != nil {
		return nil, err
	}
	v, err := x.b.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.Identifiers()), nil
}

// Forget prepares the erasure of customer's person: it removes every
// identifier of the profile that holds the customer's state now from the
// index (so no identifier resolves to it any more) and returns the ids of
// every profile that holds something of the person or forwards to it, the
// canonical one first: the canonical profile, the anonymous profile of each
// identifier it holds or remembers dropping (ttl, max: maxGone of them),
// each profile merged into it that it can still undo, and the same of
// each of those (their own identifiers and merges from before theirs). The
// caller erases (and tombstones) them all. A forward this does not find
// (an identifier dropped longer ago than the profile remembers, whose
// merge it no longer keeps) still leads to the canonical profile, whose
// tombstone refuses a write through it.
func (x *Identities) Forget(ctx context.Context, customer string) ([]string, error) {
	c, err := x.Canonical(ctx, customer)
	if err != nil {
		return nil, err
	}
	v, err := x.b.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	profiles := []string{c}
	seen := map[string]bool{c: true}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			profiles = append(profiles, id)
		}
	}
	add(customer)
	if v != nil && v.ident != nil {
		for _, id := range v.ident.ids {
			if err := x.b.IndexDelete(ctx, id.Key(), c); err != nil {
				return nil, err
			}
		}
	}
	// Breadth first over the person's profiles: each one's identifiers
	// (held and dropped) name anonymous profiles that forward here, and
	// its merges the profiles it absorbed.
	for i := 0; i < len(profiles) && i < maxForget; i++ {
		p, err := x.b.Get(ctx, profiles[i])
		if err != nil {
			return nil, err
		}
		if to, _ := p.Moved(); i > 0 && to != "" {
			// A forward elsewhere (the identifier left the person for
			// another since): not the person's.
			if o, err := x.Canonical(ctx, to); err != nil {
				return nil, err
			} else if o != c {
				profiles = slices.Delete(profiles, i, i+1)
				i--
				continue
			}
		}
		for _, q := range []*Customer{p, x.savedOf(p)} {
			if q == nil || q.ident == nil {
				continue
			}
			for _, id := range q.ident.ids {
				add(AnonymousID(id.Key()))
			}
			for _, g := range q.ident.gone {
				add(AnonymousID(g.key))
			}
			for _, mr := range q.ident.merges {
				add(mr.from)
			}
		}
	}
	return profiles, nil
}

// maxForget bounds the profiles Forget reads for one person.
const maxForget = 4096

// savedOf returns the value a forward kept from before its merge (nil:
// none or not a forward).
func (x *Identities) savedOf(c *Customer) *Customer {
	if c == nil || c.ident == nil || len(c.ident.saved) == 0 {
		return nil
	}
	s, err := x.m.DecodeCustomer(c.ident.saved)
	if err != nil {
		return nil
	}
	return s
}
