package nba

import (
	"bytes"
	"math"
	"testing"
	"time"
)

// TestObservationCarriedToAnotherEngine: a decision's features encoded on
// one engine and an observation computed from them, applied on a second
// engine of the same catalog that never saw the decision (its profile has
// changed since), learn exactly what ObserveRecalled learns on the engine
// that decided; an observation of another catalog version is refused.
func TestObservationCarriedToAnotherEngine(t *testing.T) {
	const section = `
context: {basket: number}
learning:
  features: [clv, basket]
  prior_variance: 1
`
	newEngine := func() (*Engine, *memProfiles) {
		prof := newMemProfiles(testSchema)
		prof.set("c", map[string]any{"clv": 0.5, "aff_xsell": 0.2})
		cat := mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, section), learnOpts)
		e, err := NewEngine(Config{Catalog: cat, Profiles: prof})
		if err != nil {
			t.Fatal(err)
		}
		return e, prof
	}
	checkpoint := func(e *Engine) []byte {
		t.Helper()
		b, err := e.MarshalLearner()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := []ContextValue{{Key: "basket", Num: 3}}
	decider, _ := newEngine()
	var d Decision
	if err := decider.Decide(&Request{Customer: "c", Channel: "web", Limit: 2, Context: ctx, Now: monday, Remember: 42}, &d); err != nil {
		t.Fatal(err)
	}
	df, ok := decider.RememberedDecision(42)
	if !ok {
		t.Fatal("decision not remembered")
	}
	enc, err := df.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := decider.Recall(42, "a")
	if err := decider.ObserveRecalled(rec, "c", "a", 1, monday); err != nil {
		t.Fatal(err)
	}
	want := checkpoint(decider)

	other, prof := newEngine()
	prof.set("c", map[string]any{"clv": 0.9, "aff_xsell": 0.2})
	var got DecisionFeatures
	if err := got.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	r, ok := other.RecallFeatures(got, "a")
	if !ok {
		t.Fatal("features of the same catalog not recalled")
	}
	if _, ok := other.RecallFeatures(got, "c"); ok {
		t.Error("recalled an action the decision did not show")
	}
	o, err := other.Observation(r, "c", "a", 1, monday)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := o.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var o2 Observation
	if err := o2.UnmarshalBinary(ob); err != nil {
		t.Fatal(err)
	}
	if err := other.Apply(o2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(checkpoint(other), want) {
		t.Error("the observation carried to another engine learned something else than the deciding engine")
	}
	o2.Catalog = "other"
	if err := other.Apply(o2); err == nil {
		t.Error("applied an observation of another catalog version")
	}

	// Without features: the current profile, as Observe.
	ref, refProf := newEngine()
	refProf.set("c", map[string]any{"clv": 0.9, "aff_xsell": 0.2})
	_ = ref.Observe("c", "a", 0, monday)
	third, prof3 := newEngine()
	prof3.set("c", map[string]any{"clv": 0.9, "aff_xsell": 0.2})
	o3, err := third.Observation(nil, "c", "a", 0, monday)
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Apply(o3); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(checkpoint(third), checkpoint(ref)) {
		t.Error("an observation from the profile learned something else than Observe")
	}
}

// FuzzObservationEncoding: what decodes encodes back to the same bytes.
func FuzzObservationEncoding(f *testing.F) {
	o := Observation{Catalog: "v1", Action: "a", Features: []float64{1, math.Inf(1)}, Offset: -2, Reward: 1, At: time.Unix(0, 12345)}
	b, _ := o.AppendBinary(nil)
	f.Add(b)
	d := DecisionFeatures{Catalog: "v1", Features: []float64{0.5}, Actions: []string{"a", "b"}, Offsets: []float64{1, 2}}
	b2, _ := d.AppendBinary(nil)
	f.Add(b2)
	f.Fuzz(func(t *testing.T, b []byte) {
		var o Observation
		if o.UnmarshalBinary(b) == nil {
			again, err := o.AppendBinary(nil)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("observation round trip: %x -> %x (%v)", b, again, err)
			}
		}
		var d DecisionFeatures
		if d.UnmarshalBinary(b) == nil {
			again, err := d.AppendBinary(nil)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("decision features round trip: %x -> %x (%v)", b, again, err)
			}
		}
	})
}
