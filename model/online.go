package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Online is a set of online Bayesian logistic regressions, one per action, that
// learn a correction to an offline model from responses.
//
// Each action has a diagonal Gaussian posterior N(m, diag(1/q)) over the
// weights of an intercept and the configured features. The logit of a response
// is offset + w0 + Σ w_i·x_i, where offset is the offline model's logit, so the
// posterior only learns how the trained model is wrong for that action. Updates
// follow Chapelle & Li, "An Empirical Evaluation of Thompson Sampling" (NIPS
// 2011), Algorithm 3, with batches of one observation: the new mean is the mode
// of prior × likelihood (found exactly by Newton's method on one scalar, see
// Update) and each precision grows by x_i²·p(1-p) (the Laplace approximation).
//
// Cold start: an action that has never been updated is read from its group's
// posterior with its precisions shrunk toward the prior by
// OnlineConfig.GroupPriorWeight, or from the zero-mean prior with variance
// OnlineConfig.PriorVariance when it has no group or the group has no data.
// Its first update starts from that same distribution.
//
// Forgetting: with Decay or HalfLife set, each update first pulls every
// precision back toward the prior precision (and the evidence toward 0), so old
// observations weigh less and the posterior can follow drifting behaviour.
// Means are not moved; only their certainty shrinks. Reads see the posterior as
// of the last update of the action: time-based decay is applied on update.
//
// Online is safe for concurrent use. Posteriors are immutable and swapped
// copy-on-write behind one atomic.Pointer per action, so Mean, Sample, Logit
// and Evidence never wait for Update and never allocate; updates of one action
// are serialised by a striped mutex and allocate one posterior each.
// NaN feature values are treated as 0 (no evidence about that weight).
type Online struct {
	cfg      OnlineConfig
	dim      int // 1 + len(cfg.Features)
	priorQ   float64
	actions  []atomic.Pointer[onlinePosterior]
	groups   []atomic.Pointer[onlinePosterior]
	locks    [64]sync.Mutex // action updates, striped by action index
	glocks   [16]sync.Mutex // group updates, striped by group index
	updates  atomic.Uint64
	rejected atomic.Uint64
}

// OnlineConfig configures an Online model. Zero values take the documented
// defaults; NewOnline validates it.
type OnlineConfig struct {
	// Features names the inputs x of every call, in order (at most 1024).
	// An intercept is always added in front of them.
	Features []string
	// Actions is the number of actions; action indices are 0..Actions-1.
	// Required, at most 1<<20. Memory is about 16·(1+len(Features)) bytes per
	// updated action.
	Actions int
	// Groups optionally maps each action to a group index in 0..NumGroups-1,
	// or -1 for none. A group posterior is updated by every observation of
	// its actions and is the cold-start prior of its new actions. Nil means
	// no groups.
	Groups []int
	// NumGroups is the number of groups (at most Actions).
	NumGroups int
	// PriorVariance is the variance of the zero-mean Gaussian prior of every
	// weight. Default 1 (the offline model is trusted; corrections start
	// small).
	PriorVariance float64
	// GroupPriorWeight in (0,1] is the fraction of a group's extra precision
	// (above the prior) that a new action inherits. Default 0.1: a new action
	// starts at the group's mean but is as certain as a tenth of the group's
	// evidence.
	GroupPriorWeight float64
	// Decay in [0,1) forgets per update: before each update the extra
	// precision (q - prior) and the evidence are multiplied by 1-Decay.
	// Default 0 (no forgetting). 1e-3 gives an effective memory of about
	// 1000 observations per action.
	Decay float64
	// HalfLife forgets per unit time: before each update the extra precision
	// and the evidence are multiplied by 2^(-elapsed/HalfLife), where elapsed
	// is the time since the action's previous update. Default 0 (off).
	HalfLife time.Duration
	// NewtonSteps bounds the Newton iterations of one update. Default 8; the
	// iteration stops earlier when the step is below 1e-12.
	NewtonSteps int
	// Now is the clock for HalfLife. Default time.Now.
	Now func() time.Time
}

const (
	onlineMaxFeatures = 1024
	onlineMaxActions  = 1 << 20
)

// onlinePosterior is an immutable diagonal Gaussian: never modified once published.
type onlinePosterior struct {
	m, q []float64 // mean and precision per weight; index 0 is the intercept
	n    float64   // evidence: (decayed) number of observations
	t    int64     // unix nanoseconds of the last update
}

