package state

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func parseMappings(t testing.TB, y string) Mappings {
	t.Helper()
	var m Mappings
	if err := yaml.UnmarshalWithOptions([]byte(y), &m, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestResetOnSnapshotValidation(t *testing.T) {
	_, err := compile(parseMappings(t, "events: {a: [{incr: n}]}\nreset_on_snapshot: [m]"), nil)
	if err == nil || !strings.Contains(err.Error(), `reset_on_snapshot[0]: unknown field "m"`) {
		t.Fatalf("unknown reset field: error %v", err)
	}
}

// TestMappingsEqual is the regression test of "a by: mapping blocks every
// reload": mappings were compared by their printed form, which holds the
// address of by's *float64, so the same bundle read twice differed.
func TestMappingsEqual(t *testing.T) {
	const base = `
fields: {tier: category}
events:
  purchase: [{incr: orders, by: 2}, {set: tier, value: gold}, {incr: spend, from: amount}]
  signup: [{stamp: signup_at}]
`
	tests := []struct {
		name  string
		other string
		equal bool
	}{
		{"same text read again", base, true},
		{"same constant spelt 2.0", strings.Replace(base, "by: 2}", "by: 2.0}", 1), true},
		{"events in another order", `
events:
  signup: [{stamp: signup_at}]
  purchase: [{incr: orders, by: 2}, {set: tier, value: gold}, {incr: spend, from: amount}]
fields: {tier: category}
`, true},
		{"by changed", strings.Replace(base, "by: 2}", "by: 3}", 1), false},
		{"by dropped", strings.Replace(base, ", by: 2}", "}", 1), false},
		{"constant changed", strings.Replace(base, "value: gold", "value: silver", 1), false},
		{"attribute changed", strings.Replace(base, "from: amount", "from: total", 1), false},
		{"operations reordered", strings.Replace(base, "[{incr: orders, by: 2}, {set: tier, value: gold}", "[{set: tier, value: gold}, {incr: orders, by: 2}", 1), false},
		{"event renamed", strings.Replace(base, "signup:", "register:", 1), false},
		{"field added", base + "  ticket: [{set: open_ticket, value: true}]\n", false},
		{"reset added", base + "reset_on_snapshot: [orders]\n", false},
		{"invalid", strings.Replace(base, "by: 2}", "by: 2, from: x}", 1), false},
	}
	a := parseMappings(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := parseMappings(t, tt.other)
			if got := a.Equal(b); got != tt.equal {
				t.Errorf("Equal = %v, want %v", got, tt.equal)
			}
			if got := b.Equal(a); got != tt.equal {
				t.Errorf("Equal (swapped) = %v, want %v", got, tt.equal)
			}
		})
	}
}

// TestConsentMappingErrors: a consent operation of a mapping is checked
// when the mappings compile.
func TestConsentMappingErrors(t *testing.T) {
	f := func(op Op, want string) {
		t.Helper()
		_, err := NewModel(Config{Mappings: Mappings{Events: map[string][]Op{"e": {op}}}})
		if want == "" {
			if err != nil {
				t.Errorf("%+v: %v", op, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: err %v, want %q", op, err, want)
		}
	}
	f(Op{Consent: "email.marketing", Status: "denied"}, "")
	f(Op{Consent: "email.marketing", From: "s"}, "")
	f(Op{Consent: "email", Status: "denied"}, `events.e[0]: consent "email" is not channel.purpose`)
	f(Op{Consent: "email.marketing.x", Status: "denied"}, "is not channel.purpose")
	f(Op{Consent: "email.marketing"}, "needs exactly one of status, from")
	f(Op{Consent: "email.marketing", Status: "denied", From: "s"}, "needs exactly one of status, from")
	f(Op{Consent: "email.marketing", Status: "maybe"}, `unknown consent status "maybe"`)
	f(Op{Consent: "email.marketing", Status: "denied", Set: "x"}, "consent takes status or from, nothing else")
	f(Op{Status: "denied"}, "is not channel.purpose")
}
