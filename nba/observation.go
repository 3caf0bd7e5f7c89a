package nba

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Learning shared by several engines (replicas of one sidecar).
//
// ObserveRecalled computes an observation's features and applies it in one
// step. Replicas that must learn the same posteriors split the two: the
// replica that receives the outcome computes the Observation (the features
// its decision saw, or the customer's profile now), publishes it in one
// ordered log, and every replica, the publisher included, applies the log
// in its order with Apply. The online update is deterministic in its
// inputs and their order, so replicas that applied the same prefix of the
// log hold bit-identical posteriors.
//
// A decision's features also travel: DecisionFeatures is what the
// decision memory holds for one decision, so that an outcome reaching a
// replica that did not decide still learns from what the decision saw.

// Observation is one learning event with its inputs computed: the action,
// the learning features, the offline offset, the reward and its time.
type Observation struct {
	// Catalog is the version of the catalog whose features these are.
	Catalog  string
	Action   string
	Features []float64
	Offset   float64
	Reward   float64
	At       time.Time
}

// Observation computes what observing the outcome would learn, without
// learning it: from r (Recall, RecallFeatures) when it was seen under the
// catalog being served, otherwise from the customer's current profile as
// Observe does. now is the response's time (zero = time.Now()).
func (e *Engine) Observation(r *Recalled, customer, actionID string, reward float64, now time.Time) (Observation, error) {
	if !(reward >= 0 && reward <= 1) {
		e.observeRejected.Add(1)
		return Observation{}, fmt.Errorf("cannot observe action %q: reward %v is not in [0, 1]", actionID, reward)
	}
	if now.IsZero() {
		now = time.Now()
	}
	cur := e.cur.Load()
	c := cur.cat
	if cur.on == nil {
		return Observation{}, ErrLearningOff
	}
	ai, ok := c.byID[actionID]
	if !ok {
		e.observeRejected.Add(1)
		return Observation{}, fmt.Errorf("cannot observe action %q: not in catalog %q", actionID, c.version)
	}
	o := Observation{Catalog: c.version, Action: c.actions[ai].ID, Reward: reward, At: now}
	if r != nil && r.cat == c && int(r.a) == ai {
		o.Features, o.Offset = append([]float64(nil), r.row...), r.off
		return o, nil
	}
	s := e.pool.Get().(*scratch)
	defer e.pool.Put(s)
	s.prepare(c)
	req := Request{Customer: customer}
	e.load(context.Background(), s, c, &req, now, nil)
	s.cands = append(s.cands[:0], cand{a: int32(ai), p: 1})
	e.scoreOffline(s, c, false)
	s.learnRow(c)
	o.Features, o.Offset = append([]float64(nil), s.lx[:len(c.learn.feats)]...), c.offset(&s.cands[0])
	return o, nil
}

// Apply learns one observation (from Observation, possibly computed by
// another engine on the same catalog). An observation of another catalog
// version, or of an action the catalog no longer has, is refused and
// counted as rejected.
func (e *Engine) Apply(o Observation) error {
	e.learnMu.RLock()
	defer e.learnMu.RUnlock()
	cur := e.cur.Load()
	if cur.on == nil {
		return ErrLearningOff
	}
	c := cur.cat
	ai, ok := c.byID[o.Action]
	if !ok || o.Catalog != c.version || len(o.Features) != len(c.learn.feats) {
		e.observeRejected.Add(1)
		return fmt.Errorf("cannot apply observation of action %q: made for catalog %q with %d features, serving %q with %d",
			o.Action, o.Catalog, len(o.Features), c.version, len(c.learn.feats))
	}
	e.obsNow.Store(o.At.UnixNano())
	if !cur.on.Update(ai, o.Features, o.Offset, o.Reward) {
		e.observeRejected.Add(1)
		return fmt.Errorf("cannot observe action %q: the online model rejected the observation", o.Action)
	}
	e.observed.Add(1)
	return nil
}

// Observation encoding (little-endian): "NBAOBS1", u16 len + catalog,
// u16 len + action, f64 reward, i64 time in unix ns, f64 offset, u16 n,
// n × f64 features.
const observationMagic = "NBAOBS1"

// AppendBinary appends the observation's encoding to dst.
func (o *Observation) AppendBinary(dst []byte) ([]byte, error) {
	if len(o.Catalog) > math.MaxUint16 || len(o.Action) > math.MaxUint16 || len(o.Features) > MaxLearningFeatures {
		return dst, errors.New("cannot encode observation: an id or the features exceed their limit")
	}
	dst = append(dst, observationMagic...)
	dst = appendStr16(dst, o.Catalog)
	dst = appendStr16(dst, o.Action)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(o.Reward))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(o.At.UnixNano()))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(o.Offset))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(o.Features)))
	for _, x := range o.Features {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	}
	return dst, nil
}

