package nba

import (
	"strconv"
	"time"
)

// CapInfo is one cap of the catalog (an action's or a group's "caps:") or
// one channel limit ("policies:"): at most Max contacts with Outcome for
// Key, by Scope, in any Window.
type CapInfo struct {
	Scope   Scope
	Key     string
	Outcome Outcome
	Window  time.Duration
	Max     int
	Desc    string // as explanations phrase it, e.g. "group sales: at most 2 impressions in 7d"
	Channel bool   // a channel limit, else a cap of an action or group
	// Exact: the cap is reserved by the decision that gives an action
	// under it ("exact: true"), so that replicas sharing one state never
	// give past it; it counts impressions plus live reservations.
	Exact bool
}

// Caps lists the catalog's channel limits, then its caps, each once (a
// group's cap, which every action of the group carries, once); not its
// suppressions. For the customer view's counts and headroom.
func (c *Catalog) Caps() []CapInfo {
	type key struct {
		q, max int32
		desc   string
	}
	seen := map[key]bool{}
	var out []CapInfo
	add := func(l *limit, channel bool) {
		k := key{l.q, l.max, l.desc}
		if l.supp || seen[k] {
			return
		}
		seen[k] = true
		q := c.queries[l.q]
		out = append(out, CapInfo{Scope: q.scope, Key: q.key, Outcome: q.outcome, Window: q.window, Max: int(l.max), Desc: l.desc, Channel: channel, Exact: l.exact})
	}
	for _, ls := range c.chanLimits {
		for i := range ls {
			add(&ls[i], true)
		}
	}
	for ai := range c.actions {
		for i := range c.actions[ai].limits {
			add(&c.actions[ai].limits[i], false)
		}
	}
	return out
}

// Exact caps. A cap counted from impressions alone is as exact as the
// impressions are timely: replicas that decide for one customer before
// the impression of another's decision is recorded can each give the
// last slot. A cap or channel limit marked "exact: true" is also counted
// from reservations: the integration reserves each action a decision
// gives under exact caps (ExactCaps) in the shared customer state before
// answering, atomically with a check of the caps, and the impression
// quoting the decision turns the reservation into the contact. The
// engine counts the customer's live reservations into exact caps
// (ReservedHistory), so a slot reserved elsewhere already removes the
// action here.

// ReservedHistory is implemented by a CustomerHistory whose store holds
// reservations of exact caps.
type ReservedHistory interface {
	// Reserved returns how many reservations, live at now, count toward
	// the exact cap on the key (action id, group id or channel name) of
	// the scope.
	Reserved(scope Scope, key string, now time.Time) int
}

// reserved returns the live reservations counted into the exact cap of
// query q (not memoised: a customer has few reservations, usually none).
func (c *evalCtx) reserved(q int32) int32 {
	if c.resv == nil {
		return 0
	}
	h := &c.queries[q]
	return int32(c.resv.Reserved(h.scope, h.key, c.nowT))
}

// exactDesc is the suffix of an exact cap's description.
func exactDesc(exact bool) string {
	if exact {
		return " (exact)"
	}
	return ""
}

// reservedWhy is the reason an exact cap removed a candidate when
// reservations were part of its count (explanations only: allocates).
func reservedWhy(desc string, n int) string {
	return desc + ", " + strconv.Itoa(n) + " reserved by decisions awaiting their impression"
}

// indexExact notes whether any cap or channel limit is exact.
func (c *Catalog) indexExact() {
	for _, ls := range c.chanLimits {
		for i := range ls {
			c.exact = c.exact || ls[i].exact
		}
	}
	for ai := range c.actions {
		for i := range c.actions[ai].limits {
			c.exact = c.exact || c.actions[ai].limits[i].exact
		}
	}
}

// HasExact reports whether any cap or channel limit of the catalog is
// exact: only then do decisions reserve and impressions quote their
// decision.
func (c *Catalog) HasExact() bool { return c.exact }

// ExactCaps appends to dst the exact caps an action given on the channel
// (an index, see ChannelIndex) must respect: the channel's exact limits,
// then the action's and its groups' exact caps.
func (c *Catalog) ExactCaps(dst []CapInfo, a *Action, channel int) []CapInfo {
	if !c.exact {
		return dst
	}
	add := func(l *limit, ch bool) {
		if l.exact {
			q := c.queries[l.q]
			dst = append(dst, CapInfo{Scope: q.scope, Key: q.key, Outcome: q.outcome, Window: q.window, Max: int(l.max), Desc: l.desc, Channel: ch, Exact: true})
		}
	}
	if channel >= 0 && channel < len(c.chanLimits) {
		for i := range c.chanLimits[channel] {
			add(&c.chanLimits[channel][i], true)
		}
	}
	for i := range a.limits {
		add(&a.limits[i], false)
	}
	return dst
}
