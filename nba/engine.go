package nba

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"nba/model"
	"nba/nba/explore"
)

// Request limits.
const (
	// MaxLimit is the most actions one decision returns; larger requested
	// limits are clipped (counted in Stats.LimitClipped).
	MaxLimit = 64
	// MaxJourneysPerCustomer is the most journey states read per decision;
	// more are ignored (counted in Stats.JourneysDropped).
	MaxJourneysPerCustomer = 32
)

// ContextValue is one request-context value. Num carries number, bool (1/0)
// and time (unix seconds) values, Str category values; the declared kind of
// Key says which is read. The server can hand these over without building a
// map: the engine resolves keys to slots itself.
type ContextValue struct {
	Key string
	Num float64
	Str string
}

// Request is one decision request. The engine does not keep it or anything
// it points to after Decide returns.
type Request struct {
	Customer  string // "" = anonymous: no profile, history, journeys or holdout
	Channel   string
	Placement string // "" matches every action; else the action must list it or list none
	Limit     int    // actions wanted; 0 means 1
	Context   []ContextValue
	Now       time.Time // zero means time.Now()
	Explain   bool      // fill Decision.Explain (may allocate)
	DryRun    bool      // decide without producing journey effects
	// Trace fills Decision.Trace with the inputs the decision read, enough
	// to decide it again (see Trace). It does not allocate once the
	// Decision's slices have grown.
	Trace bool
	// NoHoldout decides as if the customer were in no holdout. Replays set
	// it: they know the customer only by a pseudonym, which would hash into
	// other holdouts (a logged decision outside every holdout it consulted
	// decides the same without them).
	NoHoldout bool
	// Remember, when not 0 and the catalog learns, keeps the decision's
	// learning features under this key in the decision memory (see
	// Recall), for the feedback to its actions. It should identify the
	// decision, e.g. a hash of its id.
	Remember uint64
	// Seed, when not 0, makes exploration deterministic: the same seed,
	// inputs and learning state give the same decision (for replay and
	// tests). 0 draws a seed from the engine's generator; Decision.Trace
	// records it. The seed alone drives the draws, so a caller passing seeds
	// must vary them per request: one seed for every customer would explore
	// the same way for all of them.
	Seed uint64
	// Overrides, when not nil, changes levers, weights and tiers for this
	// decision only (the studio's what-if); only with DryRun. It must be
	// compiled against the catalog serving, else ErrStaleOverrides.
	Overrides *Overrides
}

// Trace is what one decision read from outside the request (Request.Trace):
// with the request itself, the catalog and the learning state it makes the
// decision reproducible. Its slices are reused by the next Decide into the
// same Decision; copy what must outlive it.
type Trace struct {
	// Seed is the exploration seed used; 0 when the channel did not explore.
	Seed uint64
	// Known reports whether Profiles knew the customer.
	Known bool
	// Profile holds the customer's values as read, in the slot order of
	// Catalog.ProfileFields (NaN and "" missing); empty when anonymous.
	Profile Profile
	// History lists the contact-history counts the decision asked for, in
	// the catalog's query order.
	History []HistoryCount
	// Journeys are the journey states read (before entries by rule).
	Journeys []JourneyState
	// Contacts are the contact lists read (ContactLister, for
	// suppressions), in the order read.
	Contacts []ContactsRead
}

// ContactsRead is one contact list a decision read: the arguments of
// ContactLister.Contacts and its answer, as listed.
type ContactsRead struct {
	Scope    Scope
	Key      string
	Contacts []ContactAt
}

// HistoryCount is one contact-history count a decision read: the arguments
// of History.Count (the decision's time aside) and its answer.
type HistoryCount struct {
	Scope   Scope
	Key     string
	Outcome Outcome
	Window  time.Duration
	Count   int
}

// Chosen is one action of a decision.
type Chosen struct {
	Action     *Action
	Propensity float64 // model output; 1 when the action has no model
	Weight     float64 // context weight
	Value      float64
	Lever      float64
	Priority   float64 // Propensity × Weight × Value × Lever; NaN and ±Inf inputs count as 0
	Tier       int     // manual tier (1 first); 0 = ranked by the model
	Treatment  []byte  // pre-encoded JSON for the channel; nil when none
	Journey    string  // journey id when given as a journey step
	Fallback   bool
	// Prob is the probability with which the channel's exploration policy
	// puts this action at its rank among the model-ranked candidates
	// (1 without exploration, for pinned tiers and the fallback; 0 for an
	// action ranked beyond the ExploreSlack ranks the policy ordered).
	Prob float64
	// Samples is the number of Monte-Carlo draws Prob was estimated from;
	// 0 when Prob is exact.
	Samples int
}

// Stage is where a candidate left the decision.
type Stage uint8

const (
	StageChosen        Stage = iota // given (or, in explain, still in the running)
	StagePlacement                  // not offered on the request's placement
	StageSchedule                   // before its start or after its end
	StageJourney                    // a journey step not due, or held by a locked journey
	StageEligibility                // an eligibility rule is false
	StageApplicability              // an applicability rule is false
	StageSuitability                // a suitability rule is false
	StageContactPolicy              // a cap, suppression or channel limit was hit
	StageExclusion                  // a higher-ranked action of its exclusive group was chosen
	StageHoldout                    // withheld: the customer is in a holdout
	StageRank                       // ranked below the limit
	// StageConsent: the customer's consent for the action's purpose on
	// the channel is denied (consent.go). Numbered last so that stage
	// numbers written before it keep their meaning; it runs right after
	// the schedule.
	StageConsent
)

// String names the stage.
func (s Stage) String() string {
	if s > StageConsent {
		return fmt.Sprintf("stage(%d)", uint8(s))
	}
	return [...]string{"chosen", "placement", "schedule", "journey", "eligibility",
		"applicability", "suitability", "contact_policy", "exclusion", "holdout", "rank", "consent"}[s]
}

