package redistest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"nba/state/redis/redistest"
)

// BenchmarkRead compares a read served by rueidis's client-side cache with
// the same read over loopback, the cost a decision pays on a cache hit and
// on a miss.
func BenchmarkRead(b *testing.B) {
	s := redistest.Start(b, redistest.Options{})
	c := newClient(b, s.URL, nil)
	ctx := context.Background()
	if err := c.Do(ctx, c.B().Set().Key("{c:1}:profile").Value("v").Build()).Error(); err != nil {
		b.Fatal(err)
	}
	b.Run("network", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Do(ctx, c.B().Get().Key("{c:1}:profile").Build()).Error(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache-hit", func(b *testing.B) {
		b.ReportAllocs()
		hits := 0
		for b.Loop() {
			r := c.DoCache(ctx, c.B().Get().Key("{c:1}:profile").Cache(), time.Minute)
			if err := r.Error(); err != nil {
				b.Fatal(err)
			}
			if r.IsCacheHit() {
				hits++
			}
		}
		b.ReportMetric(float64(hits)/float64(b.N), "hits/op")
	})
}

// BenchmarkAcknowledgedWrite measures one acknowledged write (the cost of
// a feedback's round trip) under each persistence setting, and with WAIT
// for one replica; the in-memory server is the baseline.
func BenchmarkAcknowledgedWrite(b *testing.B) {
	for _, bc := range []struct {
		name    string
		opts    redistest.Options
		replica bool
	}{
		{"memory", redistest.Options{}, false},
		{"appendfsync=no", redistest.Options{AppendFsync: "no"}, false},
		{"appendfsync=everysec", redistest.Options{AppendFsync: "everysec"}, false},
		{"appendfsync=always", redistest.Options{AppendFsync: "always"}, false},
		{"memory+WAIT1", redistest.Options{}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := redistest.Start(b, bc.opts)
			if bc.replica {
				redistest.Start(b, redistest.Options{ReplicaOf: s})
			}
			c := newClient(b, s.URL, nil)
			ctx := context.Background()
			err := c.Dedicated(func(d rueidis.DedicatedClient) error {
				i := 0
				for b.Loop() {
					i++
					set := d.B().Hincrby().Key("{c:1}:caps").Field("email:" + strconv.Itoa(i%64)).Increment(1).Build()
					if !bc.replica {
						if err := d.Do(ctx, set).Error(); err != nil {
							return err
						}
						continue
					}
					res := d.DoMulti(ctx, set, d.B().Wait().Numreplicas(1).Timeout(1000).Build())
					if n, err := res[1].AsInt64(); err != nil || n != 1 {
						b.Fatalf("WAIT 1 = %d, %v", n, err)
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkAcknowledgedWriteConcurrent is BenchmarkAcknowledgedWrite with
// 16 writers per CPU sharing one auto-pipelined client: Redis fsyncs once
// per event-loop turn, so with appendfsync always concurrent writers share
// each fsync (group commit) and the cost per write falls.
func BenchmarkAcknowledgedWriteConcurrent(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts redistest.Options
	}{
		{"memory", redistest.Options{}},
		{"appendfsync=everysec", redistest.Options{AppendFsync: "everysec"}},
		{"appendfsync=always", redistest.Options{AppendFsync: "always"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := redistest.Start(b, bc.opts)
			c := newClient(b, s.URL, nil)
			ctx := context.Background()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					cmd := c.B().Hincrby().Key("{c:" + strconv.Itoa(i%1024) + "}:caps").Field("email").Increment(1).Build()
					if err := c.Do(ctx, cmd).Error(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
