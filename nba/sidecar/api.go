package sidecar

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nba/nba"
	"nba/nba/declog"
	"nba/nba/explore"
	"nba/nba/server"
	"nba/state"
	redisstate "nba/state/redis"
	"nba/state/wal"
)

// scratch is one decision's reusable memory.
type scratch struct {
	req     nba.Request
	dec     nba.Decision
	ctx     []nba.ContextValue
	effects []state.JourneyUpdate
	log     declog.Decision
	resv    []state.Reservation // reserve.go
	caps    []nba.CapInfo
}

func (s *Sidecar) scratch() *scratch {
	if sc, ok := s.pool.Get().(*scratch); ok {
		return sc
	}
	return &scratch{}
}

// Decide implements server.Backend.
func (s *Sidecar) Decide(req *server.DecideRequest, resp *server.DecideResponse) error {
	return s.decideBy(s.engine, "", req, resp, nil, 0, !req.DryRun)
}

// DecideReserving is Decide that reserves the exact caps of the actions
// given even on a dry run: an outbound batch records nothing else, but
// its decisions are sent.
func (s *Sidecar) DecideReserving(req *server.DecideRequest, resp *server.DecideResponse) error {
	return s.decideBy(s.engine, "", req, resp, nil, 0, true)
}

// decideBy decides req by engine eng, the live one or the studio's
// candidate (bundle names its version; "" the live bundle's), with the
// what-if overrides ov when not nil (dry runs only) and the exploration
// seed when not 0; reserve makes it reserve the exact caps of the actions
// it gives (live engine only).
func (s *Sidecar) decideBy(eng *nba.Engine, bundle string, req *server.DecideRequest, resp *server.DecideResponse, ov *nba.Overrides, seed uint64, reserve bool) error {
	if req.CustomerID == "" {
		id, err := s.resolveForDecide(req.CustomerID, req.IDs)
		if err != nil {
			return err
		}
		req.CustomerID = id
	}
	sc := s.scratch()
	defer s.pool.Put(sc)
	sc.ctx = sc.ctx[:0]
	cat := eng.Catalog()
	for i := range req.Context {
		f := &req.Context[i]
		v := nba.ContextValue{Key: f.Key}
		switch f.Kind {
		case server.KindString:
			v.Str = f.Str
		case server.KindNumber:
			v.Num = f.Num
		case server.KindBool:
			v.Num = b2f(f.Bool)
		}
		if k, ok := cat.ContextKind(f.Key); ok && !s.cfg.LenientContext {
			if err := contextValue(k, f, &v); err != nil {
				return err
			}
		}
		sc.ctx = append(sc.ctx, v)
	}
	now := s.now()
	if !req.At.IsZero() {
		// A decision as of another time would stamp contacts and journey
		// steps out of order: only a dry run may ask for one.
		if !req.DryRun {
			return server.Invalidf("at needs dry_run: a decision as of another time records nothing")
		}
		now = req.At
	}
	if seed == 0 {
		seed = req.Seed // the funnel's per-customer seed
	}
	sc.req = nba.Request{Customer: req.CustomerID, Channel: req.Channel, Placement: req.Placement, Limit: req.Limit,
		Context: sc.ctx, Now: now, Explain: req.Explain || (s.declog != nil && !req.DryRun), DryRun: req.DryRun, Trace: s.declog != nil && !req.DryRun && !s.cfg.DecisionLogNoInputs,
		Remember: s.rememberKey(req.DecisionID), Overrides: ov, Seed: seed}
	d := &sc.dec
	if err := eng.Decide(&sc.req, d); err != nil {
		if errors.Is(err, nba.ErrUnknownChannel) {
			return server.Invalidf("channel %q is not configured", req.Channel)
		}
		return err
	}
	if err := s.commit(eng, sc, req, d, now, reserve); err != nil {
		return err
	}
	chosen := d.Actions
	if d.Control {
		chosen = d.Withheld
	}
	if !req.DryRun {
		s.count(s.engine.Catalog(), req.Channel, d)
	}
	resp.Control = d.Control
	out := &resp.Actions
	if d.Control {
		out = &resp.Withheld
	}
	for i := range chosen {
		c := &chosen[i]
		*out = append(*out, server.Action{ID: c.Action.ID, Name: c.Action.Name, Score: c.Priority,
			Propensity: c.Propensity, Value: c.Value, Lever: c.Lever, Tier: c.Tier, Treatment: c.Treatment})
	}
	if bundle == "" {
		bundle = s.parts.Load().version
	}
	fillResponse(resp, d, bundle, req.Explain)
	if req.DryRun {
		return nil
	}
	if s.share != nil {
		s.share.rememberDecision(req.DecisionID, sc.req.Remember, d)
	}
	if s.declog != nil {
		s.logDecision(sc, req, d, now)
	}
	return nil
}

