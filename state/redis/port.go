package redisstate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"nba/state"
)

// Moving state in and out (state.Porter): nba state export and import
// with -state.redis, and contact-history import into a sidecar on Redis.

var _ state.Porter = (*Backend)(nil)

// scanBatch is the SCAN COUNT hint of Each and the customers read per
// pipelined round trip.
const scanBatch = 500

// Each calls fn with every customer's state stored in Redis, until fn
// fails: it SCANs the customer keys ("{c:*}" hashes) of every master (each
// Cluster master holds its own slots) and reads them in pipelined batches.
// Each customer is one consistent value; customers written during Each
// are seen or not, and SCAN may return a key twice when the keyspace is
// rehashed meanwhile, so fn may see a customer twice (export from a
// quiet store, as nba state export does). Overlay values hidden at this
// process's as-of time (Compact) are left out, as the embedded Store.Each does.
func (b *Backend) Each(fn func(*state.CustomerDump) error) error {
	if b.closed.Load() {
		return b.Err()
	}
	asOf := b.asOf.Load()
	cluster := b.client.Mode() == rueidis.ClientModeCluster
	for addr, n := range b.client.Nodes() {
		if cluster {
			primary, err := isPrimary(n, b.cfg.WriteTimeout)
			if err != nil {
				return b.kind(err, "cannot list customers on %s", addr)
			}
			if !primary {
				continue
			}
		}
		if err := b.eachOn(n, addr, asOf, fn); err != nil {
			return err
		}
	}
	return nil
}

// isPrimary asks a node for its ROLE.
func isPrimary(n rueidis.Client, timeout time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
	if err != nil {
		return false, err
	}
	if len(role) == 0 {
		return false, errors.New("empty ROLE answer")
	}
	r, err := role[0].ToString()
	return r == "master", err
}

// eachOn is Each over one node's keys.
func (b *Backend) eachOn(n rueidis.Client, addr string, asOf int64, fn func(*state.CustomerDump) error) error {
	var cursor uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
		page, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match("{c:*}").Count(scanBatch).Type("hash").Build()).AsScanEntry()
		var res []rueidis.RedisResult
		if err == nil && len(page.Elements) > 0 {
			cmds := make(rueidis.Commands, len(page.Elements))
			for i, k := range page.Elements {
				cmds[i] = n.B().Hmget().Key(k).Field("v", "d", "s").Build()
			}
			res = n.DoMulti(ctx, cmds...)
		}
		cancel()
		b.observe(err)
		if err != nil {
			return b.kind(err, "cannot list customers on %s", addr)
		}
		for i, k := range page.Elements {
			if _, ok := customerOf(k); !ok {
				continue // another key ending in "}"
			}
			msgs, err := res[i].ToArray()
			if err != nil {
				b.observe(err)
				return b.kind(err, "cannot read customer state on %s", addr)
			}
			c, err := b.decodeStored(msgs)
			if errors.Is(err, state.ErrMismatch) {
				return err
			}
			if err != nil {
				return &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("cannot read customer state on %s: %w", addr, err)}
			}
			if c == nil {
				continue // deleted since the SCAN
			}
			if err := fn(b.m.Dump(c, asOf)); err != nil {
				return err
			}
		}
		if cursor = page.Cursor; cursor == 0 {
			return nil
		}
	}
}

// customerOf returns the customer id of a customer key ("{c:<id>}").
func customerOf(k string) (string, bool) {
	if len(k) < 4 || k[:3] != "{c:" || k[len(k)-1] != '}' {
		return "", false
	}
	return k[3 : len(k)-1], true
}

// decodeStored decodes an HMGET v d s answer without the caches (nil: no
// value stored).
func (b *Backend) decodeStored(msgs []rueidis.RedisMessage) (*state.Customer, error) {
	if len(msgs) != 3 || msgs[0].IsNil() {
		return nil, nil
	}
	if d, _ := msgs[1].ToString(); d != b.digest {
		return nil, b.mismatch(d)
	}
	s, err := msgs[2].ToString()
	if err != nil {
		return nil, err
	}
	return b.m.DecodeCustomer([]byte(s))
}

// restoreScript replaces a customer's value (ARGV: digest, value, the
// write's nonce) with the version plus one, so that every process's
// decoded copy of the older version is replaced, and answers the version.
// A restored customer's erased stub (Erase) is dropped, with its expiry.
var restoreScript = rueidis.NewLuaScript(`local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0') + 1
redis.call('HSET', KEYS[1], 'v', v, 'd', ARGV[1], 's', ARGV[2], 'w', ARGV[3])
if redis.call('HDEL', KEYS[1], 'e') == 1 then redis.call('PERSIST', KEYS[1]) end
return v`)

