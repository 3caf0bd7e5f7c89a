package nba

import (
	"cmp"
	"slices"
	"time"
)

// MaxSuppressCount bounds a suppression's count: more outcomes than a
// customer's kept contact history could never start a pause.
const MaxSuppressCount = 1000

// suppression is a contact policy decided from the order of the customer's
// contacts of one action: {after: A, count: N, without: B, within: W,
// pause: P}. Walking the contacts oldest first, N outcomes A inside one
// window W (the first less than W before the last) with no B among them
// (a B after the first of them, up to and at the moment of the last) start
// a pause at the last of them, lasting P. An outcome counts toward one pause at most:
// after a pause starts, counting starts again with the next A. The action
// is paused at t when the latest pause started in (t-P, t]. Without
// "without" only the count and the window apply; without "within" the N
// outcomes may lie any time apart.
type suppression struct {
	key     string // action id
	after   Outcome
	without Outcome // 0: none
	n       int
	within  time.Duration // 0: unbounded
	pause   time.Duration
	unless  int32 // query: B over the limit's window, for a History without contact lists; -1 none
}

// lastPause returns the start (unix nanoseconds) of the latest pause the
// contacts started at or before now, ok false when none. It sorts cs and
// overwrites it.
func (sp *suppression) lastPause(cs []ContactAt, now int64) (start int64, ok bool) {
	start, _, ok = sp.lastRun(cs, now)
	return start, ok
}

// lastRun is lastPause that also returns where the outcomes that started
// the pause are: cs[first:first+sp.n] hold their times (At) afterwards.
func (sp *suppression) lastRun(cs []ContactAt, now int64) (start int64, first int, ok bool) {
	// Oldest first; at the same instant B before A: a B at the moment of
	// the Nth A (a click on the impression) is among them.
	// Lists come latest recorded first, mostly in time order: reversed,
	// they are sorted in about one pass.
	slices.Reverse(cs)
	b := sp.without
	order := func(x, y ContactAt) int {
		if c := cmp.Compare(x.At, y.At); c != 0 {
			return c
		}
		return cmp.Compare(b2i(x.Outcome != b), b2i(y.Outcome != b))
	}
	if !slices.IsSortedFunc(cs, order) {
		slices.SortFunc(cs, order)
	}
	// The A times of the current run are compacted into cs[run:w] as the
	// walk goes (w never passes the index read).
	run, w := 0, 0
	for i := range cs {
		c := cs[i]
		if c.At > now {
			break
		}
		switch c.Outcome {
		case sp.without:
			if sp.without != 0 {
				run = w // a B among them breaks the run
			}
		case sp.after:
			cs[w].At = c.At
			w++
			if w-run >= sp.n && (sp.within == 0 || cs[w-sp.n].At > c.At-int64(sp.within)) {
				start, first, ok = c.At, w-sp.n, true
				run = w // later writes go to cs[w:]: cs[first:w] stays
			}
		}
	}
	return start, first, ok
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// paused decides a suppression whose count passed (see limit) from the
// customer's contacts, or, with a History that cannot list them, from the
// counts over within+pause: no B among them.
func (s *scratch) paused(sp *suppression) bool {
	listed := false
	if h := s.ec.hist; h != nil {
		s.seq, listed = h.Contacts(ScopeAction, sp.key, s.seq[:0])
	}
	if !listed {
		return sp.unless < 0 || s.ec.count(int(sp.unless)) == 0
	}
	if t := s.trace; t != nil {
		n := len(t.Contacts)
		if n < cap(t.Contacts) {
			t.Contacts = t.Contacts[:n+1]
		} else {
			t.Contacts = append(t.Contacts, ContactsRead{})
		}
		r := &t.Contacts[n]
		r.Scope, r.Key, r.Contacts = ScopeAction, sp.key, append(r.Contacts[:0], s.seq...)
	}
	now := s.ec.nowT.UnixNano()
	start, ok := sp.lastPause(s.seq, now)
	return ok && now-start < int64(sp.pause)
}

// Suppression is a suppression that pauses an action for a customer now:
// for the customer view (GET /v1/customers/{id}).
type Suppression struct {
	Action string
	// Group is the group whose "suppress:" the action has ("" when the
	// action's own).
	Group string
	// Desc is the policy as explanations phrase it, e.g. "action x:
	// paused 30d after a reject".
	Desc    string
	After   Outcome
	Without Outcome // 0: none
	Count   int     // outcomes After that start the pause
	Within  time.Duration
	Pause   time.Duration
	// Since and Until bound the pause: it started at the last of Counted
	// and ends at Since+Pause. Both are zero, and Counted empty, when the
	// customer's history cannot list contacts (the engine then decides
	// the suppression from counts, and the pause's start is not known).
	Since, Until time.Time
	// Counted are the times of the outcomes After that started the pause,
	// oldest first.
	Counted []time.Time
}

// Suppressions appends to dst the suppressions that pause an action for
// the customer whose history is h (nil: no contacts) at now, by the
// engine's own test (limitHit: the count of the suppression's query, then
// the contact sequence read by lastRun), in catalog order. It allocates:
// not for the decision path.
func (c *Catalog) Suppressions(dst []Suppression, h CustomerHistory, now time.Time) []Suppression {
	if h == nil {
		return dst
	}
	var seq []ContactAt
	for ai := range c.actions {
		a := &c.actions[ai]
		for i := range a.limits {
			l := &a.limits[i]
			if !l.supp {
				continue
			}
			q := &c.queries[l.q]
			if h.Count(q.scope, q.key, q.outcome, q.window, now) < int(l.max) {
				continue
			}
			sp := l.sup
			if sp == nil {
				// One outcome and no "without": the count over the pause
				// decides, and the last outcome in it started the pause.
				sp = &suppression{key: q.key, after: q.outcome, n: 1, pause: q.window, unless: -1}
			}
			s := Suppression{Action: a.ID, Group: l.from, Desc: l.desc, After: sp.after, Without: sp.without,
				Count: sp.n, Within: sp.within, Pause: sp.pause}
			var listed bool
			seq, listed = h.Contacts(ScopeAction, sp.key, seq[:0])
			if !listed {
				if l.sup != nil && sp.unless >= 0 {
					u := &c.queries[sp.unless]
					if h.Count(u.scope, u.key, u.outcome, u.window, now) > 0 {
						continue
					}
				}
				dst = append(dst, s)
				continue
			}
			start, first, ok := sp.lastRun(seq, now.UnixNano())
			if !ok || now.UnixNano()-start >= int64(sp.pause) {
				continue
			}
			s.Since = time.Unix(0, start).UTC()
			s.Until = s.Since.Add(sp.pause)
			for _, ca := range seq[first : first+sp.n] {
				s.Counted = append(s.Counted, time.Unix(0, ca.At).UTC())
			}
			dst = append(dst, s)
		}
	}
	return dst
}