// fillResponse fills the answer's versions, its stop and, when explain,
// its candidates from the engine's decision; the actions are filled by the
// caller. It allocates nothing: the server phrases the candidates'
// structured reasons when it encodes them.
func fillResponse(resp *server.DecideResponse, d *nba.Decision, bundle string, explain bool) {
	resp.Versions = server.Versions{Bundle: bundle, Catalog: d.CatalogVersion, Model: d.ModelVersion, Snapshot: d.SnapshotVersion}
	resp.Limit, resp.Stale = d.Limit, d.Stale
	if d.Reason == "channel_limit" {
		resp.Stopped, resp.StoppedBy = true, contactPolicy(&d.StoppedBy)
	}
	if !explain {
		return // d.Explain was filled for the decision log only
	}
	for i := range d.Explain {
		c := &d.Explain[i]
		out := server.Candidate{ID: c.Action, Score: c.Priority, Selected: c.Stage == nba.StageChosen,
			Stage: c.Stage.String(), Detail: c.Reason}
		if c.Stage == nba.StageContactPolicy {
			out.Policy = contactPolicy(&c.Policy)
		}
		if c.Stage == nba.StageConsent {
			x := &c.Consent
			out.Consent = server.ConsentDenial{Channel: x.Channel, Purpose: x.Purpose, Source: x.Source, At: x.At, Default: x.Default, Stale: x.Stale}
		}
		if c.Rank > 0 {
			out.Rank, out.Propensity, out.Weight, out.Value, out.Lever, out.Tier = c.Rank, c.Propensity, c.Weight, c.Value, c.Lever, c.Tier
		}
		if x := &c.Exploration; x.Method != explore.None {
			out.Exploration = server.Exploration{Method: x.Method.String(), Mean: c.Priority, Drawn: x.Drawn, RandomSlate: x.RandomSlate}
			if x.Method == explore.Epsilon {
				out.Exploration.Drawn = 0 // NaN: nothing was drawn
			}
		}
		resp.Candidates = append(resp.Candidates, out)
	}
}

func contactPolicy(p *nba.PolicyHit) server.ContactPolicy {
	return server.ContactPolicy{Suppression: p.Suppression, Scope: p.Scope.String(), Key: p.Key, Outcome: p.Outcome.String(),
		Window: p.Window, Max: p.Max, Count: p.Count, Desc: p.Desc, Reserved: p.Reserved}
}

// contextValue checks a request-context field against the kind the catalog
// declares for it and sets v's slot from it. A time is a number of unix
// seconds or an RFC 3339 string. A value of another type is refused: it
// used to be decided as if missing, silently.
func contextValue(k nba.Kind, f *server.Field, v *nba.ContextValue) error {
	ok := false
	switch k {
	case nba.KindNumber:
		ok = f.Kind == server.KindNumber
	case nba.KindCategory:
		ok = f.Kind == server.KindString
	case nba.KindBool:
		ok = f.Kind == server.KindBool
	case nba.KindTime:
		ok = f.Kind == server.KindNumber
		if f.Kind == server.KindString {
			if t, err := time.Parse(time.RFC3339Nano, f.Str); err == nil {
				v.Num, v.Str, ok = float64(t.Unix()), "", true
			}
		}
	}
	if ok {
		return nil
	}
	return server.Invalidf("context.%s: the catalog declares it %s, the request gives %s", f.Key, contextKindName(k), fieldKindName(f))
}

