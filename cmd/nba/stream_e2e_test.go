package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"nba/state/redis/redistest"
)

// TestEventStreamE2E: two nba serve processes on one Redis (state and
// stream) consume one stream in one group. Every event is applied once,
// whichever process took it (a retry of an event already posted over HTTP
// is a duplicate), a poison entry lands in the dead-letter stream, and
// after a kill -9 of one process mid-burst a process started after it
// takes over what the killed one had read: no event lost, none counted
// twice. A SIGTERM stops a consumer cleanly.
func TestEventStreamE2E(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	const stream = "{nba}:events"
	serve := func(name string) *proc {
		return startServe(t, "-state", t.TempDir(), "-state.redis", rs.URL, "-decisionlog=false",
			"-events.redis.stream", stream, "-events.redis.group", "nba", "-events.redis.consumer", name, "-events.redis.minIdle", "1s")
	}
	a, b := serve("a"), serve("b")
	opt, err := rueidis.ParseURL(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx := context.Background()
	push := func(kv ...string) {
		t.Helper()
		cmd := rc.B().Xadd().Key(stream).Id("*").FieldValue()
		for i := 0; i < len(kv); i += 2 {
			cmd = cmd.FieldValue(kv[i], kv[i+1])
		}
		if err := rc.Do(ctx, cmd.Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	consumed := func(ps ...*proc) float64 {
		n := 0.0
		for _, p := range ps {
			n += p.metric("nba_eventstream_consumed_total")
		}
		return n
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(waitDeadline); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s", what)
			}
		}
	}
	orders := func(p *proc, c string) float64 {
		f, _ := p.customer(c).Profile["orders_since_snapshot"].(float64)
		return f
	}

	a.ok("/v1/events", `{"customer_id":"c00042","type":"purchase","event_id":"order-1"}`)
	push("customer_id", "c00042", "type", "purchase", "event_id", "order-1") // a retry: a duplicate
	push("customer_id", "c00042", "type", "purchase", "event_id", "order-2")
	push("customer_id", "c00042", "type", "purchse", "event_id", "order-3") // poison
	wait("3 entries consumed", func() bool { return consumed(a, b) == 3 })
	for name, p := range map[string]*proc{"A": a, "B": b} {
		if n := orders(p, "c00042"); n != 2 {
			t.Errorf("%s: c00042 has %v orders, want 2 (order-1 over HTTP and the stream, order-2)", name, n)
		}
	}
	if d := a.metric("nba_eventstream_duplicates_total") + b.metric("nba_eventstream_duplicates_total"); d != 1 {
		t.Errorf("%v duplicates, want 1", d)
	}
	if n, err := rc.Do(ctx, rc.B().Xlen().Key(stream+":dead").Build()).AsInt64(); err != nil || n != 1 {
		t.Errorf("dead-letter stream has %d entries (%v), want 1", n, err)
	}

	// kill -9 of A mid-burst; C joins later and claims what A had read.
	const customers, each = 20, 10
	for i := range customers * each {
		push("customer_id", fmt.Sprintf("new-%02d", i%customers), "type", "purchase", "event_id", fmt.Sprintf("burst-%d", i))
		if i == customers*each/4 {
			a.kill()
		}
	}
	c := serve("c")
	wait("the burst consumed", func() bool {
		n, err := rc.Do(ctx, rc.B().Xpending().Key(stream).Group("nba").Build()).ToArray()
		if err != nil {
			return false
		}
		pending, _ := n[0].AsInt64()
		info, err := rc.Do(ctx, rc.B().XinfoGroups().Key(stream).Build()).ToArray()
		if err != nil || len(info) != 1 {
			return false
		}
		m, _ := info[0].AsMap()
		lagMsg := m["lag"]
		lag, _ := lagMsg.AsInt64()
		return pending == 0 && lag == 0
	})
	t.Logf("after the kill: B applied %v, C applied %v, claimed by B %v, by C %v", b.metric("nba_eventstream_applied_total"), c.metric("nba_eventstream_applied_total"),
		b.metric("nba_eventstream_claimed_total"), c.metric("nba_eventstream_claimed_total"))
	for i := range customers {
		id := fmt.Sprintf("new-%02d", i)
		if n := orders(c, id); n != each {
			t.Errorf("%s has %v orders after the burst, want %d", id, n, each)
		}
	}

	// SIGTERM: the consumer stops, then the process exits cleanly.
	b.signal(syscall.SIGTERM)
	if code, ok := b.waitExit(waitDeadline); !ok || code != 0 {
		t.Errorf("B after SIGTERM: exit code %d, exited %v; log:\n%s", code, ok, b.logs)
	}
	push("customer_id", "new-00", "type", "purchase", "event_id", "after-b")
	wait("C consuming alone", func() bool { return orders(c, "new-00") == each+1 })
}
