package eventstream_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"nba/nba/eventstream"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestEntriesNamedByIDs: an entry may name its customer by "ids" (a JSON
// object of identifiers by namespace) in place of or beside customer_id,
// as a POST /v1/events body may; Apply gets them to resolve. Entries whose
// ids are not such an object, or that name no customer at all, go to the
// dead-letter stream. Before, ids were ignored and an entry without
// customer_id was dead-lettered.
func TestEntriesNamedByIDs(t *testing.T) {
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
	const stream = "{s}:ids"
	var mu sync.Mutex
	var applied []string
	c, err := eventstream.Start(eventstream.Config{URL: rs.URL, Stream: stream, Group: "g", Consumer: "c",
		Block: 20 * time.Millisecond, StatsEvery: 10 * time.Millisecond,
		Apply: func(ev *server.Event) (bool, error) {
			var ids []string
			for _, f := range ev.IDs {
				ids = append(ids, f.Key+"="+f.Str)
			}
			mu.Lock()
			applied = append(applied, ev.CustomerID+"|"+strings.Join(ids, ","))
			mu.Unlock()
			return false, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	entries := [][]string{
		{"ids", `{"cookie":"c-91"}`, "type", "cart_abandoned"},
		{"customer_id", "c1", "ids", `{"device":"d1"}`, "type", "login"},
		{"ids", `{"cookie":7}`, "type", "t"},
		{"ids", `["c-91"]`, "type", "t"},
		{"ids", `{"cookie":null}`, "type", "t"},
		{"type", "t"},
	}
	for _, kv := range entries {
		cmd := rc.B().Xadd().Key(stream).Id("*").FieldValue()
		for i := 0; i < len(kv); i += 2 {
			cmd = cmd.FieldValue(kv[i], kv[i+1])
		}
		if err := rc.Do(ctx, cmd.Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Consumed < uint64(len(entries)) {
		if time.Now().After(deadline) {
			t.Fatalf("entries not consumed: %+v", c.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	slices.Sort(applied) // different queues: applied in any order
	got := strings.Join(applied, " ")
	mu.Unlock()
	if want := "c1|device=d1 |cookie=c-91"; got != want {
		t.Errorf("applied %q, want %q", got, want)
	}
	dead, err := rc.Do(ctx, rc.B().Xrange().Key(stream+":dead").Start("-").End("+").Build()).AsXRange()
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, d := range dead {
		reasons = append(reasons, d.FieldValues[eventstream.DeadReason])
	}
	if len(dead) != 4 || !strings.Contains(reasons[0], "ids.cookie must be a string") || !strings.Contains(reasons[1], "ids") ||
		!strings.Contains(reasons[2], "customer_id") || !strings.Contains(reasons[3], "customer_id") {
		t.Errorf("dead letters' reasons %q, want 4: two about ids, two about customer_id", reasons)
	}
}
