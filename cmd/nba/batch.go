package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"nba/nba"
	"nba/nba/server"
	"nba/nba/sidecar"
)

func init() {
	register(command{name: "decide", summary: "decide for one customer from the command line", run: runDecide})
	register(command{name: "batch", summary: "decide for all (or listed) customers of a bundle: outbound runs, JSON Lines out", run: runBatch})
}

// bundleFlags are the flags decide and batch share to open a bundle.
type bundleFlags struct {
	bundle, state string
	redis         redisFlags
	reserveTTL    time.Duration // batch only; 0: the default
}

func (f *bundleFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&f.bundle, "bundle", "", "bundle directory; empty uses the embedded demo")
	fset.StringVar(&f.state, "state", "", "customer state directory to read contact history and journeys from (must not be in use by a running server); empty: none; with -state.redis, this process's own files only")
	f.redis.register(fset)
}

// redisFlags are the flags that put the customer state on Redis, shared
// by serve, decide and batch.
type redisFlags struct {
	url           string
	waitReplicas  int
	allowVolatile bool
	readTimeout   time.Duration
}

func (f *redisFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&f.url, "state.redis", "", "keep the customer state on Redis, shared by every process using it: redis://[user:pass@]host:port, rediss://..., several ?addr=host:port for a Cluster, ?master_set=name for Sentinel; -state then holds only this process's decision log and files")
	fset.IntVar(&f.waitReplicas, "state.redis.waitReplicas", 0, "acknowledge a feedback or event only after this many Redis replicas have it (WAIT)")
	fset.BoolVar(&f.allowVolatile, "state.redis.allowVolatile", false, "start on a Redis without an append-only file (acknowledged writes are lost when Redis restarts)")
	fset.DurationVar(&f.readTimeout, "state.redis.readTimeout", 100*time.Millisecond, "how long a decision waits for a customer's state from Redis before deciding without it (marked stale)")
}

// check refuses the Redis-only flags without -state.redis (they would
// be ignored silently on the embedded state) and values out of range.
func (f *redisFlags) check(fset *flag.FlagSet) error {
	if f.url == "" {
		for _, name := range [...]string{"state.redis.waitReplicas", "state.redis.allowVolatile", "state.redis.readTimeout"} {
			if flagSet(fset, name) {
				return fmt.Errorf("-%s needs -state.redis: it applies only to customer state on Redis", name)
			}
		}
	}
	if f.waitReplicas < 0 {
		return fmt.Errorf("-state.redis.waitReplicas must not be negative (got %d)", f.waitReplicas)
	}
	if f.readTimeout < 0 {
		return fmt.Errorf("-state.redis.readTimeout must not be negative (got %v)", f.readTimeout)
	}
	return nil
}

// checkReserveTTL refuses a negative -caps.reserveTTL (0 is the default).
func checkReserveTTL(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("-caps.reserveTTL must not be negative (got %v)", d)
	}
	return nil
}

func (f *bundleFlags) open() (*sidecar.Sidecar, func(), error) {
	bundle, name, err := openBundle(f.bundle)
	if err != nil {
		return nil, nil, err
	}
	dir, cleanup := f.state, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "nba-state-"); err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	s, err := sidecar.Open(sidecar.Config{Bundle: bundle, BundleName: name, StateDir: dir, Logger: quietLogger(),
		StateRedis: f.redis.url, StateRedisWaitReplicas: f.redis.waitReplicas, StateRedisAllowVolatile: f.redis.allowVolatile, StateRedisReadTimeout: f.redis.readTimeout, ReserveTTL: f.reserveTTL})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return s, func() { s.Close(); cleanup() }, nil
}

// contextFlag collects -context key=value pairs; typed() types them by
// the catalog's declarations.
type contextFlag [][2]string

func (c *contextFlag) String() string { return fmt.Sprint(*c) }

func (c *contextFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	*c = append(*c, [2]string{k, v})
	return nil
}