// NewOnline validates cfg, fills in its defaults and returns an Online with
// every action at its prior.
func NewOnline(cfg OnlineConfig) (*Online, error) {
	if cfg.Actions <= 0 || cfg.Actions > onlineMaxActions {
		return nil, fmt.Errorf("cannot create online model: actions must be in 1..%d, got %d", onlineMaxActions, cfg.Actions)
	}
	if len(cfg.Features) > onlineMaxFeatures {
		return nil, fmt.Errorf("cannot create online model: %d features exceed the limit of %d", len(cfg.Features), onlineMaxFeatures)
	}
	seen := make(map[string]bool, len(cfg.Features))
	for i, f := range cfg.Features {
		if f == "" || seen[f] {
			return nil, fmt.Errorf("cannot create online model: feature %d: empty or duplicate name %q", i, f)
		}
		seen[f] = true
	}
	if cfg.NumGroups < 0 || cfg.NumGroups > cfg.Actions {
		return nil, fmt.Errorf("cannot create online model: groups must be in 0..%d, got %d", cfg.Actions, cfg.NumGroups)
	}
	if cfg.Groups != nil {
		if len(cfg.Groups) != cfg.Actions {
			return nil, fmt.Errorf("cannot create online model: groups maps %d actions, want %d", len(cfg.Groups), cfg.Actions)
		}
		for a, g := range cfg.Groups {
			if g < -1 || g >= cfg.NumGroups {
				return nil, fmt.Errorf("cannot create online model: action %d: group %d out of range -1..%d", a, g, cfg.NumGroups-1)
			}
		}
	}
	if cfg.PriorVariance == 0 {
		cfg.PriorVariance = 1
	}
	if !(cfg.PriorVariance > 0) || math.IsInf(cfg.PriorVariance, 0) {
		return nil, fmt.Errorf("cannot create online model: prior variance must be positive and finite, got %g", cfg.PriorVariance)
	}
	if cfg.GroupPriorWeight == 0 {
		cfg.GroupPriorWeight = 0.1
	}
	if !(cfg.GroupPriorWeight > 0 && cfg.GroupPriorWeight <= 1) {
		return nil, fmt.Errorf("cannot create online model: group prior weight must be in (0,1], got %g", cfg.GroupPriorWeight)
	}
	if !(cfg.Decay >= 0 && cfg.Decay < 1) {
		return nil, fmt.Errorf("cannot create online model: decay must be in [0,1), got %g", cfg.Decay)
	}
	if cfg.HalfLife < 0 {
		return nil, fmt.Errorf("cannot create online model: half-life must not be negative, got %s", cfg.HalfLife)
	}
	if cfg.NewtonSteps == 0 {
		cfg.NewtonSteps = 8
	}
	if cfg.NewtonSteps < 1 || cfg.NewtonSteps > 100 {
		return nil, fmt.Errorf("cannot create online model: newton steps must be in 1..100, got %d", cfg.NewtonSteps)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Features = append([]string(nil), cfg.Features...)
	cfg.Groups = append([]int(nil), cfg.Groups...)
	return &Online{
		cfg:     cfg,
		dim:     1 + len(cfg.Features),
		priorQ:  1 / cfg.PriorVariance,
		actions: make([]atomic.Pointer[onlinePosterior], cfg.Actions),
		groups:  make([]atomic.Pointer[onlinePosterior], cfg.NumGroups),
	}, nil
}

// Features returns the configured feature names (without the intercept); the
// slice is shared and must not be modified.
func (o *Online) Features() []string { return o.cfg.Features }

// Updates returns the number of accepted updates and the number rejected
// (action out of range, wrong feature count, non-finite input).
func (o *Online) Updates() (accepted, rejected uint64) {
	return o.updates.Load(), o.rejected.Load()
}

// group returns the group of action a, or -1.
func (o *Online) group(a int) int {
	if o.cfg.Groups == nil {
		return -1
	}
	return o.cfg.Groups[a]
}

// view returns the distribution an action is read from: its own posterior, or
// its group's with precisions shrunk by shrink (see OnlineConfig), or nil for
// the plain prior.
func (o *Online) view(a int) (p *onlinePosterior, shrink float64) {
	if p = o.actions[a].Load(); p != nil {
		return p, 1
	}
	if g := o.group(a); g >= 0 {
		if p = o.groups[g].Load(); p != nil {
			return p, o.cfg.GroupPriorWeight
		}
	}
	return nil, 1
}

// Logit returns the mean and variance of the posterior distribution of the
// logit offset + w·(1, x) of action. It returns (offset, PriorVariance·(1+Σx²))
// for an action without data, and (NaN, NaN) when action is out of range or
// len(x) is not the number of features. It never allocates.
func (o *Online) Logit(action int, x []float64, offset float64) (mean, variance float64) {
	if uint(action) >= uint(len(o.actions)) || len(x) != o.dim-1 {
		return math.NaN(), math.NaN()
	}
	p, shrink := o.view(action)
	if p == nil {
		v := 1.0
		for _, xi := range x {
			if xi == xi {
				v += xi * xi
			}
		}
		return offset, v / o.priorQ
	}
	m, q := p.m[:o.dim], p.q[:o.dim]
	mean = offset + m[0]
	variance = 1 / (o.priorQ + shrink*(q[0]-o.priorQ))
	for i, xi := range x {
		if xi != xi {
			continue
		}
		mean += m[i+1] * xi
		variance += xi * xi / (o.priorQ + shrink*(q[i+1]-o.priorQ))
	}
	return mean, variance
}

// Mean returns the posterior predictive probability of a response of action,
// E[σ(logit)], approximated as σ(μ/√(1+πs²/8)) (MacKay 1992), where μ and s²
// are the mean and variance from Logit. NaN on invalid input. It never
// allocates.
func (o *Online) Mean(action int, x []float64, offset float64) float64 {
	mu, v := o.Logit(action, x, offset)
	return onlineSigmoid(mu / math.Sqrt(1+math.Pi*v/8))
}

// Sample returns a Thompson draw of the response probability of action:
// σ(z) with z drawn from the posterior distribution of the logit (exactly the
// distribution of offset + w·(1,x) for w drawn from the diagonal posterior).
// NaN on invalid input. It never allocates; rng must not be shared between
// goroutines.
func (o *Online) Sample(action int, x []float64, offset float64, rng *rand.Rand) float64 {
	mu, v := o.Logit(action, x, offset)
	return onlineSigmoid(mu + math.Sqrt(v)*rng.NormFloat64())
}

// Evidence returns the (decayed) number of observations of action; 0 for an
// action without data or out of range.
func (o *Online) Evidence(action int) (n float64) {
	if uint(action) >= uint(len(o.actions)) {
		return 0
	}
	if p := o.actions[action].Load(); p != nil {
		return p.n
	}
	return 0
}

// Update incorporates one observation: response y (1 or 0; values in between
// are accepted as fractional responses) of action with features x and offline
// logit offset. It returns false and counts a rejection when the input is
// invalid. It is safe to call concurrently with everything; updates of the same
// action are serialised.
func (o *Online) Update(action int, x []float64, offset, y float64) bool {
	if uint(action) >= uint(len(o.actions)) || len(x) != o.dim-1 || !onlineFinite(offset) || !(y >= 0 && y <= 1) {
		o.rejected.Add(1)
		return false
	}
	for _, xi := range x {
		if math.IsInf(xi, 0) {
			o.rejected.Add(1)
			return false
		}
	}
	now := o.cfg.Now().UnixNano()
	mu := &o.locks[action%len(o.locks)]
	mu.Lock()
	cur, shrink := o.view(action)
	o.actions[action].Store(o.step(cur, shrink, now, x, offset, y))
	mu.Unlock()
	if g := o.group(action); g >= 0 {
		gl := &o.glocks[g%len(o.glocks)]
		gl.Lock()
		o.groups[g].Store(o.step(o.groups[g].Load(), 1, now, x, offset, y))
		gl.Unlock()
	}
	o.updates.Add(1)
	return true
}

// step returns the posterior after forgetting and one observation.
func (o *Online) step(cur *onlinePosterior, shrink float64, now int64, x []float64, offset, y float64) *onlinePosterior {
	d := o.dim
	next := &onlinePosterior{m: make([]float64, d), q: make([]float64, d), t: now}
	keep := 1.0
	if cur == nil {
		for i := range next.q {
			next.q[i] = o.priorQ
		}
	} else {
		copy(next.m, cur.m)
		keep = shrink * (1 - o.cfg.Decay)
		if o.cfg.HalfLife > 0 && now > cur.t {
			keep *= math.Exp2(-float64(now-cur.t) / float64(o.cfg.HalfLife))
		}
		for i := range next.q {
			next.q[i] = o.priorQ + keep*(cur.q[i]-o.priorQ)
		}
		if shrink == 1 {
			next.n = keep * cur.n // a cold start inherits no evidence
		}
	}
	m, q := next.m, next.q
	// The mode of N(m, 1/q) × Bernoulli(y; σ(offset + w·x̃)) satisfies
	// w_i = m_i + (y-p)·x̃_i/q_i, so w·x̃ = m·x̃ + s with s = (y-p)·v and
	// v = Σ x̃_i²/q_i: a monotone scalar equation in s solved by Newton.
	z0, v := offset+m[0], 1/q[0]
	for i, xi := range x {
		if xi == xi {
			z0 += m[i+1] * xi
			v += xi * xi / q[i+1]
		}
	}
	s := 0.0
	for range o.cfg.NewtonSteps {
		p := onlineSigmoid(z0 + s)
		f := s - v*(y-p)
		ds := f / (1 + v*p*(1-p))
		s -= ds
		if math.Abs(ds) < 1e-12 {
			break
		}
	}
	p := onlineSigmoid(z0 + s)
	r := y - p
	h := p * (1 - p)
	m[0] += r / q[0]
	q[0] += h
	for i, xi := range x {
		if xi != xi {
			continue
		}
		m[i+1] += r * xi / q[i+1]
		q[i+1] += h * xi * xi
	}
	next.n++
	return next
}

func onlineSigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

func onlineFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Checkpoint format (little-endian), version 1:
//
//	"NBAONLN1" magic, u32 version, u32 dim, u32 actions, u32 groups,
//	dim-1 × (u16 length, name bytes)           feature names
//	actions+groups × (u8 present, [f64 n, i64 t, dim × f64 m, dim × f64 q])
//	u32 CRC-32C of everything before it
const (
	onlineMagic   = "NBAONLN1"
	onlineVersion = 1
)

// MarshalBinary writes a checkpoint of every posterior (a consistent snapshot
// of each action, not of all actions at one instant). It may run concurrently
// with updates.
func (o *Online) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 64+len(o.actions)*(1+16*o.dim+16))
	b = append(b, onlineMagic...)
	b = binary.LittleEndian.AppendUint32(b, onlineVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(o.dim))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(o.actions)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(o.groups)))
	for _, f := range o.cfg.Features {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	put := func(p *onlinePosterior) {
		if p == nil {
			b = append(b, 0)
			return
		}
		b = append(b, 1)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.n))
		b = binary.LittleEndian.AppendUint64(b, uint64(p.t))
		for _, v := range p.m {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		for _, v := range p.q {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	for i := range o.actions {
		put(o.actions[i].Load())
	}
	for i := range o.groups {
		put(o.groups[i].Load())
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, onlineCRC)), nil
}

