package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The studio's population funnel and dashboard (pages /ui/funnel and
// /ui/dashboard) read these routes of the admin listener, with the admin
// token as bearer when one is set:
//
//	POST   /ui/api/funnel     start a funnel: {"channel","placement"?,"n"?,"at"?,"limit"?}; 202 and its status
//	GET    /ui/api/funnel     the status of the running or last funnel, with its result once done
//	DELETE /ui/api/funnel     cancel the running funnel
//	GET    /ui/api/dashboard  throughput, latency, decisions, learning and uplift (see dashboard)
//
// A funnel decides in one background goroutine, so the admin listener keeps
// answering (the page polls GET for progress); one runs at a time: a start
// with other parameters while one runs is answered 409 conflict, the same
// parameters join the running one.

// Funnel sizes: the sample a funnel decides when the request names none,
// and the most it may name (a bound on the time and CPU one run takes:
// about a second per 10,000 customers on one core).
const (
	DefaultFunnelN = 10000
	MaxFunnelN     = 100000
)

// funnelBins is the number of bins of FunnelResult.BestPropensity: one per
// 0.01 of propensity, and one for 1 and above.
const funnelBins = 101

// FunnelStages are the stages where a decision removes a candidate, in the
// order the decision runs them (the Stage* names but StageChosen).
var FunnelStages = []string{StagePlacement, StageSchedule, StageJourney, StageEligibility, StageApplicability,
	StageSuitability, StageContactPolicy, StageExclusion, StageHoldout, StageRank}

// FunnelQuery is one population funnel: an explained dry-run decision on
// Channel (and Placement), as of At, for each of the first N customers of
// the served snapshot in the snapshot's order.
type FunnelQuery struct {
	Channel   string    `json:"channel"`
	Placement string    `json:"placement,omitempty"`
	N         int       `json:"n"`
	Limit     int       `json:"limit"` // actions per decision; 0 means 1
	At        time.Time `json:"at"`    // zero: now, resolved when the funnel starts
}

// FunnelAction is one action's funnel: of the customers whose decision
// considered it, how many each stage removed, how many passed each stage
// (and every one before it), how many were given it and how many got it
// in first place.
type FunnelAction struct {
	ID         string `json:"id"`
	Considered int    `json:"considered"`
	Removed    []int  `json:"removed"` // by FunnelStages
	Passed     []int  `json:"passed"`  // by FunnelStages
	Chosen     int    `json:"chosen"`
	First      int    `json:"first"`
}

// FunnelResult counts what a funnel's decisions did.
type FunnelResult struct {
	Query     FunnelQuery `json:"query"`
	Customers int         `json:"customers"` // decided: N, or fewer when the snapshot has fewer
	Stages    []string    `json:"stages"`    // FunnelStages
	// NoAction counts the customers given no action: in a control group,
	// stopped by a channel limit, or left with no candidate.
	NoAction int `json:"no_action"`
	Control  int `json:"control"`
	Stopped  int `json:"stopped"`
	// BestPropensity[i] counts the customers given an action whose best
	// propensity p (the highest of their actions') has floor(100·p) = i;
	// the last bin holds p ≥ 1. So the customers left with only actions
	// below a threshold k/100 are NoAction plus the bins below k.
	BestPropensity []int          `json:"best_propensity"`
	Actions        []FunnelAction `json:"actions"` // in the order the decisions list candidates
}

// Decider decides one request; Backend is one.
type Decider interface {
	Decide(req *DecideRequest, resp *DecideResponse) error
}

// FunnelSeed is the exploration seed of customer's decision in a funnel:
// a hash of the id, so that a funnel over the same customers, bundle and
// learning state counts the same every time and in every process (the
// studio and "nba funnel").
func FunnelSeed(customer string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(customer))
	if s := h.Sum64(); s != 0 {
		return s
	}
	return 1
}

