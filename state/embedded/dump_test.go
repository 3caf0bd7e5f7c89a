package embedded

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"nba/state"
)

// dumpState is dump without sequence numbers, which a restore assigns anew.
func dumpState(s *Store) string {
	return regexp.MustCompile(`lsn=\d+ ?`).ReplaceAllString(dump(s), "")
}

// fillRandom writes contacts (more than the history keeps, over more keys
// than are kept), events, journey moves and idempotency keys.
func fillRandom(t *testing.T, s *Store, rnd *rand.Rand) {
	t.Helper()
	for i := range 600 {
		cust := fmt.Sprintf("c%d", rnd.IntN(20))
		at := t0.Add(time.Duration(rnd.IntN(40*24*60)) * time.Minute)
		id := ""
		if rnd.IntN(3) == 0 {
			id = fmt.Sprintf("k%d", i)
		}
		switch rnd.IntN(4) {
		case 0, 1:
			must(t, s.RecordContact(state.Contact{Customer: cust, Action: fmt.Sprintf("a%d", rnd.IntN(12)), Group: fmt.Sprintf("g%d", rnd.IntN(3)),
				Channel: []string{"web", "email", ""}[rnd.IntN(3)], Outcome: state.Outcome(rnd.IntN(int(state.Dismiss) + 1)), Value: float64(rnd.IntN(5)) / 4, At: at, ID: id}))
		case 2:
			e := state.Event{Customer: cust, At: at, ID: id}
			switch rnd.IntN(4) {
			case 0:
				e.Type, e.Attrs = "purchase", map[string]any{"amount": float64(rnd.IntN(100))}
			case 1:
				e.Type, e.Attrs = "signup", map[string]any{"dob": at.Add(-20 * 365 * 24 * time.Hour)}
			case 2:
				e.Type, e.Attrs = "upgrade", map[string]any{"tier": "gold", "vip": rnd.IntN(2) == 0}
			default:
				e.Type = "ticket_opened"
			}
			if rnd.IntN(3) == 0 {
				e.Journeys = []state.JourneyMove{{Journey: fmt.Sprintf("j%d", rnd.IntN(4)), Step: rnd.IntN(3)}}
			}
			must(t, s.ApplyEvent(e))
		default:
			must(t, s.SetJourney(state.JourneyUpdate{Customer: cust, Journey: fmt.Sprintf("j%d", rnd.IntN(5)), Step: rnd.IntN(4),
				Status: state.JourneyStatus(1 + rnd.IntN(3)), At: at}))
		}
	}
}

// TestEachRestoreRoundTrip restores every customer Each reads into a fresh
// store: the state is the same (history, cap-window counters, overlay,
// journeys, idempotency keys), again after a checkpoint and a restart, and
// restoring twice changes nothing.
func TestEachRestoreRoundTrip(t *testing.T) {
	tweak := func(c *state.Config) {
		c.MaxEventsPerCustomer, c.MaxKeysPerCustomer, c.MaxJourneysPerCustomer, c.MaxIDsPerCustomer = 5, 8, 3, 4
		c.MaxCustomers = -1
		c.Mappings.ResetOnSnapshot = []string{"orders_30d"}
	}
	src := openStore(t, t.TempDir(), tweak)
	fillRandom(t, src, rand.New(rand.NewPCG(1, 2)))
	for i := range 12 { // consent with trails and ids (the newest 4 ids kept)
		_, err := src.SetConsent(state.Consent{Customer: fmt.Sprintf("c%d", i%3), Channel: []string{"email", "sms"}[i%2], Purpose: "marketing",
			Granted: i%3 == 0, At: t0.Add(time.Duration(i) * time.Hour), Source: "s", ID: fmt.Sprintf("cs%d", i)})
		must(t, err)
	}
	must(t, src.Compact(t0.Add(20*24*time.Hour)))
	if st := src.Stats(); st.HistoryEvicted == 0 || st.KeysEvicted == 0 || st.IDsEvicted == 0 || st.JourneysEvicted == 0 {
		t.Fatalf("the test does not reach the bounds: %+v", st)
	}
	var all []state.CustomerDump
	must(t, src.Each(func(c *state.CustomerDump) error { all = append(all, *c); return nil }))
	if len(all) != 20 {
		t.Fatalf("Each read %d customers, want 20", len(all))
	}
	dir := t.TempDir()
	dst := openStore(t, dir, tweak)
	must(t, dst.Compact(t0.Add(20*24*time.Hour)))
	must(t, dst.Restore(all...))
	want := dumpState(src)
	if got := dumpState(dst); got != want {
		t.Fatalf("restored state differs:\n got %s\nwant %s", got, want)
	}
	must(t, dst.Restore(all...))
	if got := dumpState(dst); got != want {
		t.Fatalf("restoring twice changed the state:\n got %s\nwant %s", got, want)
	}
	// Writes after the restore land on the restored state.
	must(t, src.RecordContact(state.Contact{Customer: "c1", Action: "a1", Outcome: state.Click, At: t0.Add(50 * 24 * time.Hour)}))
	must(t, dst.RecordContact(state.Contact{Customer: "c1", Action: "a1", Outcome: state.Click, At: t0.Add(50 * 24 * time.Hour)}))
	want = dumpState(src)
	must(t, dst.Checkpoint())
	dst.Close()
	again := openStore(t, dir, tweak)
	if got := dumpState(again); got != want {
		t.Fatalf("restored state after a restart differs:\n got %s\nwant %s", got, want)
	}
}

