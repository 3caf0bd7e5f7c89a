package nba

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestCatalogErrorsReportedAtOnce(t *testing.T) {
	const src = `
context:
  page: category
  basket: money
groups:
  - id: a
    parent: b
  - id: b
    parent: a
actions:
  - id: x
    group: a
    channels: [web, fax]
    model: nosuch
    caps: [{max: 2}]
    treatments: {sms: {text: hi}}
    rules:
      eligible: ["profile.tenure_dayz > 3", "profile.age + 1"]
      suitable: ["profile.segment > 3", "len(profile.segment) > 0"]
  - id: x
    channels: [web]
    value: "profile.segment"
journeys:
  - id: j
    entry: {event: e}
    steps:
      - {action: missing}
  - id: k
    mode: sticky
    entry: {event: e}
`
	errs := Validate("bad.yaml", []byte(src), Options{Schema: testSchema})
	want := []string{
		`context.basket: unknown kind "money"`,
		`groups[0].parent: cycle in groups`,
		`actions[1].id: duplicate action id "x"`,
		`actions[0].channels[1]: unknown channel "fax"`,
		`actions[0].treatments.sms: channel "sms" is not one of the action's channels`,
		`actions[0].rules.eligible[0]: unknown field "tenure_dayz"`,
		`actions[0].rules.eligible[1]: rule must be a boolean expression, got number`,
		`actions[0].rules.suitable[0]: invalid operation: > (mismatched types string and int`,
		`actions[0].rules.suitable[1]: function len is not supported in rules`,
		`actions[0].caps[0].window: cap without a window`,
		`actions[0].model: unknown model "nosuch"`,
		`actions[1].value: expression must be a number, got string`,
		`journeys[0].steps[0].action: unknown action "missing"`,
		`journeys[1].mode: unknown mode "sticky"`,
		`journeys[1].steps: no steps`,
	}
	for _, err := range errs {
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Errorf("%v is not a *PathError", err)
		}
	}
	joined := pathForm(errs)
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("missing error %q", w)
		}
	}
	if t.Failed() {
		t.Logf("got:\n%s", joined)
	}
	_, err := CompileCatalog("bad.yaml", []byte(src), Options{Schema: testSchema})
	var ce *CatalogError
	if !errors.As(err, &ce) || len(ce.Errs) != len(errs) || !strings.HasPrefix(err.Error(), `cannot load catalog "bad.yaml": `) {
		t.Errorf("CompileCatalog error: %v", err)
	}
}

