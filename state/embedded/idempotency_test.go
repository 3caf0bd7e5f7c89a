package embedded

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nba/state"
)

// TestIdempotencyKeys checks that a write retried with the same key is
// applied once: live, after a restart that replays the log, and after a
// restart from a checkpoint.
func TestIdempotencyKeys(t *testing.T) {
	purchase := func(id string, at time.Time) state.Event {
		return state.Event{Customer: "c", Type: "purchase", At: at, Attrs: map[string]any{"amount": 10}, ID: id}
	}
	impression := func(id string, at time.Time) state.Contact {
		return state.Contact{Customer: "c", Action: "a", Group: "g", Channel: "web", Outcome: state.Impression, At: at, ID: id}
	}
	type want struct{ orders, impressions, dups int }
	for _, tc := range []struct {
		name  string
		tweak func(*state.Config)
		write func(t *testing.T, s *Store)
		// retry is written after the restart, when there is one.
		retry func(t *testing.T, s *Store)
		want  want
	}{
		{
			name: "event retried",
			write: func(t *testing.T, s *Store) {
				must(t, s.ApplyEvent(purchase("e1", t0)))
				must(t, s.ApplyEvent(purchase("e1", t0)))
			},
			retry: func(t *testing.T, s *Store) { must(t, s.ApplyEvent(purchase("e1", t0))) },
			want:  want{orders: 1, dups: 2},
		},
		{
			name: "distinct events",
			write: func(t *testing.T, s *Store) {
				must(t, s.ApplyEvent(purchase("e1", t0), purchase("e2", t0), purchase("", t0), purchase("", t0)))
			},
			retry: func(t *testing.T, s *Store) { must(t, s.ApplyEvent(purchase("e2", t0))) },
			want:  want{orders: 4, dups: 1},
		},
		{
			name:  "repeated within one call",
			write: func(t *testing.T, s *Store) { must(t, s.ApplyEvent(purchase("e1", t0), purchase("e1", t0))) },
			retry: func(t *testing.T, s *Store) {},
			want:  want{orders: 1, dups: 1},
		},
		{
			name: "contact retried",
			write: func(t *testing.T, s *Store) {
				must(t, s.RecordContact(impression("f1", t0)))
				dup, err := s.RecordContactOnce(impression("f1", t0))
				must(t, err)
				if !dup {
					t.Fatal("RecordContactOnce: a retry is not reported as a duplicate")
				}
			},
			retry: func(t *testing.T, s *Store) { must(t, s.RecordContact(impression("f1", t0), impression("f2", t0))) },
			want:  want{impressions: 2, dups: 2},
		},
		{
			name: "contact and event ids are separate",
			write: func(t *testing.T, s *Store) {
				must(t, s.ApplyEvent(purchase("x", t0)))
				must(t, s.RecordContact(impression("x", t0)))
			},
			retry: func(t *testing.T, s *Store) {
				must(t, s.ApplyEvent(purchase("x", t0)))
				must(t, s.RecordContact(impression("x", t0)))
			},
			want: want{orders: 1, impressions: 1, dups: 2},
		},
		{
			name: "ids are per customer",
			write: func(t *testing.T, s *Store) {
				must(t, s.ApplyEvent(purchase("e1", t0)))
				other := purchase("e1", t0)
				other.Customer = "d"
				must(t, s.ApplyEvent(other))
			},
			retry: func(t *testing.T, s *Store) {},
			want:  want{orders: 1},
		},
		{
			name:  "oldest ids are forgotten",
			tweak: func(c *state.Config) { c.MaxIDsPerCustomer = 2 },
			write: func(t *testing.T, s *Store) {
				for _, id := range []string{"e1", "e2", "e3"} {
					must(t, s.ApplyEvent(purchase(id, t0)))
				}
				must(t, s.ApplyEvent(purchase("e2", t0))) // still remembered
				if st := s.Stats(); st.IDsEvicted != 1 {
					t.Fatalf("ids evicted %d, want 1", st.IDsEvicted)
				}
			},
			// e1 fell out of the window: applied again, by design.
			retry: func(t *testing.T, s *Store) { must(t, s.ApplyEvent(purchase("e1", t0))) },
			want:  want{orders: 4, dups: 1},
		},
	} {
		check := func(t *testing.T, s *Store, w want, dups int) {
			t.Helper()
			var v state.View
			if !s.View([]byte("c"), &v) {
				t.Fatal("customer not found")
			}
			if n, _ := v.Number(slot(t, s, "orders_30d")); int(n) != w.orders {
				t.Errorf("orders_30d = %v, want %d", n, w.orders)
			}
			if n := v.Count(state.KindAction, "a", state.Impression, time.Hour, t0.Add(time.Minute)); n != w.impressions {
				t.Errorf("impressions counted toward caps = %d, want %d", n, w.impressions)
			}
			if st := s.Stats(); int(st.Duplicates) != dups {
				t.Errorf("duplicates = %d, want %d", st.Duplicates, dups)
			}
		}
		for _, restart := range []string{"live", "replay", "checkpoint"} {
			t.Run(tc.name+"/"+restart, func(t *testing.T) {
				dir := t.TempDir()
				s := openStore(t, dir, tc.tweak)
				tc.write(t, s)
				before := dump(s)
				dupsBefore := int(s.Stats().Duplicates)
				if restart == "live" {
					tc.retry(t, s)
					check(t, s, tc.want, tc.want.dups)
					return
				}
				if restart == "checkpoint" {
					must(t, s.Checkpoint())
				}
				must(t, s.Close())
				s = openStore(t, dir, tc.tweak)
				if after := dump(s); after != before {
					t.Fatalf("state differs after a restart:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				tc.retry(t, s)
				check(t, s, tc.want, tc.want.dups-dupsBefore)
			})
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestEventWithJourneysIsOneRecord checks that an event's overlay changes
// and journey moves are logged as one record and applied together, and that
// its retry moves no journey again.
func TestEventWithJourneysIsOneRecord(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	must(t, s.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "browse", Step: 2, At: t0}))
	appends := s.Stats().WAL.Appends
	ev := state.Event{Customer: "c", Type: "purchase", At: t0.Add(time.Hour), Attrs: map[string]any{"amount": 5}, ID: "order-1",
		Journeys: []state.JourneyMove{{Journey: "browse", Step: 2, Status: state.JourneyExited}, {Journey: "onboarding"}}}
	must(t, s.ApplyEvent(ev))
	if n := s.Stats().WAL.Appends - appends; n != 1 {
		t.Fatalf("the event took %d log records, want 1", n)
	}
	check := func(s *Store) {
		t.Helper()
		var v state.View
		if !s.View([]byte("c"), &v) {
			t.Fatal("customer not found")
		}
		if n, _ := v.Number(slot(t, s, "orders_30d")); n != 1 {
			t.Errorf("orders_30d = %v, want 1", n)
		}
		got := map[string]string{}
		for i := range v.Journeys() {
			j := v.JourneyAt(i)
			got[j.Journey] = fmt.Sprintf("%d/%v@%s", j.Step, j.Status, j.StepAt.Format(time.TimeOnly))
		}
		want := map[string]string{"browse": "2/exited@12:00:00", "onboarding": "0/active@13:00:00"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("journeys %v, want %v", got, want)
		}
	}
	check(s)
	// A retry, even with other moves (the engine sees the journeys as they
	// now are), changes nothing.
	ev.Journeys = []state.JourneyMove{{Journey: "onboarding", Step: 0, Status: state.JourneyExited}}
	dup, err := s.ApplyEventOnce(ev)
	if err != nil || !dup {
		t.Fatalf("retry: dup %v, error %v", dup, err)
	}
	check(s)
	must(t, s.Close())
	check(openStore(t, dir, nil))

	// An unmapped event type with a move is logged; one with neither a
	// change nor a move is not, and leaves no state.
	s = openStore(t, t.TempDir(), nil)
	must(t, s.ApplyEvent(state.Event{Customer: "d", Type: "page_view", At: t0, ID: "p1"}))
	var v state.View
	if s.View([]byte("d"), &v) {
		t.Fatal("an event that changes nothing left state")
	}
	must(t, s.ApplyEvent(state.Event{Customer: "d", Type: "page_view", At: t0, ID: "p2", Journeys: []state.JourneyMove{{Journey: "browse"}}}))
	if !s.View([]byte("d"), &v) || v.Journeys() != 1 {
		t.Fatal("an unmapped event's journey move was not applied")
	}
}

func TestEventValidation(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *state.Config) { c.MaxStringBytes = 8 })
	f := func(e state.Event, wantErr string) {
		t.Helper()
		e.Customer, e.Type, e.At = "c", "purchase", t0
		err := s.ApplyEvent(e)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("event %+v: error %v, want %q", e, err, wantErr)
		}
	}
	f(state.Event{ID: "123456789"}, "id of 9 bytes exceeds the limit of 8")
	f(state.Event{Journeys: []state.JourneyMove{{}}}, "journey move 0: journey is empty")
	f(state.Event{Journeys: []state.JourneyMove{{Journey: "j", Step: -1}}}, "step -1 is out of range")
	f(state.Event{Journeys: []state.JourneyMove{{Journey: "j", Status: 9}}}, "unknown journey status 9")
	f(state.Event{Journeys: make([]state.JourneyMove, 4096+1)}, "4097 journey moves exceed the limit of 4096") // the decoders' limit
	err := s.RecordContact(state.Contact{Customer: "c", Action: "a", At: t0, ID: "123456789"})
	if err == nil || !strings.Contains(err.Error(), "id of 9 bytes") {
		t.Fatalf("contact with a long id: error %v", err)
	}
	if st := s.Stats(); st.Events != 0 || st.Contacts != 0 {
		t.Fatalf("refused writes were counted: %+v", st)
	}
}