// contextKindName names a declared kind as a caller writes it in JSON.
func contextKindName(k nba.Kind) string {
	switch k {
	case nba.KindNumber:
		return "a number"
	case nba.KindCategory:
		return "a string"
	case nba.KindBool:
		return "a boolean"
	case nba.KindTime:
		return "a time (unix seconds or an RFC 3339 string)"
	}
	return k.String()
}

func fieldKindName(f *server.Field) string {
	switch f.Kind {
	case server.KindString:
		return "a string"
	case server.KindNumber:
		return "a number"
	case server.KindBool:
		return "a boolean"
	}
	return "a value of another type"
}

// logDecision logs the decision, every candidate with the stage that removed
// it or its scores, and the request and the inputs it read
// (Decision.Trace), enough for nba replay and nba evaluate to decide it
// again.
func (s *Sidecar) logDecision(sc *scratch, req *server.DecideRequest, d *nba.Decision, now time.Time) {
	l := &sc.log
	l.ID, l.Time, l.Customer, l.Channel, l.Control, l.Stale = req.DecisionID, now, req.CustomerID, req.Channel, d.Control, d.Stale
	l.Placement, l.Limit, l.Seed = req.Placement, req.Limit, d.Trace.Seed
	l.Context = ""
	l.ContextValues = l.ContextValues[:0]
	for i := range req.Context {
		f := &req.Context[i]
		v := declog.Value{Key: f.Key}
		switch f.Kind {
		case server.KindString:
			v.Kind, v.Str = declog.KindString, f.Str
		case server.KindBool:
			v.Kind, v.Num = declog.KindBool, b2f(f.Bool)
		default:
			v.Kind, v.Num = declog.KindNumber, f.Num
		}
		l.ContextValues = append(l.ContextValues, v)
	}
	in := &l.Inputs
	in.Profile, in.History, in.Journeys, in.Contacts = in.Profile[:0], in.History[:0], in.Journeys[:0], in.Contacts[:0]
	tr := &d.Trace
	cat := s.engine.Catalog()
	fields := cat.ProfileFields()
	// The profile is named by the schema of the catalog that decided; after
	// a reload in between, the inputs are left out.
	in.Logged = !s.cfg.DecisionLogNoInputs && cat.Version() == d.CatalogVersion && (len(tr.Profile.Num) == 0 || len(tr.Profile.Num) == len(fields))
	in.Known, in.Anonymous, in.NonZeroHistory = tr.Known, req.CustomerID == "", true
	if in.Logged {
		for i, num := range tr.Profile.Num {
			str := tr.Profile.Str[i]
			if math.IsNaN(num) && str == "" {
				continue
			}
			v := declog.Value{Key: fields[i].Name, Kind: declog.KindNumber, Num: num}
			if fields[i].Kind == nba.KindCategory {
				v.Kind, v.Str = declog.KindCategory, str
			}
			in.Profile = append(in.Profile, v)
		}
		for _, h := range tr.History {
			if h.Count == 0 {
				continue // the log lists non-zero counts only (NonZeroHistory)
			}
			in.History = append(in.History, declog.Count{Scope: h.Scope.String(), Key: h.Key, Outcome: h.Outcome.String(), Window: h.Window, N: h.Count})
		}
		for _, j := range tr.Journeys {
			in.Journeys = append(in.Journeys, declog.Journey{Journey: j.Journey, Step: j.Step, Status: j.Status.String(), EnteredAt: j.EnteredAt, LastStepAt: j.LastStepAt})
		}
		for i := range tr.Contacts {
			r := &tr.Contacts[i]
			n := len(in.Contacts)
			if n < cap(in.Contacts) {
				in.Contacts = in.Contacts[:n+1]
			} else {
				in.Contacts = append(in.Contacts, declog.ContactList{})
			}
			l := &in.Contacts[n]
			l.Scope, l.Key, l.AtNS, l.Outcomes = r.Scope.String(), r.Key, l.AtNS[:0], l.Outcomes[:0]
			for _, c := range r.Contacts {
				l.AtNS, l.Outcomes = append(l.AtNS, c.At), append(l.Outcomes, c.Outcome.String())
			}
		}
	}
	l.Versions = append(l.Versions[:0], declog.Version{Name: "catalog", Value: d.CatalogVersion},
		declog.Version{Name: "model", Value: d.ModelVersion}, declog.Version{Name: "snapshot", Value: d.SnapshotVersion})
	l.Candidates = l.Candidates[:0]
	for i := range d.Explain {
		c := &d.Explain[i]
		lc := declog.Candidate{Action: c.Action}
		if c.Stage == nba.StageChosen || c.Stage == nba.StageRank {
			lc.P, lc.Value, lc.Score = c.Propensity, c.Value, c.Priority
		} else {
			lc.Stage = c.Stage.String()
		}
		l.Candidates = append(l.Candidates, lc)
	}
	l.Chosen = l.Chosen[:0]
	chosen := d.Actions
	if d.Control {
		chosen = d.Withheld
	}
	for i := range chosen {
		l.Chosen = append(l.Chosen, declog.Chosen{Action: chosen[i].Action.ID, Prob: chosen[i].Prob, Samples: chosen[i].Samples})
	}
	s.declog.LogDecision(l)
}

