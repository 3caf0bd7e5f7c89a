package nba

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"nba/model"
	"nba/nba/explore"
)

// Learning (the catalog's "learning:" section).
//
// Every action gets an online Bayesian logistic regression (model.Online,
// one action index per catalog action, the action's group as its cold-start
// group) over the configured features plus an intercept. Its offset is the
// logit of the action's offline propensity (0 when the action has no
// model), so it learns a correction to the trained model. With learning on,
// the propensity that ranks an action is the posterior predictive mean; a
// channel exploring with thompson ranks by a posterior draw instead.
//
// Rewards: the caller reports every response to a shown action through
// Engine.Observe with reward 1 (click, accept, convert) or 0 (reject,
// dismiss, or an impression that got no response before the caller's
// response window closed). An impression alone is not an observation: the
// caller observes it once, when its outcome is known. Rewards in between
// are accepted as fractional responses.
//
// The engine owns the online state, not the Catalog: Swap carries every
// action's and group's posterior to the new catalog by id (actions and
// groups that disappear lose theirs; a change of learning.features starts
// from the prior). MarshalLearner and UnmarshalLearner checkpoint the state
// with the ids, so a checkpoint restores onto a later catalog the same way.

// Learning limits.
const (
	// MaxLearningFeatures bounds learning.features.
	MaxLearningFeatures = 256
	// ExploreSlack is how many ranks beyond the request's limit the
	// exploration policy orders when the catalog has exclusive groups or
	// action holdouts, so that actions they remove are replaced by explored
	// ones (without them it orders exactly the limit, which is cheaper for
	// thompson). Actions placed beyond those ranks carry Prob 0 ("not
	// logged").
	ExploreSlack = 8
)

// learnFeat is one learning input: a profile or context slot.
type learnFeat struct {
	ctx  bool
	slot int32
}

// learnSpec is a catalog's compiled learning section.
type learnSpec struct {
	feats   []learnFeat
	cfg     model.OnlineConfig // Features, PriorVariance, GroupPriorWeight, Decay, HalfLife
	explore []*explore.Policy  // by channel; nil = none
	groupOf []int              // per action: learning group index, -1 none
	groups  []string           // learning group index -> group id
	maxCand int                // largest explore.Config.MaxCandidates
	slack   int                // ranks explored beyond the limit
}

