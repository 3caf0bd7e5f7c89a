package redisstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// Learning shared by replicas (LearnStream): what the online models of
// several sidecars on one Redis share, as opaque bytes (the nba package
// encodes them):
//
//   - "<prefix>:dec:<decision id>": the learning features of one decision,
//     with a TTL, so that an outcome reaching another replica learns from
//     what the decision saw. One key per decision, spread over a Cluster.
//   - "{<prefix>}:obs": the Redis Stream of observations, bounded with
//     XADD MAXLEN ~. Every replica reads all of it with XREAD from the last
//     id it applied (not a consumer group: each needs every entry) and
//     applies it in stream order, its own observations included.
//   - "{<prefix>}:pending" (sorted set of "customer\x00action" by the time
//     shown, in ms) and "{<prefix>}:pending:dec" (hash: member -> decision
//     id): impressions awaiting an outcome. Adding, taking and expiring are
//     scripts, so an impression's outcome is decided once across replicas:
//     whichever replica removes it (an outcome, or a sweep after the
//     response window) observes it, and no other.
//   - "{<prefix>}:ckpt" (hash: id, data): a learner checkpoint and the last
//     stream id it covers, replaced only by one covering a later id.
//
// The stream, the pending impressions and the checkpoint share one hash
// tag: one shard of a Cluster holds them (a stream is one key anyway).
//
// A write that fails on a network error (typically the first call on a
// connection the server dropped when it restarted, which the client only
// finds broken by using it) is sent again on a new connection (resend). That is
// safe for every write here: setting a decision's features and the
// checkpoint are idempotent; a pending impression taken or expired by a
// first attempt whose answer was lost is not observed (as if its outcome
// never came) rather than observed twice; and an observation is appended
// with a nonce remembered for publishNonceTTL, so that a retry of an append
// that reached Redis answers the first id instead of appending it again.
//
// LearnStream is safe for concurrent use.
type LearnStream struct {
	client                            rueidis.Client
	cfg                               LearnConfig
	stream, ckpt, pending, pendingDec string
	decPrefix, pubPrefix              string
	nonce                             string // random, per LearnStream
	pubs                              atomic.Uint64
}

// publishNonceTTL is how long an observation's nonce is kept in Redis:
// far longer than a retry takes; each costs about 100 bytes meanwhile.
const publishNonceTTL = time.Minute

// LearnConfig configures a LearnStream.
type LearnConfig struct {
	// URL is the Redis server (the forms rueidis.ParseURL accepts).
	URL string
	// Prefix of the keys. Default "nba:learn".
	Prefix string
	// MaxLen bounds the observation stream, approximately (XADD MAXLEN ~).
	// Default 1,000,000 entries. A replica whose checkpoint is older than
	// the trimmed entries misses them (LearnStream.Trimmed says so).
	MaxLen int64
	// DecisionTTL is how long a decision's features are kept; at least the
	// response window. Required.
	DecisionTTL time.Duration
	// MaxPending bounds the impressions awaiting an outcome; past it the
	// oldest is handed back to be observed as ignored. Default 1,000,000.
	MaxPending int64
	// ConnTimeout is the dial and I/O timeout of a connection. Default 1s.
	ConnTimeout time.Duration
}

// StreamEntry is one entry of the observation stream.
type StreamEntry struct {
	ID   string
	Data []byte
}

// PendingEntry is an impression awaiting its outcome, as held in Redis.
type PendingEntry struct {
	Customer, Action, DecisionID string
	At                           time.Time // when it was shown, to the millisecond
}

