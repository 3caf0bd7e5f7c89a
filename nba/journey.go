package nba

import (
	"slices"
	"time"
)

// OnEvent applies a customer event (a purchase, a sign-up, a cart
// abandonment) to the journeys and appends the state changes to persist to
// dst: entries into journeys whose entry event it is (and whose entry match
// attributes all equal attrs'), exits from active journeys that list it as
// an exit event. A customer enters a journey only once. It reads journey
// state through the engine's Journeys and allocates only when dst grows.
func (e *Engine) OnEvent(customer, event string, attrs map[string]string, now time.Time, dst []JourneyUpdate) []JourneyUpdate {
	c := e.cur.Load().cat
	if customer == "" || len(c.journeys) == 0 {
		return dst
	}
	s := e.pool.Get().(*scratch)
	defer e.pool.Put(s)
	s.prepare(c)
	s.states = s.states[:0]
	if e.journeys != nil {
		s.states = e.journeys.Journeys(customer, s.states)
	}
	for si := range s.states {
		st := &s.states[si]
		ji, ok := c.journeyIdx[st.Journey]
		if !ok || st.Status != JourneyActive || !slices.Contains(c.journeys[ji].exitEvts, event) {
			continue
		}
		u := JourneyUpdate{JourneyState: *st, Reason: "exit"}
		u.Status = JourneyExited
		dst = append(dst, u)
	}
	for ji := range c.journeys {
		j := &c.journeys[ji]
		if j.entryEvt != event || s.stateOf(j.id) >= 0 || !matches(j.match, attrs) {
			continue
		}
		dst = append(dst, JourneyUpdate{Reason: "enter",
			JourneyState: JourneyState{Journey: j.id, Status: JourneyActive, EnteredAt: now}})
	}
	return dst
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
