// Package server is the sidecar's HTTP layer: the public JSON API on one
// listener and the admin API on another, served with fasthttp over a Backend
// that does the deciding.
//
// Public API (JSON in and out):
//
//	POST /v1/decide          one decision: {"decision_id","customer_id","channel","actions":[...],
//	                         "control","stopped_by"?,"versions":{...},"took_us"} (+ "candidates" with
//	                         explain); AppendDecision writes it
//	POST /v1/decide/batch    {"requests":[...]} → {"decisions":[...]}; an element the backend refuses
//	                         as invalid or not found is an {"error":{...}} in its place
//	POST /v1/feedback        answered {"ok":true} once the backend says the event is durable
//	POST /v1/events          answered {"ok":true}
//	GET  /v1/customers/{id}  the backend's JSON for the customer, 404 not_found if unknown
//	GET  /v1/actions         the catalog as served
//	GET  /healthz            200 while the process serves
//	GET  /readyz             200 once the backend is ready, else 503 not_ready (or the backend's 503 code)
//	GET  /metrics            Prometheus text: the server's and the backend's metrics
//
// Admin API: POST /admin/reload (bearer token), GET /admin/status,
// /debug/pprof/, and the studio (the web UI, package nba/studio) under /ui/
// with the read-only decision API it uses under /ui/api/ (studio.go). Errors are {"error":{"code":..,"message":..}} with the
// stable codes of the Code* constants.
//
// Guarantees:
//   - Serving POST /v1/decide allocates nothing beyond what the Backend
//     allocates: requests are decoded by hand into pooled structs, responses
//     appended into pooled buffers (see TestDecideHandlerAllocs).
//   - A panic in decoding is answered 400, in the Backend 500; the server
//     keeps serving and counts them.
//   - Every limit is set explicitly from Config, never left to fasthttp's
//     defaults: body size, header size, timeouts, connections.
//   - Logs are JSON (log/slog) and carry no customer ids or features; the
//     server logs Backend errors only when they are not an *Error, and
//     fasthttp's own messages cut before the request pieces they quote.
//   - The admin API answers only under a loopback Host, its listener's
//     address or Config.AdminAllowedHosts (against DNS rebinding).
//
// Limits: request bodies are read whole before handling (no streaming), so
// memory per connection is bounded by the body limits. Connections past
// MaxConnsPerIP are refused at accept (429, counted in
// nba_http_conns_refused_per_ip_total); past MaxConns fasthttp answers 503
// itself without calling the server, so those are not in the metrics.
//
// A Server is safe for concurrent use.
package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"nba/nba/metrics"
)

// AdminTokenEnv is the environment variable the command reads the admin
// bearer token from (Config.AdminToken). The library itself reads no
// environment.
const AdminTokenEnv = "NBA_ADMIN_TOKEN"

// Default addresses for the command's flags. The admin listener is loopback
// only by default: it serves pprof and reloads.
const (
	DefaultAddr      = ":8080"
	DefaultAdminAddr = "127.0.0.1:8081"
)

