package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/eventstream"
	"nba/nba/server"
	"nba/state"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
	"nba/state/wal"
)

// TestStateMismatchPermanent is the regression test of a customer whose
// value on Redis was written with other profile mappings: its events were
// answered 503 "the state log cannot be written … retry later" (retrying
// never helps), the stream consumer retried its entry forever, and
// /readyz said ready while every write failed. Now the write is answered
// 500 state_mismatch, the stream entry is dead-lettered with that reason,
// and Ready is 503 state_mismatch until a write succeeds again.
func TestStateMismatchPermanent(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	rc := streamClient(t, rs.URL)
	s := openStreamSidecar(t, t.TempDir(), rs.URL, rs.URL, nil)
	ctx := context.Background()
	event := func(customer, id string) error {
		_, err := s.ApplyEvent(&server.Event{CustomerID: customer, Type: "cart_abandoned", TS: streamNow, EventID: id})
		return err
	}
	for _, c := range []string{"mixcust", "mixcust2"} {
		if err := event(c, c+"-1"); err != nil {
			t.Fatal(err)
		}
		// As a process with other mappings leaves it: another digest, a
		// newer version.
		v, err := rc.Do(ctx, rc.B().Hget().Key("{c:"+c+"}").Field("v").Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Do(ctx, rc.B().Hset().Key("{c:"+c+"}").FieldValue().FieldValue("v", strconv.FormatInt(v+1, 10)).
			FieldValue("d", "0123456789abcdef0123456789abcdef").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ready(); err != nil {
		t.Fatalf("ready before any refused write: %v", err)
	}
	var se *server.Error
	for try := range 2 {
		err := event("mixcust", "mixcust-2")
		if !errors.As(err, &se) || se.Code != server.CodeStateMismatch || se.Status != 500 || strings.Contains(se.Message, "retry later") {
			t.Fatalf("event %d for a customer written with other mappings: %v; want 500 state_mismatch, not retry later", try, err)
		}
	}
	if err := s.Ready(); !errors.As(err, &se) || se.Code != server.CodeStateMismatch || se.Status != 503 {
		t.Fatalf("ready while every write fails: %v; want 503 state_mismatch", err)
	}
	if err := event("fresh", "fresh-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("ready after a write succeeded: %v", err)
	}

	// The stream: the entry is dead-lettered with its reason, and the
	// entries after it are applied.
	xadd(t, rc, "customer_id", "mixcust2", "type", "cart_abandoned", "event_id", "mix-s1")
	xadd(t, rc, "customer_id", "fresh2", "type", "cart_abandoned", "event_id", "fresh-s1")
	st := waitStream(t, s, "both entries handled", func(st eventstream.Stats) bool { return st.DeadLettered+st.Applied >= 2 })
	if st.DeadLettered != 1 || st.Applied != 1 || st.Retried != 0 {
		t.Errorf("stream stats %+v: want the mismatched entry dead-lettered at once, the other applied", st)
	}
	dead, err := rc.Do(ctx, rc.B().Xrange().Key(testStream+":dead").Start("-").End("+").Build()).AsXRange()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || !strings.HasPrefix(dead[0].FieldValues[eventstream.DeadReason], server.CodeStateMismatch+": ") {
		t.Errorf("dead letters %+v: want one with reason state_mismatch", dead)
	}
	if n := pendingCount(t, rc); n != 0 {
		t.Errorf("%d entries pending: want none", n)
	}
}

// TestUnavailableMessageByBackend is the regression test of every 503
// state_unavailable on Redis reading "(the state log cannot be written):
// nothing was recorded; retry later", the embedded store's words: Redis
// has no state log, and a write whose WAIT timed out was applied on the
// primary, so a client trusting "nothing was recorded" counted a contact
// twice. The reason is worded by cause and backend, and the message says
// the write may have been recorded whenever it may.
func TestUnavailableMessageByBackend(t *testing.T) {
	wrap := func(err error) error {
		return &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("cannot write customer state: %w", err)}
	}
	for _, tc := range []struct {
		name    string
		err     error
		redis   bool
		reason  string
		applied bool
	}{
		{"embedded disk full", wrap(syscall.ENOSPC), false, "no space left on device", false},
		{"embedded backlog", wrap(wal.ErrBacklog), false, "too many writes waiting for the disk", false},
		{"embedded other", wrap(errors.New("bad sector")), false, "the state log cannot be written", false},
		{"redis wait", wrap(fmt.Errorf("0 of 1 replicas acknowledged within 500ms: %w", redisstate.ErrReplicasShort)), true, "fewer Redis replicas than -state.redis.waitReplicas confirmed it in time", true},
		{"redis full", wrap(fmt.Errorf("%w (%w)", redisstate.ErrFull, errors.New("OOM command not allowed when used memory > 'maxmemory'."))), true, "Redis is full", false},
		{"redis unreachable", wrap(context.DeadlineExceeded), true, "customer state on Redis does not answer", true},
		{"redis closed", &state.Error{Kind: state.ErrUnavailable, Err: redisstate.ErrClosed}, true, "shutting down", false},
		{"redis connection closed", wrap(errors.New("use of closed network connection")), true, "customer state on Redis does not answer", true},
		{"redis full, as the backend wraps it", wrap(redisstate.ErrFull), true, "Redis is full", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := unavailableMessage(tc.err, tc.redis, opWrite)
			if !strings.Contains(msg, tc.reason) {
				t.Errorf("message %q lacks the reason %q", msg, tc.reason)
			}
			if tc.redis && strings.Contains(msg, "state log") {
				t.Errorf("message %q names the embedded state log on Redis", msg)
			}
			if tc.applied == strings.Contains(msg, "nothing was recorded") || tc.applied != strings.Contains(msg, "may have been recorded") {
				t.Errorf("message %q: the write may have been applied: %v", msg, tc.applied)
			}
		})
	}
}

// TestWaitTimeoutNotNothingRecorded: on Redis with -state.redis.waitReplicas
// and no replica, a feedback is answered 503 saying it may have been
// recorded (the primary applied it), and the impression is indeed there.
func TestWaitTimeoutNotNothingRecorded(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateRedis: rs.URL, StateRedisWaitReplicas: 1,
		Now: func() time.Time { return streamNow }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Feedback(&server.Feedback{CustomerID: "c08010", ActionID: "wb_20_off", Channel: "sms", Outcome: server.OutcomeImpression, TS: streamNow})
	var se *server.Error
	if !errors.As(err, &se) || se.Code != server.CodeStateUnavailable || strings.Contains(se.Message, "nothing was recorded") ||
		strings.Contains(se.Message, "state log") || !strings.Contains(se.Message, "replicas") {
		t.Fatalf("feedback without the replica asked for: %v; want 503 saying the write may have been recorded", err)
	}
	if h, _ := customerView(t, s, "c08010")["history"].([]any); len(h) != 1 {
		t.Errorf("history %v: the primary has the impression (that is why the message may not say nothing was recorded)", h)
	}
}