func (k *compiler) learning() {
	lf := k.f.Learning
	if lf == nil {
		return
	}
	c := k.c
	sp := &learnSpec{}
	if len(lf.Features) > MaxLearningFeatures {
		k.errs.add("learning.features", "%d features, more than the limit of %d", len(lf.Features), MaxLearningFeatures)
	}
	prof := map[string]int{}
	for i, f := range k.opts.Schema.Fields {
		prof[f.Name] = i
	}
	seen := map[string]bool{}
	for i, fn := range lf.Features {
		path := fmt.Sprintf("learning.features[%d]", i)
		if seen[fn] {
			k.errs.add(path, "duplicate feature %q", fn)
			continue
		}
		seen[fn] = true
		var kind Kind
		var f learnFeat
		if j, ok := prof[fn]; ok {
			kind, f = k.opts.Schema.Fields[j].Kind, learnFeat{slot: int32(j)}
		} else if j, ok := c.ctxIdx[fn]; ok {
			kind, f = c.ctx[j].Kind, learnFeat{ctx: true, slot: int32(j)}
		} else {
			k.errs.add(path, "unknown field %q (not a profile or context field)%s", fn, didYouMean(fn, append(sortedKeys(prof), sortedKeys(c.ctxIdx)...)))
			continue
		}
		if kind != KindNumber && kind != KindBool {
			k.errs.add(path, "field %q is a %s; learning reads number and bool fields", fn, kind)
			continue
		}
		sp.feats = append(sp.feats, f)
		sp.cfg.Features = append(sp.cfg.Features, fn)
	}
	if !(lf.PriorVariance >= 0) || math.IsInf(lf.PriorVariance, 0) {
		k.errs.add("learning.prior_variance", "must be positive and finite, got %v", lf.PriorVariance)
	}
	if !(lf.GroupPriorWeight >= 0 && lf.GroupPriorWeight <= 1) {
		k.errs.add("learning.group_prior_weight", "must be in (0, 1], got %v", lf.GroupPriorWeight)
	}
	if !(lf.Decay >= 0 && lf.Decay < 1) {
		k.errs.add("learning.decay", "must be in [0, 1), got %v", lf.Decay)
	}
	sp.cfg.PriorVariance, sp.cfg.GroupPriorWeight, sp.cfg.Decay = lf.PriorVariance, lf.GroupPriorWeight, lf.Decay
	if lf.HalfLife != "" {
		hl, err := parseWindow(lf.HalfLife)
		switch {
		case err != nil:
			k.errs.add("learning.half_life", "%v", err)
		case hl <= 0:
			k.errs.add("learning.half_life", "must be positive")
		default:
			sp.cfg.HalfLife = hl
		}
	}
	if len(c.actions) == 0 {
		k.errs.add("learning", "no actions to learn")
	}
	// Groups: only those with actions, numbered in order of first use.
	gi := map[string]int{}
	sp.groupOf = make([]int, len(c.actions))
	for i := range c.actions {
		sp.groupOf[i] = -1
		g := c.actions[i].Group
		if g == "" {
			continue
		}
		j, ok := gi[g]
		if !ok {
			j = len(sp.groups)
			gi[g] = j
			sp.groups = append(sp.groups, g)
		}
		sp.groupOf[i] = j
	}
	sp.explore = make([]*explore.Policy, len(c.channels))
	for _, ch := range sortedKeys(lf.Explore) {
		path := "learning.explore." + ch
		ci, ok := c.chanIdx[ch]
		if !ok {
			k.errs.add(path, "unknown channel %q", ch)
			continue
		}
		xf := lf.Explore[ch]
		m, err := explore.ParseMethod(xf.Method)
		if err != nil {
			k.errs.add(path+".method", "%v", err)
			continue
		}
		if m == explore.None {
			continue
		}
		n := max(1, len(c.byChannel[ci]))
		if n > 65536 {
			k.errs.add(path, "%d actions on the channel, more than exploration handles (65536)", n)
			continue
		}
		p, err := explore.New(explore.Config{Method: m, Epsilon: xf.Epsilon, Temperature: xf.Temperature,
			Draws: xf.Draws, MaxCandidates: n, MaxSlots: MaxLimit})
		if err != nil {
			k.errs.add(path, "%v", err)
			continue
		}
		sp.explore[ci] = p
		sp.maxCand = max(sp.maxCand, n)
	}
	if c.nexcl > 0 {
		sp.slack = ExploreSlack
	}
	for i := range c.actions {
		if c.actions[i].holdout > 0 {
			sp.slack = ExploreSlack
		}
	}
	// Validate the model configuration now, so that Swap cannot fail.
	if len(c.actions) > 0 {
		if _, err := sp.newOnline(nil); err != nil {
			k.errs.add("learning", "%v", err)
		}
	}
	c.learn = sp
}

// newOnline returns a fresh online model for the spec; now is its clock
// (nil = time.Now).
func (sp *learnSpec) newOnline(now func() time.Time) (*model.Online, error) {
	cfg := sp.cfg
	cfg.Actions = len(sp.groupOf)
	cfg.Groups = sp.groupOf
	cfg.NumGroups = len(sp.groups)
	cfg.Now = now
	return model.NewOnline(cfg)
}

// Learning returns whether the catalog has a learning section.
func (c *Catalog) Learning() bool { return c.learn != nil }

// learner is the online state of one catalog: immutable apart from the
// posteriors inside on.
type learner struct {
	cat *Catalog
	on  *model.Online // nil when the catalog does not learn
	// mem is the decision memory, made by the first decision to be
	// remembered (none when the catalog does not learn or
	// Config.DecisionMemory < 0).
	mem     atomic.Pointer[decisionMemory]
	memOnce sync.Once
}

// ErrLearningOff is returned by Observe when the catalog has no learning
// section; callers may ignore it.
var ErrLearningOff = errors.New("cannot observe: the catalog has no learning section")

