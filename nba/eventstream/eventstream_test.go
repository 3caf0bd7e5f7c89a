package eventstream_test

import (
	"context"
	"errors"
	"strings"
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
// with the error as its reason, and it is acknowledged.
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "{s}:" + strings.ReplaceAll(tc.name, " ", "-")
			var calls atomic.Int64
			c, err := eventstream.Start(eventstream.Config{URL: rs.URL, Stream: stream, Group: "g", Consumer: "c",
				Block: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, StatsEvery: 10 * time.Millisecond,
				Apply: func(ev *server.Event) (bool, error) {
					n := calls.Add(1)
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
