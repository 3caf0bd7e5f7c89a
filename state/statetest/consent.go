package statetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"nba/state"
)

func consent(customer, channel, purpose string, granted bool, at time.Time, source, id string) state.Consent {
	return state.Consent{Customer: customer, Channel: channel, Purpose: purpose, Granted: granted, At: at, Source: source, ID: id}
}

// consentBehaviours are the consent and erasure rows of the table.
func consentBehaviours() []Behaviour {
	return []Behaviour{
		{Name: "consent changes ordered by time with an audit trail", Run: func(t *testing.T, b state.Backend) {
			type step struct {
				granted bool
				at      time.Duration // after t0
				source  string
				id      string
			}
			for _, c := range []struct {
				name    string
				steps   []step
				want    bool   // status in force
				source  string // of the change in force
				trail   int
				dups    int
				noPairs bool
			}{
				{name: "one withdrawal", steps: []step{{false, 0, "preference_center", "e1"}}, want: false, source: "preference_center", trail: 1},
				{name: "granted after denied", steps: []step{{false, 0, "a", ""}, {true, time.Hour, "b", ""}}, want: true, source: "b", trail: 2},
				{name: "an older change arriving late does not override", steps: []step{{false, 2 * time.Hour, "new", ""}, {true, time.Hour, "late", ""}}, want: false, source: "new", trail: 2},
				{name: "a retry with the same id is not applied", steps: []step{{false, 0, "a", "k"}, {false, 0, "a", "k"}}, want: false, source: "a", trail: 1, dups: 1},
				{name: "a tie in time goes to the later arrival", steps: []step{{false, 0, "a", ""}, {true, 0, "b", ""}}, want: true, source: "b", trail: 2},
				{name: "the trail is bounded", steps: func() []step {
					var s []step
					for i := range state.ConsentTrail + 3 {
						s = append(s, step{i%2 == 0, time.Duration(i) * time.Minute, "s", ""})
					}
					return s
				}(), want: (state.ConsentTrail+2)%2 == 0, source: "s", trail: state.ConsentTrail},
			} {
				t.Run(c.name, func(t *testing.T) {
					cust := "c-" + c.name
					dups := 0
					for _, s := range c.steps {
						n, err := b.SetConsent(consent(cust, "email", "marketing", s.granted, t0.Add(s.at), s.source, s.id))
						must(t, err)
						dups += n
					}
					if dups != c.dups {
						t.Errorf("duplicates %d, want %d", dups, c.dups)
					}
					v, ok := view(b, cust)
					if !ok {
						t.Fatal("customer with consent changes not found")
					}
					got, ok := v.Consent("email", "marketing")
					if !ok || got.Granted != c.want || got.Source != c.source {
						t.Errorf("email marketing = %+v %v, want granted %v from %q", got, ok, c.want, c.source)
					}
					if _, ok := v.Consent("sms", "marketing"); ok {
						t.Error("sms marketing has a status without a change")
					}
					if v.Consents() != 1 {
						t.Fatalf("%d pairs, want 1", v.Consents())
					}
					p := v.ConsentAt(0)
					if len(p.Trail) != c.trail {
						t.Errorf("trail %d changes, want %d", len(p.Trail), c.trail)
					}
					for i := 1; i < len(p.Trail); i++ {
						if p.Trail[i].At.Before(p.Trail[i-1].At) {
							t.Errorf("trail out of time order: %+v", p.Trail)
						}
					}
					if p.Current() != got {
						t.Errorf("Current %+v, Consent %+v", p.Current(), got)
					}
				})
			}
		}},
		{Name: "consent from event mappings", Tweak: func(c *state.Config) {
			c.Mappings.Events["unsubscribe"] = []state.Op{{Consent: "email.marketing", Status: "denied"}}
			c.Mappings.Events["preferences"] = []state.Op{{Consent: "sms.marketing", From: "sms"}, {Set: "tier", From: "tier"}}
		}, Run: func(t *testing.T, b state.Backend) {
			for _, c := range []struct {
				name  string
				e     state.Event
				want  []state.Consent
				fails bool
			}{
				{"constant status", state.Event{Customer: "c", Type: "unsubscribe", At: t0, ID: "u1"},
					[]state.Consent{{Customer: "c", Channel: "email", Purpose: "marketing", At: t0, Source: "event:unsubscribe", ID: "u1/consent/0"}}, false},
				{"from a string attribute", state.Event{Customer: "c", Type: "preferences", At: t0, Attrs: map[string]any{"sms": "granted"}},
					[]state.Consent{{Customer: "c", Channel: "sms", Purpose: "marketing", Granted: true, At: t0, Source: "event:preferences"}}, false},
				{"from a bool attribute", state.Event{Customer: "c", Type: "preferences", At: t0, Attrs: map[string]any{"sms": false}},
					[]state.Consent{{Customer: "c", Channel: "sms", Purpose: "marketing", At: t0, Source: "event:preferences"}}, false},
				{"attribute missing", state.Event{Customer: "c", Type: "preferences", At: t0}, []state.Consent{}, false},
				{"attribute not a status", state.Event{Customer: "c", Type: "preferences", At: t0, Attrs: map[string]any{"sms": "yes"}}, nil, true},
				{"no consent mapping", purchase("c", "", t0, 1), nil, false},
			} {
				got, err := b.EventConsents(c.e)
				if (err != nil) != c.fails || (c.fails && state.KindOf(err) != state.ErrInvalid) {
					t.Errorf("%s: err %v", c.name, err)
					continue
				}
				if len(got) != len(c.want) {
					t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
					continue
				}
				for i := range got {
					if got[i] != c.want[i] {
						t.Errorf("%s: %+v, want %+v", c.name, got[i], c.want[i])
					}
				}
			}
			cs, _ := b.EventConsents(state.Event{Customer: "c", Type: "unsubscribe", At: t0, ID: "u1"})
			for range 2 { // a retried event sets its consent once
				_, err := b.SetConsent(cs...)
				must(t, err)
			}
			v, _ := view(b, "c")
			if got, ok := v.Consent("email", "marketing"); !ok || got.Granted || got.Source != "event:unsubscribe" || len(v.ConsentAt(0).Trail) != 1 {
				t.Errorf("after the event: %+v %v", got, ok)
			}
		}},
		{Name: "concurrent consent changes of one customer", Run: func(t *testing.T, b state.Backend) {
			// 8 writers × 10 changes at distinct times, in any order: the
			// newest time is in force, and the trail keeps the newest
			// ConsentTrail in time order.
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := range 10 {
						at := t0.Add(time.Duration(i*8+w) * time.Second)
						if _, err := b.SetConsent(consent("c", "email", "marketing", (i*8+w)%2 == 0, at, "w", "")); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			v, _ := view(b, "c")
			p := v.ConsentAt(0)
			last := t0.Add(79 * time.Second)
			if cur := p.Current(); !cur.At.Equal(last) || cur.Granted {
				t.Errorf("in force %+v, want the change at %v (denied)", cur, last)
			}
			if len(p.Trail) != state.ConsentTrail {
				t.Errorf("trail %d, want %d", len(p.Trail), state.ConsentTrail)
			}
			for i := 1; i < len(p.Trail); i++ {
				if p.Trail[i].At.Before(p.Trail[i-1].At) {
					t.Errorf("trail out of time order: %+v", p.Trail)
				}
			}
		}},
		{Name: "consent refused when invalid", Run: func(t *testing.T, b state.Backend) {
			for _, c := range []state.Consent{
				consent("", "email", "marketing", false, t0, "", ""),
				consent("c", "", "marketing", false, t0, "", ""),
				consent("c", "email", "", false, t0, "", ""),
				consent("c", "email", "marketing", false, time.Time{}, "", ""),
			} {
				if _, err := b.SetConsent(c); state.KindOf(err) != state.ErrInvalid {
					t.Errorf("%+v: err %v, want ErrInvalid", c, err)
				}
			}
			if _, ok := view(b, "c"); ok {
				t.Error("a refused consent change was applied")
			}
		}},
		{Name: "erasure removes every kind of state and keeps a tombstone", Run: func(t *testing.T, b state.Backend) {
			must(t, b.RecordContact(impression("c", "k1", t0)))
			must(t, b.ApplyEvent(purchase("c", "k2", t0, 10)))
			must(t, b.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "cart", Step: 1, At: t0}))
			_, err := b.SetConsent(consent("c", "email", "marketing", false, t0, "api", "k3"))
			must(t, err)
			must(t, b.RecordContact(impression("other", "", t0)))
			// Tombstones are kept by the wall clock (a store drops
			// expired ones in the background).
			now := time.Now()
			until := now.Add(30 * 24 * time.Hour)
			e, err := b.Erase("c", state.Tombstone{Pseudonym: "p-c", Until: until})
			must(t, err)
			want := state.Erased{Found: true, Contacts: 1, Counters: 3, Fields: 4, Journeys: 1, Consents: 1, IDs: 3}
			if e != want {
				t.Errorf("erased %+v, want %+v", e, want)
			}
			if v, ok := view(b, "c"); ok || v.Found() {
				t.Error("erased customer still has state")
			}
			if _, ok := view(b, "other"); !ok {
				t.Error("erasure removed another customer")
			}
			for _, c := range []struct {
				p    string
				now  time.Time
				want bool
			}{
				{"p-c", now, true},
				{"p-c", until, false},
				{"p-other", now, false},
			} {
				if got, err := b.Tombstoned(c.p, c.now); err != nil || got != c.want {
					t.Errorf("Tombstoned(%s, %v) = %v %v, want %v", c.p, c.now, got, err, c.want)
				}
			}
			ts, err := b.Tombstones(now)
			must(t, err)
			if len(ts) != 1 || ts[0].Pseudonym != "p-c" || !ts[0].Until.Equal(until) {
				t.Errorf("tombstones %+v", ts)
			}
			if ts, _ := b.Tombstones(until); len(ts) != 0 {
				t.Errorf("expired tombstones listed: %+v", ts)
			}
			e, err = b.Erase("nobody", state.Tombstone{})
			if err != nil || e.Found {
				t.Errorf("erasing a customer without state: %+v %v", e, err)
			}
		}},
		{Name: "regression: a write decided before an erasure does not bring the customer back", Run: func(t *testing.T, b state.Backend) {
			// The caller refuses writes of a tombstoned customer, but a
			// write that passed that check just before the erasure
			// reaches the store after it: the store refuses it.
			must(t, b.ApplyEvent(purchase("c", "k1", t0, 10)))
			must(t, b.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "cart", Step: 1, At: t0}))
			must(t, b.RecordContact(impression("d", "k1", t0)))
			if gone, err := b.Tombstoned("p-c", time.Now()); err != nil || gone {
				t.Fatalf("Tombstoned before the erasure: %v %v", gone, err)
			}
			_, err := b.Erase("c", state.Tombstone{Pseudonym: "p-c", Until: time.Now().Add(time.Hour)})
			must(t, err)
			_, err = b.Erase("d", state.Tombstone{}) // without an erasure key: no tombstone, the same stub
			must(t, err)
			for _, c := range []string{"c", "d"} {
				_, errC := b.SetConsent(consent(c, "email", "marketing", true, t0, "api", "k5"))
				for name, err := range map[string]error{
					"event":   b.ApplyEvent(purchase(c, "k2", t0.Add(time.Minute), 20)),
					"contact": b.RecordContact(impression(c, "k3", t0.Add(time.Minute))),
					"journey": b.SetJourney(state.JourneyUpdate{Customer: c, Journey: "cart", Step: 2, At: t0.Add(time.Minute)}),
					"consent": errC,
				} {
					if state.KindOf(err) != state.ErrErased {
						t.Errorf("%s of %s after its erasure: %v, want ErrErased", name, c, err)
					}
				}
				if _, ok := view(b, c); ok {
					t.Errorf("the erased customer %s has state again", c)
				}
			}
			must(t, b.ApplyEvent(purchase("other", "k2", t0, 20))) // others are written
		}},
		{Name: "regression: concurrent writes and an erasure leave nothing of the customer", Run: func(t *testing.T, b state.Backend) {
			const writers, each = 8, 30
			must(t, b.ApplyEvent(purchase("c", "k0", t0, 10)))
			var wg sync.WaitGroup
			erase := make(chan struct{})
			var mu sync.Mutex
			var failed []error
			for w := range writers {
				wg.Go(func() {
					for k := range each {
						if k == each/3 && w == 0 {
							close(erase)
						}
						var err error
						if k%2 == 0 {
							err = b.ApplyEvent(purchase("c", fmt.Sprintf("e-%d-%d", w, k), t0.Add(time.Duration(k)*time.Second), float64(k)))
						} else {
							err = b.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "cart", Step: k, At: t0.Add(time.Duration(k) * time.Second)})
						}
						// ErrConflict: a shared store's concurrent
						// changes won; nothing was applied.
						if k := state.KindOf(err); err != nil && k != state.ErrErased && k != state.ErrConflict {
							mu.Lock()
							failed = append(failed, err)
							mu.Unlock()
						}
					}
				})
			}
			<-erase
			_, err := b.Erase("c", state.Tombstone{Pseudonym: "p-c", Until: time.Now().Add(time.Hour)})
			must(t, err)
			wg.Wait()
			for _, err := range failed {
				t.Errorf("write: %v", err)
			}
			// A shared store's client-side cache may answer the value
			// before the erasure until its invalidation arrives (ms): a
			// value written back stays.
			for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
				if v, ok := view(b, "c"); !ok && !v.Found() {
					break
				}
				if time.Now().After(deadline) {
					t.Error("the erased customer has state again after the writes in flight finished")
					break
				}
			}
			if p, ok := b.(state.Porter); ok {
				for _, d := range dumps(t, p) {
					if d.ID == "c" {
						t.Errorf("the erased customer is exported: %+v", d)
					}
				}
			}
		}},
	}
}
