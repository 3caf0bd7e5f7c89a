// Command load measures the sidecar's HTTP throughput and latency against a
// floor: a bare fasthttp server answering a fixed decision-sized JSON body,
// which is the best any HTTP/1.1 JSON service can do on this machine.
//
// Both servers run in this process on loopback listeners; a pool of -c
// goroutines, each with its own keep-alive connection, drives one of them at
// a time in a closed loop (send, wait for the answer, send again) for -d,
// alternating floor and sidecar for -rounds rounds (ABBA order, so drift in
// the machine's load affects both alike). It prints requests/s and
// p50/p99/p99.9 per round and the medians over rounds; the last line is
// machine-readable:
//
//	floor_rps=<n> nba_rps=<n> ratio=<nba/floor> floor_p99_us=<n> nba_p99_us=<n>
//
// Load is bounded in time (-d per round) and, with the Go driver, count
// (-max.requests per round), and only ever sent to 127.0.0.1.
//
// Usage:
//
//	go run ./bench/load [-bundle DIR] [-c 32] [-d 10s] [-rounds 3]
//	    [-channel web] [-customer.format c%08d] [-placement P] [-customers 10000] [-max.requests N]
//	    [-order shuffled|sequential] [-decisionlog inputs|decisions|off] [-scorecache=false]
//	    [-ab scorecache] [-repeat 0.2] [-repeat.window 1000]
//	    [-driver go|wrk] [-wrk.threads 1]
//	    [-state.redis URL] [-feedback N]
//
// With -state.redis (-ab redis) the two servers are sidecars on the same
// bundle: A keeps the customer state embedded, B on that Redis server
// (the visited customers' contacts fed to it as feedback first); each
// round also prints the Redis commands per request (INFO commandstats).
// -feedback N then sends N feedbacks one at a time to each and prints
// their p50/p99 and the Redis commands per feedback.
//
// With -driver wrk the load comes from the wrk command in its own process
// (wrk.go), as a caller's would; with the default, from goroutines of this
// one.
//
// The customer ids are -customer.format applied to 0 .. -customers-1; by
// default the format the bundle was generated with (its customer.format
// file, written by bench/bundlegen and bench/gen -bundle). Before measuring,
// a sample of the ids is looked up in the bundle's snapshot, and the run is
// refused if any is unknown: the sidecar would decide them as anonymous
// customers, a much cheaper decision than the one meant to be measured.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/bits"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"nba/bench/bundlegen"
	"nba/nba/declog"
	"nba/nba/metrics"
	"nba/nba/server"
	"nba/nba/server/servertest"
	"nba/nba/sidecar"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(1)
	}
}

// newSidecarBackend returns the backend the sidecar serves the benchmark
// from, and a function releasing it. It is the one place the bundle-backed
// backend gets plugged in; until then it returns the in-memory fake, which
// makes this a benchmark of the HTTP layer alone.
//
// With redisURL, the customer state is on that Redis server, and the
// contacts of the customers keep accepts are fed to it (feedContacts).
func newSidecarBackend(bundleDir string, log logMode, codec declog.Codec, scoreCache bool, redisURL string, keep func(string) bool) (server.Backend, func(), error) {
	if bundleDir == "" {
		return &servertest.Backend{}, func() {}, nil
	}
	stateDir, err := os.MkdirTemp("", "nba-load-state-")
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sc, err := sidecar.Open(sidecar.Config{Bundle: os.DirFS(bundleDir), BundleName: bundleDir, StateDir: stateDir,
		DecisionLog: log != logOff, DecisionLogNoInputs: log == logDecisions, DecisionLogCodec: codec, ScoreCacheBytes: cacheBytes(scoreCache), Logger: logger,
		StateRedis: redisURL, StateRedisAllowVolatile: true})
	if err != nil {
		os.RemoveAll(stateDir)
		return nil, nil, err
	}
	if redisURL != "" {
		start := time.Now()
		n, err := feedContacts(sc, bundleDir, keep)
		if err != nil {
			sc.Close()
			os.RemoveAll(stateDir)
			return nil, nil, err
		}
		fmt.Fprintf(os.Stderr, "fed %d contacts to Redis in %v\n", n, time.Since(start).Round(time.Millisecond))
		return sc, func() { sc.Close(); os.RemoveAll(stateDir) }, nil
	}
	// Contact history of the generated bundle, when it has one, so caps
	// and suppressions have counts to read.
	if f, err := os.Open(filepath.Join(bundleDir, "contacts.csv")); err == nil {
		n, err := sc.ImportContacts(f)
		f.Close()
		if err != nil {
			sc.Close()
			os.RemoveAll(stateDir)
			return nil, nil, err
		}
		fmt.Fprintf(os.Stderr, "imported %d contacts\n", n)
	}
	return sc, func() { sc.Close(); os.RemoveAll(stateDir) }, nil
}