// Funnel decides q for each of ids (an explained dry run, exploration
// seeded by FunnelSeed) and counts the decisions. It calls progress, when
// not nil, with the number decided so far every 256 customers and at the
// end. It stops with ctx's error when ctx is done (looked at every 16
// customers), and with the first
// decision's error (an unknown channel, say). It is what both the studio's
// funnel and "nba funnel" run, so the two count alike.
func Funnel(ctx context.Context, d Decider, ids []string, q FunnelQuery, progress func(done int)) (*FunnelResult, error) {
	stage := make(map[string]int, len(FunnelStages))
	for i, s := range FunnelStages {
		stage[s] = i
	}
	res := &FunnelResult{Query: q, Stages: FunnelStages, BestPropensity: make([]int, funnelBins)}
	index := map[string]int{}
	var req DecideRequest
	var resp DecideResponse
	for n, id := range ids {
		if n%16 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if n%256 == 0 && n > 0 && progress != nil {
			progress(n)
		}
		req = DecideRequest{DecisionID: "funnel", CustomerID: id, Channel: q.Channel, Placement: q.Placement, Limit: max(1, q.Limit),
			Context: req.Context[:0], Explain: true, DryRun: true, At: q.At, Seed: FunnelSeed(id)}
		resp.reset()
		if err := d.Decide(&req, &resp); err != nil {
			return nil, fmt.Errorf("cannot decide for the funnel (customer %d of the sample): %w", n+1, err)
		}
		res.Customers++
		if resp.Control {
			res.Control++
		}
		if resp.Stopped {
			res.Stopped++
		}
		if len(resp.Actions) == 0 {
			res.NoAction++
		} else {
			best := resp.Actions[0].Propensity
			for _, a := range resp.Actions[1:] {
				best = max(best, a.Propensity)
			}
			bin := funnelBins - 1
			if best < 1 {
				bin = max(0, int(math.Floor(best*100)))
			}
			res.BestPropensity[bin]++
		}
		for i := range resp.Candidates {
			c := &resp.Candidates[i]
			k, ok := index[c.ID]
			if !ok {
				k = len(res.Actions)
				id := strings.Clone(c.ID) // the backend's strings live until its next Decide
				index[id] = k
				res.Actions = append(res.Actions, FunnelAction{ID: id, Removed: make([]int, len(FunnelStages)), Passed: make([]int, len(FunnelStages))})
			}
			a := &res.Actions[k]
			a.Considered++
			if c.Selected {
				a.Chosen++
			} else if s, ok := stage[c.Stage]; ok {
				a.Removed[s]++
			}
		}
		if len(resp.Actions) > 0 {
			if k, ok := index[resp.Actions[0].ID]; ok {
				res.Actions[k].First++
			}
		}
	}
	for i := range res.Actions {
		a := &res.Actions[i]
		left := a.Considered
		for s := range FunnelStages {
			left -= a.Removed[s]
			a.Passed[s] = left
		}
	}
	if progress != nil {
		progress(len(ids))
	}
	return res, nil
}

// funnelRun is the running or last funnel.
type funnelRun struct {
	q      FunnelQuery
	total  int
	done   atomic.Int64
	cancel context.CancelFunc
	start  time.Time

	// Set once it ends, under studio.mu.
	state  string // "running", "done", "canceled", "failed"
	err    string
	took   time.Duration
	result *FunnelResult
}

// studioState is the server's state for the funnel and the dashboard.
type studioState struct {
	mu      sync.Mutex
	funnel  *funnelRun
	running sync.WaitGroup // the funnel's goroutine

	sampler samples

	// The last decision-log report, kept for reportTTL: the report reads
	// the whole log.
	reportMu   sync.Mutex
	report     []byte
	reportErr  error
	reportTime time.Time
}

// FunnelSample is what a Backend with a snapshot offers the funnel: the
// ids of its first n customers, in the snapshot's order (all of them when
// it has fewer). A Backend without it answers 404 on POST /ui/api/funnel.
type FunnelSample interface {
	FirstCustomerIDs(n int) []string
}

