package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nba/state/redis/redistest"
)

// startReplicas starts n nba serve processes on one Redis, each with its
// own -state directory.
func startReplicas(t *testing.T, url string, n int) []*proc {
	t.Helper()
	var ps []*proc
	for range n {
		ps = append(ps, startServe(t, "-state", t.TempDir(), "-state.redis", url, "-decisionlog=false"))
	}
	return ps
}

// TestReplicaKilledMidBurst: 8 writers send feedback and events round
// robin to three replicas on one Redis (appendfsync always); one replica
// is killed with SIGKILL mid-burst, and the writers go on with the other
// two. Every write any replica acknowledged, the killed one's included, is
// in the shared state afterwards, as both survivors show it (a write a
// replica refused with 503 under load is not acknowledged, and counted).
func TestReplicaKilledMidBurst(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	ps := startReplicas(t, srv.URL, 3)
	var next atomic.Int64
	w := startTolerantWriters(ps, &next)
	eventually(t, "acknowledgements by the replica to kill", func() bool { return w.ackedBy[1].Load() >= 60 })
	ps[1].kill()
	killed := w.ackedBy[1].Load()
	eventually(t, "acknowledgements after the kill", func() bool { return w.ackedBy[0].Load()+w.ackedBy[2].Load() >= 2*killed })
	all := w.wait(t)
	t.Logf("%d writes acknowledged, %d by the killed replica; %d refused as state_unavailable", len(all), w.ackedBy[1].Load(), w.unavailable.Load())
	verifyAckedFresh(t, ps[0], all)
	verifyAckedFresh(t, ps[2], all)
}

// verifyAckedFresh is verifyAcked on views read with the live state: a
// view marked "state":"stale" (Redis did not answer in time, on a loaded
// machine) is read again, so that only a write missing from Redis counts
// as lost.
func verifyAckedFresh(t *testing.T, p *proc, all []acked) {
	t.Helper()
	for _, a := range all {
		deadline := time.Now().Add(waitDeadline)
		for {
			r, err := p.try("GET", p.base+"/v1/customers/"+a.customer, "")
			if err != nil || r.status != http.StatusOK {
				t.Fatalf("GET /v1/customers/%s: %v %v", a.customer, r, err)
			}
			var v customerView
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatal(err)
			}
			if v.State == "stale" && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			ok := v.State == ""
			if a.event {
				st, _, in := v.journey("abandoned_cart")
				ok = ok && v.Profile["cart_value"] == a.value && in && st == "active"
			} else {
				ok = ok && v.hasContact("xs_shoes", "web", "convert", a.value)
			}
			if !ok {
				t.Fatalf("acknowledged write %+v lost: customer view %v; the process log:\n%s", a, r, p.logs)
			}
			break
		}
	}
}

// tolerantWriters are writers (as startWriters) sending to replicas in
// turn that take 503 state_unavailable (and no answer from a replica that
// was killed) as "not acknowledged" and go on; any other answer but 200 is
// an error.
type tolerantWriters struct {
	wg          sync.WaitGroup
	mu          sync.Mutex
	got         []acked
	ackedBy     [3]atomic.Int64 // by replica
	unavailable atomic.Int64
	bad         []string
	stop        chan struct{}
}

func startTolerantWriters(ps []*proc, next *atomic.Int64) *tolerantWriters {
	w := &tolerantWriters{stop: make(chan struct{})}
	for g := range 8 {
		w.wg.Go(func() {
			for i := g; ; i++ {
				select {
				case <-w.stop:
					return
				default:
				}
				p := ps[i%len(ps)]
				n := next.Add(1)
				a := acked{customer: fmt.Sprintf("c%05d", 1+(n-1)%10000), value: float64(n), event: n%4 == 0}
				path, body := "/v1/feedback", fmt.Sprintf(`{"customer_id":%q,"action_id":"xs_shoes","channel":"web","outcome":"convert","value":%d,"event_id":"fb-%d"}`, a.customer, n, n)
				if a.event {
					path, body = "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"cart_abandoned","attrs":{"value":%d},"event_id":"ev-%d"}`, a.customer, n, n)
				}
				r, err := p.try("POST", p.base+path, body)
				exited := false
				if err != nil {
					// A killed replica's connection may break just before
					// its exit is reaped.
					select {
					case <-p.exited:
						exited = true
					case <-time.After(2 * time.Second):
					}
				}
				w.mu.Lock()
				switch {
				case err != nil && exited:
				case err != nil:
					w.bad = append(w.bad, path+": "+err.Error())
				case r.status == http.StatusOK:
					w.got = append(w.got, a)
					w.ackedBy[i%len(ps)].Add(1)
				case r.status == http.StatusServiceUnavailable && bytes.Contains(r.body, []byte(`"state_unavailable"`)):
					w.unavailable.Add(1)
				default:
					w.bad = append(w.bad, path+" "+r.String())
				}
				w.mu.Unlock()
				if n > 9000 {
					return // customers are not reused
				}
			}
		})
	}
	return w
}

func (w *tolerantWriters) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.got)
}

