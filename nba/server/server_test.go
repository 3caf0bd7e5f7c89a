package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"nba/nba/metrics"
	"nba/nba/server"
	"nba/nba/server/servertest"
)

type harness struct {
	srv     *server.Server
	backend *servertest.Backend
	base    string // public API, http://127.0.0.1:port
	admin   string
	client  *http.Client
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start serves a Server over b on loopback listeners and shuts it down at
// the end of the test.
func start(t *testing.T, cfg server.Config, b server.Backend) *harness {
	t.Helper()
	h := &harness{logs: &syncBuffer{}, client: &http.Client{Timeout: 30 * time.Second}}
	if fb, ok := b.(*servertest.Backend); ok {
		h.backend = fb
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(h.logs, nil))
	srv, err := server.New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.base, h.admin = "http://"+ln.Addr().String(), "http://"+aln.Addr().String()
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ln) }()
	go func() { done <- srv.ServeAdmin(aln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for i := 0; i < 2; i++ {
			if err := <-done; err != nil {
				t.Errorf("serve returned %v", err)
			}
		}
	})
	return h
}

type reply struct {
	status int
	body   []byte
	header http.Header
}

func (r reply) code() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (h *harness) do(t *testing.T, method, url, body string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1] // net/http ignores a Host header
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, b, resp.Header}
}

type decision struct {
	DecisionID string `json:"decision_id"`
	CustomerID string `json:"customer_id"`
	Channel    string `json:"channel"`
	Actions    []struct {
		ID, Name                        string
		Score, Propensity, Value, Lever float64
		Tier                            int
		Treatment                       json.RawMessage
	}
	Control    bool
	Versions   struct{ Catalog, Model, Snapshot string }
	Candidates []struct {
		ID       string
		Score    float64
		Selected bool
		Reason   string
	}
	TookUS *int64 `json:"took_us"`
}

func TestDecideFeedbackEventsCustomerFlow(t *testing.T) {
	h := start(t, server.Config{}, &servertest.Backend{})

	r := h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"cust-7","channel":"web","placement":"home","limit":2,"context":{"device":"ios","basket":42.5,"vip":true},"explain":true}`)
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("decide: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	var d decision
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("decide body %s: %v", r.body, err)
	}
	if len(d.DecisionID) != 32 || d.CustomerID != "cust-7" || d.Channel != "web" || len(d.Actions) != 2 || d.TookUS == nil ||
		d.Versions.Model != "fake-model-1" || len(d.Candidates) != len(servertest.Catalog) {
		t.Fatalf("decision %s", r.body)
	}
	if d.Actions[0].Score < d.Actions[1].Score || !json.Valid(d.Actions[0].Treatment) || d.Actions[0].Treatment[0] != '{' {
		t.Errorf("actions not ranked or treatment not an object: %s", r.body)
	}
	// A second decision has a different id.
	var d2 decision
	_ = json.Unmarshal(h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"cust-7","channel":"web"}`).body, &d2)
	if d2.DecisionID == d.DecisionID || d2.Candidates != nil {
		t.Errorf("second decision id %q (first %q), candidates %v without explain", d2.DecisionID, d.DecisionID, d2.Candidates)
	}

	fb := `{"decision_id":"` + d.DecisionID + `","customer_id":"cust-7","action_id":"` + d.Actions[0].ID + `","channel":"web","outcome":"click","value":1}`
	if r := h.do(t, "POST", h.base+"/v1/feedback", fb); r.status != 200 || string(r.body) != `{"ok":true}` {
		t.Fatalf("feedback: %d %s", r.status, r.body)
	}
	if r := h.do(t, "POST", h.base+"/v1/events", `{"customer_id":"cust-7","type":"page_view","ts":"2026-03-01T12:00:00Z","attrs":{"page":"/loans"}}`); r.status != 200 {
		t.Fatalf("events: %d %s", r.status, r.body)
	}
	recs := h.backend.Records()
	if len(recs) != 2 || recs[0].DecisionID != d.DecisionID || recs[0].Outcome != server.OutcomeClick || recs[1].Type != "page_view" {
		t.Fatalf("backend recorded %+v", recs)
	}

	r = h.do(t, "GET", h.base+"/v1/customers/cust-7", "")
	var c struct {
		CustomerID string `json:"customer_id"`
		Contacts   int
		Events     int
	}
	if err := json.Unmarshal(r.body, &c); r.status != 200 || err != nil || c.CustomerID != "cust-7" || c.Contacts != 1 || c.Events != 1 {
		t.Fatalf("customer: %d %s", r.status, r.body)
	}
	if r := h.do(t, "GET", h.base+"/v1/customers/nobody", ""); r.status != 404 || r.code() != server.CodeNotFound {
		t.Errorf("unknown customer: %d %s", r.status, r.body)
	}
	if r := h.do(t, "GET", h.base+"/v1/actions", ""); r.status != 200 || !json.Valid(r.body) || !bytes.Contains(r.body, []byte("card-upgrade")) {
		t.Errorf("actions: %d %s", r.status, r.body)
	}
	// Unknown customers are decided (anonymously), not refused.
	if r := h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"never-seen","channel":"app"}`); r.status != 200 {
		t.Errorf("unknown customer decide: %d %s", r.status, r.body)
	}
	if r := h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"holdout-1","channel":"app"}`); r.status != 200 || !bytes.Contains(r.body, []byte(`"actions":[],"control":true`)) {
		t.Errorf("holdout decide: %d %s", r.status, r.body)
	}
	if strings.Contains(h.logs.String(), "cust-7") {
		t.Errorf("logs mention a customer id: %s", h.logs.String())
	}
}

