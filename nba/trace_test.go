package nba

import (
	"math"
	"testing"
	"time"
)

// TestTraceRecordsInputs checks that a traced decision records what it
// read: the profile, the history counts with their answers, the journey
// states and the exploration seed.
func TestTraceRecordsInputs(t *testing.T) {
	prof := newMemProfiles(testSchema)
	hist := newMemHistory()
	prof.set("c", map[string]any{"clv": 100, "aff_xsell": 0.5})
	hist.add("c", contact{action: "card", channel: "web", groups: []string{"sales"}, outcome: Impression, at: monday.Add(-time.Hour)})
	welcome := JourneyState{Journey: "welcome", Step: 1, Status: JourneyActive, EnteredAt: monday.Add(-48 * time.Hour), LastStepAt: monday.Add(-48 * time.Hour)}
	jour := &memJourneys{by: map[string][]JourneyState{"c": {welcome}}}
	e := mustEngine(t, mustCatalog(t, textbook(1, `profile.segment == "gold"`), testOpts), prof, hist, jour)
	var d Decision
	if err := e.Decide(&Request{Customer: "c", Channel: "web", Limit: 3, Now: monday, Trace: true}, &d); err != nil {
		t.Fatal(err)
	}
	tr := &d.Trace
	fields := e.Catalog().ProfileFields()
	if !tr.Known || len(tr.Profile.Num) != len(fields) || len(fields) != len(testSchema.Fields) {
		t.Fatalf("profile: known %v, %d values for %d fields", tr.Known, len(tr.Profile.Num), len(fields))
	}
	for i, f := range fields {
		var want prof1
		switch f.Name {
		case "clv":
			want = prof1{100, true}
		case "aff_xsell":
			want = prof1{0.5, true}
		}
		if got := tr.Profile.Num[i]; want.set && got != want.v || !want.set && f.Kind != KindCategory && !math.IsNaN(got) {
			t.Errorf("profile %s = %v, want %+v", f.Name, got, want)
		}
	}
	if len(tr.Journeys) != 1 || tr.Journeys[0] != welcome {
		t.Errorf("journeys: got %+v", tr.Journeys)
	}
	// History counts: a catalog with contact policies.
	pe := mustEngine(t, mustCatalog(t, policyCatalog, Options{Schema: testSchema}), prof, hist, nil)
	if err := pe.Decide(&Request{Customer: "c", Channel: "web", Limit: 3, Now: monday, Trace: true}, &d); err != nil {
		t.Fatal(err)
	}
	tr = &d.Trace
	nonzero := false
	for _, h := range tr.History {
		nonzero = nonzero || h.Count > 0
		if want := hist.Count("c", h.Scope, h.Key, h.Outcome, h.Window, monday); h.Count != want {
			t.Errorf("history %s %s %s %v: traced %d, want %d", h.Scope, h.Key, h.Outcome, h.Window, h.Count, want)
		}
	}
	if !nonzero {
		t.Fatalf("no nonzero history count traced: %+v", tr.History)
	}
	if tr.Seed != 0 {
		t.Errorf("seed %d traced without exploration", tr.Seed)
	}
	// Without Trace the previous trace is cleared.
	if err := pe.Decide(&Request{Customer: "c", Channel: "web", Limit: 3, Now: monday}, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Trace.Profile.Num)+len(d.Trace.History)+len(d.Trace.Journeys) != 0 || d.Trace.Known {
		t.Errorf("untraced decision kept a trace: %+v", d.Trace)
	}
}

type prof1 struct {
	v   float64
	set bool
}

// TestTracedSeedReplaysExploration decides with an engine-drawn seed, then
// again with the traced seed: the exploring decision must repeat.
func TestTracedSeedReplaysExploration(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5})
	e := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, learningSection), learnOpts), prof, nil, nil)
	varied := false
	var first string
	for i := range 40 {
		var d, again Decision
		if err := e.Decide(&Request{Customer: "c", Channel: "web", Limit: 2, Now: monday, Trace: true}, &d); err != nil {
			t.Fatal(err)
		}
		if d.Trace.Seed == 0 {
			t.Fatal("no seed traced for an exploring channel")
		}
		// Another customer id with the same inputs: the seed alone drives
		// the draws, as a replay under a pseudonym needs.
		prof.set("pseudonym", map[string]any{"clv": 0.5})
		if err := e.Decide(&Request{Customer: "pseudonym", Channel: "web", Limit: 2, Now: monday, Seed: d.Trace.Seed}, &again); err != nil {
			t.Fatal(err)
		}
		got, want := chosenIDs(&again), chosenIDs(&d)
		if len(got) != len(want) {
			t.Fatalf("decision %d: replayed %v, want %v", i, got, want)
		}
		for k := range got {
			if got[k] != want[k] || again.Actions[k].Prob != d.Actions[k].Prob {
				t.Fatalf("decision %d: replayed %v, want %v", i, got, want)
			}
		}
		if i == 0 {
			first = want[0]
		} else if want[0] != first {
			varied = true
		}
	}
	if !varied {
		t.Error("exploration never varied the first action: the test cannot tell seeds apart")
	}
}

func TestTracedDecideDoesNotAllocate(t *testing.T) {
	if RaceEnabled {
		t.Skip("sync.Pool drops objects under the race detector")
	}
	prof := newMemProfiles(testSchema)
	hist := newMemHistory()
	prof.set("c", map[string]any{"clv": 100, "aff_xsell": 0.5})
	hist.add("c", contact{action: "card", channel: "web", groups: []string{"sales"}, outcome: Impression, at: monday.Add(-time.Hour)})
	jour := &memJourneys{by: map[string][]JourneyState{"c": {{Journey: "welcome", Step: 1, Status: JourneyActive, EnteredAt: monday.Add(-48 * time.Hour), LastStepAt: monday.Add(-48 * time.Hour)}}}}
	for name, e := range map[string]*Engine{
		"textbook": mustEngine(t, mustCatalog(t, textbook(1, `profile.segment == "gold"`), testOpts), prof, hist, jour),
		"learning": mustEngine(t, mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, learningSection), learnOpts), prof, hist, nil),
	} {
		t.Run(name, func(t *testing.T) {
			var d Decision
			req := &Request{Customer: "c", Channel: "web", Limit: 3, Now: monday, Trace: true}
			if err := e.Decide(req, &d); err != nil {
				t.Fatal(err)
			}
			if allocs := testing.AllocsPerRun(200, func() { _ = e.Decide(req, &d) }); allocs > 0 {
				t.Errorf("traced Decide allocates %.1f times per call, want 0", allocs)
			}
		})
	}
}
