// Package explore chooses which of the scored candidate actions to show, with
// exploration, and says with which probability the policy shows each of them so
// that its decisions can be evaluated off-policy later.
//
// Methods (one per channel, see Config):
//
//   - none: the k best scores, in order (ties: lower index first).
//   - epsilon: with probability 1-ε the k best; with probability ε a uniformly
//     random ordered k-subset of the candidates (the whole slate explores, not
//     slot by slot).
//   - softmax: a Plackett-Luce ranking with weights exp(score/T): slot 1 is
//     drawn with probability ∝ exp(score/T), each next slot likewise among the
//     candidates left (drawn as the first k of exponential clocks of rates exp(score/T)).
//   - thompson: each candidate's score is value·σ(z) with z drawn from the
//     posterior of its logit, N(mean, variance); the k best draws are shown.
//
// Logged probability. For a shown action a in slot j (0-based), Choice.Prob is
// the marginal probability, given the inputs, that the policy puts a in slot j,
// whatever it puts in the other slots. It is exact (Choice.Samples == 0) for
// none (1), epsilon ((1-ε)·[a is the j-th best] + ε/n), and softmax in slots 0
// and 1 (slot 1: Σ_b π_b·w_a/(W-w_b)). For softmax in slots ≥ 2 and for
// thompson it is a Monte-Carlo estimate over Config.Draws independent re-runs
// of the policy plus the draw that made the decision:
// Prob = (1 + #re-runs with a in slot j) / (Draws + 1), and Choice.Samples =
// Draws + 1. Counting the deciding draw keeps Prob ≥ 1/(Draws+1) (no infinite
// importance weight) at the cost of an upward bias of at most 1/(Draws+1). The
// same re-runs serve every slot of the decision.
//
// Explaining. After Choose, Scratch.Drawn gives the score each candidate was
// ranked by in the deciding draw (thompson: the logit drawn from its
// posterior; softmax: its score perturbed by the race, score - T·ln E, which
// is the Gumbel-max form in score units) and Scratch.RandomSlate whether
// epsilon showed a random slate, so that an explanation can say why a
// candidate with the higher mean ranked lower.
//
// Decisions are deterministic given the Scratch's seed. Policy is immutable and
// safe for concurrent use; a Scratch belongs to one goroutine at a time (keep
// one per request, e.g. in a sync.Pool). Choose does not allocate.
//
// Limits: at most Config.MaxCandidates candidates and Config.MaxSlots slots
// per decision; Choose returns an error beyond them.
package explore

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Method is an exploration method.
type Method uint8

// The exploration methods; see the package documentation.
const (
	None Method = iota
	Epsilon
	Softmax
	Thompson
)

var methodNames = [...]string{None: "none", Epsilon: "epsilon", Softmax: "softmax", Thompson: "thompson"}

// String returns the configuration name of m.
func (m Method) String() string {
	if int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("method(%d)", m)
}

// ParseMethod parses "none", "epsilon", "softmax" or "thompson".
func ParseMethod(s string) (Method, error) {
	for m, name := range methodNames {
		if s == name {
			return Method(m), nil
		}
	}
	return 0, fmt.Errorf("cannot parse exploration method %q: want none, epsilon, softmax or thompson", s)
}

// Config configures a Policy. Zero values take the documented defaults.
type Config struct {
	Method Method
	// Epsilon in (0,1] is the probability of a random slate (epsilon).
	Epsilon float64
	// Temperature > 0, in score units, of softmax: lower is greedier.
	Temperature float64
	// Draws is the number of re-runs behind a Monte-Carlo probability
	// (thompson; softmax slots ≥ 2). Default 100, at most 100000. The cost of
	// a thompson decision is about (Draws+1)·candidates normal draws.
	Draws int
	// MaxCandidates bounds the candidates per decision and sizes the
	// scratch. Default 256, at most 65536.
	MaxCandidates int
	// MaxSlots bounds k, the number of actions shown per decision.
	// Default 8, at most 64.
	MaxSlots int
}

// Policy chooses actions by its Config. It is immutable and safe for
// concurrent use.
type Policy struct {
	cfg Config
}

