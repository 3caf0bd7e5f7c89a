package state

import (
	"testing"
	"time"
)

// TestCompactedFreesOverlay: Compacted drops the values of fields that
// reset on a snapshot stamped at or before the as-of, frees an overlay left
// without values, keeps the rest, and returns the customer itself when
// nothing is stale.
func TestCompactedFreesOverlay(t *testing.T) {
	m, err := NewModel(Config{Mappings: testMappings(t), SnapshotFields: []string{"last_order_value", "orders_30d", "spend_30d", "last_purchase_at"}})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(c *Customer, typ string, at time.Time) *Customer {
		t.Helper()
		r, err := m.EventRecord(Event{Customer: "c", Type: typ, At: at, Attrs: map[string]any{"amount": 10}})
		if err != nil {
			t.Fatal(err)
		}
		next, _, err := m.Apply(c, &r, 0)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	old := apply(nil, "purchase", t0)
	if got := m.Compacted(old, t0.Add(-time.Second).UnixNano()); got != old {
		t.Error("nothing stale: Compacted copied the customer")
	}
	if got := m.Compacted(old, t0.UnixNano()); got == old || got.overlay != nil {
		t.Errorf("fully covered overlay kept in memory: %+v", got.overlay)
	}
	if old.overlay == nil {
		t.Error("Compacted changed its argument")
	}
	mixed := apply(old, "ticket_opened", t0.Add(time.Hour))
	got := m.Compacted(mixed, t0.Add(time.Hour).UnixNano())
	sl, _, _ := m.Slot("open_tickets")
	for i, v := range got.overlay {
		if want := Slot(i) == sl; (v.at != 0) != want {
			t.Errorf("field %s: value %+v, want kept %v", m.m.fields[i].Name, v, want)
		}
	}
}
