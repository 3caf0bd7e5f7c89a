// Package servertest provides Backend, an in-memory server.Backend for tests
// and for the load benchmark until the bundle-backed backend is wired in.
//
// Its Decide is deterministic, allocation-free and cheap: a fixed catalog of
// actions scored by a hash of the customer id and the action. It accepts the
// channels "web", "app" and "email" and refuses others with an
// invalid_request error; customers whose id starts with "holdout-" are in
// the control group, and those whose id starts with "limited-" are stopped
// by a channel cap. Explained decisions on "app" carry a thompson
// exploration note. Feedback and events are kept in memory (bounded by
// MaxRecords; beyond it they are counted and dropped) and are "durable" as
// soon as recorded.
//
// Backend is safe for concurrent use.
//
// StoppedBy and Candidate are the JSON of an explained decide answer, for
// tests that decode answers, of this Backend or of the real sidecar.
package servertest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nba/nba/server"
)

// MaxRecords bounds the feedback and events a Backend keeps.
const MaxRecords = 100000

// Action is one action of the fake catalog.
type Action struct {
	ID, Name  string
	Lever     float64
	Tier      int
	Value     float64
	Treatment []byte
}

// Catalog is the fake catalog: a decision-sized set of five actions.
var Catalog = []Action{
	{"card-upgrade", "Upgrade to the gold card", 1, 0, 120, []byte(`{"template":"banner-a","headline":"Go gold","cta":"Upgrade"}`)},
	{"savings-boost", "Savings rate boost", 1.2, 0, 80, []byte(`{"template":"banner-b","headline":"Earn more","cta":"Boost"}`)},
	{"mortgage-check", "Free mortgage review", 1, 0, 300, []byte(`{"template":"tile","headline":"Review your mortgage"}`)},
	{"app-tour", "Take the app tour", 0.8, 1, 5, []byte(`{"template":"toast","steps":3}`)},
	{"fraud-alert-setup", "Set up fraud alerts", 1, 1, 15, []byte(`{"template":"tile","priority":"high"}`)},
}

// Record is one recorded feedback or event, with its strings copied.
type Record struct {
	Kind       string // "feedback" or "event"
	CustomerID string
	DecisionID string
	ActionID   string
	Outcome    server.Outcome
	Type       string
}

// Backend is a fake server.Backend. The zero value is ready and serves.
type Backend struct {
	// NotReady makes Ready and Decide answer not_ready.
	NotReady atomic.Bool
	// ReloadErr, when set, is returned by Reload.
	ReloadErr error
	// IngestErr, when set, is returned by Feedback and Event, and by Ready
	// when its status is 503 (state that cannot be written).
	IngestErr atomic.Pointer[server.Error]
	// PanicOnCustomer makes Decide panic for this customer id (to test
	// recovery); empty disables it.
	PanicOnCustomer string

	reloads   atomic.Int64
	decisions atomic.Int64
	dropped   atomic.Int64

	mu      sync.Mutex
	records []Record
}

var channels = [...]string{"web", "app", "email"}

// channelCap stops the decisions of customers whose id starts with
// "limited-".
var channelCap = server.ContactPolicy{Scope: "channel", Outcome: "impression", Window: 24 * time.Hour, Max: 1, Count: 1,
	Desc: "channel: at most 1 impression in 1d"}

func channelOK(c string) bool {
	for _, k := range channels {
		if k == c {
			return true
		}
	}
	return false
}

func hash(s string, salt uint64) uint64 {
	h := uint64(14695981039346656037) ^ salt
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Decide implements server.Backend.
func (b *Backend) Decide(req *server.DecideRequest, resp *server.DecideResponse) error {
	if b.NotReady.Load() {
		return server.NotReadyf("catalog not loaded")
	}
	if !channelOK(req.Channel) {
		return server.Invalidf("channel %q is not configured", req.Channel)
	}
	if b.PanicOnCustomer != "" && req.CustomerID == b.PanicOnCustomer {
		panic("servertest: asked to panic")
	}
	b.decisions.Add(1)
	resp.Versions = server.Versions{Bundle: "fake-bundle-1", Catalog: "fake-catalog-1", Model: "fake-model-1", Snapshot: "fake-snapshot-1"}
	if strings.HasPrefix(req.CustomerID, "holdout-") {
		resp.Control = true
		return nil
	}
	limit := req.Limit
	if limit == 0 {
		limit = 3
	}
	resp.Limit = limit
	if strings.HasPrefix(req.CustomerID, "limited-") {
		resp.Stopped = true
		resp.StoppedBy = channelCap
		resp.StoppedBy.Key = req.Channel
		return nil
	}
	for i := range Catalog {
		a := &Catalog[i]
		p := float64(hash(req.CustomerID, uint64(i))%1000) / 1000
		resp.Actions = append(resp.Actions, server.Action{
			ID: a.ID, Name: a.Name, Propensity: p, Value: a.Value, Score: p * a.Value,
			Lever: a.Lever, Tier: a.Tier, Treatment: a.Treatment,
		})
	}
	// Insertion sort by score, best first: five elements, no allocation.
	acts := resp.Actions
	for i := 1; i < len(acts); i++ {
		for j := i; j > 0 && acts[j].Score > acts[j-1].Score; j-- {
			acts[j], acts[j-1] = acts[j-1], acts[j]
		}
	}
	if req.Explain {
		for i := range acts {
			c := server.Candidate{ID: acts[i].ID, Score: acts[i].Score, Selected: i < limit, Stage: server.StageChosen}
			if !c.Selected {
				c.Stage = server.StageRank
			}
			if req.Channel == "app" {
				c.Exploration = server.Exploration{Method: "thompson", Mean: c.Score, Drawn: c.Score}
			}
			resp.Candidates = append(resp.Candidates, c)
		}
	}
	if len(acts) > limit {
		resp.Actions = acts[:limit]
	}
	return nil
}

func (b *Backend) record(r Record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.records) >= MaxRecords {
		b.dropped.Add(1)
		return
	}
	b.records = append(b.records, r)
}

