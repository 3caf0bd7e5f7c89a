package main

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"nba/state/redis/redistest"
)

// readsProcessed is the server's count of read events (INFO stats
// total_reads_processed): a request or a pipeline arriving together is one,
// so it counts round trips, not commands.
func readsProcessed(t *testing.T, url string) int {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Do(context.Background(), c.B().Info().Section("stats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_reads_processed:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO stats has no total_reads_processed")
	return 0
}

// TestBatchOnRedisReadsPerChunk: nba batch with the state on Redis reads
// its customers a chunk at a time in one pipeline; before, each of the
// demo's 10,000 customers was a round trip of its own (11× slower than the
// embedded state).
func TestBatchOnRedisReadsPerChunk(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	before := readsProcessed(t, rs.URL)
	code, stdout, stderr := runNBA(t, "batch", "-channel", "email", "-workers", "1", "-state.redis", rs.URL, "-state.redis.allowVolatile")
	if code != 0 {
		t.Fatalf("nba batch: exit %d: %s", code, stderr)
	}
	lines := strings.Count(stdout, "\n")
	reads := readsProcessed(t, rs.URL) - before
	t.Logf("%d customers decided, %d reads on the server", lines, reads)
	if lines != 10000 {
		t.Fatalf("%d decisions, want the demo's 10000", lines)
	}
	// 40 chunks of 256, with the connection set-up and health PINGs.
	if reads > lines/20 {
		t.Errorf("%d round trips for %d customers: not read a chunk at a time", reads, lines)
	}
}
