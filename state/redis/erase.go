package redisstate

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"nba/state"
)

// tombKey is the hash of tombstones: field the pseudonym, value the end
// of the tombstone in unix nanoseconds. One key (one Cluster slot):
// tombstones are few (erasure requests), and a replica reads them all.
// Expired fields are deleted by Tombstones.
const tombKey = "{nba:tombstones}"

// SetConsent records consent changes (see state.ConsentWriter).
func (b *Backend) SetConsent(cs ...state.Consent) (int, error) {
	return writeAll(b, "set consent", cs, b.m.ConsentRecord, func(c state.Consent) string { return c.Customer })
}

// EventConsents returns the consent changes the mappings make for e.
func (b *Backend) EventConsents(e state.Event) ([]state.Consent, error) { return b.m.EventConsents(e) }

// stubScript replaces a customer's hash with its erased stub: field e
// only (no data), expiring after ARGV[1] ms. casScript refuses every
// write of a key holding e, so a write decided on the state before the
// erasure (its compare-and-set then finds the version changed, and would
// apply again on the emptied state) cannot bring the customer back.
const stubScript = `redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'e', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`

// Erase keeps the tombstone first (so that a write refused for it cannot
// race the deletion into bringing the customer back), then replaces the
// customer's hash with its erased stub (stubScript) and drops this
// process's decoded copy (no last-good copy of an erased customer is
// served during an outage).
func (b *Backend) Erase(customer string, t state.Tombstone) (state.Erased, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
	defer cancel()
	cur, _, err := b.read(ctx, customer, false)
	if err != nil {
		return state.Erased{}, err
	}
	if t.Pseudonym != "" {
		err := b.client.Do(ctx, b.client.B().Hset().Key(tombKey).FieldValue().FieldValue(t.Pseudonym, strconv.FormatInt(t.Until.UnixNano(), 10)).Build()).Error()
		b.observe(err)
		if err != nil {
			return state.Erased{}, b.kind(err, "cannot keep the tombstone")
		}
	}
	err = b.client.Do(ctx, b.client.B().Eval().Script(stubScript).Numkeys(1).Key(key(customer)).Arg(strconv.FormatInt(state.ErasedStubTTL.Milliseconds(), 10)).Build()).Error()
	b.observe(err)
	if err != nil {
		return state.Erased{}, b.kind(err, "cannot erase customer state")
	}
	s := b.shard(customer)
	s.mu.Lock()
	delete(s.m, customer)
	s.invals.Add(1)
	s.mu.Unlock()
	return state.ErasedOf(cur.c), nil
}

// Tombstoned reads the pseudonym's tombstone from Redis.
func (b *Backend) Tombstoned(pseudonym string, now time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
	defer cancel()
	s, err := b.client.Do(ctx, b.client.B().Hget().Key(tombKey).Field(pseudonym).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	b.observe(err)
	if err != nil {
		return false, b.kind(err, "cannot read tombstone")
	}
	u, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return false, &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("cannot read tombstone: bad value %q", s)}
	}
	return u > now.UnixNano(), nil
}

// Tombstones lists the tombstones lasting at now and deletes the expired
// ones.
func (b *Backend) Tombstones(now time.Time) ([]state.Tombstone, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.WriteTimeout)
	defer cancel()
	m, err := b.client.Do(ctx, b.client.B().Hgetall().Key(tombKey).Build()).AsStrMap()
	b.observe(err)
	if err != nil {
		return nil, b.kind(err, "cannot read tombstones")
	}
	var ts []state.Tombstone
	var expired []string
	for p, v := range m {
		u, err := strconv.ParseInt(v, 10, 64)
		if err != nil || u <= now.UnixNano() {
			expired = append(expired, p)
			continue
		}
		ts = append(ts, state.Tombstone{Pseudonym: p, Until: time.Unix(0, u).UTC()})
	}
	if len(expired) > 0 {
		// Best effort: the next listing deletes them otherwise.
		b.client.Do(ctx, b.client.B().Hdel().Key(tombKey).Field(expired...).Build())
	}
	return ts, nil
}