func TestBatch(t *testing.T) {
	h := start(t, server.Config{MaxBatch: 3}, &servertest.Backend{})
	r := h.do(t, "POST", h.base+"/v1/decide/batch", `{"requests":[{"customer_id":"a","channel":"web"},{"customer_id":"b","channel":"fax"},{"customer_id":"c","channel":"email","limit":1}]}`)
	var out struct {
		Decisions []json.RawMessage
	}
	if err := json.Unmarshal(r.body, &out); r.status != 200 || err != nil || len(out.Decisions) != 3 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	var d0, d2 decision
	_ = json.Unmarshal(out.Decisions[0], &d0)
	_ = json.Unmarshal(out.Decisions[2], &d2)
	if d0.CustomerID != "a" || d2.CustomerID != "c" || len(d2.Actions) != 1 || d0.DecisionID == d2.DecisionID {
		t.Errorf("batch decisions: %s", r.body)
	}
	if !bytes.Contains(out.Decisions[1], []byte(`"code":"invalid_request"`)) || !bytes.Contains(out.Decisions[1], []byte(`channel \"fax\" is not configured`)) {
		t.Errorf("refused element: %s", out.Decisions[1])
	}
	tooMany := `{"requests":[` + strings.Repeat(`{"customer_id":"a","channel":"web"},`, 3) + `{"customer_id":"a","channel":"web"}]}`
	if r := h.do(t, "POST", h.base+"/v1/decide/batch", tooMany); r.status != 400 || r.code() != server.CodeInvalidRequest {
		t.Errorf("4 requests over a limit of 3: %d %s", r.status, r.body)
	}
	if r := h.do(t, "POST", h.base+"/v1/decide/batch", `{"requests":[{"customer_id":"a","channel":"web"},{"channel":"web"}]}`); r.status != 400 || !strings.Contains(r.code()+string(r.body), "requests[1]") {
		t.Errorf("bad element: %d %s", r.status, r.body)
	}
}