// Candidate explains one action of the channel: the stage that removed it
// and why, or its scores. Explaining allocates nothing: its fields are
// structured (strings point into the catalog) and callers phrase them as
// they need (the HTTP API as "failed suitable: !profile.in_arrears").
type Candidate struct {
	Action string
	Stage  Stage
	// Reason is the detail of the stage, without the stage's verb: the
	// failing rule's text (eligibility, applicability, suitability),
	// "journey step not due" or "held by locked journey ID" (journey),
	// "before its start" or "after its end" (schedule), the policy's
	// description (contact policy, see Policy), "in the global holdout" or
	// "in the action's holdout" (holdout), "another action of its exclusive
	// group ranked higher" (exclusion); empty otherwise.
	Reason string
	// Count is the count that hit the contact policy (Policy.Count), -1 for
	// other stages.
	Count int
	// Policy is the contact policy that removed the candidate, for
	// StageContactPolicy.
	Policy PolicyHit
	// Consent is the denied consent that removed the candidate, for
	// StageConsent.
	Consent    ConsentHit
	Propensity float64
	Weight     float64
	Value      float64
	Lever      float64
	Priority   float64 // the mean score, what the candidate ranks by without exploration
	Tier       int
	// Rank is the candidate's 1-based place in the final ranking (tiers,
	// then priority or the exploration's draw), for the candidates that
	// reached it (stages chosen, exclusion, holdout, rank); 0 for others.
	Rank int
	// Exploration says how the channel's exploration ranked the candidate;
	// its Method is explore.None when the channel does not explore or the
	// candidate did not reach the ranking (or is pinned to a tier).
	Exploration Exploration
}

// PolicyHit is a contact policy that held, and the count that made it hold.
type PolicyHit struct {
	// Suppression is true for a suppression ("pause after"), false for a
	// cap ("at most Max in Window").
	Suppression bool
	Scope       Scope
	Key         string // the action, group or channel id the policy counts
	Outcome     Outcome
	Window      time.Duration // the window counted
	Max         int           // the cap, or the suppression's count
	Count       int           // the count that hit Max
	// Reserved is, for an exact cap, how much of Count are reservations
	// of decisions awaiting their impression (on any replica).
	Reserved int
	// Desc is the policy as compiled, e.g. "group sales: at most 2
	// impressions in 7d".
	Desc string
}

// Exploration is how a channel's exploration ranked one candidate (see
// package explore). The candidate's mean score is Candidate.Priority.
type Exploration struct {
	Method explore.Method
	// Drawn is the score the candidate was ranked by, in Priority's units:
	// value·σ(z) with z its logit drawn from the posterior (thompson), its
	// priority perturbed by the race (softmax); NaN for epsilon, which
	// ranks by Priority or, on a random slate, by chance.
	Drawn float64
	// RandomSlate is set when epsilon showed a random slate.
	RandomSlate bool
}

// Decision is the engine's answer. Reuse one per goroutine (or pool them):
// Decide resets it and reuses its slices.
type Decision struct {
	// ID is a random 128-bit id in lower-case hex.
	ID [32]byte
	// Actions are the chosen actions, best first.
	Actions []Chosen
	// Control is set when the customer is in a holdout: Withheld holds the
	// actions that would have been given.
	Control  bool
	Withheld []Chosen
	// Reason says why Actions is empty or a fallback: "channel_limit",
	// "journey_hold", "holdout", "no_candidates", "fallback".
	Reason string
	// StoppedBy is the channel-wide contact policy that stopped the
	// decision before any candidate was considered, when Reason is
	// "channel_limit"; zero otherwise.
	StoppedBy PolicyHit
	// Limit is the number of actions the decision could give: the
	// request's limit after clipping to MaxLimit and max_per_decision.
	Limit          int
	CatalogVersion string
	// ModelVersion is a digest of the model set (ModelSetDigest of
	// Catalog.ModelVersions), "" without models.
	ModelVersion    string
	SnapshotVersion string
	// Effects are the journey state changes to persist (none on DryRun
	// and none when Stale: journeys read as empty must not be re-entered).
	Effects []JourneyUpdate
	// Explain lists every action offered on the channel (Request.Explain).
	Explain []Candidate
	// Stale is set when the customer's live state could not be read
	// (Customers.Load failed): the decision was made from the profile as
	// read (the snapshot) with no contacts and no journeys, so contact
	// policies and journey steps did not apply. Counted in Stats.Stale.
	Stale bool
	// Trace holds the inputs read (Request.Trace).
	Trace Trace
}

// IDString returns the decision id as a string (allocates).
func (d *Decision) IDString() string { return string(d.ID[:]) }

func (d *Decision) reset() {
	d.Actions, d.Withheld, d.Effects, d.Explain = d.Actions[:0], d.Withheld[:0], d.Effects[:0], d.Explain[:0]
	d.Control, d.Reason, d.StoppedBy, d.Limit, d.Stale = false, "", PolicyHit{}, 0, false
	t := &d.Trace
	t.Seed, t.Known, t.History, t.Journeys, t.Contacts = 0, false, t.History[:0], t.Journeys[:0], t.Contacts[:0]
	t.Profile.Num, t.Profile.Str = t.Profile.Num[:0], t.Profile.Str[:0]
}

// Config configures an Engine.
type Config struct {
	// Catalog is the compiled catalog to serve. Required; Swap replaces it.
	Catalog *Catalog
	// Customers loads a customer's state once per decision. Either it or
	// Profiles is required; when set, Profiles, History and Journeys are
	// not used.
	Customers Customers
	// Profiles reads customer profiles, History counts contacts (nil: no
	// customer has any) and Journeys reads journey states (nil: no
	// customer is in any), for sources where each lookup is free; the
	// engine reads them through SplitCustomers.
	Profiles Profiles
	History  History
	Journeys Journeys
	// Scores caches model outputs per customer so a repeat visitor is not
	// scored again; nil disables it.
	Scores ScoreCache
	// DecisionMemory is the number of recent decisions whose learning
	// features are remembered for their feedback (Request.Remember,
	// Recall): 0 means DefaultDecisionMemory, negative none. It costs
	// 8 bytes per learning feature and about 110 bytes per slot, and only
	// with a catalog that learns.
	DecisionMemory int
}