// Observe learns from one response of a customer to a shown action: reward
// 1 for a click, accept or conversion, 0 for a reject, dismissal or an
// impression left without response (see the package's learning notes). It
// recomputes the action's features and offline logit from the customer's
// current profile (learning features read from the request context are
// missing, hence 0; use ObserveContext to pass them, or better
// ObserveRecalled with what the decision saw: see the decision memory in
// memory.go). now is the time of the
// response (zero = time.Now()) and drives learning.half_life. It is safe
// for concurrent use, also with Swap; it allocates one posterior.
func (e *Engine) Observe(customer, actionID string, reward float64, now time.Time) error {
	return e.ObserveContext(customer, actionID, reward, now, nil)
}

// ObserveContext is Observe with the decision's request context.
func (e *Engine) ObserveContext(customer, actionID string, reward float64, now time.Time, ctx []ContextValue) error {
	if !(reward >= 0 && reward <= 1) {
		e.observeRejected.Add(1)
		return fmt.Errorf("cannot observe action %q: reward %v is not in [0, 1]", actionID, reward)
	}
	if now.IsZero() {
		now = time.Now()
	}
	e.learnMu.RLock()
	defer e.learnMu.RUnlock()
	cur := e.cur.Load()
	c := cur.cat
	if cur.on == nil {
		return ErrLearningOff
	}
	ai, ok := c.byID[actionID]
	if !ok {
		e.observeRejected.Add(1)
		return fmt.Errorf("cannot observe action %q: not in catalog %q", actionID, c.version)
	}
	s := e.pool.Get().(*scratch)
	defer e.pool.Put(s)
	s.prepare(c)
	req := Request{Customer: customer, Context: ctx}
	e.load(context.Background(), s, c, &req, now, nil)
	s.cands = append(s.cands[:0], cand{a: int32(ai), p: 1})
	e.scoreOffline(s, c, false)
	s.learnRow(c)
	e.obsNow.Store(now.UnixNano())
	if !cur.on.Update(ai, s.lx, c.offset(&s.cands[0]), reward) {
		e.observeRejected.Add(1)
		return fmt.Errorf("cannot observe action %q: the online model rejected the observation", actionID)
	}
	e.observed.Add(1)
	return nil
}

// offset is the online model's offset for a scored candidate: its offline
// logit, 0 when the action has no model.
func (c *Catalog) offset(cd *cand) float64 {
	if c.actions[cd.a].model < 0 {
		return 0
	}
	return offsetOf(cd.p)
}

// offsetOf is the offline logit of a propensity, clamped to ±13.8 (p in
// [1e-6, 1-1e-6]) so that a certain model can still be corrected.
func offsetOf(p float64) float64 {
	p = min(max(finite(p), 1e-6), 1-1e-6)
	return math.Log(p / (1 - p))
}

// learnRow fills s.lx with the learning features of the loaded request.
func (s *scratch) learnRow(c *Catalog) {
	for i, f := range c.learn.feats {
		if f.ctx {
			s.lx[i] = s.ec.cnum[f.slot]
		} else {
			s.lx[i] = s.cust.Profile.Num[f.slot]
		}
	}
}

// learnScore replaces each candidate's propensity with the online
// posterior's predictive mean, and keeps its logit mean and variance for
// thompson exploration.
func (s *scratch) learnScore(c *Catalog, on *model.Online) {
	s.learnRow(c)
	for i := range s.cands {
		cd := &s.cands[i]
		cd.off = c.offset(cd)
		mu, v := on.Logit(int(cd.a), s.lx, cd.off)
		cd.mu, cd.vr = mu, v
		cd.p = sigmoid(mu / math.Sqrt(1+math.Pi*v/8)) // MacKay (1992), as model.Online.Mean
	}
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	ez := math.Exp(z)
	return ez / (1 + ez)
}

