package state

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Identity stitching: one person is a cookie on the web site, a device id in
// the app, an e-mail address and a CRM id. An IdentityConfig declares the
// namespaces of identifiers; Identities (identity_graph.go) links them into
// one profile per person and merges the state of profiles a link joins.
// Without an IdentityConfig every customer id is its own profile, as before.

// IdentityConfig is the identity: section of a bundle.
type IdentityConfig struct {
	Namespaces map[string]Namespace `yaml:"namespaces" json:"namespaces"`
	// Blocked values never link anything (placeholders a client sends
	// when it has no identifier: "", "null", "unknown"). They match
	// whatever their case and surrounding spaces: "NULL" and " null " are
	// "null".
	Blocked []string `yaml:"blocked,omitempty" json:"blocked,omitempty"`
}

// Namespace is one kind of identifier.
type Namespace struct {
	// Primary: the value is the profile's canonical customer id. At most
	// one namespace is primary; a profile without a primary identifier is
	// anonymous (its id is derived from its first identifier).
	Primary bool `yaml:"primary,omitempty" json:"primary,omitempty"`
	// Unique: a profile holds at most one value of the namespace; a link
	// that would put a second one into a profile is refused
	// (ErrIdentityConflict), so a shared device never collapses two people.
	Unique bool `yaml:"unique,omitempty" json:"unique,omitempty"`
	// Hash: values are stored only as a keyed hash (HMAC-SHA-256 with the
	// identity key), never in the clear.
	Hash bool `yaml:"hash,omitempty" json:"hash,omitempty"`
	// Max bounds the values per profile; past it the least recently used
	// is dropped. 0: DefaultMaxPerNamespace.
	Max int `yaml:"max,omitempty" json:"max,omitempty"`
	// TTL drops a value not used for this long ("90d", "12h"); empty: never.
	TTL string `yaml:"ttl,omitempty" json:"ttl,omitempty"`
}

// DefaultMaxPerNamespace is the default of Namespace.Max, and
// maxIdentifiers the hard bound of identifiers per profile (the sum of the
// namespaces' maxima may not exceed it).
const (
	DefaultMaxPerNamespace = 20
	maxIdentifiers         = 256
)

// ErrIdentityConflict is the cause (besides ErrConflict) of a link refused
// because it would put two values of a unique namespace into one profile.
var ErrIdentityConflict = errors.New("identity conflict")

// Identifier is one identifier linked to a profile, with its provenance:
// when it was first linked and last used, and the event (or link) that
// brought it.
type Identifier struct {
	NS     string    `json:"ns"`
	Value  string    `json:"value"` // hashed namespaces: "h:" and the hex HMAC
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	Source string    `json:"source,omitempty"`
}

// Key returns the identifier's index key, "ns:value".
func (id Identifier) Key() string { return id.NS + ":" + id.Value }

// nsRule is a namespace compiled for the model.
type nsRule struct {
	name                  string
	primary, unique, hash bool
	max                   int
	ttl                   int64 // ns; 0 none
}

// compiledIdentity is a validated IdentityConfig.
type compiledIdentity struct {
	ns      map[string]*nsRule
	primary string
	blocked []string  // trimmed; matched ignoring case (isBlocked)
	key     []byte    // HMAC key of hashed namespaces
	hmacs   sync.Pool // of hash.Hash: HMAC-SHA-256 with key
}

