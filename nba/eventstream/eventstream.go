// Package eventstream consumes customer events from a Redis stream through a
// consumer group and applies each with the function POST /v1/events uses,
// so that a CDP or an ETL job can push events instead of calling every
// sidecar.
//
// Guarantees: an entry is acknowledged (XACK) only after the event is
// applied, durably as the state backend defines it, or after it was copied
// to the dead-letter stream; delivery is at least once, and applying is
// idempotent by event_id (by the entry's stream id when it has none), so a
// redelivery is counted as a duplicate and changes nothing. An entry that
// cannot be applied now (the state is unavailable, a conflict) stays
// pending and is retried, in stream order, after a backoff; new entries
// wait meanwhile. An entry that can never be applied (bad JSON, an unknown
// type, a ts out of range, no customer) goes to the dead-letter stream with
// its reason and its fields, is counted and acknowledged. Entries left
// pending by a consumer that died are taken over (XPENDING, XCLAIM) once idle for
// Config.MinIdle.
//
// Order: a consumer applies one customer's entries in stream order, one at
// a time, and different customers' at once (Config.Parallel), so that
// their durable writes share the state's group commits. Two consumers of
// one group may apply one customer's entries in either order, as two HTTP
// calls may. A stream is one Redis key: on a Cluster it lives on one
// shard.
package eventstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"nba/nba/metrics"
	"nba/nba/server"
)

// Entry fields. Other fields are ignored.
const (
	FieldCustomer = "customer_id" // required unless ids names the customer
	FieldIDs      = "ids"         // a JSON object of identifiers by namespace, as "ids" of POST /v1/events
	FieldType     = "type"        // required
	FieldTS       = "ts"          // RFC 3339; absent: the time the entry is applied
	FieldEventID  = "event_id"    // idempotency key; absent or empty: IDPrefix + the entry's stream id
	FieldAttrs    = "attrs"       // a JSON object of strings, numbers and booleans
)

// Fields a dead-letter entry carries before the original entry's fields.
const (
	DeadReason = "dead_reason" // why the entry cannot be applied
	DeadID     = "dead_id"     // the entry's id in the source stream
)

// IDPrefix prefixes an entry's stream id to make the event_id of an entry
// without one: a redelivery of the same entry is then a duplicate, but the
// same event pushed twice (two XADDs) is applied twice.
const IDPrefix = "stream:"

// Config configures a Consumer.
type Config struct {
	// URL of the Redis holding the stream, in the forms rueidis.ParseURL
	// accepts. Required.
	URL string
	// Stream is the stream's key. Required.
	Stream string
	// Group is the consumer group; created at the start of the stream
	// (id 0, MKSTREAM) when missing, so events pushed before the first
	// consumer started are applied. Required.
	Group string
	// Consumer names this consumer in the group. Default hostname-pid.
	Consumer string
	// DeadLetter is the key of the dead-letter stream. Default Stream+":dead".
	DeadLetter string
	// DeadLetterMaxLen bounds the dead-letter stream (XADD MAXLEN ~).
	// Default 100,000 entries.
	DeadLetterMaxLen int64
	// Count is the most entries one read takes. Default 100.
	Count int64
	// Parallel is the most entries applied at once (of different
	// customers; one customer's are applied in order). Default 32.
	Parallel int
	// Block is how long a read waits for new entries; it also bounds how
	// long Stop waits for the loop. Default 1s.
	Block time.Duration
	// MinIdle is how long an entry must have been pending with another
	// consumer before this one takes it over (XCLAIM). It must exceed
	// the time a live consumer takes to apply a read's entries. Default 1m.
	MinIdle time.Duration
	// ClaimEvery is how often to look for such entries. Default MinIdle/2.
	ClaimEvery time.Duration
	// MaxBackoff is the longest wait before retrying an entry that could
	// not be applied (the wait doubles from 50ms). Default 5s.
	MaxBackoff time.Duration
	// StatsEvery is how often the group's lag and pending count are read.
	// Default 5s.
	StatsEvery time.Duration
	// Decoder checks entries with the bounds of POST /v1/events. Default:
	// server.NewEventDecoder of the zero Config.
	Decoder *server.EventDecoder
	// Apply applies one event durably, as POST /v1/events does, and
	// reports whether it was a duplicate. A *server.Error with code
	// state_unavailable, conflict or not_ready leaves the entry pending
	// for a retry; erased (the customer was erased) acknowledges and
	// drops it; any other error sends it to the dead-letter stream.
	// Required.
	Apply func(ev *server.Event) (dup bool, err error)
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock of entries without a ts. Default time.Now.
	Now func() time.Time
}

