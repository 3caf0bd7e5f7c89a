package nba

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// countingCustomers counts loads and can fail them, as a state backend that
// does not answer would: the profile (the snapshot's part) is filled, the
// live state is not.
type countingCustomers struct {
	Customers
	loads int
	fail  error
}

func (c *countingCustomers) Load(ctx context.Context, customer string, dst *Customer) (bool, error) {
	c.loads++
	known, err := c.Customers.Load(ctx, customer, dst)
	if c.fail != nil {
		return known, c.fail
	}
	return known, err
}

// TestDecideLoadsCustomerOnce: a decision reads the customer's state in
// one Load, whatever the number of counts, suppressions and journeys its
// rules read (each was a store lookup before).
func TestDecideLoadsCustomerOnce(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"aff_welcome": 0.9})
	h := newMemHistory()
	h.add("c", contact{action: "welcome_1", channel: "web", outcome: Impression, at: monday.Add(-time.Hour)})
	jour := &memJourneys{by: map[string][]JourneyState{}}
	cat := mustCatalog(t, textbook(0, ""), testOpts)
	cc := &countingCustomers{Customers: SplitCustomers(prof, h, jour)}
	e, err := NewEngine(Config{Catalog: cat, Customers: cc})
	if err != nil {
		t.Fatal(err)
	}
	jour.apply("c", e.OnEvent("c", "signup", nil, monday, nil))
	cc.loads = 0
	for i := range 3 {
		var d Decision
		if err := e.Decide(&Request{Customer: "c", Channel: "web", Limit: 3, Now: monday.Add(time.Duration(i) * 24 * time.Hour)}, &d); err != nil {
			t.Fatal(err)
		}
		jour.apply("c", d.Effects)
		if cc.loads != i+1 {
			t.Fatalf("decision %d: %d loads in all, want one per decision", i, cc.loads)
		}
		if d.Stale {
			t.Errorf("decision %d marked stale with the state answering", i)
		}
	}
	var d Decision
	if err := e.Decide(&Request{Channel: "web", Now: monday}, &d); err != nil {
		t.Fatal(err)
	}
	if cc.loads != 3 {
		t.Errorf("an anonymous decision loaded a customer")
	}
}

// TestDecideStaleWhenStateUnavailable: when the live state cannot be read,
// the decision is made from the profile as read, marked Stale and counted,
// and gives no journey effects (journeys read as empty would enter the
// customer again); it is not silently a decision with "count 0".
func TestDecideStaleWhenStateUnavailable(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"aff_welcome": 0.9})
	jour := &memJourneys{by: map[string][]JourneyState{}}
	cat := mustCatalog(t, textbook(0, ""), testOpts)
	cc := &countingCustomers{Customers: SplitCustomers(prof, newMemHistory(), jour)}
	e, err := NewEngine(Config{Catalog: cat, Customers: cc})
	if err != nil {
		t.Fatal(err)
	}
	jour.apply("c", e.OnEvent("c", "signup", nil, monday, nil))
	var fresh Decision
	if err := e.Decide(&Request{Customer: "c", Channel: "web", Now: monday}, &fresh); err != nil {
		t.Fatal(err)
	}
	if fresh.Stale || len(fresh.Effects) == 0 {
		t.Fatalf("with the state answering: stale %v, effects %+v", fresh.Stale, fresh.Effects)
	}

	cc.fail = errors.New("state unavailable")
	var d Decision
	if err := e.Decide(&Request{Customer: "c", Channel: "web", Now: monday, Trace: true}, &d); err != nil {
		t.Fatal(err)
	}
	if !d.Stale {
		t.Error("decision not marked stale")
	}
	if !d.Trace.Known {
		t.Error("the profile read before the failure was not used")
	}
	if len(d.Effects) != 0 {
		t.Errorf("stale decision gave journey effects: %+v", d.Effects)
	}
	if slices.Contains(chosenIDs(&d), "welcome_1") {
		t.Errorf("stale decision gave a journey step: %v", chosenIDs(&d))
	}
	if n := e.Stats().Stale; n != 1 {
		t.Errorf("Stats.Stale = %d, want 1", n)
	}
	// The next decision, with the state back, is not stale.
	cc.fail = nil
	var next Decision
	if err := e.Decide(&Request{Customer: "c", Channel: "web", Now: monday}, &next); err != nil {
		t.Fatal(err)
	}
	if next.Stale {
		t.Error("stale flag carried over to the next decision")
	}
}

// TestEffectsCarryTheirPrecondition: every journey change a decision or an
// event gives says where the customer was when it was decided, so that a
// store can write it conditionally (two replicas deciding from the same
// state do not both deliver a step).
func TestEffectsCarryTheirPrecondition(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"aff_welcome": 0.9})
	jour := &memJourneys{by: map[string][]JourneyState{}}
	e := mustEngine(t, mustCatalog(t, textbook(0, ""), testOpts), prof, nil, jour)
	enter := e.OnEvent("c", "signup", nil, monday, nil)
	if len(enter) != 1 || enter[0].FromStatus != 0 {
		t.Fatalf("entry: %+v, want one change from outside the journey", enter)
	}
	jour.apply("c", enter)
	for day := range 3 {
		var d Decision
		if err := e.Decide(&Request{Customer: "c", Channel: "web", Now: monday.Add(time.Duration(day) * 24 * time.Hour)}, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Effects) != 1 {
			t.Fatalf("day %d: effects %+v", day, d.Effects)
		}
		u := d.Effects[0]
		if u.FromStatus != JourneyActive || u.FromStep != day || u.Step != day+1 {
			t.Errorf("day %d: %s to step %d from step %d (%v), want from step %d, active", day, u.Reason, u.Step, u.FromStep, u.FromStatus, day)
		}
		jour.apply("c", d.Effects)
	}
}
