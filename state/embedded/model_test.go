package state

import "testing"

// TestComputedJourneyMovesReplayed: the journey moves an event computes at
// write time (Event.JourneysFrom) are in its log record, so a restart
// replays them without the function. The behaviours themselves are in the
// contract table (package statetest).
func TestComputedJourneyMovesReplayed(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	enter := func(cur []JourneyState) []JourneyMove {
		if len(cur) > 0 {
			return nil
		}
		return []JourneyMove{{Journey: "cart"}}
	}
	must(t, s.ApplyEvent(Event{Customer: "e", Type: "cart_abandoned", At: t0, JourneysFrom: enter}))
	must(t, s.Close())
	s2 := openStore(t, dir, nil)
	var v View
	s2.View([]byte("e"), &v)
	if j, ok := v.Journey("cart"); !ok || j.Status != JourneyActive {
		t.Errorf("after a restart: %+v %v", j, ok)
	}
}
