package nba

import "testing"

// TestForgetCustomer: erasing a customer clears the decisions the memory
// remembers of it, and only those.
func TestForgetCustomer(t *testing.T) {
	const section = `
learning:
  features: [clv]
  prior_variance: 1
`
	prof := newMemProfiles(testSchema)
	prof.set("gone", map[string]any{"clv": 0.5})
	prof.set("kept", map[string]any{"clv": 0.7})
	cat := mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, section), learnOpts)
	e, err := NewEngine(Config{Catalog: cat, Profiles: prof})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.ForgetCustomer("gone"); n != 0 {
		t.Errorf("forgot %d before any decision", n)
	}
	for key, c := range map[uint64]string{1: "gone", 2: "gone", 3: "kept"} {
		var d Decision
		if err := e.Decide(&Request{Customer: c, Channel: "web", Now: monday, Remember: key}, &d); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.ForgetCustomer("gone"); n != 2 {
		t.Errorf("forgot %d decisions, want 2", n)
	}
	for key, want := range map[uint64]bool{1: false, 2: false, 3: true} {
		if _, ok := e.Recall(key, "a"); ok != want {
			t.Errorf("recall of decision %d: %v, want %v", key, ok, want)
		}
	}
}
