package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeWhatIf(t *testing.T) {
	f64 := func(x float64) *float64 { return &x }
	tier := func(x int) *int { return &x }
	const req = `"customer_id":"c1","channel":"web"`
	ok := func(name, body string, want whatIf) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, err := decodeWhatIf([]byte(body), &testLimits)
			if err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if len(got.Actions) == 0 {
				got.Actions = nil
			}
			if len(got.context) == 0 {
				got.context = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\ngot  %+v\nwant %+v", body, got, want)
			}
		})
	}
	ok("none", `{`+req+`}`, whatIf{})
	ok("null", `{`+req+`,"overrides":null}`, whatIf{})
	ok("live", `{`+req+`,"bundle":"live"}`, whatIf{})
	ok("candidate", `{`+req+`,"bundle":"candidate"}`, whatIf{WhatIf: WhatIf{Candidate: true}})
	ok("actions", `{`+req+`,"overrides":{"actions":{"a":{"lever":2},"b":{"weight":0.5,"tier":0},"c":{"tier":3,"lever":null}}}}`,
		whatIf{WhatIf: WhatIf{Actions: []ActionOverride{{ID: "a", Lever: f64(2)}, {ID: "b", Weight: f64(0.5), Tier: tier(0)}, {ID: "c", Tier: tier(3)}}}})
	ok("context", `{`+req+`,"overrides":{"context":{"page":"home","n":2,"b":true,"gone":null}}}`,
		whatIf{context: []Field{{Key: "page", Kind: KindString, Str: "home"}, {Key: "n", Kind: KindNumber, Num: 2}, {Key: "b", Kind: KindBool, Bool: true}}})
	ok("escaped id", `{"overrides":{"actions":{"w\u00e9b":{"tier":1e0}}}}`, whatIf{WhatIf: WhatIf{Actions: []ActionOverride{{ID: "wéb", Tier: tier(1)}}}})
	ok("seed", `{`+req+`,"seed":9007199254740992}`, whatIf{WhatIf: WhatIf{Seed: 1 << 53}})
	ok("seed 0", `{`+req+`,"seed":0}`, whatIf{})

	bad := func(name, body, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			_, err := decodeWhatIf([]byte(body), &testLimits)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidOverride || e.Status != 400 {
				t.Fatalf("%s: error %v, want 400 %s", body, err, CodeInvalidOverride)
			}
			if !strings.Contains(e.Message, want) {
				t.Errorf("%s: message %q, want one with %q", body, e.Message, want)
			}
		})
	}
	bad("overrides not an object", `{"overrides":[]}`, "overrides must be an object")
	bad("unknown member", `{"overrides":{"levers":{}}}`, `unknown member "levers"`)
	bad("actions not an object", `{"overrides":{"actions":[1]}}`, "overrides.actions must be an object")
	bad("override not an object", `{"overrides":{"actions":{"a":2}}}`, "overrides.actions.a must be an object")
	bad("unknown field", `{"overrides":{"actions":{"a":{"prio":2}}}}`, `unknown member "prio"`)
	bad("empty override", `{"overrides":{"actions":{"a":{}}}}`, "give lever, weight or tier")
	bad("all null", `{"overrides":{"actions":{"a":{"lever":null}}}}`, "give lever, weight or tier")
	bad("string lever", `{"overrides":{"actions":{"a":{"lever":"2"}}}}`, "lever must be a number")
	bad("huge lever", `{"overrides":{"actions":{"a":{"lever":1e400}}}}`, "")
	bad("fractional tier", `{"overrides":{"actions":{"a":{"tier":1.5}}}}`, "tier must be an integer")
	bad("repeated action", `{"overrides":{"actions":{"a":{"tier":1},"a":{"lever":1}}}}`, `"a" repeated`)
	bad("repeated actions", `{"overrides":{"actions":{},"actions":{}}}`, "overrides.actions repeated")
	bad("repeated overrides", `{"overrides":{},"overrides":{}}`, "overrides repeated")
	bad("empty id", `{"overrides":{"actions":{"":{"tier":1}}}}`, "required")
	bad("long id", `{"overrides":{"actions":{"`+strings.Repeat("a", 257)+`":{"tier":1}}}}`, "longer than 256 bytes")
	bad("context object", `{"overrides":{"context":{"a":{}}}}`, "strings, numbers or booleans")
	bad("context repeated key", `{"overrides":{"context":{"a":1,"a":2}}}`, `key "a" repeated`)
	bad("bundle", `{"bundle":"next"}`, `bundle must be "live" or "candidate"`)
	bad("negative seed", `{"seed":-1}`, "seed must be an integer from 1 to 2^53")
	bad("fractional seed", `{"seed":1.5}`, "seed must be an integer")
	bad("huge seed", `{"seed":9007199254740994}`, "seed must be an integer from 1 to 2^53")
	bad("string seed", `{"seed":"1"}`, "seed must be a number")
	var many strings.Builder
	many.WriteString(`{"overrides":{"actions":{`)
	for i := range MaxOverrideActions + 1 {
		if i > 0 {
			many.WriteByte(',')
		}
		fmt.Fprintf(&many, `"a%d":{"tier":1}`, i)
	}
	many.WriteString(`}}}`)
	bad("too many", many.String(), fmt.Sprintf("more than %d actions", MaxOverrideActions))

	t.Run("merge context", func(t *testing.T) {
		w := whatIf{context: []Field{{Key: "page", Kind: KindString, Str: "cart"}, {Key: "n", Kind: KindNumber, Num: 1}}}
		got, err := w.mergeContext([]Field{{Key: "page", Kind: KindString, Str: "home"}, {Key: "device", Kind: KindString, Str: "ios"}}, 3)
		want := []Field{{Key: "page", Kind: KindString, Str: "cart"}, {Key: "device", Kind: KindString, Str: "ios"}, {Key: "n", Kind: KindNumber, Num: 1}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("merged %+v, %v; want %+v", got, err, want)
		}
		if _, err := w.mergeContext([]Field{{Key: "a"}, {Key: "b"}}, 3); err == nil {
			t.Error("merged past the field limit")
		}
	})
}