// TestReadsVersion1Log opens a state directory written before idempotency
// keys (record types 1 and 2, checkpoint version 1) and checks that it
// loads as it was, and that new writes and checkpoints work on it.
func TestReadsVersion1Log(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"ckpt-0000000000000002.bin", "wal-0000000000000002.seg"} {
		b, err := os.ReadFile(filepath.Join("testdata/wal-v1", name))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	s := openStore(t, dir, nil)
	// As dumped by the store that wrote it.
	for _, want := range []string{
		"lsn=7 asof=0\n",
		"c1 lsn=6 last_order_value=5/0/\"\"@1773147600000000000 last_purchase_at=0/1773147600000000000/\"\"@1773147600000000000 orders_30d=2/0/\"\"@1773147600000000000 spend_30d=15/0/\"\"@1773147600000000000 aggs=",
		"h=a1/g/web/click/2/1773147600000000000 h=a1/g/web/impression/0/1773144000000000000 j=welcome/0/active/1773144000000000000/1773144000000000000\n",
		"c2 lsn=7 tier=0/0/\"bronze\"@1773147600000000000 vip=0/0/\"\"@1773147600000000000 aggs=[] j=welcome/1/completed/1773151200000000000/1773151200000000000",
	} {
		if got := dump(s); !strings.Contains(got, want) {
			t.Fatalf("version 1 state loads as\n%s\nwant it to contain\n%s", got, want)
		}
	}
	if st := s.Stats(); st.Replayed != 4 || st.Customers != 2 {
		t.Fatalf("stats %+v, want 4 records replayed over 2 customers", st)
	}
	must(t, s.ApplyEvent(state.Event{Customer: "c1", Type: "purchase", At: t0.Add(3 * time.Hour), ID: "e1"}))
	must(t, s.ApplyEvent(state.Event{Customer: "c1", Type: "purchase", At: t0.Add(3 * time.Hour), ID: "e1"}))
	must(t, s.Checkpoint())
	before := dump(s)
	must(t, s.Close())
	if after := dump(openStore(t, dir, nil)); after != before {
		t.Fatalf("state differs after a checkpoint:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
