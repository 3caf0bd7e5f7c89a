package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"nba/nba/server"
	"nba/nba/server/servertest"
)

// scripted decides by a table of customer ids: each customer's candidates
// as (action, stage) pairs and the propensities of the actions given,
// best first. It records the requests.
type scripted struct {
	*servertest.Backend
	decisions map[string]scriptedDecision
	ids       []string
	gate      chan struct{} // when not nil, each Decide waits for a value

	mu   sync.Mutex
	reqs []server.DecideRequest
}

type scriptedDecision struct {
	cands    [][2]string // action, stage
	given    []float64   // propensities of the actions given (the chosen candidates, in order)
	control  bool
	stopped  bool
	failWith error
}

func (s *scripted) FirstCustomerIDs(n int) []string { return s.ids[:min(n, len(s.ids))] }

func (s *scripted) Decide(req *server.DecideRequest, resp *server.DecideResponse) error {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	r := *req
	r.Context = nil
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	d := s.decisions[req.CustomerID]
	if d.failWith != nil {
		return d.failWith
	}
	resp.Control, resp.Stopped = d.control, d.stopped
	k := 0
	for _, c := range d.cands {
		resp.Candidates = append(resp.Candidates, server.Candidate{ID: c[0], Stage: c[1], Selected: c[1] == server.StageChosen})
		if c[1] == server.StageChosen && !d.control {
			resp.Actions = append(resp.Actions, server.Action{ID: c[0], Propensity: d.given[k]})
			k++
		}
	}
	return nil
}

// TestFunnelCounts: per action, the customers each stage removed and
// those who passed it (and every earlier one), the chosen and first
// places; per customer, no action (control, stopped or nothing left) and
// the best propensity's bin.
func TestFunnelCounts(t *testing.T) {
	const (
		pl = server.StagePlacement
		el = server.StageEligibility
		cp = server.StageContactPolicy
		ho = server.StageHoldout
		rk = server.StageRank
		ch = server.StageChosen
	)
	b := &scripted{decisions: map[string]scriptedDecision{
		"c1": {cands: [][2]string{{"a", ch}, {"b", rk}, {"c", el}}, given: []float64{0.42}},
		"c2": {cands: [][2]string{{"a", cp}, {"b", ch}, {"c", ch}}, given: []float64{0.999, 0.5}},
		"c3": {cands: [][2]string{{"a", ho}, {"b", ho}, {"c", pl}}, control: true},
		"c4": {stopped: true},
		"c5": {cands: [][2]string{{"a", el}, {"b", ch}, {"c", el}}, given: []float64{1}},
		"c6": {cands: [][2]string{{"a", rk}, {"b", ch}, {"c", el}}, given: []float64{0}},
	}, ids: []string{"c1", "c2", "c3", "c4", "c5", "c6"}}
	q := server.FunnelQuery{Channel: "web", N: 6, At: time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC)}
	var progress []int
	res, err := server.Funnel(context.Background(), b, b.ids, q, func(n int) { progress = append(progress, n) })
	if err != nil {
		t.Fatal(err)
	}
	stage := func(s string) int {
		for i, x := range server.FunnelStages {
			if x == s {
				return i
			}
		}
		t.Fatalf("no stage %s", s)
		return 0
	}
	counts := func(m map[string]int) []int {
		out := make([]int, len(server.FunnelStages))
		for s, n := range m {
			out[stage(s)] = n
		}
		return out
	}
	passed := func(considered int, removed []int) []int {
		out := make([]int, len(removed))
		for i := range removed {
			considered -= removed[i]
			out[i] = considered
		}
		return out
	}
	want := map[string]server.FunnelAction{
		"a": {ID: "a", Considered: 5, Removed: counts(map[string]int{cp: 1, ho: 1, el: 1, rk: 1}), Chosen: 1, First: 1},
		"b": {ID: "b", Considered: 5, Removed: counts(map[string]int{rk: 1, ho: 1}), Chosen: 3, First: 3},
		"c": {ID: "c", Considered: 5, Removed: counts(map[string]int{el: 3, pl: 1}), Chosen: 1, First: 0},
	}
	if len(res.Actions) != 3 {
		t.Fatalf("actions %+v", res.Actions)
	}
	for i, id := range []string{"a", "b", "c"} {
		t.Run(id, func(t *testing.T) {
			w := want[id]
			w.Passed = passed(w.Considered, w.Removed)
			if !reflect.DeepEqual(res.Actions[i], w) {
				t.Errorf("got  %+v\nwant %+v", res.Actions[i], w)
			}
		})
	}
	if res.Customers != 6 || res.NoAction != 2 || res.Control != 1 || res.Stopped != 1 {
		t.Errorf("customers %d, no action %d, control %d, stopped %d; want 6, 2, 1, 1", res.Customers, res.NoAction, res.Control, res.Stopped)
	}
	// c1 0.42 → bin 42; c2 best 0.999 → 99; c5 1 → the last bin; c6 0 → 0.
	bins := map[int]int{}
	for i, n := range res.BestPropensity {
		if n > 0 {
			bins[i] = n
		}
	}
	if !reflect.DeepEqual(bins, map[int]int{0: 1, 42: 1, 99: 1, 100: 1}) || len(res.BestPropensity) != 101 {
		t.Errorf("best propensity bins %v (of %d)", bins, len(res.BestPropensity))
	}
	if !reflect.DeepEqual(progress, []int{6}) {
		t.Errorf("progress %v, want [6]", progress)
	}
	// Every decision an explained dry run as of the query's time, its
	// exploration seeded by the customer id.
	for _, r := range b.reqs {
		if !r.DryRun || !r.Explain || !r.At.Equal(q.At) || r.Channel != "web" || r.Limit != 1 || r.Seed != server.FunnelSeed(r.CustomerID) || r.Seed == 0 {
			t.Errorf("request %+v", r)
		}
	}
}

