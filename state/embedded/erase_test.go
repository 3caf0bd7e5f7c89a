package embedded

import (
	"testing"
	"time"

	"nba/state"
)

// TestConsentAndErasureSurviveRestart: consent changes (with their trail),
// erasures and tombstones come back from the log and from a checkpoint,
// and an erased customer does not come back from the records before its
// erasure.
func TestConsentAndErasureSurviveRestart(t *testing.T) {
	until := time.Now().Add(time.Hour).Truncate(time.Nanosecond).UTC()
	for _, c := range []struct {
		name       string
		checkpoint bool
	}{{"from the log", false}, {"from a checkpoint", true}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, nil)
			for _, x := range []state.Consent{
				{Customer: "c", Channel: "email", Purpose: "marketing", Granted: false, At: t0.Add(time.Hour), Source: "api", ID: "k"},
				{Customer: "c", Channel: "email", Purpose: "marketing", Granted: true, At: t0, Source: "snapshot"},
				{Customer: "gone", Channel: "sms", Purpose: "marketing", Granted: true, At: t0},
			} {
				if _, err := s.SetConsent(x); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.RecordContact(state.Contact{Customer: "gone", Action: "a", At: t0}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Erase("gone", state.Tombstone{Pseudonym: "p1", Until: until}); err != nil {
				t.Fatal(err)
			}
			if !c.checkpoint {
				// Erase checkpoints; write after it so the log has the rest.
				if _, err := s.SetConsent(state.Consent{Customer: "c", Channel: "sms", Purpose: "service", Granted: true, At: t0}); err != nil {
					t.Fatal(err)
				}
			} else if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = openStore(t, dir, nil)
			var v state.View
			if !s.View([]byte("c"), &v) {
				t.Fatal("customer c lost")
			}
			got, ok := v.Consent("email", "marketing")
			if !ok || got.Granted || got.Source != "api" || len(v.ConsentAt(0).Trail) != 2 {
				t.Errorf("email marketing after restart: %+v %v trail %+v", got, ok, v.ConsentAt(0).Trail)
			}
			if dup, _ := s.SetConsent(state.Consent{Customer: "c", Channel: "email", Purpose: "marketing", At: t0, ID: "k"}); dup != 1 {
				t.Error("consent id forgotten across the restart")
			}
			if s.View([]byte("gone"), &v) {
				t.Error("erased customer came back")
			}
			if ok, _ := s.Tombstoned("p1", time.Now()); !ok {
				t.Error("tombstone lost")
			}
		})
	}
}

// TestEraseReplayKeepsLaterState: replaying an erasure drops only the
// state written before it; the customer written again after it (once the
// tombstone is gone or without one) keeps the new state.
func TestEraseReplayKeepsLaterState(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	if err := s.RecordContact(state.Contact{Customer: "c", Action: "a", At: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Erase("c", state.Tombstone{}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordContact(state.Contact{Customer: "c", Action: "b", At: t0}); state.KindOf(err) != state.ErrErased {
		t.Fatalf("a write within the erased stub's time: %v, want ErrErased", err)
	}
	s.stubs.sweep(time.Now().Add(state.ErasedStubTTL)) // the stub expires
	if err := s.RecordContact(state.Contact{Customer: "c", Action: "b", At: t0}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dir, nil)
	var v state.View
	if !s.View([]byte("c"), &v) || v.HistoryLen() != 1 || v.Count(state.KindAction, "b", state.Impression, time.Hour, t0) != 1 {
		t.Errorf("after replay: found %v, history %d", v.Found(), v.HistoryLen())
	}
}