// New validates cfg and returns a Policy.
func New(cfg Config) (*Policy, error) {
	fail := func(format string, args ...any) (*Policy, error) {
		return nil, fmt.Errorf("cannot configure %s exploration: "+format, append([]any{cfg.Method}, args...)...)
	}
	if cfg.Draws == 0 {
		cfg.Draws = 100
	}
	if cfg.MaxCandidates == 0 {
		cfg.MaxCandidates = 256
	}
	if cfg.MaxSlots == 0 {
		cfg.MaxSlots = 8
	}
	switch {
	case cfg.Method > Thompson:
		return fail("unknown method")
	case cfg.Method == Epsilon && !(cfg.Epsilon > 0 && cfg.Epsilon <= 1):
		return fail("epsilon must be in (0,1], got %g", cfg.Epsilon)
	case cfg.Method == Softmax && !(cfg.Temperature > 0 && !math.IsInf(cfg.Temperature, 0)):
		return fail("temperature must be positive and finite, got %g", cfg.Temperature)
	case cfg.Draws < 1 || cfg.Draws > 100000:
		return fail("draws must be in 1..100000, got %d", cfg.Draws)
	case cfg.MaxCandidates < 1 || cfg.MaxCandidates > 65536:
		return fail("max candidates must be in 1..65536, got %d", cfg.MaxCandidates)
	case cfg.MaxSlots < 1 || cfg.MaxSlots > 64:
		return fail("max slots must be in 1..64, got %d", cfg.MaxSlots)
	}
	return &Policy{cfg: cfg}, nil
}

// Config returns the policy's configuration with defaults filled in.
func (p *Policy) Config() Config { return p.cfg }

// Input holds the candidates of one decision; all its slices are indexed by
// candidate and only read.
type Input struct {
	// Scores are the expected values the candidates are ranked by (none,
	// epsilon, softmax). NaN ranks last and has softmax weight 0.
	Scores []float64
	// Means and Variances of each candidate's logit (thompson).
	Means, Variances []float64
	// Values multiply the sampled probability (thompson); nil means 1.
	Values []float64
}

// Choice is one shown action.
type Choice struct {
	// Index of the candidate in the Input.
	Index int
	// Prob is the marginal probability that the policy shows this candidate
	// in this slot (see the package documentation).
	Prob float64
	// Samples is 0 when Prob is exact, else the number of draws it
	// was estimated from.
	Samples int
}

// Errors of Choose; they are values so that returning them does not allocate.
var (
	ErrTooManyCandidates = errors.New("cannot choose actions: more candidates than the configured maximum")
	ErrTooManySlots      = errors.New("cannot choose actions: more slots than the configured maximum")
	ErrInput             = errors.New("cannot choose actions: input slices have different lengths")
)

// Scratch is per-decision working memory and random state. It is not safe for
// concurrent use.
type Scratch struct {
	pcg    rand.PCG
	rng    *rand.Rand
	keys   []float64
	order  []int
	greedy []int
	chosen []int
	counts []int
	// The deciding draw of the last Choose, for Drawn and RandomSlate.
	drawn  []float64 // per candidate: thompson logit, softmax race key w/E
	method Method
	hi, t  float64 // softmax: the largest score and the temperature
	random bool    // epsilon: the slate was random
}

// NewScratch returns scratch memory sized for p, seeded with (1, 2).
func (p *Policy) NewScratch() *Scratch {
	s := &Scratch{
		keys:   make([]float64, p.cfg.MaxCandidates),
		order:  make([]int, p.cfg.MaxCandidates),
		greedy: make([]int, p.cfg.MaxSlots),
		chosen: make([]int, p.cfg.MaxSlots),
		counts: make([]int, p.cfg.MaxSlots),
		drawn:  make([]float64, p.cfg.MaxCandidates),
	}
	s.pcg.Seed(1, 2)
	s.rng = rand.New(&s.pcg)
	return s
}

// Seed reseeds the scratch's generator; the same seed and inputs give the same
// choices.
func (s *Scratch) Seed(seed1, seed2 uint64) { s.pcg.Seed(seed1, seed2) }

// Drawn returns the score candidate i was ranked by in the deciding draw of
// the last Choose: for thompson the logit drawn from its posterior (the
// caller maps it to its score units, e.g. value·σ(z)), for softmax its score
// perturbed by the race (score - T·ln E, -Inf for weight 0), and NaN for
// none and epsilon, which rank by the scores themselves, or for an index
// beyond the last Choose's candidates.
func (s *Scratch) Drawn(i int) float64 {
	if i < 0 || i >= len(s.drawn) {
		return math.NaN()
	}
	switch s.method {
	case Thompson:
		return s.drawn[i]
	case Softmax:
		return s.hi + s.t*math.Log(s.drawn[i])
	}
	return math.NaN()
}

