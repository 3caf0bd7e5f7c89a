package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// The model's own tests; the embedded store's are in package state/embedded.

const testMappingsYAML = `
fields:
  last_order_value: number
  tier: category
  vip: bool
  birthday: time
events:
  purchase:
    - {set: last_order_value, from: amount}
    - {incr: orders_30d}
    - {incr: spend_30d, from: amount}
    - {stamp: last_purchase_at}
  signup:
    - {set: tier, value: bronze}
    - {set: vip, value: false}
    - {set: birthday, from: dob}
  ticket_opened:
    - {incr: open_tickets, by: 1}
  ticket_closed:
    - {incr: open_tickets, by: -1}
  upgrade:
    - {set: tier, from: tier}
    - {set: vip, from: vip}
`

func testMappings(testing.TB) Mappings {
	var m Mappings
	if err := yaml.Unmarshal([]byte(testMappingsYAML), &m); err != nil {
		panic(err)
	}
	return m
}

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestMappingsValidation(t *testing.T) {
	f := func(y, wantErr string) {
		t.Helper()
		var m Mappings
		if err := yaml.Unmarshal([]byte(y), &m); err != nil {
			t.Fatal(err)
		}
		_, err := compile(m, nil)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("mappings %q: error %v, want %q", y, err, wantErr)
		}
	}
	f(`events: {purchase: [{set: x, incr: x}]}`, "events.purchase[0]: want exactly one of set, incr, stamp")
	f(`events: {purchase: [{}]}`, "events.purchase[0]: want exactly one")
	f(`events: {purchase: [{incr: n}, {set: x}]}`, "events.purchase[1]: set \"x\" needs exactly one of from, value")
	f(`events: {purchase: [{set: x, from: a}]}`, "events.purchase[0]: set \"x\" from attribute \"a\": declare the field's type")
	f(`events: {purchase: [{incr: x}, {stamp: x}]}`, "events.purchase[1]: field \"x\" is number, not time")
	f(`fields: {x: colour}`, "fields.x: unknown type")
	f(`events: {a: [{stamp: t, from: z}]}`, "events.a[0]: stamp takes no from")
	f(`events: {a: [{incr: n, value: 3}]}`, "events.a[0]: incr takes from or by")
	f(`events: {a: [{set: n, value: [1]}]}`, "events.a[0]: value: unsupported constant")
	f(`events: {a: [{set: n, value: 1, by: 2}]}`, "events.a[0]: by is only for incr")

	c, err := compile(testMappings(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]FieldType{"last_order_value": TypeNumber, "orders_30d": TypeNumber, "spend_30d": TypeNumber,
		"last_purchase_at": TypeTime, "tier": TypeCategory, "vip": TypeBool, "birthday": TypeTime, "open_tickets": TypeNumber}
	if len(c.fields) != len(want) {
		t.Fatalf("fields %v", c.fields)
	}
	for _, fi := range c.fields {
		if want[fi.Name] != fi.Type || c.slots[fi.Name] != fi.Slot {
			t.Fatalf("field %+v", fi)
		}
	}
}

// refCount counts contacts exactly, and with the window rounded out to the
// bucket granularity the package documents.
func refCount(times []time.Time, window time.Duration, now time.Time) (exact, rounded int) {
	start := now.Add(-window)
	gran := time.Hour
	if window > 24*time.Hour {
		gran = 24 * time.Hour
	}
	rstart := time.Unix(0, floorDiv(start.UnixNano(), int64(gran))*int64(gran))
	rend := time.Unix(0, (floorDiv(now.UnixNano(), int64(gran))+1)*int64(gran))
	for _, at := range times {
		if at.After(start) && !at.After(now) {
			exact++
		}
		if !at.Before(rstart) && at.Before(rend) {
			rounded++
		}
	}
	return exact, rounded
}

