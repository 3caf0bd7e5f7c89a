package nba

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

const overrideCatalog = `
version: overrides
actions:
  - id: a
    channels: [web]
    value: 30
  - id: b
    channels: [web]
    value: 20
  - id: c
    channels: [web]
    value: 10
    tier: 1
`

// TestOverrides: a what-if changes levers, weights and tiers for the one
// dry run that carries it and for no other decision; bad overrides are
// refused with the action and the bound named.
func TestOverrides(t *testing.T) {
	cat := mustCatalog(t, overrideCatalog, Options{Schema: testSchema})
	e := mustEngine(t, cat, newMemProfiles(testSchema), newMemHistory(), nil)
	f64 := func(x float64) *float64 { return &x }
	tier := func(x int) *int { return &x }
	order := func(ov *Overrides) []string {
		t.Helper()
		var d Decision
		if err := e.Decide(&Request{Channel: "web", Limit: 3, Now: monday, DryRun: true, Explain: true, Overrides: ov}, &d); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range d.Actions {
			ids = append(ids, a.Action.ID)
		}
		return ids
	}
	base := order(nil)
	if want := []string{"c", "a", "b"}; !slices.Equal(base, want) {
		t.Fatalf("without overrides: %v, want %v", base, want)
	}
	for _, tc := range []struct {
		name string
		ov   []ActionOverride
		want []string
	}{
		{"lever", []ActionOverride{{Action: "b", Lever: f64(2)}}, []string{"c", "b", "a"}},
		{"weight", []ActionOverride{{Action: "a", Weight: f64(0)}}, []string{"c", "b", "a"}},
		{"unpin", []ActionOverride{{Action: "c", Tier: tier(0)}}, []string{"a", "b", "c"}},
		{"pin", []ActionOverride{{Action: "b", Tier: tier(1)}}, []string{"b", "c", "a"}},
		{"pin first", []ActionOverride{{Action: "a", Tier: tier(2)}, {Action: "c", Tier: tier(3)}}, []string{"a", "c", "b"}},
		{"all", []ActionOverride{{Action: "c", Tier: tier(0), Lever: f64(5)}, {Action: "a", Weight: f64(0.5), Lever: f64(1)}}, []string{"c", "b", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ov, err := cat.CompileOverrides(tc.ov)
			if err != nil {
				t.Fatal(err)
			}
			if got := order(ov); !slices.Equal(got, tc.want) {
				t.Errorf("with %+v: %v, want %v", tc.ov, got, tc.want)
			}
			// Nothing persists: the next decision ranks as the catalog says.
			if got := order(nil); !slices.Equal(got, base) {
				t.Errorf("after the what-if: %v, want %v", got, base)
			}
		})
	}
	for _, tc := range []struct {
		name string
		ov   []ActionOverride
		want string
	}{
		{"unknown action", []ActionOverride{{Action: "bb", Lever: f64(1)}}, `action "bb" is not in catalog`},
		{"twice", []ActionOverride{{Action: "a", Lever: f64(1)}, {Action: "a", Tier: tier(1)}}, "overridden twice"},
		{"empty", []ActionOverride{{Action: "a"}}, "needs lever, weight or tier"},
		{"negative lever", []ActionOverride{{Action: "a", Lever: f64(-1)}}, "lever -1 out of range"},
		{"NaN weight", []ActionOverride{{Action: "a", Weight: f64(math.NaN())}}, "weight NaN out of range"},
		{"huge weight", []ActionOverride{{Action: "a", Weight: f64(2e6)}}, "out of range [0, 1e+06]"},
		{"tier", []ActionOverride{{Action: "a", Tier: tier(MaxTier + 1)}}, "tier 100 out of range"},
		{"negative tier", []ActionOverride{{Action: "a", Tier: tier(-1)}}, "tier -1 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cat.CompileOverrides(tc.ov)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	t.Run("not a dry run", func(t *testing.T) {
		ov, _ := cat.CompileOverrides([]ActionOverride{{Action: "a", Lever: f64(2)}})
		var d Decision
		if err := e.Decide(&Request{Channel: "web", Now: monday, Overrides: ov}, &d); err == nil {
			t.Error("overrides decided without dry_run")
		}
	})
	t.Run("stale", func(t *testing.T) {
		other := mustCatalog(t, overrideCatalog, Options{Schema: testSchema})
		ov, _ := other.CompileOverrides([]ActionOverride{{Action: "a", Lever: f64(2)}})
		var d Decision
		if err := e.Decide(&Request{Channel: "web", Now: monday, DryRun: true, Overrides: ov}, &d); !errors.Is(err, ErrStaleOverrides) {
			t.Errorf("overrides of another catalog: %v, want ErrStaleOverrides", err)
		}
	})
}
