package main

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestHistogramPrecision(t *testing.T) {
	for v := uint64(1); v < 1<<40; v = v*17/16 + 1 {
		i := bucketOf(v)
		mid := bucketMid(i)
		if rel := math.Abs(mid-float64(v)) / float64(v); rel > 0.016 {
			t.Fatalf("value %d: bucket %d middle %v, off by %.3f", v, i, mid, rel)
		}
		if i > 0 && bucketOf(v-1) > i {
			t.Fatalf("buckets not monotonic at %d", v)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ { // 1µs .. 1000µs
		h.record(time.Duration(i) * time.Microsecond)
	}
	f := func(q, want float64) {
		t.Helper()
		if got := h.quantile(q); math.Abs(got-want)/want > 0.02 {
			t.Errorf("quantile(%v) = %vµs, want about %vµs", q, got, want)
		}
	}
	f(0.5, 500)
	f(0.99, 990)
	f(0.999, 999)
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
}

// TestRunPrintsSummary runs the whole driver briefly; it checks the output's
// shape, not any speed.
func TestRunPrintsSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and drives them")
	}
	var out bytes.Buffer
	if err := run([]string{"-d", "100ms", "-rounds", "1", "-c", "2", "-customers", "10"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^floor_rps=\d+ nba_rps=\d+ ratio=[\d.]+ floor_p99_us=[\d.]+ nba_p99_us=[\d.]+$`).MatchString(last) {
		t.Errorf("last line %q is not the machine-readable summary", last)
	}
	cpu := regexp.MustCompile(`(?m)^median nba +rps=\d+ .* cpu_us_per_req=([\d.]+)$`).FindStringSubmatch(out.String())
	if cpu == nil || cpu[1] == "0.0" {
		t.Errorf("no CPU time per request in the medians:\n%s", out.String())
	}
	if err := run([]string{"-bundle", "/nonexistent"}, &out); err == nil {
		t.Error("-bundle accepted before the bundle backend is wired")
	}
}

// TestWrkDriver drives a recording server with wrk: every body is the Go
// driver's body for one customer, the first n requests visit n different
// customers, and the run's summary is read back. It needs wrk (apt-get
// install wrk; .ci/run installs it), and fails without it in CI.
func TestWrkDriver(t *testing.T) {
	needWrk(t)
	const n = 50
	want := map[string]int{}
	for i := 0; i < n; i++ {
		want[string(requestBody(fmt.Sprintf("c%04d", i), "web", "p1"))] = i
	}
	var mu sync.Mutex
	var seen []int
	bad := 0
	addr := serveLocal(t, func(ctx *fasthttp.RequestCtx) {
		i, ok := want[string(ctx.PostBody())]
		mu.Lock()
		if ok && string(ctx.Method()) == "POST" && string(ctx.Path()) == "/v1/decide" {
			seen = append(seen, i)
		} else {
			bad++
		}
		mu.Unlock()
		ctx.SetBodyString(`{}`)
	})

	w, err := newWrkDriver(t.TempDir(), 1, n, "c%04d", "web", "p1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.run(addr, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if bad > 0 {
		t.Fatalf("%d requests were not a decide request of one of the %d customers", bad, n)
	}
	if len(seen) < 2*n {
		t.Fatalf("only %d requests in a second", len(seen))
	}
	first := map[int]bool{}
	for _, i := range seen[:n] {
		first[i] = true
	}
	if len(first) != n {
		t.Errorf("the first %d requests visited %d customers, want all", n, len(first))
	}
	if res.requests == 0 || res.rps <= 0 || res.p50 <= 0 || res.p99 < res.p50 {
		t.Errorf("summary not read: %+v", res)
	}
	// wrk counts responses it read before its deadline; the server may have
	// seen a few more it never answered in time.
	if got := uint64(len(seen)); res.requests > got || got > res.requests+10 {
		t.Errorf("wrk reported %d requests, the server saw %d", res.requests, got)
	}
	// The next run starts where this one ended.
	if w.pos < res.requests {
		t.Errorf("position %d after %d requests", w.pos, res.requests)
	}
}

// TestWrkDriverCountsFailures: non-2xx answers are failures, not
// requests served, and a run where they are most fails.
func TestWrkDriverCountsFailures(t *testing.T) {
	needWrk(t)
	addr := serveLocal(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusServiceUnavailable) })
	w, err := newWrkDriver(t.TempDir(), 1, 10, "c%d", "web", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.run(addr, 1, time.Second)
	if err == nil || !strings.Contains(err.Error(), "non-2xx") {
		t.Errorf("a run of 503s gave error %v", err)
	}
	if res.requests != 0 || res.errors == 0 {
		t.Errorf("a run of 503s counted %d requests and %d errors", res.requests, res.errors)
	}
}

// needWrk skips a test that runs wrk in -short mode, and when wrk is not
// installed, except in CI (.ci/run installs it), where it fails.
func needWrk(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs wrk for a second")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wrk is not installed: .ci/run installs it")
		}
		t.Skip("wrk is not installed (apt-get install wrk)")
	}
}

// serveLocal serves h on a loopback port until the test ends and returns
// its address.
func serveLocal(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

func TestWrkFormats(t *testing.T) {
	for _, f := range []string{"c%08d", "cust-%d", "%d"} {
		if !idFormat.MatchString(f) {
			t.Errorf("format %q refused", f)
		}
	}
	for _, f := range []string{"c%s", `c"%d`, "%d-%d", "%x", "plain"} {
		if idFormat.MatchString(f) {
			t.Errorf("format %q accepted", f)
		}
	}
	if got, want := luaString("a\"b\\c\n"), `"a\"b\\c\010"`; got != want {
		t.Errorf("luaString = %s, want %s", got, want)
	}
}

// TestRepeatVisits: the share of visits that come back is the one asked
// for, each within the window, and the sequence is the same every run.
func TestRepeatVisits(t *testing.T) {
	for _, share := range []float64{0, 0.2, 0.5} {
		t.Run(fmt.Sprint(share), func(t *testing.T) {
			const n, window = 20000, 100
			bodies := requestBodies(n, "c%d", "web", "")
			repeatVisits(bodies, share, window)
			again := requestBodies(n, "c%d", "web", "")
			repeatVisits(again, share, window)
			last := map[string]int{}
			repeats := 0
			for i, b := range bodies {
				if !bytes.Equal(b, again[i]) {
					t.Fatalf("visit %d differs between two runs", i)
				}
				if j, ok := last[string(b)]; ok {
					repeats++
					if i-j > window {
						t.Fatalf("visit %d repeats visit %d, beyond the window of %d", i, j, window)
					}
				}
				last[string(b)] = i
			}
			if got := float64(repeats) / n; math.Abs(got-share) > 0.02 {
				t.Errorf("repeat share %.3f, want %.2f", got, share)
			}
		})
	}
}
