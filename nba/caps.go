package nba

import "time"

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
		out = append(out, CapInfo{Scope: q.scope, Key: q.key, Outcome: q.outcome, Window: q.window, Max: int(l.max), Desc: l.desc, Channel: channel})
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