// ScoreKey identifies a cached score vector: the customer, the exact model
// inputs shared by its candidates (a hash of the profile and context values
// the model reads, so any change of snapshot, live profile or context is a
// new key) and the model and catalog versions (which fix the action order).
type ScoreKey struct {
	Customer string
	Inputs   uint64
	Model    string
}

// ScoreCache caches the propensities a model gave a customer's actions: a
// vector of pairs (the action's position in the catalog as a float64, its
// propensity) by ascending position, only for the actions scored — about
// the channel's eligible candidates, a small part of a large catalog, so an
// entry is small and the cache holds many customers. It is never the
// source of truth: Get may miss and Set may drop. Implementations must be
// safe for concurrent use, must not keep the key's strings or the slice
// passed to Set, and Get must not allocate. The returned slice is read-only.
type ScoreCache interface {
	GetScores(k *ScoreKey) ([]float64, bool)
	SetScores(k *ScoreKey, scores []float64)
}

// Stats are the engine's counters since it started.
type Stats struct {
	Decisions          uint64 `json:"decisions"`
	UnknownCustomers   uint64 `json:"unknown_customers"`
	UnknownContextKeys uint64 `json:"unknown_context_keys"`
	LimitClipped       uint64 `json:"limit_clipped"`
	JourneysDropped    uint64 `json:"journeys_dropped"`
	ChannelLimited     uint64 `json:"channel_limited"`
	Fallbacks          uint64 `json:"fallbacks"`
	Controls           uint64 `json:"controls"`
	// Scored counts model rows scored (candidates that reached the model).
	Scored uint64 `json:"scored"`
	// Stale counts decisions made without the customer's live state
	// (Customers.Load failed; Decision.Stale).
	Stale uint64 `json:"stale"`
}

// Engine decides. It is safe for concurrent use; Decide does not allocate
// (Explain aside) once its pooled scratch is warm.
type Engine struct {
	cur       atomic.Pointer[learner] // the catalog and its online state
	scores    ScoreCache
	learnMu   sync.RWMutex // Observe (read) against Swap and UnmarshalLearner (write)
	obsNow    atomic.Int64 // time of the latest observation, the online models' clock
	customers Customers
	pool      sync.Pool

	decisions, unknownCustomers, unknownCtx, limitClipped, journeysDropped,
	channelLimited, fallbacks, controls, scored, stale atomic.Uint64
	observed, observeRejected, carryFailures atomic.Uint64
	recalled, recallMisses                   atomic.Uint64
	memSlots                                 int
}

// NewEngine validates cfg and returns an engine serving cfg.Catalog.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("cannot create engine: no catalog")
	}
	if cfg.Customers == nil && cfg.Profiles == nil {
		return nil, errors.New("cannot create engine: no customers and no profiles")
	}
	e := &Engine{customers: cfg.Customers, scores: cfg.Scores, memSlots: cfg.DecisionMemory}
	if e.customers == nil {
		e.customers = SplitCustomers(cfg.Profiles, cfg.History, cfg.Journeys)
	}
	if e.memSlots == 0 {
		e.memSlots = DefaultDecisionMemory
	}
	e.cur.Store(e.newLearner(cfg.Catalog, nil))
	e.pool.New = func() any {
		var seed [32]byte
		_, _ = crand.Read(seed[:])
		return &scratch{rng: rand.NewChaCha8(seed)}
	}
	return e, nil
}

// Swap atomically replaces the catalog; decisions in flight finish on the
// old one. The online models' posteriors carry over by action and group id
// (see Observe); observations wait for the swap.
func (e *Engine) Swap(c *Catalog) {
	if c == nil {
		return
	}
	e.learnMu.Lock()
	defer e.learnMu.Unlock()
	e.cur.Store(e.newLearner(c, e.cur.Load()))
}

// Catalog returns the catalog being served.
func (e *Engine) Catalog() *Catalog { return e.cur.Load().cat }

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	return Stats{e.decisions.Load(), e.unknownCustomers.Load(), e.unknownCtx.Load(), e.limitClipped.Load(),
		e.journeysDropped.Load(), e.channelLimited.Load(), e.fallbacks.Load(), e.controls.Load(), e.scored.Load(), e.stale.Load()}
}

// cand is one surviving candidate.
type cand struct {
	a        int32
	journey  int32 // journey index when a due step, else -1
	tier     int32 // sort key: pinned tiers 1..MaxTier, ranked as MaxTier+1
	p, w, v  float64
	l, prio  float64
	explainI int32   // index in Decision.Explain, -1 when not explaining
	mu, vr   float64 // online logit mean and variance (learning)
	off      float64 // online offset: the offline logit (learning)
	prob     float64 // logged probability of its rank (exploration)
	samples  int32
}

