package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"nba/state/redis/redistest"
)

// newClient returns a rueidis client for url, closed at cleanup; edit
// adjusts the options before the client is built.
func newClient(t testing.TB, url string, edit func(*rueidis.ClientOption)) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatalf("cannot parse %q: %s", url, err)
	}
	if edit != nil {
		edit(&opt)
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("cannot connect to %s: %s", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// configGet returns CONFIG GET name as a string.
func configGet(t *testing.T, c rueidis.Client, name string) string {
	t.Helper()
	m, err := c.Do(ctxT(t), c.B().ConfigGet().Parameter(name).Build()).AsStrMap()
	if err != nil {
		t.Fatalf("CONFIG GET %s: %s", name, err)
	}
	v, ok := m[name]
	if !ok {
		t.Fatalf("CONFIG GET %s: no such parameter in %v", name, m)
	}
	return v
}

func TestStartConfiguresPersistence(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       redistest.Options
		appendonly string
		fsync      string
	}{
		{"in memory", redistest.Options{}, "no", "everysec"},
		{"aof default fsync", redistest.Options{AppendOnly: true}, "yes", "everysec"},
		{"aof always", redistest.Options{AppendFsync: "always"}, "yes", "always"},
		{"aof everysec", redistest.Options{AppendFsync: "everysec"}, "yes", "everysec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := redistest.Start(t, tc.opts)
			c := newClient(t, s.URL, nil)
			ctx := ctxT(t)
			if err := c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
				t.Fatalf("SET: %s", err)
			}
			if got, err := c.Do(ctx, c.B().Get().Key("k").Build()).ToString(); err != nil || got != "v" {
				t.Fatalf("GET = %q, %v; want v", got, err)
			}
			for name, want := range map[string]string{
				"appendonly":     tc.appendonly,
				"appendfsync":    tc.fsync,
				"save":           "",
				"bind":           "127.0.0.1",
				"protected-mode": "yes",
				"dir":            s.Dir,
			} {
				if got := configGet(t, c, name); got != want {
					t.Errorf("CONFIG GET %s = %q; want %q", name, got, want)
				}
			}
			// Several parameters in one CONFIG GET (Redis 7.0+), as a
			// backend reads them at start.
			m, err := c.Do(ctx, c.B().ConfigGet().Parameter("appendonly", "appendfsync", "no-appendfsync-on-rewrite").Build()).AsStrMap()
			if err != nil || m["appendonly"] != tc.appendonly || m["appendfsync"] != tc.fsync || m["no-appendfsync-on-rewrite"] != "no" {
				t.Errorf("CONFIG GET appendonly appendfsync no-appendfsync-on-rewrite = %v, %v", m, err)
			}
		})
	}
}

// TestFunctionAndScript runs the two ways of an atomic server-side change:
// a Redis Function (FUNCTION LOAD + FCALL, Redis 7.0) and a Lua script
// (EVALSHA, falling back to EVAL on NOSCRIPT).
func TestFunctionAndScript(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := newClient(t, s.URL, nil)
	ctx := ctxT(t)

	lib := `#!lua name=nbatest
redis.register_function('capped_incr', function(keys, args)
  local n = tonumber(redis.call('GET', keys[1]) or '0')
  if n >= tonumber(args[1]) then return -1 end
  return redis.call('INCR', keys[1])
end)`
	name, err := c.Do(ctx, c.B().FunctionLoad().Replace().FunctionCode(lib).Build()).ToString()
	if err != nil || name != "nbatest" {
		t.Fatalf("FUNCTION LOAD = %q, %v; want nbatest", name, err)
	}
	var got []int64
	for range 4 {
		n, err := c.Do(ctx, c.B().Fcall().Function("capped_incr").Numkeys(1).Key("{c:1}:n").Arg("3").Build()).AsInt64()
		if err != nil {
			t.Fatalf("FCALL: %s", err)
		}
		got = append(got, n)
	}
	if want := []int64{1, 2, 3, -1}; !slices.Equal(got, want) {
		t.Errorf("FCALL capped_incr x4 = %v; want %v", got, want)
	}

	script := rueidis.NewLuaScript(`
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
return redis.call('LLEN', KEYS[1])`)
	for i := range 5 {
		n, err := script.Exec(ctx, c, []string{"{c:1}:contacts"}, []string{strconv.Itoa(i), "3"}).AsInt64()
		if err != nil {
			t.Fatalf("script: %s", err)
		}
		if want := int64(min(i+1, 3)); n != want {
			t.Errorf("script call %d: LLEN = %d; want %d", i, n, want)
		}
	}
	list, err := c.Do(ctx, c.B().Lrange().Key("{c:1}:contacts").Start(0).Stop(-1).Build()).AsStrSlice()
	if err != nil || !slices.Equal(list, []string{"2", "3", "4"}) {
		t.Errorf("bounded list = %v, %v; want [2 3 4]", list, err)
	}
}

