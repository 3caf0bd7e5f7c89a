package nba

import (
	"fmt"
	"sync"
	"time"
)

// Decision memory: what a learning decision saw, kept for its feedback.
//
// An online model learns from (features, outcome) pairs, and the features
// must be those the decision saw: the request's context (page, basket,
// device), which feedback does not repeat, and the profile as it was, not
// as the outcome may since have changed it (a conversion event updating a
// "purchases" field would leak the outcome into its own features). So a
// decision whose Request.Remember is set stores, for each action it shows,
// the learning features and the offline offset it used, under that key, in
// a fixed ring of Config.DecisionMemory slots; Recall reads them back by
// key when feedback arrives, and ObserveRecalled learns from them.
//
// The ring is bounded memory without allocation: a slot is overwritten by
// the next decision whose key falls in it, so a decision is remembered for
// about DecisionMemory decisions (65,536 by default: about a minute at
// 1,000 decisions/s). Callers keep what they need longer, e.g. with the
// impression awaiting its outcome. A decision no longer remembered is
// learned from as Observe does.

// DefaultDecisionMemory is the decision memory's default number of slots.
const DefaultDecisionMemory = 1 << 16

// memActions is how many shown actions of one decision a slot remembers.
const memActions = 8

// memSlot is one remembered decision; its features are in the ring's rows.
type memSlot struct {
	key  uint64
	cust uint64 // hash of the customer (erase.go), 0 for none
	cat  *Catalog
	n    int32
	acts [memActions]int32
	offs [memActions]float64
}

// decisionMemory is the ring. Slots are guarded by striped locks: writers
// (decisions) and readers (feedback) of different slots rarely meet.
type decisionMemory struct {
	nf    int
	mask  uint64
	slots []memSlot
	rows  []float64 // slot i's features: rows[i*nf:(i+1)*nf]
	locks [64]sync.Mutex
}

func newDecisionMemory(slots, nf int) *decisionMemory {
	n := 1
	for n < slots {
		n <<= 1
	}
	return &decisionMemory{nf: nf, mask: uint64(n - 1), slots: make([]memSlot, n), rows: make([]float64, n*nf)}
}

// put remembers a decision: its learning features (row: the customer's and
// the context's, the same for every action) and its shown actions (at
// most memActions) with their offsets. It does not allocate.
func (m *decisionMemory) put(key, cust uint64, c *Catalog, row []float64, acts []int32, offs []float64) {
	i := key & m.mask
	mu := &m.locks[i&63]
	mu.Lock()
	s := &m.slots[i]
	s.key, s.cust, s.cat = key, cust, c
	s.n = int32(copy(s.acts[:], acts))
	copy(s.offs[:], offs)
	copy(m.rows[int(i)*m.nf:(int(i)+1)*m.nf], row)
	mu.Unlock()
}

// get returns a copy of what the decision under key remembered for action
// a of catalog c.
func (m *decisionMemory) get(key uint64, c *Catalog, a int32) (row []float64, off float64, ok bool) {
	i := key & m.mask
	mu := &m.locks[i&63]
	mu.Lock()
	defer mu.Unlock()
	s := &m.slots[i]
	if s.key != key || s.cat != c {
		return nil, 0, false
	}
	for j := range s.n {
		if s.acts[j] == a {
			return append([]float64(nil), m.rows[int(i)*m.nf:(int(i)+1)*m.nf]...), s.offs[j], true
		}
	}
	return nil, 0, false
}

// Recalled is what a decision remembered for one shown action (Recall).
type Recalled struct {
	cat *Catalog
	a   int32
	row []float64
	off float64
}

// Recall returns what the decision made with Request.Remember set to key
// remembered for the shown action, if it still is in the decision memory
// and the catalog has not changed since.
func (e *Engine) Recall(key uint64, actionID string) (*Recalled, bool) {
	cur := e.cur.Load()
	mem := cur.mem.Load()
	if mem == nil || key == 0 {
		return nil, false
	}
	a, ok := cur.cat.byID[actionID]
	if !ok {
		return nil, false
	}
	row, off, ok := mem.get(key, cur.cat, int32(a))
	if !ok {
		e.recallMisses.Add(1)
		return nil, false
	}
	e.recalled.Add(1)
	return &Recalled{cat: cur.cat, a: int32(a), row: row, off: off}, true
}

// ObserveRecalled is Observe with the features and offset the decision
// saw (r from Recall). When r is nil or the catalog changed since, it
// observes as Observe does, from the customer's current profile.
func (e *Engine) ObserveRecalled(r *Recalled, customer, actionID string, reward float64, now time.Time) error {
	if r == nil {
		return e.Observe(customer, actionID, reward, now)
	}
	if !(reward >= 0 && reward <= 1) {
		return e.Observe(customer, actionID, reward, now) // rejects it alike
	}
	if now.IsZero() {
		now = time.Now()
	}
	e.learnMu.RLock()
	cur := e.cur.Load()
	if cur.cat != r.cat || cur.on == nil {
		e.learnMu.RUnlock()
		return e.Observe(customer, actionID, reward, now)
	}
	defer e.learnMu.RUnlock()
	e.obsNow.Store(now.UnixNano())
	if !cur.on.Update(int(r.a), r.row, r.off, reward) {
		e.observeRejected.Add(1)
		return fmt.Errorf("cannot observe action %q: the online model rejected the observation", actionID)
	}
	e.observed.Add(1)
	return nil
}

// remember stores the decision in the decision memory: the learning
// features (s.lx) and its shown actions' offline offsets.
func (e *Engine) remember(cur *learner, s *scratch, key uint64, d *Decision) {
	if key == 0 || len(d.Actions) == 0 || e.memSlots < 0 {
		return
	}
	mem := cur.mem.Load()
	if mem == nil {
		cur.memOnce.Do(func() { cur.mem.Store(newDecisionMemory(e.memSlots, len(cur.cat.learn.feats))) })
		mem = cur.mem.Load()
	}
	var acts [memActions]int32
	var offs [memActions]float64
	n := 0
	for i := range d.Actions {
		ch := &d.Actions[i]
		if ch.Fallback || n == memActions {
			continue
		}
		a := int32(ch.Action.index)
		acts[n] = a
		if j := s.candOf(a); j >= 0 {
			offs[n] = s.cands[j].off
		}
		n++
	}
	mem.put(key, customerHash(s.customer), cur.cat, s.lx, acts[:n], offs[:n])
}

// candOf returns the index in s.cands of action a's candidate, -1 if none.
func (s *scratch) candOf(a int32) int {
	for i := range s.cands {
		if s.cands[i].a == a {
			return i
		}
	}
	return -1
}
