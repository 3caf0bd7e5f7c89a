package nba_test

import (
	"testing"

	"nba/nba"
)

// countsOnly hides a History's contact lists: suppressions are then decided
// from counts over within+pause, as before they read the contact sequence.
type countsOnly struct{ nba.History }

// listCounter counts the contact lists read.
type listCounter struct {
	nba.History
	n int
}

func (l *listCounter) Contacts(customer string, scope nba.Scope, key string, dst []nba.ContactAt) []nba.ContactAt {
	l.n++
	return l.History.(nba.ContactLister).Contacts(customer, scope, key, dst)
}

// BenchmarkDecideSuppressions compares, in one run, decisions on the
// synthetic bundle (a constant model, so that the contact policies weigh
// more) whose suppressions read the customer's contact sequence with the
// same decisions from counts only. "paused/decision" counts the candidates
// a contact policy removed: the two differ where the counts over
// within+pause paused an action whose pause had ended.
func BenchmarkDecideSuppressions(b *testing.B) {
	s := setup(b)
	cat := s.free.Catalog()
	lc := &listCounter{History: s.b.History()}
	ce, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: s.b.Profiles(), History: lc})
	if err != nil {
		b.Fatal(err)
	}
	var d nba.Decision
	for i := range s.reqs {
		if err := ce.Decide(&s.reqs[i], &d); err != nil {
			b.Fatal(err)
		}
	}
	lists := float64(lc.n) / float64(len(s.reqs))
	for _, c := range []struct {
		name string
		h    nba.History
	}{{"sequence", s.b.History()}, {"counts", countsOnly{s.b.History()}}} {
		e, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: s.b.Profiles(), History: c.h})
		if err != nil {
			b.Fatal(err)
		}
		paused := 0
		for i := range s.reqs {
			r := s.reqs[i]
			r.Explain = true
			if err := e.Decide(&r, &d); err != nil {
				b.Fatal(err)
			}
			for _, x := range d.Explain {
				if x.Stage == nba.StageContactPolicy {
					paused++
				}
			}
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := e.Decide(&s.reqs[i%len(s.reqs)], &d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(paused)/float64(len(s.reqs)), "paused/decision")
			b.ReportMetric(lists, "lists/decision")
		})
	}
}