// typed returns the pairs as request fields of the kinds cat declares, as
// a JSON request would carry them, or an error naming a value that is not
// of its declared kind. Undeclared keys (which the engine ignores) are
// strings.
func (c contextFlag) typed(cat *nba.Catalog) ([]server.Field, error) {
	var out []server.Field
	for _, kv := range c {
		k, v := kv[0], kv[1]
		f := server.Field{Key: k, Kind: server.KindString, Str: v}
		kind, declared := cat.ContextKind(k)
		switch {
		case !declared || kind == nba.KindCategory:
		case kind == nba.KindBool:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("-context %s=%s: the catalog declares %s a bool (true or false)", k, v, k)
			}
			f = server.Field{Key: k, Kind: server.KindBool, Bool: b}
		case kind == nba.KindNumber || kind == nba.KindTime:
			num, err := strconv.ParseFloat(v, 64)
			if err == nil && !math.IsInf(num, 0) && !math.IsNaN(num) {
				f = server.Field{Key: k, Kind: server.KindNumber, Num: num}
			} else if kind == nba.KindNumber {
				return nil, fmt.Errorf("-context %s=%s: the catalog declares %s a number", k, v, k)
			} // a time may also be an RFC 3339 string
		}
		out = append(out, f)
	}
	return out, nil
}

