package nba

import (
	"errors"
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
		`actions[0].channels: unknown channel "fax"`,
		`actions[0].treatments.sms: channel "sms" is not one of the action's channels`,
		`actions[0].rules.eligible[0]: unknown field tenure_dayz`,
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
	var all []string
	for _, err := range errs {
		all = append(all, err.Error())
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Errorf("%v is not a *PathError", err)
		}
	}
	joined := strings.Join(all, "\n")
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
		`colour: unknown field`, // reported as: unknown field "colour" at the top
		`actions[0]: unknown field "valu"`,
		`actions[0].rules: unknown field "eligble"`,
		`actions[1].channels: want a list, got a string`,
	}
	joined := ""
	for _, err := range errs {
		joined += err.Error() + "\n"
	}
	for _, w := range want {
		w = strings.Replace(w, `colour: unknown field`, `unknown field "colour"`, 1)
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
	joined := ""
	for _, err := range errs {
		joined += err.Error() + "\n"
	}
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