func TestBadRequests(t *testing.T) {
	h := start(t, server.Config{}, &servertest.Backend{PanicOnCustomer: "boom"})
	big := `{"customer_id":"c","channel":"web","pad":"` + strings.Repeat("x", 1<<20) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/v1/decide", `{"customer_id":`, 400, server.CodeMalformedJSON},
		{"not JSON", "POST", "/v1/decide", `customer_id=c`, 400, server.CodeMalformedJSON},
		{"empty body", "POST", "/v1/decide", ``, 400, server.CodeMalformedJSON},
		{"wrong type", "POST", "/v1/decide", `{"customer_id":7,"channel":"web"}`, 400, server.CodeInvalidRequest},
		{"nested context", "POST", "/v1/decide", `{"customer_id":"c","channel":"web","context":{"a":{}}}`, 400, server.CodeInvalidRequest},
		{"missing customer id", "POST", "/v1/decide", `{"channel":"web"}`, 400, server.CodeInvalidRequest},
		{"unknown channel", "POST", "/v1/decide", `{"customer_id":"c","channel":"fax"}`, 400, server.CodeInvalidRequest},
		{"unknown outcome", "POST", "/v1/feedback", `{"customer_id":"c","action_id":"app-tour","outcome":"love"}`, 400, server.CodeInvalidRequest},
		{"unknown action", "POST", "/v1/feedback", `{"customer_id":"c","action_id":"nope","outcome":"click"}`, 400, server.CodeInvalidRequest},
		{"bad ts", "POST", "/v1/events", `{"customer_id":"c","type":"t","ts":"noon"}`, 400, server.CodeInvalidRequest},
		{"1 MB body", "POST", "/v1/decide", big, 413, server.CodePayloadTooLarge},
		{"1 MB feedback", "POST", "/v1/feedback", big, 413, server.CodePayloadTooLarge},
		{"wrong method", "GET", "/v1/decide", ``, 405, server.CodeMethodNotAllowed},
		{"wrong method on GET route", "POST", "/v1/actions", `{}`, 405, server.CodeMethodNotAllowed},
		{"unknown route", "GET", "/v2/decide", ``, 404, server.CodeNotFound},
		{"backend panic", "POST", "/v1/decide", `{"customer_id":"boom","channel":"web"}`, 500, server.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, tc.method, h.base+tc.path, tc.body)
			if r.status != tc.status || r.code() != tc.code {
				t.Errorf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			var e struct{ Error struct{ Message string } }
			if json.Unmarshal(r.body, &e) != nil || e.Error.Message == "" {
				t.Errorf("error body %s has no message", r.body)
			}
			if r := h.do(t, "GET", h.base+"/healthz", ""); r.status != 200 {
				t.Fatalf("server not serving after the bad request: %d", r.status)
			}
		})
	}
	r := h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"c","channel":"fax"}`)
	if want := `channel \"fax\" is not configured`; !strings.Contains(string(r.body), want) {
		t.Errorf("message %s lacks %s", r.body, want)
	}
}

// A body over the largest limit is refused by fasthttp before routing; it
// must still get the JSON error.
func TestBodyOverServerLimit(t *testing.T) {
	h := start(t, server.Config{MaxBodyBytes: 1024, MaxBatchBodyBytes: 2048}, &servertest.Backend{})
	r := h.do(t, "POST", h.base+"/v1/decide/batch", `{"requests":[`+strings.Repeat(" ", 4096)+`]}`)
	if r.status != 413 || r.code() != server.CodePayloadTooLarge {
		t.Errorf("got %d %s", r.status, r.body)
	}
}

func TestSlowClientIsDisconnected(t *testing.T) {
	h := start(t, server.Config{ReadTimeout: 100 * time.Millisecond}, &servertest.Backend{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers promise a body that never comes.
	if _, err := io.WriteString(conn, "POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"customer_id\""); err != nil {
		t.Fatal(err)
	}
	// The deadline is only a guard against a hang: the server's timeout is
	// far shorter, so this does not depend on timing to pass.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	switch {
	case err == nil:
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 408 || !bytes.Contains(b, []byte(server.CodeTimeout)) {
			t.Errorf("got %d %s, want 408 timeout", resp.StatusCode, b)
		}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// Closed without an answer is also a disconnect.
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("server did not disconnect a client that stalled mid-body")
		}
	}
	if r := h.do(t, "GET", h.base+"/healthz", ""); r.status != 200 {
		t.Fatalf("server not serving after the slow client: %d", r.status)
	}
}

