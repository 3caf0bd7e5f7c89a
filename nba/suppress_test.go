package nba

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

const suppressCatalog = `
actions:
  - id: ignored3            # the example of the catalog reference
    channels: [web]
    suppress: [{after: impression, count: 3, without: click, within: 7d, pause: 14d}]
  - id: short_pause         # a pause shorter than its window
    channels: [web]
    suppress: [{after: impression, count: 3, within: 30d, pause: 10d}]
  - id: rejected
    channels: [web]
    suppress: [{after: reject, pause: 30d}]
  - id: rejected2
    channels: [web]
    suppress: [{after: reject, count: 2, pause: 30d}]
  - id: rejected2w
    channels: [web]
    suppress: [{after: reject, count: 2, within: 7d, pause: 30d}]
  - id: other
    channels: [web]
`

// at is one contact of a suppression timeline: an outcome some time
// before the decision (negative: after it).
type at struct {
	o   Outcome
	ago time.Duration
}

// TestSuppressionTimelines: a suppression pauses the action for exactly
// `pause` from the moment `count` outcomes fell inside one `within` window
// with no `without` among them; it used to count over within+pause ("any 3
// in 21 days"), so 3 impressions 17, 16 and 15 days ago still paused the
// action a day after the pause had ended.
func TestSuppressionTimelines(t *testing.T) {
	const d, h = 24 * time.Hour, time.Hour
	imp := func(ago ...time.Duration) []at {
		var out []at
		for _, a := range ago {
			out = append(out, at{Impression, a})
		}
		return out
	}
	with := func(a []at, more ...at) []at { return append(slices.Clone(a), more...) }
	tests := []struct {
		name     string
		action   string
		contacts []at
		paused   bool
	}{
		// {after: impression, count: 3, without: click, within: 7d, pause: 14d}
		{"20d 10d 5min: never 3 in 7d", "ignored3", imp(20*d, 10*d, 5*time.Minute), false},
		{"17d 16d 15d: the pause ended a day ago", "ignored3", imp(17*d, 16*d, 15*d), false},
		{"13d 12d 11d: the pause ends in 3 days", "ignored3", imp(13*d, 12*d, 11*d), true},
		{"3 in 7d ending 2 days ago", "ignored3", imp(4*d, 3*d, 2*d), true},
		{"a click among them", "ignored3", with(imp(4*d, 3*d, 2*d), at{Click, 3*d - h}), false},
		{"a click at the moment of the third", "ignored3", with(imp(4*d, 3*d, 2*d), at{Click, 2 * d}), false},
		{"a click before them", "ignored3", with(imp(4*d, 3*d, 2*d), at{Click, 5 * d}), true},
		{"a click after them: the pause lasts", "ignored3", with(imp(4*d, 3*d, 2*d), at{Click, d}), true},
		{"first and third exactly 7d apart", "ignored3", imp(9*d, 5*d, 2*d), false},
		{"first and third a minute under 7d apart", "ignored3", imp(9*d-time.Minute, 5*d, 2*d), true},
		{"two impressions", "ignored3", imp(3*d, 2*d), false},
		{"the third is after the decision", "ignored3", imp(2*d, d, -h), false},
		{"recorded out of order", "ignored3", imp(2*d, 30*d, 4*d, 25*d, 3*d), true},
		{"3 after a click that broke a run", "ignored3", with(imp(6*d, 5*d, 3*d, 2*d, d), at{Click, 4 * d}), true},
		{"2 after a click that broke a run", "ignored3", with(imp(6*d, 5*d, 3*d, 2*d), at{Click, 4 * d}), false},
		// {after: impression, count: 3, within: 30d, pause: 10d}: the
		// outcomes that started a pause count toward no other.
		{"a pause then 2 more", "short_pause", imp(20*d, 19*d, 18*d, 7*d, 6*d), false},
		{"a pause then 3 more", "short_pause", imp(20*d, 19*d, 18*d, 7*d, 6*d, 5*d), true},
		{"3 in 30d, paused 10d from the third", "short_pause", imp(25*d, 15*d, 9*d), true},
		{"3 in 30d, the pause ended", "short_pause", imp(25*d, 15*d, 11*d), false},
		// {after: reject, pause: 30d}
		{"a reject 29 days ago", "rejected", []at{{Reject, 29 * d}}, true},
		{"a reject 31 days ago", "rejected", []at{{Reject, 31 * d}}, false},
		{"impressions are not rejects", "rejected", imp(d, 2*d), false},
		// {after: reject, count: 2, pause: 30d}: any time apart
		{"2 rejects 100 and 10 days apart", "rejected2", []at{{Reject, 100 * d}, {Reject, 10 * d}}, true},
		{"2 rejects, the pause ended", "rejected2", []at{{Reject, 50 * d}, {Reject, 45 * d}}, false},
		{"1 reject", "rejected2", []at{{Reject, 10 * d}}, false},
		{"3 rejects: the third starts no pause", "rejected2", []at{{Reject, 50 * d}, {Reject, 40 * d}, {Reject, 5 * d}}, false},
		// {after: reject, count: 2, within: 7d, pause: 30d}
		{"2 rejects 10 days apart", "rejected2w", []at{{Reject, 20 * d}, {Reject, 10 * d}}, false},
		{"2 rejects 2 days apart", "rejected2w", []at{{Reject, 12 * d}, {Reject, 10 * d}}, true},
	}
	cat := mustCatalog(t, suppressCatalog, Options{Schema: testSchema})
	prof := newMemProfiles(testSchema)
	hist := newMemHistory()
	for _, tt := range tests {
		prof.set(tt.name, nil)
		for _, c := range tt.contacts {
			hist.add(tt.name, contact{action: tt.action, channel: "web", outcome: c.o, at: monday.Add(-c.ago)})
		}
	}
	e := mustEngine(t, cat, prof, hist, nil)
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.name, func(t *testing.T) {
			var dec Decision
			if err := e.Decide(&Request{Customer: tt.name, Channel: "web", Limit: 10, Now: monday, Explain: true}, &dec); err != nil {
				t.Fatal(err)
			}
			given := slices.Contains(chosenIDs(&dec), tt.action)
			if given == tt.paused {
				t.Errorf("paused %v, want %v (given %v)", !given, tt.paused, chosenIDs(&dec))
				for _, c := range dec.Explain {
					t.Logf("  %s %v %q", c.Action, c.Stage, c.Reason)
				}
			}
		})
	}
}

