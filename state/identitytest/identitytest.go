// Package identitytest is the behaviour table of identity stitching that
// every state.IdentityBackend passes: linking, namespace bounds, blocked
// values, unique-namespace conflicts, the merge of every kind of state,
// unmerge restoring both sides exactly, and links and writes racing on one
// person. It is written against the contract only:
//
//	func TestIdentity(t *testing.T) {
//		identitytest.Run(t, func(t *testing.T, cfg state.Config) state.IdentityBackend { ... })
//	}
package identitytest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"nba/state"
	"nba/state/statetest"
)

// NewBackend opens a fresh, empty backend with cfg, closed when t ends.
type NewBackend func(t *testing.T, cfg state.Config) state.IdentityBackend

// Config is the identity configuration of the behaviours (the issue's, with
// smaller bounds so that tests reach them).
const Config = `
namespaces:
  crm_id: {primary: true, unique: true}
  email:  {unique: true, hash: true}
  device: {max: 2}
  cookie: {max: 20, ttl: 90d}
blocked: ["", "null", "unknown", "0"]
`

// Key is the identity key of the behaviours.
var Key = []byte("0123456789abcdef-identity-key")

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// Behaviour is one row of the table.
type Behaviour struct {
	Name string
	Run  func(t *testing.T, x *state.Identities)
	// Then, when set, runs after every customer Run left was exported
	// (Backend.Each) and imported (Backend.Restore) into a fresh backend,
	// against that backend.
	Then func(t *testing.T, x *state.Identities)
}

// Run runs every behaviour against fresh backends from newBackend.
func Run(t *testing.T, newBackend NewBackend) {
	for _, bh := range Behaviours() {
		t.Run(bh.Name, func(t *testing.T) {
			var cfg state.Config
			if err := yaml.Unmarshal([]byte(statetest.Mappings), &cfg.Mappings); err != nil {
				t.Fatal(err)
			}
			var ic state.IdentityConfig
			if err := yaml.Unmarshal([]byte(Config), &ic); err != nil {
				t.Fatal(err)
			}
			open := func() *state.Identities {
				x := state.NewIdentities(newBackend(t, cfg), Key)
				if err := x.Configure(&ic); err != nil {
					t.Fatal(err)
				}
				x.SetClock(func() time.Time { return t0.Add(24 * time.Hour) }) // the behaviours' times are around t0
				return x
			}
			x := open()
			bh.Run(t, x)
			if bh.Then == nil {
				return
			}
			from, ok := x.Backend().(state.Porter)
			if !ok {
				t.Fatal("the backend cannot export state (state.Porter)")
			}
			var dump []state.CustomerDump
			must(t, from.Each(func(c *state.CustomerDump) error { dump = append(dump, *c); return nil }))
			y := open() // after the export: a shared backend's is flushed
			must(t, y.Backend().(state.Porter).Restore(dump...))
			bh.Then(t, y)
		})
	}
}

var ctx = context.Background()

func identify(t *testing.T, x *state.Identities, at time.Time, kv ...string) string {
	t.Helper()
	l, err := x.Identify(ctx, ids(kv...), at, "test")
	if err != nil {
		t.Fatalf("identify %v: %v", kv, err)
	}
	return l.Customer
}