// TestClusterHashTaggedScript proves the cluster is three real shards and
// that a multi-key script over one customer's hash tag runs on whichever
// shard owns the tag, while keys of two tags are refused.
func TestClusterHashTaggedScript(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.Options{})
	c := newClient(t, cl.URL, nil)
	ctx := ctxT(t)
	if c.Mode() != rueidis.ClientModeCluster {
		t.Fatalf("client mode = %s; want cluster", c.Mode())
	}
	nodes := c.Nodes()
	if len(nodes) != 3 {
		t.Fatalf("client knows %d nodes; want 3", len(nodes))
	}

	// A function is stored per node: load it on every master.
	lib := `#!lua name=nbatest
redis.register_function('contact', function(keys, args)
  redis.call('HINCRBY', keys[1], args[1], 1)
  redis.call('RPUSH', keys[2], args[1])
  return redis.call('LLEN', keys[2])
end)`
	for addr, n := range nodes {
		if err := n.Do(ctx, n.B().FunctionLoad().Replace().FunctionCode(lib).Build()).Error(); err != nil {
			t.Fatalf("FUNCTION LOAD on %s: %s", addr, err)
		}
	}
	script := rueidis.NewLuaScript(`
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('RPUSH', KEYS[2], ARGV[1])
return redis.call('LLEN', KEYS[2])`)
	const customers = 60
	for id := range customers {
		tag := fmt.Sprintf("{c:%d}", id)
		keys := []string{tag + ":caps", tag + ":history"}
		if n, err := script.Exec(ctx, c, keys, []string{"email"}).AsInt64(); err != nil || n != 1 {
			t.Fatalf("script on %s = %d, %v; want 1", tag, n, err)
		}
		cmd := c.B().Fcall().Function("contact").Numkeys(2).Key(keys...).Arg("web").Build()
		if n, err := c.Do(ctx, cmd).AsInt64(); err != nil || n != 2 {
			t.Fatalf("FCALL on %s = %d, %v; want 2", tag, n, err)
		}
	}
	// Every shard got customers: the tags really spread over three nodes.
	total := int64(0)
	for addr, n := range nodes {
		size, err := n.Do(ctx, n.B().Dbsize().Build()).AsInt64()
		if err != nil {
			t.Fatalf("DBSIZE on %s: %s", addr, err)
		}
		if size == 0 {
			t.Errorf("node %s holds no key: the cluster is not sharding", addr)
		}
		total += size
	}
	if total != 2*customers {
		t.Errorf("keys over all nodes = %d; want %d", total, 2*customers)
	}

	// Two customers in one script: the server refuses (CROSSSLOT) when the
	// keys live on one node, and the cluster client's builder refuses it
	// before sending.
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		c.B().Eval().Script("return 1").Numkeys(2).Key("{c:1}:caps", "{c:2}:caps").Build()
		return false
	}()
	if !panicked {
		t.Error("cluster builder accepted keys of two hash tags")
	}
}