func TestFunnelSeed(t *testing.T) {
	seen := map[uint64]string{}
	for i := range 1000 {
		id := fmt.Sprintf("c%05d", i)
		s := server.FunnelSeed(id)
		if s == 0 || seen[s] != "" || s != server.FunnelSeed(id) {
			t.Fatalf("FunnelSeed(%s) = %d (seen for %q)", id, s, seen[s])
		}
		seen[s] = id
	}
}

func TestFunnelStopsOnErrorAndCancel(t *testing.T) {
	bad := server.Invalidf("channel %q is not configured", "nope")
	b := &scripted{decisions: map[string]scriptedDecision{"c2": {failWith: bad}}, ids: []string{"c1", "c2"}}
	if _, err := server.Funnel(context.Background(), b, b.ids, server.FunnelQuery{Channel: "nope"}, nil); !errors.Is(err, bad) {
		t.Errorf("error %v, want the decision's", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := server.Funnel(ctx, b, b.ids, server.FunnelQuery{Channel: "web"}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

type funnelStatus struct {
	State  string               `json:"state"`
	Done   int                  `json:"done"`
	Total  int                  `json:"total"`
	Error  string               `json:"error"`
	Query  server.FunnelQuery   `json:"query"`
	Result *server.FunnelResult `json:"result"`
}

// TestFunnelAPI: a funnel runs in the background while the admin listener
// answers; one runs at a time (the same parameters join it, others are
// refused 409); it can be canceled; the token is required; bad requests
// are refused.
func TestFunnelAPI(t *testing.T) {
	ids := make([]string, 600)
	decisions := map[string]scriptedDecision{}
	for i := range ids {
		ids[i] = fmt.Sprintf("c%05d", i)
		decisions[ids[i]] = scriptedDecision{cands: [][2]string{{"a", server.StageChosen}}, given: []float64{0.3}}
	}
	b := &scripted{Backend: &servertest.Backend{}, decisions: decisions, ids: ids, gate: make(chan struct{})}
	h := start(t, server.Config{AdminToken: "tok"}, b)
	auth := []string{"Authorization", "Bearer tok"}
	status := func(r reply) funnelStatus {
		t.Helper()
		var s funnelStatus
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
		return s
	}
	if r := h.do(t, "GET", h.admin+"/ui/api/funnel", ""); r.status != http.StatusUnauthorized {
		t.Errorf("without the token: %d", r.status)
	}
	if s := status(h.do(t, "GET", h.admin+"/ui/api/funnel", "", auth...)); s.State != "none" {
		t.Errorf("before any: %+v", s)
	}
	for _, bad := range []string{`{}`, `{"channel":"web","n":100001}`, `{"channel":"web","n":-1}`, `{"channel":"web","at":"tomorrow"}`, `{"channel":"web","extra":1}`, `not json`} {
		if r := h.do(t, "POST", h.admin+"/ui/api/funnel", bad, auth...); r.status != http.StatusBadRequest {
			t.Errorf("POST %s: %v", bad, r.status)
		}
	}
	req := `{"channel":"web","n":500,"at":"2026-12-24T09:00:00Z"}`
	r := h.do(t, "POST", h.admin+"/ui/api/funnel", req, auth...)
	if s := status(r); r.status != http.StatusAccepted || s.State != "running" || s.Total != 500 {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	for range 300 {
		b.gate <- struct{}{}
	}
	// While it runs (blocked in a decision): the listener answers, the
	// progress shows, the same request joins, another is refused.
	if r := h.do(t, "GET", h.admin+"/admin/status", ""); r.status != http.StatusOK {
		t.Errorf("admin status while a funnel runs: %d", r.status)
	}
	if s := status(h.do(t, "GET", h.admin+"/ui/api/funnel", "", auth...)); s.State != "running" || s.Done < 256 {
		t.Errorf("progress after 300 decisions: %+v", s)
	}
	if r := h.do(t, "POST", h.admin+"/ui/api/funnel", req, auth...); r.status != http.StatusAccepted || status(r).State != "running" {
		t.Errorf("the same again: %d %s", r.status, r.body)
	}
	if r := h.do(t, "POST", h.admin+"/ui/api/funnel", `{"channel":"email"}`, auth...); r.status != http.StatusConflict || r.code() != server.CodeConflict {
		t.Errorf("another while one runs: %d %s", r.status, r.body)
	}
	h.do(t, "DELETE", h.admin+"/ui/api/funnel", "", auth...)
	close(b.gate) // let the blocked decision return
	var s funnelStatus
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s = status(h.do(t, "GET", h.admin+"/ui/api/funnel", "", auth...)); s.State != "running" || time.Now().After(deadline) {
			break
		}
	}
	if s.State != "canceled" || s.Result != nil {
		t.Errorf("after DELETE: %+v", s)
	}
	// A whole run, on fewer customers than asked (the snapshot's all).
	r = h.do(t, "POST", h.admin+"/ui/api/funnel", `{"channel":"web","n":100000}`, auth...)
	if r.status != http.StatusAccepted {
		t.Fatalf("second start: %d %s", r.status, r.body)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s = status(h.do(t, "GET", h.admin+"/ui/api/funnel", "", auth...)); s.State != "running" || time.Now().After(deadline) {
			break
		}
	}
	if s.State != "done" || s.Result == nil || s.Result.Customers != 600 || s.Done != 600 || s.Result.Actions[0].First != 600 || s.Query.At.IsZero() {
		t.Errorf("done: %+v", s)
	}
}

// TestFunnelAPIWithoutSnapshot: a backend that cannot list customers has
// no funnel.
func TestFunnelAPIWithoutSnapshot(t *testing.T) {
	h := start(t, server.Config{}, &servertest.Backend{})
	if r := h.do(t, "POST", h.admin+"/ui/api/funnel", `{"channel":"web"}`); r.status != http.StatusNotFound {
		t.Errorf("%d %s", r.status, r.body)
	}
}

// TestDashboardAPI: the dashboard reads the decide latency and rate from
// the server's metrics, the actions decided from nba_decisions_total, and
// the decision-log report it is given.
func TestDashboardAPI(t *testing.T) {
	calls := 0
	cfg := server.Config{Studio: server.StudioConfig{DecisionLog: func(dst []byte) ([]byte, error) {
		calls++
		return append(dst, `{"uplift":[{"action":"*"}]}`...), nil
	}}}
	b := &servertest.Backend{}
	h := start(t, cfg, b)
	dec, err := h.srv.Metrics().NewCounterVec("nba_decisions_total", "test", []string{"action", "channel"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	dec.With("a", "web").Add(3)
	dec.With("b", "email").Add(1)
	dec.With(`q"x\y`, "web").Add(2) // escaped in the metrics' text
	for range 5 {
		h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"c1","channel":"web"}`)
	}
	time.Sleep(20 * time.Millisecond)
	var d struct {
		Points []struct {
			Rate  float64  `json:"rate"`
			P50MS *float64 `json:"p50_ms"`
			P99MS *float64 `json:"p99_ms"`
		} `json:"points"`
		Decisions []struct {
			Action, Channel string
			Count           int
		} `json:"decisions"`
		DecisionLog struct {
			Uplift []struct{ Action string } `json:"uplift"`
		} `json:"decision_log"`
	}
	for range 2 {
		r := h.do(t, "GET", h.admin+"/ui/api/dashboard", "")
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if err := json.Unmarshal(r.body, &d); err != nil {
			t.Fatal(err)
		}
	}
	// The sampler read at start, before the decisions; each dashboard
	// adds a reading taken then: one interval holds the 5 decisions.
	found := false
	for _, p := range d.Points {
		found = found || p.Rate > 0 && p.P50MS != nil && *p.P99MS >= *p.P50MS
	}
	if !found {
		t.Errorf("no interval with the 5 decisions: %+v", d.Points)
	}
	if fmt.Sprint(d.Decisions) != `[{a web 3} {b email 1} {q"x\y web 2}]` {
		t.Errorf("decisions %v", d.Decisions)
	}
	if len(d.DecisionLog.Uplift) != 1 || calls != 1 {
		t.Errorf("decision log %+v after %d reads (want 1: the report is kept)", d.DecisionLog, calls)
	}
}

func TestQuantile(t *testing.T) {
	upper := []float64{0.001, 0.002, 0.005}
	f := func(q float64, buckets []uint64, want float64) {
		t.Helper()
		got := server.Quantile(q, upper, buckets)
		if !(math.Abs(got-want) < 1e-12 || math.IsNaN(want) && math.IsNaN(got)) {
			t.Errorf("quantile(%v, %v) = %v, want %v", q, buckets, got, want)
		}
	}
	f(0.5, []uint64{0, 0, 0, 0}, math.NaN())
	f(0.5, []uint64{10, 0, 0, 0}, 0.0005)
	f(0.5, []uint64{0, 10, 0, 0}, 0.0015)
	f(0.9, []uint64{5, 5, 0, 0}, 0.0018)
	f(0.99, []uint64{0, 0, 0, 4}, 0.005) // +Inf: the last bound
	f(1, []uint64{1, 0, 1, 0}, 0.005)
}

// TestFunnelAPIFailure: a funnel whose decisions fail ends "failed" with
// the backend's message (an unknown channel).
func TestFunnelAPIFailure(t *testing.T) {
	bad := server.Invalidf("channel %q is not configured", "nope")
	b := &scripted{Backend: &servertest.Backend{}, decisions: map[string]scriptedDecision{"c1": {failWith: bad}}, ids: []string{"c1"}}
	h := start(t, server.Config{}, b)
	if r := h.do(t, "POST", h.admin+"/ui/api/funnel", `{"channel":"nope"}`); r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var s funnelStatus
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r := h.do(t, "GET", h.admin+"/ui/api/funnel", "")
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatal(err)
		}
		if s.State != "running" || time.Now().After(deadline) {
			break
		}
	}
	if s.State != "failed" || s.Error != bad.Message {
		t.Errorf("%+v", s)
	}
}

// TestShutdownEndsFunnel: Shutdown cancels a running funnel and returns
// only once it has stopped deciding (the backend is closed next).
func TestShutdownEndsFunnel(t *testing.T) {
	ids := make([]string, server.MaxFunnelN)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%06d", i)
	}
	b := &scripted{Backend: &servertest.Backend{}, ids: ids, gate: make(chan struct{})}
	go func() {
		for {
			select {
			case b.gate <- struct{}{}:
				time.Sleep(10 * time.Microsecond)
			case <-time.After(5 * time.Second):
				return
			}
		}
	}()
	srv, err := server.New(server.Config{}, b)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeAdmin(ln)
	resp, err := http.Post("http://"+ln.Addr().String()+"/ui/api/funnel", "application/json", strings.NewReader(`{"channel":"web","n":100000}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	time.Sleep(50 * time.Millisecond)
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	n := len(b.reqs)
	b.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	if n == 0 || n == len(ids) || len(b.reqs) != n {
		t.Errorf("decisions: %d at shutdown, %d after, of %d", n, len(b.reqs), len(ids))
	}
}

// TestDashboardDecisionLogStates: without a decision log the dashboard
// answers null; a failing one, its error.
func TestDashboardDecisionLogStates(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func([]byte) ([]byte, error)
		want string
	}{
		{"off", nil, `"decision_log":null`},
		{"failing", func(dst []byte) ([]byte, error) { return dst, errors.New("too big") }, `"decision_log_error":"cannot read the decision log: too big"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, server.Config{Studio: server.StudioConfig{DecisionLog: tc.f}}, &servertest.Backend{})
			r := h.do(t, "GET", h.admin+"/ui/api/dashboard", "")
			if r.status != http.StatusOK || !strings.Contains(string(r.body), tc.want) {
				t.Errorf("%d %s; want %s", r.status, r.body, tc.want)
			}
		})
	}
}
