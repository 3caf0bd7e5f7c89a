package state

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"nba/state/wal"
)

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

func openStore(t testing.TB, dir string, tweak func(*Config)) *Store {
	t.Helper()
	cfg := Config{Mappings: testMappings(t), WAL: wal.Config{Dir: dir}}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func slot(t testing.TB, s *Store, name string) Slot {
	t.Helper()
	sl, _, ok := s.Slot(name)
	if !ok {
		t.Fatalf("no field %q", name)
	}
	return sl
}

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

func TestOverlay(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	cust := []byte("c-1")
	ev := func(typ string, at time.Time, attrs map[string]any) {
		t.Helper()
		if err := s.ApplyEvent(Event{Customer: "c-1", Type: typ, At: at, Attrs: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	var v View
	if s.View(cust, &v) {
		t.Fatal("unknown customer found")
	}
	ev("signup", t0, map[string]any{"dob": "1990-05-01T00:00:00Z"})
	ev("purchase", t0.Add(time.Hour), map[string]any{"amount": 30})
	ev("purchase", t0.Add(2*time.Hour), map[string]any{"amount": 12.5})
	ev("ticket_opened", t0.Add(3*time.Hour), nil)
	ev("ticket_opened", t0.Add(4*time.Hour), nil)
	ev("ticket_closed", t0.Add(5*time.Hour), nil)
	ev("upgrade", t0.Add(6*time.Hour), map[string]any{"tier": "gold", "vip": true})
	ev("unknown_type", t0, nil)
	ev("purchase", t0.Add(7*time.Hour), map[string]any{}) // no amount: only incr and stamp apply
	if !s.View(cust, &v) {
		t.Fatal("customer not found")
	}
	num := func(name string, want float64) {
		t.Helper()
		if got, ok := v.Number(slot(t, s, name)); !ok || got != want {
			t.Fatalf("%s = %v, %v; want %v", name, got, ok, want)
		}
	}
	num("last_order_value", 12.5)
	num("orders_30d", 3)
	num("spend_30d", 42.5)
	num("open_tickets", 1)
	if got, ok := v.Time(slot(t, s, "last_purchase_at")); !ok || !got.Equal(t0.Add(7*time.Hour)) {
		t.Fatalf("last_purchase_at = %v", got)
	}
	if got, ok := v.Time(slot(t, s, "birthday")); !ok || !got.Equal(time.Date(1990, 5, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("birthday = %v", got)
	}
	if got, ok := v.Category(slot(t, s, "tier")); !ok || got != "gold" {
		t.Fatalf("tier = %q", got)
	}
	if got, ok := v.Bool(slot(t, s, "vip")); !ok || !got {
		t.Fatalf("vip = %v %v", got, ok)
	}
	if _, ok := v.Number(slot(t, s, "tier")); ok {
		t.Fatal("category read as number")
	}
	if at, ok := v.StampedAt(slot(t, s, "spend_30d")); !ok || !at.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("spend_30d stamped at %v", at)
	}
	st := s.Stats()
	if st.UnmappedEvents != 1 || st.MissingAttrs != 2 || st.Events != 8 {
		t.Fatalf("stats %+v", st)
	}
	// A wrong attribute type is an error and changes nothing.
	if err := s.ApplyEvent(Event{Customer: "c-1", Type: "purchase", At: t0.Add(8 * time.Hour), Attrs: map[string]any{"amount": "many"}}); err == nil {
		t.Fatal("no error for a string amount")
	}
	s.View(cust, &v)
	num("orders_30d", 3)
}

// TestCompact compacts fields the snapshot carries; reset_test.go covers
// the per-field rule (live-only fields survive a snapshot).
func TestCompact(t *testing.T) {
	dir := t.TempDir()
	carried := func(c *Config) {
		c.SnapshotFields = []string{"last_order_value", "orders_30d", "spend_30d", "last_purchase_at"}
	}
	s := openStore(t, dir, carried)
	for i, typ := range []string{"purchase", "purchase", "ticket_opened"} {
		if err := s.ApplyEvent(Event{Customer: "c", Type: typ, At: t0.Add(time.Duration(i) * time.Hour), Attrs: map[string]any{"amount": 10}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ApplyEvent(Event{Customer: "old", Type: "purchase", At: t0, Attrs: map[string]any{"amount": 1}}); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		var v View
		s.View([]byte("c"), &v)
		if _, ok := v.Number(slot(t, s, "last_order_value")); ok {
			t.Fatal("value stamped before the as-of is visible")
		}
		if n, ok := v.Number(slot(t, s, "open_tickets")); !ok || n != 1 {
			t.Fatalf("open_tickets = %v %v", n, ok)
		}
		if s.View([]byte("old"), &v); v.Found() && v.c.overlay != nil {
			t.Fatal("fully covered overlay kept in memory")
		}
	}
	if err := s.Compact(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	check(s)
	// An earlier as-of is a no-op.
	if err := s.Compact(t0); err != nil {
		t.Fatal(err)
	}
	// New events after the as-of count from zero.
	s.ApplyEvent(Event{Customer: "c", Type: "purchase", At: t0.Add(5 * time.Hour), Attrs: map[string]any{"amount": 7}})
	var v View
	s.View([]byte("c"), &v)
	if n, _ := v.Number(slot(t, s, "orders_30d")); n != 1 {
		t.Fatalf("orders_30d after compaction = %v, want 1", n)
	}
	s.Close()
	// The compaction survives a restart (replayed from the log).
	s2 := openStore(t, dir, carried)
	s2.View([]byte("c"), &v)
	if n, _ := v.Number(slot(t, s2, "orders_30d")); n != 1 {
		t.Fatalf("after restart orders_30d = %v, want 1", n)
	}
	if _, ok := v.Number(slot(t, s2, "open_tickets")); !ok {
		t.Fatal("open_tickets lost")
	}
	s2.View([]byte("old"), &v)
	if _, ok := v.Number(slot(t, s2, "orders_30d")); ok {
		t.Fatal("compacted value back after restart")
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
	s := openStore(t, t.TempDir(), nil)
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
	for i := 0; i < len(batch); i += 50 {
		if err := s.RecordContact(batch[i:min(i+50, len(batch))]...); err != nil {
			t.Fatal(err)
		}
	}
	var v View
	s.View([]byte("c"), &v)
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

// TestCountSubHourExact checks the exact list: a sub-hour window with few
// events is counted exactly even when the hour bucket holds more.
func TestCountSubHourExact(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	for i := range 5 {
		at := t0.Add(time.Duration(i*10) * time.Minute) // 12:00 .. 12:40
		if err := s.RecordContact(Contact{Customer: "c", Action: "a", Channel: "sms", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	var v View
	s.View([]byte("c"), &v)
	now := t0.Add(45 * time.Minute)
	if n := v.Count(KindChannel, "sms", Impression, 15*time.Minute, now); n != 1 {
		t.Fatalf("15 min count %d, want 1", n)
	}
	if n := v.Count(KindAction, "a", Impression, 30*time.Minute, now); n != 3 {
		t.Fatalf("30 min count %d, want 3", n)
	}
}

func TestBounds(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *Config) {
		c.MaxEventsPerCustomer = 5
		c.MaxKeysPerCustomer = 4
		c.MaxJourneysPerCustomer = 2
	})
	for i := range 12 {
		c := Contact{Customer: "c", Action: fmt.Sprintf("a%d", i%3), Channel: "web", Value: float64(i), At: t0.Add(time.Duration(i) * time.Minute)}
		if err := s.RecordContact(c); err != nil {
			t.Fatal(err)
		}
	}
	var v View
	s.View([]byte("c"), &v)
	hist := v.History(nil, 100)
	if len(hist) != 5 || hist[0].Value != 11 || hist[4].Value != 7 || hist[0].Customer != "c" {
		t.Fatalf("history %+v", hist)
	}
	// 3 actions + 1 channel = 4 keys: no eviction yet.
	if st := s.Stats(); st.HistoryEvicted != 7 || st.KeysEvicted != 0 {
		t.Fatalf("stats %+v", s.Stats())
	}
	s.RecordContact(Contact{Customer: "c", Action: "a9", At: t0.Add(time.Hour)})
	s.View([]byte("c"), &v)
	if s.Stats().KeysEvicted != 1 || v.Count(KindAction, "a9", Impression, time.Hour, t0.Add(time.Hour)) != 1 {
		t.Fatal("new key not kept")
	}
	// The least recently updated key (a0 at minute 9... a0 is at 9, a1 at 10, a2 at 11, web at 11) went.
	if _, ok := v.Last(KindAction, "a0", Impression); ok {
		t.Fatal("oldest key not evicted")
	}
	for i, j := range []string{"j1", "j2", "j3"} {
		st := JourneyActive
		if j == "j1" {
			st = JourneyCompleted
		}
		s.SetJourney(JourneyUpdate{Customer: "c", Journey: j, Status: st, At: t0.Add(time.Duration(i) * time.Hour)})
	}
	s.View([]byte("c"), &v)
	if _, ok := v.Journey("j1"); ok || v.Journeys() != 2 || s.Stats().JourneysEvicted != 1 {
		t.Fatal("completed journey not evicted first")
	}
}

func TestWriteValidation(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *Config) { c.MaxStringBytes = 8 })
	bad := []Contact{
		{Action: "a", At: t0},
		{Customer: "c", At: t0},
		{Customer: "c", Action: "a"},
		{Customer: "c", Action: "a", Outcome: 17, At: t0},
		{Customer: "c", Action: "much-too-long", At: t0},
	}
	for i, c := range bad {
		// A bad contact in a batch rejects the whole batch.
		if err := s.RecordContact(Contact{Customer: "ok", Action: "a", At: t0}, c); err == nil {
			t.Fatalf("contact %d: no error", i)
		}
	}
	var v View
	if s.View([]byte("ok"), &v) {
		t.Fatal("part of a rejected batch is visible")
	}
	if err := s.SetJourney(JourneyUpdate{Customer: "c", Journey: "j", Step: -1, At: t0}); err == nil {
		t.Fatal("negative step accepted")
	}
	s.Close()
	if err := s.RecordContact(Contact{Customer: "late", Action: "a", At: t0}); err == nil {
		t.Fatal("write after close accepted")
	}
	if s.View([]byte("late"), &v) {
		t.Fatal("failed write is visible")
	}
}

func TestJourney(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	up := func(step int, st JourneyStatus, at time.Time) {
		t.Helper()
		if err := s.SetJourney(JourneyUpdate{Customer: "c", Journey: "onboarding", Step: step, Status: st, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(s *Store, step int, st JourneyStatus, entered, stepAt time.Time) {
		t.Helper()
		var v View
		s.View([]byte("c"), &v)
		j, ok := v.Journey("onboarding")
		if !ok || j.Step != step || j.Status != st || !j.EnteredAt.Equal(entered) || !j.StepAt.Equal(stepAt) {
			t.Fatalf("journey %+v, %v", j, ok)
		}
	}
	up(0, 0, t0)
	up(1, JourneyActive, t0.Add(time.Hour))
	up(1, JourneyActive, t0.Add(2*time.Hour)) // same step: step time kept
	want(s, 1, JourneyActive, t0, t0.Add(time.Hour))
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	up(2, JourneyCompleted, t0.Add(3*time.Hour))
	want(s, 2, JourneyCompleted, t0, t0.Add(3*time.Hour))
	s.Close()
	s2 := openStore(t, dir, nil) // checkpoint + replay
	want(s2, 2, JourneyCompleted, t0, t0.Add(3*time.Hour))
	if st := s2.Stats(); st.Replayed != 1 {
		t.Fatalf("replayed %d records, want 1 after the checkpoint", st.Replayed)
	}
	s = s2
	up(0, JourneyActive, t0.Add(5*time.Hour)) // re-entry
	want(s2, 0, JourneyActive, t0.Add(5*time.Hour), t0.Add(5*time.Hour))
}

// dump renders the whole state canonically, for comparisons.
func dump(s *Store) string {
	var lines []string
	for i := range s.stripes {
		for id, e := range s.stripes[i].m {
			cs := e.p.Load()
			var b strings.Builder
			fmt.Fprintf(&b, "%s lsn=%d", id, cs.lsn)
			for j, v := range cs.overlay {
				if v.at != 0 {
					fmt.Fprintf(&b, " %s=%v/%d/%q@%d", s.m.fields[j].Name, v.num, v.unix, v.str, v.at)
				}
			}
			var aggs []string
			for _, ref := range cs.aggs {
				a := ref.a
				aggs = append(aggs, fmt.Sprintf("%v:%s:%v:%d:%v:%d:%v:%d:%v", a.kind, a.key, a.outcome, a.seen, a.recent, a.hourTop, a.hours, a.dayTop, a.days))
			}
			slices.Sort(aggs)
			fmt.Fprintf(&b, " aggs=%v", aggs)
			var v View
			v.c = cs
			for _, c := range v.History(nil, cs.histN) {
				fmt.Fprintf(&b, " h=%s/%s/%s/%v/%v/%d", c.Action, c.Group, c.Channel, c.Outcome, c.Value, c.At.UnixNano())
			}
			for _, j := range cs.journeys {
				fmt.Fprintf(&b, " j=%s/%d/%v/%d/%d", j.Journey, j.Step, j.Status, j.EnteredAt.UnixNano(), j.StepAt.UnixNano())
			}
			for _, k := range cs.ids {
				fmt.Fprintf(&b, " id=%d/%s", k.kind, k.id)
			}
			for _, p := range cs.consent {
				fmt.Fprintf(&b, " consent=%s/%s/%v", p.channel, p.purpose, p.trail)
			}
			if cs.ident != nil {
				fmt.Fprintf(&b, " ident=%x", appendIdent(nil, cs.ident))
			}
			lines = append(lines, b.String())
		}
	}
	slices.Sort(lines)
	return fmt.Sprintf("lsn=%d asof=%d\n%s", s.lsn.Load(), s.asOf.Load(), strings.Join(lines, "\n"))
}

// TestCheckpointUnderLoad checkpoints while writers run and checks that the
// state after a restart (checkpoint + replay) equals the state before: no
// record lost, none applied twice.
func TestCheckpointUnderLoad(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, func(c *Config) { c.Stripes = 4; c.WAL.SyncInterval = 100 * time.Microsecond })
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 150 {
				cust := fmt.Sprintf("c%d", rnd.IntN(10))
				at := t0.Add(time.Duration(w*1000+i) * time.Second)
				var err error
				switch i % 3 {
				case 0:
					err = s.RecordContact(Contact{Customer: cust, Action: fmt.Sprintf("a%d", i%4), Group: "g", Channel: "web", Outcome: Outcome(i % 6), At: at})
				case 1:
					err = s.ApplyEvent(Event{Customer: cust, Type: "purchase", At: at, Attrs: map[string]any{"amount": i}})
				default:
					err = s.SetJourney(JourneyUpdate{Customer: cust, Journey: "j", Step: i % 5, At: at})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	ckpts := 0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for loop := true; loop; {
		select {
		case <-done:
			loop = false
		default:
			if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			ckpts++
		}
	}
	before := dump(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, func(c *Config) { c.Stripes = 8 })
	if after := dump(s2); after != before {
		t.Fatalf("state differs after %d checkpoints and a restart:\nbefore:\n%s\nafter:\n%s", ckpts, before, after)
	}
	if st := s2.Stats(); st.Customers != 10 {
		t.Fatalf("stats %+v", st)
	}
	// And once more through a checkpoint taken at rest.
	if err := s2.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	s3 := openStore(t, dir, nil)
	if after := dump(s3); after != before {
		t.Fatal("state differs after a checkpoint at rest")
	}
}

func TestConfigValidation(t *testing.T) {
	for name, tweak := range map[string]func(*Config){
		"stripes":   func(c *Config) { c.Stripes = 3 },
		"window":    func(c *Config) { c.MaxWindow = 500 * 24 * time.Hour },
		"events":    func(c *Config) { c.MaxEventsPerCustomer = -1 },
		"no dir":    func(c *Config) { c.WAL.Dir = "" },
		"mappings":  func(c *Config) { c.Mappings.Events = map[string][]Op{"x": {{}}} },
		"ckpt time": func(c *Config) { c.CheckpointEvery = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{WAL: wal.Config{Dir: t.TempDir()}}
			tweak(&cfg)
			if s, err := Open(cfg); err == nil {
				s.Close()
				t.Fatal("no error")
			}
		})
	}
}

func TestViewAllocs(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	for i := range 50 {
		s.RecordContact(Contact{Customer: "c", Action: fmt.Sprintf("a%d", i%10), Group: "g", Channel: "web", At: t0.Add(time.Duration(i) * time.Hour)})
	}
	s.ApplyEvent(Event{Customer: "c", Type: "upgrade", At: t0, Attrs: map[string]any{"tier": "gold", "vip": true}})
	s.SetJourney(JourneyUpdate{Customer: "c", Journey: "j", At: t0})
	id := []byte("c")
	tier := slot(t, s, "tier")
	now := t0.Add(60 * time.Hour)
	var v View
	hist := make([]Contact, 0, 10)
	sink := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if !s.View(id, &v) {
			t.Fatal("not found")
		}
		sink += v.Count(KindAction, "a3", Impression, 7*24*time.Hour, now)
		sink += v.Count(KindChannel, "web", Impression, time.Hour, now)
		if _, ok := v.Last(KindGroup, "g", Impression); ok {
			sink++
		}
		if c, ok := v.Category(tier); ok {
			sink += len(c)
		}
		if j, ok := v.Journey("j"); ok {
			sink += j.Step
		}
		hist = v.History(hist[:0], 10)
	})
	if allocs != 0 {
		t.Fatalf("View + reads allocate %.1f times per call, want 0", allocs)
	}
	if sink == 0 {
		t.Fatal("reads found nothing")
	}
}

func TestBackgroundCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, func(c *Config) { c.CheckpointEvery = time.Millisecond })
	for i := range 40 {
		if err := s.RecordContact(Contact{Customer: "c", Action: "a", At: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	before := dump(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after := dump(openStore(t, dir, nil)); after != before {
		t.Fatalf("state differs after background checkpoints:\n%s\n%s", before, after)
	}
}