// scratch is one decision's working memory, pooled.
type scratch struct {
	cat      *Catalog
	ec       evalCtx
	cust     Customer // the customer as loaded; cust.Profile is what rules read
	ruleMemo []uint8  // 0 unknown, 1 true, 2 false
	numMemo  []float64
	numDone  []bool
	cands    []cand
	sorted   []cand           // sortCands' other buffer
	keys     []candKey        // sortCands' keys
	base     [][]float64      // per model: the customer's part of a row
	rows     []float64        // candidate rows, row-major
	outs     []float64        // one prediction per row
	rowOf    []int32          // row -> index in cands
	vars     []*model.Variant // row -> the action's plan variant (models with a plan)
	cached   []float64        // the score pairs to cache (ScoreCache)
	fresh    []scorePair      // this decision's new scores, to merge into cached
	customer string           // the request's customer ("" = anonymous)
	scoreKey ScoreKey
	plan     model.PlanScratch
	states   []JourneyState
	due      []dueStep
	exclUsed []bool
	rng      *rand.ChaCha8
	trace    *Trace       // the decision's when it traces, else nil
	seq      []ContactAt  // a customer's contacts of one action (suppressions)
	denied   []ConsentHit // per purpose on the decision's channel; Purpose "" when granted (consent.go)
	// consentUnknown: the live state (and the consent changes in it)
	// could not be read and no last-good copy was at hand (consent.go).
	consentUnknown bool

	// learning and exploration
	lx      []float64
	xs      *explore.Scratch
	xScores []float64
	xMeans  []float64
	xVars   []float64
	xVals   []float64
	xOut    []explore.Choice
	xTaken  []bool
	xTmp    []cand
}

type dueStep struct {
	action, journey int32
	state           int32 // index in states, -1 when entering now
}

func (s *scratch) prepare(c *Catalog) {
	if s.cat == c {
		return
	}
	s.cat = c
	s.ruleMemo = make([]uint8, len(c.rules))
	s.numMemo = make([]float64, len(c.nums))
	s.numDone = make([]bool, len(c.nums))
	s.ec.counts = make([]int32, len(c.queries))
	s.ec.queries = c.queries
	s.ec.cnum = make([]float64, len(c.ctx))
	s.ec.cstr = make([]string, len(c.ctx))
	s.cands = make([]cand, 0, len(c.actions))
	s.sorted = make([]cand, 0, len(c.actions))
	s.keys = make([]candKey, 0, len(c.actions))
	s.base = make([][]float64, len(c.models))
	nf := 0
	for i, m := range c.models {
		s.base[i] = make([]float64, m.nf)
		nf = max(nf, m.nf)
	}
	s.rows = make([]float64, nf*len(c.actions))
	s.outs = make([]float64, len(c.actions))
	s.rowOf = make([]int32, len(c.actions))
	s.vars = make([]*model.Variant, len(c.actions))
	s.cached = make([]float64, 0, 2*len(c.actions))
	s.fresh = make([]scorePair, 0, len(c.actions))
	s.states = make([]JourneyState, 0, MaxJourneysPerCustomer)
	s.due = make([]dueStep, 0, len(c.journeys))
	s.exclUsed = make([]bool, c.nexcl)
	if s.seq == nil {
		s.seq = make([]ContactAt, 0, 128)
	}
	s.cust.Profile.reset(c.nfields)
	if c.learn != nil {
		s.lx = make([]float64, len(c.learn.feats))
		n := len(c.actions)
		s.xScores, s.xMeans, s.xVars, s.xVals = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		s.xOut = make([]explore.Choice, 0, MaxLimit)
		s.xTaken = make([]bool, n)
		s.xTmp = make([]cand, 0, n)
		for _, p := range c.learn.explore {
			if p != nil && p.Config().MaxCandidates == c.learn.maxCand {
				s.xs = p.NewScratch()
				break
			}
		}
	}
}

func (s *scratch) rule(i int32) bool {
	switch s.ruleMemo[i] {
	case 1:
		return true
	case 2:
		return false
	}
	var ok bool
	if f := &s.cat.flat[i]; f.op != flatNone {
		ok = f.eval(&s.ec)
	} else {
		ok = s.cat.rules[i](&s.ec)
	}
	s.ruleMemo[i] = 2
	if ok {
		s.ruleMemo[i] = 1
	}
	return ok
}

func (s *scratch) num(r numRef) float64 {
	if r.expr < 0 {
		return r.c
	}
	if !s.numDone[r.expr] {
		s.numMemo[r.expr] = s.cat.nums[r.expr](&s.ec)
		s.numDone[r.expr] = true
	}
	return s.numMemo[r.expr]
}

// policyHit describes a policy that held (allocates nothing).
func (s *scratch) policyHit(c *Catalog, l *limit) PolicyHit {
	q := &c.queries[l.q]
	h := PolicyHit{Suppression: l.supp, Scope: q.scope, Key: q.key, Outcome: q.outcome, Window: q.window,
		Max: int(l.max), Count: int(s.ec.count(int(l.q))), Desc: l.desc}
	if l.exact {
		h.Reserved = int(s.ec.reserved(l.q))
		h.Count += h.Reserved
	}
	return h
}

func (s *scratch) limitHit(l *limit) bool {
	n := s.ec.count(int(l.q))
	if l.exact {
		n += s.ec.reserved(l.q)
	}
	if n < l.max {
		return false
	}
	return l.sup == nil || s.paused(l.sup)
}

// ErrUnknownChannel is returned for a channel the catalog does not know.
var ErrUnknownChannel = errors.New("cannot decide: unknown channel")

// Decide makes one decision into d, as DecideContext with
// context.Background().
func (e *Engine) Decide(req *Request, d *Decision) error {
	return e.DecideContext(context.Background(), req, d)
}