// logMode is how much the sidecar under test writes to its decision log.
type logMode int

const (
	logInputs logMode = iota
	logDecisions
	logOff
)

// cacheBytes is the sidecar's score cache budget: 64 MiB, or disabled.
func cacheBytes(on bool) int64 {
	if on {
		return 64 << 20
	}
	return 0
}

func parseLogMode(s string) (logMode, error) {
	switch s {
	case "inputs":
		return logInputs, nil
	case "decisions":
		return logDecisions, nil
	case "off":
		return logOff, nil
	}
	return 0, fmt.Errorf("-decisionlog %q: want inputs, decisions or off", s)
}

type options struct {
	bundle       string
	conns        int
	duration     time.Duration
	rounds       int
	maxRequests  int
	customers    int
	channel      string
	prefix       string
	placement    string
	log          string
	scoreCache   bool
	ab           string
	repeat       float64
	repeatWindow int
	order        string
	codec        string
	driver       string
	wrkThreads   int
	stateRedis   string
	feedbacks    int
}

func run(args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&o.bundle, "bundle", "", "bundle `dir`ectory for the sidecar's backend (empty: the in-memory fake)")
	fs.IntVar(&o.conns, "c", 32, "concurrent connections, one closed-loop client each")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "duration of each measured run, per server per round")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs the floor and the sidecar once, alternating which goes first")
	fs.IntVar(&o.maxRequests, "max.requests", 50_000_000, "upper bound on requests per run (the Go driver; wrk is bounded by -d alone)")
	fs.IntVar(&o.customers, "customers", 10_000, "distinct customer ids the requests cycle through")
	fs.StringVar(&o.channel, "channel", "web", "channel of every decide request")
	fs.StringVar(&o.prefix, "customer.format", "", "customer ids: this format applied to a number from 0 to -customers-1; empty: the bundle's customer.format file (c%08d for bench/gen bundles), else "+fakeFormat)
	fs.StringVar(&o.placement, "placement", "", "placement of every decide request (empty: any)")
	fs.StringVar(&o.order, "order", "shuffled", "order the requests visit the customers in: shuffled (a fixed random permutation, like real traffic) or sequential (customer 0, 1, 2, ...: neighbouring rows, kind to the caches)")
	fs.BoolVar(&o.scoreCache, "scorecache", false, "give the sidecar a score cache of 64 MiB (off by default, as in nba serve)")
	fs.StringVar(&o.ab, "ab", "", "compare two sidecars instead of the floor and the sidecar: scorecache (A without the score cache, B with it; needs -bundle), redis (A with the embedded state, B with -state.redis; the default with -state.redis)")
	fs.StringVar(&o.stateRedis, "state.redis", "", "Redis `URL` for the customer state of sidecar B (-ab redis); its contact history is fed to it as feedback; prints Redis commands per decision")
	fs.IntVar(&o.feedbacks, "feedback", 0, "after the rounds, send this many feedbacks one at a time to each sidecar and print their p50/p99 (and Redis commands per feedback)")
	fs.Float64Var(&o.repeat, "repeat", 0, "share of requests for a customer seen in the last -repeat.window requests (a visitor coming back within a session); the rest go to customers not seen yet")
	fs.IntVar(&o.repeatWindow, "repeat.window", 1000, "requests back a repeat visit may reach, with -repeat")
	fs.StringVar(&o.codec, "decisionlog.codec", "zstd", "compression of the sidecar's decision log: zstd or snappy")
	fs.StringVar(&o.log, "decisionlog", "inputs", "decision log of the sidecar: inputs (every decision with its inputs, the default), decisions (without inputs) or off")
	fs.StringVar(&o.driver, "driver", "go", "what sends the load: go (goroutines of this process, fasthttp's client) or wrk (the wrk command in its own process; apt-get install wrk)")
	fs.IntVar(&o.wrkThreads, "wrk.threads", 1, "wrk's threads, with -driver wrk")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (both servers and the load) to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile to this file, and one before the measured rounds to this file.base")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := resolveFormat(&o); err != nil {
		return err
	}
	switch {
	case o.conns < 1 || o.conns > 1024:
		return fmt.Errorf("-c is %d, want 1 to 1024", o.conns)
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return fmt.Errorf("-d is %v, want up to 10m", o.duration)
	case o.rounds < 1 || o.rounds > 20:
		return fmt.Errorf("-rounds is %d, want 1 to 20", o.rounds)
	case o.maxRequests < o.conns:
		return fmt.Errorf("-max.requests is %d, want at least -c", o.maxRequests)
	case o.customers < 1:
		return fmt.Errorf("-customers is %d, want at least 1", o.customers)
	case o.order != "shuffled" && o.order != "sequential":
		return fmt.Errorf("-order is %q, want shuffled or sequential", o.order)
	case o.driver != "go" && o.driver != "wrk":
		return fmt.Errorf("-driver is %q, want go or wrk", o.driver)
	case o.wrkThreads < 1 || o.wrkThreads > 64:
		return fmt.Errorf("-wrk.threads is %d, want 1 to 64", o.wrkThreads)
	case o.ab == "" && o.stateRedis != "":
		o.ab = "redis"
	}
	switch {
	case o.ab != "" && (o.ab != "scorecache" && o.ab != "redis" || o.bundle == ""):
		return fmt.Errorf("-ab is %q, want scorecache or redis (with -bundle)", o.ab)
	case (o.ab == "redis") != (o.stateRedis != ""):
		return errors.New("-ab redis and -state.redis go together")
	case o.feedbacks < 0 || o.feedbacks > 1_000_000:
		return fmt.Errorf("-feedback is %d, want 0 to 1000000", o.feedbacks)
	case o.repeat < 0 || o.repeat >= 1 || o.repeatWindow < 1:
		return fmt.Errorf("-repeat is %v, want [0, 1), and -repeat.window at least 1", o.repeat)
	case o.repeat > 0 && o.driver != "go":
		return errors.New("-repeat needs -driver go")
	}
	if o.ab == "scorecache" {
		o.scoreCache = true // B; A is built without it below
	}
	var wrk *wrkDriver
	if o.driver == "wrk" {
		dir, err := os.MkdirTemp("", "nba-load-wrk-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if wrk, err = newWrkDriver(dir, o.wrkThreads, o.customers, o.prefix, o.channel, o.placement); err != nil {
			return err
		}
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	mode, err := parseLogMode(o.log)
	if err != nil {
		return err
	}
	codec, err := declog.ParseCodec(o.codec)
	if err != nil {
		return err
	}
	visited := map[string]bool{}
	for i := range o.customers {
		visited[fmt.Sprintf(o.prefix, i)] = true
	}
	keep := func(id string) bool { return visited[id] }
	backend, release, err := newSidecarBackend(o.bundle, mode, codec, o.scoreCache, o.stateRedis, keep)
	if err != nil {
		return err
	}
	defer release()
	if sc, ok := backend.(*sidecar.Sidecar); ok {
		if err := checkCustomers(sc.InSnapshot, o.prefix, o.customers); err != nil {
			return err
		}
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Metrics as `nba serve` registers them: their cost is part of serving.
	set := metrics.NewSet()
	if sc, ok := backend.(*sidecar.Sidecar); ok {
		if err := sc.RegisterMetrics(set); err != nil {
			return err
		}
	}
	srv, err := server.New(server.Config{Logger: logger, MaxConnsPerIP: 2048, Metrics: set}, backend)
	if err != nil {
		return err
	}
	bodies := requestBodies(o.customers, o.prefix, o.channel, o.placement)
	if o.order == "shuffled" {
		shuffle(bodies)
	}
	if o.repeat > 0 {
		repeatVisits(bodies, o.repeat, o.repeatWindow)
	}
	// One cursor over the bodies for the whole run: every request of the
	// sidecar's rounds goes to the next customer, so a customer comes back
	// only after all the others have been seen.
	var cursor atomic.Uint64
	driveOne := func(addr string, d time.Duration) (result, error) {
		if wrk != nil {
			return wrk.run(addr, o.conns, d)
		}
		return drive(addr, bodies, &cursor, o.conns, d, o.maxRequests)
	}

	// The floor answers with a body of the sidecar's own size for the same
	// request, so both put the same bytes on the wire.
	fixed, err := sampleDecision(srv, bodies[0])
	if err != nil {
		return err
	}
	floor := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(fixed)
		},
		Name:                  "floor",
		ReadTimeout:           5 * time.Second,
		WriteTimeout:          5 * time.Second,
		IdleTimeout:           60 * time.Second,
		MaxRequestBodySize:    64 << 10,
		NoDefaultServerHeader: true,
	}

	floorLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	floorName := "floor"
	var backendA server.Backend
	if o.ab != "" {
		// A: the same sidecar without the score cache, or with the
		// embedded state, in the floor's place.
		var releaseA func()
		backendA, releaseA, err = newSidecarBackend(o.bundle, mode, codec, o.scoreCache && o.ab != "scorecache", "", keep)
		if err != nil {
			return err
		}
		defer releaseA()
		setA := metrics.NewSet()
		if err := backendA.(*sidecar.Sidecar).RegisterMetrics(setA); err != nil {
			return err
		}
		srvA, err := server.New(server.Config{Logger: logger, MaxConnsPerIP: 2048, Metrics: setA}, backendA)
		if err != nil {
			return err
		}
		floor.Handler, floorName = srvA.Handler(), "A"
	}
	nbaLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go floor.Serve(floorLn)
	go srv.Serve(nbaLn)
	defer floor.Shutdown()
	defer srv.Shutdown(context.Background())

	targets := []*target{
		{name: floorName, addr: floorLn.Addr().String()},
		{name: "nba", addr: nbaLn.Addr().String()},
	}
	fmt.Fprintf(out, "load: %s driver, %d connections, %v per run, %d rounds, response %d bytes, %d customers\n",
		o.driver, o.conns, o.duration, o.rounds, len(fixed), o.customers)
	// Warm up both: connections, pools, CPU frequency.
	warm := min(o.duration/5, 2*time.Second)
	for _, t := range targets {
		if _, err := driveOne(t.addr, warm); err != nil {
			return fmt.Errorf("warm-up of %s: %w", t.name, err)
		}
	}
	if *memProfile != "" {
		// The rounds' allocations are the difference from this base:
		// go tool pprof -diff_base FILE.base loadbench FILE
		runtime.GC()
		if f, err := os.Create(*memProfile + ".base"); err == nil {
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
		defer func() {
			runtime.GC() // the profile shows allocations as of the last GC
			if f, err := os.Create(*memProfile); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	var redis *redisCounter
	if o.stateRedis != "" {
		if redis, err = newRedisCounter(o.stateRedis); err != nil {
			return err
		}
		defer redis.close()
	}
	for r := 0; r < o.rounds; r++ {
		order := []*target{targets[0], targets[1]}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, t := range order {
			cpu0 := processCPU()
			var cmds0 map[string]int64
			if redis != nil {
				if cmds0, err = redis.commandsBy(); err != nil {
					return err
				}
			}
			res, err := driveOne(t.addr, o.duration)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, t.name, err)
			}
			var cmdsBy string
			if redis != nil && res.requests > 0 {
				cmds1, err := redis.commandsBy()
				if err != nil {
					return err
				}
				res.redisCmds, cmdsBy = perOp(cmds0, cmds1, int(res.requests))
			}
			if res.requests > 0 {
				res.cpu = float64((processCPU() - cpu0).Microseconds()) / float64(res.requests)
			}
			t.results = append(t.results, res)
			fmt.Fprintf(out, "round %d %-5s rps=%.0f p50_us=%.1f p99_us=%.1f p99.9_us=%.1f cpu_us_per_req=%.1f requests=%d errors=%d",
				r+1, t.name, res.rps, res.p50, res.p99, res.p999, res.cpu, res.requests, res.errors)
			if redis != nil {
				fmt.Fprintf(out, " redis_cmds_per_req=%.4f (%s)", res.redisCmds, cmdsBy)
			}
			fmt.Fprintln(out)
		}
	}
	if o.feedbacks > 0 {
		if err := measureFeedback(out, o, targets, backend, redis); err != nil {
			return err
		}
	}
	printCacheMetrics(out, targets[1].addr)
	f, n := targets[0].median(), targets[1].median()
	fmt.Fprintf(out, "median %-5s rps=%.0f p50_us=%.1f p99_us=%.1f p99.9_us=%.1f cpu_us_per_req=%.1f\n", targets[0].name, f.rps, f.p50, f.p99, f.p999, f.cpu)
	fmt.Fprintf(out, "median nba   rps=%.0f p50_us=%.1f p99_us=%.1f p99.9_us=%.1f cpu_us_per_req=%.1f\n", n.rps, n.p50, n.p99, n.p999, n.cpu)
	fmt.Fprintf(out, "floor_rps=%.0f nba_rps=%.0f ratio=%.3f floor_p99_us=%.1f nba_p99_us=%.1f\n",
		f.rps, n.rps, n.rps/f.rps, f.p99, n.p99)
	return nil
}

