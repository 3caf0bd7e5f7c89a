package redisstate

import (
	"context"
	"strings"

	"github.com/redis/rueidis"

	"nba/state"
)

// The Redis side of identity stitching (state.IdentityBackend). A profile's
// identifiers and merge marks live in its value under {c:<id>}, written by
// the same compare-and-set as every other change; the index is one string
// key per identifier, {i:<ns>:<value>} → profile id (hashed namespaces
// hold the keyed hash, never the value). The index is only a pointer: two
// profiles may sit on different Cluster shards, so a merge is the
// three-step protocol of state.Identities (mark, absorb, forward), each
// step a single-key compare-and-set, and whoever meets an unfinished merge
// finishes it. Resolution on the decide path is a client-side cached GET
// (Config.CacheTTL), invalidated by Redis when a link moves the key.

var _ state.IdentityBackend = (*Backend)(nil)

func indexKey(key string) string { return "{i:" + key + "}" }

// IdentityModel implements state.IdentityBackend.
func (b *Backend) IdentityModel() *state.Model { return b.m }

// WriteRecord implements state.IdentityBackend: one compare-and-set on the
// record's customer.
func (b *Backend) WriteRecord(ctx context.Context, r *state.Record) (bool, error) {
	dups, err := b.write(ctx, r.Customer(), []*state.Record{r})
	return dups > 0, err
}

// Get implements state.IdentityBackend: the stored value, read from the
// server.
func (b *Backend) Get(ctx context.Context, customer string) (*state.Customer, error) {
	v, _, err := b.read(ctx, customer, false)
	return v.c, err
}

// IndexGet implements state.IdentityBackend.
func (b *Backend) IndexGet(ctx context.Context, key string, cached bool) (string, error) {
	key = strings.Clone(key) // the caller's buffer is reused; the command and cache keep it
	var res rueidis.RedisResult
	if cached {
		res = b.client.DoCache(ctx, b.client.B().Get().Key(indexKey(key)).Cache(), b.cfg.CacheTTL)
	} else {
		res = b.client.Do(ctx, b.client.B().Get().Key(indexKey(key)).Build())
	}
	s, err := res.ToString()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	b.observe(err)
	if err != nil {
		return "", b.kind(err, "cannot read identifier index")
	}
	return s, nil
}

// IndexClaim implements state.IdentityBackend: SET NX GET.
func (b *Backend) IndexClaim(ctx context.Context, key, customer string) (string, error) {
	res := b.client.Do(ctx, b.client.B().Set().Key(indexKey(key)).Value(customer).Nx().Get().Build())
	s, err := res.ToString()
	if rueidis.IsRedisNil(err) {
		return customer, nil
	}
	b.observe(err)
	if err != nil {
		return "", b.kind(err, "cannot write identifier index")
	}
	return s, nil
}

// IndexSet implements state.IdentityBackend.
func (b *Backend) IndexSet(ctx context.Context, key, customer string) error {
	err := b.client.Do(ctx, b.client.B().Set().Key(indexKey(key)).Value(customer).Build()).Error()
	b.observe(err)
	if err != nil {
		return b.kind(err, "cannot write identifier index")
	}
	return nil
}

// delIfScript deletes KEYS[1] when it holds ARGV[1].
const delIfScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

// IndexDelete implements state.IdentityBackend.
func (b *Backend) IndexDelete(ctx context.Context, key, customer string) error {
	err := b.client.Do(ctx, b.client.B().Eval().Script(delIfScript).Numkeys(1).Key(indexKey(key)).Arg(customer).Build()).Error()
	b.observe(err)
	if err != nil {
		return b.kind(err, "cannot write identifier index")
	}
	return nil
}