// DecideContext makes one decision into d; ctx bounds the load of the
// customer's state (Customers.Load). It returns ErrUnknownChannel for a
// channel the catalog does not know; every other request is decided, from
// the snapshot alone and marked Stale when the live state cannot be read.
func (e *Engine) DecideContext(ctx context.Context, req *Request, d *Decision) error {
	cur := e.cur.Load()
	c := cur.cat
	d.reset()
	ch, ok := c.chanIdx[req.Channel]
	if !ok {
		return ErrUnknownChannel
	}
	if req.Overrides != nil {
		switch {
		case !req.DryRun:
			return errors.New("cannot decide: overrides need a dry run")
		case req.Overrides.cat != c:
			return ErrStaleOverrides
		}
	}
	e.decisions.Add(1)
	s := e.pool.Get().(*scratch)
	defer e.pool.Put(s)
	s.prepare(c)
	writeID(&d.ID, s.rng)
	d.CatalogVersion, d.ModelVersion, d.SnapshotVersion = c.version, c.modelVersion, e.customers.Version()

	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 1
	}
	if limit > MaxLimit {
		limit = MaxLimit
		e.limitClipped.Add(1)
	}
	if c.maxPerDecision > 0 && limit > c.maxPerDecision {
		limit = c.maxPerDecision
	}
	d.Limit = limit
	known := e.load(ctx, s, c, req, now, d)
	s.trace = nil
	if req.Trace {
		s.trace = &d.Trace
		d.Trace.Known = known
		if req.Customer != "" {
			d.Trace.Profile.Num = append(d.Trace.Profile.Num, s.cust.Profile.Num...)
			d.Trace.Profile.Str = append(d.Trace.Profile.Str, s.cust.Profile.Str...)
		}
		defer traceHistory(s, c, d)
	}

	// Channel-wide contact limits end the decision early.
	for i := range c.chanLimits[ch] {
		if l := &c.chanLimits[ch][i]; s.limitHit(l) {
			e.channelLimited.Add(1)
			d.Reason = "channel_limit"
			d.StoppedBy = s.policyHit(c, l)
			return nil
		}
	}

	s.consentPass(c, ch)
	lock, lockTier := e.journeyPass(s, c, req, d, now, ch)
	nowU := s.ec.now
	s.cands = s.cands[:0]
	for _, ai := range c.byChannel[ch] {
		a := &c.actions[ai]
		stage, why, whyCount := StageChosen, "", -1
		var hit PolicyHit
		var tier int32 = MaxTier + 1
		jn := int32(-1)
		switch {
		case req.Placement != "" && len(a.placements) > 0 && !slices.Contains(a.placements, req.Placement):
			stage = StagePlacement
		case a.start != 0 && nowU < a.start:
			stage, why = StageSchedule, "before its start"
		case a.end != 0 && nowU >= a.end:
			stage, why = StageSchedule, "after its end"
		case s.consentDenied(a):
			stage = StageConsent
		}
		if stage == StageChosen && a.journey >= 0 {
			if jn = s.dueJourney(ai); jn < 0 {
				stage, why = StageJourney, "journey step not due"
			}
		}
		ov := req.Overrides.override(ai)
		if stage == StageChosen && a.tier > 0 && (a.pinRule < 0 || s.rule(a.pinRule)) {
			tier = int32(a.tier)
		}
		if ov != nil && ov.hasTier {
			tier = MaxTier + 1
			if ov.tier > 0 {
				tier = int32(ov.tier)
			}
		}
		if stage == StageChosen && lock >= 0 && jn != lock && !(tier <= MaxTier && (lockTier == 0 || tier < int32(lockTier))) {
			stage, why = StageJourney, "held by locked journey"
			if req.Explain {
				why = c.journeys[lock].heldWhy
			}
		}
		if stage == StageChosen {
			if st, ri := s.rules(a); st != StageChosen {
				stage = st
				if req.Explain {
					why = c.ruleText[ri]
				}
			}
		}
		if stage == StageChosen {
			for i := range a.limits {
				if l := &a.limits[i]; s.limitHit(l) {
					stage = StageContactPolicy
					if req.Explain {
						hit = s.policyHit(c, l)
						why, whyCount = l.desc, hit.Count
						if hit.Reserved > 0 {
							why = reservedWhy(l.desc, hit.Reserved)
						}
					}
					break
				}
			}
		}
		ex := int32(-1)
		if req.Explain {
			ex = int32(len(d.Explain))
			d.Explain = append(d.Explain, Candidate{Action: a.ID, Stage: stage, Reason: why, Count: whyCount, Policy: hit})
			if stage == StageConsent {
				d.Explain[ex].Consent = s.denied[a.purpose]
			}
		}
		if stage != StageChosen {
			continue
		}
		if jn >= 0 && c.journeys[jn].lock {
			// A locked journey's step sits at the journey's tier.
			if t := int32(c.journeys[jn].tier); t > 0 && t < tier {
				tier = t
			}
		}
		w, l := s.num(a.weight), a.lever
		if ov != nil {
			if ov.hasWeight {
				w = ov.weight
			}
			if ov.hasLever {
				l = ov.lever
			}
		}
		s.cands = append(s.cands, cand{a: ai, journey: jn, tier: tier, p: 1,
			w: w, v: s.num(a.value), l: l, explainI: ex, prob: 1})
	}
	e.score(s, c, cur.on)
	s.sortCands()
	if cur.on != nil {
		if p := c.learn.explore[ch]; p != nil {
			d.Trace.Seed = s.explore(p, req, limit, d.Explain)
		}
	}
	e.arbitrate(s, c, req, d, ch, limit, now)
	if cur.on != nil && !req.DryRun {
		e.remember(cur, s, req.Remember, d)
	}
	if len(d.Actions) == 0 && d.Reason == "" {
		switch {
		case d.Control:
			d.Reason = "holdout"
		case lock >= 0:
			d.Reason = "journey_hold"
		case c.fallback >= 0 && c.actions[c.fallback].chanMask&(1<<uint(ch)) != 0 && s.fallbackAllowed(&c.actions[c.fallback]):
			a := &c.actions[c.fallback]
			d.Actions = append(d.Actions, Chosen{Action: a, Propensity: 1, Weight: 1, Value: 1, Lever: 1,
				Priority: 1, Treatment: a.treatments[ch], Fallback: true, Prob: 1})
			d.Reason = "fallback"
			e.fallbacks.Add(1)
		default:
			d.Reason = "no_candidates"
		}
	}
	if d.Control {
		e.controls.Add(1)
	}
	return nil
}