// pathForm lists the problems one a line as "path: problem", the form that
// does not depend on line numbers or ids.
func pathForm(errs []error) string {
	var b strings.Builder
	for _, err := range errs {
		var pe *PathError
		if !errors.As(err, &pe) {
			b.WriteString(err.Error())
		} else if pe.Path == "" {
			b.WriteString(pe.problem)
		} else {
			b.WriteString(pe.Path + ": " + pe.problem)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// A misspelt key used to stop the load before the checks of meaning, so it
// hid every other mistake of the file; and problems carried a path without
// a line. Each of the four mistakes here must be reported, in file order,
// with its line and column and the action named by id.
func TestCatalogMisspeltKeyHidesNothing(t *testing.T) {
	const src = `channels: [web]
actions:
  - id: xs_kids
    channels: [web]
    levr: 2
    rules:
      eligible: ["profile.tenure_dayz > 3"]
  - id: welcome
    channels: [web, fax]
    tier: 1.5
`
	errs := Validate("catalog.yaml", []byte(src), Options{Schema: Schema{Fields: []Field{{"tenure_days", KindNumber}}}})
	want := []string{
		`catalog.yaml:5:5: action "xs_kids": unknown field "levr" (did you mean "lever"?)`,
		`catalog.yaml:7:27: action "xs_kids": rules.eligible[0]: unknown field "tenure_dayz" (did you mean "tenure_days"?)`,
		`catalog.yaml:9:21: action "welcome": channels[1]: unknown channel "fax"`,
		`catalog.yaml:10:11: action "welcome": tier: want a whole number, got 1.5`,
	}
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var pe *PathError
	if len(errs) > 0 && errors.As(errs[0], &pe) && (pe.Line != 5 || pe.Column != 5 || pe.Path != "actions[0]") {
		t.Errorf("first problem at %q %d:%d, want actions[0] 5:5", pe.Path, pe.Line, pe.Column)
	}
}

// The same catalog as JSON is placed by line and column too, and a value of
// the wrong shape is reported once (not again as "no channels").
func TestCatalogErrorPositionsJSON(t *testing.T) {
	const src = `{"channels": ["web"],
 "actions": [
  {"id": "a", "channels": "web"},
  {"id": "b", "channels": ["web"], "grup": "g"}]}`
	errs := Validate("c.json", []byte(src), Options{Schema: testSchema})
	want := []string{
		`c.json:3:27: action "a": channels: want a list, got a string`,
		`c.json:4:36: action "b": unknown field "grup" (did you mean "group"?)`,
	}
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A rule's problem is placed at its column in the file when the rule is
// written as is on one line; otherwise at the rule, with its column in the
// rule's text.
func TestCatalogRuleErrorColumn(t *testing.T) {
	for _, tc := range []struct{ name, rule, want string }{
		{"plain", `profile.agee > 3`, `t.yaml:5:32: action "a": rules.eligible[0]: unknown field "agee" (did you mean "age"?)`},
		{"double quoted", `"profile.agee > 3"`, `t.yaml:5:33: action "a": rules.eligible[0]: unknown field "agee" (did you mean "age"?)`},
		{"single quoted", `'profile.agee > 3'`, `t.yaml:5:33: action "a": rules.eligible[0]: unknown field "agee" (did you mean "age"?)`},
		{"escaped", `"profile.segment == \"a\" && profile.agee > 3"`, `t.yaml:5:24: action "a": rules.eligible[0]: unknown field "agee" (did you mean "age"?) (column 35 of the rule)`},
		{"folded", ">-\n          profile.agee > 3", `t.yaml:5:23: action "a": rules.eligible[0]: unknown field "agee" (did you mean "age"?) (column 9 of the rule)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "channels: [web]\nactions:\n  - id: a\n    channels: [web]\n    rules: {eligible: [x]}\n"
			if strings.HasPrefix(tc.rule, ">") {
				src = strings.Replace(src, "rules: {eligible: [x]}", "rules:\n      eligible:\n        - "+tc.rule, 1)
				src = strings.Replace(src, "t.yaml:5:23", "t.yaml:7:11", 1)
				tc.want = strings.Replace(tc.want, "t.yaml:5:23", "t.yaml:7:11", 1)
			} else {
				src = strings.Replace(src, "[x]", "["+tc.rule+"]", 1)
			}
			errs := Validate("t.yaml", []byte(src), testOpts)
			if len(errs) != 1 || errs[0].Error() != tc.want {
				t.Errorf("got %v, want %s\nin:\n%s", errs, tc.want, src)
			}
		})
	}
}

// Regression: a journey that listed one action twice panicked the loader
// (index out of range), looking up the journey being compiled among those
// already compiled.
func TestCatalogJourneyStepTwice(t *testing.T) {
	const src = `channels: [web]
actions: [{id: s1, channels: [web]}]
journeys: [{id: j, entry: {event: e}, steps: [{action: s1}, {action: s1}]}]
`
	errs := Validate("t.yaml", []byte(src), testOpts)
	want := `t.yaml:3:70: journey "j": steps[1].action: action "s1" is already a step of journey "j"`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("got %v, want %s", errs, want)
	}
}

func TestCatalogSyntaxErrorPlaced(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		errs := Validate("c.yaml", []byte(src), testOpts)
		if len(errs) != 1 || errs[0].Error() != want {
			t.Errorf("%q: got %v, want %s", src, errs, want)
		}
	}
	f(`{"actions": [}`, `c.yaml:1:14: cannot parse: could not find '{' character corresponding to '}'`)
	f("actions:\n  - id: a\n   channels: [web]\n", "c.yaml:3:4: cannot parse: value is not allowed in this context")
	f("", "c.yaml: empty catalog")
}

// A file of thousands of mistakes lists MaxProblems of them and counts the
// rest, in bounded time.
func TestCatalogProblemsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("channels: [web]\nactions:\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "  - {id: a%d, channels: web, levr: 1}\n", i)
	}
	errs := Validate("big.yaml", []byte(b.String()), testOpts)
	if len(errs) != MaxProblems+1 {
		t.Fatalf("%d problems listed, want %d and a count", len(errs), MaxProblems+1)
	}
	if last := errs[len(errs)-1].Error(); last != fmt.Sprintf("big.yaml: %d more problems not listed", 2*5000-MaxProblems) {
		t.Errorf("last: %s", last)
	}
}

func TestDidYouMean(t *testing.T) {
	f := func(s string, names []string, want string) {
		t.Helper()
		if got := didYouMean(s, names); got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", s, got, want)
		}
	}
	f("levr", []string{"lever", "value", "weight"}, ` (did you mean "lever"?)`)
	f("tenure_dayz", []string{"age", "tenure_days"}, ` (did you mean "tenure_days"?)`)
	f("Eligible", []string{"eligible"}, ` (did you mean "eligible"?)`)
	f("colour", []string{"channels", "context"}, "")
	f("id", []string{"in"}, "") // too short to guess
	f("lever", []string{"lever"}, "")
}

func TestCatalogUnknownFieldsAllReported(t *testing.T) {
	const src = `
colour: red
actions:
  - id: a
    channels: [web]
    valu: 3
    rules: {eligble: ["true"]}
  - id: b
    channels: web
`
	errs := Validate("x.yaml", []byte(src), Options{Schema: testSchema})
	want := []string{
		`unknown field "colour"`,
		`actions[0]: unknown field "valu" (did you mean "value"?)`,
		`actions[0].rules: unknown field "eligble" (did you mean "eligible"?)`,
		`actions[1].channels: want a list, got a string`,
	}
	joined := pathForm(errs)
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("missing %q in:\n%s", w, joined)
		}
	}
}

func TestCatalogModelBinding(t *testing.T) {
	models := map[string]Scorer{"m": linModel{feats: []string{"age", "page", "offer_size", "mystery"}, w: make([]float64, 4)}}
	const src = `
context: {page: number}
actions:
  - id: a
    channels: [web]
    model: m
    features: {offer_size: 2, colour: 1}
`
	errs := Validate("m.yaml", []byte(src), Options{Schema: testSchema, Models: models})
	joined := pathForm(errs)
	for _, w := range []string{
		`actions[0].model: model "m": feature "mystery" cannot be bound`,
		`actions[0].features.colour: model "m" has no feature "colour"`,
	} {
		if !strings.Contains(joined, w) {
			t.Errorf("missing %q in:\n%s", w, joined)
		}
	}
	if len(errs) != 2 {
		t.Errorf("want 2 errors, got:\n%s", joined)
	}
}

func TestCatalogJSONAccepted(t *testing.T) {
	src := `{"actions": [{"id": "a", "channels": ["web"], "treatments": {"web": {"b": [1, 2], "a": "x"}}}]}`
	c := mustCatalog(t, src, Options{Schema: testSchema})
	if got := string(c.Action("a").Treatment(c.ChannelIndex("web"))); got != `{"a":"x","b":[1,2]}` {
		t.Errorf("treatment %s", got)
	}
}

func TestExampleCatalogsLoad(t *testing.T) {
	for _, src := range []string{textbook(1, ""), journeysCatalog, policyCatalog} {
		if errs := Validate("t.yaml", []byte(src), testOpts); len(errs) > 0 {
			t.Error(errs)
		}
	}
	if b, err := os.ReadFile("testdata/catalog.yaml"); err == nil {
		if errs := Validate("testdata/catalog.yaml", b, testOpts); len(errs) > 0 {
			t.Error(errs)
		}
	}
}
