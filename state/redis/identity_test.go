package redisstate_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"nba/state"
	"nba/state/identitytest"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
	"nba/state/statetest"
)

// TestIdentity runs the identity behaviour table against a standalone
// server and a 3-master Cluster, where the two profiles of a merge and
// their identifier keys sit on different shards.
func TestIdentity(t *testing.T) {
	run := func(url string) identitytest.NewBackend {
		return func(t *testing.T, cfg state.Config) state.IdentityBackend {
			flush(t, url)
			return open(t, redisstate.Config{URL: url, State: cfg, AllowVolatile: true})
		}
	}
	t.Run("standalone", func(t *testing.T) {
		s := redistest.Start(t, redistest.Options{})
		identitytest.Run(t, run(s.URL))
	})
	t.Run("cluster", func(t *testing.T) {
		cl := redistest.StartCluster(t, redistest.Options{})
		identitytest.Run(t, run(cl.URL))
	})
}

// TestIdentityReplicas: links, events and feedback for one person from 16
// goroutines spread over 3 processes sharing a Cluster lose no update: the
// merges' steps race across processes and are finished by whoever meets
// them.
func TestIdentityReplicas(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.Options{})
	flush(t, cl.URL)
	var cfg state.Config
	if err := yaml.Unmarshal([]byte(statetest.Mappings), &cfg.Mappings); err != nil {
		t.Fatal(err)
	}
	var ic state.IdentityConfig
	if err := yaml.Unmarshal([]byte(identitytest.Config), &ic); err != nil {
		t.Fatal(err)
	}
	var xs [3]*state.Identities
	for i := range xs {
		xs[i] = state.NewIdentities(open(t, redisstate.Config{URL: cl.URL, State: cfg, AllowVolatile: true}), identitytest.Key)
		if err := xs[i].Configure(&ic); err != nil {
			t.Fatal(err)
		}
		xs[i].SetClock(func() time.Time { return t0.Add(2 * time.Hour) }) // within the cookies' ttl of the writes
	}
	ctx := context.Background()
	const workers, per = 16, 12
	var wg sync.WaitGroup
	var events, contacts atomic.Int64
	for w := range workers {
		x := xs[w%3]
		s := x.Stitched()
		wg.Go(func() {
			for i := range per {
				at := t0.Add(time.Duration(w*per+i) * time.Second)
				cookie := map[string]string{"cookie": fmt.Sprintf("c-%d", (w+i)%5)}
				var err error
				switch i % 3 {
				case 0:
					_, err = x.Identify(ctx, map[string]string{"cookie": cookie["cookie"], "crm_id": "p1"}, at, "")
				case 1:
					var l state.Link
					if l, err = x.Identify(ctx, cookie, at, ""); err == nil {
						if err = s.ApplyEvent(state.Event{Customer: l.Customer, Type: "purchase", At: at, ID: fmt.Sprintf("e-%d-%d", w, i)}); err == nil {
							events.Add(1)
						}
					}
				case 2:
					if err = s.RecordContact(state.Contact{Customer: "p1", Action: "a", Outcome: state.Impression, At: at}); err == nil {
						contacts.Add(1)
					}
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	x := xs[0]
	for c := range 5 {
		if _, err := x.Identify(ctx, map[string]string{"cookie": fmt.Sprintf("c-%d", c), "crm_id": "p1"}, t0.Add(time.Hour), ""); err != nil {
			t.Fatal(err)
		}
	}
	s := x.Stitched()
	sl, _, _ := s.Slot("orders_30d")
	var v state.View
	if _, err := s.Load(ctx, []byte("p1"), &v); err != nil {
		t.Fatal(err)
	}
	if n, _ := v.Number(sl); int64(n) != events.Load() {
		t.Errorf("orders %v, want %d: events lost to merges", n, events.Load())
	}
	if n := v.Count(state.KindAction, "a", state.Impression, 24*time.Hour, t0.Add(time.Hour)); int64(n) != contacts.Load() {
		t.Errorf("contacts %d, want %d", n, contacts.Load())
	}
	for c := range 5 {
		if got, err := x.Resolve(ctx, map[string]string{"cookie": fmt.Sprintf("c-%d", c)}); err != nil || got != "p1" {
			t.Errorf("cookie c-%d resolves to %q %v", c, got, err)
		}
	}
}

// BenchmarkMerge measures, on a standalone Redis (no fsync), a link that
// merges two profiles of 100 contacts and 2 journeys each, beside one
// contact written (one compare-and-set).
func BenchmarkMerge(b *testing.B) {
	s := redistest.Start(b, redistest.Options{})
	r, err := redisstate.Open(context.Background(), redisstate.Config{URL: s.URL, AllowVolatile: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	identitytest.BenchMerge(b, r)
}