// fakeFormat is the customer id format against the in-memory fake backend,
// which knows every id.
const fakeFormat = "cust-%d"

// resolveFormat fills in o.prefix when -customer.format was not given: the
// bundle's customer.format file, else fakeFormat.
func resolveFormat(o *options) error {
	if o.prefix != "" {
		return nil
	}
	o.prefix = fakeFormat
	if o.bundle == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(o.bundle, bundlegen.IDFormatFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // checkCustomers says whether the default fits
	}
	if err != nil {
		return err
	}
	o.prefix = strings.TrimSpace(string(data))
	if !strings.Contains(o.prefix, "%") {
		return fmt.Errorf("%s: %q is not a format of customer ids", filepath.Join(o.bundle, bundlegen.IDFormatFile), o.prefix)
	}
	return nil
}

// idSamples is how many of the ids checkCustomers looks up.
const idSamples = 64

// checkCustomers looks up a sample of the ids the load will use (the first,
// the last and evenly spread between) and refuses the run if any is not a
// known customer.
func checkCustomers(known func(string) bool, format string, n int) error {
	k := min(n, idSamples)
	var unknown []string
	for j := 0; j < k; j++ {
		i := 0
		if k > 1 {
			i = j * (n - 1) / (k - 1)
		}
		if id := fmt.Sprintf(format, i); !known(id) {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d sampled customer ids are not in the bundle's snapshot (first %q; -customer.format %q, -customers %d): they would be decided as anonymous customers; set -customer.format to the snapshot's ids and -customers to at most its size",
		len(unknown), k, unknown[0], format, n)
}

// requestBodies returns decide requests for n customers, built once so the
// driver does not allocate per request.
func requestBodies(n int, format, channel, placement string) [][]byte {
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = requestBody(fmt.Sprintf(format, i), channel, placement)
	}
	return bodies
}