// TestRestoreRebuildsCounters: a customer given without counters (a
// hand-written import) gets the counters recording its contacts would give.
func TestRestoreRebuildsCounters(t *testing.T) {
	src := openStore(t, t.TempDir(), nil)
	dst := openStore(t, t.TempDir(), nil)
	for i := range 30 {
		must(t, src.RecordContact(state.Contact{Customer: "c", Action: fmt.Sprintf("a%d", i%3), Channel: "web", Outcome: state.Impression,
			At: t0.Add(time.Duration(i*7) * time.Hour)}))
	}
	must(t, src.Each(func(c *state.CustomerDump) error {
		c.Counters = nil
		return dst.Restore(*c)
	}))
	if got, want := dumpState(dst), dumpState(src); got != want {
		t.Fatalf("rebuilt state differs:\n got %s\nwant %s", got, want)
	}
}

// TestRestoreValidation: an invalid customer is refused as ErrInvalid and
// nothing of the call is restored.
func TestRestoreValidation(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	ok := state.CustomerDump{ID: "ok", Contacts: []state.Contact{{Action: "a", Outcome: state.Click, At: t0}}}
	for _, tc := range []struct {
		name string
		c    state.CustomerDump
	}{
		{"no id", state.CustomerDump{}},
		{"long id", state.CustomerDump{ID: string(make([]byte, 300))}},
		{"contact without action", state.CustomerDump{ID: "x", Contacts: []state.Contact{{At: t0}}}},
		{"contact time", state.CustomerDump{ID: "x", Contacts: []state.Contact{{Action: "a", At: time.Unix(0, 0)}}}},
		{"contact value", state.CustomerDump{ID: "x", Contacts: []state.Contact{{Action: "a", At: t0, Value: math.NaN()}}}},
		{"field type", state.CustomerDump{ID: "x", Fields: []state.FieldValue{{Field: "tier", Type: 9, At: t0}}}},
		{"bool value", state.CustomerDump{ID: "x", Fields: []state.FieldValue{{Field: "vip", Type: state.TypeBool, Num: 2, At: t0}}}},
		{"field twice", state.CustomerDump{ID: "x", Fields: []state.FieldValue{{Field: "vip", Type: state.TypeBool, At: t0}, {Field: "vip", Type: state.TypeBool, At: t0}}}},
		{"journey status", state.CustomerDump{ID: "x", Journeys: []state.JourneyState{{Journey: "j", EnteredAt: t0, StepAt: t0}}}},
		{"journey twice", state.CustomerDump{ID: "x", Journeys: []state.JourneyState{{Journey: "j", Status: state.JourneyActive, EnteredAt: t0, StepAt: t0},
			{Journey: "j", Status: state.JourneyExited, EnteredAt: t0, StepAt: t0}}}},
		{"empty id key", state.CustomerDump{ID: "x", IDs: []state.RememberedID{{}}}},
		{"counter recent", state.CustomerDump{ID: "x", Counters: []state.Counter{{Key: "a", Seen: 3, Recent: []int64{1}}}}},
		{"counter order", state.CustomerDump{ID: "x", Counters: []state.Counter{{Key: "a", Seen: 2, Recent: []int64{1, 2}}}}},
		{"counter kind", state.CustomerDump{ID: "x", Counters: []state.Counter{{Key: "a", Kind: 7}}}},
		{"counter days", state.CustomerDump{ID: "x", Counters: []state.Counter{{Key: "a", Days: make([]uint16, 500)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Restore(ok, tc.c)
			if !errors.Is(err, state.ErrInvalid) {
				t.Fatalf("Restore = %v, want ErrInvalid", err)
			}
			if err := s.Restore(tc.c); !errors.Is(err, state.ErrInvalid) {
				t.Fatalf("Restore alone = %v, want ErrInvalid", err)
			}
			var v state.View
			if s.View([]byte("ok"), &v) {
				t.Fatal("the valid customer of the call was restored")
			}
		})
	}
}