func ids(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func resolve(t *testing.T, x *state.Identities, kv ...string) string {
	t.Helper()
	c, err := x.Resolve(ctx, ids(kv...))
	if err != nil {
		t.Fatalf("resolve %v: %v", kv, err)
	}
	if c == "" {
		return ""
	}
	c, err = x.Canonical(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func keys(t *testing.T, x *state.Identities, customer string) string {
	t.Helper()
	l, err := x.IdentifiersOf(ctx, customer)
	must(t, err)
	var s []string
	for _, id := range l {
		s = append(s, id.Key())
	}
	return strings.Join(s, " ")
}

// value returns the customer's encoded value ("" when none).
func value(t *testing.T, x *state.Identities, customer string) string {
	t.Helper()
	c, err := x.Backend().Get(ctx, customer)
	must(t, err)
	if c == nil {
		return ""
	}
	return string(x.Backend().IdentityModel().AppendState(nil, c))
}

func contact(customer, id string, at time.Time, o state.Outcome) state.Contact {
	return state.Contact{Customer: customer, Action: "a", Group: "g", Channel: "web", Outcome: o, At: at, ID: id}
}

func purchase(customer, id string, at time.Time, amount float64) state.Event {
	return state.Event{Customer: customer, Type: "purchase", At: at, Attrs: map[string]any{"amount": amount}, ID: id}
}

func number(t *testing.T, b state.Backend, customer, field string) float64 {
	t.Helper()
	sl, _, ok := b.Slot(field)
	if !ok {
		t.Fatalf("no field %q", field)
	}
	var v state.View
	b.View([]byte(customer), &v)
	n, _ := v.Number(sl)
	return n
}

// Behaviours returns the table.
func Behaviours() []Behaviour {
	return []Behaviour{
		exportImport(),
		{Name: "anonymous profile then login links to the primary id", Run: func(t *testing.T, x *state.Identities) {
			anon := identify(t, x, t0, "cookie", "c-91")
			if anon != state.AnonymousID("cookie:c-91") {
				t.Errorf("anonymous profile %q", anon)
			}
			if got := identify(t, x, t0.Add(time.Minute), "cookie", "c-91", "crm_id", "c00042"); got != "c00042" {
				t.Errorf("login answered %q, want the crm id", got)
			}
			for _, q := range [][]string{{"cookie", "c-91"}, {"crm_id", "c00042"}, {"cookie", "c-91", "device", "d-new"}} {
				if got := resolve(t, x, q...); got != "c00042" {
					t.Errorf("resolve %v = %q, want c00042", q, got)
				}
			}
			if got := resolve(t, x, "device", "never-seen"); got != "" {
				t.Errorf("an unknown identifier resolved to %q", got)
			}
			if got := identify(t, x, t0.Add(time.Hour), "cookie", "c-91"); got != "c00042" {
				t.Errorf("the cookie alone answered %q after the login", got)
			}
		}},
		{Name: "state written by an identifier alone joins at the link", Run: func(t *testing.T, x *state.Identities) {
			anon, ok, err := x.ResolveID(ctx, "cookie", "c-5")
			if err != nil || !ok || anon != state.AnonymousID("cookie:c-5") {
				t.Fatalf("an unknown cookie resolves to %q %v %v", anon, ok, err)
			}
			must(t, x.Stitched().ApplyEvent(purchase(anon, "", t0, 7)))
			identify(t, x, t0.Add(time.Minute), "cookie", "c-5", "crm_id", "c5")
			if n := number(t, x.Stitched(), "c5", "spend_30d"); n != 7 {
				t.Errorf("spend %v, want 7 (the anonymous visitor's)", n)
			}
			for _, q := range [][2]string{{"cookie", "c-5"}, {"crm_id", "c5"}} {
				if got, _, _ := x.ResolveID(ctx, q[0], q[1]); got != "c5" {
					t.Errorf("%v resolves to %q", q, got)
				}
			}
			if _, ok, err := x.ResolveID(ctx, "cookie", "null"); ok || err != nil {
				t.Errorf("a blocked value resolves: %v %v", ok, err)
			}
		}},
		{Name: "a write resolved before the link reaches the linked profile", Run: func(t *testing.T, x *state.Identities) {
			// Regression: an event resolved to the cookie's anonymous
			// profile, then written after a link of the cookie, stayed
			// there, where no later link looked (lost in a 3-replica run).
			anon, _, err := x.ResolveID(ctx, "cookie", "c-6")
			must(t, err)
			identify(t, x, t0, "cookie", "c-6", "crm_id", "c6")
			must(t, x.Stitched().ApplyEvent(purchase(anon, "", t0.Add(time.Minute), 4)))
			if n := number(t, x.Stitched(), "c6", "spend_30d"); n != 4 {
				t.Errorf("spend %v on the linked profile, want 4", n)
			}
			identify(t, x, t0.Add(time.Hour), "cookie", "c-6", "crm_id", "c6")
			if n := number(t, x.Stitched(), "c6", "spend_30d"); n != 4 {
				t.Errorf("spend %v after linking again, want 4", n)
			}
		}},
		{Name: "blocked values never link", Run: func(t *testing.T, x *state.Identities) {
			identify(t, x, t0, "crm_id", "c1", "cookie", "null", "device", "0")
			identify(t, x, t0, "crm_id", "c2", "cookie", "NULL", "device", " 0 ")
			identify(t, x, t0, "crm_id", "c3", "cookie", "Unknown")
			for _, q := range [][]string{{"cookie", "null"}, {"device", "0"}, {"cookie", "NULL"}, {"cookie", " Null"}, {"device", " 0 "}, {"cookie", "UNKNOWN"}} {
				if got := resolve(t, x, q...); got != "" {
					t.Errorf("blocked %v resolved to %q", q, got)
				}
			}
			if _, err := x.Identify(ctx, ids("cookie", "unknown"), t0, ""); !errors.Is(err, state.ErrInvalid) {
				t.Errorf("a link of blocked values only: %v, want ErrInvalid", err)
			}
			if _, err := x.Identify(ctx, ids("passport", "p1"), t0, ""); !errors.Is(err, state.ErrInvalid) {
				t.Errorf("an unknown namespace: %v, want ErrInvalid", err)
			}
			if k := keys(t, x, "c1"); k != "crm_id:c1" {
				t.Errorf("c1 holds %q", k)
			}
		}},
		{Name: "unique namespace conflict changes nothing", Run: func(t *testing.T, x *state.Identities) {
			identify(t, x, t0, "crm_id", "A", "email", "ann@example.com", "device", "shared")
			must(t, x.Backend().ApplyEvent(purchase("A", "", t0, 10)))
			before := value(t, x, "A")
			for _, q := range [][]string{
				{"crm_id", "B", "email", "ann@example.com"}, // a second crm id for the e-mail's profile
				{"crm_id", "B", "device", "shared"},         // a shared device: never collapses two customers
				{"crm_id", "A", "email", "bob@example.com"}, // a second e-mail for A
			} {
				_, err := x.Identify(ctx, ids(q...), t0.Add(time.Hour), "")
				if !errors.Is(err, state.ErrIdentityConflict) || !errors.Is(err, state.ErrConflict) {
					t.Errorf("link %v: %v, want an identity conflict", q, err)
				}
			}
			if after := value(t, x, "A"); after != before {
				t.Error("a refused link changed A")
			}
			if v := value(t, x, "B"); v != "" {
				t.Error("a refused link created B")
			}
			if got := resolve(t, x, "email", "bob@example.com"); got != "" {
				t.Errorf("a refused identifier resolves to %q", got)
			}
			if st := x.Stats(); st.Conflicts != 3 {
				t.Errorf("Conflicts = %d, want 3", st.Conflicts)
			}
		}},
		{Name: "per-namespace max drops the least recently used", Run: func(t *testing.T, x *state.Identities) {
			identify(t, x, t0, "crm_id", "c1", "device", "d1")
			identify(t, x, t0.Add(time.Minute), "crm_id", "c1", "device", "d2")
			identify(t, x, t0.Add(2*time.Minute), "crm_id", "c1", "device", "d1") // d1 used again
			identify(t, x, t0.Add(3*time.Minute), "crm_id", "c1", "device", "d3") // d2 goes
			if k := keys(t, x, "c1"); k != "crm_id:c1 device:d1 device:d3" {
				t.Errorf("identifiers %q", k)
			}
			if got := resolve(t, x, "device", "d2"); got == "c1" || !strings.HasPrefix(got, state.AnonymousID("device:d2")+"@") {
				t.Errorf("a dropped device resolves to %q, want a fresh anonymous profile", got)
			}
		}},
		{Name: "ttl drops identifiers not used", Run: func(t *testing.T, x *state.Identities) {
			identify(t, x, t0, "crm_id", "c1", "cookie", "old")
			identify(t, x, t0.Add(60*24*time.Hour), "crm_id", "c1", "cookie", "mid")
			identify(t, x, t0.Add(100*24*time.Hour), "crm_id", "c1", "cookie", "new")
			if k := keys(t, x, "c1"); k != "crm_id:c1 cookie:mid cookie:new" {
				t.Errorf("identifiers %q", k)
			}
		}},
		{Name: "hashed namespace stores no clear value", Run: func(t *testing.T, x *state.Identities) {
			identify(t, x, t0, "crm_id", "c1", "email", "ann@example.com")
			if strings.Contains(value(t, x, "c1"), "ann@example.com") {
				t.Error("the e-mail address is stored in the clear")
			}
			if k := keys(t, x, "c1"); !strings.Contains(k, "email:h:") {
				t.Errorf("identifiers %q: want a hashed e-mail", k)
			}
			if got := resolve(t, x, "email", "ann@example.com"); got != "c1" {
				t.Errorf("the e-mail resolves to %q", got)
			}
		}},
		{Name: "merge of every kind of state", Run: func(t *testing.T, x *state.Identities) {
			b := x.Backend()
			anon := identify(t, x, t0, "cookie", "c-91")
			identify(t, x, t0, "crm_id", "c42")
			// The anonymous visitor: contacts, an event, a journey, ids.
			must(t, b.RecordContact(contact(anon, "k1", t0.Add(1*time.Minute), state.Impression), contact(anon, "", t0.Add(5*time.Minute), state.Click)))
			must(t, b.ApplyEvent(purchase(anon, "e1", t0.Add(2*time.Minute), 30)))
			must(t, b.SetJourney(state.JourneyUpdate{Customer: anon, Journey: "cart", Step: 1, At: t0.Add(3 * time.Minute)}))
			must(t, b.SetJourney(state.JourneyUpdate{Customer: anon, Journey: "welcome", Status: state.JourneyCompleted, At: t0.Add(3 * time.Minute)}))
			// The known customer: its own, one contact the same as the visitor's.
			must(t, b.RecordContact(contact("c42", "k2", t0.Add(4*time.Minute), state.Impression), contact("c42", "", t0.Add(5*time.Minute), state.Click)))
			must(t, b.ApplyEvent(purchase("c42", "e2", t0.Add(time.Minute), 20), state.Event{Customer: "c42", Type: "signup", At: t0}))
			must(t, b.SetJourney(state.JourneyUpdate{Customer: "c42", Journey: "cart", Step: 0, At: t0.Add(4 * time.Minute)}))
			must(t, b.SetJourney(state.JourneyUpdate{Customer: "c42", Journey: "welcome", Step: 2, At: t0.Add(time.Minute)}))

			l, err := x.Identify(ctx, ids("cookie", "c-91", "crm_id", "c42"), t0.Add(10*time.Minute), "login")
			must(t, err)
			if l.Customer != "c42" || len(l.Receipts) != 1 {
				t.Fatalf("link %+v", l)
			}
			s := x.Stitched()
			var v state.View
			if !s.View([]byte("c42"), &v) {
				t.Fatal("merged profile not found")
			}
			now := t0.Add(11 * time.Minute)
			for _, c := range []struct {
				o    state.Outcome
				want int
			}{{state.Impression, 2}, {state.Click, 1}} { // the same click in both: once
				if got := v.Count(state.KindAction, "a", c.o, time.Hour, now); got != c.want {
					t.Errorf("%v count %d, want %d", c.o, got, c.want)
				}
			}
			if v.HistoryLen() != 3 {
				t.Errorf("history %d, want 3 (union without the duplicate)", v.HistoryLen())
			}
			if n := number(t, s, "c42", "orders_30d"); n != 2 {
				t.Errorf("orders_30d %v, want 2: a counter is summed", n)
			}
			if n := number(t, s, "c42", "last_order_value"); n != 30 {
				t.Errorf("last_order_value %v, want 30 (latest)", n)
			}
			if j, _ := v.Journey("cart"); j.Step != 1 || j.Status != state.JourneyActive {
				t.Errorf("cart %+v: the more advanced active step wins", j)
			}
			if j, _ := v.Journey("welcome"); j.Step != 2 || j.Status != state.JourneyActive {
				t.Errorf("welcome %+v: an active state beats a finished one", j)
			}
			if !v.SeenContactID("k1") || !v.SeenContactID("k2") {
				t.Error("idempotency ids not united")
			}
			if dup, err := s.ApplyEventOnce(purchase("c42", "e1", now, 1)); err != nil || !dup {
				t.Errorf("the visitor's event id is not remembered: %v %v", dup, err)
			}
			// Reads and writes for the absorbed id go to the profile.
			var va state.View
			if !s.View([]byte(anon), &va) || va.Customer() != "c42" {
				t.Errorf("a read of the merged id reads %q", va.Customer())
			}
			must(t, s.ApplyEvent(purchase(anon, "", now, 5)))
			if n := number(t, s, "c42", "orders_30d"); n != 3 {
				t.Errorf("a write to the merged id: orders %v, want 3", n)
			}
			// Linking again changes nothing: idempotent.
			l2, err := x.Identify(ctx, ids("cookie", "c-91", "crm_id", "c42"), now, "login")
			if err != nil || l2.Customer != "c42" || len(l2.Receipts) != 0 {
				t.Errorf("link again: %+v %v", l2, err)
			}
		}},
		{Name: "unmerge restores both sides exactly", Run: func(t *testing.T, x *state.Identities) {
			b := x.Backend()
			anon := identify(t, x, t0, "cookie", "c-7", "device", "d-7")
			identify(t, x, t0, "crm_id", "c7")
			must(t, b.RecordContact(contact(anon, "k1", t0.Add(time.Minute), state.Impression)))
			must(t, b.SetJourney(state.JourneyUpdate{Customer: anon, Journey: "cart", Step: 1, At: t0.Add(3 * time.Minute)}))
			must(t, b.ApplyEvent(purchase("c7", "e2", t0.Add(time.Minute), 20)))
			beforeA, beforeB := value(t, x, "c7"), value(t, x, anon)
			l, err := x.Identify(ctx, ids("cookie", "c-7", "crm_id", "c7"), t0.Add(10*time.Minute), "login")
			must(t, err)
			if value(t, x, "c7") == beforeA {
				t.Fatal("the merge changed nothing")
			}
			u, err := x.Unmerge(ctx, l.Receipts[0])
			must(t, err)
			if u.Customer != anon {
				t.Errorf("unmerge answered %q", u.Customer)
			}
			if a := value(t, x, "c7"); a != beforeA {
				t.Errorf("the survivor differs after unmerge:\n%q\n%q", a, beforeA)
			}
			if v := value(t, x, anon); v != beforeB {
				t.Errorf("the absorbed profile differs after unmerge:\n%q\n%q", v, beforeB)
			}
			if got := resolve(t, x, "device", "d-7"); got != anon {
				t.Errorf("the absorbed profile's device resolves to %q", got)
			}
			if _, err := x.Unmerge(ctx, l.Receipts[0]); !errors.Is(err, state.ErrInvalid) {
				t.Errorf("a second unmerge: %v, want ErrInvalid", err)
			}
			// State that arrived after a merge stays with the survivor, to
			// which it was written; the absorbed profile gets its own back.
			l, err = x.Identify(ctx, ids("cookie", "c-7", "crm_id", "c7"), t0.Add(20*time.Minute), "login")
			must(t, err)
			s := x.Stitched()
			must(t, s.ApplyEvent(purchase("c7", "e9", t0.Add(21*time.Minute), 1)))
			must(t, s.ApplyEvent(purchase(anon, "", t0.Add(22*time.Minute), 2))) // by the merged id: made on c7
			must(t, s.RecordContact(contact("c7", "k9", t0.Add(23*time.Minute), state.Impression)))
			must(t, s.SetJourney(state.JourneyUpdate{Customer: "c7", Journey: "cart", Step: 2, At: t0.Add(24 * time.Minute)}))
			_, err = x.Unmerge(ctx, l.Receipts[0])
			must(t, err)
			if v := value(t, x, anon); v != beforeB {
				t.Error("the absorbed profile differs after an unmerge that followed later writes")
			}
			var v state.View
			s.View([]byte("c7"), &v)
			if n := number(t, s, "c7", "orders_30d"); n != 3 {
				t.Errorf("survivor orders %v, want 3 (its own and the two written after the merge)", n)
			}
			if n := number(t, s, "c7", "spend_30d"); n != 23 {
				t.Errorf("survivor spend %v, want 23", n)
			}
			if n := v.Count(state.KindAction, "a", state.Impression, time.Hour, t0.Add(30*time.Minute)); n != 1 || v.HistoryLen() != 1 {
				t.Errorf("survivor contacts %d (history %d), want only the later one", n, v.HistoryLen())
			}
			if j, ok := v.Journey("cart"); !ok || j.Step != 2 {
				t.Errorf("survivor cart journey %+v %v, want the later move", j, ok)
			}
			if !v.SeenContactID("k9") || v.SeenContactID("k1") {
				t.Error("survivor idempotency keys: want the later one and not the absorbed profile's")
			}
			if _, err := x.Unmerge(ctx, "zz.not-a-receipt"); !errors.Is(err, state.ErrInvalid) {
				t.Errorf("a malformed receipt: %v", err)
			}
		}},
		unmergeByProvenance(),
		unmergeRacesWrites(),
		manyMerges(),
		primaryRules(),
		droppedStopsResolving(),
		droppedExportImport(),
		forgetEveryForward(),
		opaqueReceipts(),
		receiptsExportImport(),
		ttlExpiry(),
		ttlExportImport(),
		{Name: "links and writes from 16 goroutines lose nothing", Run: func(t *testing.T, x *state.Identities) {
			s := x.Stitched()
			const workers, per = 16, 10
			var wg sync.WaitGroup
			errs := make(chan error, workers*per)
			for w := range workers {
				wg.Go(func() {
					for i := range per {
						at := t0.Add(time.Duration(w*per+i) * time.Second)
						cookie := fmt.Sprintf("c-%d", w%4)
						var err error
						switch i % 3 {
						case 0: // a link: each cookie joins the person
							_, err = x.Identify(ctx, ids("cookie", cookie, "crm_id", "p1"), at, "")
						case 1: // an event addressed by the cookie's profile
							var c string
							if c, err = x.Resolve(ctx, ids("cookie", cookie)); err == nil {
								if c == "" {
									var l state.Link
									l, err = x.Identify(ctx, ids("cookie", cookie), at, "")
									c = l.Customer
								}
								if err == nil {
									err = s.ApplyEvent(purchase(c, fmt.Sprintf("e-%d-%d", w, i), at, 1))
								}
							}
						case 2: // feedback by the primary id
							err = s.RecordContact(contact("p1", fmt.Sprintf("k-%d-%d", w, i), at, state.Impression))
						}
						if err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// Every cookie ends in p1 (the last round of links merges any
			// anonymous profile made meanwhile).
			for c := range 4 {
				identify(t, x, t0.Add(time.Hour), "cookie", fmt.Sprintf("c-%d", c), "crm_id", "p1")
			}
			var events, contacts int
			for i := range per {
				switch i % 3 {
				case 1:
					events += workers
				case 2:
					contacts += workers
				}
			}
			if n := number(t, s, "p1", "orders_30d"); int(n) != events {
				t.Errorf("orders %v, want %d: events lost to merges", n, events)
			}
			var v state.View
			s.View([]byte("p1"), &v)
			if n := v.Count(state.KindAction, "a", state.Impression, 24*time.Hour, t0.Add(time.Hour)); n != contacts {
				t.Errorf("contacts %d, want %d", n, contacts)
			}
		}},
	}
}

// exportImport: an export and import keeps the links. Regression: the
// dump carried no identifiers, so after an import an identifier linked to
// a customer named no one (a new anonymous profile), a forward was an
// empty profile, and a second CRM id for the person's device linked
// without a conflict.
func exportImport() Behaviour {
	var before string
	return Behaviour{Name: "export and import keep identifiers, index and forwards", Run: func(t *testing.T, x *state.Identities) {
		anon := identify(t, x, t0, "cookie", "c-91")
		must(t, x.Stitched().ApplyEvent(purchase(anon, "", t0, 7)))
		identify(t, x, t0.Add(time.Minute), "cookie", "c-91", "crm_id", "c00042", "device", "d-1", "email", "a@example.com")
		identify(t, x, t0.Add(time.Minute), "crm_id", "c00043", "device", "d-2")
		before = keys(t, x, "c00042")
		if strings.Count(before, " ") != 3 {
			t.Fatalf("before the export c00042 holds %q", before)
		}
	}, Then: func(t *testing.T, x *state.Identities) {
		if got := keys(t, x, "c00042"); got != before {
			t.Errorf("after the import c00042 holds %q, want %q", got, before)
		}
		for _, q := range [][]string{{"cookie", "c-91"}, {"device", "d-1"}, {"email", "a@example.com"}, {"crm_id", "c00042"}} {
			if got := resolve(t, x, q...); got != "c00042" {
				t.Errorf("after the import %v resolves to %q, want c00042", q, got)
			}
		}
		if got := resolve(t, x, "device", "d-2"); got != "c00043" {
			t.Errorf("after the import d-2 resolves to %q, want c00043", got)
		}
		if c, err := x.Canonical(ctx, state.AnonymousID("cookie:c-91")); err != nil || c != "c00042" {
			t.Errorf("the merged anonymous profile leads to %q %v, want c00042", c, err)
		}
		if n := number(t, x.Stitched(), "c00042", "spend_30d"); n != 7 {
			t.Errorf("spend %v, want 7", n)
		}
		if _, err := x.Identify(ctx, ids("device", "d-1", "crm_id", "c00043"), t0.Add(time.Hour), ""); !errors.Is(err, state.ErrIdentityConflict) {
			t.Errorf("a second crm id for the imported device: %v, want a conflict", err)
		}
	}}
}

// unmergeByProvenance: writes made after a merge go back with the identifier
// that brought them. Regression: an unmerge gave the survivor everything
// written after the merge, also what the absorbed profile's cookie did.
func unmergeByProvenance() Behaviour {
	return Behaviour{Name: "unmerge splits later writes by the identifier that brought them", Run: func(t *testing.T, x *state.Identities) {
		receipt, anon, at := provenanceWrites(t, x)
		checkSplit(t, x, receipt, anon, at)
	}}
}

// unmergeRacesWrites: writes via either identifier while an unmerge runs
// are each on one side or the other afterwards. Regression (review ident2,
// finding B): the unmerge read the survivor, then replaced its whole value
// with what it computed from that read; writes that landed in between were
// acknowledged and then lost (5 to 11 of 161 purchases).
func unmergeRacesWrites() Behaviour {
	return Behaviour{Name: "writes during an unmerge are not lost", Run: func(t *testing.T, x *state.Identities) {
		s := x.Stitched()
		const rounds, writers, each = 8, 4, 25
		for r := range rounds {
			cookie, crm := fmt.Sprintf("c-u%d", r), fmt.Sprintf("cu%d", r)
			anon := identify(t, x, t0, "cookie", cookie)
			must(t, s.ApplyEvent(purchase(anon, "", t0, 1)))
			l, err := x.Identify(ctx, ids("cookie", cookie, "crm_id", crm), t0.Add(time.Minute), "login")
			must(t, err)
			if len(l.Receipts) != 1 {
				t.Fatalf("link %+v: want one merge", l)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			acked := 1 // the purchase before the merge
			started := make(chan struct{}, writers*each)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ns, v := "cookie", cookie // half the writers via each identifier
					if w%2 == 1 {
						ns, v = "crm_id", crm
					}
					via, err := x.Via(ns, v)
					if err != nil {
						t.Error(err)
						return
					}
					for i := range each {
						started <- struct{}{}
						c, _, err := x.ResolveID(ctx, ns, v)
						if err != nil {
							t.Errorf("resolve %s: %v", ns, err)
							return
						}
						e := purchase(c, "", t0.Add(2*time.Minute+time.Duration(i)*time.Second), 1)
						e.Via = via
						if err := s.ApplyEvent(e); err != nil {
							continue // not acknowledged: may be anywhere
						}
						mu.Lock()
						acked++
						mu.Unlock()
						time.Sleep(100 * time.Microsecond) // a client's round trip
					}
				}()
			}
			for range writers * each / 4 {
				<-started // the unmerge starts among the writes
			}
			_, uerr := x.Unmerge(ctx, l.Receipts[0])
			wg.Wait()
			if uerr != nil {
				t.Fatalf("round %d: unmerge: %v", r, uerr)
			}
			got := number(t, s, anon, "orders_30d") + number(t, s, crm, "orders_30d")
			if got != float64(acked) {
				t.Errorf("round %d: %v purchases on the two sides after the unmerge (%v and %v), %d acknowledged",
					r, got, number(t, s, anon, "orders_30d"), number(t, s, crm, "orders_30d"), acked)
			}
		}
	}}
}

// receiptsExportImport: an unmerge after an export and import splits as
// unmergeByProvenance does. Regression: merge receipts were not exported,
// so the merge could not be undone after a move between backends.
func receiptsExportImport() Behaviour {
	var receipt, anon string
	var at time.Time
	return Behaviour{Name: "merge receipts survive export and import", Run: func(t *testing.T, x *state.Identities) {
		receipt, anon, at = provenanceWrites(t, x)
	}, Then: func(t *testing.T, y *state.Identities) {
		checkSplit(t, y, receipt, anon, at)
	}}
}

// provenanceWrites merges the cookie c-8's anonymous profile into c8, then
// writes to c8 via the cookie and via the crm id; it returns the merge's
// receipt, the anonymous profile and the time of the first later write.
func provenanceWrites(t *testing.T, x *state.Identities) (receipt, anon string, at time.Time) {
	t.Helper()
	b, s := x.Backend(), x.Stitched()
	anon = identify(t, x, t0, "cookie", "c-8")
	identify(t, x, t0, "crm_id", "c8")
	must(t, b.RecordContact(contact(anon, "kb", t0.Add(time.Minute), state.Impression)))
	must(t, b.SetJourney(state.JourneyUpdate{Customer: anon, Journey: "cart", Step: 1, At: t0.Add(time.Minute)}))
	must(t, b.ApplyEvent(purchase("c8", "e0", t0.Add(time.Minute), 20)))
	must(t, b.RecordContact(contact("c8", "k0", t0.Add(2*time.Minute), state.Click)))
	l, err := x.Identify(ctx, ids("cookie", "c-8", "crm_id", "c8"), t0.Add(10*time.Minute), "login")
	must(t, err)
	if len(l.Receipts) != 1 {
		t.Fatalf("link %+v: want one merge", l)
	}
	cookie, err := x.Via("cookie", "c-8")
	must(t, err)
	crm, err := x.Via("crm_id", "c8")
	must(t, err)
	// After the merge both identifiers name c8: the cookie's writes and
	// the crm id's interleave there.
	at = t0.Add(11 * time.Minute)
	kc := contact("c8", "kc", at, state.Impression)
	kc.Via = cookie
	must(t, s.RecordContact(kc))
	kr := contact("c8", "kr", at.Add(time.Minute), state.Impression)
	kr.Via = crm
	must(t, s.RecordContact(kr))
	ec := purchase("c8", "ec", at.Add(2*time.Minute), 5)
	ec.Via = cookie
	must(t, s.ApplyEvent(ec))
	er := purchase("c8", "er", at.Add(3*time.Minute), 100)
	er.Via = crm
	must(t, s.ApplyEvent(er))
	must(t, s.SetJourney(state.JourneyUpdate{Customer: "c8", Journey: "cart", Step: 2, At: at.Add(4 * time.Minute), Via: cookie}))
	must(t, s.SetJourney(state.JourneyUpdate{Customer: "c8", Journey: "welcome", Step: 1, At: at.Add(4 * time.Minute), Via: crm}))
	if _, err := s.SetConsent(state.Consent{Customer: "c8", Channel: "email", Purpose: "marketing", At: at.Add(5 * time.Minute), Source: "cookie banner", Via: cookie}); err != nil {
		t.Fatal(err)
	}
	return l.Receipts[0], anon, at
}

// checkSplit unmerges receipt, the merge of anon (the cookie c-8) into c8
// after which unmergeByProvenance wrote, and checks each side got its own.
func checkSplit(t *testing.T, x *state.Identities, receipt, anon string, at time.Time) {
	t.Helper()
	s := x.Stitched()
	u, err := x.Unmerge(ctx, receipt)
	must(t, err)
	if u.Customer != anon {
		t.Fatalf("unmerge answered %q", u.Customer)
	}
	now := at.Add(time.Hour)
	for _, c := range []struct {
		customer             string
		history, impressions int
		seen, unseen         []string // contact ids
		orders, spend        float64
		cart, welcome        int // journey steps, -1 none
		consent              bool
		events, eventsNot    []string
	}{
		{customer: anon, history: 2, impressions: 2, seen: []string{"kb", "kc"}, unseen: []string{"k0", "kr"},
			orders: 1, spend: 5, cart: 2, welcome: -1, consent: true, events: []string{"ec"}, eventsNot: []string{"e0", "er"}},
		{customer: "c8", history: 2, impressions: 1, seen: []string{"k0", "kr"}, unseen: []string{"kb", "kc"},
			orders: 2, spend: 120, cart: -1, welcome: 1, consent: false, events: []string{"e0", "er"}, eventsNot: []string{"ec"}},
	} {
		var v state.View
		if !s.View([]byte(c.customer), &v) || v.Customer() != c.customer {
			t.Errorf("%s: not found after the unmerge (read %q)", c.customer, v.Customer())
			continue
		}
		if n := v.HistoryLen(); n != c.history {
			t.Errorf("%s: history %d, want %d", c.customer, n, c.history)
		}
		if n := v.Count(state.KindAction, "a", state.Impression, 24*time.Hour, now); n != c.impressions {
			t.Errorf("%s: impressions %d, want %d", c.customer, n, c.impressions)
		}
		for _, id := range c.seen {
			if !v.SeenContactID(id) {
				t.Errorf("%s: contact id %q not remembered", c.customer, id)
			}
		}
		for _, id := range c.unseen {
			if v.SeenContactID(id) {
				t.Errorf("%s: remembers the other side's contact id %q", c.customer, id)
			}
		}
		if n := number(t, s, c.customer, "orders_30d"); n != c.orders {
			t.Errorf("%s: orders %v, want %v", c.customer, n, c.orders)
		}
		if n := number(t, s, c.customer, "spend_30d"); n != c.spend {
			t.Errorf("%s: spend %v, want %v", c.customer, n, c.spend)
		}
		for _, j := range []struct {
			id   string
			step int
		}{{"cart", c.cart}, {"welcome", c.welcome}} {
			st, ok := v.Journey(j.id)
			if ok != (j.step >= 0) || ok && st.Step != j.step {
				t.Errorf("%s: journey %s %+v %v, want step %d", c.customer, j.id, st, ok, j.step)
			}
		}
		if _, ok := v.Consent("email", "marketing"); ok != c.consent {
			t.Errorf("%s: consent change present %v, want %v", c.customer, ok, c.consent)
		}
		for _, id := range c.events {
			if dup, err := s.ApplyEventOnce(purchase(c.customer, id, now, 1)); err != nil || !dup {
				t.Errorf("%s: event id %q not remembered: %v %v", c.customer, id, dup, err)
			}
		}
		for _, id := range c.eventsNot {
			var w state.View
			s.View([]byte(c.customer), &w)
			if !w.Found() {
				continue
			}
			if dup, err := s.ApplyEventOnce(state.Event{Customer: c.customer, Type: "signup", At: now, ID: id}); err != nil || dup {
				t.Errorf("%s: remembers the other side's event id %q: %v %v", c.customer, id, dup, err)
			}
		}
	}
	// The cookie was used by its last write, on the profile it went back to.
	for _, id := range mustIDs(t, x, anon) {
		if id.NS == "cookie" && !id.Last.Equal(at.Add(5*time.Minute)) {
			t.Errorf("cookie last used %v, want %v (its last write)", id.Last, at.Add(5*time.Minute))
		}
	}
}

func mustIDs(t *testing.T, x *state.Identities, customer string) []state.Identifier {
	t.Helper()
	l, err := x.IdentifiersOf(ctx, customer)
	must(t, err)
	return l
}

// ttlExpiry: an identifier not used within its namespace's ttl (by a link
// or a write via it) no longer resolves to its profile. Regression: the ttl
// was applied only when the profile was next linked; until then an
// identifier unused for years still named the customer.
func ttlExpiry() Behaviour {
	return Behaviour{Name: "an identifier unused for its ttl names a fresh anonymous profile", Run: func(t *testing.T, x *state.Identities) {
		day := 24 * time.Hour
		now := t0
		x.SetClock(func() time.Time { return now })
		s := x.Stitched()
		identify(t, x, t0, "crm_id", "c1", "cookie", "c-old")
		cookie, err := x.Via("cookie", "c-old")
		must(t, err)
		resolveID := func() string {
			t.Helper()
			c, ok, err := x.ResolveID(ctx, "cookie", "c-old")
			if err != nil || !ok {
				t.Fatalf("resolve: %v %v", ok, err)
			}
			if r := resolve(t, x, "cookie", "c-old"); r != c {
				t.Errorf("Resolve %q, ResolveID %q", r, c)
			}
			return c
		}
		// A write via the cookie 60 days on uses it: 100 days after the
		// link it still names c1 (cookie ttl: 90 days).
		c := contact("c1", "k1", t0.Add(60*day), state.Impression)
		c.Via = cookie
		must(t, s.RecordContact(c))
		now = t0.Add(100 * day)
		if got := resolveID(); got != "c1" {
			t.Fatalf("100 days on, 40 after its last use, the cookie resolves to %q", got)
		}
		// 151 days on it was last used 91 days ago: a fresh anonymous
		// profile, neither c1 nor the cookie's first anonymous profile
		// (which forwards to c1).
		now = t0.Add(151 * day)
		fresh := resolveID()
		if fresh == "c1" || fresh == state.AnonymousID(cookie) || !strings.HasPrefix(fresh, state.AnonymousID(cookie)) {
			t.Fatalf("the expired cookie resolves to %q", fresh)
		}
		// c1's next write drops it; it still names the fresh profile.
		must(t, s.ApplyEvent(purchase("c1", "e1", now, 10)))
		if k := keys(t, x, "c1"); k != "crm_id:c1" {
			t.Errorf("after its next write c1 holds %q", k)
		}
		if got := resolveID(); got != fresh {
			t.Errorf("after c1 dropped it the cookie resolves to %q, want %q", got, fresh)
		}
		// What the cookie does now is the fresh profile's, and a link takes
		// it elsewhere without touching c1.
		must(t, s.ApplyEvent(purchase(fresh, "e2", now, 3)))
		if got := identify(t, x, now.Add(time.Minute), "cookie", "c-old"); got != fresh {
			t.Errorf("identify of the expired cookie alone answered %q, want %q", got, fresh)
		}
		if got := identify(t, x, now.Add(2*time.Minute), "cookie", "c-old", "crm_id", "c2"); got != "c2" {
			t.Errorf("identify with another crm id answered %q", got)
		}
		if got := resolveID(); got != "c2" {
			t.Errorf("after the new link the cookie resolves to %q", got)
		}
		if n := number(t, s, "c2", "spend_30d"); n != 3 {
			t.Errorf("c2 spend %v, want the fresh profile's 3", n)
		}
		if n := number(t, s, "c1", "spend_30d"); n != 10 {
			t.Errorf("c1 spend %v, want its own 10", n)
		}
		if k := keys(t, x, "c2"); k != "cookie:c-old crm_id:c2" {
			t.Errorf("c2 holds %q", k)
		}
	}, Then: func(t *testing.T, y *state.Identities) {
		// c1 remembers the cookie as expired, c2 holds it: the import
		// claims it for c2 without a conflict.
		if got, _, err := y.ResolveID(ctx, "cookie", "c-old"); err != nil || got != "c2" {
			t.Errorf("after the import the relinked cookie resolves to %q %v", got, err)
		}
	}}
}

// ttlExportImport: an identifier its profile dropped as its ttl ran out
// still names its fresh anonymous profile after an export and import
// (before, the import claimed only the identifiers held, and the expired
// one led back to the profile through its first anonymous profile).
func ttlExportImport() Behaviour {
	var fresh string
	return Behaviour{Name: "an expired identifier stays expired across export and import", Run: func(t *testing.T, x *state.Identities) {
		now := t0.Add(100 * 24 * time.Hour)
		x.SetClock(func() time.Time { return now })
		identify(t, x, t0, "crm_id", "c1", "cookie", "c-gone")
		must(t, x.Stitched().ApplyEvent(purchase("c1", "e1", now, 1))) // drops the cookie
		var ok bool
		var err error
		fresh, ok, err = x.ResolveID(ctx, "cookie", "c-gone")
		if err != nil || !ok || fresh == "c1" {
			t.Fatalf("the expired cookie resolves to %q %v %v", fresh, ok, err)
		}
	}, Then: func(t *testing.T, y *state.Identities) {
		if got, _, err := y.ResolveID(ctx, "cookie", "c-gone"); err != nil || got != fresh {
			t.Errorf("after the import the expired cookie resolves to %q %v, want %q", got, err, fresh)
		}
		if got := identify(t, y, t0.Add(101*24*time.Hour), "cookie", "c-gone", "crm_id", "c2"); got != "c2" {
			t.Errorf("after the import a link of the expired cookie answered %q", got)
		}
	}}
}

// MaxProfileBytes is the bound manyMerges states for the stored value of a
// profile that absorbed 50 small profiles: its own state, its identifiers
// (cookie max 20) and the receipts of its last 8 merges, each holding its
// value from before that merge without receipts.
const MaxProfileBytes = 32 << 10

// manyMerges: 50 anonymous profiles, each with a purchase, merged one after
// another into one customer. Regression: a merge receipt held the
// survivor's value with its own receipts, so each merge doubled the value
// (2.4 MB after 14 merges; past Redis's 16 MiB the customer could no
// longer be written, read or erased).
func manyMerges() Behaviour {
	return Behaviour{Name: "fifty merges into one profile keep its value bounded", Run: func(t *testing.T, x *state.Identities) {
		s, m := x.Stitched(), x.Backend().IdentityModel()
		profile := func(customer string) string {
			t.Helper()
			c, err := x.Backend().Get(ctx, customer)
			must(t, err)
			if c == nil {
				return ""
			}
			return string(m.AppendProfile(nil, c))
		}
		const n = 50
		var receipts, anons, before, absorbed []string
		for i := range n {
			at := t0.Add(time.Duration(i) * time.Minute)
			anon, _, err := x.ResolveID(ctx, "cookie", fmt.Sprintf("m-%d", i))
			must(t, err)
			must(t, s.ApplyEvent(purchase(anon, fmt.Sprintf("e%d", i), at, 1)))
			before, absorbed = append(before, profile("c50")), append(absorbed, value(t, x, anon))
			l, err := x.Identify(ctx, ids("cookie", fmt.Sprintf("m-%d", i), "crm_id", "c50"), at.Add(time.Second), "login")
			must(t, err)
			if len(l.Receipts) != 1 {
				t.Fatalf("link %d: %+v, want one merge", i, l)
			}
			receipts, anons = append(receipts, l.Receipts[0]), append(anons, anon)
			if v := value(t, x, "c50"); len(v) > MaxProfileBytes {
				t.Fatalf("after %d merges the profile's value is %d bytes, over the bound of %d", i+1, len(v), MaxProfileBytes)
			}
		}
		t.Logf("after %d merges the profile's value is %d bytes", n, len(value(t, x, "c50")))
		if got := number(t, s, "c50", "orders_30d"); got != n {
			t.Fatalf("orders %v after %d merges, want %d", got, n, n)
		}
		// The last merges undo exactly, newest first: each side as it was.
		for i := n - 1; i >= n-3; i-- {
			u, err := x.Unmerge(ctx, receipts[i])
			must(t, err)
			if u.Customer != anons[i] {
				t.Errorf("unmerge %d answered %q, want %q", i, u.Customer, anons[i])
			}
			if got := profile("c50"); got != before[i] {
				t.Errorf("after the unmerge of merge %d the survivor differs from before it:\n%q\n%q", i, got, before[i])
			}
			if got := value(t, x, anons[i]); got != absorbed[i] {
				t.Errorf("after the unmerge of merge %d the absorbed profile differs from before it", i)
			}
			if got := number(t, s, "c50", "orders_30d"); got != float64(i) {
				t.Errorf("orders %v after the unmerge of merge %d, want %d", got, i, i)
			}
		}
	}}
}

// primaryRules: a primary namespace's value is a customer id. Regression: a
// crm id "~cookie:c-777" took over the cookie's anonymous profile (the
// visitor's events landed in that customer), and a crm id "a/b" was
// accepted by every route but the erasure route, so it could not be erased.
func primaryRules() Behaviour {
	return Behaviour{Name: "primary values obey the customer id rules", Run: func(t *testing.T, x *state.Identities) {
		for _, c := range []struct{ value, rule string }{
			{"~cookie:c-777", `start with "~"`},
			{"a/b", "slash"},
			{"/", "slash"},
		} {
			t.Run(c.value, func(t *testing.T) {
				check := func(op string, err error) {
					t.Helper()
					if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), "crm_id") || !strings.Contains(err.Error(), c.rule) {
						t.Errorf("%s: %v, want ErrInvalid naming crm_id and %q", op, err, c.rule)
					}
				}
				_, err := x.Identify(ctx, ids("crm_id", c.value, "device", "dv-777"), t0, "")
				check("identify", err)
				_, _, err = x.ResolveID(ctx, "crm_id", c.value)
				check("resolve id", err)
				_, err = x.Resolve(ctx, ids("crm_id", c.value, "cookie", "c-777"))
				check("resolve", err)
				if err := state.CheckCustomerID(c.value); c.rule == "slash" && err == nil {
					t.Errorf("CheckCustomerID(%q) = nil", c.value)
				}
			})
		}
		if got := identify(t, x, t0, "cookie", "c-777"); got != state.AnonymousID("cookie:c-777") {
			t.Errorf("the cookie names %q, want its own anonymous profile", got)
		}
		if got := identify(t, x, t0, "crm_id", "c~1", "cookie", "c-778"); got != "c~1" {
			t.Errorf("a crm id with a tilde inside answered %q", got)
		}
	}}
}

// droppedStopsResolving: an identifier dropped by its namespace's max names
// a fresh anonymous profile, on every path and after a move. Regression: the
// forward its first anonymous profile kept led back to the profile that
// dropped it, so a shared device stayed with its first customer for good
// (a link to another was an identity conflict, its events landed there,
// and a decision answered the anonymous id with that customer's state).
func droppedStopsResolving() Behaviour {
	return Behaviour{Name: "an identifier dropped by max stops resolving to the profile", Run: func(t *testing.T, x *state.Identities) {
		dropDevices(t, x)
		checkDropped(t, x, t0.Add(time.Hour))
	}}
}

// dropDevices links dv-1 to dv-4 to c600 (device max 2: dv-1, dv-2 dropped).
func dropDevices(t *testing.T, x *state.Identities) {
	t.Helper()
	for i := 1; i <= 4; i++ {
		identify(t, x, t0.Add(time.Duration(i)*time.Minute), "device", fmt.Sprintf("dv-%d", i), "crm_id", "c600")
	}
	if k := keys(t, x, "c600"); k != "crm_id:c600 device:dv-3 device:dv-4" {
		t.Fatalf("c600 holds %q", k)
	}
}

// checkDropped checks dv-1 and dv-2, dropped by c600, lead elsewhere.
func checkDropped(t *testing.T, x *state.Identities, at time.Time) {
	t.Helper()
	for _, d := range []string{"dv-1", "dv-2"} {
		id, ok, err := x.ResolveID(ctx, "device", d)
		if err != nil || !ok {
			t.Fatalf("resolve %s: %v %v", d, ok, err)
		}
		if c, err := x.Canonical(ctx, id); err != nil || c == "c600" {
			t.Errorf("dropped %s resolves to %q, leading to %q %v", d, id, c, err)
		}
		if got := resolve(t, x, "device", d); got == "c600" {
			t.Errorf("Resolve of dropped %s gives c600", d)
		}
	}
	// Its events do not reach the profile that dropped it.
	id, _, err := x.ResolveID(ctx, "device", "dv-1")
	must(t, err)
	must(t, x.Stitched().ApplyEvent(purchase(id, "", at, 9)))
	if n := number(t, x.Stitched(), "c600", "orders_30d"); n != 0 {
		t.Errorf("an event via a dropped device reached c600 (orders %v)", n)
	}
	// It links to someone else without a conflict, taking its own.
	if got := identify(t, x, at.Add(time.Minute), "device", "dv-1", "crm_id", "c602"); got != "c602" {
		t.Errorf("the dropped device linked to %q", got)
	}
	if n := number(t, x.Stitched(), "c602", "orders_30d"); n != 1 {
		t.Errorf("c602 orders %v, want the 1 made via the device after it was dropped", n)
	}
	if got := identify(t, x, at.Add(2*time.Minute), "device", "dv-2"); got == "c600" {
		t.Error("the dropped device alone links to c600")
	}
	if k := keys(t, x, "c600"); k != "crm_id:c600 device:dv-3 device:dv-4" {
		t.Errorf("c600 holds %q", k)
	}
}

// droppedExportImport is droppedStopsResolving after an export and import.
func droppedExportImport() Behaviour {
	return Behaviour{Name: "an identifier dropped by max stops resolving after export and import", Run: dropDevices,
		Then: func(t *testing.T, y *state.Identities) { checkDropped(t, y, t0.Add(time.Hour)) }}
}

// forgetEveryForward: Forget lists every profile that forwards to the
// person, so that an erasure removes and tombstones them all. Regression:
// it listed only the identifiers the profile held and its last 8 merges,
// so the forwards of dropped devices and of older merges survived the
// erasure, and writes through them brought the person back.
func forgetEveryForward() Behaviour {
	return Behaviour{Name: "forget lists the forwards of dropped identifiers and old merges", Run: func(t *testing.T, x *state.Identities) {
		s := x.Stitched()
		// dv-0 was another customer's first, dropped there (max 2), then
		// linked to c1: its first anonymous profile forwards to c9.
		for i, d := range []string{"dv-0", "dv-a", "dv-b"} {
			identify(t, x, t0.Add(time.Duration(i)*time.Second), "device", d, "crm_id", "c9")
		}
		var want []string
		for i := 1; i <= 12; i++ {
			anon := identify(t, x, t0.Add(time.Duration(i)*time.Minute), "cookie", fmt.Sprintf("ck-%d", i))
			must(t, s.ApplyEvent(purchase(anon, "", t0.Add(time.Duration(i)*time.Minute), 1)))
			identify(t, x, t0.Add(time.Duration(i)*time.Minute+time.Second), "cookie", fmt.Sprintf("ck-%d", i), "crm_id", "c1")
			want = append(want, anon)
		}
		for i := 1; i <= 4; i++ { // dv-1, dv-2 dropped
			identify(t, x, t0.Add(time.Hour+time.Duration(i)*time.Minute), "device", fmt.Sprintf("dv-%d", i), "crm_id", "c1")
			want = append(want, state.AnonymousID(fmt.Sprintf("device:dv-%d", i)))
		}
		identify(t, x, t0.Add(2*time.Hour), "device", "dv-0", "crm_id", "c1") // dv-3 dropped too
		got, err := x.Forget(ctx, "c1")
		must(t, err)
		if len(got) == 0 || got[0] != "c1" {
			t.Fatalf("forget listed %v, want c1 first", got)
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("forget does not list %q", w)
			}
		}
		if a := state.AnonymousID("device:dv-0"); slices.Contains(got, a) {
			t.Errorf("forget lists %q, which forwards to another customer", a)
		}
		if got := resolve(t, x, "cookie", "ck-12"); got == "c1" {
			t.Error("after forget an identifier still resolves to c1")
		}
	}}
}

// opaqueReceipts: a merge receipt and the errors of an unmerge carry no
// identifier. Regression: a receipt was "<hex>.<hex of ~cookie:c-91>", so
// the raw cookie travelled in every identify answer, and the unmerge
// error echoed it.
func opaqueReceipts() Behaviour {
	return Behaviour{Name: "merge receipts and unmerge errors carry no identifier", Run: func(t *testing.T, x *state.Identities) {
		clear := func(what, s string) {
			t.Helper()
			for _, raw := range []string{"c-91", "c00042", "cookie"} {
				if strings.Contains(s, raw) || strings.Contains(s, hex.EncodeToString([]byte(raw))) {
					t.Errorf("%s %q carries %q", what, s, raw)
				}
			}
		}
		var receipts []string
		for i := range 10 { // 10 merges: the first two are no longer kept
			anon := identify(t, x, t0, "cookie", fmt.Sprintf("c-91%d", i))
			must(t, x.Stitched().ApplyEvent(purchase(anon, "", t0, 1)))
			l, err := x.Identify(ctx, ids("cookie", fmt.Sprintf("c-91%d", i), "crm_id", "c00042"), t0.Add(time.Minute), "login")
			must(t, err)
			if len(l.Receipts) != 1 {
				t.Fatalf("link %+v: want one merge", l)
			}
			clear("receipt", l.Receipts[0])
			receipts = append(receipts, l.Receipts[0])
		}
		_, err := x.Unmerge(ctx, receipts[0]) // no longer kept
		if !errors.Is(err, state.ErrInvalid) {
			t.Errorf("unmerge of a merge no longer kept: %v", err)
		} else {
			clear("error", err.Error())
		}
		u, err := x.Unmerge(ctx, receipts[9])
		must(t, err)
		if u.Customer != state.AnonymousID("cookie:c-919") {
			t.Errorf("unmerge answered %q", u.Customer)
		}
		_, err = x.Unmerge(ctx, receipts[9]) // undone
		if !errors.Is(err, state.ErrInvalid) {
			t.Errorf("a second unmerge: %v", err)
		} else {
			clear("error", err.Error())
		}
		// A forged receipt (another's nonce with this one's seal) opens to
		// nothing it is the receipt of.
		forged := receipts[8][:strings.IndexByte(receipts[8], '.')] + receipts[7][strings.IndexByte(receipts[7], '.'):]
		if _, err := x.Unmerge(ctx, forged); !errors.Is(err, state.ErrInvalid) {
			t.Errorf("a forged receipt: %v", err)
		}
	}}
}