// Feedback implements server.Backend.
func (b *Backend) Feedback(fb *server.Feedback) error {
	if e := b.IngestErr.Load(); e != nil {
		return e
	}
	if fb.Channel != "" && !channelOK(fb.Channel) {
		return server.Invalidf("channel %q is not configured", fb.Channel)
	}
	known := false
	for i := range Catalog {
		known = known || Catalog[i].ID == fb.ActionID
	}
	if !known {
		return server.Invalidf("action %q is not in the catalog", fb.ActionID)
	}
	b.record(Record{Kind: "feedback", CustomerID: strings.Clone(fb.CustomerID), DecisionID: strings.Clone(fb.DecisionID),
		ActionID: strings.Clone(fb.ActionID), Outcome: fb.Outcome})
	return nil
}

// Event implements server.Backend.
func (b *Backend) Event(ev *server.Event) error {
	if e := b.IngestErr.Load(); e != nil {
		return e
	}
	b.record(Record{Kind: "event", CustomerID: strings.Clone(ev.CustomerID), Type: strings.Clone(ev.Type)})
	return nil
}

// Records returns a copy of what was recorded so far.
func (b *Backend) Records() []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Record(nil), b.records...)
}

// AppendCustomer implements server.Backend: a customer is known once it has
// feedback or events recorded.
func (b *Backend) AppendCustomer(dst []byte, id string) ([]byte, error) {
	var fbs, evs int
	for _, r := range b.Records() {
		if r.CustomerID != id {
			continue
		}
		if r.Kind == "feedback" {
			fbs++
		} else {
			evs++
		}
	}
	if fbs+evs == 0 {
		return dst, server.NotFoundf("customer not found")
	}
	dst = append(dst, `{"customer_id":`...)
	dst = strconv.AppendQuote(dst, id)
	dst = append(dst, `,"contacts":`...)
	dst = strconv.AppendInt(dst, int64(fbs), 10)
	dst = append(dst, `,"events":`...)
	dst = strconv.AppendInt(dst, int64(evs), 10)
	dst = append(dst, `,"holdout":`...)
	dst = strconv.AppendBool(dst, strings.HasPrefix(id, "holdout-"))
	return append(dst, '}'), nil
}

// AppendActions implements server.Backend.
func (b *Backend) AppendActions(dst []byte) ([]byte, error) {
	dst = append(dst, `{"actions":[`...)
	for i, a := range Catalog {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = strconv.AppendQuote(dst, a.ID)
		dst = append(dst, `,"treatment":`...)
		dst = append(dst, a.Treatment...)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...), nil
}

// AppendStatus implements server.Backend.
func (b *Backend) AppendStatus(dst []byte) ([]byte, error) {
	dst = append(dst, `{"catalog":"fake-catalog-1","reloads":`...)
	dst = strconv.AppendInt(dst, b.reloads.Load(), 10)
	dst = append(dst, `,"decisions":`...)
	dst = strconv.AppendInt(dst, b.decisions.Load(), 10)
	return append(dst, '}'), nil
}

// Ready implements server.Backend.
func (b *Backend) Ready() error {
	if b.NotReady.Load() {
		return errors.New("catalog, model and snapshot not loaded")
	}
	if e := b.IngestErr.Load(); e != nil && e.Status == 503 {
		return e
	}
	return nil
}

// Reload implements server.Backend.
func (b *Backend) Reload(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.ReloadErr != nil {
		return b.ReloadErr
	}
	b.reloads.Add(1)
	return nil
}

// Reloads returns how many reloads succeeded.
func (b *Backend) Reloads() int64 { return b.reloads.Load() }

var _ server.Backend = (*Backend)(nil)