// Feedback implements server.Backend: the contact is durable on return. A
// retry with an event_id the customer's state still remembers is
// acknowledged and changes nothing: no contact (caps), no learning, no
// decision-log line.
func (s *Sidecar) Feedback(fb *server.Feedback) error {
	var via string
	if fb.CustomerID == "" {
		id, v, err := s.resolveVia(fb.CustomerID, fb.IDs, true)
		if err != nil {
			return err
		}
		fb.CustomerID, via = id, v
	}
	p := s.parts.Load()
	a := p.catalog.Action(fb.ActionID)
	if a == nil && s.seenFeedback(fb) {
		// A retry of feedback recorded before a reload removed its
		// action: acknowledged as the first attempt was.
		return nil
	}
	if a == nil {
		s.feedbackUnknown.Add(1)
		return server.Invalidf("action %q is not in the catalog", fb.ActionID)
	}
	if fb.Channel != "" && p.catalog.ChannelIndex(fb.Channel) < 0 {
		return server.Invalidf("channel %q is not configured", fb.Channel)
	}
	o, err := state.ParseOutcome(fb.Outcome.String())
	if err != nil {
		return server.Invalidf("%v", err)
	}
	if err := s.checkErased(fb.CustomerID); err != nil {
		return err
	}
	c := state.Contact{Customer: fb.CustomerID, Action: a.ID, Group: a.Group, Channel: fb.Channel, Outcome: o, Value: fb.Value, At: fb.TS, ID: fb.EventID, Via: via}
	if o == state.Impression && p.catalog.HasExact() {
		c.Decision = fb.DecisionID // turns the decision's reservation into this contact
	}
	dup, err := s.state.RecordContactOnce(c)
	if err != nil {
		return s.stateError(err)
	}
	if dup {
		return nil
	}
	s.learnFromFeedback(fb, a.ID)
	if s.declog != nil {
		s.declog.LogFeedback(&declog.Feedback{Decision: fb.DecisionID, Time: fb.TS, Customer: fb.CustomerID,
			Action: a.ID, Event: fb.Outcome.String(), Reward: fb.Value})
	}
	return nil
}

// seenFeedback reports whether the customer's state remembers the
// feedback's event_id.
func (s *Sidecar) seenFeedback(fb *server.Feedback) bool {
	if fb.EventID == "" {
		return false
	}
	var v state.View
	return s.state.View(bytesOf(fb.CustomerID), &v) && v.SeenContactID(fb.EventID)
}

// Event implements server.Backend: profile changes and journey entries or
// exits it causes are durable on return, as one log record (a crash keeps
// all of the event or none of it). A retry with an event_id the customer's
// state still remembers is acknowledged and changes nothing.
func (s *Sidecar) Event(ev *server.Event) error {
	_, err := s.ApplyEvent(ev)
	return err
}