func runDecide(args []string) error {
	fset := flag.NewFlagSet("decide", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba decide -customer ID [flags]

Decides once for one customer against a bundle, without a server, and prints
the decision exactly as POST /v1/decide answers a dry run of the same request
(one line of JSON; pipe it to jq to read it). The decision changes no state.
-context values are typed by the catalog's context declarations.

Examples:
  nba decide -customer c00042 -channel web -limit 3
  nba decide -customer c00042 -channel agent -explain -context page=checkout
  nba decide -customer c00042 -channel email -at 2026-12-24T09:00:00Z

Flags:
`)
		fset.PrintDefaults()
	}
	var bf bundleFlags
	bf.register(fset)
	customer := fset.String("customer", "", "customer id (required; ids not in the snapshot are decided as anonymous)")
	channel := fset.String("channel", "web", "channel")
	placement := fset.String("placement", "", "placement")
	limit := fset.Int("limit", 1, "actions wanted")
	explain := fset.Bool("explain", false, "list every candidate with the stage that removed it or its scores")
	var at time.Time
	fset.Func("at", "decide as of this RFC 3339 time instead of now (schedules, waits, windows, hour()), as \"at\" in a dry-run request", func(v string) error {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return errors.New("want an RFC 3339 time such as 2026-12-24T09:00:00Z")
		}
		at = t
		return nil
	})
	var ctx contextFlag
	fset.Var(&ctx, "context", "request context field key=value (repeatable)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := bf.redis.check(fset); err != nil {
		return err
	}
	if *customer == "" {
		return errors.New("-customer is required: the id of the customer to decide for")
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fset.Arg(0))
	}
	s, done, err := bf.open()
	if err != nil {
		return err
	}
	defer done()
	fields, err := ctx.typed(s.Catalog())
	if err != nil {
		return err
	}
	req := server.DecideRequest{DecisionID: server.NewDecisionIDs().Next(), CustomerID: *customer, Channel: *channel, Placement: *placement, Limit: *limit,
		Context: fields, Explain: *explain, DryRun: true, At: at}
	var resp server.DecideResponse
	start := time.Now()
	if err := s.Decide(&req, &resp); err != nil {
		return err
	}
	out := server.AppendDecision(nil, &req, &resp, time.Since(start))
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}

func runBatch(args []string) error {
	fset := flag.NewFlagSet("batch", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba batch -channel CHANNEL [flags]

Decides for every customer of the bundle's snapshot (or those listed in
-customers, one id per line; an id listed more than once is decided once,
at its first place) on all cores, and writes one JSON object per line, as
POST /v1/decide answers it (decision_id, customer_id, channel, actions,
control, versions, took_us). Output ending in
.zst is zstd-compressed. On a terminal, progress goes to stderr. Decisions
are dry runs unless -record is given with -state, in which case journey
steps given are recorded there. With -state or -state.redis, actions given
under exact caps are reserved (the run's e-mails are sent): a slot another
process reserved or filled is not given, and an impression quoting the
decision_id turns the reservation into the contact.

Examples:
  nba batch -channel email -out decisions.jsonl.zst
  nba batch -bundle ./bundle -channel push -customers ids.txt -limit 2

Flags:
`)
		fset.PrintDefaults()
	}
	var bf bundleFlags
	bf.register(fset)
	channel := fset.String("channel", "", "channel to decide for (required)")
	limit := fset.Int("limit", 1, "actions per customer")
	list := fset.String("customers", "", "file of customer ids, one per line; empty: every customer of the snapshot")
	outPath := fset.String("out", "-", "output file (- for stdout); a .zst suffix compresses with zstd")
	workers := fset.Int("workers", runtime.GOMAXPROCS(0), "parallel deciders")
	record := fset.Bool("record", false, "record journey steps in -state (not a dry run)")
	fset.DurationVar(&bf.reserveTTL, "caps.reserveTTL", sidecar.DefaultReserveTTL, "how long a reservation of an exact cap holds its slot when no impression quoting the decision follows")
	reserve := fset.Bool("reserve", true, "reserve the exact caps of the actions given, in -state or -state.redis (none without either)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := bf.redis.check(fset); err != nil {
		return err
	}
	if err := checkReserveTTL(bf.reserveTTL); err != nil {
		return err
	}
	if *channel == "" {
		return errors.New("-channel is required")
	}
	if *record && bf.state == "" {
		return errors.New("-record needs -state")
	}
	s, done, err := bf.open()
	if err != nil {
		return err
	}
	defer done()
	var ids []string
	if *list != "" {
		data, err := os.ReadFile(*list)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, l := range strings.Split(string(data), "\n") {
			// A repeated id is decided once: deciding it again would
			// give it a second, different decision (and with -record,
			// a second journey step).
			if l = strings.TrimSpace(l); l != "" && !seen[l] {
				seen[l] = true
				ids = append(ids, l)
			}
		}
	} else {
		ids = s.CustomerIDs()
	}
	var out io.Writer = os.Stdout
	if *outPath != "-" {
		f, err := os.Create(*outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	var zw *zstd.Encoder
	if strings.HasSuffix(*outPath, ".zst") {
		if zw, err = zstd.NewWriter(bw); err != nil {
			return err
		}
		out = zw
	} else {
		out = bw
	}

	reserving := *reserve && (bf.state != "" || bf.redis.url != "")
	// Workers decide chunks of customers; the writer emits chunks in order.
	const chunk = 256
	nchunks := (len(ids) + chunk - 1) / chunk
	results := make([]chan []byte, nchunks)
	for i := range results {
		results[i] = make(chan []byte, 1)
	}
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := 0; w < max(1, *workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp server.DecideResponse
			decisionIDs := server.NewDecisionIDs()
			for {
				c := int(next.Add(1) - 1)
				if c >= nchunks {
					return
				}
				var buf []byte
				part := ids[c*chunk : min((c+1)*chunk, len(ids))]
				// With the state on Redis, the chunk's customers are read
				// in one pipelined round trip instead of one each; a
				// customer the prefetch missed is read by its decision.
				_ = s.Prefetch(context.Background(), part)
				for _, id := range part {
					req := server.DecideRequest{DecisionID: decisionIDs.Next(), CustomerID: id, Channel: *channel, Limit: *limit, DryRun: !*record}
					server.ResetResponse(&resp)
					start := time.Now()
					decide := s.Decide
					if reserving {
						decide = s.DecideReserving
					}
					if err := decide(&req, &resp); err != nil {
						firstErr.CompareAndSwap(nil, &err)
						break
					}
					buf = append(server.AppendDecision(buf, &req, &resp, time.Since(start)), '\n')
				}
				results[c] <- buf
			}
		}()
	}
	progress := newProgress(os.Stderr, len(ids))
	start := time.Now()
	for c := range results {
		b := <-results[c]
		if _, err := out.Write(b); err != nil {
			return err
		}
		progress.add(min(chunk, len(ids)-c*chunk))
	}
	wg.Wait()
	progress.done()
	if e := firstErr.Load(); e != nil {
		return *e
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "decided %d customers on %s in %v\n", len(ids), *channel, time.Since(start).Round(time.Millisecond))
	return nil
}

// progress draws a progress bar when its writer is a terminal, at most
// every 100 ms, and always its final state (the bar used to stay at the
// first chunk's 256/10000 when the rest came within 100 ms).
type progress struct {
	w        io.Writer
	total, n int
	tty      bool
	now      func() time.Time
	last     time.Time
}

func newProgress(f *os.File, total int) *progress {
	fi, err := f.Stat()
	return &progress{w: f, total: total, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0, now: time.Now}
}

func (p *progress) add(n int) {
	p.n += n
	if !p.tty {
		return
	}
	if now := p.now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
}

func (p *progress) draw() {
	const width = 40
	filled := width * min(p.n, p.total) / max(1, p.total)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.n, p.total)
}

func (p *progress) done() {
	if p.tty {
		p.draw()
		fmt.Fprintln(p.w)
	}
}
