// Package statetest is the behaviour table every customer state backend
// (state.Backend) must pass: contacts and their window counts, the profile
// overlay through mappings, idempotency keys, journeys (conditional moves,
// moves computed from the state at write time), error kinds, writes
// racing on one customer, and moving state out and back (state.Porter). It is written against the contract only, so a
// new backend runs it unchanged:
//
//	func TestContract(t *testing.T) {
//		statetest.Run(t, func(t *testing.T, cfg state.Config) state.Backend { ... })
//	}
//
// Crash and replay tests stay with the backend that has a log.
package statetest

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"nba/state"
)

// NewBackend opens a fresh, empty backend for one behaviour with cfg's
// mappings, snapshot fields and bounds (a backend sets what it needs
// besides, e.g. a log directory in t.TempDir()), and closes it when t ends.
type NewBackend func(t *testing.T, cfg state.Config) state.Backend

// Mappings are the profile mappings the behaviours use.
const Mappings = `
fields:
  last_order_value: number
  tier: category
  vip: bool
events:
  purchase:
    - {set: last_order_value, from: amount}
    - {incr: orders_30d}
    - {incr: spend_30d, from: amount}
    - {stamp: last_purchase_at}
  signup:
    - {set: tier, value: bronze}
    - {set: vip, value: false}
  upgrade:
    - {set: tier, from: tier}
    - {set: vip, from: vip}
`

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// Behaviour is one row of the table.
type Behaviour struct {
	Name  string
	Tweak func(*state.Config) // bounds or snapshot fields; nil for the defaults
	Run   func(t *testing.T, b state.Backend)
}