// ApplyEvent applies a decoded event as Event does and reports whether it
// was a duplicate (its event_id remembered: nothing applied). Both POST
// /v1/events and the event stream consumer (package eventstream) apply
// events through it.
func (s *Sidecar) ApplyEvent(ev *server.Event) (dup bool, err error) {
	var via string
	if ev.CustomerID == "" {
		if ev.CustomerID, via, err = s.resolveVia(ev.CustomerID, ev.IDs, true); err != nil {
			return false, err
		}
	}
	if p := s.parts.Load(); !p.eventTypes[ev.Type] {
		s.eventsUnknown.Add(1)
		if !s.cfg.AcceptUnknownEvents {
			known := p.eventList
			if known == "" {
				known = "none: the bundle maps no event to the profile and no journey waits for one"
			}
			return false, &server.Error{Status: http.StatusBadRequest, Code: server.CodeUnknownEventType,
				Message: fmt.Sprintf("event type %q is named by no profile mapping or journey; known types: %s", ev.Type, known)}
		}
	}
	if err := s.checkErased(ev.CustomerID); err != nil {
		return false, err
	}
	attrs := make(map[string]any, len(ev.Attrs))
	strAttrs := make(map[string]string, len(ev.Attrs))
	for _, f := range ev.Attrs {
		switch f.Kind {
		case server.KindString:
			attrs[f.Key] = f.Str
			strAttrs[f.Key] = f.Str
		case server.KindNumber:
			attrs[f.Key] = f.Num
			strAttrs[f.Key] = strconv.FormatFloat(f.Num, 'g', -1, 64)
		case server.KindBool:
			attrs[f.Key] = f.Bool
			strAttrs[f.Key] = strconv.FormatBool(f.Bool)
		}
	}
	// Journey moves are computed by the state store from the journeys as
	// they stand when it applies the event (they do not depend on the
	// profile): the read and the write are one atomic step per customer,
	// and the moves go into the same log record as the profile changes. A
	// duplicate's moves are dropped with the rest of it.
	e := state.Event{Customer: ev.CustomerID, Type: ev.Type, At: ev.TS, Attrs: attrs, ID: ev.EventID, Via: via}
	eng, typ, at := s.engine, ev.Type, ev.TS
	e.JourneysFrom = func(cur []state.JourneyState) []state.JourneyMove {
		js := make([]nba.JourneyState, len(cur))
		for i, j := range cur {
			js[i] = journeyOf(j)
		}
		updates := eng.EventMoves(typ, strAttrs, at, js, nil)
		moves := make([]state.JourneyMove, len(updates))
		for i, u := range updates {
			moves[i] = state.JourneyMove{Journey: u.Journey, Step: u.Step, Status: state.JourneyStatus(u.Status)}
		}
		return moves
	}
	if err := s.eventConsents(e); err != nil {
		return false, err
	}
	dup, err = s.state.ApplyEventOnce(e)
	if err != nil {
		return false, s.stateError(err)
	}
	return dup, nil
}

// stateError maps an error of the state store, by its kind, to what the
// caller sees: a write the store refused for what it is, 400
// invalid_request; a store that cannot write now (a full disk, an I/O
// error, a backlog; Redis out of reach, full or short of replicas), 503
// state_unavailable (the store counts it), logged at most every
// stateLogEvery, worded by cause and backend (unavailableMessage); a
// conflict, 409; a customer written with other profile mappings, 500
// state_mismatch (retrying never helps). An error of no kind is a bug:
// returned as is, answered 500 internal and logged.
func (s *Sidecar) stateError(err error) error {
	return s.stateErrorOn(err, opWrite)
}

// stateOp is what a route does with customer state, for the wording of a
// 503 state_unavailable (unavailableMessage).
type stateOp int

const (
	// opWrite: a write keyed by event_id (feedback, events, consent).
	opWrite stateOp = iota
	// opRead: a read (the customer view, a look-up by identifier).
	opRead
	// opChange: a change with no event_id (erasure, unmerge).
	opChange
)

