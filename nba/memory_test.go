package nba

import (
	"bytes"
	"testing"
)

// TestFeedbackLearnsFromWhatTheDecisionSaw: feedback recalled from the
// decision memory updates the online model with the decision's request
// context and its profile as it was, exactly as ObserveContext at decision
// time would; without the memory, the context is missing and a profile
// changed since is read instead.
func TestFeedbackLearnsFromWhatTheDecisionSaw(t *testing.T) {
	const section = `
context: {basket: number}
learning:
  features: [clv, basket]
  prior_variance: 1
`
	newEngine := func(mem int) (*Engine, *memProfiles) {
		prof := newMemProfiles(testSchema)
		prof.set("c", map[string]any{"clv": 0.5, "aff_xsell": 0.2})
		cat := mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, section), learnOpts)
		e, err := NewEngine(Config{Catalog: cat, Profiles: prof, DecisionMemory: mem})
		if err != nil {
			t.Fatal(err)
		}
		return e, prof
	}
	ctx := []ContextValue{{Key: "basket", Num: 3}}
	checkpoint := func(e *Engine) []byte {
		t.Helper()
		b, err := e.MarshalLearner()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// The reference: observed with the decision's context and profile.
	ref, _ := newEngine(0)
	if err := ref.ObserveContext("c", "a", 1, monday, ctx); err != nil {
		t.Fatal(err)
	}
	want := checkpoint(ref)

	e, prof := newEngine(0)
	var d Decision
	if err := e.Decide(&Request{Customer: "c", Channel: "web", Limit: 2, Context: ctx, Now: monday, Remember: 42}, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Actions) == 0 || d.Actions[0].Action.ID != "a" {
		t.Fatalf("decision %+v, want a first", d.Actions)
	}
	prof.set("c", map[string]any{"clv": 0.9, "aff_xsell": 0.2}) // the outcome changed the profile
	if _, ok := e.Recall(42, "c"); ok {
		t.Error("recalled an action the decision did not show")
	}
	if _, ok := e.Recall(43, "a"); ok {
		t.Error("recalled a decision never made")
	}
	rec, ok := e.Recall(42, "a")
	if !ok {
		t.Fatal("the decision is not remembered")
	}
	if err := e.ObserveRecalled(rec, "c", "a", 1, monday); err != nil {
		t.Fatal(err)
	}
	if got := checkpoint(e); !bytes.Equal(got, want) {
		t.Error("feedback with the recalled decision learned something else than the decision's inputs")
	}
	if st := e.LearnerStats(); st.Recalled != 1 || st.RecallMisses != 2 || st.Observed != 1 {
		t.Errorf("stats: recalled %d, misses %d, observed %d; want 1, 2, 1", st.Recalled, st.RecallMisses, st.Observed)
	}

	// Without the memory: the current profile and no context.
	off, prof2 := newEngine(-1)
	_ = off.Decide(&Request{Customer: "c", Channel: "web", Limit: 2, Context: ctx, Now: monday, Remember: 42}, &d)
	prof2.set("c", map[string]any{"clv": 0.9, "aff_xsell": 0.2})
	if _, ok := off.Recall(42, "a"); ok {
		t.Fatal("recalled with the decision memory off")
	}
	if err := off.ObserveRecalled(nil, "c", "a", 1, monday); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(checkpoint(off), want) {
		t.Error("learning without the decision memory matches learning with it: the test cannot tell them apart")
	}

	// A decision is overwritten by one that falls in its slot.
	small, _ := newEngine(1)
	_ = small.Decide(&Request{Customer: "c", Channel: "web", Context: ctx, Now: monday, Remember: 1}, &d)
	_ = small.Decide(&Request{Customer: "c", Channel: "web", Context: ctx, Now: monday, Remember: 2}, &d)
	if _, ok := small.Recall(1, "a"); ok {
		t.Error("a one-slot memory remembers two decisions")
	}
	if _, ok := small.Recall(2, "a"); !ok {
		t.Error("a one-slot memory forgot the latest decision")
	}
}