// Restore replaces the state of each customer in cs (state.Model.Restored:
// the per-customer bounds apply, fields the mappings do not have are
// dropped). All are checked first: an ErrInvalid error restores none.
// The customers are written in one pipelined round trip per node; each
// is acknowledged as a feedback is (Durability), so there is nothing to
// checkpoint. After an ErrUnavailable error some may be restored:
// restoring again is harmless. The identifiers the customers hold are
// claimed in the identifier index (state.ClaimIdentifiers).
func (b *Backend) Restore(cs ...state.CustomerDump) error {
	if b.closed.Load() {
		return b.Err()
	}
	asOf := b.asOf.Load()
	next := make([]*state.Customer, len(cs))
	var sum state.Result
	for i := range cs {
		c, res, err := b.m.Restored(&cs[i], asOf)
		if err != nil {
			return &state.Error{Kind: state.ErrInvalid, Err: fmt.Errorf("cannot restore customer %d: %w", i, err)}
		}
		next[i] = c
		sum.HistoryEvicted += res.HistoryEvicted
		sum.KeysEvicted += res.KeysEvicted
		sum.JourneysEvicted += res.JourneysEvicted
		sum.IDsEvicted += res.IDsEvicted
		sum.Dropped += res.Dropped
	}
	if len(cs) == 0 {
		return nil
	}
	execs := make([]rueidis.LuaExec, len(cs))
	for i := range cs {
		nonce := b.nonce + strconv.FormatUint(b.writes.Add(1), 36)
		execs[i] = rueidis.LuaExec{Keys: []string{key(cs[i].ID)},
			Args: []string{b.digest, rueidis.BinaryString(b.m.AppendCustomer(nil, next[i])), nonce}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
	defer cancel()
	now := time.Now().UnixNano()
	res := restoreScript.ExecMulti(ctx, b.client, execs...)
	for _, r := range res {
		if retryable(ctx, r.Error()) {
			// A connection that broke (the next call dials again):
			// restoring again is harmless, as the script replaces.
			res = restoreScript.ExecMulti(ctx, b.client, execs...)
			break
		}
	}
	for i, res := range res {
		ver, err := res.AsInt64()
		b.observe(err)
		if err != nil {
			b.unavailable.Add(1)
			return b.kind(err, "cannot restore customer %d", i)
		}
		// Preferred to an older copy the client-side cache may still
		// answer for a moment (see ownWriteLag).
		b.remember(cs[i].ID, entry{ver: uint64(ver), w: execs[i].Args[2], c: next[i], own: now})
	}
	b.histEvicted.Add(uint64(sum.HistoryEvicted))
	b.keysEvicted.Add(uint64(sum.KeysEvicted))
	b.journEvicted.Add(uint64(sum.JourneysEvicted))
	b.idsEvicted.Add(uint64(sum.IDsEvicted))
	b.dropped.Add(uint64(sum.Dropped))
	// The identifier index after the values that hold the identifiers,
	// so that an entry never points at a value not written yet; after a
	// failure between, restoring again claims them.
	return state.ClaimIdentifiers(context.Background(), func(_ context.Context, key, customer string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
		defer cancel()
		return b.IndexClaim(ctx, key, customer)
	}, cs)
}

// importWorkers bounds the customers RecordContacts writes at once.
const importWorkers = 32

// RecordContacts records contacts as RecordContact does, up to
// importWorkers customers at a time (each customer's contacts in the
// order given, one compare-and-set each), and returns how many were
// duplicates. All are checked first: an ErrInvalid error records none.
// After another error the customers written before it keep their
// contacts: importing again is harmless for contacts with an id.
func (b *Backend) RecordContacts(cs []state.Contact) (dups int, err error) {
	recs := make([]state.Record, len(cs))
	for i := range cs {
		if recs[i], err = b.m.ContactRecord(cs[i]); err != nil {
			return 0, &state.Error{Kind: state.ErrInvalid, Err: fmt.Errorf("cannot record contact %d: %w", i, err)}
		}
	}
	if b.closed.Load() {
		return 0, b.Err()
	}
	var order []string
	by := map[string][]*state.Record{}
	for i := range cs {
		c := cs[i].Customer
		if by[c] == nil {
			order = append(order, c)
		}
		by[c] = append(by[c], &recs[i])
	}
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range min(importWorkers, len(order)) {
		wg.Go(func() {
			for {
				mu.Lock()
				if first != nil || next == len(order) {
					mu.Unlock()
					return
				}
				c := order[next]
				next++
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
				n, err := b.write(ctx, c, by[c])
				cancel()
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				dups += n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		if errors.Is(first, state.ErrUnavailable) {
			b.unavailable.Add(1)
		}
		return dups, first
	}
	b.contacts.Add(uint64(len(cs) - dups))
	return dups, nil
}

// Checkpoint returns nil: each restored customer was acknowledged by
// Redis when Restore returned.
func (b *Backend) Checkpoint() error {
	if b.closed.Load() {
		return b.Err()
	}
	return nil
}

// RestoreTombstones keeps each tombstone in the hash of tombstones until
// its Until, or a later end already kept there (all are checked first; on
// an ErrInvalid error none is kept). Each is acknowledged as an Erase's,
// so there is nothing to checkpoint.
func (b *Backend) RestoreTombstones(ts ...state.Tombstone) error {
	for i, t := range ts {
		if err := b.m.CheckString("pseudonym", t.Pseudonym, true); err != nil {
			return &state.Error{Kind: state.ErrInvalid, Err: fmt.Errorf("cannot restore tombstone %d: %w", i, err)}
		}
	}
	if len(ts) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
	defer cancel()
	fields := make([]string, len(ts))
	for i, t := range ts {
		fields[i] = t.Pseudonym
	}
	kept, err := b.client.Do(ctx, b.client.B().Hmget().Key(tombKey).Field(fields...).Build()).ToArray()
	b.observe(err)
	if err != nil {
		return b.kind(err, "cannot read tombstones")
	}
	cmd := b.client.B().Hset().Key(tombKey).FieldValue()
	n := 0
	for i, t := range ts {
		if i < len(kept) {
			if s, err := kept[i].ToString(); err == nil {
				if u, err := strconv.ParseInt(s, 10, 64); err == nil && u >= t.Until.UnixNano() {
					continue // a later end is kept
				}
			}
		}
		cmd = cmd.FieldValue(t.Pseudonym, strconv.FormatInt(t.Until.UnixNano(), 10))
		n++
	}
	if n == 0 {
		return nil
	}
	err = b.client.Do(ctx, cmd.Build()).Error()
	b.observe(err)
	if err != nil {
		return b.kind(err, "cannot restore tombstones")
	}
	return nil
}
