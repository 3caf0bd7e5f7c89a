package embedded

import (
	"testing"

	"nba/state"
)

// TestComputedJourneyMovesReplayed: the journey moves an event computes at
// write time (Event.JourneysFrom) are in its log record, so a restart
// replays them without the function. The behaviours themselves are in the
// contract table (package statetest).
func TestComputedJourneyMovesReplayed(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	enter := func(cur []state.JourneyState) []state.JourneyMove {
		if len(cur) > 0 {
			return nil
		}
		return []state.JourneyMove{{Journey: "cart"}}
	}
	must(t, s.ApplyEvent(state.Event{Customer: "e", Type: "cart_abandoned", At: t0, JourneysFrom: enter}))
	must(t, s.Close())
	s2 := openStore(t, dir, nil)
	var v state.View
	s2.View([]byte("e"), &v)
	if j, ok := v.Journey("cart"); !ok || j.Status != state.JourneyActive {
		t.Errorf("after a restart: %+v %v", j, ok)
	}
}