// OpenLearn connects to Redis.
func OpenLearn(cfg LearnConfig) (*LearnStream, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "nba:learn"
	}
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = 1_000_000
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1_000_000
	}
	if cfg.ConnTimeout <= 0 {
		cfg.ConnTimeout = time.Second
	}
	if cfg.DecisionTTL <= 0 {
		return nil, errors.New("cannot open learning stream: no decision TTL")
	}
	opt, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("cannot open learning stream: %w", err)
	}
	opt.Dialer.Timeout = cfg.ConnTimeout
	opt.ConnWriteTimeout = cfg.ConnTimeout
	opt.DisableCache = true
	var nb [12]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, fmt.Errorf("cannot open learning stream: %w", err)
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("cannot open learning stream: %w", err)
	}
	tag := "{" + cfg.Prefix + "}"
	return &LearnStream{client: client, cfg: cfg, stream: tag + ":obs", ckpt: tag + ":ckpt", pending: tag + ":pending",
		pendingDec: tag + ":pending:dec", decPrefix: cfg.Prefix + ":dec:", pubPrefix: tag + ":pub:",
		nonce: hex.EncodeToString(nb[:]) + "-"}, nil
}

// do sends the command built by cmd, and once more when it failed on a
// network error (commands are recycled once sent: built per send).
func (l *LearnStream) do(ctx context.Context, cmd func() rueidis.Completed) rueidis.RedisResult {
	r := l.client.Do(ctx, cmd())
	for try := 0; resend(ctx, r.Error(), try); try++ {
		r = l.client.Do(ctx, cmd())
	}
	return r
}

// exec runs a script as do sends a command.
func (l *LearnStream) exec(ctx context.Context, s *rueidis.Lua, keys, args []string) rueidis.RedisResult {
	r := s.Exec(ctx, l.client, keys, args)
	for try := 0; resend(ctx, r.Error(), try); try++ {
		r = s.Exec(ctx, l.client, keys, args)
	}
	return r
}

// Close closes the connections; a blocked Read returns.
func (l *LearnStream) Close() { l.client.Close() }

// PutDecision keeps a decision's features for DecisionTTL.
func (l *LearnStream) PutDecision(ctx context.Context, id string, data []byte) error {
	return l.do(ctx, func() rueidis.Completed {
		return l.client.B().Set().Key(l.decPrefix + id).Value(rueidis.BinaryString(data)).Px(l.cfg.DecisionTTL).Build()
	}).Error()
}

