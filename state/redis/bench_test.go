package redisstate_test

import (
	"context"
	"fmt"
	"testing"

	"nba/state"
	"nba/state/embedded"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
	"nba/state/wal"
)

// BenchmarkLoad compares a decision's load of one customer (10 contacts)
// from the embedded store, from Redis through the client-side cache (a
// repeat visitor) and from Redis over loopback (client cache off: every
// load is a miss).
func BenchmarkLoad(b *testing.B) {
	s := redistest.Start(b, redistest.Options{})
	emb, err := embedded.Open(state.Config{WAL: wal.Config{Dir: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	defer emb.Close()
	open := func(url string) *redisstate.Backend {
		r, err := redisstate.Open(context.Background(), redisstate.Config{URL: url, AllowVolatile: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close() })
		return r
	}
	hit, miss := open(s.URL), open(s.URL+"?client_cache=0")
	for i := range 10 {
		for _, be := range []state.Backend{emb, hit} {
			if err := be.RecordContact(impression("c1", fmt.Sprint(i), t0)); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, bc := range []struct {
		name string
		be   state.Backend
	}{{"embedded", emb}, {"redis-cache-hit", hit}, {"redis-loopback", miss}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			var v state.View
			id := []byte("c1")
			for b.Loop() {
				if found, err := bc.be.Load(ctx, id, &v); err != nil || !found {
					b.Fatal(found, err)
				}
			}
		})
	}
}

// BenchmarkWrite measures one acknowledged contact (a feedback's write):
// the embedded store's group-committed log against Redis (in memory here:
// the round trip and the script, not an fsync).
func BenchmarkWrite(b *testing.B) {
	s := redistest.Start(b, redistest.Options{})
	emb, err := embedded.Open(state.Config{WAL: wal.Config{Dir: b.TempDir()}})
	if err != nil {
		b.Fatal(err)
	}
	defer emb.Close()
	r, err := redisstate.Open(context.Background(), redisstate.Config{URL: s.URL, AllowVolatile: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for _, bc := range []struct {
		name string
		be   state.Backend
	}{{"embedded", emb}, {"redis", r}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := bc.be.RecordContact(impression(fmt.Sprint("w", i%1000), "", t0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
