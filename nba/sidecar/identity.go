package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"nba/nba"
	"nba/nba/server"
	"nba/state"
	"nba/state/stateio"
)

// Identity stitching (bundle.yaml's identity: section, state.Identities):
// the sidecar resolves "ids" of decisions, feedback and events to the
// canonical customer id, serves POST /v1/identify and the admin unmerge,
// and reads and writes state through state.Stitched, which follows merged
// profiles. A bundle without identity: serves as before, over the backend
// itself.

// IdentityKeyEnv is the environment variable the command reads the key of
// hashed identity namespaces from (a secret: not a flag value in ps).
const IdentityKeyEnv = "NBA_IDENTITY_KEY"

// withIdentity wraps st for the manifest's identity section; st itself
// without one.
func withIdentity(st state.Backend, m Manifest, cfg Config) (state.Backend, *state.Identities, *decideResolver, error) {
	if m.Identity == nil {
		return st, nil, nil, nil
	}
	ib, ok := st.(state.IdentityBackend)
	if !ok {
		return nil, nil, nil, errors.New("identity: the state backend cannot link identifiers")
	}
	key := cfg.IdentityKey
	if len(key) == 0 && needsKey(m.Identity) {
		if cfg.StateRedis != "" {
			// Replicas must hash alike: a key made up here would split
			// every hashed identifier by replica.
			return nil, nil, nil, fmt.Errorf("identity: a hashed namespace needs the identity key shared by every replica (%s, at least 16 bytes)", IdentityKeyEnv)
		}
		path := filepath.Join(cfg.StateDir, "identity.key")
		_, statErr := os.Stat(path)
		var err error
		if key, err = loadSecret(path); err != nil {
			return nil, nil, nil, err
		}
		if h, ok := st.(interface{ HashedIdentifiers() bool }); ok && errors.Is(statErr, fs.ErrNotExist) && h.HashedIdentifiers() {
			// A state moved without its key (nba state import of an
			// export that did not name it, a copied directory): the
			// identifiers hashed with the old key resolve to no one.
			cfg.Logger.Warn("generated a new identity key, but the state already holds hashed identifiers, hashed with another key: they will not resolve; stop, copy the identity.key of the state they came from (or set "+IdentityKeyEnv+") and start again",
				"path", path)
		}
	}
	x := state.NewIdentities(ib, key)
	x.SetClock(cfg.Now)
	if err := x.Configure(m.Identity); err != nil {
		return nil, nil, nil, err
	}
	dr, err := newDecideResolver(ib, key, m.Identity, cfg.Now)
	if err != nil {
		return nil, nil, nil, err
	}
	return x.Stitched(), x, dr, nil
}

// identityKeyFingerprint is the fingerprint (stateio.KeyFingerprint, an
// HMAC under the key) of the identity key the manifest's hashed namespaces
// are hashed with, which a shared store holds every replica to; "" when
// none is hashed.
func identityKeyFingerprint(m Manifest, cfg Config) string {
	if m.Identity == nil || !needsKey(m.Identity) || len(cfg.IdentityKey) == 0 {
		return ""
	}
	return stateio.KeyFingerprint(cfg.IdentityKey)
}

func needsKey(c *state.IdentityConfig) bool {
	for _, n := range c.Namespaces {
		if n.Hash {
			return true
		}
	}
	return false
}

// checkIdentity validates the manifest's identity section, each problem at
// its line and column of bundle.yaml.
func checkIdentity(m *Manifest, data []byte) []error {
	if m.Identity == nil {
		return nil
	}
	ps := m.Identity.Validate()
	if len(ps) == 0 {
		return nil
	}
	paths, msgs := make([]string, len(ps)), make([]string, len(ps))
	for i, p := range ps {
		paths[i], msgs[i] = "identity."+p.Path, p.Msg
	}
	return nba.PlaceProblems(ManifestFile, data, paths, msgs)
}

// unwrapState returns the backend under the identity layer.
func unwrapState(b state.Backend) state.Backend {
	if s, ok := b.(*state.Stitched); ok {
		return s.IdentityBackend
	}
	return b
}

// identityError maps an identity error to what the caller sees.
func (s *Sidecar) identityError(err error) error {
	return s.identityErrorOn(err, opWrite)
}

// identityErrorOn is identityError for a route that does op with the
// state (a read, an unmerge): a 503 is worded for it.
func (s *Sidecar) identityErrorOn(err error, op stateOp) error {
	if errors.Is(err, state.ErrIdentityConflict) {
		return server.IdentityConflictf("%v", err)
	}
	return s.stateErrorOn(err, op)
}

func (s *Sidecar) identities() (*state.Identities, error) {
	if s.ident == nil {
		return nil, server.NotFoundf("identity stitching is off: the bundle declares no identity namespaces")
	}
	return s.ident, nil
}

