package embedded_test

import (
	"fmt"
	"os"
	"time"

	"nba/state"
	"nba/state/embedded"
	"nba/state/wal"
)

func ExampleStore() {
	dir, _ := os.MkdirTemp("", "state-example")
	defer os.RemoveAll(dir)
	s, err := embedded.Open(state.Config{
		Mappings: state.Mappings{Events: map[string][]state.Op{
			"purchase": {{Incr: "orders_30d"}, {Stamp: "last_purchase_at"}},
		}},
		WAL: wal.Config{Dir: dir},
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	// Writes return once durable.
	s.ApplyEvent(state.Event{Customer: "c-42", Type: "purchase", At: now.Add(-time.Hour)})
	s.RecordContact(state.Contact{Customer: "c-42", Action: "card-upgrade", Group: "cards", Channel: "email",
		Outcome: state.Reject, At: now.Add(-48 * time.Hour)})

	// Resolve once at compile time; read per request without allocating.
	orders, _, _ := s.Slot("orders_30d")
	var v state.View
	s.View([]byte("c-42"), &v)
	n, _ := v.Number(orders)
	rejects := v.Count(state.KindGroup, "cards", state.Reject, 7*24*time.Hour, now)
	last, _ := v.Last(state.KindAction, "card-upgrade", state.Reject)
	fmt.Println(n, rejects, now.Sub(last))
	// Output: 1 1 48h0m0s
}

// A client retries an event it is not sure was applied: with the same ID,
// the retry is acknowledged and changes nothing, so the counter counts the
// purchase once. The journey entry the event caused is in the same record.
func ExampleStore_ApplyEventOnce() {
	dir, _ := os.MkdirTemp("", "state-example")
	defer os.RemoveAll(dir)
	s, err := embedded.Open(state.Config{
		Mappings: state.Mappings{Events: map[string][]state.Op{"purchase": {{Incr: "orders_30d"}}}},
		WAL:      wal.Config{Dir: dir},
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ev := state.Event{Customer: "c-42", Type: "purchase", At: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), ID: "order-1017",
		Journeys: []state.JourneyMove{{Journey: "post_purchase"}}}
	for range 2 {
		dup, err := s.ApplyEventOnce(ev)
		fmt.Println("duplicate:", dup, err)
	}
	orders, _, _ := s.Slot("orders_30d")
	var v state.View
	s.View([]byte("c-42"), &v)
	n, _ := v.Number(orders)
	_, inJourney := v.Journey("post_purchase")
	fmt.Println(n, inJourney, s.Stats().Duplicates)
	// Output:
	// duplicate: false <nil>
	// duplicate: true <nil>
	// 1 true 1
}
