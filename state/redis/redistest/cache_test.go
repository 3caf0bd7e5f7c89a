package redistest_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"nba/state/redis/redistest"
)

// TestDoMultiCacheCustomer loads a customer kept in several keys under one
// hash tag with one DoMultiCache (one pipeline, one round trip on a miss),
// standalone and on a Cluster: all miss, then all hit; a write to one key
// invalidates that key's entry alone. A read-only function over one key
// (FCALL_RO) is cacheable too and invalidated by a write to its key.
func TestDoMultiCacheCustomer(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"standalone", func(t *testing.T) string { return redistest.Start(t, redistest.Options{}).URL }},
		{"cluster", func(t *testing.T) string { return redistest.StartCluster(t, redistest.Options{}).URL }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			writer := newClient(t, url, nil)
			reader := newClient(t, url, nil)
			ctx := ctxT(t)
			const tag = "{c:42}"
			lib := `#!lua name=nbatestro
redis.register_function{function_name='caps_total', flags={'no-writes'}, callback=function(keys)
  local t = 0
  for _, v in ipairs(redis.call('HVALS', keys[1])) do t = t + tonumber(v) end
  return t
end}`
			for addr, n := range writer.Nodes() {
				if err := n.Do(ctx, n.B().FunctionLoad().Replace().FunctionCode(lib).Build()).Error(); err != nil {
					t.Fatalf("FUNCTION LOAD on %s: %s", addr, err)
				}
			}
			for _, cmd := range []rueidis.Completed{
				writer.B().Hset().Key(tag+":caps").FieldValue().FieldValue("email", "1").FieldValue("web", "2").Build(),
				writer.B().Rpush().Key(tag+":history").Element("a", "b").Build(),
				writer.B().Set().Key(tag + ":profile").Value("p1").Build(),
			} {
				if err := writer.Do(ctx, cmd).Error(); err != nil {
					t.Fatal(err)
				}
			}
			load := func() []rueidis.RedisResult {
				return reader.DoMultiCache(ctx,
					rueidis.CT(reader.B().Hgetall().Key(tag+":caps").Cache(), time.Minute),
					rueidis.CT(reader.B().Lrange().Key(tag+":history").Start(0).Stop(-1).Cache(), time.Minute),
					rueidis.CT(reader.B().Get().Key(tag+":profile").Cache(), time.Minute),
					rueidis.CT(reader.B().FcallRo().Function("caps_total").Numkeys(1).Key(tag+":caps").Cache(), time.Minute),
				)
			}
			hits := func(rs []rueidis.RedisResult) []bool {
				t.Helper()
				var h []bool
				for i, r := range rs {
					if err := r.Error(); err != nil {
						t.Fatalf("result %d: %s", i, err)
					}
					h = append(h, r.IsCacheHit())
				}
				return h
			}
			if h := hits(load()); !slices.Equal(h, []bool{false, false, false, false}) {
				t.Errorf("first load: cache hits %v; want none", h)
			}
			rs := load()
			if h := hits(rs); !slices.Equal(h, []bool{true, true, true, true}) {
				t.Errorf("second load: cache hits %v; want all", h)
			}
			if n, _ := rs[3].AsInt64(); n != 3 {
				t.Errorf("FCALL_RO caps_total = %d; want 3", n)
			}
			if err := writer.Do(ctx, writer.B().Hincrby().Key(tag+":caps").Field("email").Increment(1).Build()).Error(); err != nil {
				t.Fatal(err)
			}
			// Invalidation is asynchronous: wait for the caps entries to go.
			deadline := time.Now().Add(5 * time.Second)
			for {
				rs = load()
				h := hits(rs)
				if !h[0] && !h[3] {
					if !h[1] || !h[2] {
						t.Errorf("after a write to caps only: cache hits %v; want history and profile still cached", h)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("caps still cached 5s after a write: hits %v", h)
				}
				time.Sleep(time.Millisecond)
			}
			if n, _ := rs[3].AsInt64(); n != 4 {
				t.Errorf("FCALL_RO caps_total after the write = %d; want 4", n)
			}
		})
	}
}

// TestBroadcastTracking shows the BCAST mode's trade: the server keeps no
// per-key table of readers, but every client subscribed to a prefix is told
// of every write under it, read or not.
func TestBroadcastTracking(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	writer := newClient(t, s.URL, nil)
	ctx := ctxT(t)
	// Written before the reader subscribes, so that its invalidation is
	// not among those counted below.
	if err := writer.Do(ctx, writer.B().Set().Key("{c:1}:profile").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 64)
	reader := newClient(t, s.URL, func(o *rueidis.ClientOption) {
		o.ClientTrackingOptions = []string{"PREFIX", "{c:", "BCAST"}
		o.OnInvalidations = func(keys []rueidis.RedisMessage) {
			for _, k := range keys {
				s, _ := k.ToString()
				got <- s
			}
		}
	})
	reader.DoCache(ctx, reader.B().Get().Key("{c:1}:profile").Cache(), time.Minute)
	if r := reader.DoCache(ctx, reader.B().Get().Key("{c:1}:profile").Cache(), time.Minute); !r.IsCacheHit() {
		t.Fatal("not cached in BCAST mode")
	}
	// A customer the reader never read, then one outside the prefix.
	for _, k := range []string{"{c:2}:profile", "other", "{c:1}:profile"} {
		if err := writer.Do(ctx, writer.B().Set().Key(k).Value("w").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	// Every connection of the reader (PipelineMultiplex makes several)
	// is told: count per key until the read key's invalidation came.
	count := map[string]int{}
	for count["{c:1}:profile"] == 0 {
		select {
		case k := <-got:
			count[k]++
		case <-time.After(5 * time.Second):
			t.Fatalf("invalidations received: %v; want {c:2}:profile and {c:1}:profile", count)
		}
	}
	if count["{c:2}:profile"] == 0 || count["other"] != 0 {
		t.Errorf("invalidations = %v; want every write under the prefix, read or not, and none outside", count)
	}
	t.Logf("BCAST invalidations per key over the reader's connections: %v", count)
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := reader.DoCache(ctx, reader.B().Get().Key("{c:1}:profile").Cache(), time.Minute).ToString()
		if err == nil && v == "w" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read after invalidation = %q, %v; want w", v, err)
		}
		time.Sleep(time.Millisecond)
	}
	m, err := writer.Do(ctx, writer.B().ConfigGet().Parameter("tracking-table-max-keys").Build()).AsStrMap()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tracking-table-max-keys = %s (OPTIN mode: past it Redis evicts tracked keys and sends their invalidations)", strings.TrimSpace(m["tracking-table-max-keys"]))
}