// PutDecisions is PutDecision for several decisions in one round trip;
// it returns how many were stored.
func (l *LearnStream) PutDecisions(ctx context.Context, ids []string, data [][]byte) (int, error) {
	cmds := make(rueidis.Commands, len(ids))
	build := func() {
		for i, id := range ids {
			cmds[i] = l.client.B().Set().Key(l.decPrefix + id).Value(rueidis.BinaryString(data[i])).Px(l.cfg.DecisionTTL).Build()
		}
	}
	build()
	rs := l.client.DoMulti(ctx, cmds...)
	for try := 0; ; try++ {
		i := slices.IndexFunc(rs, func(r rueidis.RedisResult) bool { return r.Error() != nil })
		if i < 0 || !resend(ctx, rs[i].Error(), try) {
			break
		}
		build() // SET is idempotent: send all again
		rs = l.client.DoMulti(ctx, cmds...)
	}
	n := 0
	var errs []error
	for _, r := range rs {
		if err := r.Error(); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// GetDecision reads a decision's features; ok false when absent (never
// written, or expired).
func (l *LearnStream) GetDecision(ctx context.Context, id string) (data []byte, ok bool, err error) {
	b, err := l.client.Do(ctx, l.client.B().Get().Key(l.decPrefix+id).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// Publish appends an observation to the stream and returns its id.
func (l *LearnStream) Publish(ctx context.Context, data []byte) (string, error) {
	return l.publish(ctx, data, l.nonce+strconv.FormatUint(l.pubs.Add(1), 36))
}

// publish appends data unless an append with the same nonce was made in
// the last publishNonceTTL, and returns the id of the entry.
func (l *LearnStream) publish(ctx context.Context, data []byte, nonce string) (string, error) {
	return l.exec(ctx, publishScript, []string{l.stream, l.pubPrefix + nonce},
		[]string{strconv.FormatInt(l.cfg.MaxLen, 10), rueidis.BinaryString(data), strconv.FormatInt(publishNonceTTL.Milliseconds(), 10)}).ToString()
}

var publishScript = rueidis.NewLuaScript(`
local id = redis.call('GET', KEYS[2])
if id then return id end
id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'o', ARGV[2])
redis.call('SET', KEYS[2], id, 'PX', ARGV[3])
return id`)

// Read returns up to count entries after id ("0-0": from the start),
// waiting up to block for the first (0: not at all); none when nothing
// came.
func (l *LearnStream) Read(ctx context.Context, after string, count int64, block time.Duration) ([]StreamEntry, error) {
	cmd := l.client.B().Xread().Count(count).Streams().Key(l.stream).Id(after).Build()
	if block > 0 { // BLOCK 0 would wait forever
		cmd = l.client.B().Xread().Count(count).Block(block.Milliseconds()).Streams().Key(l.stream).Id(after).Build()
	}
	res, err := l.client.Do(ctx, cmd).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []StreamEntry
	for _, e := range res[l.stream] {
		out = append(out, StreamEntry{ID: e.ID, Data: []byte(e.FieldValues["o"])})
	}
	return out, nil
}

// Trimmed reports whether entries after id were trimmed from the stream
// (a replica resuming from id has missed them): the stream lost entries
// and its first entry is after id. It errs on the safe side when id is
// exactly the last entry trimmed (reported as a gap).
func (l *LearnStream) Trimmed(ctx context.Context, after string) (bool, error) {
	m, err := l.client.Do(ctx, l.client.B().XinfoStream().Key(l.stream).Build()).AsMap()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return false, nil
		}
		return false, err
	}
	first, length, added := m["recorded-first-entry-id"], m["length"], m["entries-added"]
	firstID, err1 := first.ToString()
	n, err2 := length.AsInt64()
	total, err3 := added.AsInt64()
	if err := errors.Join(err1, err2, err3); err != nil {
		return false, err
	}
	return total > n && CompareStreamIDs(firstID, after) > 0, nil
}

// CompareStreamIDs compares two stream ids ("ms-seq") as Redis orders
// them; an id that does not parse sorts first.
func CompareStreamIDs(a, b string) int {
	am, as := parseStreamID(a)
	bm, bs := parseStreamID(b)
	switch {
	case am != bm:
		if am < bm {
			return -1
		}
		return 1
	case as != bs:
		if as < bs {
			return -1
		}
		return 1
	}
	return 0
}

func parseStreamID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}

var addPendingScript = rueidis.NewLuaScript(`
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {} end
local out = {}
local n = redis.call('ZCARD', KEYS[1])
while n >= tonumber(ARGV[4]) do
  local p = redis.call('ZPOPMIN', KEYS[1])
  local d = redis.call('HGET', KEYS[2], p[1]) or ''
  redis.call('HDEL', KEYS[2], p[1])
  table.insert(out, p[1]); table.insert(out, p[2]); table.insert(out, d)
  n = n - 1
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return out`)

var takePendingScript = rueidis.NewLuaScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return false end
local d = redis.call('HGET', KEYS[2], ARGV[1]) or ''
redis.call('HDEL', KEYS[2], ARGV[1])
return d`)

var expirePendingScript = rueidis.NewLuaScript(`
local ms = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #ms, 2 do
  local d = redis.call('HGET', KEYS[2], ms[i]) or ''
  redis.call('ZREM', KEYS[1], ms[i])
  redis.call('HDEL', KEYS[2], ms[i])
  table.insert(out, ms[i]); table.insert(out, ms[i+1]); table.insert(out, d)
end
return out`)

var saveCheckpointScript = rueidis.NewLuaScript(`
local cur = redis.call('HGET', KEYS[1], 'id')
if cur then
  local a, b = string.match(cur, '^(%d+)-(%d+)$')
  local c, d = string.match(ARGV[1], '^(%d+)-(%d+)$')
  if not c then return redis.error_reply('bad stream id') end
  if a then
    a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
    if c < a or (c == a and d <= b) then return 0 end
  end
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'data', ARGV[2])
return 1`)

func pendingMember(customer, action string) string { return customer + "\x00" + action }

func pendingEntries(vals []rueidis.RedisMessage) ([]PendingEntry, error) {
	var out []PendingEntry
	for i := 0; i+2 < len(vals); i += 3 {
		m, err1 := vals[i].ToString()
		score, err2 := vals[i+1].ToString()
		d, err3 := vals[i+2].ToString()
		if err := errors.Join(err1, err2, err3); err != nil {
			return out, err
		}
		c, a, _ := strings.Cut(m, "\x00")
		ms, _ := strconv.ParseFloat(score, 64)
		out = append(out, PendingEntry{Customer: c, Action: a, DecisionID: d, At: time.UnixMilli(int64(ms)).UTC()})
	}
	return out, nil
}

// AddPending records an impression awaiting its outcome, unless the same
// customer and action already await one. When the bound is reached it
// removes and returns the oldest, which the caller observes as ignored.
func (l *LearnStream) AddPending(ctx context.Context, customer, action, decisionID string, at time.Time) ([]PendingEntry, error) {
	vals, err := l.exec(ctx, addPendingScript, []string{l.pending, l.pendingDec},
		[]string{pendingMember(customer, action), strconv.FormatInt(at.UnixMilli(), 10), decisionID, strconv.FormatInt(l.cfg.MaxPending, 10)}).ToArray()
	if err != nil {
		return nil, err
	}
	return pendingEntries(vals)
}

// TakePending removes an impression awaiting its outcome; ok is true for
// the one caller that removed it, with the decision id it was shown by.
func (l *LearnStream) TakePending(ctx context.Context, customer, action string) (decisionID string, ok bool, err error) {
	d, err := l.exec(ctx, takePendingScript, []string{l.pending, l.pendingDec}, []string{pendingMember(customer, action)}).ToString()
	if rueidis.IsRedisNil(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return d, true, nil
}

// ExpirePending removes and returns up to max impressions shown before
// cutoff, oldest first; each is returned to one caller only.
func (l *LearnStream) ExpirePending(ctx context.Context, cutoff time.Time, max int) ([]PendingEntry, error) {
	vals, err := l.exec(ctx, expirePendingScript, []string{l.pending, l.pendingDec},
		[]string{strconv.FormatInt(cutoff.UnixMilli(), 10), strconv.Itoa(max)}).ToArray()
	if err != nil {
		return nil, err
	}
	return pendingEntries(vals)
}

// PendingLen returns the number of impressions awaiting an outcome.
func (l *LearnStream) PendingLen(ctx context.Context) (int64, error) {
	return l.client.Do(ctx, l.client.B().Zcard().Key(l.pending).Build()).AsInt64()
}

// SaveCheckpoint stores a learner checkpoint covering the stream up to id,
// unless the one stored covers id or later; it reports whether it stored.
func (l *LearnStream) SaveCheckpoint(ctx context.Context, id string, data []byte) (bool, error) {
	n, err := l.exec(ctx, saveCheckpointScript, []string{l.ckpt}, []string{id, rueidis.BinaryString(data)}).AsInt64()
	return n == 1, err
}

// LoadCheckpoint reads the stored learner checkpoint and the stream id it
// covers; ok false when there is none.
func (l *LearnStream) LoadCheckpoint(ctx context.Context) (id string, data []byte, ok bool, err error) {
	m, err := l.client.Do(ctx, l.client.B().Hgetall().Key(l.ckpt).Build()).AsStrMap()
	if err != nil {
		return "", nil, false, err
	}
	id, ok = m["id"]
	if !ok {
		return "", nil, false, nil
	}
	return id, []byte(m["data"]), true, nil
}

var erasePendingScript = rueidis.NewLuaScript(`
local n = 0
for i = 1, #ARGV do
  n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
end
return n`)

// ErasePending removes the customer's impressions awaiting an outcome,
// for the actions given (the catalog's), in one script; it returns how
// many it removed. Erasure: their observations are never published.
func (l *LearnStream) ErasePending(ctx context.Context, customer string, actions []string) (int, error) {
	if len(actions) == 0 {
		return 0, nil
	}
	members := make([]string, len(actions))
	for i, a := range actions {
		members[i] = pendingMember(customer, a)
	}
	n, err := l.exec(ctx, erasePendingScript, []string{l.pending, l.pendingDec}, members).AsInt64()
	return int(n), err
}