// RandomSlate reports whether the last Choose was epsilon's random slate
// (with probability ε) rather than the k best scores.
func (s *Scratch) RandomSlate() bool { return s.method == Epsilon && s.random }

// Rand returns the scratch's generator, for callers that need more draws in
// the same decision.
func (s *Scratch) Rand() *rand.Rand { return s.rng }

// Choose appends to dst[:0] the min(k, n) actions to show, in slot order, and
// returns it. It does not allocate when dst has capacity for them.
func (p *Policy) Choose(s *Scratch, in Input, k int, dst []Choice) ([]Choice, error) {
	dst = dst[:0]
	n := len(in.Scores)
	if p.cfg.Method == Thompson {
		n = len(in.Means)
		if len(in.Variances) != n || (in.Values != nil && len(in.Values) != n) {
			return dst, ErrInput
		}
	}
	if n > p.cfg.MaxCandidates || n > len(s.keys) {
		return dst, ErrTooManyCandidates
	}
	if k > p.cfg.MaxSlots || k > len(s.greedy) {
		return dst, ErrTooManySlots
	}
	k = min(k, n)
	s.method, s.random, s.drawn = None, false, s.drawn[:cap(s.drawn)][:n]
	if k <= 0 {
		return dst, nil
	}
	s.method = p.cfg.Method
	switch p.cfg.Method {
	case None:
		topK(in.Scores, k, s.greedy)
		for _, i := range s.greedy[:k] {
			dst = append(dst, Choice{Index: i, Prob: 1})
		}
	case Epsilon:
		topK(in.Scores, k, s.greedy)
		eps := p.cfg.Epsilon
		slate := s.greedy[:k]
		if s.random = s.rng.Float64() < eps; s.random {
			order := s.order[:n]
			for i := range order {
				order[i] = i
			}
			for j := range k { // partial Fisher-Yates
				r := j + s.rng.IntN(n-j)
				order[j], order[r] = order[r], order[j]
			}
			slate = order[:k]
		}
		for j, i := range slate {
			prob := eps / float64(n)
			if i == s.greedy[j] {
				prob += 1 - eps
			}
			dst = append(dst, Choice{Index: i, Prob: prob})
		}
	case Softmax:
		dst = p.softmax(s, in.Scores, k, dst)
	case Thompson:
		dst = p.thompson(s, in, k, dst)
	}
	return dst, nil
}

// softmax draws a Plackett-Luce ranking and computes its slot marginals.
func (p *Policy) softmax(s *Scratch, scores []float64, k int, dst []Choice) []Choice {
	n, t := len(scores), p.cfg.Temperature
	hi := math.Inf(-1)
	for _, v := range scores {
		if v > hi {
			hi = v
		}
	}
	// w = exp((score-max)/T) in keys; W their sum.
	w := s.keys[:n]
	W := 0.0
	for i, v := range scores {
		w[i] = 0
		if v == v && !math.IsInf(hi, -1) {
			w[i] = math.Exp((v - hi) / t)
		}
		W += w[i]
	}
	if !(W > 0) { // every score NaN or -Inf: uniform
		for i := range w {
			w[i] = 1
		}
		W = float64(n)
	}
	s.hi, s.t = hi, t
	raceTopK(s, w, k, s.chosen, s.drawn)
	mc := false
	for j, a := range s.chosen[:k] {
		var prob float64
		switch j {
		case 0:
			prob = w[a] / W
		case 1:
			for b, wb := range w {
				if b != a && W-wb > 0 {
					prob += wb / W * w[a] / (W - wb)
				}
			}
		default:
			mc = true
		}
		dst = append(dst, Choice{Index: a, Prob: prob})
	}
	if mc {
		counts := s.counts[:k]
		clear(counts)
		for range p.cfg.Draws {
			raceTopK(s, w, k, s.greedy, nil)
			for j := 2; j < k; j++ {
				if s.greedy[j] == s.chosen[j] {
					counts[j]++
				}
			}
		}
		for j := 2; j < k; j++ {
			dst[j].Prob = float64(1+counts[j]) / float64(p.cfg.Draws+1)
			dst[j].Samples = p.cfg.Draws + 1
		}
	}
	return dst
}