// Config configures a Server. Zero fields take the documented defaults;
// negative ones are refused by New.
type Config struct {
	// MaxBodyBytes bounds a request body on every route but the batch one;
	// larger bodies are answered 413 payload_too_large. Default 64 KiB.
	MaxBodyBytes int
	// MaxBatchBodyBytes bounds a POST /v1/decide/batch body. Default 4 MiB.
	MaxBatchBodyBytes int
	// MaxBatch bounds the requests in one batch. Default 1000.
	MaxBatch int
	// MaxFields bounds the fields of a request's context or an event's
	// attrs. Default 64.
	MaxFields int
	// MaxLimit bounds a decide request's limit. Default 100.
	MaxLimit int
	// MaxIDBytes bounds customer, action, decision ids, channel, placement
	// and event type. Default 256.
	MaxIDBytes int

	// ReadTimeout bounds reading one request, headers and body; a slower
	// client is disconnected. Default 5s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response. Default 5s.
	WriteTimeout time.Duration
	// IdleTimeout bounds waiting for the next request on a keep-alive
	// connection. Default 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; larger is answered
	// 431 header_too_large. Default 8 KiB.
	MaxHeaderBytes int
	// MaxConns bounds concurrent connections on the public listener.
	// Default 4096.
	MaxConns int
	// MaxConnsPerIP bounds concurrent connections from one client address.
	// A sidecar's caller is usually one address, so this is then the
	// effective connection limit. Default 1024.
	MaxConnsPerIP int

	// MinTime is the earliest ts accepted in feedback and events.
	// Default 2000-01-01T00:00:00Z.
	MinTime time.Time
	// MaxTimeAhead is how far past the time of receipt a ts of feedback or
	// an event may be (clock skew). Default 24h.
	MaxTimeAhead time.Duration

	// AdminToken is the bearer token POST /admin/reload requires; empty
	// disables reloads over HTTP (403 reload_disabled).
	AdminToken string
	// AdminAllowedHosts are the host names (a port is ignored) the admin
	// API answers to besides loopback ones (localhost, 127.0.0.0/8, ::1)
	// and the address it listens on; "*" allows any. Requests under
	// another Host are refused (403 host_not_allowed), against DNS
	// rebinding. Default none.
	AdminAllowedHosts []string
	// AdminWriteTimeout bounds an admin response; it must cover a CPU
	// profile (30s by default). Default 65s.
	AdminWriteTimeout time.Duration
	// ReloadTimeout bounds one Backend.Reload. Default 60s.
	ReloadTimeout time.Duration

	// Metrics receives the server's metrics and is written on GET /metrics;
	// the Backend should register its own on the same Set. Default: a new Set.
	Metrics *metrics.Set
	// Logger receives the server's logs. Default: JSON on stderr.
	Logger *slog.Logger
	// Studio configures the studio's dashboard (studio_funnel.go).
	Studio StudioConfig
}

type intParam struct {
	field, flag, help string
	v                 *int
	def               int
}

type durParam struct {
	field, flag, help string
	v                 *time.Duration
	def               time.Duration
}

// params lists c's numeric fields with their defaults and flag names, so
// defaults and flags cannot drift apart.
func (c *Config) params() ([]intParam, []durParam) {
	return []intParam{
			{"MaxBodyBytes", "http.maxBodyBytes", "largest request body in bytes, except batches", &c.MaxBodyBytes, 64 << 10},
			{"MaxBatchBodyBytes", "http.maxBatchBodyBytes", "largest /v1/decide/batch body in bytes", &c.MaxBatchBodyBytes, 4 << 20},
			{"MaxBatch", "http.maxBatch", "most requests in one batch", &c.MaxBatch, 1000},
			{"MaxFields", "http.maxFields", "most fields in a request's context or an event's attrs", &c.MaxFields, 64},
			{"MaxLimit", "http.maxLimit", "largest limit a decide request may ask for", &c.MaxLimit, 100},
			{"MaxIDBytes", "http.maxIDBytes", "longest id, channel, placement or event type in bytes", &c.MaxIDBytes, 256},
			{"MaxHeaderBytes", "http.maxHeaderBytes", "largest request line and headers in bytes (at least 1024)", &c.MaxHeaderBytes, 8 << 10},
			{"MaxConns", "http.maxConns", "most concurrent connections", &c.MaxConns, 4096},
			{"MaxConnsPerIP", "http.maxConnsPerIP", "most concurrent connections from one client address", &c.MaxConnsPerIP, 1024},
		}, []durParam{
			{"ReadTimeout", "http.readTimeout", "longest time to read one request, headers and body", &c.ReadTimeout, 5 * time.Second},
			{"WriteTimeout", "http.writeTimeout", "longest time to write one response", &c.WriteTimeout, 5 * time.Second},
			{"IdleTimeout", "http.idleTimeout", "longest wait for the next request on a keep-alive connection", &c.IdleTimeout, 60 * time.Second},
			{"MaxTimeAhead", "http.maxTimeAhead", "how far past its receipt the ts of feedback or an event may be", &c.MaxTimeAhead, defaultMaxAhead},
			{"AdminWriteTimeout", "admin.writeTimeout", "longest time to write an admin response (covers a 30s CPU profile)", &c.AdminWriteTimeout, 65 * time.Second},
			{"ReloadTimeout", "admin.reloadTimeout", "longest time one reload may take", &c.ReloadTimeout, 60 * time.Second},
		}
}