// TestSuppressionWithoutContactLists: a History that only counts gets the
// approximation by counts over within+pause (a pause can last up to
// "within" longer), never a panic or a missed pause.
func TestSuppressionWithoutContactLists(t *testing.T) {
	const d = 24 * time.Hour
	cat := mustCatalog(t, suppressCatalog, Options{Schema: testSchema})
	prof := newMemProfiles(testSchema)
	hist := newMemHistory()
	for _, c := range []struct {
		customer string
		o        Outcome
		ago      time.Duration
	}{
		{"in_pause", Impression, 4 * d}, {"in_pause", Impression, 3 * d}, {"in_pause", Impression, 2 * d},
		{"clicked", Impression, 4 * d}, {"clicked", Impression, 3 * d}, {"clicked", Impression, 2 * d}, {"clicked", Click, 2 * d},
	} {
		prof.set(c.customer, nil)
		hist.add(c.customer, contact{action: "ignored3", channel: "web", outcome: c.o, at: monday.Add(-c.ago)})
	}
	e := mustEngine(t, cat, prof, countsOnly{hist}, nil)
	for customer, paused := range map[string]bool{"in_pause": true, "clicked": false} {
		var dec Decision
		if err := e.Decide(&Request{Customer: customer, Channel: "web", Limit: 10, Now: monday}, &dec); err != nil {
			t.Fatal(err)
		}
		if given := slices.Contains(chosenIDs(&dec), "ignored3"); given == paused {
			t.Errorf("%s: paused %v, want %v", customer, !given, paused)
		}
	}
}