// explore reorders the model-ranked candidates (the tail of s.cands after
// the pinned tiers) by the channel's exploration policy and sets the logged
// probability of the ranks it chose. Pinned candidates keep Prob 1. It
// returns the seed of the draws (req.Seed or one drawn, never 0); 0 when
// there was nothing to explore. Explained candidates (x, Decision.Explain)
// get the draw that ranked them.
func (s *scratch) explore(p *explore.Policy, req *Request, limit int, x []Candidate) (seed uint64) {
	for i := range s.cands {
		s.cands[i].prob, s.cands[i].samples = 1, 0
	}
	start := len(s.cands)
	for start > 0 && s.cands[start-1].tier > MaxTier {
		start--
	}
	rk := s.cands[start:]
	n := len(rk)
	if n == 0 {
		return 0
	}
	// The seed alone drives the draws (not the customer id), so that a
	// replay under a pseudonym draws the same.
	seed = req.Seed
	for seed == 0 {
		seed = s.rng.Uint64()
	}
	s.xs.Seed(seed, 0)
	in := explore.Input{Scores: s.xScores[:n], Means: s.xMeans[:n], Variances: s.xVars[:n], Values: s.xVals[:n]}
	for i := range rk {
		cd := &rk[i]
		in.Scores[i], in.Means[i], in.Variances[i] = cd.prio, cd.mu, cd.vr
		in.Values[i] = finite(cd.w * cd.v * cd.l)
	}
	// Equal positive values rank like the logits themselves: leave them
	// out and thompson saves an exponential per draw and candidate.
	same := in.Values[0] > 0
	for _, v := range in.Values {
		same = same && v == in.Values[0]
	}
	if same {
		in.Values = nil
	}
	k := min(n, limit+s.cat.learn.slack, MaxLimit)
	out, err := p.Choose(s.xs, in, k, s.xOut[:0])
	if err != nil {
		// Cannot happen for a validated catalog; keep the greedy order.
		return seed
	}
	if req.Explain {
		m, random := p.Config().Method, s.xs.RandomSlate()
		for i := range rk {
			cd := &rk[i]
			if cd.explainI < 0 {
				continue
			}
			drawn := s.xs.Drawn(i)
			if m == explore.Thompson {
				drawn = finite(cd.w*cd.v*cd.l) * sigmoid(drawn)
			}
			x[cd.explainI].Exploration = Exploration{Method: m, Drawn: drawn, RandomSlate: random}
		}
	}
	taken := s.xTaken[:n]
	clear(taken)
	s.xTmp = s.xTmp[:0]
	for _, ch := range out {
		cd := rk[ch.Index]
		cd.prob, cd.samples = ch.Prob, int32(ch.Samples)
		s.xTmp = append(s.xTmp, cd)
		taken[ch.Index] = true
	}
	for i := range rk {
		if !taken[i] {
			cd := rk[i]
			cd.prob, cd.samples = 0, 0
			s.xTmp = append(s.xTmp, cd)
		}
	}
	copy(rk, s.xTmp)
	return seed
}

// ActionEvidence is the learning state of one action.
type ActionEvidence struct {
	Action string `json:"action"`
	// Evidence is the (decayed) number of observations of the action.
	Evidence float64 `json:"evidence"`
}

// LearnerStats is the learning state for /admin/status.
type LearnerStats struct {
	Enabled  bool     `json:"enabled"`
	Features []string `json:"features,omitempty"`
	// Observed counts accepted observations since the engine started;
	// Rejected those refused (bad reward, unknown action, invalid input).
	Observed uint64 `json:"observed"`
	Rejected uint64 `json:"rejected"`
	// CarryFailures counts catalog swaps whose online state could not be
	// carried over (the new catalog then started from its priors).
	CarryFailures uint64 `json:"carry_failures"`
	// Recalled counts feedback that found its decision's features in the
	// decision memory (Recall); RecallMisses feedback that did not (too
	// old, or the catalog changed) and was learned from the current
	// profile without the request's context.
	Recalled     uint64           `json:"recalled"`
	RecallMisses uint64           `json:"recall_misses"`
	Actions      []ActionEvidence `json:"actions,omitempty"`
}

// LearnerStats returns the evidence per action of the catalog being served
// (allocates; for status pages).
func (e *Engine) LearnerStats() LearnerStats {
	cur := e.cur.Load()
	st := LearnerStats{Observed: e.observed.Load(), Rejected: e.observeRejected.Load(), CarryFailures: e.carryFailures.Load(),
		Recalled: e.recalled.Load(), RecallMisses: e.recallMisses.Load()}
	if cur.on == nil {
		return st
	}
	st.Enabled = true
	st.Features = slices.Clone(cur.on.Features())
	st.Actions = make([]ActionEvidence, len(cur.cat.actions))
	for i := range cur.cat.actions {
		st.Actions[i] = ActionEvidence{Action: cur.cat.actions[i].ID, Evidence: cur.on.Evidence(i)}
	}
	return st
}