// RegisterFlags registers c's limits and timeouts on fs as dotted flags
// (-http.maxBodyBytes, -http.readTimeout, ...) whose defaults are the
// documented ones. The admin token is not a flag: it is a secret, read from
// the environment variable AdminTokenEnv by the command.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	ints, durs := c.params()
	for _, p := range ints {
		fs.IntVar(p.v, p.flag, p.def, p.help)
	}
	for _, p := range durs {
		fs.DurationVar(p.v, p.flag, p.def, p.help)
	}
	fs.TextVar(&c.MinTime, "http.minTime", defaultMinTime, "earliest ts accepted in feedback and events (RFC 3339)")
	fs.Func("admin.allowedHosts", "comma-separated host names the admin API answers to besides loopback and its own address (* for any); others get 403 host_not_allowed", func(v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.AdminAllowedHosts = append(c.AdminAllowedHosts, h)
			}
		}
		return nil
	})
}

// The default range of a ts in feedback and events.
var (
	defaultMinTime  = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	defaultMaxAhead = 24 * time.Hour
)

func (c *Config) setDefaults() error {
	ints, durs := c.params()
	for _, f := range ints {
		if *f.v < 0 {
			return fmt.Errorf("cannot configure server: %s is %d, want 0 (default) or more", f.field, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	for _, f := range durs {
		if *f.v < 0 {
			return fmt.Errorf("cannot configure server: %s is %v, want 0 (default) or more", f.field, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.MinTime.IsZero() {
		c.MinTime = defaultMinTime
	}
	if c.MinTime.Year() < 1970 || !c.MinTime.Before(maxAt) {
		return fmt.Errorf("cannot configure server: MinTime is %s, want a time from 1970 to %d", c.MinTime.Format(time.RFC3339), maxAt.Year())
	}
	if c.MaxHeaderBytes < 1024 {
		return fmt.Errorf("cannot configure server: MaxHeaderBytes is %d, want at least 1024", c.MaxHeaderBytes)
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewSet()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return nil
}

// Server serves the public and admin APIs over a Backend.
type Server struct {
	cfg     Config
	backend Backend
	lim     limits
	log     *slog.Logger

	public, admin *fasthttp.Server
	listeners     listenerSet
	pprof         fasthttp.RequestHandler

	idPrefix uint64
	idSeq    atomic.Uint64

	decidePool, batchPool, bodyPool sync.Pool

	requests      *metrics.CounterVec
	latency       [numEndpoints]*metrics.Histogram
	decodePanics  *metrics.Counter
	handlerPanics *metrics.Counter
	unparsed      *metrics.CounterVec
	refusedPerIP  *metrics.Counter

	adminHosts adminHosts
	studio     studioState
}

// New validates cfg and returns a Server over b. It registers the server's
// metrics on cfg.Metrics, so one Set takes one Server.
func New(cfg Config, b Backend) (*Server, error) {
	if b == nil {
		return nil, errors.New("cannot create server: nil backend")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		backend: b,
		lim:     limits{maxIDBytes: cfg.MaxIDBytes, maxFields: cfg.MaxFields, maxLimit: cfg.MaxLimit, maxBatch: cfg.MaxBatch, minTime: cfg.MinTime, maxAhead: cfg.MaxTimeAhead},
		log:     cfg.Logger,
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails on supported platforms
	s.idPrefix = binary.LittleEndian.Uint64(seed[:])
	s.adminHosts.init(cfg.AdminAllowedHosts)
	s.decidePool.New = func() any { return new(decideScratch) }
	s.batchPool.New = func() any { return new(batchScratch) }
	s.bodyPool.New = func() any { return new(bodyScratch) }

	if err := s.registerMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	fl := fasthttpLogger{cfg.Logger}
	s.public = &fasthttp.Server{
		Handler:            s.Handler(),
		ErrorHandler:       s.errorHandler,
		Name:               "nba",
		ReadTimeout:        cfg.ReadTimeout,
		WriteTimeout:       cfg.WriteTimeout,
		IdleTimeout:        cfg.IdleTimeout,
		ReadBufferSize:     cfg.MaxHeaderBytes,
		MaxRequestBodySize: max(cfg.MaxBodyBytes, cfg.MaxBatchBodyBytes),
		// A route's own limit (MaxBodyBytes) is checked once the body is
		// read, so the caller always gets its 413 answer: refusing at the
		// headers closes the connection while a client is still writing,
		// which the client sees as a reset, not a 413.
		Concurrency:                  cfg.MaxConns,
		CloseOnShutdown:              true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		SecureErrorLogMessage:        true, // no request contents in fasthttp's logs
		Logger:                       fl,
	}
	s.admin = &fasthttp.Server{
		Handler:                      s.AdminHandler(),
		ErrorHandler:                 s.errorHandler,
		Name:                         "nba-admin",
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.AdminWriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		ReadBufferSize:               cfg.MaxHeaderBytes,
		MaxRequestBodySize:           cfg.MaxBodyBytes,
		Concurrency:                  64,
		CloseOnShutdown:              true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		SecureErrorLogMessage:        true, // no request contents in fasthttp's logs
		Logger:                       fl,
	}
	if err := cfg.Metrics.NewGaugeFunc("nba_http_open_connections", "Open connections on the public listener.",
		func() float64 { return float64(s.public.GetOpenConnectionsCount()) }); err != nil {
		return nil, err
	}
	s.pprof = pprofHandler()
	return s, nil
}

func (s *Server) registerMetrics(set *metrics.Set) error {
	var err error
	if s.requests, err = set.NewCounterVec("nba_http_requests_total", "HTTP requests by endpoint and status code.",
		[]string{"endpoint", "code"}, 256); err != nil {
		return err
	}
	lat, err := set.NewHistogramVec("nba_http_request_duration_seconds", "Time from handler entry to response encoded, by endpoint.",
		[]string{"endpoint"}, metrics.LatencyBuckets, int(numEndpoints))
	if err != nil {
		return err
	}
	for e := range s.latency {
		s.latency[e] = lat.With(endpointNames[e])
	}
	if s.decodePanics, err = set.NewCounter("nba_http_decode_panics_total", "Panics recovered while decoding a request body (answered 400)."); err != nil {
		return err
	}
	if s.handlerPanics, err = set.NewCounter("nba_http_handler_panics_total", "Panics recovered while handling a request (answered 500)."); err != nil {
		return err
	}
	if s.refusedPerIP, err = set.NewCounter("nba_http_conns_refused_per_ip_total", "Connections refused because their client address was at MaxConnsPerIP."); err != nil {
		return err
	}
	s.unparsed, err = set.NewCounterVec("nba_http_unparsed_requests_total", "Requests refused before routing: too large, too slow, unparsable.",
		[]string{"code"}, 16)
	return err
}

// Serve serves the public API on ln until Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	if !s.listeners.add(ln) {
		return nil
	}
	return s.public.Serve(&limitListener{Listener: ln, max: s.cfg.MaxConnsPerIP, refused: s.refusedPerIP, perIP: map[string]int{}})
}

// ServeAdmin serves the admin API on ln until Shutdown; it then returns nil.
// Give it a loopback listener unless the network is trusted. It answers
// only requests whose Host is loopback, ln's address or one of
// Config.AdminAllowedHosts. It accepts at most 64 connections at once.
func (s *Server) ServeAdmin(ln net.Listener) error {
	if !s.listeners.add(ln) {
		return nil
	}
	s.adminHosts.add(ln.Addr())
	s.startSampler()
	return s.admin.Serve(&limitListener{Listener: ln, max: 64, refused: s.refusedPerIP, perIP: map[string]int{}})
}

// Shutdown stops accepting connections on both listeners, lets in-flight
// requests finish, closes idle connections, and returns when all are closed
// or ctx is done (then with ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	lns := s.listeners.shut()
	var wg sync.WaitGroup
	var errPublic, errAdmin error
	wg.Add(2)
	go func() { defer wg.Done(); errPublic = s.public.ShutdownWithContext(ctx) }()
	go func() { defer wg.Done(); errAdmin = s.admin.ShutdownWithContext(ctx) }()
	wg.Wait()
	// A Serve called just before Shutdown may not have handed its listener
	// to fasthttp yet, which then had none to close and would serve on:
	// closing every listener given makes it return.
	for _, ln := range lns {
		ln.Close()
	}
	s.stopSampler()
	if err := errors.Join(errPublic, errAdmin); err != nil {
		return fmt.Errorf("cannot shut down server: %w", err)
	}
	return nil
}

// Metrics returns the Set the server writes on GET /metrics.
func (s *Server) Metrics() *metrics.Set { return s.cfg.Metrics }

// endpoint identifies a route, for metrics.
type endpoint uint8

const (
	epDecide endpoint = iota
	epBatch
	epFeedback
	epEvents
	epCustomer
	epActions
	epHealthz
	epReadyz
	epMetrics
	epReload
	epStatus
	epPprof
	epUI
	epUIAPI
	epConsent
	epErase
	epIdentify
	epUnmerge
	epOther
	numEndpoints
)

var endpointNames = [numEndpoints]string{
	"/v1/decide", "/v1/decide/batch", "/v1/feedback", "/v1/events", "/v1/customers/{id}", "/v1/actions",
	"/healthz", "/readyz", "/metrics", "/admin/reload", "/admin/status", "/debug/pprof/", "/ui/", "/ui/api/",
	"/v1/consent", "/admin/customers/{id}", "/v1/identify", "/admin/identity/unmerge", "other",
}

const customersPrefix = "/v1/customers/"

var (
	contentJSON = []byte("application/json")
	contentText = []byte("text/plain; version=0.0.4; charset=utf-8")
)

// finish ends a request, deferred by both handlers: a panic becomes a 500
// (logged and counted) and the request is observed under endpoint *ep,
// which the handler sets once it has routed.
func (s *Server) finish(ctx *fasthttp.RequestCtx, ep *endpoint, start time.Time, panicMsg string) {
	if r := recover(); r != nil {
		s.handlerPanics.Inc()
		s.log.Error(panicMsg, "endpoint", endpointNames[*ep], "panic", fmt.Sprint(r))
		ctx.Response.Reset()
		s.writeError(ctx, http.StatusInternalServerError, CodeInternal, "internal error")
	}
	s.observe(*ep, ctx.Response.StatusCode(), start)
}

// Handler returns the public API's handler, for tests and for callers that
// run their own fasthttp.Server.
func (s *Server) Handler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		ep := epOther
		defer s.finish(ctx, &ep, start, "handler panic")
		path := ctx.Path()
		switch string(path) {
		case "/v1/decide":
			ep = epDecide
			if s.allow(ctx, fasthttp.MethodPost) {
				s.decide(ctx, start, false)
			}
		case "/v1/decide/batch":
			ep = epBatch
			if s.allow(ctx, fasthttp.MethodPost) {
				s.batch(ctx, start)
			}
		case "/v1/feedback":
			ep = epFeedback
			if s.allow(ctx, fasthttp.MethodPost) {
				s.feedback(ctx)
			}
		case "/v1/events":
			ep = epEvents
			if s.allow(ctx, fasthttp.MethodPost) {
				s.event(ctx)
			}
		case "/v1/consent":
			ep = epConsent
			if s.allow(ctx, fasthttp.MethodPost) {
				s.consent(ctx)
			}
		case "/v1/identify":
			ep = epIdentify
			if s.allow(ctx, fasthttp.MethodPost) {
				s.identify(ctx)
			}
		case "/v1/actions":
			ep = epActions
			if s.allow(ctx, fasthttp.MethodGet) {
				s.appendJSON(ctx, s.backend.AppendActions)
			}
		case "/healthz":
			ep = epHealthz
			if s.allow(ctx, fasthttp.MethodGet) {
				s.writeJSON(ctx, http.StatusOK, []byte(`{"status":"ok"}`))
			}
		case "/readyz":
			ep = epReadyz
			if s.allow(ctx, fasthttp.MethodGet) {
				if err := s.backend.Ready(); err != nil {
					code := CodeNotReady
					if e := (*Error)(nil); errors.As(err, &e) && e.Status == http.StatusServiceUnavailable {
						code = e.Code // e.g. state_unavailable
					}
					s.writeError(ctx, http.StatusServiceUnavailable, code, err.Error())
				} else {
					s.writeJSON(ctx, http.StatusOK, []byte(`{"status":"ready"}`))
				}
			}
		case "/metrics":
			ep = epMetrics
			if s.allow(ctx, fasthttp.MethodGet) {
				s.metrics(ctx)
			}
		default:
			if len(path) > len(customersPrefix) && string(path[:len(customersPrefix)]) == customersPrefix {
				ep = epCustomer
				if s.allow(ctx, fasthttp.MethodGet) {
					s.customer(ctx, path[len(customersPrefix):])
				}
				return
			}
			s.writeError(ctx, http.StatusNotFound, CodeNotFound, "no route for this path")
		}
	}
}

// AdminHandler returns the admin API's handler.
func (s *Server) AdminHandler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		ep := epOther
		defer s.finish(ctx, &ep, start, "admin handler panic")
		if !s.checkAdminHost(ctx) {
			return
		}
		path := string(ctx.Path())
		switch {
		case path == "/admin/reload":
			ep = epReload
			if s.allow(ctx, fasthttp.MethodPost) {
				s.reload(ctx)
			}
		case path == "/admin/identity/unmerge":
			ep = epUnmerge
			if s.allow(ctx, fasthttp.MethodPost) {
				s.unmerge(ctx)
			}
		case path == "/admin/status":
			ep = epStatus
			if s.allow(ctx, fasthttp.MethodGet) {
				s.appendJSON(ctx, s.backend.AppendStatus)
			}
		case strings.HasPrefix(path, adminCustomersPrefix):
			ep = epErase
			if s.allow(ctx, fasthttp.MethodDelete) {
				s.eraseCustomer(ctx, path[len(adminCustomersPrefix):])
			}
		case strings.HasPrefix(path, "/debug/pprof/"):
			ep = epPprof
			s.pprof(ctx)
		case path == "/healthz":
			ep = epHealthz
			s.writeJSON(ctx, http.StatusOK, []byte(`{"status":"ok"}`))
		case strings.HasPrefix(path, uiAPIPrefix):
			ep = epUIAPI
			s.uiAPI(ctx, path[len(uiAPIPrefix)-1:], start)
		case path == "/" || path == "/ui" || strings.HasPrefix(path, "/ui/"):
			ep = epUI
			s.ui(ctx, path)
		default:
			s.writeError(ctx, http.StatusNotFound, CodeNotFound, "no route for this path")
		}
	}
}

func pprofHandler() fasthttp.RequestHandler {
	index := fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Index)
	cmdline := fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Cmdline)
	profile := fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Profile)
	symbol := fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Symbol)
	trace := fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Trace)
	return func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/debug/pprof/cmdline":
			cmdline(ctx)
		case "/debug/pprof/profile":
			profile(ctx)
		case "/debug/pprof/symbol":
			symbol(ctx)
		case "/debug/pprof/trace":
			trace(ctx)
		default:
			index(ctx) // the index and named profiles: heap, goroutine, ...
		}
	}
}

