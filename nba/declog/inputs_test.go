package declog

import (
	"math"
	"strings"
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
		Journeys: []Journey{{Journey: "j", Step: 1, Status: "active", EnteredAt: at}, {Journey: "k", Status: "exited", EnteredAt: at, LastStepAt: at.Add(time.Hour)}},
		Contacts: []ContactList{{Scope: "action", Key: "a", AtNS: []int64{at.UnixNano(), -1}, Outcomes: []string{"impression", "click"}}}}
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
	if len(in.Contacts) != 1 {
		t.Fatalf("contacts: got %+v", in.Contacts)
	}
	if c := in.Contacts[0]; c.Scope != "action" || c.Key != "a" || len(c.AtNS) != 2 || c.AtNS[0] != at.UnixNano() || c.AtNS[1] != -1 ||
		len(c.Outcomes) != 2 || c.Outcomes[0] != "impression" || c.Outcomes[1] != "click" {
		t.Errorf("contacts: got %+v", c)
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

// FuzzParseRecord parses arbitrary lines; the context and profile values of
// a line that parses must survive being written and read again.
func FuzzParseRecord(f *testing.F) {
	d := sampleDecision(3)
	d.ContextValues = []Value{{Key: "page", Kind: KindString, Str: "home"}, {Key: "n", Kind: KindNumber, Num: 2.5}, {Key: "b", Kind: KindBool, Num: 1}}
	d.Inputs = Inputs{Logged: true, Known: true, Profile: []Value{{Key: "seg", Kind: KindCategory, Str: "gold", Num: 3}},
		History: []Count{{Scope: "channel", Key: "web", Outcome: "click", Window: time.Hour, N: 1}}}
	f.Add(append([]byte(`{"type":"decision","customer":"p",`), appendDecision(nil, d)...))
	f.Add([]byte(`{"type":"decision","context":"digest"}`))
	f.Add([]byte(`{"type":"decision","context":{"a":null,"b":{"s":"x"},"c":-1e308}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRecord(line)
		if err != nil {
			return
		}
		check := func(name string, vs Values) {
			if len(vs) == 0 {
				return
			}
			b := appendValues(nil, vs)
			var again Values
			if err := again.UnmarshalJSON(b); err != nil {
				t.Fatalf("%s: cannot read back %s: %v", name, b, err)
			}
			if len(again) != len(vs) {
				t.Fatalf("%s: %d values read back as %d", name, len(vs), len(again))
			}
			for i := range vs {
				a, b := vs[i], again[i]
				if a.Key != b.Key && !(strings.ToValidUTF8(a.Key, "\uFFFD") == b.Key) || a.Kind != b.Kind || !(a.Num == b.Num || math.IsNaN(a.Num) && math.IsNaN(b.Num)) {
					t.Fatalf("%s: value %d: %+v read back as %+v", name, i, a, b)
				}
			}
		}
		check("context", r.ContextValues)
		if r.Inputs != nil {
			check("profile", r.Inputs.Profile)
		}
	})
}