func TestCapWindowCounts(t *testing.T) {
	m, err := NewModel(Config{Mappings: testMappings(t)})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(7, 7))
	actions := []string{"a1", "a2", "a3"}
	groups := map[string]string{"a1": "g-loans", "a2": "g-loans", "a3": "g-cards"}
	channels := []string{"web", "email"}
	type key struct {
		k   Kind
		key string
		o   Outcome
	}
	times := map[key][]time.Time{}
	end := t0.Add(40 * 24 * time.Hour)
	var batch []Contact
	for range 600 {
		a := actions[rnd.IntN(len(actions))]
		ch := channels[rnd.IntN(len(channels))]
		o := Outcome(rnd.IntN(2)) // impression or click
		at := end.Add(-time.Duration(rnd.Int64N(int64(40 * 24 * time.Hour))))
		batch = append(batch, Contact{Customer: "c", Action: a, Group: groups[a], Channel: ch, Outcome: o, At: at})
		times[key{KindAction, a, o}] = append(times[key{KindAction, a, o}], at)
		times[key{KindGroup, groups[a], o}] = append(times[key{KindGroup, groups[a], o}], at)
		times[key{KindChannel, ch, o}] = append(times[key{KindChannel, ch, o}], at)
	}
	// Contacts arrive roughly in time order, in batches.
	slices.SortFunc(batch, func(a, b Contact) int { return a.At.Compare(b.At) + rnd.IntN(1) })
	var c *Customer
	for _, x := range batch {
		r, err := m.ContactRecord(x)
		if err != nil {
			t.Fatal(err)
		}
		if c, _, err = m.Apply(c, &r, 0); err != nil {
			t.Fatal(err)
		}
	}
	var v View
	m.View(c, 0, &v)
	windows := []time.Duration{10 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour}
	for k, ts := range times {
		for _, w := range windows {
			for _, now := range []time.Time{end, end.Add(5*time.Hour + 13*time.Minute), end.Add(2 * 24 * time.Hour)} {
				t.Run(fmt.Sprintf("%v/%s/%v/%v", k.k, k.key, k.o, w), func(t *testing.T) {
					// Only events up to now were recorded "by now" in a
					// real system; the reference counts the same events.
					exact, rounded := refCount(ts, w, now)
					got := v.Count(k.k, k.key, k.o, w, now)
					if got < exact || got > rounded {
						t.Fatalf("count = %d, want within [%d exact, %d rounded out]", got, exact, rounded)
					}
					if exact < recentN && got != exact && now == end {
						t.Fatalf("count = %d, want exactly %d", got, exact)
					}
				})
			}
		}
		last, ok := v.Last(k.k, k.key, k.o)
		if !ok || !last.Equal(slices.MaxFunc(ts, time.Time.Compare)) {
			t.Fatalf("last %v = %v", k, last)
		}
	}
	if n := v.Count(KindAction, "nope", Click, time.Hour, end); n != 0 {
		t.Fatalf("unknown key count %d", n)
	}
	if _, ok := v.Last(KindAction, "a1", Reject); ok {
		t.Fatal("last reject without rejects")
	}
}

func testReservation(c, d string, at time.Time) Reservation {
	return Reservation{Customer: c, Decision: d, Action: "a", Group: "g", Channel: "email", At: at, Expires: at.Add(time.Hour),
		Caps: []ExactCap{{Kind: KindChannel, Key: "email", Window: 24 * time.Hour, Max: 3}, {Kind: KindGroup, Key: "g", Window: time.Hour, Max: 2}}}
}

// TestCustomerValueCarriesReservations: a customer value with
// reservations round-trips; one without is written in the format before
// reservations, byte for byte, so values already stored (and older
// processes) still read it.
func TestCustomerValueCarriesReservations(t *testing.T) {
	m, err := NewModel(Config{Mappings: testMappings(t)})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(r Record, err error) Record {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	apply := func(c *Customer, r Record) *Customer {
		t.Helper()
		next, _, err := m.Apply(c, &r, 0)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	c := apply(nil, rec(m.ContactRecord(Contact{Customer: "c", Action: "a", Group: "h", Channel: "web", At: t0, ID: "k"})))
	v2 := m.AppendCustomer(nil, c)
	if v2[0] == 0 || !bytes.Equal(v2, m.appendCustomer(nil, c)) {
		t.Fatalf("a value without reservations is not in the version 2 format: %x", v2)
	}
	if d, err := m.DecodeCustomer(v2); err != nil || len(d.res) != 0 || d.histN != 1 {
		t.Fatalf("version 2 value: %v %+v", err, d)
	}
	c = apply(c, rec(m.ReserveRecord(testReservation("c", "d1", t0))))
	c = apply(c, rec(m.ReserveRecord(testReservation("c", "d2", t0.Add(time.Minute)))))
	v3 := m.AppendCustomer(nil, c)
	d, err := m.DecodeCustomer(v3)
	if err != nil {
		t.Fatal(err)
	}
	if again := m.AppendCustomer(nil, d); !bytes.Equal(v3, again) {
		t.Errorf("round trip changed the value:\n%x\n%x", v3, again)
	}
	var v View
	m.View(d, 0, &v)
	if n := v.Reserved(KindGroup, "g", t0.Add(2*time.Minute)); n != 2 {
		t.Errorf("decoded value: %d reserved under group g, want 2", n)
	}
	for _, bad := range [][]byte{v3[:len(v3)-1], append(v3, 0), append([]byte{0, 9}, v2...)} {
		if _, err := m.DecodeCustomer(bad); err == nil {
			t.Errorf("decoded a corrupt value %x", bad)
		}
	}
}