// Stats are a Consumer's counters since it started.
type Stats struct {
	Stream   string `json:"stream"`
	Group    string `json:"group"`
	Consumer string `json:"consumer"`
	// Consumed counts entries handled (applied, duplicate or
	// dead-lettered), once each time one is acknowledged.
	Consumed     uint64 `json:"consumed"`
	Applied      uint64 `json:"applied"`
	Duplicates   uint64 `json:"duplicates"`
	DeadLettered uint64 `json:"dead_lettered"`
	// Retried counts entries left pending because they could not be
	// applied now (the state unavailable); each is retried later.
	Retried uint64 `json:"retried"`
	// Claimed counts entries taken over from other consumers, pending with
	// them past MinIdle (not this consumer's own entries it retries).
	Claimed uint64 `json:"claimed"`
	// Errors counts failed calls to the stream's Redis.
	Errors uint64 `json:"redis_errors"`
	// Lag is the group's count of entries not yet delivered (XINFO
	// GROUPS lag), -1 when Redis cannot tell; Pending those delivered but
	// not acknowledged. Both as last read (every StatsEvery).
	Lag     int64 `json:"lag"`
	Pending int64 `json:"pending"`
}

// Consumer reads a stream through a consumer group in a background loop.
// It is safe for concurrent use.
type Consumer struct {
	cfg    Config
	client rueidis.Client
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once // Stop's work, done once however many call it

	consumed, applied, dups, dead, retried, claimed, errs atomic.Uint64
	lag, pending                                          atomic.Int64
	errLogged                                             atomic.Int64
}

// Start checks cfg, connects, creates the group if missing and starts
// consuming. Stop ends it.
func Start(cfg Config) (*Consumer, error) {
	if cfg.URL == "" || cfg.Stream == "" || cfg.Group == "" {
		return nil, errors.New("cannot consume events: a Redis URL, a stream and a group are required")
	}
	if cfg.Apply == nil {
		return nil, errors.New("cannot consume events: no Apply")
	}
	if cfg.Consumer == "" {
		host, _ := os.Hostname()
		cfg.Consumer = host + "-" + strconv.Itoa(os.Getpid())
	}
	if cfg.DeadLetter == "" {
		cfg.DeadLetter = cfg.Stream + ":dead"
	}
	if cfg.DeadLetter == cfg.Stream {
		return nil, errors.New("cannot consume events: the dead-letter stream is the stream itself")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.DeadLetterMaxLen <= 0 {
		cfg.DeadLetterMaxLen = 100_000
	}
	if cfg.Count <= 0 {
		cfg.Count = 100
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 32
	}
	def(&cfg.Block, time.Second)
	def(&cfg.MinIdle, time.Minute)
	def(&cfg.ClaimEvery, cfg.MinIdle/2)
	def(&cfg.MaxBackoff, 5*time.Second)
	def(&cfg.StatsEvery, 5*time.Second)
	if cfg.Decoder == nil {
		d, err := server.NewEventDecoder(server.Config{})
		if err != nil {
			return nil, err
		}
		cfg.Decoder = d
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opt, err := rueidis.ParseURL(cfg.URL)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // its text quotes the URL, password included
	}
	if err != nil {
		return nil, fmt.Errorf("cannot consume events: -events.redis.url: %w", err)
	}
	opt.DisableCache = true // nothing here is read twice
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("cannot consume events: cannot connect to Redis: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = client.Do(ctx, client.B().XgroupCreate().Key(cfg.Stream).Group(cfg.Group).Id("0").Mkstream().Build()).Error()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		client.Close()
		return nil, fmt.Errorf("cannot consume events: cannot create group %q of stream %q: %w", cfg.Group, cfg.Stream, err)
	}
	c := &Consumer{cfg: cfg, client: client, log: cfg.Logger.With("stream", cfg.Stream, "group", cfg.Group, "consumer", cfg.Consumer),
		stop: make(chan struct{}), done: make(chan struct{})}
	c.lag.Store(-1)
	c.refreshStats()
	go c.run()
	c.log.Info("consuming events from a Redis stream", "dead_letter", cfg.DeadLetter)
	return c, nil
}

// Stop ends the loop after the entries in hand are handled (at most Block
// later), then closes the connection. Entries read but not handled stay
// pending for this consumer's name, or another's XCLAIM.
func (c *Consumer) Stop() {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.client.Close()
	})
}