func (w *tolerantWriters) wait(t *testing.T) []acked {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	if len(w.bad) > 0 {
		t.Fatalf("%d writes answered otherwise than 200 or 503 state_unavailable, first: %s", len(w.bad), w.bad[0])
	}
	return w.got
}

// TestRedisKilledMidBurst: writers send feedback and events round robin
// to three replicas; Redis (appendfsync always) is killed with SIGKILL
// mid-burst and restarted. While it is down writes answer 503
// state_unavailable (never 200); afterwards the replicas take writes
// again by themselves, and every acknowledged write is there: zero
// acknowledged-but-lost.
func TestRedisKilledMidBurst(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	ps := startReplicas(t, srv.URL, 3)
	var next atomic.Int64
	w := startTolerantWriters(ps, &next)
	eventually(t, "acknowledgements before the kill", func() bool { return w.acked() >= 150 })
	srv.Kill()
	eventually(t, "writes refused while Redis is down", func() bool { return w.unavailable.Load() >= 20 })
	down := w.acked()
	srv.Restart()
	eventually(t, "writes acknowledged again after the restart", func() bool { return w.acked() >= down+150 })
	all := w.wait(t)
	t.Logf("%d writes acknowledged, %d refused as state_unavailable", len(all), w.unavailable.Load())
	for _, p := range ps {
		verifyAckedFresh(t, p, all)
	}
}

// TestRedisRestartWhileDeciding: clients decide round robin on three
// replicas while Redis is stopped and started again. No decision fails
// (5xx): while Redis is down they are answered from the snapshot and the
// last state held, marked "state":"stale" (counted); a feedback answers
// 503 state_unavailable on every replica; after the restart feedback is
// acknowledged again and decisions are no longer stale, without any
// restart of the replicas.
func TestRedisRestartWhileDeciding(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	ps := startReplicas(t, srv.URL, 3)
	var decided, stale atomic.Int64
	var mu sync.Mutex
	var failed []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := ps[i%len(ps)]
				r, err := p.try("POST", p.base+"/v1/decide", fmt.Sprintf(`{"customer_id":"c%05d","channel":"push","limit":2}`, 1+i%5000))
				if err != nil || r.status != http.StatusOK {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%v %v", r, err))
					mu.Unlock()
					continue
				}
				decided.Add(1)
				if bytes.Contains(r.body, []byte(`"state":"stale"`)) {
					stale.Add(1)
				}
			}
		})
	}
	feedback := func(p *proc, n int) reply {
		r, err := p.try("POST", p.base+"/v1/feedback",
			fmt.Sprintf(`{"customer_id":"c09%03d","action_id":"xs_shoes","channel":"web","outcome":"click","event_id":"restart-%d"}`, n, n))
		if err != nil {
			t.Fatalf("feedback: %v", err)
		}
		return r
	}
	eventually(t, "decisions before the stop", func() bool { return decided.Load() >= 100 })
	srv.Stop()
	for i, p := range ps {
		eventually(t, fmt.Sprintf("replica %d refusing feedback with Redis down", i), func() bool {
			r := feedback(p, 100+i)
			if r.status == http.StatusOK {
				t.Fatalf("replica %d acknowledged a feedback with Redis stopped", i)
			}
			return r.status == http.StatusServiceUnavailable && bytes.Contains(r.body, []byte(`"state_unavailable"`))
		})
	}
	eventually(t, "stale decisions with Redis down", func() bool { return stale.Load() >= 20 })
	staleDown := stale.Load()
	srv.Restart()
	for i, p := range ps {
		eventually(t, fmt.Sprintf("replica %d acknowledging feedback after the restart", i), func() bool {
			return feedback(p, 200+i).status == http.StatusOK
		})
	}
	eventually(t, "fresh decisions after the restart", func() bool {
		s := stale.Load()
		time.Sleep(300 * time.Millisecond)
		return stale.Load() == s
	})
	close(stop)
	wg.Wait()
	t.Logf("%d decisions, %d stale (%d by the time Redis restarted)", decided.Load(), stale.Load(), staleDown)
	if len(failed) > 0 {
		t.Fatalf("%d decisions failed while Redis restarted, first: %s", len(failed), failed[0])
	}
	for i, p := range ps {
		if n := p.with(t).metric("nba_engine_stale_decisions_total"); n == 0 {
			t.Errorf("replica %d counted no stale decisions", i)
		}
	}
}

// TestServeRefusesMaxCustomersOnRedis: -state.maxCustomers bounds the
// embedded state only; given with -state.redis it would bound nothing, so
// nba serve refuses to start and says what bounds the state on Redis.
func TestServeRefusesMaxCustomersOnRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	p := launch(t, "-state", t.TempDir(), "-state.redis", srv.URL, "-state.maxCustomers", "1000")
	code, exited := p.waitExit(waitDeadline)
	if !exited || code == 0 || !p.logs.contains("maxmemory-policy") {
		t.Fatalf("nba serve -state.redis -state.maxCustomers: exited %v with %d; want a refusal naming maxmemory-policy; log:\n%s", exited, code, p.logs)
	}
}