// stateErrorOn is stateError for a route that does op with the state: the
// 503's message says what could not be done and how to retry it.
func (s *Sidecar) stateErrorOn(err error, op stateOp) error {
	if errors.Is(err, state.ErrMismatch) { // another bundle's mappings wrote it: permanent for this process
		if op != opRead {
			// A read changes nothing: it does not take readiness down.
			s.noteMismatch()
		}
		if s.stateLogDue() {
			s.log.Error("cannot use customer state: it was written with other profile mappings; answering 500 state_mismatch", "error", err)
		}
		return server.StateMismatchf("customer state was written with other profile mappings than this bundle's: serve the bundle that wrote it, or migrate the state (see README, Shared state); retrying does not help")
	}
	switch state.KindOf(err) {
	case state.ErrInvalid:
		return server.Invalidf("%v", err)
	case state.ErrUnavailable:
		if s.stateLogDue() {
			s.log.Error("cannot write customer state; answering 503 state_unavailable until it heals", "error", err,
				"refused", s.state.Stats().Unavailable)
		}
		return server.StateUnavailablef("%s", unavailableMessage(err, s.cfg.StateRedis != "", op))
	case state.ErrConflict:
		return server.Conflictf("%v", err)
	case state.ErrErased:
		// Decided before an erasure that completed first: refused, as
		// the tombstone check refuses the writes that come after it.
		return server.Erasedf("the customer was erased; its data is not accepted until %s after the erasure", s.cfg.ErasureKeep)
	}
	return err
}

// mismatchMark is the backend's count of applied writes when a write was
// last refused as written with other mappings (noteMismatch).
type mismatchMark struct {
	at      time.Time
	applied uint64
}

// appliedWrites is the backend's count of writes applied or acknowledged
// as duplicates: it grows with every write that succeeds.
func appliedWrites(st state.Stats) uint64 {
	return st.Contacts + st.Events + st.UnmappedEvents + st.Journeys + st.Duplicates
}

// noteMismatch remembers a write refused as written with other mappings:
// until a write succeeds again, Ready says not ready.
func (s *Sidecar) noteMismatch() {
	s.mismatch.Store(&mismatchMark{at: time.Now(), applied: appliedWrites(s.state.Stats())})
}

// stateLogEvery spaces the logs of writes refused as state_unavailable.
const stateLogEvery = 10 * time.Second

// stateLogDue reports whether a write refused as unavailable should be
// logged: at most one every stateLogEvery, so a full disk does not flood
// the log.
func (s *Sidecar) stateLogDue() bool {
	now := time.Now().UnixNano()
	last := s.stateLogged.Load()
	return now-last >= int64(stateLogEvery) && s.stateLogged.CompareAndSwap(last, now)
}

// unavailableMessage is the message of a 503 state_unavailable: why the
// state cannot be written, in a few words without file names or
// addresses, and what the caller may conclude. The embedded store applies
// nothing of a write it refuses; a write to Redis that failed may still
// have been applied (a WAIT that timed out after the primary applied it, a
// reply lost with the connection), so its message never says nothing was
// recorded. A read changes nothing and takes no event_id; an erasure or
// an unmerge takes none either, and doing it again is safe.
func unavailableMessage(err error, redis bool, op stateOp) string {
	reason, applied := unavailableReason(err, redis)
	switch op {
	case opRead:
		return "customer state cannot be read now (" + strings.Replace(reason, "cannot be written", "cannot be read", 1) + "): retry later"
	case opChange:
		if applied {
			return "customer state cannot be changed now (" + reason + "): the change may have been applied; retry it, which is safe"
		}
		return "customer state cannot be changed now (" + reason + "): nothing was changed; retry later"
	}
	if applied {
		return "customer state cannot be written now (" + reason + "): the write may have been recorded; retry with the same event_id, which applies it at most once"
	}
	return "customer state cannot be written now (" + reason + "): nothing was recorded; retry later, with the same event_id"
}

// unavailableReason says in a few words why state cannot be written,
// without file names or addresses, and whether the write may have been
// applied all the same.
func unavailableReason(err error, redis bool) (reason string, mayBeApplied bool) {
	var errno syscall.Errno
	switch {
	case errors.Is(err, wal.ErrBacklog):
		return "too many writes waiting for the disk", false
	case errors.Is(err, wal.ErrClosed):
		return "shutting down", false
	case !redis && errors.As(err, &errno):
		return errno.Error(), false
	case !redis:
		return "the state log cannot be written", false
	case errors.Is(err, redisstate.ErrClosed):
		return "shutting down", false
	case errors.Is(err, redisstate.ErrReplicasShort):
		return "fewer Redis replicas than -state.redis.waitReplicas confirmed it in time", true
	case errors.Is(err, redisstate.ErrFull):
		// Redis refuses a script that may write before running it.
		return "Redis is full (maxmemory): writes are refused until it has memory again", false
	}
	return "customer state on Redis does not answer", true
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}
