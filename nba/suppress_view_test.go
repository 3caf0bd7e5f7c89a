package nba

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// oneHistory is one customer's view of a memHistory, as the engine's
// SplitCustomers gives it (listed false: a History without contact lists).
type oneHistory struct {
	h        *memHistory
	customer string
	listed   bool
}

func (o oneHistory) Count(scope Scope, key string, outcome Outcome, window time.Duration, now time.Time) int {
	return o.h.Count(o.customer, scope, key, outcome, window, now)
}

func (o oneHistory) Contacts(scope Scope, key string, dst []ContactAt) ([]ContactAt, bool) {
	if !o.listed {
		return dst, false
	}
	return o.h.Contacts(o.customer, scope, key, dst), true
}

// TestSuppressionsOfACustomer: the customer view lists a suppression with
// the outcomes that started its pause, when it started and when it ends
// (the catalog reference's example: three ignored impressions pause the
// action 14 days from the third), and the group it comes from.
func TestSuppressionsOfACustomer(t *testing.T) {
	const d = 24 * time.Hour
	const src = suppressCatalog + `  - id: in_sales
    group: sales
    channels: [web]
groups:
  - id: sales
    suppress: [{after: reject, pause: 30d}]
`
	cat := mustCatalog(t, src, Options{Schema: testSchema})
	tests := []struct {
		name    string
		add     []contact
		want    []string // action ids listed
		since   time.Duration
		pause   time.Duration
		counted []time.Duration
		group   string
	}{
		{"three ignored impressions", []contact{{action: "ignored3", outcome: Impression, at: monday.Add(-13 * d)},
			{action: "ignored3", outcome: Impression, at: monday.Add(-12 * d)}, {action: "ignored3", outcome: Impression, at: monday.Add(-11 * d)}},
			[]string{"ignored3"}, 11 * d, 14 * d, []time.Duration{13 * d, 12 * d, 11 * d}, ""},
		{"the pause ended", []contact{{action: "ignored3", outcome: Impression, at: monday.Add(-17 * d)},
			{action: "ignored3", outcome: Impression, at: monday.Add(-16 * d)}, {action: "ignored3", outcome: Impression, at: monday.Add(-15 * d)}},
			nil, 0, 0, nil, ""},
		{"the latest of two rejects", []contact{{action: "rejected", outcome: Reject, at: monday.Add(-20 * d)},
			{action: "rejected", outcome: Reject, at: monday.Add(-5 * d)}},
			[]string{"rejected"}, 5 * d, 30 * d, []time.Duration{5 * d}, ""},
		{"from its group", []contact{{action: "in_sales", outcome: Reject, at: monday.Add(-2 * d)}},
			[]string{"in_sales"}, 2 * d, 30 * d, []time.Duration{2 * d}, "sales"},
		{"no contacts", nil, nil, 0, 0, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newMemHistory()
			for _, c := range tt.add {
				h.add("c", c)
			}
			got := cat.Suppressions(nil, oneHistory{h, "c", true}, monday)
			var ids []string
			for _, s := range got {
				ids = append(ids, s.Action)
			}
			if !slices.Equal(ids, tt.want) {
				t.Fatalf("suppressions %v, want %v", ids, tt.want)
			}
			if len(got) == 0 {
				return
			}
			s := got[0]
			if !s.Since.Equal(monday.Add(-tt.since)) || !s.Until.Equal(monday.Add(-tt.since+tt.pause)) || s.Group != tt.group || s.Desc == "" {
				t.Errorf("got %+v: want since %v, until %v, group %q", s, monday.Add(-tt.since), monday.Add(-tt.since+tt.pause), tt.group)
			}
			var counted []time.Duration
			for _, c := range s.Counted {
				counted = append(counted, monday.Sub(c))
			}
			if !slices.Equal(counted, tt.counted) {
				t.Errorf("counted %v ago, want %v", counted, tt.counted)
			}
		})
	}
	// A history that cannot list contacts: the suppression as the engine
	// decides it from counts, its start unknown.
	h := newMemHistory()
	h.add("c", contact{action: "rejected", outcome: Reject, at: monday.Add(-d)})
	if got := cat.Suppressions(nil, oneHistory{h, "c", false}, monday); len(got) != 1 || !got[0].Since.IsZero() || len(got[0].Counted) != 0 {
		t.Errorf("without contact lists: %+v, want rejected with no start", got)
	}
}

// TestSuppressionsAgreeWithDecisions: on random contact histories, the
// customer view lists exactly the actions a decision removes by a
// suppression, with or without contact lists, and each pause it lists has
// started at or before now and not yet ended.
func TestSuppressionsAgreeWithDecisions(t *testing.T) {
	const d = 24 * time.Hour
	cat := mustCatalog(t, suppressCatalog, Options{Schema: testSchema})
	actions := []string{"ignored3", "short_pause", "rejected", "rejected2", "rejected2w", "other"}
	rng := rand.New(rand.NewPCG(14, 1))
	prof := newMemProfiles(testSchema)
	h := newMemHistory()
	var customers []string
	for i := range 300 {
		c := "c" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		customers = append(customers, c)
		prof.set(c, nil)
		for range rng.IntN(12) {
			h.add(c, contact{action: actions[rng.IntN(len(actions))], channel: "web", outcome: Outcome(1 + rng.IntN(4)),
				at: monday.Add(-time.Duration(rng.Int64N(int64(40*d))) + time.Hour)})
		}
	}
	for _, listed := range []bool{true, false} {
		var hist History = h
		if !listed {
			hist = countsOnly{h}
		}
		e := mustEngine(t, cat, prof, hist, nil)
		paused := 0
		for _, c := range customers {
			var dec Decision
			if err := e.Decide(&Request{Customer: c, Channel: "web", Limit: 10, Now: monday, Explain: true}, &dec); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, cd := range dec.Explain {
				if cd.Stage == StageContactPolicy && cd.Policy.Suppression {
					want = append(want, cd.Action)
				}
			}
			var got []string
			for _, s := range cat.Suppressions(nil, oneHistory{h, c, listed}, monday) {
				got = append(got, s.Action)
				if listed && (s.Since.After(monday) || !s.Until.After(monday) || len(s.Counted) != s.Count || !s.Counted[len(s.Counted)-1].Equal(s.Since)) {
					t.Errorf("%s: %+v: not a pause in force at %v", c, s, monday)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("listed %v, contact lists %v: the view lists %v, the decision removed %v", c, listed, got, want)
			}
			paused += len(got)
		}
		if paused < 20 {
			t.Errorf("contact lists %v: only %d pauses in the sample: the test tests little", listed, paused)
		}
	}
}