// newLearner builds the online state for catalog c, carrying over the
// posteriors of prev (which may be nil) by action and group id.
func (e *Engine) newLearner(c *Catalog, prev *learner) *learner {
	l := &learner{cat: c}
	if c.learn == nil {
		return l
	}
	on, err := c.learn.newOnline(e.onlineNow)
	if err != nil {
		// Validated at compile time; cannot happen.
		panic(fmt.Sprintf("nba: cannot create online model for catalog %q: %v", c.version, err))
	}
	l.on = on
	if prev != nil && prev.on != nil && slices.Equal(prev.on.Features(), on.Features()) {
		ck, err := prev.on.MarshalBinary()
		if err == nil {
			err = restoreOnline(on, c, ck, actionIDs(prev.cat), prev.cat.learn.groups)
		}
		if err != nil {
			e.carryFailures.Add(1)
		}
	}
	return l
}

func (e *Engine) onlineNow() time.Time {
	if t := e.obsNow.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return time.Now()
}

func actionIDs(c *Catalog) []string {
	ids := make([]string, len(c.actions))
	for i := range c.actions {
		ids[i] = c.actions[i].ID
	}
	return ids
}

// Learner checkpoint (little-endian):
//
//	"NBALRNR2", u32 actions, actions × (u16 len, id), u32 groups,
//	groups × (u16 len, id), u32 length + a model.Online checkpoint,
//	u32 pending, pending × (u16 len, customer, u16 len, action, i64 time
//	in unix ns, u8 seen, [f64 offset, u16 n, n × f64 feature]),
//	u32 CRC-32C of everything before it.
//
// Version 1 ("NBALRNR1") has no pending impressions; it still loads.
const (
	learnerMagic   = "NBALRNR2"
	learnerMagicV1 = "NBALRNR1"
)

// MaxPendingInCheckpoint bounds the pending impressions a learner
// checkpoint holds (and that RestoreLearner accepts).
const MaxPendingInCheckpoint = 1 << 24

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// PendingImpression is a shown action awaiting its outcome, kept by the
// caller (e.g. until a response window closes) and saved with the learner
// checkpoint, so that a restart neither forgets the negatives it owes nor
// learns from the positives alone.
type PendingImpression struct {
	Customer, Action string
	// At is when the action was shown.
	At time.Time
	// Seen is what its decision saw (Recall), nil when unknown.
	Seen *Recalled
}

// MarshalLearner returns a checkpoint of the online state with its action
// and group ids, and the pending impressions given (at most
// MaxPendingInCheckpoint); nil when the catalog does not learn. What a
// pending impression's decision saw is kept when it was seen under the
// catalog being served. It may run concurrently with Decide and Observe.
func (e *Engine) MarshalLearner(pending ...PendingImpression) ([]byte, error) {
	return e.MarshalLearnerPending(func() []PendingImpression { return pending })
}