func (s *Server) observe(ep endpoint, status int, start time.Time) {
	s.latency[ep].Observe(time.Since(start).Seconds())
	s.requests.With(endpointNames[ep], statusLabel(status)).Inc()
}

// statusLabel returns the metric label for an HTTP status without allocating.
func statusLabel(status int) string {
	switch status {
	case 200:
		return "200"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 405:
		return "405"
	case 409:
		return "409"
	case 410:
		return "410"
	case 408:
		return "408"
	case 413:
		return "413"
	case 431:
		return "431"
	case 500:
		return "500"
	case 503:
		return "503"
	}
	return "other"
}

// allow answers 405 unless the request's method is m (HEAD is allowed with GET).
func (s *Server) allow(ctx *fasthttp.RequestCtx, m string) bool {
	method := ctx.Method()
	if string(method) == m || m == fasthttp.MethodGet && string(method) == fasthttp.MethodHead {
		return true
	}
	ctx.Response.Header.Set(fasthttp.HeaderAllow, m)
	s.writeError(ctx, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed; use "+m)
	return false
}

func (s *Server) writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetBody(body)
}

func (s *Server) writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	sc := s.bodyPool.Get().(*bodyScratch)
	sc.out = appendError(sc.out[:0], code, msg)
	s.writeJSON(ctx, status, sc.out)
	s.bodyPool.Put(sc)
}