func TestReadiness(t *testing.T) {
	b := &servertest.Backend{}
	b.NotReady.Store(true)
	h := start(t, server.Config{}, b)
	if r := h.do(t, "GET", h.base+"/readyz", ""); r.status != 503 || r.code() != server.CodeNotReady {
		t.Errorf("readyz before load: %d %s", r.status, r.body)
	}
	if r := h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"c","channel":"web"}`); r.status != 503 || r.code() != server.CodeNotReady {
		t.Errorf("decide before load: %d %s", r.status, r.body)
	}
	if r := h.do(t, "GET", h.base+"/healthz", ""); r.status != 200 {
		t.Errorf("healthz before load: %d", r.status)
	}
	b.NotReady.Store(false)
	if r := h.do(t, "GET", h.base+"/readyz", ""); r.status != 200 {
		t.Errorf("readyz after load: %d %s", r.status, r.body)
	}
}

// TestStateErrorCodes: a backend's state errors reach the caller with
// their own status and code, and a state that cannot be written makes
// /readyz answer 503 state_unavailable.
func TestStateErrorCodes(t *testing.T) {
	b := &servertest.Backend{}
	h := start(t, server.Config{}, b)
	for _, tc := range []struct {
		err    *server.Error
		status int
		code   string
		ready  int
	}{
		{server.StateUnavailablef("customer state cannot be written now"), 503, server.CodeStateUnavailable, 503},
		{server.Conflictf("changed meanwhile"), 409, server.CodeConflict, 200},
		{server.Invalidf("bad"), 400, server.CodeInvalidRequest, 200},
	} {
		t.Run(tc.code, func(t *testing.T) {
			b.IngestErr.Store(tc.err)
			defer b.IngestErr.Store(nil)
			for path, body := range map[string]string{
				"/v1/feedback": `{"customer_id":"c","action_id":"a1","outcome":"click"}`,
				"/v1/events":   `{"customer_id":"c","type":"page_view"}`,
			} {
				if r := h.do(t, "POST", h.base+path, body); r.status != tc.status || r.code() != tc.code || !strings.Contains(string(r.body), tc.err.Message) {
					t.Errorf("%s: %d %s, want %d %s", path, r.status, r.body, tc.status, tc.code)
				}
			}
			r := h.do(t, "GET", h.base+"/readyz", "")
			if r.status != tc.ready || (tc.ready == 503 && r.code() != tc.code) {
				t.Errorf("readyz: %d %s, want %d", r.status, r.body, tc.ready)
			}
		})
	}
}

func TestMetricsEndpoint(t *testing.T) {
	set := metrics.NewSet()
	backendCounter := metrics.Must(set.NewCounterVec("nba_decisions_total", "Decisions.", []string{"action", "channel"}, 100))
	h := start(t, server.Config{Metrics: set}, &servertest.Backend{})
	backendCounter.With("app-tour", "web").Add(3)
	h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"c","channel":"web"}`)
	h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"c","channel":"fax"}`)
	r := h.do(t, "GET", h.base+"/metrics", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %s", r.status, r.header.Get("Content-Type"))
	}
	for _, want := range []string{
		`nba_http_requests_total{endpoint="/v1/decide",code="200"} 1`,
		`nba_http_requests_total{endpoint="/v1/decide",code="400"} 1`,
		`nba_http_request_duration_seconds_count{endpoint="/v1/decide"} 2`,
		`nba_decisions_total{action="app-tour",channel="web"} 3`,
		"# TYPE nba_http_open_connections gauge",
	} {
		if !strings.Contains(string(r.body), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, r.body)
		}
	}
}

func TestAdmin(t *testing.T) {
	t.Run("no token configured", func(t *testing.T) {
		h := start(t, server.Config{}, &servertest.Backend{})
		if r := h.do(t, "POST", h.admin+"/admin/reload", "", "Authorization", "Bearer x"); r.status != 403 || r.code() != server.CodeReloadDisabled {
			t.Errorf("reload: %d %s", r.status, r.body)
		}
		if h.backend.Reloads() != 0 {
			t.Error("backend reloaded")
		}
	})
	t.Run("token", func(t *testing.T) {
		h := start(t, server.Config{AdminToken: "s3cret"}, &servertest.Backend{})
		for _, auth := range []string{"", "Bearer wrong", "Bearer s3cre", "Basic s3cret", "Bearer s3cret2"} {
			if r := h.do(t, "POST", h.admin+"/admin/reload", "", "Authorization", auth); r.status != 401 || r.code() != server.CodeUnauthorized {
				t.Errorf("reload with %q: %d %s", auth, r.status, r.body)
			}
		}
		if r := h.do(t, "POST", h.admin+"/admin/reload", "", "Authorization", "Bearer s3cret"); r.status != 200 || h.backend.Reloads() != 1 {
			t.Errorf("reload: %d %s, reloads %d", r.status, r.body, h.backend.Reloads())
		}
		if r := h.do(t, "GET", h.admin+"/admin/reload", ""); r.status != 405 {
			t.Errorf("GET reload: %d", r.status)
		}
		if r := h.do(t, "GET", h.admin+"/admin/status", ""); r.status != 200 || !bytes.Contains(r.body, []byte(`"reloads":1`)) {
			t.Errorf("status: %d %s", r.status, r.body)
		}
		if r := h.do(t, "GET", h.admin+"/debug/pprof/", ""); r.status != 200 || !bytes.Contains(r.body, []byte("goroutine")) {
			t.Errorf("pprof index: %d", r.status)
		}
		if r := h.do(t, "GET", h.admin+"/debug/pprof/goroutine?debug=1", ""); r.status != 200 || !bytes.Contains(r.body, []byte("goroutine profile")) {
			t.Errorf("pprof goroutine: %d", r.status)
		}
		// Admin routes are not on the public listener.
		if r := h.do(t, "POST", h.base+"/admin/reload", "", "Authorization", "Bearer s3cret"); r.status != 404 {
			t.Errorf("public reload: %d", r.status)
		}
	})
	t.Run("reload fails", func(t *testing.T) {
		h := start(t, server.Config{AdminToken: "t"}, &servertest.Backend{ReloadErr: errors.New(`cannot load model "m.json": tree 3: bad`)})
		if r := h.do(t, "POST", h.admin+"/admin/reload", "", "Authorization", "Bearer t"); r.status != 500 || r.code() != server.CodeReloadFailed || !bytes.Contains(r.body, []byte("m.json")) {
			t.Errorf("failed reload: %d %s", r.status, r.body)
		}
	})
}

// blockingBackend holds Feedback until released, to have a request in flight.
type blockingBackend struct {
	servertest.Backend
	entered, release chan struct{}
}

func (b *blockingBackend) Feedback(fb *server.Feedback) error {
	close(b.entered)
	<-b.release
	return b.Backend.Feedback(fb)
}

func TestShutdownFinishesInFlight(t *testing.T) {
	b := &blockingBackend{entered: make(chan struct{}), release: make(chan struct{})}
	srv, err := server.New(server.Config{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}, b)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	got := make(chan reply, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/v1/feedback", "application/json",
			strings.NewReader(`{"customer_id":"c","action_id":"app-tour","outcome":"click"}`))
		if err != nil {
			got <- reply{status: -1, body: []byte(err.Error())}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- reply{status: resp.StatusCode, body: body}
	}()
	<-b.entered
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	if err := <-served; err != nil { // Serve returns once the listener closes
		t.Fatalf("serve: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepts after shutdown began")
	}
	close(b.release)
	if r := <-got; r.status != 200 {
		t.Errorf("in-flight feedback: %d %s", r.status, r.body)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if n := len(b.Records()); n != 1 {
		t.Errorf("recorded %d feedback events, want 1", n)
	}
}

func TestShutdownDeadline(t *testing.T) {
	b := &blockingBackend{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(b.release)
	srv, err := server.New(server.Config{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}, b)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	go http.Post("http://"+ln.Addr().String()+"/v1/feedback", "application/json",
		strings.NewReader(`{"customer_id":"c","action_id":"app-tour","outcome":"click"}`))
	<-b.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already past its deadline: Shutdown must not wait for the stuck request
	if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("shutdown with a stuck request = %v, want context.Canceled", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []server.Config{{MaxBodyBytes: -1}, {ReadTimeout: -time.Second}, {MaxHeaderBytes: 100}} {
		if _, err := server.New(cfg, &servertest.Backend{}); err == nil || !strings.HasPrefix(err.Error(), "cannot configure server") {
			t.Errorf("New(%+v) = %v, want a configuration error", cfg, err)
		}
	}
	if _, err := server.New(server.Config{}, nil); err == nil {
		t.Error("New with nil backend succeeded")
	}
}

func TestConnsPerIPLimit(t *testing.T) {
	h := start(t, server.Config{MaxConnsPerIP: 2}, &servertest.Backend{})
	addr := strings.TrimPrefix(h.base, "http://")
	get := func(c net.Conn) (*http.Response, error) {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			if rerr != nil || !json.Valid(b) {
				return resp, fmt.Errorf("body %q: %v", b, rerr)
			}
		}
		return resp, err
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if resp, err := get(c); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := get(c)
	if err != nil || resp.StatusCode != 429 {
		t.Fatalf("third connection: %v %v, want 429", resp, err)
	}
	// A slot freed by a client that leaves is given back.
	held[0].Close()
	held = held[1:]
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := get(c)
		c.Close()
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if i == 200 {
			t.Fatal("the freed slot was never given back")
		}
		time.Sleep(50 * time.Millisecond) // wait for the server to see the close
	}
	// Read the metrics directly: one more connection could itself be refused.
	m := string(h.srv.Metrics().WritePrometheus(nil))
	if !strings.Contains(m, "nba_http_conns_refused_per_ip_total ") || strings.Contains(m, "nba_http_conns_refused_per_ip_total 0\n") {
		t.Errorf("refusal not counted:\n%s", m)
	}
}

func TestHeaderTooLarge(t *testing.T) {
	h := start(t, server.Config{MaxHeaderBytes: 2048}, &servertest.Backend{})
	r := h.do(t, "GET", h.base+"/healthz", "", "X-Padding", strings.Repeat("p", 4096))
	if r.status != 431 || r.code() != server.CodeHeaderTooLarge {
		t.Errorf("got %d %s, want 431 header_too_large", r.status, r.body)
	}
	if r := h.do(t, "GET", h.base+"/healthz", ""); r.status != 200 {
		t.Errorf("server not serving after the large header: %d", r.status)
	}
}

func TestBatchFailsWholeWhenNotReady(t *testing.T) {
	b := &servertest.Backend{}
	b.NotReady.Store(true)
	h := start(t, server.Config{}, b)
	r := h.do(t, "POST", h.base+"/v1/decide/batch", `{"requests":[{"customer_id":"a","channel":"web"},{"customer_id":"b","channel":"web"}]}`)
	if r.status != 503 || r.code() != server.CodeNotReady {
		t.Errorf("got %d %s, want 503 not_ready", r.status, r.body)
	}
}

func TestRegisterFlags(t *testing.T) {
	var cfg server.Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-http.maxBodyBytes=1024", "-http.readTimeout=250ms"}); err != nil {
		t.Fatal(err)
	}
	if cfg.MaxBodyBytes != 1024 || cfg.ReadTimeout != 250*time.Millisecond || cfg.MaxBatch != 1000 || cfg.IdleTimeout != time.Minute {
		t.Errorf("config after flags: %+v", cfg)
	}
	if f := fs.Lookup("http.maxConnsPerIP"); f == nil || f.DefValue != "1024" {
		t.Errorf("http.maxConnsPerIP flag: %+v", f)
	}
}

// Regression: the admin listener answered any Host, so a page whose name
// resolves to 127.0.0.1 (DNS rebinding) could read /admin/status and pprof
// from the operator's browser.
func TestAdminRefusesForeignHosts(t *testing.T) {
	h := start(t, server.Config{AdminToken: "s3cret", AdminAllowedHosts: []string{"nba-admin.internal", "Ops.Example:9000"}}, &servertest.Backend{})
	port := h.admin[strings.LastIndexByte(h.admin, ':'):]
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1" + port, true},
		{"localhost" + port, true},
		{"LOCALHOST.", true},
		{"127.0.0.2", true},
		{"[::1]" + port, true},
		{"nba-admin.internal" + port, true},
		{"ops.example", true},
		{"attacker.example" + port, false},
		{"attacker.example", false},
		{"localhost.attacker.example", false},
		{"127.0.0.1.nip.io" + port, false},
		{"10.0.0.5" + port, false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			for _, path := range []string{"/admin/status", "/debug/pprof/", "/healthz"} {
				r := h.do(t, "GET", h.admin+path, "", "Host", tc.host)
				if tc.ok && r.status != http.StatusOK {
					t.Errorf("GET %s as %s: %d %s, want 200", path, tc.host, r.status, r.body)
				}
				if !tc.ok && (r.status != http.StatusForbidden || r.code() != server.CodeHostNotAllowed) {
					t.Errorf("GET %s as %s: %d %s, want 403 %s", path, tc.host, r.status, r.body, server.CodeHostNotAllowed)
				}
			}
		})
	}
	// Not even a right token passes under a foreign Host.
	if r := h.do(t, "POST", h.admin+"/admin/reload", "", "Authorization", "Bearer s3cret", "Host", "attacker.example"); r.status != http.StatusForbidden || h.backend.Reloads() != 0 {
		t.Errorf("reload as attacker.example: %d, %d reloads", r.status, h.backend.Reloads())
	}
	// The public API is for any Host: callers reach it by service names.
	if r := h.do(t, "GET", h.base+"/healthz", "", "Host", "attacker.example"); r.status != http.StatusOK {
		t.Errorf("public /healthz as attacker.example: %d", r.status)
	}
	// "*" allows any.
	any := start(t, server.Config{AdminAllowedHosts: []string{"*"}}, &servertest.Backend{})
	if r := any.do(t, "GET", any.admin+"/admin/status", "", "Host", "attacker.example"); r.status != http.StatusOK {
		t.Errorf("with *: %d", r.status)
	}
}

func TestAdminAllowedHostsFlag(t *testing.T) {
	var c server.Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-admin.allowedHosts", "a.example, b.example:81,,"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.AdminAllowedHosts, "|"); got != "a.example|b.example:81" {
		t.Errorf("AdminAllowedHosts = %q", got)
	}
}

// Regression: fasthttp's parse-error log lines quoted the request line and
// header values despite SecureErrorLogMessage: a NUL in a customer path
// logged the id, a NUL after a bearer token logged the token.
func TestFastHTTPLogsAreRedacted(t *testing.T) {
	h := start(t, server.Config{AdminToken: "s3cretTok"}, &servertest.Backend{})
	send := func(base, req string) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.WriteString(conn, req)
		_, _ = io.ReadAll(conn)
	}
	send(h.base, "GET /v1/customers/custSecret1\x00 HTTP/1.1\r\nHost: a\r\n\r\n")
	send(h.base, "GET /v1/customers/custSecret2 HTTP/1.1 x\r\nHost: a\r\n\r\n")
	send(h.base, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Id: valSecret3\x00\r\n\r\n")
	send(h.base, "GET /healthz HTTP/1.1\r\nHost: a\r\nkeySecret4\r\n\r\n")
	send(h.admin, "POST /admin/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s3cretTok\x00\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(h.logs.String(), "error when serving connection") < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "error when reading request headers"); n < 5 {
		t.Errorf("%d parse errors logged, want 5 (redacted, not dropped):\n%s", n, logs)
	}
	for _, secret := range []string{"custSecret1", "custSecret2", "valSecret3", "keySecret4", "s3cretTok"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q:\n%s", secret, logs)
		}
	}
}

// failingCustomers fails every customer lookup with a plain error (500).
type failingCustomers struct{ servertest.Backend }

func (*failingCustomers) AppendCustomer([]byte, string) ([]byte, error) {
	return nil, errors.New("cannot read state: i/o error")
}

// Regression: a 500 on GET /v1/customers/{id} logged the request path,
// which is the customer id.
func TestBackendErrorLogHasNoCustomerID(t *testing.T) {
	h := start(t, server.Config{}, &failingCustomers{})
	if r := h.do(t, "GET", h.base+"/v1/customers/custSecret9", ""); r.status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", r.status)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "backend error") || !strings.Contains(logs, "/v1/customers/{id}") || strings.Contains(logs, "custSecret9") {
		t.Errorf("want the error logged under /v1/customers/{id} without the id:\n%s", logs)
	}
}