// traceHistory records the history counts the decision asked for.
func traceHistory(s *scratch, c *Catalog, d *Decision) {
	s.trace = nil // the scratch goes back to the pool
	for i, n := range s.ec.counts {
		if n >= 0 {
			q := &c.queries[i]
			d.Trace.History = append(d.Trace.History, HistoryCount{Scope: q.scope, Key: q.key, Outcome: q.outcome, Window: q.window, Count: int(n)})
		}
	}
}

// load reads the customer once (Customers.Load) and fills the evaluation
// context: profile, context slots, time, history. It reports whether the
// customer's profile was found. When the live state cannot be read, the
// decision goes on with the profile as read and no contacts or journeys,
// and is marked Stale (d is nil outside a decision).
func (e *Engine) load(ctx context.Context, s *scratch, c *Catalog, req *Request, now time.Time, d *Decision) (known bool) {
	clear(s.ruleMemo)
	clear(s.numDone)
	for i := range s.ec.counts {
		s.ec.counts[i] = -1
	}
	s.cust.Profile.reset(c.nfields)
	s.cust.History, s.cust.Journeys, s.cust.Consent = nil, s.cust.Journeys[:0], s.cust.Consent[:0]
	s.customer = req.Customer
	s.consentUnknown = false
	if req.Customer != "" {
		var err error
		known, err = e.customers.Load(ctx, req.Customer, &s.cust)
		if err != nil {
			s.consentUnknown = !known || s.cust.History == nil
			// known: the contacts are a last-good copy the backend
			// still held, kept so caps keep applying; journeys are
			// not stepped from a stale copy.
			if !known {
				s.cust.History = nil
			}
			s.cust.Journeys = s.cust.Journeys[:0]
			if d != nil {
				d.Stale = true
				e.stale.Add(1)
			}
		}
		if !known {
			e.unknownCustomers.Add(1)
		}
	}
	s.ec.num, s.ec.str = s.cust.Profile.Num, s.cust.Profile.Str
	nan := math.NaN()
	for i := range s.ec.cnum {
		s.ec.cnum[i], s.ec.cstr[i] = nan, ""
	}
	for i := range req.Context {
		kv := &req.Context[i]
		j, ok := c.ctxIdx[kv.Key]
		if !ok {
			e.unknownCtx.Add(1)
			continue
		}
		s.ec.cnum[j], s.ec.cstr[j] = kv.Num, kv.Str
	}
	s.ec.now, s.ec.nowT = now.Unix(), now
	s.ec.tzOff = 0
	if c.tzSlot >= 0 {
		if m := s.cust.Profile.Num[c.tzSlot]; !math.IsNaN(m) && math.Abs(m) <= 18*60 {
			s.ec.tzOff = int64(m) * 60
		}
	}
	s.ec.hist = s.cust.History
	s.ec.resv, _ = s.cust.History.(ReservedHistory)
	return known
}

// rules runs the three rule stages; it returns the failing stage and rule.
func (s *scratch) rules(a *Action) (Stage, int32) {
	for st := range a.rules {
		for _, ri := range a.rules[st] {
			if !s.rule(ri) {
				return StageEligibility + Stage(st), ri
			}
		}
	}
	return StageChosen, -1
}

func (s *scratch) dueJourney(ai int32) int32 {
	for _, d := range s.due {
		if d.action == ai {
			return d.journey
		}
	}
	return -1
}

// journeyPass reads the customer's journeys: exits, entries by rule, the due
// steps and the locking journey (-1 when none) with its tier.
func (e *Engine) journeyPass(s *scratch, c *Catalog, req *Request, d *Decision, now time.Time, ch int) (lock int32, lockTier int) {
	lock = -1
	s.due = s.due[:0]
	s.states = s.states[:0]
	if len(c.journeys) == 0 || req.Customer == "" {
		return
	}
	s.states = append(s.states, s.cust.Journeys[:min(len(s.cust.Journeys), MaxJourneysPerCustomer)]...)
	if n := len(s.cust.Journeys); n > MaxJourneysPerCustomer {
		e.journeysDropped.Add(uint64(n - MaxJourneysPerCustomer))
	}
	if req.Trace {
		d.Trace.Journeys = append(d.Trace.Journeys, s.states...)
	}
	// Entries by rule for journeys the customer has never been in.
	for ji := range c.journeys {
		j := &c.journeys[ji]
		if j.entry < 0 || s.stateOf(j.id) >= 0 || !s.rule(j.entry) {
			continue
		}
		if j.exit >= 0 && s.rule(j.exit) {
			continue
		}
		st := JourneyState{Journey: j.id, Status: JourneyActive, EnteredAt: now}
		if len(s.states) < cap(s.states) {
			s.states = append(s.states, st)
			if !req.DryRun && !d.Stale {
				d.Effects = append(d.Effects, JourneyUpdate{JourneyState: st, Reason: "enter"})
			}
		}
	}
	for si := range s.states {
		st := &s.states[si]
		if st.Status != JourneyActive {
			continue
		}
		ji, ok := c.journeyIdx[st.Journey]
		if !ok {
			continue // a journey removed from the catalog
		}
		j := &c.journeys[ji]
		last := st.LastStepAt
		if last.IsZero() {
			last = st.EnteredAt
		}
		if (j.exit >= 0 && s.rule(j.exit)) || (j.timeout > 0 && now.Sub(last) >= j.timeout) || st.Step >= len(j.steps) || st.Step < 0 {
			if !req.DryRun && !d.Stale {
				u := JourneyUpdate{JourneyState: *st, Reason: "exit", FromStep: st.Step, FromStatus: st.Status}
				u.Status = JourneyExited
				d.Effects = append(d.Effects, u)
			}
			continue
		}
		// A step the customer's consent denies on this channel cannot be
		// given: its journey does not hold the channel (a withdrawn
		// marketing consent must not also block service messages).
		if j.lock && j.chanMask&(1<<uint(ch)) != 0 && lock < 0 && !s.consentDenied(&c.actions[j.steps[st.Step]]) {
			lock, lockTier = int32(ji), j.tier
		}
		if !now.Before(last.Add(j.waits[st.Step])) {
			s.due = append(s.due, dueStep{action: j.steps[st.Step], journey: int32(ji), state: int32(si)})
		}
	}
	return
}