// raceTopK writes to out[:k] the k largest w_i/E_i with E_i ~ Exp(1): the
// first k arrivals of independent exponential clocks of rates w_i, which is a
// Plackett-Luce draw (the Gumbel-top-k trick without logarithms; Yellott
// 1977). Weight 0 never wins over a positive weight; zero-weight candidates
// fill the slots left when fewer than k have positive weight (their logged
// Prob is then 0 in slot 0). keys, when not nil, receives every candidate's
// race key.
func raceTopK(s *Scratch, w []float64, k int, out []int, keys []float64) {
	var top [64]float64
	m := 0
	for i, wi := range w {
		key := wi / s.rng.ExpFloat64()
		if keys != nil {
			keys[i] = key
		}
		insertTop(&top, out, &m, k, i, key)
	}
}

// insertTop inserts candidate i with key into the descending top-k list
// (keys, idx)[:*m]; ties keep the earlier candidate first.
func insertTop(keys *[64]float64, idx []int, m *int, k, i int, key float64) {
	if *m == k && !(key > keys[k-1]) {
		return
	}
	j := *m
	if j == k {
		j = k - 1
	} else {
		*m++
	}
	for j > 0 && key > keys[j-1] {
		keys[j], idx[j] = keys[j-1], idx[j-1]
		j--
	}
	keys[j], idx[j] = key, i
}

// topK writes the indices of the k largest scores (NaN last, ties by index) to
// out[:k].
func topK(scores []float64, k int, out []int) {
	var keys [64]float64
	m := 0
	for i, v := range scores {
		if v != v {
			v = math.Inf(-1)
		}
		if m == k && !(v > keys[k-1]) {
			continue
		}
		insertTop(&keys, out, &m, k, i, v)
	}
}

// thompson draws one score per candidate, shows the k best and estimates
// each slot's marginal from Draws re-runs. The re-runs skip candidates that
// cannot reach the top k: those whose key at mean+8sd is below the k-th
// largest key at mean-8sd (a normal draw beyond 8 sd has probability 6e-16).
func (p *Policy) thompson(s *Scratch, in Input, k int, dst []Choice) []Choice {
	n := len(in.Means)
	sd := s.keys[:n]
	var lows [64]float64
	m := 0
	for i, v := range in.Variances {
		sd[i] = 0
		if v > 0 {
			sd[i] = math.Sqrt(v)
		}
		lo, _ := keyBounds(in, sd, i)
		insertTop(&lows, s.greedy, &m, k, i, lo)
	}
	floor := lows[k-1]
	contenders := s.order[:0]
	for i := range n {
		if _, hi := keyBounds(in, sd, i); hi >= floor || hi != hi {
			contenders = append(contenders, i)
		}
	}
	thompsonDraw(s, in, sd, nil, k, s.chosen, s.drawn)
	counts := s.counts[:k]
	clear(counts)
	for range p.cfg.Draws {
		thompsonDraw(s, in, sd, contenders, k, s.greedy, nil)
		for j := range counts {
			if s.greedy[j] == s.chosen[j] {
				counts[j]++
			}
		}
	}
	for j, a := range s.chosen[:k] {
		dst = append(dst, Choice{Index: a, Prob: float64(1+counts[j]) / float64(p.cfg.Draws+1), Samples: p.cfg.Draws + 1})
	}
	return dst
}

// keyBounds returns the keys of candidate i at its logit mean ∓ 8 sd, ordered.
func keyBounds(in Input, sd []float64, i int) (lo, hi float64) {
	lo, hi = thompsonKey(in, i, in.Means[i]-8*sd[i]), thompsonKey(in, i, in.Means[i]+8*sd[i])
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// thompsonKey is the ranking key of candidate i at logit z. Without values
// the logit itself is ranked (σ is increasing), saving an exponential.
func thompsonKey(in Input, i int, z float64) float64 {
	if in.Values != nil {
		z = in.Values[i] * sigmoid(z)
	}
	if z != z {
		return math.Inf(-1)
	}
	return z
}

// thompsonDraw ranks one posterior draw over the candidates in idx (all when
// idx is nil); drawn, when not nil, receives every candidate's drawn logit.
func thompsonDraw(s *Scratch, in Input, sd []float64, idx []int, k int, out []int, drawn []float64) {
	var keys [64]float64
	m := 0
	if idx == nil {
		for i, mu := range in.Means {
			z := mu + sd[i]*s.rng.NormFloat64()
			if drawn != nil {
				drawn[i] = z
			}
			insertTop(&keys, out, &m, k, i, thompsonKey(in, i, z))
		}
		return
	}
	for _, i := range idx {
		insertTop(&keys, out, &m, k, i, thompsonKey(in, i, in.Means[i]+sd[i]*s.rng.NormFloat64()))
	}
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}