// ParseTTL parses a duration with a day unit ("90d") or any
// time.ParseDuration form.
func ParseTTL(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 100*365 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

// Validate checks c and returns every problem, each naming its path
// (namespaces.<ns>.<key>), for the bundle loader to place by line and
// column.
func (c *IdentityConfig) Validate() []IdentityProblem {
	var ps []IdentityProblem
	var primaries []string
	total := 0
	for _, name := range slices.Sorted(mapKeys(c.Namespaces)) {
		n := c.Namespaces[name]
		path := "namespaces." + name
		if !validNSName(name) {
			ps = append(ps, IdentityProblem{path, fmt.Sprintf("namespace name %q: want letters, digits, _ or - (at most 64)", name)})
		}
		if n.Primary {
			primaries = append(primaries, name)
			if n.Hash {
				ps = append(ps, IdentityProblem{path + ".hash", "the primary namespace is the customer id: it cannot be hashed"})
			}
			if n.Max > 1 {
				ps = append(ps, IdentityProblem{path + ".max", "the primary namespace holds one value per profile"})
			}
		}
		if n.Max < 0 {
			ps = append(ps, IdentityProblem{path + ".max", fmt.Sprintf("max %d is negative", n.Max)})
		}
		if n.Unique && n.Max > 1 {
			ps = append(ps, IdentityProblem{path + ".max", "a unique namespace holds one value per profile"})
		}
		m := n.Max
		if m == 0 {
			m = DefaultMaxPerNamespace
		}
		if n.Unique || n.Primary {
			m = 1
		}
		total += m
		if n.TTL != "" {
			if _, err := ParseTTL(n.TTL); err != nil {
				ps = append(ps, IdentityProblem{path + ".ttl", err.Error() + `: want e.g. "90d" or "12h"`})
			}
		}
	}
	if len(c.Namespaces) == 0 {
		ps = append(ps, IdentityProblem{"namespaces", "at least one namespace is required"})
	}
	if len(primaries) > 1 {
		ps = append(ps, IdentityProblem{"namespaces." + primaries[1] + ".primary", fmt.Sprintf("namespaces %s are all primary: at most one may be", strings.Join(primaries, ", "))})
	}
	if total > maxIdentifiers {
		ps = append(ps, IdentityProblem{"namespaces", fmt.Sprintf("the namespaces allow %d identifiers per profile, more than the limit of %d", total, maxIdentifiers)})
	}
	return ps
}

func validNSName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// IdentityProblem is one problem of an IdentityConfig: its path below
// identity: and what is wrong.
type IdentityProblem struct {
	Path, Msg string
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// compileIdentity validates c; key keys the hash of hashed namespaces
// (required when one is).
func compileIdentity(c *IdentityConfig, key []byte) (*compiledIdentity, error) {
	if ps := c.Validate(); len(ps) > 0 {
		errs := make([]error, len(ps))
		for i, p := range ps {
			errs[i] = fmt.Errorf("identity.%s: %s", p.Path, p.Msg)
		}
		return nil, errors.Join(errs...)
	}
	ci := &compiledIdentity{ns: map[string]*nsRule{}, key: key}
	ci.hmacs.New = func() any { return hmac.New(sha256.New, ci.key) }
	for name, n := range c.Namespaces {
		r := &nsRule{name: name, primary: n.Primary, unique: n.Unique || n.Primary, hash: n.Hash, max: n.Max}
		if r.max == 0 {
			r.max = DefaultMaxPerNamespace
		}
		if r.unique {
			r.max = 1
		}
		if n.TTL != "" {
			d, _ := ParseTTL(n.TTL)
			r.ttl = int64(d)
		}
		if r.hash && len(key) < 16 {
			return nil, fmt.Errorf("identity.namespaces.%s.hash: an identity key of at least 16 bytes is required", name)
		}
		if n.Primary {
			ci.primary = name
		}
		ci.ns[name] = r
	}
	for _, b := range c.Blocked {
		if b = strings.TrimSpace(b); b != "" && !slices.Contains(ci.blocked, b) {
			ci.blocked = append(ci.blocked, b)
		}
	}
	return ci, nil
}

// isBlocked reports whether v is empty or a blocked value, whatever its
// case and surrounding spaces (without allocating: it is on the decide
// path).
func (ci *compiledIdentity) isBlocked(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" {
		return true
	}
	for _, b := range ci.blocked {
		if strings.EqualFold(v, b) {
			return true
		}
	}
	return false
}

// normalize checks one identifier of a request and returns its stored
// value (hashed for a hashed namespace); blocked reports a value that
// never links.
func (ci *compiledIdentity) normalize(ns, v string) (r *nsRule, stored string, blocked bool, err error) {
	bp := keyBufs.Get().(*[]byte)
	defer keyBufs.Put(bp)
	r, b, blocked, err := ci.appendKey((*bp)[:0], ns, v)
	if err != nil || blocked {
		return r, "", blocked, err
	}
	return r, string(b[len(ns)+1:]), false, nil
}

// CheckCustomerID reports why id cannot be a customer id, nil when it can:
// the rule of every route that names a customer, the erasure route
// (DELETE /admin/customers/{id}, one path segment) included. A primary
// identity namespace's value is a customer id and obeys it too
// (checkPrimary).
func CheckCustomerID(id string) error {
	switch {
	case id == "":
		return errors.New("a customer id must not be empty")
	case strings.IndexByte(id, '/') >= 0:
		return errors.New("a customer id must not contain a slash")
	}
	return nil
}

// checkPrimary reports why v cannot be a primary namespace's value: a
// customer id (CheckCustomerID) that does not start with "~", the prefix
// of anonymous profiles (AnonymousID), which it would otherwise take over.
// It does not allocate when v is valid.
func checkPrimary(v string) error {
	if err := CheckCustomerID(v); err != nil {
		return err
	}
	if v[0] == '~' {
		return errors.New(`a customer id must not start with "~" (reserved for anonymous profiles)`)
	}
	return nil
}

// keyBuf is the capacity of a buffer that holds any identifier key (a
// namespace, a colon, a value or its hash) and the hash's scratch.
const keyBuf = 64 + 1 + 512 + 64

// keyBufs are the buffers the decide path builds identifier keys in.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, keyBuf); return &b }}

// appendKey appends the index key of an identifier ("ns:" and the stored
// value) to dst; with a dst of capacity keyBuf it does not allocate.
func (ci *compiledIdentity) appendKey(dst []byte, ns, v string) (r *nsRule, key []byte, blocked bool, err error) {
	r = ci.ns[ns]
	if r == nil {
		return nil, dst, false, invalidf("unknown identity namespace %q", ns)
	}
	if ci.isBlocked(v) {
		return r, dst, true, nil
	}
	if len(v) > 512 {
		return nil, dst, false, invalidf("identifier %s is %d bytes, over the limit of 512", ns, len(v))
	}
	if r.primary {
		if err := checkPrimary(v); err != nil {
			return nil, dst, false, invalidf("identifier %s: %w", ns, err)
		}
	}
	dst = append(append(dst, ns...), ':')
	if !r.hash {
		return r, append(dst, v...), false, nil
	}
	h := ci.hmacs.Get().(hash.Hash)
	h.Reset()
	h.Write(append(append(dst[len(dst):], ns...), 0)) // spare capacity of dst as scratch
	h.Write(unsafe.Slice(unsafe.StringData(v), len(v)))
	var sum [16]byte
	copy(sum[:], h.Sum(dst[len(dst):])) // spare capacity again
	ci.hmacs.Put(h)
	dst = append(dst, "h:"...)
	return r, hex.AppendEncode(dst, sum[:]), false, nil
}