// UnmarshalBinary decodes an encoding from AppendBinary.
func (o *Observation) UnmarshalBinary(b []byte) error {
	if len(b) < len(observationMagic) || string(b[:len(observationMagic)]) != observationMagic {
		return errors.New("cannot decode observation: bad magic")
	}
	r := ckReader{b: b[len(observationMagic):]}
	o.Catalog = string(r.bytes(int(r.u16())))
	o.Action = string(r.bytes(int(r.u16())))
	o.Reward = math.Float64frombits(r.u64())
	o.At = time.Unix(0, int64(r.u64())).UTC()
	o.Offset = math.Float64frombits(r.u64())
	n := int(r.u16())
	if n > MaxLearningFeatures {
		return fmt.Errorf("cannot decode observation: %d features, more than the limit of %d", n, MaxLearningFeatures)
	}
	o.Features = make([]float64, 0, n)
	for range n {
		o.Features = append(o.Features, math.Float64frombits(r.u64()))
	}
	if r.err != nil {
		return fmt.Errorf("cannot decode observation: %w", r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("cannot decode observation: %d trailing bytes", len(r.b))
	}
	return nil
}

// DecisionFeatures is what the decision memory holds for one decision:
// the learning features it saw (request context and profile as they were)
// and, for each shown action, its offline offset.
type DecisionFeatures struct {
	Catalog  string
	Features []float64
	Actions  []string
	Offsets  []float64
}

// RememberedDecision returns what the decision made with Request.Remember
// set to key remembered, while the decision memory still holds it under
// the catalog being served.
func (e *Engine) RememberedDecision(key uint64) (DecisionFeatures, bool) {
	cur := e.cur.Load()
	mem := cur.mem.Load()
	if mem == nil || key == 0 {
		return DecisionFeatures{}, false
	}
	i := key & mem.mask
	mu := &mem.locks[i&63]
	mu.Lock()
	defer mu.Unlock()
	s := &mem.slots[i]
	if s.key != key || s.cat != cur.cat {
		return DecisionFeatures{}, false
	}
	d := DecisionFeatures{Catalog: cur.cat.version, Features: append([]float64(nil), mem.rows[int(i)*mem.nf:(int(i)+1)*mem.nf]...),
		Actions: make([]string, s.n), Offsets: append([]float64(nil), s.offs[:s.n]...)}
	for j := range s.n {
		d.Actions[j] = cur.cat.actions[s.acts[j]].ID
	}
	return d, true
}

// RecallFeatures is Recall from decision features kept elsewhere (e.g.
// written by another replica): it fails when they were seen under another
// catalog version or did not show the action.
func (e *Engine) RecallFeatures(d DecisionFeatures, actionID string) (*Recalled, bool) {
	cur := e.cur.Load()
	if cur.on == nil || d.Catalog != cur.cat.version || len(d.Features) != len(cur.cat.learn.feats) {
		return nil, false
	}
	a, ok := cur.cat.byID[actionID]
	if !ok {
		return nil, false
	}
	for j, id := range d.Actions {
		if id == actionID && j < len(d.Offsets) {
			return &Recalled{cat: cur.cat, a: int32(a), row: append([]float64(nil), d.Features...), off: d.Offsets[j]}, true
		}
	}
	return nil, false
}

// Decision features encoding (little-endian): "NBADEC1", u16 len +
// catalog, u16 n, n × f64 features, u8 m, m × (u16 len + action, f64
// offset).
const decisionFeaturesMagic = "NBADEC1"

// AppendBinary appends the decision features' encoding to dst.
func (d *DecisionFeatures) AppendBinary(dst []byte) ([]byte, error) {
	if len(d.Catalog) > math.MaxUint16 || len(d.Features) > MaxLearningFeatures || len(d.Actions) > memActions || len(d.Offsets) != len(d.Actions) {
		return dst, errors.New("cannot encode decision features: out of limits")
	}
	dst = append(dst, decisionFeaturesMagic...)
	dst = appendStr16(dst, d.Catalog)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(d.Features)))
	for _, x := range d.Features {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	}
	dst = append(dst, byte(len(d.Actions)))
	for j, id := range d.Actions {
		if len(id) > math.MaxUint16 {
			return dst, errors.New("cannot encode decision features: action id exceeds 65535 bytes")
		}
		dst = appendStr16(dst, id)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(d.Offsets[j]))
	}
	return dst, nil
}

// UnmarshalBinary decodes an encoding from AppendBinary.
func (d *DecisionFeatures) UnmarshalBinary(b []byte) error {
	if len(b) < len(decisionFeaturesMagic) || string(b[:len(decisionFeaturesMagic)]) != decisionFeaturesMagic {
		return errors.New("cannot decode decision features: bad magic")
	}
	r := ckReader{b: b[len(decisionFeaturesMagic):]}
	d.Catalog = string(r.bytes(int(r.u16())))
	n := int(r.u16())
	if n > MaxLearningFeatures {
		return fmt.Errorf("cannot decode decision features: %d features, more than the limit of %d", n, MaxLearningFeatures)
	}
	d.Features = make([]float64, 0, n)
	for range n {
		d.Features = append(d.Features, math.Float64frombits(r.u64()))
	}
	m := int(r.u8())
	if m > memActions {
		return fmt.Errorf("cannot decode decision features: %d actions, more than the limit of %d", m, memActions)
	}
	d.Actions, d.Offsets = make([]string, 0, m), make([]float64, 0, m)
	for range m {
		d.Actions = append(d.Actions, string(r.bytes(int(r.u16()))))
		d.Offsets = append(d.Offsets, math.Float64frombits(r.u64()))
	}
	if r.err != nil {
		return fmt.Errorf("cannot decode decision features: %w", r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("cannot decode decision features: %d trailing bytes", len(r.b))
	}
	return nil
}

func appendStr16(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}
