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
				start, ok = c.At, true
				run = w
			}
		}
	}
	return start, ok
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