// Identify implements server.IdentityBackend.
func (s *Sidecar) Identify(req *server.IdentifyRequest) (server.IdentifyResult, error) {
	x, err := s.identities()
	if err != nil {
		return server.IdentifyResult{}, err
	}
	ids := make(map[string]string, len(req.IDs))
	for _, f := range req.IDs {
		ids[f.Key] = f.Str
		// An identifier of an erased person links nothing until its
		// tombstone ends: 410, as its feedback and events get (without an
		// erasure key there are no tombstones to look for).
		if len(s.tombs.key) == 0 {
			continue
		}
		if id, ok, err := x.ResolveID(context.Background(), f.Key, f.Str); err == nil && ok {
			if err := s.checkErased(s.canonical(id)); err != nil {
				return server.IdentifyResult{}, err
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := x.Identify(ctx, ids, req.TS, req.EventID)
	if err != nil {
		return server.IdentifyResult{}, s.identityErrorOn(err, opChange)
	}
	return server.IdentifyResult{CustomerID: l.Customer, Receipts: l.Receipts}, nil
}

// Unmerge implements server.IdentityBackend.
func (s *Sidecar) Unmerge(receipt string) (server.IdentifyResult, error) {
	x, err := s.identities()
	if err != nil {
		return server.IdentifyResult{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := x.Unmerge(ctx, receipt)
	if err != nil {
		if state.KindOf(err) == state.ErrInvalid {
			// The receipt is Unmerge's only input: refused for what it
			// is, it names no merge that can be undone (unknown, undone,
			// or no longer remembered).
			return server.IdentifyResult{}, server.UnknownReceiptf("%v", err)
		}
		return server.IdentifyResult{}, s.identityErrorOn(err, opChange)
	}
	return server.IdentifyResult{CustomerID: l.Customer, Receipts: l.Receipts}, nil
}

// ResolveCustomer implements server.IdentityBackend.
func (s *Sidecar) ResolveCustomer(ns, value string) (string, error) {
	x, err := s.identities()
	if err != nil {
		return "", err
	}
	id, ok, err := x.ResolveID(context.Background(), ns, value)
	if err != nil {
		return "", s.identityErrorOn(err, opRead)
	}
	if !ok {
		return "", nil
	}
	return x.Canonical(context.Background(), id)
}

// resolveVia returns the customer a request names: customerID when given,
// else the profile of the first identifier of ids that names one (the
// primary namespace's value is the id itself; an identifier not linked yet
// names its anonymous profile). It costs a map lookup (embedded) or a
// client-side cached read (Redis) per identifier tried. With via (a
// write), it also returns the write's provenance (state.Contact.Via), the
// key of the identifier that named the customer ("" when customerID did),
// which allocates.
func (s *Sidecar) resolveVia(customerID string, ids []server.Field, via bool) (id, key string, err error) {
	if customerID != "" || len(ids) == 0 {
		return customerID, "", nil
	}
	x, err := s.identities()
	if err != nil {
		return "", "", server.Invalidf("customer_id is required: identity stitching is off (the bundle declares no identity namespaces)")
	}
	return s.resolveWith(context.Background(), x, ids, via)
}

// resolveWith is resolveVia by x (the decide path's resolver or the
// identity layer itself).
func (s *Sidecar) resolveWith(ctx context.Context, x *state.Identities, ids []server.Field, via bool) (id, key string, err error) {
	var anon string
	var af *server.Field
	for i := range ids {
		f := &ids[i]
		id, ok, err := x.ResolveID(ctx, f.Key, f.Str)
		if err != nil {
			return "", "", s.identityError(err)
		}
		if !ok {
			continue
		}
		if len(id) == 0 || id[0] != '~' {
			if via {
				if key, err = x.Via(f.Key, f.Str); err != nil {
					return "", "", s.identityError(err)
				}
			}
			return id, key, nil
		}
		if anon == "" || id < anon {
			anon, af = id, f // linked nowhere yet: the same one every time
		}
	}
	if anon == "" {
		return "", "", server.Invalidf("ids names no customer: every identifier is blocked")
	}
	if via {
		// Not anon[1:]: a dropped identifier's fresh profile has a suffix.
		if key, err = x.Via(af.Key, af.Str); err != nil {
			return "", "", s.identityError(err)
		}
	}
	// Sealed or merged since: the profile whose state a decision reads,
	// which its answer must name.
	return x.Follow(anon), key, nil
}

// canonical returns the profile id holds its state under now (id itself
// without identity stitching, or when it was not merged).
func (s *Sidecar) canonical(id string) string {
	if s.ident == nil {
		return id
	}
	c, err := s.ident.Canonical(context.Background(), id)
	if err != nil {
		return id
	}
	return c
}

// addIdentity adds the profile's identifiers with their provenance to the
// customer view, and the id asked for when a merge moved it.
func addIdentity(out map[string]any, v *state.View, asked string) {
	ids := []map[string]any{}
	for _, id := range v.Identifiers() {
		m := map[string]any{"ns": id.NS, "value": id.Value, "first_seen": id.First.UTC().Format(time.RFC3339Nano),
			"last_used": id.Last.UTC().Format(time.RFC3339Nano)}
		if id.Source != "" {
			m["source"] = id.Source
		}
		ids = append(ids, m)
	}
	out["identifiers"] = ids
	if asked != out["customer_id"] {
		out["merged_from"] = asked
	}
}