func (s *scratch) stateOf(id string) int {
	for i := range s.states {
		if s.states[i].Journey == id {
			return i
		}
	}
	return -1
}

// score scores the candidates: offline models, then the online correction
// when the catalog learns (on != nil), then priorities.
func (e *Engine) score(s *scratch, c *Catalog, on *model.Online) {
	e.scoreOffline(s, c, true)
	if on != nil {
		s.learnScore(c, on)
	}
	for i := range s.cands {
		cd := &s.cands[i]
		cd.p, cd.w, cd.v = finite(cd.p), finite(cd.w), finite(cd.v)
		cd.prio = finite(cd.p * cd.w * cd.v * cd.l)
	}
}

// scoreOffline batch-scores the candidates: per model, the customer's part of a
// row is built once, each candidate's row is a copy of it plus the action's
// features, and the rows go to the model in one call. A model with a plan
// (compiler.plans in catalog.go) takes the customer's part and the actions'
// variants instead of rows. count adds the rows to Stats.Scored.
func (e *Engine) scoreOffline(s *scratch, c *Catalog, count bool) {
	scored := 0
	for mi := range c.models {
		bm := &c.models[mi]
		base := s.base[mi]
		n, filled := 0, false
		var hit []float64
		key := &s.scoreKey // in the scratch: passing its address does not allocate
		key.Customer = ""
		for i := range s.cands {
			cd := &s.cands[i]
			a := &c.actions[cd.a]
			if a.model != int32(mi) {
				continue
			}
			if !filled {
				filled = true
				for _, b := range bm.prof {
					base[b.pos] = s.cust.Profile.Num[b.slot]
				}
				for _, b := range bm.ctx {
					base[b.pos] = s.ec.cnum[b.slot]
				}
				nan := math.NaN()
				for _, p := range bm.actPos {
					base[p] = nan
				}
				if e.scores != nil && s.customer != "" {
					*key = ScoreKey{Customer: s.customer, Inputs: hashRow(base), Model: bm.cacheID}
					hit, _ = e.scores.GetScores(key)
				}
			}
			if p, ok := cachedScore(hit, cd.a); ok {
				cd.p = p
				continue
			}
			s.rowOf[n] = int32(i)
			if bm.plan != nil {
				s.vars[n] = a.variant
				n++
				continue
			}
			row := s.rows[n*bm.nf : (n+1)*bm.nf]
			copy(row, base)
			for _, f := range a.feats {
				row[f.pos] = f.v
			}
			n++
		}
		if n == 0 {
			continue
		}
		if bm.plan != nil {
			bm.plan.Score(base, s.vars[:n], s.outs[:n], &s.plan)
		} else if bm.mm != nil {
			model.PredictRows(bm.mm, s.rows[:n*bm.nf], n, s.outs[:n], false)
		} else {
			for r := 0; r < n; r++ {
				bm.m.Predict(s.rows[r*bm.nf:(r+1)*bm.nf], s.outs[r:r+1])
			}
		}
		for r := 0; r < n; r++ {
			s.cands[s.rowOf[r]].p = s.outs[r]
		}
		scored += n
		if key.Customer != "" {
			// Cache what is known now: the earlier pairs plus this
			// decision's new scores.
			fresh := s.fresh[:0]
			for r := 0; r < n; r++ {
				cd := &s.cands[s.rowOf[r]]
				fresh = append(fresh, scorePair{a: cd.a, p: cd.p})
			}
			s.fresh = fresh
			s.cached = mergeScores(s.cached[:0], hit, fresh)
			e.scores.SetScores(key, s.cached)
		}
	}
	s.scoreKey.Customer = "" // borrowed from the request: not kept
	if count {
		e.scored.Add(uint64(scored))
	}
}

// scorePair is one new score for the ScoreCache: action a's propensity.
type scorePair struct {
	a int32
	p float64
}

func cmpScorePair(x, y scorePair) int { return cmp.Compare(x.a, y.a) }

// cachedScore returns action a's propensity from a ScoreCache vector.
func cachedScore(v []float64, a int32) (float64, bool) {
	x := float64(a)
	lo, hi := 0, len(v)/2
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if v[2*m] < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(v)/2 && v[2*lo] == x {
		return v[2*lo+1], true
	}
	return 0, false
}

// mergeScores appends to dst the ScoreCache vector of the pairs in old (a
// ScoreCache vector) and fresh, by ascending action; fresh wins a tie.
func mergeScores(dst, old []float64, fresh []scorePair) []float64 {
	// Candidates come in catalog order, so fresh is almost always sorted
	// already.
	if !slices.IsSortedFunc(fresh, cmpScorePair) {
		slices.SortFunc(fresh, cmpScorePair)
	}
	i := 0
	for _, f := range fresh {
		x := float64(f.a)
		for ; i+1 < len(old) && old[i] < x; i += 2 {
			dst = append(dst, old[i], old[i+1])
		}
		if i+1 < len(old) && old[i] == x {
			i += 2
		}
		dst = append(dst, x, f.p)
	}
	for ; i+1 < len(old); i += 2 {
		dst = append(dst, old[i], old[i+1])
	}
	return dst
}