func (s *Server) funnelAPI(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodHead:
		s.writeJSON(ctx, http.StatusOK, s.funnelStatus())
	case fasthttp.MethodPost:
		s.startFunnel(ctx)
	case fasthttp.MethodDelete:
		s.studio.mu.Lock()
		if r := s.studio.funnel; r != nil && r.state == "running" {
			r.cancel()
		}
		s.studio.mu.Unlock()
		s.writeJSON(ctx, http.StatusOK, s.funnelStatus())
	default:
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, POST, DELETE")
		s.writeError(ctx, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed; use GET, POST or DELETE")
	}
}

func (s *Server) startFunnel(ctx *fasthttp.RequestCtx) {
	body, ok := s.body(ctx, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	var in struct {
		Channel   string `json:"channel"`
		Placement string `json:"placement"`
		N         int    `json:"n"`
		Limit     int    `json:"limit"`
		At        string `json:"at"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.writeError(ctx, http.StatusBadRequest, CodeMalformedJSON, "cannot read the funnel request: "+err.Error())
		return
	}
	q := FunnelQuery{Channel: in.Channel, Placement: in.Placement, N: in.N, Limit: in.Limit}
	switch {
	case q.Channel == "" || len(q.Channel) > s.cfg.MaxIDBytes || len(q.Placement) > s.cfg.MaxIDBytes:
		s.writeError(ctx, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("channel is required; channel and placement at most %d bytes", s.cfg.MaxIDBytes))
		return
	case q.N < 0 || q.N > MaxFunnelN:
		s.writeError(ctx, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("n is %d, want 1 to %d (0: %d)", q.N, MaxFunnelN, DefaultFunnelN))
		return
	case q.Limit < 0 || q.Limit > s.cfg.MaxLimit:
		s.writeError(ctx, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("limit is %d, want 0 to %d", q.Limit, s.cfg.MaxLimit))
		return
	}
	if q.N == 0 {
		q.N = DefaultFunnelN
	}
	q.Limit = max(1, q.Limit)
	if in.At != "" {
		t, err := time.Parse(time.RFC3339Nano, in.At)
		if err != nil || t.Before(s.cfg.MinTime) || !t.Before(maxAt) {
			s.writeError(ctx, http.StatusBadRequest, CodeInvalidRequest, "at: want an RFC 3339 time such as 2026-12-24T09:00:00Z")
			return
		}
		q.At = t.UTC()
	}
	sc, ok := s.backend.(FunnelSample)
	if !ok {
		s.writeError(ctx, http.StatusNotFound, CodeNotFound, "this backend has no snapshot to sample customers from")
		return
	}
	s.studio.mu.Lock()
	if r := s.studio.funnel; r != nil && r.state == "running" {
		same := r.q.Channel == q.Channel && r.q.Placement == q.Placement && r.q.N == q.N && r.q.Limit == q.Limit && (in.At == "" || r.q.At.Equal(q.At))
		s.studio.mu.Unlock()
		if !same {
			s.writeError(ctx, http.StatusConflict, CodeConflict, "another funnel is running: cancel it or wait for it to end")
			return
		}
		s.writeJSON(ctx, http.StatusAccepted, s.funnelStatus())
		return
	}
	if q.At.IsZero() {
		q.At = time.Now().UTC().Truncate(time.Second)
	}
	ids := sc.FirstCustomerIDs(q.N)
	rctx, cancel := context.WithCancel(context.Background())
	r := &funnelRun{q: q, total: len(ids), cancel: cancel, start: time.Now(), state: "running"}
	s.studio.funnel = r
	s.studio.running.Add(1)
	s.studio.mu.Unlock()
	go func() {
		defer s.studio.running.Done()
		defer cancel()
		res, err := Funnel(rctx, s.backend, ids, q, func(n int) { r.done.Store(int64(n)) })
		s.studio.mu.Lock()
		defer s.studio.mu.Unlock()
		r.took = time.Since(r.start)
		switch {
		case err == nil:
			r.state, r.result = "done", res
		case rctx.Err() != nil:
			r.state = "canceled"
		default:
			r.state = "failed"
			if e := (*Error)(nil); errors.As(err, &e) {
				r.err = e.Message // an unknown channel, say
			} else {
				r.err = "the funnel's decisions failed"
				s.log.Error("funnel failed", "err", err.Error())
			}
		}
	}()
	s.writeJSON(ctx, http.StatusAccepted, s.funnelStatus())
}

// funnelStatus is the JSON of the running or last funnel:
// {"state","query","done","total","took_ms","error"?,"result"?}; state
// "none" before the first.
func (s *Server) funnelStatus() []byte {
	s.studio.mu.Lock()
	defer s.studio.mu.Unlock()
	r := s.studio.funnel
	if r == nil {
		return []byte(`{"state":"none"}`)
	}
	took := r.took
	if r.state == "running" {
		took = time.Since(r.start)
	}
	out := struct {
		State  string        `json:"state"`
		Query  FunnelQuery   `json:"query"`
		Done   int64         `json:"done"`
		Total  int           `json:"total"`
		TookMS int64         `json:"took_ms"`
		Error  string        `json:"error,omitempty"`
		Result *FunnelResult `json:"result,omitempty"`
	}{r.state, r.q, r.done.Load(), r.total, took.Milliseconds(), r.err, r.result}
	b, err := json.Marshal(out)
	if err != nil {
		return []byte(`{"state":"failed","error":"cannot encode the funnel"}`)
	}
	return b
}

// ---- dashboard ---------------------------------------------------------

// StudioConfig is what the studio's dashboard reads besides the Backend
// and the server's metrics.
type StudioConfig struct {
	// DecisionLog, when set, appends a JSON object about the decision log
	// to dst for the dashboard: "uplift", the rows "nba uplift -json"
	// prints, and "propensity", the mean propensity of the chosen actions
	// per action and minute. It reads the whole log, so the dashboard
	// keeps its answer for ReportTTL. Nil: the dashboard says the
	// decision log is off.
	DecisionLog func(dst []byte) ([]byte, error)
	// ReportTTL is how long the dashboard reuses a DecisionLog answer.
	// Default 10s.
	ReportTTL time.Duration
	// SampleEvery is how often the dashboard's sampler reads the
	// metrics. Default 5s.
	SampleEvery time.Duration
	// Samples is how many samples it keeps (the dashboard's window is
	// Samples × SampleEvery). Default 180 (15 minutes at 5s).
	Samples int
}

func (c *StudioConfig) sampleEvery() time.Duration {
	return cmp.Or(max(0, c.SampleEvery), 5*time.Second)
}
func (c *StudioConfig) samples() int             { return cmp.Or(max(0, c.Samples), 180) }
func (c *StudioConfig) reportTTL() time.Duration { return cmp.Or(max(0, c.ReportTTL), 10*time.Second) }

// sample is one reading of the server's metrics.
type sample struct {
	t        time.Time
	decides  uint64             // POST /v1/decide answered
	buckets  []uint64           // of its latency histogram, per bucket
	evidence map[string]float64 // online models' evidence per action
}

// samples is a ring of the last Samples readings. Safe for concurrent use.
type samples struct {
	mu    sync.Mutex
	ring  []sample
	next  int
	full  bool
	once  sync.Once
	stop  chan struct{}
	ended sync.WaitGroup
}

// startSampler starts reading the metrics every SampleEvery, once.
func (s *Server) startSampler() {
	sm := &s.studio.sampler
	sm.once.Do(func() {
		sm.mu.Lock()
		sm.ring = make([]sample, s.cfg.Studio.samples())
		sm.mu.Unlock()
		sm.stop = make(chan struct{})
		sm.ended.Add(1)
		go func() {
			defer sm.ended.Done()
			tick := time.NewTicker(s.cfg.Studio.sampleEvery())
			defer tick.Stop()
			for {
				sm.add(s.readSample())
				select {
				case <-sm.stop:
					return
				case <-tick.C:
				}
			}
		}()
	})
}

// stopSampler stops the sampler if it runs, and cancels a running funnel
// and waits for it to end: the backend may be closed next.
func (s *Server) stopSampler() {
	s.studio.mu.Lock()
	if r := s.studio.funnel; r != nil && r.state == "running" {
		r.cancel()
	}
	s.studio.mu.Unlock()
	s.studio.running.Wait()
	sm := &s.studio.sampler
	sm.once.Do(func() {}) // no start after a stop
	if sm.stop != nil {
		select {
		case <-sm.stop:
		default:
			close(sm.stop)
		}
		sm.ended.Wait()
	}
}

func (sm *samples) add(x sample) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if len(sm.ring) == 0 {
		return
	}
	sm.ring[sm.next] = x
	sm.next++
	if sm.next == len(sm.ring) {
		sm.next, sm.full = 0, true
	}
}

// list returns the samples oldest first.
func (sm *samples) list() []sample {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.full {
		return append(slices.Clone(sm.ring[sm.next:]), sm.ring[:sm.next]...)
	}
	return slices.Clone(sm.ring[:sm.next])
}

// readSample reads the metrics the dashboard plots.
func (s *Server) readSample() sample {
	h := s.latency[epDecide]
	x := sample{t: time.Now(), decides: h.Count(), buckets: h.AppendCounts(nil)}
	if b, err := s.backend.AppendStatus(nil); err == nil {
		var st struct {
			Learning struct {
				Models struct {
					Actions []struct {
						Action   string  `json:"action"`
						Evidence float64 `json:"evidence"`
					} `json:"actions"`
				} `json:"models"`
			} `json:"learning"`
		}
		if json.Unmarshal(b, &st) == nil && len(st.Learning.Models.Actions) > 0 {
			x.evidence = map[string]float64{}
			for _, a := range st.Learning.Models.Actions {
				x.evidence[a.Action] = a.Evidence
			}
		}
	}
	return x
}

// quantile returns the q-quantile of the observations counted in buckets
// (per bucket, the last +Inf) with upper bounds upper, interpolating
// linearly inside a bucket as Prometheus's histogram_quantile does; NaN
// when there is none. An observation in the +Inf bucket is taken as the
// last finite bound.
func quantile(q float64, upper []float64, buckets []uint64) float64 {
	var total uint64
	for _, c := range buckets {
		total += c
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range buckets {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			if i >= len(upper) {
				return upper[len(upper)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = upper[i-1]
			}
			return lo + (upper[i]-lo)*(rank-cum)/float64(c)
		}
		cum += float64(c)
	}
	return upper[len(upper)-1]
}

// dashPoint is one interval between two samples.
type dashPoint struct {
	T     time.Time `json:"t"` // the interval's end
	Rate  float64   `json:"rate"`
	P50MS *float64  `json:"p50_ms"` // null: no decision in the interval
	P90MS *float64  `json:"p90_ms"`
	P99MS *float64  `json:"p99_ms"`
}

// dashboard answers the dashboard's data:
//
//	{"now","sample_every_s","points":[{"t","rate","p50_ms","p90_ms","p99_ms"}],
//	 "decisions":[{"action","channel","count"}],
//	 "learning":[{"t","evidence":{action:n}}],
//	 "decision_log": <StudioConfig.DecisionLog's object> | null, "decision_log_error"?}
//
// The points are the intervals between the sampler's readings and a
// reading taken now (when the last is at least a second old); rate is
// POST /v1/decide answers per second.
func (s *Server) dashboard(ctx *fasthttp.RequestCtx) {
	list := s.studio.sampler.list()
	// And a reading taken now, unless the last sample is too recent for
	// its interval to say much (a rate over a few milliseconds).
	if now := s.readSample(); len(list) < 2 || now.t.Sub(list[len(list)-1].t) >= time.Second {
		list = append(list, now)
	}
	upper := s.latency[epDecide].Upper()
	out := struct {
		Now          time.Time       `json:"now"`
		SampleEvery  float64         `json:"sample_every_s"`
		Points       []dashPoint     `json:"points"`
		Decisions    []decisionCount `json:"decisions"`
		Learning     []learningPoint `json:"learning"`
		DecisionLog  json.RawMessage `json:"decision_log"`
		DecisionLogE string          `json:"decision_log_error,omitempty"`
	}{Now: list[len(list)-1].t.UTC(), SampleEvery: s.cfg.Studio.sampleEvery().Seconds(), Points: []dashPoint{}, Decisions: s.decisionCounts(), Learning: []learningPoint{}}
	ms := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		v = math.Round(v*1e6) / 1e3 // seconds to ms, µs precision
		return &v
	}
	delta := make([]uint64, len(upper)+1)
	for i := 1; i < len(list); i++ {
		a, b := list[i-1], list[i]
		dt := b.t.Sub(a.t).Seconds()
		if dt <= 0 || len(a.buckets) != len(delta) || len(b.buckets) != len(delta) {
			continue
		}
		for k := range delta {
			delta[k] = b.buckets[k] - a.buckets[k]
		}
		out.Points = append(out.Points, dashPoint{T: b.t.UTC(), Rate: float64(b.decides-a.decides) / dt,
			P50MS: ms(quantile(0.5, upper, delta)), P90MS: ms(quantile(0.9, upper, delta)), P99MS: ms(quantile(0.99, upper, delta))})
	}
	for _, x := range list {
		if x.evidence != nil {
			out.Learning = append(out.Learning, learningPoint{T: x.t.UTC(), Evidence: x.evidence})
		}
	}
	if f := s.cfg.Studio.DecisionLog; f != nil {
		rep, err := s.decisionLogReport(f)
		if err != nil {
			out.DecisionLogE = "cannot read the decision log: " + err.Error()
		} else {
			out.DecisionLog = rep
		}
	}
	if out.DecisionLog == nil {
		out.DecisionLog = json.RawMessage("null")
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	s.writeJSON(ctx, http.StatusOK, b)
}

type learningPoint struct {
	T        time.Time          `json:"t"`
	Evidence map[string]float64 `json:"evidence"`
}

type decisionCount struct {
	Action  string `json:"action"`
	Channel string `json:"channel"`
	Count   uint64 `json:"count"`
}

// decisionCounts reads nba_decisions_total (the actions decided, by action
// and channel) from the server's metrics, as /metrics writes them.
func (s *Server) decisionCounts() []decisionCount {
	out := []decisionCount{}
	text := s.cfg.Metrics.WritePrometheus(nil)
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		rest, ok := bytes.CutPrefix(line, []byte(`nba_decisions_total{action="`))
		if !ok {
			continue
		}
		action, rest, ok := cutLabelValue(rest)
		if !ok {
			continue
		}
		rest, ok = bytes.CutPrefix(rest, []byte(`,channel="`))
		if !ok {
			continue
		}
		channel, rest, ok := cutLabelValue(rest)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimPrefix(rest, []byte("} "))), 10, 64)
		if err != nil || n == 0 {
			continue
		}
		out = append(out, decisionCount{Action: action, Channel: channel, Count: n})
	}
	return out
}

// cutLabelValue reads a Prometheus label value up to its closing quote,
// undoing the text format's escapes (\\, \", \n), and returns it and what
// follows the quote.
func cutLabelValue(b []byte) (string, []byte, bool) {
	var v []byte
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return string(v), b[i+1:], true
		case c == '\\' && i+1 < len(b):
			i++
			if b[i] == 'n' {
				v = append(v, '\n')
			} else {
				v = append(v, b[i])
			}
		default:
			v = append(v, c)
		}
	}
	return "", nil, false
}

// decisionLogReport returns f's answer, reusing one younger than
// ReportTTL; one report is read at a time.
func (s *Server) decisionLogReport(f func([]byte) ([]byte, error)) ([]byte, error) {
	st := &s.studio
	st.reportMu.Lock()
	defer st.reportMu.Unlock()
	if !st.reportTime.IsZero() && time.Since(st.reportTime) < s.cfg.Studio.reportTTL() {
		return st.report, st.reportErr
	}
	st.report, st.reportErr = f(nil)
	st.reportTime = time.Now()
	return st.report, st.reportErr
}