// writeErr answers err: an *Error or decode error as it says, anything else
// as 500 internal, logged without the request's contents.
func (s *Server) writeErr(ctx *fasthttp.RequestCtx, err error) {
	status, code, msg := errorParts(err)
	if status == http.StatusInternalServerError && code == CodeInternal {
		path := string(ctx.Path())
		if strings.HasPrefix(path, customersPrefix) {
			path = endpointNames[epCustomer] // the path holds a customer id
		} else if strings.HasPrefix(path, adminCustomersPrefix) {
			path = endpointNames[epErase] // so does this one
		} else if strings.HasPrefix(path, uiAPIPrefix) {
			path = endpointNames[epUIAPI] // so may this one
		}
		s.log.Error("backend error", "endpoint", path, "err", err.Error())
	}
	s.writeError(ctx, status, code, msg)
}

// body returns the request body if it is within limit, and otherwise answers 413.
func (s *Server) body(ctx *fasthttp.RequestCtx, limit int) ([]byte, bool) {
	b := ctx.Request.Body()
	if len(b) > limit {
		s.writeError(ctx, http.StatusRequestEntityTooLarge, CodePayloadTooLarge, fmt.Sprintf("body is over %d bytes", limit))
		return nil, false
	}
	return b, true
}

// errorHandler answers requests fasthttp could not read.
func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	status, code, msg := http.StatusBadRequest, CodeMalformedJSON, "cannot parse the HTTP request"
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, code, msg = http.StatusRequestEntityTooLarge, CodePayloadTooLarge, fmt.Sprintf("body is over %d bytes", max(s.cfg.MaxBodyBytes, s.cfg.MaxBatchBodyBytes))
	case errors.As(err, &small):
		status, code, msg = http.StatusRequestHeaderFieldsTooLarge, CodeHeaderTooLarge, fmt.Sprintf("request headers are over %d bytes", s.cfg.MaxHeaderBytes)
	case errors.As(err, &netErr) && netErr.Timeout():
		status, code, msg = http.StatusRequestTimeout, CodeTimeout, "the request was not received in time"
	}
	s.unparsed.With(code).Inc()
	s.writeError(ctx, status, code, msg)
}