// hashRow hashes a model row's values (FNV-1a over their bits).
func hashRow(row []float64) uint64 {
	h := uint64(14695981039346656037)
	for _, x := range row {
		b := math.Float64bits(x)
		if x != x {
			b = 0x7ff8000000000001 // every NaN alike
		}
		h ^= b
		h *= 1099511628211
	}
	return h
}

// finite maps NaN (a missing input) and ±Inf (a division by zero in a value
// expression) to 0, so scores stay comparable and encodable as JSON.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// candKey is what cmpCand reads of a candidate, and its index: sorting
// these 24-byte keys and then moving each candidate once costs less than
// sorting the candidates themselves (over 100 bytes each, copied on every
// comparison and swap).
type candKey struct {
	prio    float64
	tier, a int32
	i       int32
}

// sortCands orders s.cands as cmpCand does.
func (s *scratch) sortCands() {
	keys := s.keys[:0]
	for i := range s.cands {
		cd := &s.cands[i]
		keys = append(keys, candKey{prio: cd.prio, tier: cd.tier, a: cd.a, i: int32(i)})
	}
	slices.SortFunc(keys, cmpCand)
	sorted := s.sorted[:0]
	for _, k := range keys {
		sorted = append(sorted, s.cands[k.i])
	}
	s.keys, s.sorted, s.cands = keys, s.cands, sorted
}

// cmpCand orders pinned tiers first (1 before 2), then priority, then
// catalog order.
func cmpCand(x, y candKey) int {
	switch {
	case x.tier != y.tier:
		return int(x.tier - y.tier)
	case x.prio > y.prio:
		return -1
	case x.prio < y.prio:
		return 1
	}
	return int(x.a - y.a)
}

func (e *Engine) arbitrate(s *scratch, c *Catalog, req *Request, d *Decision, ch, limit int, now time.Time) {
	clear(s.exclUsed)
	global := !req.NoHoldout && req.Customer != "" && c.globalHoldout > 0 && holdoutFrac(hashString(c.globalSeed, req.Customer)) < c.globalHoldout
	for i := range s.cands {
		cd := &s.cands[i]
		a := &c.actions[cd.a]
		stage, why := StageChosen, ""
		switch {
		case len(d.Actions) >= limit || (global && len(d.Withheld) >= limit):
			// A per-action holdout lets the next best take its place, so
			// its control customers get what they would get without it.
			stage = StageRank
		case a.exclusion >= 0 && s.exclUsed[a.exclusion]:
			stage, why = StageExclusion, "another action of its exclusive group ranked higher"
		}
		tier := int(cd.tier)
		if tier > MaxTier {
			tier = 0
		}
		jid := ""
		if cd.journey >= 0 {
			jid = c.journeys[cd.journey].id
		}
		ch1 := Chosen{Action: a, Propensity: cd.p, Weight: cd.w, Value: cd.v, Lever: cd.l, Priority: cd.prio,
			Tier: tier, Treatment: a.treatments[ch], Journey: jid, Prob: cd.prob, Samples: int(cd.samples)}
		if stage == StageChosen {
			if a.exclusion >= 0 {
				s.exclUsed[a.exclusion] = true
			}
			switch {
			case global:
				stage, why = StageHoldout, "in the global holdout"
				d.Withheld = append(d.Withheld, ch1)
				d.Control = true
			case !req.NoHoldout && req.Customer != "" && a.holdout > 0 && holdoutFrac(hashString(a.holdSeed, req.Customer)) < a.holdout:
				stage, why = StageHoldout, "in the action's holdout"
				d.Withheld = append(d.Withheld, ch1)
				d.Control = true
			default:
				d.Actions = append(d.Actions, ch1)
				if cd.journey >= 0 && !req.DryRun && !d.Stale {
					d.Effects = append(d.Effects, s.advance(c, cd, now))
				}
			}
		}
		if cd.explainI >= 0 {
			x := &d.Explain[cd.explainI]
			x.Stage, x.Reason = stage, why
			x.Propensity, x.Weight, x.Value, x.Lever, x.Priority, x.Tier = cd.p, cd.w, cd.v, cd.l, cd.prio, tier
			x.Rank = i + 1
		}
	}
}

// advance returns the journey state after delivering a due step.
func (s *scratch) advance(c *Catalog, cd *cand, now time.Time) JourneyUpdate {
	j := &c.journeys[cd.journey]
	var st JourneyState
	for _, du := range s.due {
		if du.journey == cd.journey {
			st = s.states[du.state]
		}
	}
	from, fromStatus := st.Step, st.Status
	st.Step++
	st.LastStepAt = now
	u := JourneyUpdate{JourneyState: st, Reason: "step", FromStep: from, FromStatus: fromStatus}
	if st.Step >= len(j.steps) {
		u.Status, u.Reason = JourneyCompleted, "complete"
	}
	return u
}

func writeID(dst *[32]byte, r *rand.ChaCha8) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], r.Uint64())
	binary.LittleEndian.PutUint64(b[8:], r.Uint64())
	const hexd = "0123456789abcdef"
	for i, v := range b {
		dst[2*i], dst[2*i+1] = hexd[v>>4], hexd[v&15]
	}
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashString continues an FNV-1a hash over s.
func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// holdoutFrac maps a hash to [0, 1) after a final mix (FNV-1a alone is
// poorly spread in its high bits for short keys).
func holdoutFrac(h uint64) float64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return float64(h>>11) / (1 << 53)
}

// InHoldout reports whether a customer falls in a holdout of the given
// share for a salt (and an action id, "" for the global holdout), as
// Decide computes it.
func InHoldout(salt, actionID, customer string, share float64) bool {
	var h uint64
	if actionID == "" {
		h = hashString(hashString(fnvOffset, salt+"\x00"), customer)
	} else {
		h = hashString(hashString(fnvOffset, salt+"\x00"+actionID+"\x00"), customer)
	}
	return holdoutFrac(h) < share
}
