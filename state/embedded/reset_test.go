package embedded

import (
	"context"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"nba/state"
)

const resetMappingsYAML = `
fields: {open_ticket: bool, cart_value: number, age: number}
reset_on_snapshot: [orders_since_snapshot]
events:
  ticket_opened: [{set: open_ticket, value: true}]
  cart_abandoned: [{set: cart_value, from: value}]
  purchase: [{incr: orders_since_snapshot}, {incr: orders_total, by: 2}]
  birthday: [{incr: age}]
`

func parseMappings(t testing.TB, y string) state.Mappings {
	t.Helper()
	var m state.Mappings
	if err := yaml.UnmarshalWithOptions([]byte(y), &m, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSnapshotResetsOnlyItsFields is the regression test of "a snapshot
// reload wipes live-only profile fields": Compact hid every overlay value
// stamped before the new snapshot's as-of, including fields the snapshot
// does not carry (an open ticket). Per field: a field the snapshot carries
// (age) or one listed in reset_on_snapshot is reset, every other field
// keeps its value, also across restarts and checkpoints.
func TestSnapshotResetsOnlyItsFields(t *testing.T) {
	dir := t.TempDir()
	open := func() *Store {
		return openStore(t, dir, func(c *state.Config) {
			c.Mappings = parseMappings(t, resetMappingsYAML)
			c.SnapshotFields = []string{"age", "segment"} // segment is no overlay field: ignored
		})
	}
	s := open()
	ev := func(typ string, at time.Time, attrs map[string]any) {
		t.Helper()
		if err := s.ApplyEvent(state.Event{Customer: "c", Type: typ, At: at, Attrs: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	wantReset := map[string]bool{"age": true, "orders_since_snapshot": true}
	for _, f := range s.Fields() {
		if f.ResetOnSnapshot != wantReset[f.Name] {
			t.Errorf("field %s: ResetOnSnapshot %v, want %v", f.Name, f.ResetOnSnapshot, wantReset[f.Name])
		}
	}
	asOf := t0.Add(time.Hour)
	ev("ticket_opened", t0, nil)
	ev("cart_abandoned", t0, map[string]any{"value": 50})
	ev("purchase", t0, nil)
	ev("birthday", t0, nil)
	if err := s.Compact(asOf); err != nil {
		t.Fatal(err)
	}
	type want struct {
		field string
		ok    bool
		num   float64
	}
	check := func(stage string, s *Store, wants []want) {
		t.Helper()
		var v state.View
		s.View([]byte("c"), &v)
		for _, w := range wants {
			sl := slot(t, s, w.field)
			var num float64
			var ok bool
			if w.field == "open_ticket" {
				var b bool
				b, ok = v.Bool(sl)
				num = b2f(b)
			} else {
				num, ok = v.Number(sl)
			}
			_, stamped := v.StampedAt(sl)
			if ok != w.ok || num != w.num || stamped != w.ok {
				t.Errorf("%s: %s = %v (set %v, stamped %v), want %v (set %v)", stage, w.field, num, ok, stamped, w.num, w.ok)
			}
		}
	}
	check("after compaction", s, []want{
		{"open_ticket", true, 1}, {"cart_value", true, 50}, {"orders_total", true, 2},
		{"orders_since_snapshot", false, 0}, {"age", false, 0},
	})
	// The hidden values are dropped from memory, the others kept.
	c, _ := s.Get(context.Background(), "c")
	kept := map[string]bool{}
	fields := s.Dump(c, 0).Fields // every value set, hidden or not
	for _, f := range fields {
		kept[f.Field] = true
	}
	if kept["age"] || !kept["open_ticket"] {
		t.Errorf("after compaction: overlay %+v, want age dropped and open_ticket kept", fields)
	}

	// Later events: a reset counter counts from 0, a live one goes on. An
	// event stamped before the as-of (late) still changes live fields.
	ev("purchase", asOf.Add(time.Hour), nil)
	ev("purchase", t0.Add(30*time.Minute), nil)
	ev("cart_abandoned", t0.Add(30*time.Minute), map[string]any{"value": 70})
	after := []want{
		{"open_ticket", true, 1}, {"cart_value", true, 70}, {"orders_total", true, 6},
		{"orders_since_snapshot", true, 1}, {"age", false, 0},
	}
	check("after later events", s, after)

	s.Close()
	s = open()
	check("after a restart (log replay)", s, after)
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	check("after a restart (checkpoint)", s, after)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