// fasthttpLogger sends fasthttp's own messages to slog, redacted: its
// parse errors quote what they could not parse (a request line, a header
// value: customer ids, bearer tokens) even with SecureErrorLogMessage. See
// redactLogArg.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	safe := make([]any, len(args))
	for i, a := range args {
		safe[i] = redactLogArg(a)
	}
	f.l.Warn(fmt.Sprintf(format, safe...), "component", "fasthttp")
}

// maxLoggedError bounds what is kept of one error text in a log line.
const maxLoggedError = 160

// redactLogArg returns what of one argument of a fasthttp log line may be
// logged. Addresses and numbers are kept. Errors and strings are cut at
// their first quote, since fasthttp quotes (%q) every piece of request it
// puts in an error, and at the first byte that is not printable ASCII;
// what is cut is marked "…". Anything else is left out.
func redactLogArg(a any) any {
	var s string
	switch v := a.(type) {
	case net.Addr:
		return v.String()
	case int, int64, uint, uint64, float64, time.Duration:
		return v
	case error:
		s = v.Error()
	case string:
		s = v
	default:
		return "(redacted)"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\'' || c == '`' || c < 0x20 || c >= 0x7f || i == maxLoggedError {
			return s[:i] + "…"
		}
	}
	return s
}

// listenerSet is the listeners given to Serve and ServeAdmin, so that
// Shutdown closes them whatever point those calls have reached, and a
// Serve after Shutdown returns at once.
type listenerSet struct {
	mu   sync.Mutex
	lns  []net.Listener
	done bool
}

// add keeps ln, or closes it and reports false after shut.
func (l *listenerSet) add(ln net.Listener) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		ln.Close()
		return false
	}
	l.lns = append(l.lns, ln)
	return true
}

// shut refuses later listeners and returns those given.
func (l *listenerSet) shut() []net.Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	return l.lns
}