// Stats returns the counters.
func (c *Consumer) Stats() Stats {
	return Stats{Stream: c.cfg.Stream, Group: c.cfg.Group, Consumer: c.cfg.Consumer,
		Consumed: c.consumed.Load(), Applied: c.applied.Load(), Duplicates: c.dups.Load(), DeadLettered: c.dead.Load(),
		Retried: c.retried.Load(), Claimed: c.claimed.Load(), Errors: c.errs.Load(), Lag: c.lag.Load(), Pending: c.pending.Load()}
}

// RegisterMetrics registers the counters on set as nba_eventstream_*.
func (c *Consumer) RegisterMetrics(set *metrics.Set) error {
	for _, m := range []struct {
		name, help string
		f          func() uint64
	}{
		{"nba_eventstream_consumed_total", "Stream entries handled and acknowledged (applied, duplicate or dead-lettered).", c.consumed.Load},
		{"nba_eventstream_applied_total", "Stream entries applied to customer state.", c.applied.Load},
		{"nba_eventstream_duplicates_total", "Stream entries acknowledged without change: their event_id was remembered.", c.dups.Load},
		{"nba_eventstream_dead_lettered_total", "Stream entries that cannot be applied, copied to the dead-letter stream with their reason.", c.dead.Load},
		{"nba_eventstream_retried_total", "Times an entry was left pending because it could not be applied now (state unavailable); retried later.", c.retried.Load},
		{"nba_eventstream_claimed_total", "Pending entries taken over from consumers idle past -events.redis.minIdle.", c.claimed.Load},
		{"nba_eventstream_redis_errors_total", "Failed calls to the stream's Redis.", c.errs.Load},
	} {
		if err := set.NewCounterFunc(m.name, m.help, m.f); err != nil {
			return err
		}
	}
	if err := set.NewGaugeFunc("nba_eventstream_lag", "Entries of the stream not yet delivered to the group (-1: unknown).", func() float64 { return float64(c.lag.Load()) }); err != nil {
		return err
	}
	return set.NewGaugeFunc("nba_eventstream_pending", "Entries delivered to the group and not yet acknowledged.", func() float64 { return float64(c.pending.Load()) })
}

func (c *Consumer) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// sleep waits d or until Stop; it reports false on Stop.
func (c *Consumer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.stop:
		return false
	case <-t.C:
		return true
	}
}

// run is the loop: this consumer's own pending entries first (from a
// previous run of the same name, or left by a failure), then new ones;
// every ClaimEvery, entries idle with other consumers.
func (c *Consumer) run() {
	defer close(c.done)
	const minBackoff = 50 * time.Millisecond
	backoff := minBackoff
	fail := func() bool { // waits before the next attempt
		ok := c.sleep(backoff)
		backoff = min(2*backoff, c.cfg.MaxBackoff)
		return ok
	}
	own := "0" // the next id to read from this consumer's pending entries; "" reads new ones
	var nextClaim, nextStats time.Time
	for !c.stopped() {
		now := time.Now()
		if !now.Before(nextStats) {
			c.refreshStats()
			nextStats = now.Add(c.cfg.StatsEvery)
		}
		if !now.Before(nextClaim) {
			nextClaim = now.Add(c.cfg.ClaimEvery)
			if !c.claim() {
				own = "0" // what was claimed and not applied is pending here
				if !fail() {
					return
				}
				continue
			}
		}
		entries, err := c.read(own)
		if err != nil {
			c.redisError("cannot read the stream", err)
			if !fail() {
				return
			}
			continue
		}
		if own != "" && len(entries) == 0 {
			own = "" // the pending entries are done: read new ones
			continue
		}
		if !c.handle(entries) {
			own = "0"
			if !fail() {
				return
			}
			continue
		}
		backoff = minBackoff
		if own != "" {
			own = entries[len(entries)-1].ID
		}
	}
}

// read reads this consumer's pending entries after id own, or new entries
// (waiting up to Block) when own is "".
func (c *Consumer) read(own string) ([]rueidis.XRangeEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Block+5*time.Second)
	defer cancel()
	g := c.client.B().Xreadgroup().Group(c.cfg.Group, c.cfg.Consumer).Count(c.cfg.Count)
	var cmd rueidis.Completed
	if own == "" {
		cmd = g.Block(c.cfg.Block.Milliseconds()).Streams().Key(c.cfg.Stream).Id(">").Build()
	} else {
		cmd = g.Streams().Key(c.cfg.Stream).Id(own).Build()
	}
	res, err := c.client.Do(ctx, cmd).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil // nothing new before the timeout
	}
	if err != nil {
		return nil, err
	}
	return res[c.cfg.Stream], nil
}