// MarshalLearnerPending is MarshalLearner with the pending impressions that
// list returns, called after the posteriors are captured. A caller that
// removes an impression from its list before it learns from the outcome
// gets, without a lock, a checkpoint in which an outcome is learned or
// still pending, never both (one that arrives during the checkpoint may be
// in neither).
func (e *Engine) MarshalLearnerPending(list func() []PendingImpression) ([]byte, error) {
	cur := e.cur.Load()
	if cur.on == nil {
		return nil, nil
	}
	ck, err := cur.on.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("cannot checkpoint learner: %w", err)
	}
	b := []byte(learnerMagic)
	putIDs := func(ids []string) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(ids)))
		for _, id := range ids {
			b = binary.LittleEndian.AppendUint16(b, uint16(len(id)))
			b = append(b, id...)
		}
	}
	putIDs(actionIDs(cur.cat))
	putIDs(cur.cat.learn.groups)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ck)))
	b = append(b, ck...)
	pending := list()
	if len(pending) > MaxPendingInCheckpoint {
		return nil, fmt.Errorf("cannot checkpoint learner: %d pending impressions exceed the limit of %d", len(pending), MaxPendingInCheckpoint)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(pending)))
	for _, p := range pending {
		if len(p.Customer) > math.MaxUint16 || len(p.Action) > math.MaxUint16 {
			return nil, errors.New("cannot checkpoint learner: a pending impression's id exceeds 65535 bytes")
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.Customer)))
		b = append(b, p.Customer...)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.Action)))
		b = append(b, p.Action...)
		b = binary.LittleEndian.AppendUint64(b, uint64(p.At.UnixNano()))
		if r := p.Seen; r == nil || r.cat != cur.cat || len(r.row) > math.MaxUint16 {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Seen.off))
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.Seen.row)))
		for _, x := range p.Seen.row {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// UnmarshalLearner restores a checkpoint from MarshalLearner onto the
// catalog being served: posteriors are matched by action and group id, and
// actions unknown to the checkpoint start from their prior. The learning
// features must be the same, in the same order. On error nothing changes.
// Pending impressions in the checkpoint are ignored (see RestoreLearner).
func (e *Engine) UnmarshalLearner(data []byte) error {
	_, err := e.RestoreLearner(data)
	return err
}

// RestoreLearner is UnmarshalLearner that also returns the pending
// impressions saved with the checkpoint (none from a version 1
// checkpoint), oldest first. Those of actions no longer in the catalog are
// dropped; what a decision saw is kept (the learning features are the
// same, or the checkpoint does not load).
func (e *Engine) RestoreLearner(data []byte) ([]PendingImpression, error) {
	fail := func(format string, args ...any) ([]PendingImpression, error) {
		return nil, fmt.Errorf("cannot restore learner checkpoint: "+format, args...)
	}
	if len(data) < len(learnerMagic)+4 {
		return fail("bad magic")
	}
	version := 0
	switch string(data[:len(learnerMagic)]) {
	case learnerMagicV1:
		version = 1
	case learnerMagic:
		version = 2
	default:
		return fail("bad magic")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return fail("checksum mismatch: stored %08x, computed %08x", sum, got)
	}
	r := ckReader{b: body[len(learnerMagic):]}
	acts := r.ids()
	groups := r.ids()
	ck := r.bytes(int(r.u32()))
	type rawPending struct {
		p    PendingImpression
		seen bool
		off  float64
		row  []float64
	}
	var raw []rawPending
	if version >= 2 {
		n := int(r.u32())
		if n > MaxPendingInCheckpoint {
			return fail("%d pending impressions exceed the limit of %d", n, MaxPendingInCheckpoint)
		}
		raw = make([]rawPending, 0, min(n, 1<<16))
		for range n {
			if r.err != nil {
				break
			}
			var x rawPending
			x.p.Customer = string(r.bytes(int(r.u16())))
			x.p.Action = string(r.bytes(int(r.u16())))
			x.p.At = time.Unix(0, int64(r.u64())).UTC()
			if r.u8() == 1 {
				x.seen, x.off = true, math.Float64frombits(r.u64())
				x.row = make([]float64, 0, 8)
				for range int(r.u16()) {
					if r.err != nil {
						break
					}
					x.row = append(x.row, math.Float64frombits(r.u64()))
				}
			}
			raw = append(raw, x)
		}
	}
	if r.err != nil {
		return fail("%v", r.err)
	}
	if len(r.b) != 0 {
		return fail("%d trailing bytes", len(r.b))
	}
	e.learnMu.Lock()
	defer e.learnMu.Unlock()
	cur := e.cur.Load()
	if cur.on == nil {
		return fail("the catalog has no learning section")
	}
	next := &learner{cat: cur.cat}
	var err error
	if next.on, err = cur.cat.learn.newOnline(e.onlineNow); err == nil {
		err = restoreOnline(next.on, cur.cat, ck, acts, groups)
	}
	if err != nil {
		return fail("%v", err)
	}
	e.cur.Store(next)
	pending := make([]PendingImpression, 0, len(raw))
	for _, x := range raw {
		a, ok := cur.cat.byID[x.p.Action]
		if !ok {
			continue
		}
		if x.seen && len(x.row) == len(cur.cat.learn.feats) {
			x.p.Seen = &Recalled{cat: cur.cat, a: int32(a), row: x.row, off: x.off}
		}
		pending = append(pending, x.p)
	}
	slices.SortStableFunc(pending, func(a, b PendingImpression) int { return a.At.Compare(b.At) })
	return pending, nil
}

// restoreOnline loads into on (fresh, for catalog c) the posteriors of a
// model.Online checkpoint whose actions and groups have the given ids.
func restoreOnline(on *model.Online, c *Catalog, ck []byte, acts, groups []string) error {
	feats, dim, recs, err := splitOnline(ck)
	if err != nil {
		return err
	}
	if !slices.Equal(feats, on.Features()) {
		return fmt.Errorf("learning features %q differ from the catalog's %q", feats, on.Features())
	}
	if len(recs) != len(acts)+len(groups) {
		return fmt.Errorf("checkpoint holds %d posteriors for %d actions and %d groups", len(recs), len(acts), len(groups))
	}
	byID := make(map[string]int, len(acts))
	for i, id := range acts {
		byID[id] = i
	}
	gByID := make(map[string]int, len(groups))
	for i, id := range groups {
		gByID[id] = len(acts) + i
	}
	out := make([]byte, 0, len(ck))
	out = append(out, ck[:len(onlineMagic)+4]...) // magic, version
	out = binary.LittleEndian.AppendUint32(out, uint32(dim))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(c.actions)))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(c.learn.groups)))
	for _, f := range feats {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	put := func(i int, ok bool) {
		if !ok || recs[i] == nil {
			out = append(out, 0)
			return
		}
		out = append(out, 1)
		out = append(out, recs[i]...)
	}
	for i := range c.actions {
		j, ok := byID[c.actions[i].ID]
		put(j, ok)
	}
	for _, g := range c.learn.groups {
		j, ok := gByID[g]
		put(j, ok)
	}
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
	return on.UnmarshalBinary(out)
}

