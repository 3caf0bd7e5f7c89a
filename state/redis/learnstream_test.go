package redisstate_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// TestLearnStream: on a real server, every pending impression is taken
// or expired by exactly one of several concurrent replicas; the bound
// hands back the oldest; the checkpoint is only replaced by one covering a
// later stream id; the stream reads back in order from an id, and
// reports when entries after an id were trimmed.
func TestLearnStream(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	open := func(cfg redisstate.LearnConfig) *redisstate.LearnStream {
		t.Helper()
		cfg.URL, cfg.DecisionTTL = rs.URL, time.Minute
		l, err := redisstate.OpenLearn(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		return l
	}
	l := open(redisstate.LearnConfig{MaxLen: 10, MaxPending: 100})
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	t.Run("pending decided once", func(t *testing.T) {
		const n = 60
		for i := range n {
			if ev, err := l.AddPending(ctx, fmt.Sprintf("c%d", i), "a", fmt.Sprintf("d%d", i), t0.Add(time.Duration(i)*time.Millisecond)); err != nil || len(ev) != 0 {
				t.Fatalf("add %d: evicted %v, %v", i, ev, err)
			}
		}
		if ev, _ := l.AddPending(ctx, "c0", "a", "again", t0); len(ev) != 0 {
			t.Fatal("a second impression of the same action evicted")
		}
		var taken atomic.Int64
		var wg sync.WaitGroup
		replicas := []*redisstate.LearnStream{l, open(redisstate.LearnConfig{}), open(redisstate.LearnConfig{})}
		for _, r := range replicas {
			wg.Add(2)
			go func() { // outcomes for the even customers
				defer wg.Done()
				for i := 0; i < n; i += 2 {
					d, ok, err := r.TakePending(ctx, fmt.Sprintf("c%d", i), "a")
					if err != nil {
						t.Error(err)
					}
					if ok {
						if d != fmt.Sprintf("d%d", i) {
							t.Errorf("took c%d with decision %q", i, d)
						}
						taken.Add(1)
					}
				}
			}()
			go func() { // sweeps
				defer wg.Done()
				for range 5 {
					ps, err := r.ExpirePending(ctx, t0.Add(time.Hour), 7)
					if err != nil {
						t.Error(err)
					}
					taken.Add(int64(len(ps)))
				}
			}()
		}
		wg.Wait()
		for {
			ps, err := l.ExpirePending(ctx, t0.Add(time.Hour), 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) == 0 {
				break
			}
			taken.Add(int64(len(ps)))
		}
		if got := taken.Load(); got != n {
			t.Fatalf("%d impressions decided, want each of %d once", got, n)
		}
	})

	t.Run("bound hands back the oldest", func(t *testing.T) {
		small := open(redisstate.LearnConfig{Prefix: "small", MaxPending: 2})
		small.AddPending(ctx, "x", "a", "d1", t0)
		small.AddPending(ctx, "y", "a", "d2", t0.Add(time.Second))
		ev, err := small.AddPending(ctx, "z", "a", "d3", t0.Add(2*time.Second))
		if err != nil || len(ev) != 1 || ev[0].Customer != "x" || ev[0].DecisionID != "d1" || !ev[0].At.Equal(t0) {
			t.Fatalf("evicted %+v, %v; want x shown at %v", ev, err, t0)
		}
	})

	t.Run("checkpoint compare-and-set", func(t *testing.T) {
		if _, _, ok, err := l.LoadCheckpoint(ctx); ok || err != nil {
			t.Fatalf("checkpoint before any: %v %v", ok, err)
		}
		f := func(id, data string, want bool) {
			t.Helper()
			ok, err := l.SaveCheckpoint(ctx, id, []byte(data))
			if err != nil || ok != want {
				t.Fatalf("save %s: %v, %v; want %v", id, ok, err, want)
			}
		}
		f("5-1", "a", true)
		f("5-1", "b", false)
		f("4-9", "c", false)
		f("5-2", "d", true)
		f("10-0", "e\x00\xff", true) // numeric, not string, order; binary data
		id, data, ok, err := l.LoadCheckpoint(ctx)
		if err != nil || !ok || id != "10-0" || string(data) != "e\x00\xff" {
			t.Fatalf("loaded %q %q %v %v", id, data, ok, err)
		}
	})

	t.Run("stream order and trimming", func(t *testing.T) {
		var ids []string
		for i := range 300 {
			id, err := l.Publish(ctx, []byte{byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		es, err := l.Read(ctx, ids[289], 100, 0)
		if err != nil || len(es) != 10 || es[0].ID != ids[290] || es[9].Data[0] != byte(299%256) {
			t.Fatalf("read after %s: %d entries, %v", ids[289], len(es), err)
		}
		if es, err := l.Read(ctx, ids[299], 10, 20*time.Millisecond); err != nil || len(es) != 0 {
			t.Fatalf("read at the end: %d entries, %v", len(es), err)
		}
		if gap, err := l.Trimmed(ctx, ids[0]); err != nil || !gap {
			t.Errorf("MAXLEN ~10 after 300 entries: trimmed after the first %v, %v", gap, err)
		}
		if gap, err := l.Trimmed(ctx, ids[299]); err != nil || gap {
			t.Errorf("trimmed after the last: %v, %v", gap, err)
		}
	})
}

func TestCompareStreamIDs(t *testing.T) {
	f := func(a, b string, want int) {
		t.Helper()
		if got := redisstate.CompareStreamIDs(a, b); got != want {
			t.Errorf("CompareStreamIDs(%q, %q) = %d, want %d", a, b, got, want)
		}
	}
	f("1-0", "1-0", 0)
	f("2-0", "10-0", -1)
	f("10-1", "10-0", 1)
	f("0-0", "1-0", -1)
}

// TestLearnStreamWritesAfterRedisRestart is the regression test of the
// flaky TestSharedLearningResumesAfterRedisRestart (nba/sidecar): after
// Redis restarted, the first write on a connection the old server had
// (a client finds it broken only by using it) failed with EOF, so the
// observation of a feedback acknowledged after the restart was lost. Each
// write is now sent once more on a network error; an observation's retry
// carries the same nonce and is appended once.
func TestLearnStreamWritesAfterRedisRestart(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	ctx := context.Background()
	l, err := redisstate.OpenLearn(redisstate.LearnConfig{URL: rs.URL, DecisionTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	writes := []struct {
		name  string
		write func() error
	}{
		{"publish", func() error { _, err := l.Publish(ctx, []byte("o")); return err }},
		{"put decisions", func() error {
			_, err := l.PutDecisions(ctx, []string{"d1", "d2"}, [][]byte{[]byte("f1"), []byte("f2")})
			return err
		}},
		{"add pending", func() error { _, err := l.AddPending(ctx, "c1", "a", "d1", t0); return err }},
		{"take pending", func() error { _, _, err := l.TakePending(ctx, "c1", "a"); return err }},
		{"save checkpoint", func() error { _, err := l.SaveCheckpoint(ctx, "9-0", []byte("m")); return err }},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			if err := w.write(); err != nil {
				t.Fatalf("before the restart: %v", err)
			}
			rs.Kill()
			rs.Restart()
			if err := w.write(); err != nil {
				t.Errorf("first write after Redis restarted: %v", err)
			}
		})
	}
	es, err := l.Read(ctx, "0-0", 100, 0)
	if err != nil || len(es) != 2 {
		t.Fatalf("stream after two publishes = %d entries, %v; want 2", len(es), err)
	}

	first, err := l.PublishNonce(ctx, []byte("x"), "n1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.PublishNonce(ctx, []byte("x"), "n1")
	if err != nil || again != first {
		t.Errorf("retry of a publish = %q, %v; want the first entry's id %q", again, err, first)
	}
	if es, _ := l.Read(ctx, "0-0", 100, 0); len(es) != 3 {
		t.Errorf("stream after a publish and its retry: %d entries; want 3", len(es))
	}
}