// BenchmarkLastPause: what deciding a suppression from the contact
// sequence adds to a decision whose count passed (the only case that reads
// it): sorting and walking n contacts of the action, 100 being the state's
// default history per customer. The copy of the contacts is included, as
// the sidecar copies them from the state.
func BenchmarkLastPause(b *testing.B) {
	sp := &suppression{key: "x", after: Impression, without: Click, n: 3, within: 7 * 24 * time.Hour, pause: 14 * 24 * time.Hour}
	now := monday.UnixNano()
	for _, n := range []int{3, 20, 100} {
		src := make([]ContactAt, n)
		for i := range src {
			o := Impression
			if i%7 == 6 {
				o = Click
			}
			// Newest recorded first, as the state lists them.
			src[i] = ContactAt{At: now - int64(i+1)*int64(21*24*time.Hour)/int64(n+1), Outcome: o}
		}
		buf := make([]ContactAt, 0, 128)
		b.Run(fmt.Sprintf("contacts=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = append(buf[:0], src...)
				sp.lastPause(buf, now)
			}
		})
	}
}

// FuzzLastPause checks the suppression walk against a plain reading of its
// definition (a new slice per run, a sort of a copy), on contacts in any
// order, ties and contacts after the decision included; the answer must
// not depend on the order the contacts are listed in.
func FuzzLastPause(f *testing.F) {
	f.Add(uint8(3), uint8(7), uint8(14), true, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(uint8(2), uint8(0), uint8(30), false, []byte{10, 10, 11, 12, 200, 3})
	f.Add(uint8(1), uint8(1), uint8(1), true, []byte{})
	f.Fuzz(func(t *testing.T, n, within, pause uint8, without bool, data []byte) {
		sp := &suppression{key: "x", after: Impression, n: 1 + int(n%5), within: time.Duration(within%20) * time.Hour,
			pause: time.Duration(1+pause%40) * time.Hour}
		if without {
			sp.without = Click
		}
		const now = int64(100 * time.Hour)
		var cs []ContactAt
		for i := 0; i+1 < len(data) && len(cs) < 200; i += 2 {
			// Whole hours in [0, 120): ties and contacts after now.
			cs = append(cs, ContactAt{At: int64(data[i]%120) * int64(time.Hour), Outcome: Outcome(1 + data[i+1]%4)})
		}
		// The definition, read plainly.
		ref := slices.Clone(cs)
		slices.SortStableFunc(ref, func(x, y ContactAt) int {
			if x.At != y.At {
				return int(x.At/int64(time.Hour) - y.At/int64(time.Hour))
			}
			return b2i(!(sp.without != 0 && x.Outcome == sp.without)) - b2i(!(sp.without != 0 && y.Outcome == sp.without))
		})
		var run []int64
		var wantStart int64
		wantOK := false
		for _, c := range ref {
			if c.At > now {
				continue
			}
			switch {
			case sp.without != 0 && c.Outcome == sp.without:
				run = nil
			case c.Outcome == sp.after:
				run = append(run, c.At)
				if k := len(run); k >= sp.n && (sp.within == 0 || c.At-run[k-sp.n] < int64(sp.within)) {
					wantStart, wantOK, run = c.At, true, nil
				}
			}
		}
		for _, order := range []func([]ContactAt){func([]ContactAt) {}, slices.Reverse[[]ContactAt], func(s []ContactAt) {
			slices.SortFunc(s, func(x, y ContactAt) int { return int(y.Outcome) - int(x.Outcome) })
		}} {
			in := slices.Clone(cs)
			order(in)
			start, ok := sp.lastPause(in, now)
			if ok != wantOK || start != wantStart {
				t.Fatalf("%+v on %v: got %v %v, want %v %v", *sp, cs, start, ok, wantStart, wantOK)
			}
		}
	})
}