// requestBody returns the decide request of every run for one customer.
func requestBody(customer, channel, placement string) []byte {
	id, _ := json.Marshal(customer)
	ch, _ := json.Marshal(channel)
	pl, _ := json.Marshal(placement)
	return []byte(`{"customer_id":` + string(id) + `,"channel":` + string(ch) + `,"placement":` + string(pl) + `,"limit":3,` +
		`"context":{"page":"loans","basket":42.5}}`)
}

func sampleDecision(srv *server.Server, body []byte) ([]byte, error) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fasthttp.MethodPost)
	ctx.Request.SetRequestURI("/v1/decide")
	ctx.Request.SetBody(body)
	srv.Handler()(&ctx)
	if ctx.Response.StatusCode() != fasthttp.StatusOK {
		return nil, fmt.Errorf("cannot take a sample decision: status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	return append([]byte(nil), ctx.Response.Body()...), nil
}

type target struct {
	name    string
	addr    string
	results []result
}

// median returns, field by field, the median over rounds.
func (t *target) median() result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(t.results))
		for i, r := range t.results {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return result{
		rps:  pick(func(r result) float64 { return r.rps }),
		p50:  pick(func(r result) float64 { return r.p50 }),
		p99:  pick(func(r result) float64 { return r.p99 }),
		p999: pick(func(r result) float64 { return r.p999 }),
		cpu:  pick(func(r result) float64 { return r.cpu }),
	}
}

