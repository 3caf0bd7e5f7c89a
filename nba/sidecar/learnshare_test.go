package sidecar

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"nba/nba"
	"nba/nba/demo"
	"nba/nba/server"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// TestLearningSharedAcrossReplicas: two sidecars on one Redis. Feedback
// sent to the replica that did not decide is learned with the features the
// decision saw (read from Redis); after the same feedback both hold the
// same posteriors; an impression left without an outcome is learned as
// ignored once, though both replicas sweep; a third replica started later
// converges from the checkpoint in Redis plus the stream after it. Before,
// each replica learned only the feedback it received, from the current
// profile when it had not decided, and the ignored negative was produced
// by every replica that had seen the impression.
func TestLearningSharedAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	open := func() *Sidecar {
		t.Helper()
		s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateRedis: rs.URL,
			ResponseWindow: time.Hour, LearnCheckpointEvery: time.Hour, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	replicas := []*Sidecar{a, b}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	event := 0
	feedback := func(s *Sidecar, decision, customer, action string, o server.Outcome) {
		t.Helper()
		event++
		if err := s.Feedback(&server.Feedback{DecisionID: decision, CustomerID: customer, ActionID: action, Channel: "web",
			Outcome: o, TS: now, EventID: fmt.Sprintf("e%d", event)}); err != nil {
			t.Fatal(err)
		}
	}
	decide := func(s *Sidecar, decision, customer string) string {
		t.Helper()
		written := s.share.decWritten.Load()
		var resp server.DecideResponse
		if err := s.Decide(&server.DecideRequest{DecisionID: decision, CustomerID: customer, Channel: "web", Limit: 1}, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.Actions) == 0 {
			t.Fatalf("no action for %s", customer)
		}
		waitFor("the decision's features written", func() bool { return s.share.decWritten.Load() > written })
		return resp.Actions[0].ID
	}

	// Decided on a, feedback on b.
	const dec0 = "00000000000000000000000000000000"
	act := decide(a, dec0, "c00042")
	saw, ok := a.engine.RememberedDecision(a.rememberKey(dec0))
	if !ok {
		t.Fatal("the deciding replica does not remember its decision")
	}
	feedback(b, dec0, "c00042", act, server.OutcomeImpression)
	feedback(b, dec0, "c00042", act, server.OutcomeAccept)
	if got := b.share.redisHits.Load(); got != 1 {
		t.Fatalf("replica b read the decision's features from Redis %d times, want 1 (local hits %d, misses %d)",
			got, b.share.localHits.Load(), b.share.redisMisses.Load())
	}
	ls, err := redisstate.OpenLearn(redisstate.LearnConfig{URL: rs.URL, DecisionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	es, err := ls.Read(context.Background(), "0-0", 10, 0)
	if err != nil || len(es) != 1 {
		t.Fatalf("stream after one accept: %d entries, %v", len(es), err)
	}
	var o nba.Observation
	if err := o.UnmarshalBinary(es[0].Data); err != nil {
		t.Fatal(err)
	}
	j := -1
	for i, id := range saw.Actions {
		if id == act {
			j = i
		}
	}
	if o.Action != act || o.Reward != 1 || j < 0 || o.Offset != saw.Offsets[j] || !equalFloats(o.Features, saw.Features) {
		t.Fatalf("learned %+v, want the features %v and offset of what the decision saw %+v", o, saw.Features, saw)
	}

	// A mixed feedback stream round-robined over both replicas: each
	// decision's outcomes go to the other replica.
	n := 0
	var lags []time.Duration
	for i := range 12 {
		dr, fr := replicas[i%2], replicas[(i+1)%2]
		id := fmt.Sprintf("%032x", i+1)
		cust := fmt.Sprintf("c%05d", 100+i)
		act := decide(dr, id, cust)
		feedback(fr, id, cust, act, server.OutcomeImpression)
		start := time.Now()
		switch i % 4 {
		case 0:
			feedback(fr, id, cust, act, server.OutcomeAccept)
		case 1:
			feedback(dr, id, cust, act, server.OutcomeReject)
		case 2:
			feedback(fr, id, cust, act, server.OutcomeConvert)
		case 3:
			n++ // left without an outcome
			continue
		}
		// How long until both replicas learned it.
		published := a.share.published.Load() + b.share.published.Load()
		waitFor("the observation applied", func() bool {
			return a.share.applied.Load() == published && b.share.applied.Load() == published
		})
		lags = append(lags, time.Since(start))
	}
	slices.Sort(lags)
	t.Logf("feedback sent (state write, pending take, stream append) to learned on both replicas: median %v, max %v (%d outcomes)", lags[len(lags)/2], lags[len(lags)-1], len(lags))
	// Both sweep after the window: each ignored impression once.
	later := now.Add(2 * time.Hour)
	a.expirePending(later)
	b.expirePending(later)
	if got, want := a.share.published.Load()+b.share.published.Load(), uint64(1+9+n); got != want {
		t.Fatalf("published %d observations, want %d (the ignored ones once)", got, want)
	}
	total := a.share.published.Load() + b.share.published.Load()
	for _, s := range replicas {
		waitFor("every observation applied", func() bool { return s.share.applied.Load() == total })
	}
	sameModels(t, a, b)

	// A third replica, started after a checkpoint, plus more feedback.
	a.share.checkpoint() // its applier is idle: every entry applied
	if a.share.checkpoints.Load() != 1 {
		t.Fatal("no checkpoint written")
	}
	act = decide(a, fmt.Sprintf("%032x", 99), "c00500")
	feedback(b, fmt.Sprintf("%032x", 99), "c00500", act, server.OutcomeImpression)
	feedback(b, fmt.Sprintf("%032x", 99), "c00500", act, server.OutcomeAccept)
	total++
	c := open()
	if c.share.restoredFrom.Load() == nil {
		t.Fatal("the third replica did not restore a checkpoint from Redis")
	}
	if r := c.share.replayed.Load(); r == 0 || r >= total {
		t.Fatalf("the third replica replayed %d of %d observations, want the ones after its checkpoint only", r, total)
	}
	for _, s := range []*Sidecar{a, b} {
		waitFor("every observation applied", func() bool { return s.share.applied.Load() == total })
	}
	sameModels(t, a, b)
	sameModels(t, a, c)
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// sameModels checks that two replicas hold the same evidence per action
// (within 1e-9) and the same online models.
func sameModels(t *testing.T, a, b *Sidecar) {
	t.Helper()
	ea, eb := a.engine.LearnerStats().Actions, b.engine.LearnerStats().Actions
	if len(ea) != len(eb) {
		t.Fatalf("%d and %d actions", len(ea), len(eb))
	}
	learned := 0.0
	for i := range ea {
		if ea[i].Action != eb[i].Action || math.Abs(ea[i].Evidence-eb[i].Evidence) > 1e-9 {
			t.Errorf("action %s: evidence %v on one replica, %v on the other", ea[i].Action, ea[i].Evidence, eb[i].Evidence)
		}
		learned += ea[i].Evidence
	}
	if learned == 0 {
		t.Error("nothing learned")
	}
	ma, err1 := a.engine.MarshalLearner()
	mb, err2 := b.engine.MarshalLearner()
	if err1 != nil || err2 != nil || !bytes.Equal(ma, mb) {
		t.Errorf("the online models differ (%v, %v)", err1, err2)
	}
}

// TestSharedLearningResumesAfterRedisRestart: Redis killed and restarted
// (appendfsync always): the replicas' stream readers resume by themselves
// from the last id they applied, and both learn the feedback acknowledged
// after the restart, once.
func TestSharedLearningResumesAfterRedisRestart(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var replicas []*Sidecar
	for range 2 {
		s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateRedis: rs.URL,
			ResponseWindow: time.Hour, LearnCheckpointEvery: time.Hour, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		replicas = append(replicas, s)
	}
	a, b := replicas[0], replicas[1]
	accept := func(s *Sidecar, cust, event string) error {
		var resp server.DecideResponse
		if err := s.Decide(&server.DecideRequest{DecisionID: fmt.Sprintf("%032x", len(event)+len(cust)), CustomerID: cust, Channel: "web", Limit: 1}, &resp); err != nil {
			return err
		}
		action := "xs_books"
		switch {
		case len(resp.Actions) > 0:
			action = resp.Actions[0].ID
		case !resp.Stale:
			t.Fatalf("no web action for %s", cust)
		}
		// A stale decision for a customer never read gives no marketing
		// (consent fails closed): the feedback is for another action.
		return s.Feedback(&server.Feedback{CustomerID: cust, ActionID: action, Channel: "web", Outcome: server.OutcomeAccept, TS: now, EventID: event})
	}
	applied := func(want uint64) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); a.share.applied.Load() != want || b.share.applied.Load() != want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("applied %d and %d, want %d; status a %v; b %v", a.share.applied.Load(), b.share.applied.Load(), want, a.share.stats(), b.share.stats())
			}
		}
	}
	if err := accept(a, "c00100", "e1"); err != nil {
		t.Fatal(err)
	}
	applied(1)
	rs.Kill()
	for deadline := time.Now().Add(5 * time.Second); a.state.Err() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Redis killed, not noticed")
		}
	}
	if err := accept(b, "c00101", "e2"); err == nil {
		t.Fatal("feedback acknowledged with Redis down")
	}
	rs.Restart()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := accept(b, "c00102", "e3"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("feedback still refused after Redis restarted: %v", err)
		}
	}
	applied(2)
	sameModels(t, a, b)
}

