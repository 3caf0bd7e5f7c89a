package eventstream_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"nba/nba/eventstream"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestApplyErrors: what an Apply error does to its entry. A transient one
// (state unavailable, a conflict, not ready) leaves it pending and retries
// it until Apply succeeds; any other sends it to the dead-letter stream
// with the error as its reason, and it is acknowledged; so does a panic.
func TestApplyErrors(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	opt, err := rueidis.ParseURL(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		err    error
		dead   string // the dead_reason, or "" when the entry must be retried
		failed int    // Apply calls that fail before one succeeds (retried entries)
	}{
		{"state unavailable", server.StateUnavailablef("disk full"), "", 3},
		{"conflict", server.Conflictf("moved on"), "", 2},
		{"not ready", &server.Error{Status: 503, Code: server.CodeNotReady, Message: "loading"}, "", 1},
		{"invalid", server.Invalidf("bad attr"), "invalid_request: bad attr", 0},
		{"unknown type", &server.Error{Status: 400, Code: server.CodeUnknownEventType, Message: "typo"}, "unknown_event_type: typo", 0},
		{"internal", errors.New("bug"), "internal: bug", 0},
		// An erased customer's event is dropped, not dead-lettered: the
		// copy would keep the id erasure removed.
		{"erased", server.Erasedf("gone"), "-", 0},
		// A panic in Apply used to end the process; on restart the entry
		// was read first again: a crash loop on one poison entry.
		{"panic", nil, "internal: panic: bug", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "{s}:" + strings.ReplaceAll(tc.name, " ", "-")
			var calls atomic.Int64
			c, err := eventstream.Start(eventstream.Config{URL: rs.URL, Stream: stream, Group: "g", Consumer: "c",
				Block: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, StatsEvery: 10 * time.Millisecond,
				Apply: func(ev *server.Event) (bool, error) {
					n := calls.Add(1)
					if tc.name == "panic" {
						panic("bug")
					}
					if tc.dead != "" || n <= int64(tc.failed) {
						return false, tc.err
					}
					return false, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			if err := rc.Do(ctx, rc.B().Xadd().Key(stream).Id("*").FieldValue().FieldValue("customer_id", "c1").FieldValue("type", "t").Build()).Error(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for c.Stats().Consumed == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("entry not consumed: %+v", c.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
			st := c.Stats()
			dead, err := rc.Do(ctx, rc.B().Xrange().Key(stream+":dead").Start("-").End("+").Build()).AsXRange()
			if err != nil {
				t.Fatal(err)
			}
			if tc.dead == "-" {
				if st.DeadLettered != 0 || st.Applied != 0 || st.Retried != 0 || len(dead) != 0 {
					t.Errorf("stats %+v, %d dead letters; want the entry dropped", st, len(dead))
				}
				return
			}
			if tc.dead == "" {
				if st.Retried != uint64(tc.failed) || st.Applied != 1 || len(dead) != 0 {
					t.Errorf("stats %+v, %d dead letters; want %d retries then applied", st, len(dead), tc.failed)
				}
				return
			}
			if st.DeadLettered != 1 || st.Retried != 0 || len(dead) != 1 || dead[0].FieldValues[eventstream.DeadReason] != tc.dead {
				t.Errorf("stats %+v, dead letters %v; want one with reason %q", st, dead, tc.dead)
			}
		})
	}
}

// TestCustomerOrder: one customer's entries are applied in stream order,
// one at a time, while different customers' are applied at once.
func TestCustomerOrder(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	opt, err := rueidis.ParseURL(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	const stream, customers, each = "{order}", 8, 50
	cmds := make(rueidis.Commands, 0, customers*each)
	for i := range customers * each {
		cmds = append(cmds, rc.B().Xadd().Key(stream).Id("*").FieldValue().FieldValue("customer_id", strconv.Itoa(i%customers)).
			FieldValue("type", "t").FieldValue("event_id", strconv.Itoa(i)).Build())
	}
	for _, r := range rc.DoMulti(context.Background(), cmds...) {
		if r.Error() != nil {
			t.Fatal(r.Error())
		}
	}
	var mu sync.Mutex
	seen := map[string][]int{}
	busy := map[string]bool{}
	var inFlight, maxInFlight atomic.Int64
	c, err := eventstream.Start(eventstream.Config{URL: rs.URL, Stream: stream, Group: "g", Consumer: "c", Block: 20 * time.Millisecond,
		Apply: func(ev *server.Event) (bool, error) {
			mu.Lock()
			if busy[ev.CustomerID] {
				t.Errorf("customer %s: two entries applied at once", ev.CustomerID)
			}
			busy[ev.CustomerID] = true
			mu.Unlock()
			n := inFlight.Add(1)
			for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
			}
			time.Sleep(100 * time.Microsecond)
			inFlight.Add(-1)
			id, _ := strconv.Atoi(ev.EventID)
			mu.Lock()
			busy[ev.CustomerID] = false
			seen[ev.CustomerID] = append(seen[ev.CustomerID], id)
			mu.Unlock()
			return false, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for deadline := time.Now().Add(10 * time.Second); c.Stats().Consumed < customers*each; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not consumed: %+v", c.Stats())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for cust, ids := range seen {
		if !slices.IsSorted(ids) || len(ids) != each {
			t.Errorf("customer %s: applied %v; want %d in stream order", cust, ids, each)
		}
	}
	if maxInFlight.Load() < 2 {
		t.Errorf("at most %d entries applied at once; want different customers' together", maxInFlight.Load())
	}
}

// TestCluster: on a 3-master Redis Cluster, the stream and its dead-letter
// stream (keys on any shards) are consumed as on one server.
func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.Options{})
	opt, err := rueidis.ParseURL(cl.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var applied atomic.Int64
	c, err := eventstream.Start(eventstream.Config{URL: cl.URL, Stream: "events", Group: "g", DeadLetter: "poison", Block: 20 * time.Millisecond,
		StatsEvery: 10 * time.Millisecond, Apply: func(ev *server.Event) (bool, error) { applied.Add(1); return false, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx := context.Background()
	for i := range 10 {
		if err := rc.Do(ctx, rc.B().Xadd().Key("events").Id("*").FieldValue().FieldValue("customer_id", strconv.Itoa(i)).FieldValue("type", "t").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Do(ctx, rc.B().Xadd().Key("events").Id("*").FieldValue().FieldValue("type", "t").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// Lag and Pending are read every StatsEvery: wait for a reading taken
	// after the entries were consumed, not one from before.
	for deadline := time.Now().Add(10 * time.Second); c.Stats().Consumed < 11 || c.Stats().Pending != 0 || c.Stats().Lag != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not consumed: %+v", c.Stats())
		}
	}
	if st := c.Stats(); applied.Load() != 10 || st.DeadLettered != 1 || st.Lag != 0 {
		t.Errorf("stats %+v, %d applied; want 10 applied, 1 dead-lettered, lag 0", st, applied.Load())
	}
	if n, err := rc.Do(ctx, rc.B().Xlen().Key("poison").Build()).AsInt64(); err != nil || n != 1 {
		t.Errorf("dead-letter stream: %d entries (%v); want 1", n, err)
	}
}

// TestStartBadURLHidesPassword: an unparsable URL's error (it reaches the
// start-up log) does not quote the password, as url.Parse's error does.
func TestStartBadURLHidesPassword(t *testing.T) {
	for _, u := range []string{"redis://:s3cret@host:6379/%zz", "redis://user:s3cret@ho st:6379/"} {
		_, err := eventstream.Start(eventstream.Config{URL: u, Stream: "s", Group: "g",
			Apply: func(*server.Event) (bool, error) { return false, nil }})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// TestStopTwiceAtOnce: Stop called from several goroutines at the same
// time (a signal handler and a deferred shutdown) stops once; every call
// returns only after the loop has ended (here, after the Apply in hand has
// returned), and a call after them is a no-op. Before, two callers could
// both pass the closed-channel check and close it twice (a panic).
func TestStopTwiceAtOnce(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	opt, err := rueidis.ParseURL(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	const callers = 8
	for i := range 20 {
		stream := "{stop}:" + strconv.Itoa(i)
		applying, release := make(chan struct{}), make(chan struct{})
		c, err := eventstream.Start(eventstream.Config{URL: rs.URL, Stream: stream, Group: "g", Consumer: "c", Block: time.Millisecond,
			Apply: func(*server.Event) (bool, error) {
				close(applying)
				<-release
				return false, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Do(context.Background(), rc.B().Xadd().Key(stream).Id("*").FieldValue().FieldValue("customer_id", "c1").FieldValue("type", "t").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-applying:
		case <-time.After(10 * time.Second):
			t.Fatalf("entry not applied: %+v", c.Stats())
		}
		var wg sync.WaitGroup
		var returned atomic.Int64
		gun := make(chan struct{}) // all callers at once: the widest window for a double close
		for range callers {
			wg.Go(func() {
				<-gun
				c.Stop()
				returned.Add(1)
			})
		}
		close(gun)
		time.Sleep(time.Millisecond)
		if n := returned.Load(); n != 0 {
			t.Fatalf("%d of %d Stop calls returned while Apply was running", n, callers)
		}
		close(release)
		wg.Wait()
		c.Stop() // and once more after: a no-op
		if st := c.Stats(); st.Applied != 1 {
			t.Errorf("stats %+v; want the entry in hand applied before Stop returned", st)
		}
	}
}

// TestClaimedCountsOnlyOthers is the regression test of Claimed counting
// this consumer's own entries: XAUTOCLAIM took back the entries it was
// retrying (state unavailable) every ClaimEvery, so a lone consumer
// reported claims. Now an entry left by a dead consumer is claimed once
// and applied, and the live consumer's own retried entry is never counted.
func TestClaimedCountsOnlyOthers(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	opt, err := rueidis.ParseURL(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx := context.Background()
	const stream = "{s}:claims"
	add := func(customer string) {
		t.Helper()
		if err := rc.Do(ctx, rc.B().Xadd().Key(stream).Id("*").FieldValue().FieldValue("customer_id", customer).FieldValue("type", "t").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Do(ctx, rc.B().XgroupCreate().Key(stream).Group("g").Id("0").Mkstream().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// A consumer that read an entry and died.
	add("from-dead")
	if err := rc.Do(ctx, rc.B().Xreadgroup().Group("g", "dead").Count(1).Streams().Key(stream).Id(">").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // idle past MinIdle
	var retries atomic.Int64
	var applied sync.Map
	c, err := eventstream.Start(eventstream.Config{URL: rs.URL, Stream: stream, Group: "g", Consumer: "live",
		Block: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, StatsEvery: 10 * time.Millisecond,
		MinIdle: 20 * time.Millisecond, ClaimEvery: 5 * time.Millisecond,
		Apply: func(ev *server.Event) (bool, error) {
			if ev.CustomerID == "stuck" && retries.Add(1) < 30 {
				return false, server.StateUnavailablef("down")
			}
			applied.Store(ev.CustomerID, true)
			return false, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	add("stuck") // this consumer's own, retried for a while
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, a := applied.Load("from-dead")
		_, b := applied.Load("stuck")
		if a && b {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entries not applied: %+v", c.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := c.Stats(); st.Claimed != 1 || st.Retried < 5 {
		t.Errorf("stats %+v: want 1 claimed (the dead consumer's entry) after %d retries of its own entry", st, retries.Load())
	}
}