// claim takes over the entries pending with another consumer for longer
// than MinIdle and handles them. It reports false when one is left
// pending. This consumer's own pending entries are not claimed (XAUTOCLAIM
// would take them too): run retries them by reading its own history, and
// Claimed counts only entries taken from another consumer.
func (c *Consumer) claim() bool {
	start := "-"
	idle := c.cfg.MinIdle.Milliseconds()
	for !c.stopped() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rows, err := c.client.Do(ctx, c.client.B().Xpending().Key(c.cfg.Stream).Group(c.cfg.Group).Idle(idle).
			Start(start).End("+").Count(c.cfg.Count).Build()).ToArray()
		cancel()
		var ids []string
		last := ""
		for _, r := range rows {
			if err != nil {
				break
			}
			var row []rueidis.RedisMessage
			if row, err = r.ToArray(); err == nil && len(row) < 2 {
				err = fmt.Errorf("XPENDING answered a row of %d elements", len(row))
			}
			var id, owner string
			if err == nil {
				id, err = row[0].ToString()
			}
			if err == nil {
				owner, err = row[1].ToString()
			}
			if err == nil {
				last = id
				if owner != c.cfg.Consumer {
					ids = append(ids, id)
				}
			}
		}
		if err != nil {
			c.redisError("cannot list idle pending entries", err)
			return false
		}
		if len(ids) > 0 {
			// XCLAIM checks the idle time again: an entry its consumer
			// touched meanwhile stays with it.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			entries, err := c.client.Do(ctx, c.client.B().Xclaim().Key(c.cfg.Stream).Group(c.cfg.Group).Consumer(c.cfg.Consumer).
				MinIdleTime(strconv.FormatInt(idle, 10)).Id(ids...).Build()).AsXRange()
			cancel()
			if err != nil {
				c.redisError("cannot claim idle pending entries", err)
				return false
			}
			if len(entries) > 0 {
				c.claimed.Add(uint64(len(entries)))
				c.log.Info("took over entries idle with another consumer", "entries", len(entries))
				if !c.handle(entries) {
					return false
				}
			}
		}
		if int64(len(rows)) < c.cfg.Count || last == "" {
			return true
		}
		start = "(" + last // exclusive: after the last row listed
	}
	return true
}

// handle handles entries and acknowledges those handled. The entries of
// one customer are applied in order, one at a time; different customers'
// at once, up to Parallel (so that their durable writes share a group
// commit). A customer's entries stop at the first that cannot be applied
// now: it and the customer's later entries stay pending, and handle
// reports false.
func (c *Consumer) handle(entries []rueidis.XRangeEntry) bool {
	type job struct {
		ev   server.Event
		done bool // applied, a duplicate, dead-lettered or gone: acknowledge it
	}
	jobs := make([]job, len(entries))
	var order []string // customers in order of first entry
	byCustomer := map[string][]int{}
	for i, e := range entries {
		if e.FieldValues == nil {
			jobs[i].done = true // deleted from the stream while pending: nothing to apply
			continue
		}
		if err := c.decode(e, &jobs[i].ev); err != nil {
			jobs[i].done = c.deadLetter(e, err.Error())
			continue
		}
		// Entries named by ids alone share one queue (""): which
		// customer they name is known only once applied, so they are
		// applied one at a time, in stream order.
		id := jobs[i].ev.CustomerID
		if _, ok := byCustomer[id]; !ok {
			order = append(order, id)
		}
		byCustomer[id] = append(byCustomer[id], i)
	}
	sem := make(chan struct{}, c.cfg.Parallel)
	var wg sync.WaitGroup
	for _, id := range order {
		idx := byCustomer[id]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, i := range idx {
				if !c.apply(entries[i], &jobs[i].ev) {
					return
				}
				jobs[i].done = true
			}
		})
	}
	wg.Wait()
	acks := make([]string, 0, len(entries))
	ok := true
	for i := range jobs {
		if jobs[i].done {
			acks = append(acks, entries[i].ID)
		} else {
			ok = false
		}
	}
	if len(acks) == 0 {
		return ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.client.Do(ctx, c.client.B().Xack().Key(c.cfg.Stream).Group(c.cfg.Group).Id(acks...).Build()).Error(); err != nil {
		// Applied but not acknowledged: redelivered later, then a duplicate.
		c.redisError("cannot acknowledge entries", err)
		return false
	}
	c.consumed.Add(uint64(len(acks)))
	return ok
}

