package nba

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// FuzzLoadCatalog feeds arbitrary bytes to the catalog loader: it must not
// panic, must report problems as *PathError, must agree with itself, and a
// catalog it accepts must decide on every channel.
func FuzzLoadCatalog(f *testing.F) {
	for _, s := range []string{textbook(1, `profile.segment == "gold"`), journeysCatalog, policyCatalog,
		`{"actions": [{"id": "a", "channels": ["web"]}]}`, "actions: [", "", textbook(0, "") + learnFuzzSeed} {
		f.Add([]byte(s))
	}
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 10, "aff_xsell": 0.5, "segment": "gold"})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		errs := Validate("fuzz.yaml", data, testOpts)
		// YAML breaks lines at \n, \r\n and a lone \r.
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n")) + 1
		for _, err := range errs {
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("%v is not a *PathError", err)
			}
			if pe.Line < 0 || pe.Line > lines || pe.Column < 0 {
				t.Fatalf("%v: line %d:%d outside the file's %d lines", err, pe.Line, pe.Column, lines)
			}
		}
		again := Validate("fuzz.yaml", data, testOpts)
		if fmt.Sprint(again) != fmt.Sprint(errs) {
			t.Fatalf("two loads disagree:\n%v\n%v", errs, again)
		}
		c, err := CompileCatalog("fuzz.yaml", data, testOpts)
		if (err == nil) != (len(errs) == 0) {
			t.Fatalf("Validate (%d errors) and CompileCatalog (%v) disagree", len(errs), err)
		}
		if err != nil {
			return
		}
		e := mustEngine(t, c, prof, newMemHistory(), &memJourneys{by: map[string][]JourneyState{}})
		if c.Learning() && len(c.Actions()) > 0 {
			if err := e.Observe("c", c.Actions()[0].ID, 1, monday); err != nil {
				t.Fatalf("cannot observe on an accepted catalog: %v", err)
			}
		}
		for _, ch := range c.Channels() {
			var d Decision
			if err := e.Decide(&Request{Customer: "c", Channel: ch, Limit: 3, Now: monday, Explain: true}, &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Actions) > 3 {
				t.Fatalf("%d actions for limit 3", len(d.Actions))
			}
		}
	})
}

// learnFuzzSeed is a learning section for the textbook catalog.
const learnFuzzSeed = `
learning:
  features: [clv, aff_xsell, in_arrears]
  prior_variance: 2
  half_life: 30d
  explore:
    web: {method: thompson, draws: 8}
    email: {method: epsilon, epsilon: 0.1}
    app: {method: softmax, temperature: 0.05}
`