// TestLearnShareDroppedCountsOnlyDrops is the regression test of
// decisions_dropped counting every decision that answered no action
// (nothing remembered, so nothing to write) as a dropped write: decisions
// without actions leave the counter at 0, and with an action are written.
func TestLearnShareDroppedCountsOnlyDrops(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateRedis: rs.URL,
		ResponseWindow: time.Hour, LearnCheckpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	empty, full := 0, 0
	for i := 0; i < 400 && (empty < 20 || full == 0); i++ {
		var resp server.DecideResponse
		if err := s.Decide(&server.DecideRequest{DecisionID: fmt.Sprintf("%032x", i+1), CustomerID: fmt.Sprintf("c%05d", i+1), Channel: "sms", Limit: 1}, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.Actions) == 0 {
			empty++
		} else if empty > 0 {
			full++ // after the empty ones: its write comes after theirs
		}
	}
	if empty == 0 || full == 0 {
		t.Fatalf("%d decisions without an action, %d with one after them: the test needs both", empty, full)
	}
	for deadline := time.Now().Add(10 * time.Second); s.share.decWritten.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for a decision's features written")
		}
	}
	// The writer takes the queue in order: once a later write is done,
	// every earlier decision was handled.
	for deadline := time.Now().Add(10 * time.Second); len(s.share.decisions) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the queue to drain")
		}
	}
	time.Sleep(50 * time.Millisecond)
	if got := s.share.decDropped.Load(); got != 0 {
		t.Errorf("decisions_dropped = %d after %d decisions without an action and %d with, no queue full; want 0", got, empty, full)
	}
}