// decode fills ev from an entry's fields; the entry's stream id keys an
// event without event_id.
func (c *Consumer) decode(e rueidis.XRangeEntry, ev *server.Event) error {
	f := e.FieldValues
	in := server.EventFields{CustomerID: f[FieldCustomer], Type: f[FieldType], TS: f[FieldTS], EventID: f[FieldEventID]}
	if a := f[FieldAttrs]; a != "" {
		in.Attrs = []byte(a)
	}
	if a := f[FieldIDs]; a != "" {
		in.IDs = []byte(a)
	}
	if err := c.cfg.Decoder.Decode(in, ev, c.cfg.Now()); err != nil {
		return err
	}
	if ev.EventID == "" {
		ev.EventID = IDPrefix + e.ID
	}
	return nil
}

// apply applies one decoded entry, or dead-letters it. It reports false
// when the entry must stay pending. A panic in Apply dead-letters the
// entry (as POST /v1/events answers 500): otherwise it would end the
// process, and the restarted consumer would read the entry first again.
func (c *Consumer) apply(e rueidis.XRangeEntry, ev *server.Event) bool {
	dup, err := c.applySafely(ev)
	if err == nil {
		if dup {
			c.dups.Add(1)
		} else {
			c.applied.Add(1)
		}
		return true
	}
	var se *server.Error
	if errors.As(err, &se) {
		switch se.Code {
		case server.CodeStateUnavailable, server.CodeConflict, server.CodeNotReady:
			c.retried.Add(1)
			if c.logDue() {
				c.log.Warn("cannot apply event now; it stays pending and is retried", "id", e.ID, "error", err)
			}
			return false
		case server.CodeErased:
			// Acknowledged and dropped: a dead-letter copy would keep
			// the erased customer's id.
			return true
		}
		return c.deadLetter(e, se.Code+": "+se.Message)
	}
	return c.deadLetter(e, "internal: "+err.Error())
}

// applySafely calls Apply, turning a panic into an error.
func (c *Consumer) applySafely(ev *server.Event) (dup bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			dup, err = false, fmt.Errorf("panic: %v", r)
		}
	}()
	return c.cfg.Apply(ev)
}

// deadLetter copies an entry to the dead-letter stream with its reason. It
// reports false when that fails (the entry stays pending).
func (c *Consumer) deadLetter(e rueidis.XRangeEntry, reason string) bool {
	keys := make([]string, 0, len(e.FieldValues))
	for k := range e.FieldValues {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	cmd := c.client.B().Xadd().Key(c.cfg.DeadLetter).Maxlen().Almost().Threshold(strconv.FormatInt(c.cfg.DeadLetterMaxLen, 10)).
		Id("*").FieldValue().FieldValue(DeadReason, reason).FieldValue(DeadID, e.ID)
	for _, k := range keys {
		cmd = cmd.FieldValue(k, e.FieldValues[k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.client.Do(ctx, cmd.Build()).Error(); err != nil {
		c.redisError("cannot write the dead-letter stream", err)
		return false
	}
	c.dead.Add(1)
	if c.logDue() {
		c.log.Warn("event cannot be applied; copied to the dead-letter stream", "id", e.ID, "reason", reason, "dead_letter", c.cfg.DeadLetter)
	}
	return true
}

// refreshStats reads the group's lag and pending count.
func (c *Consumer) refreshStats() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	groups, err := c.client.Do(ctx, c.client.B().XinfoGroups().Key(c.cfg.Stream).Build()).ToArray()
	if err != nil {
		c.redisError("cannot read the group's lag", err)
		return
	}
	for _, g := range groups {
		m, err := g.AsMap()
		if err != nil {
			continue
		}
		name, p := m["name"], m["pending"]
		if g, _ := name.ToString(); g != c.cfg.Group {
			continue
		}
		if n, err := p.AsInt64(); err == nil {
			c.pending.Store(n)
		}
		lag := int64(-1)
		if l, ok := m["lag"]; ok {
			if n, err := l.AsInt64(); err == nil {
				lag = n
			}
		}
		c.lag.Store(lag)
	}
}

const logEvery = 10 * time.Second

// logDue spaces repeated warnings: at most one every logEvery.
func (c *Consumer) logDue() bool {
	now := time.Now().UnixNano()
	last := c.errLogged.Load()
	return now-last >= int64(logEvery) && c.errLogged.CompareAndSwap(last, now)
}

func (c *Consumer) redisError(msg string, err error) {
	c.errs.Add(1)
	if c.logDue() {
		c.log.Warn(msg, "error", err)
	}
}