// TestClientSideCachingInvalidation measures how long a write by one client
// takes to invalidate another client's cached read (RESP3 tracking, the
// default OPTIN mode of DoCache), over many writes, and checks that reads
// between writes are served from the local cache.
func TestClientSideCachingInvalidation(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	writer := newClient(t, s.URL, nil)
	invalidated := make(chan []rueidis.RedisMessage, 16)
	reader := newClient(t, s.URL, func(o *rueidis.ClientOption) {
		o.OnInvalidations = func(keys []rueidis.RedisMessage) { invalidated <- keys }
	})
	ctx := ctxT(t)
	const key = "{c:7}:profile"
	read := func() (string, bool) {
		t.Helper()
		r := reader.DoCache(ctx, reader.B().Get().Key(key).Cache(), time.Minute)
		v, err := r.ToString()
		if err != nil && !rueidis.IsRedisNil(err) {
			t.Fatalf("DoCache GET: %s", err)
		}
		return v, r.IsCacheHit()
	}
	waitInvalidation := func() {
		t.Helper()
		for {
			select {
			case keys := <-invalidated:
				for _, k := range keys {
					if s, _ := k.ToString(); s == key {
						return
					}
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no invalidation of %s within 5s", key)
			}
		}
	}
	writes := 1000
	if testing.Short() {
		writes = 200
	}
	// sinceAck is measured from the writer's reply to the moment the
	// reader's callback has been seen: near zero means the invalidation
	// was already there when the writer got its answer.
	var sinceWrite, sinceAck []time.Duration
	for i := range writes {
		want := strconv.Itoa(i)
		start := time.Now()
		if err := writer.Do(ctx, writer.B().Set().Key(key).Value(want).Build()).Error(); err != nil {
			t.Fatalf("SET: %s", err)
		}
		acked := time.Now()
		if i > 0 { // the first read tracked nothing yet
			waitInvalidation()
			at := time.Now()
			sinceWrite = append(sinceWrite, at.Sub(start))
			sinceAck = append(sinceAck, at.Sub(acked))
		}
		if v, hit := read(); v != want || hit {
			t.Fatalf("write %d: first read after invalidation = %q (cache hit %v); want %q from the server", i, v, hit, want)
		}
		if v, hit := read(); v != want || !hit {
			t.Fatalf("write %d: second read = %q (cache hit %v); want %q from the local cache", i, v, hit, want)
		}
	}
	slices.Sort(sinceWrite)
	slices.Sort(sinceAck)
	q := func(d []time.Duration, p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
	t.Logf("invalidation lag over %d writes: since SET sent p50=%s p99=%s max=%s; since SET acknowledged p50=%s p99=%s",
		len(sinceWrite), q(sinceWrite, .5), q(sinceWrite, .99), q(sinceWrite, 1),
		q(sinceAck, .5), q(sinceAck, .99))
}

// TestCacheFlushedOnDisconnect shows what a client's cache holds after its
// connection is cut: nothing. Redis forgets the connection's tracking
// table with the connection, so rueidis drops the cache (and tells
// OnInvalidations with nil keys); a read after reconnecting goes to the
// server and sees a write made while the reader was away.
func TestCacheFlushedOnDisconnect(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	writer := newClient(t, s.URL, nil)
	flushed := make(chan struct{}, 16)
	reader := newClient(t, s.URL, func(o *rueidis.ClientOption) {
		o.ClientName = "reader"
		o.OnInvalidations = func(keys []rueidis.RedisMessage) {
			if keys == nil {
				flushed <- struct{}{}
			}
		}
	})
	ctx := ctxT(t)
	const key = "{c:8}:profile"
	if err := writer.Do(ctx, writer.B().Set().Key(key).Value("old").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		reader.DoCache(ctx, reader.B().Get().Key(key).Cache(), time.Minute)
	}
	if r := reader.DoCache(ctx, reader.B().Get().Key(key).Cache(), time.Minute); !r.IsCacheHit() {
		t.Fatal("value not cached")
	}
	// Kill the reader's connections (CLIENT KILL has no name filter in 7.0).
	list, err := writer.Do(ctx, writer.B().ClientList().Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for line := range strings.Lines(list) {
		if !strings.Contains(line, " name=reader ") {
			continue
		}
		id, _ := strconv.ParseInt(strings.TrimPrefix(strings.Fields(line)[0], "id="), 10, 64)
		if err := writer.Do(ctx, writer.B().ClientKill().Id(id).Build()).Error(); err != nil {
			t.Fatalf("CLIENT KILL ID %d: %s", id, err)
		}
		killed++
	}
	if killed == 0 {
		t.Fatalf("no reader connection in CLIENT LIST:\n%s", list)
	}
	select {
	case <-flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("reader did not notice its connection was closed within 5s")
	}
	if err := writer.Do(ctx, writer.B().Set().Key(key).Value("new").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	r := reader.DoCache(ctx, reader.B().Get().Key(key).Cache(), time.Minute)
	if v, err := r.ToString(); err != nil || v != "new" || r.IsCacheHit() {
		t.Errorf("read after reconnect = %q, %v (cache hit %v); want new from the server", v, err, r.IsCacheHit())
	}
}

// TestUnreachableServerDetection measures how fast a client learns the
// server is gone: at once when the process dies (the kernel closes the
// socket, and the cache goes with it), and when it stalls with connections
// open (Pause: a partition or a frozen host) within the caller's context
// deadline for one call, and within Dialer.KeepAlive (the gap between
// rueidis's health PINGs) plus ConnWriteTimeout for the connection, which
// is then closed, dropping the cache. Both recover without a new client
// once the server is back.
func TestUnreachableServerDetection(t *testing.T) {
	s := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	const timeout = 200 * time.Millisecond
	c := newClient(t, s.URL, func(o *rueidis.ClientOption) {
		o.ConnWriteTimeout = timeout
		o.Dialer.Timeout = timeout
		o.Dialer.KeepAlive = timeout // also the PING gap of a busy pipeline
		o.DisableRetry = true
	})
	ctx := ctxT(t)
	get := func() (rueidis.RedisResult, time.Duration) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r := c.DoCache(ctx, c.B().Get().Key("k").Cache(), time.Minute)
		return r, time.Since(start)
	}
	if err := c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	get()
	if r, _ := get(); !r.IsCacheHit() {
		t.Fatal("value not cached")
	}

	s.Pause()
	paused := time.Now()
	// A cached read does not touch the network: it still answers.
	if r, _ := get(); !r.IsCacheHit() {
		t.Errorf("cached read while the server is paused: %v; want a cache hit", r.Error())
	}
	// One call gives up at its context deadline.
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := c.Do(callCtx, c.B().Get().Key("other").Build()).Error()
	cancel()
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > time.Second {
		t.Errorf("GET with a 50ms deadline on a paused server = %v after %s; want deadline exceeded", err, took)
	}
	// The connection is declared dead by the health PING.
	start = time.Now()
	err = c.Do(ctx, c.B().Get().Key("other").Build()).Error()
	stall := time.Since(start)
	if err == nil || stall > 15*timeout {
		t.Errorf("GET on a paused server = %v after %s; want an error within about %s", err, stall, 3*timeout)
	}
	t.Logf("paused server: uncached GET without deadline failed after %s (%v)", stall, err)
	// Each multiplexed connection has its own cache and health PING: the
	// one holding "k" is declared dead on its own, and its cache goes.
	for {
		r, _ := get()
		if !r.IsCacheHit() {
			t.Logf("paused server: cache dropped %s after the pause (%v)", time.Since(paused), r.Error())
			break
		}
		if time.Since(paused) > 15*timeout {
			t.Errorf("cache still served %s after the pause; want it dropped within about %s", time.Since(paused), 3*timeout)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Resume()

	waitOK := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, _ := get()
			if v, err := r.ToString(); err == nil && v == "v" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("client did not recover after %s: %v", what, r.Error())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOK("resume")

	s.Kill()
	killed := time.Now()
	// The client learns of the closed socket asynchronously: a cached read
	// in the first microseconds may still hit.
	for {
		r, _ := get()
		if !r.IsCacheHit() {
			if r.Error() == nil {
				t.Errorf("read after kill -9 succeeded: %v", r)
			}
			t.Logf("killed server: cache dropped %s after the kill (%v)", time.Since(killed), r.Error())
			break
		}
		if time.Since(killed) > 2*time.Second {
			t.Fatalf("cache still served 2s after kill -9; want it dropped with the connection")
		}
		time.Sleep(time.Millisecond)
	}
	s.Restart()
	waitOK("restart")
}

// TestKillKeepsAcknowledgedWrites kills redis-server with SIGKILL in the
// middle of a burst of writes (appendfsync always) and checks that every
// write the client saw acknowledged is there after a restart.
func TestKillKeepsAcknowledgedWrites(t *testing.T) {
	s := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	c := newClient(t, s.URL, func(o *rueidis.ClientOption) {
		o.ConnWriteTimeout = time.Second
		o.Dialer.Timeout = time.Second
	})
	ctx := ctxT(t)
	const key = "{c:9}:acks"
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%d-%d", w, i)
				if err := c.Do(ctx, c.B().Rpush().Key(key).Element(id).Build()).Error(); err != nil {
					continue // not acknowledged: may or may not be there
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s.Kill() // writers keep going: some writes are in flight
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()

	s.Restart()
	c2 := newClient(t, s.URL, nil)
	got, err := c2.Do(ctxT(t), c2.B().Lrange().Key(key).Start(0).Stop(-1).Build()).AsStrSlice()
	if err != nil {
		t.Fatalf("LRANGE after restart: %s", err)
	}
	have := make(map[string]bool, len(got))
	for _, id := range got {
		have[id] = true
	}
	lost := 0
	for _, id := range acked {
		if !have[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost after kill -9 and restart", lost, len(acked))
	}
	t.Logf("acknowledged %d, found %d after restart (unacknowledged but applied: %d)", len(acked), len(got), len(got)-len(acked)+lost)
}

// TestWaitCountsReplica shows WAIT: the number of replicas that have the
// connection's writes, 0 on a server without replicas once the timeout
// passed.
func TestWaitCountsReplica(t *testing.T) {
	primary := redistest.Start(t, redistest.Options{})
	replica := redistest.Start(t, redistest.Options{ReplicaOf: primary})
	c := newClient(t, primary.URL, nil)
	ctx := ctxT(t)
	// WAIT counts the writes of the connection it is sent on: a dedicated
	// connection keeps the write and the WAIT together.
	err := c.Dedicated(func(d rueidis.DedicatedClient) error {
		res := d.DoMulti(ctx,
			d.B().Set().Key("k").Value("v").Build(),
			d.B().Wait().Numreplicas(1).Timeout(5000).Build())
		if err := res[0].Error(); err != nil {
			return err
		}
		n, err := res[1].AsInt64()
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("WAIT 1 = %d; want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := newClient(t, replica.URL, nil)
	if v, err := r.Do(ctx, r.B().Get().Key("k").Build()).ToString(); err != nil || v != "v" {
		t.Errorf("GET on replica = %q, %v; want v", v, err)
	}

	alone := redistest.Start(t, redistest.Options{})
	a := newClient(t, alone.URL, nil)
	if n, err := a.Do(ctx, a.B().Wait().Numreplicas(1).Timeout(50).Build()).AsInt64(); err != nil || n != 0 {
		t.Errorf("WAIT without replicas = %d, %v; want 0", n, err)
	}
}

// TestStreamGroupClaim runs the consumer-group calls an event consumer
// needs: XGROUP CREATE MKSTREAM, XREADGROUP, XACK, and XAUTOCLAIM of a dead
// consumer's pending entries.
func TestStreamGroupClaim(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := newClient(t, s.URL, nil)
	ctx := ctxT(t)
	const stream, group = "events", "nba"
	if err := c.Do(ctx, c.B().XgroupCreate().Key(stream).Group(group).Id("$").Mkstream().Build()).Error(); err != nil {
		t.Fatalf("XGROUP CREATE: %s", err)
	}
	for i := range 3 {
		cmd := c.B().Xadd().Key(stream).Id("*").FieldValue().FieldValue("event_id", strconv.Itoa(i)).Build()
		if err := c.Do(ctx, cmd).Error(); err != nil {
			t.Fatalf("XADD: %s", err)
		}
	}
	read, err := c.Do(ctx, c.B().Xreadgroup().Group(group, "dead").Count(10).Block(100).Streams().Key(stream).Id(">").Build()).AsXRead()
	if err != nil || len(read[stream]) != 3 {
		t.Fatalf("XREADGROUP = %v, %v; want 3 entries", read, err)
	}
	entries := read[stream]
	// Nothing new: a blocked read times out with a nil reply.
	_, err = c.Do(ctx, c.B().Xreadgroup().Group(group, "dead").Count(10).Block(10).Streams().Key(stream).Id(">").Build()).AsXRead()
	if !rueidis.IsRedisNil(err) {
		t.Errorf("XREADGROUP with nothing new = %v; want a nil reply", err)
	}
	if err := c.Do(ctx, c.B().Xack().Key(stream).Group(group).Id(entries[0].ID).Build()).Error(); err != nil {
		t.Fatalf("XACK: %s", err)
	}
	// The consumer "dead" dies with two entries pending; "alive" claims them.
	claim, err := c.Do(ctx, c.B().Xautoclaim().Key(stream).Group(group).Consumer("alive").MinIdleTime("0").Start("0-0").Count(10).Build()).ToArray()
	if err != nil || len(claim) != 3 { // next start, claimed entries, deleted ids (7.0+)
		t.Fatalf("XAUTOCLAIM = %v, %v", claim, err)
	}
	claimed, err := claim[1].AsXRange()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range claimed {
		ids = append(ids, e.FieldValues["event_id"])
	}
	if !slices.Equal(ids, []string{"1", "2"}) {
		t.Errorf("claimed event ids = %v; want [1 2]", ids)
	}
	for _, e := range claimed {
		if err := c.Do(ctx, c.B().Xack().Key(stream).Group(group).Id(e.ID).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	pending, err := c.Do(ctx, c.B().Xpending().Key(stream).Group(group).Build()).ToArray()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := pending[0].AsInt64(); n != 0 {
		t.Errorf("pending after acks = %d; want 0", n)
	}
}

// TestClusterNodeRestart kills one master of a Cluster with SIGKILL and
// restarts it from its directory: it rejoins with its slots (nodes.conf)
// and its data (AOF), and the same client serves every customer again.
func TestClusterNodeRestart(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.Options{AppendFsync: "always"})
	c := newClient(t, cl.URL, nil)
	ctx := ctxT(t)
	const customers = 30
	for id := range customers {
		if err := c.Do(ctx, c.B().Set().Key(fmt.Sprintf("{c:%d}:profile", id)).Value(strconv.Itoa(id)).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	cl.Nodes[1].Kill()
	cl.Nodes[1].Restart()
	restarted := time.Since(start)
	cl.WaitOK()
	t.Logf("restart took %s, cluster ok after %s", restarted, time.Since(start))
	deadline := time.Now().Add(10 * time.Second)
	for id := range customers {
		for {
			v, err := c.Do(ctx, c.B().Get().Key(fmt.Sprintf("{c:%d}:profile", id)).Build()).ToString()
			if err == nil {
				if v != strconv.Itoa(id) {
					t.Errorf("customer %d after restart = %q", id, v)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("customer %d unreadable 10s after the restart: %s", id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("every customer readable %s after the kill", time.Since(start))
}

// TestWaitMustShareTheWriteConnection: WAIT counts the replicas that have
// the writes of the connection it is sent on. rueidis sends WAIT, a
// blocking command, on a connection of its blocking pool, so a WAIT sent
// alone after an auto-pipelined write waits for nothing: with the replica
// paused it still answers 1. Sent in one DoMulti with the write (which
// then goes to the blocking pool together) or on a Dedicated connection,
// it answers 0 as it must.
func TestWaitMustShareTheWriteConnection(t *testing.T) {
	primary := redistest.Start(t, redistest.Options{})
	replica := redistest.Start(t, redistest.Options{ReplicaOf: primary})
	c := newClient(t, primary.URL, nil)
	ctx := ctxT(t)
	// The replica acknowledges its offset once a second: let one ack of
	// the current offset arrive before pausing it.
	if err := c.Do(ctx, c.B().Set().Key("warm").Value("1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.DoMulti(ctx, c.B().Set().Key("warm").Value("2").Build(),
		c.B().Wait().Numreplicas(1).Timeout(5000).Build())[1].AsInt64(); err != nil || n != 1 {
		t.Fatalf("WAIT with a live replica = %d, %v; want 1", n, err)
	}
	replica.Pause()
	defer replica.Resume()

	set := func(v string) rueidis.Completed { return c.B().Set().Key("k").Value(v).Build() }
	wait := func() rueidis.Completed { return c.B().Wait().Numreplicas(1).Timeout(100).Build() }

	if err := c.Do(ctx, set("a")).Error(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Do(ctx, wait()).AsInt64(); err != nil || n != 1 {
		t.Errorf("WAIT alone after a pipelined write, replica paused = %d, %v; want the misleading 1 this test documents", n, err)
	}
	if n, err := c.DoMulti(ctx, set("b"), wait())[1].AsInt64(); err != nil || n != 0 {
		t.Errorf("DoMulti(SET, WAIT), replica paused = %d, %v; want 0", n, err)
	}
	err := c.Dedicated(func(d rueidis.DedicatedClient) error {
		if err := d.Do(ctx, d.B().Set().Key("k").Value("c").Build()).Error(); err != nil {
			return err
		}
		n, err := d.Do(ctx, d.B().Wait().Numreplicas(1).Timeout(100).Build()).AsInt64()
		if err != nil || n != 0 {
			return fmt.Errorf("dedicated SET then WAIT, replica paused = %d, %v; want 0", n, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
