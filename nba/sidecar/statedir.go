package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"nba/state"
	"nba/state/embedded"
	redisstate "nba/state/redis"
)

// OpenStateDir opens the customer state in a sidecar's state directory
// without serving, for offline tools (nba state export and import): it
// takes the directory's lock as Open does, so it fails while a sidecar (or
// another tool) has the directory open, and opens the state with the
// bundle's profile mappings, which say what the overlay fields are. The
// state has no background checkpoints and evicts no customer. close
// closes the state and releases the lock. create makes the directory if
// it is missing.
func OpenStateDir(dir string, bundle fs.FS, create bool) (st *embedded.Store, close func() error, err error) {
	if dir == "" {
		return nil, nil, errors.New("no state directory")
	}
	if create {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, nil, fmt.Errorf("cannot create state directory: %w", err)
		}
	} else if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("state directory %q does not exist", dir)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	m, _, err := readManifest(bundle)
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("cannot load bundle: %w", err)
	}
	var b state.Backend
	b, err = openState(filepath.Join(dir, "state"), m, Config{StateMaxCustomers: -1})
	if err == nil {
		st = b.(*embedded.Store) // no StateRedis: the embedded store
	}
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("cannot open customer state in %s: %w", dir, err)
	}
	return st, func() error { return errors.Join(st.Close(), lock.Close()) }, nil
}

// PortableState is a customer state that nba state export and import can
// read and write: either backend.
type PortableState interface {
	state.Backend
	state.Porter
}

// OpenStateRedis opens the customer state on Redis (url as
// Config.StateRedis) for offline tools, with the bundle's profile
// mappings, which must be the ones the sidecars on that Redis serve (a
// customer written with others is refused). Redis needs no lock: the
// tools may run while sidecars serve (an export then sees each customer
// as it was when read). close closes the connection.
// identityKey is the key the state's hashed identifiers are hashed with
// (nil: none): a Redis whose processes hash with another is refused, as
// nba serve refuses it (the tools record no key: the first sidecar does).
func OpenStateRedis(url string, bundle fs.FS, allowVolatile bool, identityKey []byte) (st PortableState, close func() error, err error) {
	m, _, err := readManifest(bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot load bundle: %w", err)
	}
	scfg := state.Config{Mappings: m.Profile, SnapshotFields: sortedKeys(m.Snapshot.Columns), MaxCustomers: -1}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Bulk work, not requests: a server busy with a batch (an AOF fsync,
	// a loaded machine) is waited for instead of dropped.
	b, err := redisstate.Open(ctx, redisstate.Config{URL: url, State: scfg, AllowVolatile: allowVolatile,
		IdentityKey: identityKeyFingerprint(m, Config{IdentityKey: identityKey}), IdentityKeyCheckOnly: true, ConnTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: time.Minute})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open customer state on Redis: %w", err)
	}
	return b, b.Close, nil
}
