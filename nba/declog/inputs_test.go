package declog

import (
	"math"
	"testing"
	"time"
)

// TestInputsRoundTrip writes a decision with its request and inputs and
// reads every field back.
func TestInputsRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 5, time.UTC)
	d := sampleDecision(1)
	d.Placement, d.Limit, d.Seed = "home", 3, math.MaxUint64-1
	d.ContextValues = []Value{{Key: "device", Kind: KindString, Str: "ios \"x\""}, {Key: "basket", Kind: KindNumber, Num: 0.1 + 0.2},
		{Key: "logged_in", Kind: KindBool, Num: 1}, {Key: "nan", Kind: KindNumber, Num: math.NaN()}}
	d.Inputs = Inputs{Logged: true, Known: true, Profile: []Value{{Key: "age", Kind: KindNumber, Num: 41},
		{Key: "segment", Kind: KindCategory, Str: "gold", Num: 2}},
		History:  []Count{{Scope: "action", Key: "a", Outcome: "impression", Window: 7 * 24 * time.Hour, N: 3}},
		Journeys: []Journey{{Journey: "j", Step: 1, Status: "active", EnteredAt: at}, {Journey: "k", Status: "exited", EnteredAt: at, LastStepAt: at.Add(time.Hour)}}}
	b := appendDecision(nil, d)
	r, err := ParseRecord(append([]byte(`{"type":"decision","customer":"p",`), b...))
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if r.Placement != "home" || r.Limit != 3 || r.Seed != d.Seed || r.Context != "c0ffee" {
		t.Errorf("request fields: got %q %d %d %q", r.Placement, r.Limit, r.Seed, r.Context)
	}
	if len(r.ContextValues) != 4 {
		t.Fatalf("context: got %+v", r.ContextValues)
	}
	for i, want := range d.ContextValues {
		got := r.ContextValues[i]
		if got.Key != want.Key || got.Kind != want.Kind || got.Str != want.Str || !(got.Num == want.Num || math.IsNaN(want.Num) && math.IsNaN(got.Num)) {
			t.Errorf("context %d: got %+v, want %+v", i, got, want)
		}
	}
	in := r.Inputs
	if in == nil || !in.Known || in.Anonymous || len(in.Profile) != 2 || len(in.History) != 1 || len(in.Journeys) != 2 {
		t.Fatalf("inputs: got %+v", in)
	}
	if p := in.Profile[1]; p.Kind != KindCategory || p.Str != "gold" || p.Num != 2 {
		t.Errorf("category field: got %+v", p)
	}
	if h := in.History[0]; h.Scope != "action" || h.Key != "a" || h.Outcome != "impression" || time.Duration(h.WindowNS) != 7*24*time.Hour || h.Count != 3 {
		t.Errorf("history: got %+v", h)
	}
	if j := in.Journeys[0]; j.Journey != "j" || j.Step != 1 || j.Status != "active" || !j.EnteredAt.Equal(at) || !j.LastStepAt.IsZero() {
		t.Errorf("journey 0: got %+v", j)
	}
	if j := in.Journeys[1]; !j.LastStepAt.Equal(at.Add(time.Hour)) {
		t.Errorf("journey 1: got %+v", j)
	}
}

// TestReadOldContextDigest reads a record written before the context was
// logged in full: "context" is then the digest.
func TestReadOldContextDigest(t *testing.T) {
	r, err := ParseRecord([]byte(`{"type":"decision","customer":"p","id":"d","time":"2026-11-22T10:00:00Z","channel":"web","context":"c0ffee","control":false,"versions":{},"candidates":[],"chosen":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Context != "c0ffee" || r.ContextValues != nil || r.Inputs != nil || r.Seed != 0 {
		t.Errorf("got context %q, values %v, inputs %v, seed %d", r.Context, r.ContextValues, r.Inputs, r.Seed)
	}
}