// encodeWhatIf writes w back as a studio decide body.
func encodeWhatIf(w *whatIf) []byte {
	acts := map[string]map[string]any{}
	for _, a := range w.Actions {
		o := map[string]any{}
		if a.Lever != nil {
			o["lever"] = *a.Lever
		}
		if a.Weight != nil {
			o["weight"] = *a.Weight
		}
		if a.Tier != nil {
			o["tier"] = *a.Tier
		}
		acts[a.ID] = o
	}
	ctx := map[string]any{}
	for _, f := range w.context {
		switch f.Kind {
		case KindString:
			ctx[f.Key] = f.Str
		case KindNumber:
			ctx[f.Key] = f.Num
		case KindBool:
			ctx[f.Key] = f.Bool
		}
	}
	bundle := "live"
	if w.Candidate {
		bundle = "candidate"
	}
	b, _ := json.Marshal(map[string]any{"bundle": bundle, "seed": w.Seed, "overrides": map[string]any{"actions": acts, "context": ctx}})
	return b
}

// FuzzDecodeWhatIf: the decoder accepts only valid JSON, keeps its bounds,
// and what it accepts survives a round trip through encoding/json.
func FuzzDecodeWhatIf(f *testing.F) {
	for _, s := range []string{
		`{"customer_id":"c1","channel":"web","overrides":{"actions":{"a":{"lever":2},"b":{"weight":0.5,"tier":0}},"context":{"page":"home","n":2,"b":true}},"bundle":"candidate"}`,
		`{"overrides":null}`,
		`{"overrides":{"actions":{"a":{"tier":1.5}}}}`,
		`{"overrides":{"actions":{"a\u0000":{"lever":-1e308}}}}`,
		`{"overrides":{"context":{"x":null,"y":"\ud800"}}}`,
		`{"bundle":"live","x":[{"overrides":1}]}`,
		`{"seed":12345678901}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w, err := decodeWhatIf(body, &testLimits)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidOverride {
				t.Fatalf("%q: error %v is not %s", body, err, CodeInvalidOverride)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if len(w.Actions) > MaxOverrideActions || len(w.context) > testLimits.maxFields || w.Seed > MaxSeed {
			t.Fatalf("%q: %d actions, %d context fields, seed %d", body, len(w.Actions), len(w.context), w.Seed)
		}
		seen := map[string]bool{}
		for _, a := range w.Actions {
			if a.ID == "" || len(a.ID) > testLimits.maxIDBytes || seen[a.ID] {
				t.Fatalf("%q: action id %q", body, a.ID)
			}
			seen[a.ID] = true
			if a.Lever == nil && a.Weight == nil && a.Tier == nil {
				t.Fatalf("%q: override of %q changes nothing", body, a.ID)
			}
			for _, x := range []*float64{a.Lever, a.Weight} {
				if x != nil && (math.IsNaN(*x) || math.IsInf(*x, 0)) {
					t.Fatalf("%q: %v", body, *x)
				}
			}
		}
		again := encodeWhatIf(&w)
		w2, err := decodeWhatIf(again, &testLimits)
		if err != nil {
			t.Fatalf("cannot decode re-encoded %s: %v", again, err)
		}
		if !sameWhatIf(&w, &w2) {
			t.Fatalf("round trip of %q through %s: %+v became %+v", body, again, w, w2)
		}
	})
}

// sameWhatIf compares two what-ifs regardless of order (the re-encoding
// goes through maps).
func sameWhatIf(a, b *whatIf) bool {
	if a.Candidate != b.Candidate || a.Seed != b.Seed || len(a.Actions) != len(b.Actions) || len(a.context) != len(b.context) {
		return false
	}
	acts := map[string]ActionOverride{}
	for _, x := range b.Actions {
		acts[x.ID] = x
	}
	for _, x := range a.Actions {
		if !reflect.DeepEqual(x, acts[x.ID]) {
			return false
		}
	}
	ctx := map[string]Field{}
	for _, f := range b.context {
		ctx[f.Key] = f
	}
	for _, f := range a.context {
		if ctx[f.Key] != f {
			return false
		}
	}
	return true
}