type result struct {
	rps, p50, p99, p999 float64 // latencies in µs
	// cpu is this process's CPU time (user and system) per request served,
	// in µs: both servers' and their background work, and with the Go
	// driver the client's too; wrk's own CPU is not in it. Steadier than
	// rps on a shared machine, and with -driver wrk it is what serving a
	// request costs the server.
	cpu              float64
	requests, errors uint64
	redisCmds        float64 // Redis commands per request (-state.redis), from INFO commandstats
}

// processCPU returns the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// printCacheMetrics prints the sidecar's score cache counters from its
// /metrics page, when it has them: in this benchmark (every request a
// different customer until all have been seen) the cache mostly costs.
func printCacheMetrics(out io.Writer, addr string) {
	status, body, err := fasthttp.Get(nil, "http://"+addr+"/metrics")
	if err != nil || status != fasthttp.StatusOK {
		return
	}
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "nba_scorecache_") {
			fmt.Fprint(out, line)
		}
	}
}

// repeatVisits makes a share of the visits come back: each position, with
// probability share, takes the body of one of the window positions before
// it (a fixed seed, so every run sends the same sequence).
func repeatVisits(bodies [][]byte, share float64, window int) {
	x := uint64(0x726570)
	next := func() uint64 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
	for i := 1; i < len(bodies); i++ {
		if float64(next()>>11)/(1<<53) < share {
			back, _ := bits.Mul64(next(), uint64(min(i, window)))
			bodies[i] = bodies[i-1-int(back)]
		}
	}
}

