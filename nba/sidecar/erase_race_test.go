package sidecar

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/state"
	"nba/state/redis/redistest"
)

// TestEraseRacingWritesLeavesNothing is the regression test of an
// erasure racing with writes: events of the customer through two
// replicas, an erasure through one of them meanwhile. Writes that passed
// the tombstone check just before the erasure were applied after it and
// brought the customer back (its fields, a journey) on both backends.
// Every write must answer 200 or 410 erased, and once the erasure has
// answered and the writes have finished nothing of the customer remains.
func TestEraseRacingWritesLeavesNothing(t *testing.T) {
	for _, backend := range []string{"embedded", "redis"} {
		t.Run(backend, func(t *testing.T) {
			cfg := Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), ErasureKey: []byte("erasure-key")}
			replicas := 1
			if backend == "redis" {
				cfg.StateRedis = redistest.Start(t, redistest.Options{AppendFsync: "always"}).URL
				replicas = 2
			}
			var ss []*Sidecar
			for range replicas {
				s, err := Open(cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				ss = append(ss, s)
				cfg.StateDir = t.TempDir()
			}
			const c, writers, each = "c07700", 8, 40
			now := time.Now().UTC()
			if err := ss[0].Event(&server.Event{CustomerID: c, Type: "ticket_opened", TS: now}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			erase := make(chan struct{})
			var mu sync.Mutex
			var failed []error
			for w := range writers {
				wg.Go(func() {
					s := ss[w%len(ss)]
					for k := range each {
						if w == 0 && k == each/4 {
							close(erase)
						}
						err := s.Event(&server.Event{CustomerID: c, Type: "cart_abandoned", TS: now,
							Attrs: []server.Field{{Key: "value", Num: float64(k), Kind: server.KindNumber}}, EventID: fmt.Sprintf("e-%d-%d", w, k)})
						var se *server.Error
						if err != nil && !(errors.As(err, &se) && (se.Code == server.CodeErased || se.Code == server.CodeConflict)) {
							mu.Lock()
							failed = append(failed, err)
							mu.Unlock()
						}
					}
				})
			}
			<-erase
			if _, err := ss[len(ss)-1].EraseCustomer(c); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			for _, err := range failed {
				t.Errorf("event: %v, want 200 or 410 erased", err)
			}
			for i, s := range ss {
				// The client-side cache of a Redis replica may answer the
				// value before the erasure until its invalidation arrives.
				for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
					var v state.View
					if !s.state.View([]byte(c), &v) {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("replica %d: the erased customer has state again", i)
						break
					}
				}
			}
			if p, ok := ss[0].state.(state.Porter); ok {
				err := p.Each(func(d *state.CustomerDump) error {
					if d.ID == c {
						t.Errorf("the erased customer is exported: %+v", d)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
