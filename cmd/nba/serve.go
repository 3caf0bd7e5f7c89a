package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"nba/nba"
	"nba/nba/declog"
	"nba/nba/demo"
	"nba/nba/metrics"
	"nba/nba/server"
	"nba/nba/sidecar"
	"nba/state"
	"nba/state/wal"
)

func init() {
	register(command{name: "serve", summary: "serve decisions over HTTP (the embedded demo without -bundle)", run: runServe})
}

const serveHelp = `Usage: nba serve [flags]

Serves the decision API on -http.addr and the admin API (reload, status,
pprof) on -admin.addr. Without -bundle it serves the embedded demo bundle.
Reload the bundle with SIGHUP, POST /admin/reload (bearer token from
$NBA_ADMIN_TOKEN), or by changing its files (-reload.interval).

Examples:
  nba serve
  nba serve -bundle ./bundle -state /var/lib/nba -http.addr 0.0.0.0:8080
  curl -s localhost:8080/v1/decide -d '{"customer_id":"c00042","channel":"web","limit":2}'

Flags:
`

func runServe(args []string) error {
	fset := flag.NewFlagSet("serve", flag.ContinueOnError)
	fset.Usage = func() { fmt.Fprint(fset.Output(), serveHelp); fset.PrintDefaults() }
	bundleDir := fset.String("bundle", "", "bundle directory (bundle.yaml, catalog, models, snapshot); empty serves the embedded demo")
	stateDir := fset.String("state", "", "directory of the durable customer state and decision log (default: $XDG_STATE_HOME/nba or ~/.local/state/nba, per bundle)")
	httpAddr := fset.String("http.addr", "127.0.0.1:8080", "address of the decision API")
	adminAddr := fset.String("admin.addr", "127.0.0.1:8081", "address of the admin API (reload, status, pprof); keep it on loopback")
	reloadEvery := fset.Duration("reload.interval", 5*time.Second, "how often to look for changed bundle files and reload; 0 disables")
	shutdownTimeout := fset.Duration("shutdown.timeout", 10*time.Second, "how long in-flight requests may take to finish on SIGTERM")
	var rf redisFlags
	rf.register(fset)
	syncInterval := fset.Duration("state.syncInterval", 2*time.Millisecond, "longest wait to batch an fsync of the state log")
	checkpointEvery := fset.Duration("state.checkpointInterval", 10*time.Minute, "how often to compact the state log into a checkpoint")
	reserveTTL := fset.Duration("caps.reserveTTL", sidecar.DefaultReserveTTL, "how long a decision's reservation of an exact cap holds its slot when no impression quoting the decision follows")
	maxCustomers := fset.Int("state.maxCustomers", state.DefaultMaxCustomers, "most customers with live state who are not in the snapshot (about 1 KiB each); past it the least recently written lose their live state (history, live fields, journeys); negative: no bound")
	skipCorrupt := fset.Bool("state.skipCorrupt", false, "at start-up, skip damaged state log records (counted and logged; what they recorded is lost) instead of refusing to start")
	logInputs := fset.Bool("decisionlog.inputs", true, "log each decision's inputs (profile fields, history counts, journeys) so nba replay and nba evaluate can decide it again")
	scoreCache := fset.Int64("scorecache.maxBytes", 0, "memory budget of the per-customer score cache in bytes; 0 (the default) disables it: in the traffic measured it cost more CPU than it saved (bench/RESULTS.md)")
	decisionLog := fset.Bool("decisionlog", true, "log every decision and feedback to <state>/decisions (compressed JSON Lines)")
	studioLogBytes := fset.Int64("studio.maxLogBytes", 64<<20, "largest decision log (bytes on disk) the studio's dashboard reads for its uplift; past it, it says to run nba uplift")
	logCodec := fset.String("decisionlog.codec", "zstd", "compression of the decision log: zstd (smaller files) or snappy (Snappy framing format, about 5x less CPU, files about 1.8x larger)")
	logLevel := fset.String("log.level", "info", "log level: debug, info, warn or error")
	erasureKeep := fset.Duration("erasure.keep", sidecar.DefaultErasureKeep, "how long an erased customer's tombstone refuses its feedback, events and consent (410 erased) and hides its snapshot row; the key is $NBA_ERASURE_KEY")
	responseWindow := fset.Duration("learn.responseWindow", 24*time.Hour, "how long a shown action may wait for an accept, convert, reject or dismiss before online learning counts it as ignored")
	learnCheckpoint := fset.Duration("learn.checkpointInterval", time.Minute, "how often to write the online models and the impressions awaiting an outcome to <state>/learner.bin (atomically; nba replay and nba evaluate -learner read it while serving)")
	maxPending := fset.Int("learn.maxPending", 1_000_000, "most impressions awaiting an outcome for online learning; beyond it the oldest is learned from as ignored")
	decisionMemory := fset.Int("learn.decisionMemory", nba.DefaultDecisionMemory, "recent decisions whose learning features (request context, profile) are kept for their feedback; negative keeps none (feedback then learns from the current profile without context)")
	lenientContext := fset.Bool("http.lenientContext", false, "decide a request whose context value has another type than the catalog declares as if the value were missing, instead of refusing it (400 invalid_request)")
	acceptUnknownEvents := fset.Bool("events.acceptUnknown", false, "record events of a type no profile mapping or journey names (counted in nba_events_unknown_type_total) instead of refusing them (400 unknown_event_type)")
	candidateDir := fset.String("studio.candidate", "", "a second bundle directory that the studio's decision explorer decides beside the live bundle (dry runs only; checked as a reload is, refused at start with the reason); empty: none")
	var ef eventStreamFlags
	ef.register(fset)
	var scfg server.Config
	scfg.RegisterFlags(fset)
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := rf.check(fset); err != nil {
		return err
	}
	if err := checkReserveTTL(*reserveTTL); err != nil {
		return err
	}
	if rf.url != "" && flagSet(fset, "state.maxCustomers") {
		return errors.New("-state.maxCustomers does not apply with -state.redis: Redis's maxmemory and maxmemory-policy bound the shared state (noeviction refuses writes when full; an allkeys policy drops whole customers)")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log.level: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)
	// SIGHUP's default action ends the process: catch it from the start, so
	// a reload asked for while the bundle loads (or just after "serving" is
	// logged) is a reload, not an exit. SIGTERM and SIGINT are caught once
	// serving, before "serving" is logged, so that until then they stop a
	// slow start.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP)

	codec, err := declog.ParseCodec(*logCodec)
	if err != nil {
		return fmt.Errorf("-decisionlog.codec: %w", err)
	}
	events, err := ef.config(fset, scfg, rf.url)
	if err != nil {
		return err
	}
	bundle, name, err := openBundle(*bundleDir)
	if err != nil {
		return err
	}
	logger.Info("loading bundle", "bundle", name)
	if *stateDir == "" {
		*stateDir = defaultStateDir(*bundleDir)
		logger.Info("keeping customer state in the default directory; set -state to choose", "dir", *stateDir)
	}
	sc, err := sidecar.Open(sidecar.Config{Bundle: bundle, BundleName: name, StateDir: *stateDir, SyncInterval: *syncInterval,
		CheckpointEvery: *checkpointEvery, StateMaxCustomers: *maxCustomers, StateSkipCorrupt: *skipCorrupt, DecisionLog: *decisionLog, DecisionLogNoInputs: !*logInputs, ScoreCacheBytes: *scoreCache, LogSecret: []byte(os.Getenv("NBA_LOG_SECRET")), IdentityKey: []byte(os.Getenv(sidecar.IdentityKeyEnv)), Logger: logger,
		ResponseWindow: *responseWindow, LearnCheckpointEvery: *learnCheckpoint, MaxPending: *maxPending, DecisionMemory: *decisionMemory, DecisionLogCodec: codec,
		LenientContext: *lenientContext, AcceptUnknownEvents: *acceptUnknownEvents, ReserveTTL: *reserveTTL,
		StateRedis: rf.url, StateRedisWaitReplicas: rf.waitReplicas, StateRedisAllowVolatile: rf.allowVolatile, StateRedisReadTimeout: rf.readTimeout, EventStream: events,
		ErasureKey: []byte(os.Getenv("NBA_ERASURE_KEY")), ErasureKeep: *erasureKeep})
	if ce := (*wal.CorruptError)(nil); errors.As(err, &ce) {
		return fmt.Errorf("%w; to start without the damaged records (losing what they recorded), restart with -state.skipCorrupt", err)
	}
	if err != nil {
		return err
	}
	if *candidateDir != "" {
		if fi, err := os.Stat(*candidateDir); err != nil || !fi.IsDir() {
			sc.Close()
			return fmt.Errorf("-studio.candidate %q is not a directory", *candidateDir)
		}
		abs, _ := filepath.Abs(*candidateDir)
		if err := sc.LoadCandidate(os.DirFS(*candidateDir), abs); err != nil {
			sc.Close()
			return fmt.Errorf("-studio.candidate: %w", err)
		}
	}
	if os.Getenv("NBA_ERASURE_KEY") == "" {
		logger.Warn("no erasure key ($NBA_ERASURE_KEY): DELETE /admin/customers/{id} erases state but keeps no tombstone, so a late event can bring the customer back")
	}
	scfg.AdminToken = os.Getenv("NBA_ADMIN_TOKEN")
	// The admin API answers to the name it was configured with, besides
	// loopback and the address it binds (see server.Config.AdminAllowedHosts).
	if h, _, err := net.SplitHostPort(*adminAddr); err == nil && h != "" {
		scfg.AdminAllowedHosts = append(scfg.AdminAllowedHosts, h)
	}
	scfg.Logger = logger
	scfg.Metrics = metrics.NewSet()
	if *decisionLog {
		scfg.Studio.DecisionLog = decisionLogReport(filepath.Join(*stateDir, "decisions"), *studioLogBytes)
	}
	if err := sc.RegisterMetrics(scfg.Metrics); err != nil {
		sc.Close()
		return err
	}
	srv, err := server.New(scfg, sc)
	if err != nil {
		sc.Close()
		return err
	}
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		sc.Close()
		return fmt.Errorf("cannot listen on -http.addr: %w", err)
	}
	adminLn, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		ln.Close()
		sc.Close()
		return fmt.Errorf("cannot listen on -admin.addr: %w", err)
	}
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- srv.ServeAdmin(adminLn) }()
	logger.Info("serving", "http", ln.Addr().String(), "admin", adminLn.Addr().String(), "bundle", name)

	ctx, stopWatch := context.WithCancel(context.Background())
	if *reloadEvery > 0 && *bundleDir != "" {
		go sc.Watch(ctx, *reloadEvery)
	}
	var serveErr error
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if err := sc.Reload(context.Background()); err == nil {
					logger.Info("bundle reloaded on SIGHUP")
				}
				continue
			}
			logger.Info("shutting down", "signal", sig.String())
			break loop
		case serveErr = <-errc:
			break loop
		}
	}
	stopWatch()
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	return errors.Join(serveErr, err, sc.Close())
}

// openBundle returns the bundle's files: a directory, or the embedded demo.
func openBundle(dir string) (fs.FS, string, error) {
	if dir == "" {
		return demo.Bundle(), "demo", nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, "", fmt.Errorf("-bundle %q is not a directory", dir)
	}
	abs, _ := filepath.Abs(dir)
	return os.DirFS(dir), abs, nil
}

// defaultStateDir is where state lives when -state is not given: one
// directory per bundle under the user's state directory.
func defaultStateDir(bundleDir string) string {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		if home, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(home, ".local", "state")
		} else {
			base = os.TempDir()
		}
	}
	name := "demo"
	if bundleDir != "" {
		abs, _ := filepath.Abs(bundleDir)
		name = filepath.Base(abs)
	}
	return filepath.Join(base, "nba", name)
}

// quietLogger logs warnings and errors only, for one-shot commands.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fset *flag.FlagSet, name string) bool {
	set := false
	fset.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