// shuffle permutes bodies with a fixed seed (Fisher–Yates over splitmix64),
// so that every run visits the customers in the same random order.
func shuffle(bodies [][]byte) {
	x := uint64(0x6e6261)
	for i := len(bodies) - 1; i > 0; i-- {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		hi, _ := bits.Mul64(z, uint64(i+1))
		bodies[i], bodies[hi] = bodies[hi], bodies[i]
	}
}

// drive runs conns closed-loop clients against addr for d (or until
// maxRequests in total) and returns throughput and latency percentiles.
// Each request sends the body at the cursor's next position.
func drive(addr string, bodies [][]byte, cursor *atomic.Uint64, conns int, d time.Duration, maxRequests int) (result, error) {
	hc := &fasthttp.HostClient{
		Addr:         addr,
		MaxConns:     conns,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
	}
	defer hc.CloseIdleConnections()
	hists := make([]histogram, conns)
	var errs atomic.Uint64
	var firstErr atomic.Pointer[error]
	per := maxRequests / conns
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + addr + "/v1/decide")
			req.Header.SetMethod(fasthttp.MethodPost)
			req.Header.SetContentType("application/json")
			h := &hists[w]
			for i := 0; i < per; i++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				req.SetBodyRaw(bodies[(cursor.Add(1)-1)%uint64(len(bodies))])
				err := hc.Do(req, resp)
				if err == nil && resp.StatusCode() != fasthttp.StatusOK {
					err = fmt.Errorf("status %d: %.200s", resp.StatusCode(), resp.Body())
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				h.record(time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var total histogram
	for i := range hists {
		total.merge(&hists[i])
	}
	res := result{
		requests: total.n,
		errors:   errs.Load(),
		rps:      float64(total.n) / elapsed.Seconds(),
		p50:      total.quantile(0.50),
		p99:      total.quantile(0.99),
		p999:     total.quantile(0.999),
	}
	if res.errors > 0 && res.errors*100 > res.requests { // more than 1% failed
		return res, fmt.Errorf("%d of %d requests failed, first: %w", res.errors, res.requests+res.errors, *firstErr.Load())
	}
	if total.n == 0 {
		return res, errors.New("no request succeeded")
	}
	return res, nil
}

// histogram records latencies in nanoseconds with about 1.5% precision:
// values below 128 exactly, above in 64 sub-buckets per power of two. It is
// fixed-size, so recording never allocates.
type histogram struct {
	n      uint64
	counts [128 + 58*64]uint64
}

func bucketOf(v uint64) int {
	if v < 128 {
		return int(v)
	}
	e := bits.Len64(v) - 7 // v>>e is in [64, 128)
	return 128 + (e-1)*64 + int(v>>uint(e)) - 64
}

// bucketMid returns the middle of bucket i, in nanoseconds.
func bucketMid(i int) float64 {
	if i < 128 {
		return float64(i)
	}
	e := (i-128)/64 + 1
	m := uint64((i-128)%64 + 64)
	lo := m << uint(e)
	return float64(lo) + float64(uint64(1)<<uint(e))/2
}

func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[min(bucketOf(v), len(h.counts)-1)]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	h.n += o.n
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
}

// quantile returns the q-quantile in microseconds.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return bucketMid(i) / 1e3
		}
	}
	return bucketMid(len(h.counts)-1) / 1e3
}
