package nba

import (
	"context"
	"slices"
	"time"
)

// OnEvent applies a customer event (a purchase, a sign-up, a cart
// abandonment) to the journeys and appends the state changes to persist to
// dst, as EventMoves from the customer's journeys as Customers loads them
// now. A caller that can apply the moves atomically with its read of the
// journeys calls EventMoves inside its per-customer update instead. When
// the customer's state cannot be read, it appends nothing.
func (e *Engine) OnEvent(customer, event string, attrs map[string]string, now time.Time, dst []JourneyUpdate) []JourneyUpdate {
	c := e.cur.Load().cat
	if customer == "" || len(c.journeys) == 0 {
		return dst
	}
	s := e.pool.Get().(*scratch)
	defer e.pool.Put(s)
	s.prepare(c)
	s.cust.Profile.reset(c.nfields)
	s.cust.History, s.cust.Journeys = nil, s.cust.Journeys[:0]
	if _, err := e.customers.Load(context.Background(), customer, &s.cust); err != nil {
		return dst
	}
	return e.EventMoves(event, attrs, now, s.cust.Journeys, dst)
}

// EventMoves returns, appended to dst, the journey changes an event causes
// to a customer whose journeys stand as cur: entries into journeys whose
// entry event it is (and whose entry match attributes all equal attrs'),
// exits from active journeys that list it as an exit event. A customer
// enters a journey only once. It is a pure function of its inputs and the
// catalog, so a state store can call it inside its atomic per-customer
// update; it allocates only when dst grows.
func (e *Engine) EventMoves(event string, attrs map[string]string, now time.Time, cur []JourneyState, dst []JourneyUpdate) []JourneyUpdate {
	c := e.cur.Load().cat
	if len(c.journeys) == 0 {
		return dst
	}
	for si := range cur {
		st := &cur[si]
		ji, ok := c.journeyIdx[st.Journey]
		if !ok || st.Status != JourneyActive || !slices.Contains(c.journeys[ji].exitEvts, event) {
			continue
		}
		u := JourneyUpdate{JourneyState: *st, Reason: "exit", FromStep: st.Step, FromStatus: st.Status}
		u.Status = JourneyExited
		dst = append(dst, u)
	}
	for ji := range c.journeys {
		j := &c.journeys[ji]
		if j.entryEvt != event || stateIn(cur, j.id) || !matches(j.match, attrs) {
			continue
		}
		dst = append(dst, JourneyUpdate{Reason: "enter",
			JourneyState: JourneyState{Journey: j.id, Status: JourneyActive, EnteredAt: now}})
	}
	return dst
}

func stateIn(states []JourneyState, journey string) bool {
	for i := range states {
		if states[i].Journey == journey {
			return true
		}
	}
	return false
}

func matches(want, got map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// JourneyEvents lists the event types the catalog's journeys enter or exit
// on, sorted, without repeats.
func (c *Catalog) JourneyEvents() []string {
	var evs []string
	for i := range c.journeys {
		j := &c.journeys[i]
		if j.entryEvt != "" {
			evs = append(evs, j.entryEvt)
		}
		evs = append(evs, j.exitEvts...)
	}
	slices.Sort(evs)
	return slices.Compact(evs)
}

// JourneyPlan says where a customer's state st in a journey leads, as the
// engine reads it: the journey's mode ("lock" or "free"), and for an
// active state with a step left, the action of the next step and when it
// falls due (the previous step's time, or the entry's, plus the step's
// wait; the step may still wait for a rule or a channel). ok is false for
// a journey the catalog does not have.
func (c *Catalog) JourneyPlan(st JourneyState) (mode, next string, due time.Time, ok bool) {
	ji, ok := c.journeyIdx[st.Journey]
	if !ok {
		return "", "", time.Time{}, false
	}
	j := &c.journeys[ji]
	mode = "free"
	if j.lock {
		mode = "lock"
	}
	if st.Status != JourneyActive || st.Step < 0 || st.Step >= len(j.steps) {
		return mode, "", time.Time{}, true
	}
	last := st.LastStepAt
	if last.IsZero() {
		last = st.EnteredAt
	}
	return mode, c.actions[j.steps[st.Step]].ID, last.Add(j.waits[st.Step]), true
}