// The model.Online checkpoint layout (see model/online.go): "NBAONLN1",
// u32 version, u32 dim, u32 actions, u32 groups, dim-1 × (u16 len, name),
// (actions+groups) × (u8 present, [f64 n, i64 t, dim × f64 m, dim × f64 q]),
// u32 CRC-32C.
const onlineMagic = "NBAONLN1"

// splitOnline splits a model.Online checkpoint into its feature names and
// raw posterior records (nil when absent). Values are validated by
// model.Online.UnmarshalBinary when the records are loaded again.
func splitOnline(ck []byte) (feats []string, dim int, recs [][]byte, err error) {
	if len(ck) < len(onlineMagic)+20 || string(ck[:len(onlineMagic)]) != onlineMagic {
		return nil, 0, nil, errors.New("bad online model checkpoint")
	}
	if got, want := crc32.Checksum(ck[:len(ck)-4], castagnoli), binary.LittleEndian.Uint32(ck[len(ck)-4:]); got != want {
		return nil, 0, nil, errors.New("online model checkpoint: checksum mismatch")
	}
	r := ckReader{b: ck[len(onlineMagic) : len(ck)-4]}
	if v := r.u32(); v != 1 {
		return nil, 0, nil, fmt.Errorf("online model checkpoint: unsupported version %d", v)
	}
	dim = int(r.u32())
	na, ng := int(r.u32()), int(r.u32())
	if dim < 1 || dim > 1+MaxLearningFeatures*4 || na+ng > 1<<21 {
		return nil, 0, nil, fmt.Errorf("online model checkpoint: bad shape %d × %d × %d", dim, na, ng)
	}
	for range dim - 1 {
		feats = append(feats, string(r.bytes(int(r.u16()))))
	}
	size := 16 + 16*dim
	recs = make([][]byte, na+ng)
	for i := range recs {
		if r.u8() == 1 {
			recs[i] = r.bytes(size)
		}
	}
	if r.err != nil {
		return nil, 0, nil, fmt.Errorf("online model checkpoint: %v", r.err)
	}
	if len(r.b) != 0 {
		return nil, 0, nil, fmt.Errorf("online model checkpoint: %d trailing bytes", len(r.b))
	}
	return feats, dim, recs, nil
}

// ckReader decodes checkpoints; the first short read sets err and every
// later read returns zero.
type ckReader struct {
	b   []byte
	err error
}

func (r *ckReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errors.New("unexpected end of data")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *ckReader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *ckReader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *ckReader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *ckReader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *ckReader) ids() []string {
	n := int(r.u32())
	if n > 2*MaxActions {
		r.err = fmt.Errorf("%d ids, more than the limit of %d", n, 2*MaxActions)
		return nil
	}
	ids := make([]string, 0, min(n, 1024))
	for range n {
		if r.err != nil {
			break
		}
		ids = append(ids, string(r.bytes(int(r.u16()))))
	}
	return ids
}