var onlineCRC = crc32.MakeTable(crc32.Castagnoli)

// UnmarshalBinary replaces every posterior with those of a checkpoint written
// by MarshalBinary. The checkpoint must match the configuration (features in
// the same order, same numbers of actions and groups); on any error nothing is
// changed. Precisions must be positive and all values finite.
func (o *Online) UnmarshalBinary(data []byte) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("cannot load online model checkpoint: "+format, args...)
	}
	if len(data) < len(onlineMagic)+20 {
		return fail("%d bytes is too short", len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if string(body[:len(onlineMagic)]) != onlineMagic {
		return fail("bad magic")
	}
	if got := crc32.Checksum(body, onlineCRC); got != sum {
		return fail("checksum mismatch: stored %08x, computed %08x", sum, got)
	}
	r := onlineReader{b: body[len(onlineMagic):]}
	if v := r.u32(); v != onlineVersion {
		return fail("unsupported version %d (want %d)", v, onlineVersion)
	}
	dim, na, ng := int(r.u32()), int(r.u32()), int(r.u32())
	if dim != o.dim || na != len(o.actions) || ng != len(o.groups) {
		return fail("shape %d weights × %d actions × %d groups does not match the configured %d × %d × %d", dim, na, ng, o.dim, len(o.actions), len(o.groups))
	}
	for i, f := range o.cfg.Features {
		n := int(r.u16())
		if name := string(r.bytes(n)); r.err == nil && name != f {
			return fail("feature %d is %q, configured %q", i, name, f)
		}
	}
	ps := make([]*onlinePosterior, na+ng)
	for i := range ps {
		switch r.u8() {
		case 0:
			continue
		case 1:
		default:
			if r.err == nil {
				return fail("onlinePosterior %d: bad presence flag", i)
			}
		}
		p := &onlinePosterior{n: r.f64(), t: int64(r.u64()), m: make([]float64, dim), q: make([]float64, dim)}
		for j := range p.m {
			p.m[j] = r.f64()
		}
		for j := range p.q {
			p.q[j] = r.f64()
		}
		if r.err != nil {
			break
		}
		if !onlineFinite(p.n) || p.n < 0 {
			return fail("onlinePosterior %d: bad evidence %g", i, p.n)
		}
		for j := range p.m {
			if !onlineFinite(p.m[j]) || !onlineFinite(p.q[j]) || !(p.q[j] > 0) {
				return fail("onlinePosterior %d: weight %d: bad mean %g or precision %g", i, j, p.m[j], p.q[j])
			}
		}
		ps[i] = p
	}
	if r.err != nil {
		return fail("%v", r.err)
	}
	if len(r.b) != 0 {
		return fail("%d trailing bytes", len(r.b))
	}
	for i := range o.actions {
		o.actions[i].Store(ps[i])
	}
	for i := range o.groups {
		o.groups[i].Store(ps[na+i])
	}
	return nil
}

// onlineReader decodes a checkpoint; the first short read sets err and every
// later read returns zero.
type onlineReader struct {
	b   []byte
	err error
}

func (r *onlineReader) bytes(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errors.New("unexpected end of data")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *onlineReader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *onlineReader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *onlineReader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *onlineReader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *onlineReader) f64() float64 { return math.Float64frombits(r.u64()) }
