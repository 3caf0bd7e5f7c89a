package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"nba/nba/demo"
	"nba/nba/eventstream"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

var streamNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

const testStream, testGroup = "{events}", "nba"

// streamClient connects a test client to a Redis server.
func streamClient(t *testing.T, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// openStreamSidecar opens a demo sidecar, with embedded state unless
// stateRedis is set, consuming testStream on streamURL; it is closed at
// the end of the test.
func openStreamSidecar(t *testing.T, dir, streamURL, stateRedis string, edit func(*eventstream.Config)) *Sidecar {
	t.Helper()
	s, err := Open(streamConfig(dir, streamURL, stateRedis, edit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func streamConfig(dir, streamURL, stateRedis string, edit func(*eventstream.Config)) Config {
	es := eventstream.Config{URL: streamURL, Stream: testStream, Group: testGroup, Consumer: "sidecar", Block: 50 * time.Millisecond,
		MinIdle: time.Hour, MaxBackoff: 100 * time.Millisecond, StatsEvery: 20 * time.Millisecond}
	if edit != nil {
		edit(&es)
	}
	return Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, StateRedis: stateRedis,
		Now: func() time.Time { return streamNow }, EventStream: es}
}

// xadd appends an entry of field, value pairs to the stream.
func xadd(t *testing.T, c rueidis.Client, kv ...string) string {
	t.Helper()
	cmd := c.B().Xadd().Key(testStream).Id("*").FieldValue()
	for i := 0; i < len(kv); i += 2 {
		cmd = cmd.FieldValue(kv[i], kv[i+1])
	}
	id, err := c.Do(context.Background(), cmd.Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitStream waits until the consumer's stats satisfy ok.
func waitStream(t *testing.T, s *Sidecar, what string, ok func(eventstream.Stats) bool) eventstream.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := s.EventStreamStats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: stream stats %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pendingCount is the group's count of entries delivered and not acknowledged.
func pendingCount(t *testing.T, c rueidis.Client) int64 {
	t.Helper()
	res, err := c.Do(context.Background(), c.B().Xpending().Key(testStream).Group(testGroup).Build()).ToArray()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := res[0].AsInt64()
	return n
}

// streamEvent is one test event, sent both as a POST /v1/events body and
// as a stream entry.
type streamEvent struct {
	customer, typ, ts, id, attrs string
}

func (e streamEvent) body() []byte {
	m := map[string]any{"customer_id": e.customer, "type": e.typ}
	if e.ts != "" {
		m["ts"] = e.ts
	}
	if e.id != "" {
		m["event_id"] = e.id
	}
	if e.attrs != "" {
		m["attrs"] = json.RawMessage(e.attrs)
	}
	b, _ := json.Marshal(m)
	return b
}

func (e streamEvent) fields() []string {
	kv := []string{"customer_id", e.customer, "type", e.typ}
	for _, f := range [][2]string{{"ts", e.ts}, {"event_id", e.id}, {"attrs", e.attrs}} {
		if f[1] != "" {
			kv = append(kv, f[0], f[1])
		}
	}
	return kv
}

// serveHTTP serves s's public API on a loopback port and returns its base URL.
func serveHTTP(t *testing.T, s *Sidecar) string {
	t.Helper()
	srv, err := server.New(server.Config{}, s)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String()
}

func postEvent(t *testing.T, base string, e streamEvent) {
	t.Helper()
	resp, err := http.Post(base+"/v1/events", "application/json", bytes.NewReader(e.body()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/events %s: %s", e.body(), resp.Status)
	}
}

// TestStreamAndHTTPGiveTheSameState sends the same events to one sidecar
// over HTTP and to another through the stream (each with its own embedded
// state): every customer ends the same, profile, journeys and all; each
// entry is acknowledged once applied.
func TestStreamAndHTTPGiveTheSameState(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	c := streamClient(t, rs.URL)
	viaStream := openStreamSidecar(t, t.TempDir(), rs.URL, "", nil)
	viaHTTP, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), Now: func() time.Time { return streamNow }})
	if err != nil {
		t.Fatal(err)
	}
	defer viaHTTP.Close()
	base := serveHTTP(t, viaHTTP)
	ts := func(d time.Duration) string { return streamNow.Add(-d).Format(time.RFC3339) }
	events := []streamEvent{
		{"c00042", "cart_abandoned", ts(3 * time.Hour), "e1", `{"value": 120.5}`},
		{"c00042", "ticket_opened", ts(2 * time.Hour), "e2", ""},
		{"c00042", "purchase", ts(time.Hour), "", ""},
		// Every event carries its ts: without one, HTTP stamps the server's
		// clock and the stream the sidecar's (the test's fixed Now), and
		// the customer view shows when each live field changed.
		{"c00042", "ticket_closed", ts(10 * time.Minute), "e4", ""},
		{"new-1", "signup", ts(time.Hour), "e5", `{"source": "web", "n": 3, "ok": true}`},
		{"new-1", "cart_abandoned", ts(30 * time.Minute), "e6", `{"value": 35}`},
	}
	for _, e := range events {
		postEvent(t, base, e)
		xadd(t, c, e.fields()...)
	}
	st := waitStream(t, viaStream, "every entry", func(st eventstream.Stats) bool { return st.Consumed == uint64(len(events)) })
	if st.Applied != uint64(len(events)) || st.DeadLettered != 0 || st.Duplicates != 0 {
		t.Errorf("stats %+v; want %d applied", st, len(events))
	}
	if n := pendingCount(t, c); n != 0 {
		t.Errorf("%d entries pending after they were applied", n)
	}
	for _, id := range []string{"c00042", "new-1"} {
		a, err := viaHTTP.AppendCustomer(nil, id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := viaStream.AppendCustomer(nil, id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("customer %s\nover HTTP:   %s\nfrom stream: %s", id, a, b)
		}
	}
	// The demo's cart journey starts on cart_abandoned: the state compared
	// above is not only profile fields.
	if b, _ := viaStream.AppendCustomer(nil, "new-1"); !strings.Contains(string(b), `"journey"`) {
		t.Errorf("new-1 has no journey after cart_abandoned: %s", b)
	}
}

// TestStreamIdempotency: an event applied over HTTP and then pushed to the
// stream with the same event_id is a duplicate.
func TestStreamIdempotency(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	c := streamClient(t, rs.URL)
	s := openStreamSidecar(t, t.TempDir(), rs.URL, "", nil)
	base := serveHTTP(t, s)
	e := streamEvent{"c00042", "purchase", streamNow.Add(-time.Hour).Format(time.RFC3339), "order-7", ""}
	postEvent(t, base, e)
	xadd(t, c, e.fields()...)
	st := waitStream(t, s, "the duplicate", func(st eventstream.Stats) bool { return st.Consumed == 1 })
	if st.Duplicates != 1 || st.Applied != 0 {
		t.Errorf("same event_id over HTTP then the stream: stats %+v; want 1 duplicate, 0 applied", st)
	}
	b, _ := s.AppendCustomer(nil, "c00042")
	if !strings.Contains(string(b), `"orders_since_snapshot":1`) {
		t.Errorf("one purchase, sent twice: %s", b)
	}
}

// TestStreamDeadLetter: entries that can never be applied go to the
// dead-letter stream with their reason and their fields, are counted and
// acknowledged, and the entries after them are applied.
func TestStreamDeadLetter(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	c := streamClient(t, rs.URL)
	s := openStreamSidecar(t, t.TempDir(), rs.URL, "", nil)
	poison := []struct {
		name   string
		kv     []string
		reason string
	}{
		{"bad JSON attrs", []string{"customer_id", "c1", "type", "purchase", "attrs", `{"value": }`}, "attrs"},
		{"attrs not an object", []string{"customer_id", "c1", "type", "purchase", "attrs", `[1]`}, "attrs must be an object"},
		{"unknown type", []string{"customer_id", "c1", "type", "purchse"}, "unknown_event_type"},
		{"ts out of range", []string{"customer_id", "c1", "type", "purchase", "ts", "1990-01-01T00:00:00Z"}, "outside the accepted range"},
		{"ts not a time", []string{"customer_id", "c1", "type", "purchase", "ts", "yesterday"}, "not an RFC 3339 time"},
		{"missing customer", []string{"type", "purchase"}, "customer_id or ids is required"},
		{"missing type", []string{"customer_id", "c1"}, "type is required"},
	}
	ids := map[string]string{}
	for _, p := range poison {
		ids[xadd(t, c, p.kv...)] = p.name
	}
	xadd(t, c, "customer_id", "c00042", "type", "purchase", "event_id", "good")
	st := waitStream(t, s, "every entry", func(st eventstream.Stats) bool { return st.Consumed == uint64(len(poison)+1) })
	if st.DeadLettered != uint64(len(poison)) || st.Applied != 1 {
		t.Errorf("stats %+v; want %d dead-lettered, 1 applied", st, len(poison))
	}
	if n := pendingCount(t, c); n != 0 {
		t.Errorf("%d entries pending", n)
	}
	status, err := s.AppendStatus(nil)
	if err != nil || !strings.Contains(string(status), fmt.Sprintf(`"dead_lettered":%d`, len(poison))) {
		t.Errorf("/admin/status does not count the dead letters: %s %v", status, err)
	}
	dead, err := c.Do(context.Background(), c.B().Xrange().Key(testStream+":dead").Start("-").End("+").Build()).AsXRange()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != len(poison) {
		t.Fatalf("dead-letter stream has %d entries; want %d", len(dead), len(poison))
	}
	// Dead letters are not in stream order: entries refused when decoded
	// are copied before those refused when applied.
	byName := map[string]map[string]string{}
	for _, d := range dead {
		byName[ids[d.FieldValues[eventstream.DeadID]]] = d.FieldValues
	}
	for _, p := range poison {
		t.Run(p.name, func(t *testing.T) {
			d, ok := byName[p.name]
			if !ok {
				t.Fatalf("no dead letter has the entry's id as dead_id")
			}
			if !strings.Contains(d[eventstream.DeadReason], p.reason) {
				t.Errorf("reason %q; want it to say %q", d[eventstream.DeadReason], p.reason)
			}
			for j := 0; j < len(p.kv); j += 2 {
				if d[p.kv[j]] != p.kv[j+1] {
					t.Errorf("field %s = %q; want the original %q", p.kv[j], d[p.kv[j]], p.kv[j+1])
				}
			}
		})
	}
}

// TestStreamClaimsDeadConsumersEntries: a consumer reads entries, applies
// the first (an entry without event_id: keyed by its stream id) and exits
// without acknowledging any; once they are idle past MinIdle, the
// sidecar's consumer takes them over: the first is a duplicate, the others
// are applied.
func TestStreamClaimsDeadConsumersEntries(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	c := streamClient(t, rs.URL)
	if err := c.Do(context.Background(), c.B().XgroupCreate().Key(testStream).Group(testGroup).Id("0").Mkstream().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	first := xadd(t, c, "customer_id", "new-0", "type", "signup")
	for i := 1; i < 3; i++ {
		xadd(t, c, "customer_id", fmt.Sprintf("new-%d", i), "type", "signup", "event_id", fmt.Sprintf("s%d", i))
	}
	read, err := c.Do(context.Background(), c.B().Xreadgroup().Group(testGroup, "dead").Count(10).Streams().Key(testStream).Id(">").Build()).AsXRead()
	if err != nil || len(read[testStream]) != 3 {
		t.Fatalf("the dead consumer's read: %v %v", read, err)
	}
	// The dead consumer applied the first entry, as the sidecar would.
	dir := t.TempDir()
	dead, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, Now: func() time.Time { return streamNow }})
	if err != nil {
		t.Fatal(err)
	}
	if dup, err := dead.ApplyEvent(&server.Event{CustomerID: "new-0", Type: "signup", TS: streamNow, EventID: eventstream.IDPrefix + first}); err != nil || dup {
		t.Fatalf("apply as the dead consumer: dup %v err %v", dup, err)
	}
	if err := dead.Close(); err != nil {
		t.Fatal(err)
	}
	s := openStreamSidecar(t, dir, rs.URL, "", func(es *eventstream.Config) {
		es.MinIdle, es.ClaimEvery = 200*time.Millisecond, 20*time.Millisecond
	})
	st := waitStream(t, s, "the claimed entries", func(st eventstream.Stats) bool { return st.Consumed == 3 })
	if st.Claimed != 3 || st.Applied != 2 || st.Duplicates != 1 {
		t.Errorf("stats %+v; want 3 claimed, 2 applied, 1 duplicate", st)
	}
	if n := pendingCount(t, c); n != 0 {
		t.Errorf("%d entries pending", n)
	}
	for i := range 3 {
		b, err := s.AppendCustomer(nil, fmt.Sprintf("new-%d", i))
		if err != nil || !strings.Contains(string(b), "signup_at") {
			t.Errorf("new-%d after its signup was claimed: %s %v", i, b, err)
		}
	}
}

// TestStreamStateUnavailableNotAcked: with the customer state on a Redis
// that is down, an entry is not acknowledged: it stays pending and is
// retried, and applied once the state is back.
func TestStreamStateUnavailableNotAcked(t *testing.T) {
	stateRedis := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	rs := redistest.Start(t, redistest.Options{})
	c := streamClient(t, rs.URL)
	s := openStreamSidecar(t, t.TempDir(), rs.URL, stateRedis.URL, nil)
	stateRedis.Kill()
	for deadline := time.Now().Add(5 * time.Second); s.state.Err() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the state backend did not notice Redis was killed")
		}
	}
	xadd(t, c, "customer_id", "c00042", "type", "ticket_opened", "event_id", "t1")
	st := waitStream(t, s, "retries", func(st eventstream.Stats) bool { return st.Retried >= 2 })
	if st.Consumed != 0 || st.Applied != 0 {
		t.Errorf("with the state down: stats %+v; want nothing consumed", st)
	}
	if n := pendingCount(t, c); n != 1 {
		t.Errorf("with the state down: %d entries pending; want 1 (not acknowledged)", n)
	}
	// The group's pending count and lag as the status shows them.
	waitStream(t, s, "pending 1, lag 0 in the stats", func(st eventstream.Stats) bool { return st.Pending == 1 && st.Lag == 0 })
	stateRedis.Restart()
	st = waitStream(t, s, "the entry applied", func(st eventstream.Stats) bool { return st.Consumed == 1 })
	if st.Applied != 1 {
		t.Errorf("after the state came back: stats %+v; want 1 applied", st)
	}
	if n := pendingCount(t, c); n != 0 {
		t.Errorf("%d entries pending after the entry was applied", n)
	}
	waitStream(t, s, "pending 0 in the stats", func(st eventstream.Stats) bool { return st.Pending == 0 && st.Lag == 0 })
	if b, _ := s.AppendCustomer(nil, "c00042"); !strings.Contains(string(b), `"open_ticket":true`) {
		t.Errorf("c00042 after ticket_opened: %s", b)
	}
}

// TestStreamCloseMidBurst: closing the sidecar while it consumes stops the
// consumer before the state closes: no entry is dead-lettered or lost, and
// a restart under the same consumer name applies what was read and not
// acknowledged (its own pending entries) and the rest, each once.
func TestStreamCloseMidBurst(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	c := streamClient(t, rs.URL)
	dir := t.TempDir()
	s, err := Open(streamConfig(dir, rs.URL, "", func(es *eventstream.Config) { es.Count = 7 }))
	if err != nil {
		t.Fatal(err)
	}
	const customers, each = 10, 20
	for i := range customers * each {
		xadd(t, c, "customer_id", fmt.Sprintf("new-%d", i%customers), "type", "purchase", "event_id", fmt.Sprintf("p%d", i))
	}
	waitStream(t, s, "some entries consumed", func(st eventstream.Stats) bool { return st.Consumed > 0 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ := s.EventStreamStats()
	if st.DeadLettered != 0 || st.Consumed != st.Applied {
		t.Errorf("closed mid-burst: stats %+v; want every consumed entry applied, none dead-lettered", st)
	}
	t.Logf("consumed before Close: %d of %d", st.Consumed, customers*each)
	s = openStreamSidecar(t, dir, rs.URL, "", nil)
	st2 := waitStream(t, s, "the rest", func(st2 eventstream.Stats) bool { return st.Consumed+st2.Consumed == customers*each })
	if st2.DeadLettered != 0 {
		t.Errorf("after the restart: stats %+v", st2)
	}
	if n := pendingCount(t, c); n != 0 {
		t.Errorf("%d entries pending", n)
	}
	for i := range customers {
		b, _ := s.AppendCustomer(nil, fmt.Sprintf("new-%d", i))
		if !strings.Contains(string(b), fmt.Sprintf(`"orders_since_snapshot":%d`, each)) {
			t.Errorf("new-%d after %d purchases: %s", i, each, b)
		}
	}
}

// BenchmarkStreamConsume measures events applied per second from the
// stream (embedded state), beside the same events applied by concurrent
// callers of ApplyEvent (the HTTP path without HTTP) in the same run.
func BenchmarkStreamConsume(b *testing.B) {
	rs := redistest.Start(b, redistest.Options{})
	opt, _ := rueidis.ParseURL(rs.URL)
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const n = 2000
	b.Run("stream", func(b *testing.B) {
		for i := range b.N {
			s, err := Open(streamConfig(b.TempDir(), rs.URL, "", func(es *eventstream.Config) { es.Stream = fmt.Sprintf("{bench}:%d", i) }))
			if err != nil {
				b.Fatal(err)
			}
			cmds := make(rueidis.Commands, 0, n)
			for j := range n {
				cmds = append(cmds, c.B().Xadd().Key(fmt.Sprintf("{bench}:%d", i)).Id("*").FieldValue().FieldValue("customer_id", fmt.Sprintf("new-%d", j%500)).
					FieldValue("type", "purchase").FieldValue("event_id", fmt.Sprintf("e%d", j)).Build())
			}
			b.StartTimer()
			start := time.Now()
			for _, r := range c.DoMulti(context.Background(), cmds...) {
				if r.Error() != nil {
					b.Fatal(r.Error())
				}
			}
			for {
				st, _ := s.EventStreamStats()
				if st.Consumed == n {
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(n/time.Since(start).Seconds(), "events/s")
			b.StopTimer()
			s.Close()
		}
	})
	b.Run("apply-32-callers", func(b *testing.B) {
		for range b.N {
			s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: b.TempDir(), Now: func() time.Time { return streamNow }})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for j := next.Add(1); j <= n; j = next.Add(1) {
						if _, err := s.ApplyEvent(&server.Event{CustomerID: fmt.Sprintf("new-%d", j%500), Type: "purchase", TS: streamNow, EventID: fmt.Sprintf("e%d", j)}); err != nil {
							b.Error(err)
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(n/time.Since(start).Seconds(), "events/s")
			s.Close()
		}
	})
}