// Run runs every behaviour against fresh backends from newBackend.
func Run(t *testing.T, newBackend NewBackend) {
	for _, bh := range append(Behaviours(), ReserveBehaviours()...) {
		t.Run(bh.Name, func(t *testing.T) {
			var cfg state.Config
			if err := yaml.Unmarshal([]byte(Mappings), &cfg.Mappings); err != nil {
				t.Fatal(err)
			}
			if bh.Tweak != nil {
				bh.Tweak(&cfg)
			}
			bh.Run(t, newBackend(t, cfg))
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func view(b state.Backend, customer string) (state.View, bool) {
	var v state.View
	ok := b.View([]byte(customer), &v)
	return v, ok
}

func slot(t *testing.T, b state.Backend, name string) state.Slot {
	t.Helper()
	sl, _, ok := b.Slot(name)
	if !ok {
		t.Fatalf("no field %q", name)
	}
	return sl
}

func number(t *testing.T, b state.Backend, customer, field string) (float64, bool) {
	t.Helper()
	v, _ := view(b, customer)
	return v.Number(slot(t, b, field))
}

func impression(customer, id string, at time.Time) state.Contact {
	return state.Contact{Customer: customer, Action: "a", Group: "g", Channel: "web", Outcome: state.Impression, At: at, ID: id}
}

func purchase(customer, id string, at time.Time, amount float64) state.Event {
	return state.Event{Customer: customer, Type: "purchase", At: at, Attrs: map[string]any{"amount": amount}, ID: id}
}

// enterOnce is an Event.JourneysFrom that enters journey j unless the
// customer has been in it.
func enterOnce(j string) func([]state.JourneyState) []state.JourneyMove {
	return func(cur []state.JourneyState) []state.JourneyMove {
		for _, x := range cur {
			if x.Journey == j {
				return nil
			}
		}
		return []state.JourneyMove{{Journey: j}}
	}
}

// Behaviours returns the table.
func Behaviours() []Behaviour {
	return append([]Behaviour{
		{Name: "unknown customer has no state", Run: func(t *testing.T, b state.Backend) {
			if v, ok := view(b, "nobody"); ok || v.Found() || v.Count(state.KindAction, "a", state.Impression, time.Hour, t0) != 0 {
				t.Error("a customer without writes has state")
			}
		}},
		{Name: "an event that changes nothing is neither stored nor remembered", Run: func(t *testing.T, b state.Backend) {
			for i := range 2 {
				dup, err := b.ApplyEventOnce(state.Event{Customer: "u", Type: "unmapped", ID: "e1", At: t0})
				if err != nil || dup {
					t.Fatalf("attempt %d: dup %v, %v; want applied as nothing, its id not remembered", i, dup, err)
				}
			}
			if _, ok := view(b, "u"); ok {
				t.Error("an event that changes nothing left the customer with state")
			}
		}},
		{Name: "contacts counted by action group and channel in their window", Run: func(t *testing.T, b state.Backend) {
			for i := range 3 {
				must(t, b.RecordContact(impression("c", "", t0.Add(time.Duration(i)*time.Hour))))
			}
			must(t, b.RecordContact(state.Contact{Customer: "c", Action: "a", Channel: "web", Outcome: state.Click, At: t0.Add(2 * time.Hour)}))
			v, ok := view(b, "c")
			if !ok {
				t.Fatal("customer with contacts not found")
			}
			now := t0.Add(2*time.Hour + time.Minute)
			for _, c := range []struct {
				k    state.Kind
				key  string
				o    state.Outcome
				w    time.Duration
				want int
			}{
				{state.KindAction, "a", state.Impression, 24 * time.Hour, 3},
				{state.KindGroup, "g", state.Impression, 24 * time.Hour, 3},
				{state.KindChannel, "web", state.Impression, 24 * time.Hour, 3},
				{state.KindChannel, "web", state.Click, 24 * time.Hour, 1},
				{state.KindAction, "a", state.Impression, 90 * time.Minute, 2},
				{state.KindAction, "b", state.Impression, 24 * time.Hour, 0},
			} {
				if got := v.Count(c.k, c.key, c.o, c.w, now); got != c.want {
					t.Errorf("count %v %s %v in %v = %d, want %d", c.k, c.key, c.o, c.w, got, c.want)
				}
			}
			if n := v.HistoryLen(); n != 4 {
				t.Errorf("history holds %d contacts, want 4", n)
			}
			var seq []int64
			v.EachContact(state.KindAction, "a", func(at int64, o state.Outcome) { seq = append(seq, at) })
			if len(seq) != 4 || seq[0] != t0.Add(2*time.Hour).UnixNano() {
				t.Errorf("contacts of action a, latest first: %v", seq)
			}
		}},
		{Name: "history bounded, counts kept", Tweak: func(c *state.Config) { c.MaxEventsPerCustomer = 3 }, Run: func(t *testing.T, b state.Backend) {
			for i := range 5 {
				must(t, b.RecordContact(impression("c", "", t0.Add(time.Duration(i)*time.Minute))))
			}
			v, _ := view(b, "c")
			if v.HistoryLen() != 3 || v.Count(state.KindAction, "a", state.Impression, time.Hour, t0.Add(30*time.Minute)) != 5 {
				t.Errorf("history %d (want 3), count %d (want 5)", v.HistoryLen(), v.Count(state.KindAction, "a", state.Impression, time.Hour, t0.Add(30*time.Minute)))
			}
			if st := b.Stats(); st.HistoryEvicted != 2 {
				t.Errorf("HistoryEvicted = %d, want 2", st.HistoryEvicted)
			}
		}},
		{Name: "overlay through mappings", Run: func(t *testing.T, b state.Backend) {
			must(t, b.ApplyEvent(state.Event{Customer: "c", Type: "signup", At: t0}))
			must(t, b.ApplyEvent(purchase("c", "", t0.Add(time.Hour), 30), purchase("c", "", t0.Add(2*time.Hour), 12.5)))
			must(t, b.ApplyEvent(state.Event{Customer: "c", Type: "upgrade", At: t0.Add(3 * time.Hour), Attrs: map[string]any{"tier": "gold", "vip": true}}))
			must(t, b.ApplyEvent(state.Event{Customer: "c", Type: "purchase", At: t0.Add(4 * time.Hour)})) // no amount: incr and stamp only
			for field, want := range map[string]float64{"last_order_value": 12.5, "orders_30d": 3, "spend_30d": 42.5} {
				if got, ok := number(t, b, "c", field); !ok || got != want {
					t.Errorf("%s = %v %v, want %v", field, got, ok, want)
				}
			}
			v, _ := view(b, "c")
			if got, ok := v.Category(slot(t, b, "tier")); !ok || got != "gold" {
				t.Errorf("tier = %q", got)
			}
			if got, ok := v.Bool(slot(t, b, "vip")); !ok || !got {
				t.Errorf("vip = %v %v", got, ok)
			}
			if got, ok := v.Time(slot(t, b, "last_purchase_at")); !ok || !got.Equal(t0.Add(4*time.Hour)) {
				t.Errorf("last_purchase_at = %v", got)
			}
			if st := b.Stats(); st.MissingAttrs != 2 {
				t.Errorf("MissingAttrs = %d, want 2", st.MissingAttrs)
			}
		}},
		{Name: "snapshot hides the fields it carries", Tweak: func(c *state.Config) { c.SnapshotFields = []string{"orders_30d"} }, Run: func(t *testing.T, b state.Backend) {
			must(t, b.ApplyEvent(purchase("c", "", t0, 5)))
			must(t, b.Compact(t0.Add(time.Minute)))
			if _, ok := number(t, b, "c", "orders_30d"); ok {
				t.Error("a field the snapshot carries, stamped before its as-of, is visible")
			}
			if n, ok := number(t, b, "c", "spend_30d"); !ok || n != 5 {
				t.Errorf("a live-only field was reset by the snapshot: %v %v", n, ok)
			}
			must(t, b.ApplyEvent(purchase("c", "", t0.Add(time.Hour), 1)))
			if n, _ := number(t, b, "c", "orders_30d"); n != 1 {
				t.Errorf("orders_30d after the snapshot = %v, want 1", n)
			}
		}},
		{Name: "contact retried is recorded once", Run: func(t *testing.T, b state.Backend) {
			must(t, b.RecordContact(impression("c", "f1", t0)))
			dup, err := b.RecordContactOnce(impression("c", "f1", t0))
			must(t, err)
			must(t, b.RecordContact(impression("c", "f2", t0), impression("c", "f2", t0))) // repeated within one call
			v, _ := view(b, "c")
			if !dup || v.Count(state.KindAction, "a", state.Impression, time.Hour, t0) != 2 || !v.SeenContactID("f1") {
				t.Errorf("dup %v, count %d, want true and 2", dup, v.Count(state.KindAction, "a", state.Impression, time.Hour, t0))
			}
			if st := b.Stats(); st.Duplicates != 2 {
				t.Errorf("Duplicates = %d, want 2", st.Duplicates)
			}
		}},
		{Name: "event retried is applied once, ids per customer and per kind", Run: func(t *testing.T, b state.Backend) {
			must(t, b.ApplyEvent(purchase("c", "e1", t0, 10)))
			dup, err := b.ApplyEventOnce(purchase("c", "e1", t0, 10))
			must(t, err)
			must(t, b.ApplyEvent(purchase("d", "e1", t0, 10)))                        // another customer's key
			must(t, b.RecordContact(impression("c", "e1", t0)))                       // a contact key of the same text
			must(t, b.ApplyEvent(purchase("c", "", t0, 1), purchase("c", "", t0, 1))) // no key: both apply
			if n, _ := number(t, b, "c", "orders_30d"); !dup || n != 3 {
				t.Errorf("dup %v, orders %v; want true, 3", dup, n)
			}
			if n, _ := number(t, b, "d", "orders_30d"); n != 1 {
				t.Errorf("customer d: orders %v, want 1", n)
			}
			if v, _ := view(b, "c"); v.HistoryLen() != 1 {
				t.Error("a contact key was taken for an event key")
			}
		}},
		{Name: "remembered ids bounded", Tweak: func(c *state.Config) { c.MaxIDsPerCustomer = 2 }, Run: func(t *testing.T, b state.Backend) {
			for _, id := range []string{"k1", "k2", "k3"} {
				must(t, b.RecordContact(impression("c", id, t0)))
			}
			dup1, err := b.RecordContactOnce(impression("c", "k1", t0))
			must(t, err)
			dup3, err := b.RecordContactOnce(impression("c", "k3", t0))
			must(t, err)
			if dup1 || !dup3 {
				t.Errorf("oldest key remembered %v (want false), newest %v (want true)", dup1, dup3)
			}
		}},
		{Name: "journey moves", Run: func(t *testing.T, b state.Backend) {
			up := func(step int, st state.JourneyStatus, at time.Time) {
				t.Helper()
				must(t, b.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "onboarding", Step: step, Status: st, At: at}))
			}
			want := func(step int, st state.JourneyStatus, entered, stepAt time.Time) {
				t.Helper()
				v, _ := view(b, "c")
				j, ok := v.Journey("onboarding")
				if !ok || j.Step != step || j.Status != st || !j.EnteredAt.Equal(entered) || !j.StepAt.Equal(stepAt) {
					t.Fatalf("journey %+v, %v", j, ok)
				}
			}
			up(0, 0, t0)
			up(1, state.JourneyActive, t0.Add(time.Hour))
			up(1, state.JourneyActive, t0.Add(2*time.Hour)) // same step: step time kept
			want(1, state.JourneyActive, t0, t0.Add(time.Hour))
			up(2, state.JourneyCompleted, t0.Add(3*time.Hour))
			want(2, state.JourneyCompleted, t0, t0.Add(3*time.Hour))
			up(0, state.JourneyActive, t0.Add(5*time.Hour)) // re-entry
			want(0, state.JourneyActive, t0.Add(5*time.Hour), t0.Add(5*time.Hour))
		}},
		{Name: "event and its journey moves are one write", Run: func(t *testing.T, b state.Backend) {
			e := purchase("c", "e1", t0, 10)
			e.Journeys = []state.JourneyMove{{Journey: "post_purchase"}}
			must(t, b.ApplyEvent(e))
			must(t, b.ApplyEvent(e)) // a retry moves nothing either
			v, _ := view(b, "c")
			if j, ok := v.Journey("post_purchase"); !ok || j.Status != state.JourneyActive {
				t.Errorf("journey %+v %v", j, ok)
			}
			if n, _ := number(t, b, "c", "orders_30d"); n != 1 {
				t.Errorf("orders %v", n)
			}
		}},
		{Name: "conditional journey move", Run: func(t *testing.T, b state.Backend) {
			step := func(from, to int) state.JourneyUpdate {
				return state.JourneyUpdate{Customer: "c", Journey: "j", Step: to, At: t0.Add(time.Hour), Conditional: true, FromStep: from, FromStatus: state.JourneyActive}
			}
			must(t, b.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "j", At: t0, Conditional: true}))
			for _, c := range []struct {
				name  string
				us    []state.JourneyUpdate
				fails bool
				want  int
			}{
				{"enter again from outside", []state.JourneyUpdate{{Customer: "c", Journey: "j", At: t0, Conditional: true}}, true, 0},
				{"step 0 to 1", []state.JourneyUpdate{step(0, 1)}, false, 1},
				{"the same step decided on a second replica", []state.JourneyUpdate{step(0, 1)}, true, 1},
				{"one stale move in a call", []state.JourneyUpdate{step(1, 2), step(0, 1)}, true, 1},
				{"moves of one call see each other", []state.JourneyUpdate{step(1, 2), step(2, 3)}, false, 3},
			} {
				err := b.SetJourney(c.us...)
				if (err != nil) != c.fails || (err != nil && !errors.Is(err, state.ErrConflict)) {
					t.Fatalf("%s: err %v, want a conflict %v", c.name, err, c.fails)
				}
				v, _ := view(b, "c")
				if j, _ := v.Journey("j"); j.Step != c.want {
					t.Errorf("%s: at step %d, want %d", c.name, j.Step, c.want)
				}
			}
		}},
		{Name: "journey moves computed at write time", Run: func(t *testing.T, b state.Backend) {
			var wg sync.WaitGroup
			for i := range 16 {
				wg.Go(func() {
					e := state.Event{Customer: "c", Type: "cart_abandoned", At: t0.Add(time.Duration(i) * time.Second), JourneysFrom: enterOnce("cart")}
					if err := b.ApplyEvent(e); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if n := b.Stats().Journeys; n != 1 {
				t.Errorf("16 concurrent events entered the journey %d times, want 1", n)
			}
			must(t, b.ApplyEvent(
				state.Event{Customer: "d", Type: "cart_abandoned", At: t0, JourneysFrom: enterOnce("cart")},
				state.Event{Customer: "d", Type: "cart_abandoned", At: t0, JourneysFrom: enterOnce("cart")}))
			if n := b.Stats().Journeys; n != 2 {
				t.Errorf("two events of one call entered %d times, want 1", n-1)
			}
		}},
		{Name: "invalid writes refused whole", Run: func(t *testing.T, b state.Backend) {
			for _, c := range []struct {
				name  string
				write func() error
			}{
				{"contact without customer", func() error { return b.RecordContact(impression("c", "", t0), impression("", "", t0)) }},
				{"unknown outcome", func() error {
					return b.RecordContact(impression("c", "", t0), state.Contact{Customer: "c", Action: "a", Outcome: 99, At: t0})
				}},
				{"attribute of the wrong type", func() error {
					return b.ApplyEvent(purchase("c", "", t0, 1), state.Event{Customer: "c", Type: "purchase", At: t0, Attrs: map[string]any{"amount": "many"}})
				}},
				{"journey step out of range", func() error {
					return b.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "j", Step: -1, At: t0})
				}},
			} {
				if err := c.write(); !errors.Is(err, state.ErrInvalid) {
					t.Errorf("%s: err %v, want ErrInvalid", c.name, err)
				}
			}
			if _, ok := view(b, "c"); ok {
				t.Error("part of a refused write was applied")
			}
			if err := b.Err(); err != nil {
				t.Errorf("invalid writes made the backend unavailable: %v", err)
			}
		}},
		{Name: "concurrent writers of one customer", Run: func(t *testing.T, b state.Backend) {
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := range 10 {
						if err := b.RecordContact(impression("c", "", t0.Add(time.Duration(w*10+i)*time.Second))); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			v, _ := view(b, "c")
			if n := v.Count(state.KindAction, "a", state.Impression, time.Hour, t0.Add(10*time.Minute)); n != 80 {
				t.Errorf("count %d after 80 concurrent contacts", n)
			}
		}},
		{Name: "restoring what Each read (state.Porter)", Tweak: func(c *state.Config) { c.MaxEventsPerCustomer = 3 }, Run: func(t *testing.T, b state.Backend) {
			p, ok := b.(state.Porter)
			if !ok {
				t.Skipf("%T moves no state (not a state.Porter)", b)
			}
			for i := range 5 {
				must(t, b.RecordContact(impression("c1", fmt.Sprintf("f%d", i), t0.Add(time.Duration(i)*time.Hour))))
			}
			must(t, b.ApplyEvent(purchase("c1", "e1", t0, 30)))
			must(t, b.SetJourney(state.JourneyUpdate{Customer: "c2", Journey: "j", Step: 1, At: t0}))
			dups, err := p.RecordContacts([]state.Contact{impression("c3", "g1", t0), impression("c3", "g1", t0), impression("c1", "f0", t0)})
			must(t, err)
			if dups != 2 {
				t.Errorf("RecordContacts counted %d duplicates, want 2 (one within the call, one remembered)", dups)
			}
			before := dumps(t, p)
			if len(before) != 3 {
				t.Fatalf("Each read %d customers, want 3", len(before))
			}
			// Changed since: a restore puts the state read back.
			must(t, b.RecordContact(impression("c1", "f9", t0.Add(9*time.Hour))))
			must(t, b.SetJourney(state.JourneyUpdate{Customer: "c2", Journey: "j", Step: 2, At: t0.Add(time.Hour)}))
			must(t, p.Restore(before...))
			must(t, p.Checkpoint())
			if after := dumps(t, p); !reflect.DeepEqual(after, before) {
				t.Fatalf("after Restore, Each reads\n%+v\nwant\n%+v", after, before)
			}
			v, _ := view(b, "c1")
			// 5 impressions counted although the history keeps 3.
			if n := v.Count(state.KindAction, "a", state.Impression, 24*time.Hour, t0.Add(5*time.Hour)); n != 5 {
				t.Errorf("restored count %d, want 5", n)
			}
			if dup, err := b.RecordContactOnce(impression("c1", "f4", t0)); err != nil || !dup {
				t.Errorf("a remembered id after Restore: dup %v, %v; want a duplicate", dup, err)
			}
			if err := p.Restore(before[0], state.CustomerDump{}); !errors.Is(err, state.ErrInvalid) {
				t.Errorf("Restore of a customer without id: %v, want ErrInvalid", err)
			}
		}},
	}, consentBehaviours()...)
}

// dumps reads every customer with Each, sorted by id (counters sorted).
func dumps(t *testing.T, p state.Porter) []state.CustomerDump {
	t.Helper()
	var all []state.CustomerDump
	must(t, p.Each(func(c *state.CustomerDump) error { all = append(all, *c); return nil }))
	slices.SortFunc(all, func(a, b state.CustomerDump) int { return strings.Compare(a.ID, b.ID) })
	for i := range all {
		slices.SortFunc(all[i].Counters, func(a, b state.Counter) int {
			return cmp.Or(cmp.Compare(a.Kind, b.Kind), strings.Compare(a.Key, b.Key), cmp.Compare(a.Outcome, b.Outcome))
		})
	}
	return all
}
