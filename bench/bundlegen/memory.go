package bundlegen

import (
	"math"
	"time"

	"nba/nba"
)

// Profiles serves a bundle's customers to the decision engine from memory.
// It is safe for concurrent use and does not allocate.
type Profiles struct {
	b        *Bundle
	category []bool
}

// Profiles returns the bundle's customers as an nba.Profiles.
func (b *Bundle) Profiles() *Profiles {
	p := &Profiles{b: b, category: make([]bool, len(b.Schema.Fields))}
	for i, f := range b.Schema.Fields {
		p.category[i] = f.Kind == nba.KindCategory
	}
	return p
}

// Profile implements nba.Profiles.
func (p *Profiles) Profile(customer string, out *nba.Profile) bool {
	i := parseCustomerID(customer)
	if i < 0 || i >= p.b.Config.Customers {
		return false
	}
	for fi, col := range p.b.Columns {
		v := col[i]
		out.Num[fi] = v
		if p.category[fi] && !math.IsNaN(v) {
			out.Str[fi] = Segments[int(v)]
		}
	}
	return true
}

// Version implements nba.Profiles.
func (p *Profiles) Version() string { return "bundlegen" }

// History serves a bundle's contact history from memory. It is safe for
// concurrent use and does not allocate.
type History struct {
	b      *Bundle
	chain  [][]string // per action: its group and the group's ancestors
	parent map[string]string
}

// History returns the bundle's contacts as an nba.History.
func (b *Bundle) History() *History {
	h := &History{b: b, parent: map[string]string{}}
	for _, g := range groupTree {
		h.parent[g.id] = g.parent
	}
	for _, g := range b.ActionGroups {
		var c []string
		for ; g != ""; g = h.parent[g] {
			c = append(c, g)
		}
		h.chain = append(h.chain, c)
	}
	return h
}

func (h *History) contacts(customer string) []Contact {
	i := parseCustomerID(customer)
	if i < 0 || i >= h.b.Config.Customers {
		return nil
	}
	return h.b.Contacts[h.b.contactStart[i]:h.b.contactStart[i+1]]
}

// Any implements nba.History.
func (h *History) Any(customer string) bool { return len(h.contacts(customer)) > 0 }

// Count implements nba.History.
func (h *History) Count(customer string, scope nba.Scope, key string, o nba.Outcome, window time.Duration, now time.Time) int {
	from, to := now.Add(-window).Unix(), now.Unix()
	n := 0
	for _, c := range h.contacts(customer) {
		if c.Outcome != o || c.At <= from || c.At > to {
			continue
		}
		switch scope {
		case nba.ScopeAction:
			if h.b.ActionIDs[c.Action] == key {
				n++
			}
		case nba.ScopeChannel:
			if Channels[c.Channel] == key {
				n++
			}
		case nba.ScopeGroup:
			for _, g := range h.chain[c.Action] {
				if g == key {
					n++
					break
				}
			}
		}
	}
	return n
}

// Contacts implements nba.ContactLister.
func (h *History) Contacts(customer string, scope nba.Scope, key string, dst []nba.ContactAt) []nba.ContactAt {
	for _, c := range h.contacts(customer) {
		var match bool
		switch scope {
		case nba.ScopeAction:
			match = h.b.ActionIDs[c.Action] == key
		case nba.ScopeChannel:
			match = Channels[c.Channel] == key
		case nba.ScopeGroup:
			for _, g := range h.chain[c.Action] {
				match = match || g == key
			}
		}
		if match {
			dst = append(dst, nba.ContactAt{At: c.At * int64(time.Second), Outcome: c.Outcome})
		}
	}
	return dst
}
