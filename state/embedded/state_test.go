package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"nba/state"
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

func testMappings(testing.TB) state.Mappings {
	var m state.Mappings
	if err := yaml.Unmarshal([]byte(testMappingsYAML), &m); err != nil {
		panic(err)
	}
	return m
}

func openStore(t testing.TB, dir string, tweak func(*state.Config)) *Store {
	t.Helper()
	cfg := state.Config{Mappings: testMappings(t), WAL: wal.Config{Dir: dir}}
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

func slot(t testing.TB, s *Store, name string) state.Slot {
	t.Helper()
	sl, _, ok := s.Slot(name)
	if !ok {
		t.Fatalf("no field %q", name)
	}
	return sl
}

func TestOverlay(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	cust := []byte("c-1")
	ev := func(typ string, at time.Time, attrs map[string]any) {
		t.Helper()
		if err := s.ApplyEvent(state.Event{Customer: "c-1", Type: typ, At: at, Attrs: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	var v state.View
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
	if err := s.ApplyEvent(state.Event{Customer: "c-1", Type: "purchase", At: t0.Add(8 * time.Hour), Attrs: map[string]any{"amount": "many"}}); err == nil {
		t.Fatal("no error for a string amount")
	}
	s.View(cust, &v)
	num("orders_30d", 3)
}

// TestCompact compacts fields the snapshot carries; reset_test.go covers
// the per-field rule (live-only fields survive a snapshot).
func TestCompact(t *testing.T) {
	dir := t.TempDir()
	carried := func(c *state.Config) {
		c.SnapshotFields = []string{"last_order_value", "orders_30d", "spend_30d", "last_purchase_at"}
	}
	s := openStore(t, dir, carried)
	for i, typ := range []string{"purchase", "purchase", "ticket_opened"} {
		if err := s.ApplyEvent(state.Event{Customer: "c", Type: typ, At: t0.Add(time.Duration(i) * time.Hour), Attrs: map[string]any{"amount": 10}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ApplyEvent(state.Event{Customer: "old", Type: "purchase", At: t0, Attrs: map[string]any{"amount": 1}}); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		var v state.View
		s.View([]byte("c"), &v)
		if _, ok := v.Number(slot(t, s, "last_order_value")); ok {
			t.Fatal("value stamped before the as-of is visible")
		}
		if n, ok := v.Number(slot(t, s, "open_tickets")); !ok || n != 1 {
			t.Fatalf("open_tickets = %v %v", n, ok)
		}
		// Dropped from memory, not only hidden (Model.Compacted frees the
		// overlay itself: TestCompactedFreesOverlay).
		if c, _ := s.Get(context.Background(), "old"); c != nil && len(s.Dump(c, 0).Fields) != 0 {
			t.Fatalf("fully covered overlay kept in memory: %+v", s.Dump(c, 0).Fields)
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
	s.ApplyEvent(state.Event{Customer: "c", Type: "purchase", At: t0.Add(5 * time.Hour), Attrs: map[string]any{"amount": 7}})
	var v state.View
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

// TestCountSubHourExact checks the exact list: a sub-hour window with few
// events is counted exactly even when the hour bucket holds more.
func TestCountSubHourExact(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	for i := range 5 {
		at := t0.Add(time.Duration(i*10) * time.Minute) // 12:00 .. 12:40
		if err := s.RecordContact(state.Contact{Customer: "c", Action: "a", Channel: "sms", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	var v state.View
	s.View([]byte("c"), &v)
	now := t0.Add(45 * time.Minute)
	if n := v.Count(state.KindChannel, "sms", state.Impression, 15*time.Minute, now); n != 1 {
		t.Fatalf("15 min count %d, want 1", n)
	}
	if n := v.Count(state.KindAction, "a", state.Impression, 30*time.Minute, now); n != 3 {
		t.Fatalf("30 min count %d, want 3", n)
	}
}

func TestBounds(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *state.Config) {
		c.MaxEventsPerCustomer = 5
		c.MaxKeysPerCustomer = 4
		c.MaxJourneysPerCustomer = 2
	})
	for i := range 12 {
		c := state.Contact{Customer: "c", Action: fmt.Sprintf("a%d", i%3), Channel: "web", Value: float64(i), At: t0.Add(time.Duration(i) * time.Minute)}
		if err := s.RecordContact(c); err != nil {
			t.Fatal(err)
		}
	}
	var v state.View
	s.View([]byte("c"), &v)
	hist := v.History(nil, 100)
	if len(hist) != 5 || hist[0].Value != 11 || hist[4].Value != 7 || hist[0].Customer != "c" {
		t.Fatalf("history %+v", hist)
	}
	// 3 actions + 1 channel = 4 keys: no eviction yet.
	if st := s.Stats(); st.HistoryEvicted != 7 || st.KeysEvicted != 0 {
		t.Fatalf("stats %+v", s.Stats())
	}
	s.RecordContact(state.Contact{Customer: "c", Action: "a9", At: t0.Add(time.Hour)})
	s.View([]byte("c"), &v)
	if s.Stats().KeysEvicted != 1 || v.Count(state.KindAction, "a9", state.Impression, time.Hour, t0.Add(time.Hour)) != 1 {
		t.Fatal("new key not kept")
	}
	// The least recently updated key (a0 at minute 9... a0 is at 9, a1 at 10, a2 at 11, web at 11) went.
	if _, ok := v.Last(state.KindAction, "a0", state.Impression); ok {
		t.Fatal("oldest key not evicted")
	}
	for i, j := range []string{"j1", "j2", "j3"} {
		st := state.JourneyActive
		if j == "j1" {
			st = state.JourneyCompleted
		}
		s.SetJourney(state.JourneyUpdate{Customer: "c", Journey: j, Status: st, At: t0.Add(time.Duration(i) * time.Hour)})
	}
	s.View([]byte("c"), &v)
	if _, ok := v.Journey("j1"); ok || v.Journeys() != 2 || s.Stats().JourneysEvicted != 1 {
		t.Fatal("completed journey not evicted first")
	}
}

func TestWriteValidation(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *state.Config) { c.MaxStringBytes = 8 })
	bad := []state.Contact{
		{Action: "a", At: t0},
		{Customer: "c", At: t0},
		{Customer: "c", Action: "a"},
		{Customer: "c", Action: "a", Outcome: 17, At: t0},
		{Customer: "c", Action: "much-too-long", At: t0},
	}
	for i, c := range bad {
		// A bad contact in a batch rejects the whole batch.
		if err := s.RecordContact(state.Contact{Customer: "ok", Action: "a", At: t0}, c); err == nil {
			t.Fatalf("contact %d: no error", i)
		}
	}
	var v state.View
	if s.View([]byte("ok"), &v) {
		t.Fatal("part of a rejected batch is visible")
	}
	if err := s.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "j", Step: -1, At: t0}); err == nil {
		t.Fatal("negative step accepted")
	}
	s.Close()
	if err := s.RecordContact(state.Contact{Customer: "late", Action: "a", At: t0}); err == nil {
		t.Fatal("write after close accepted")
	}
	if s.View([]byte("late"), &v) {
		t.Fatal("failed write is visible")
	}
}

func TestJourney(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	up := func(step int, st state.JourneyStatus, at time.Time) {
		t.Helper()
		if err := s.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "onboarding", Step: step, Status: st, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(s *Store, step int, st state.JourneyStatus, entered, stepAt time.Time) {
		t.Helper()
		var v state.View
		s.View([]byte("c"), &v)
		j, ok := v.Journey("onboarding")
		if !ok || j.Step != step || j.Status != st || !j.EnteredAt.Equal(entered) || !j.StepAt.Equal(stepAt) {
			t.Fatalf("journey %+v, %v", j, ok)
		}
	}
	up(0, 0, t0)
	up(1, state.JourneyActive, t0.Add(time.Hour))
	up(1, state.JourneyActive, t0.Add(2*time.Hour)) // same step: step time kept
	want(s, 1, state.JourneyActive, t0, t0.Add(time.Hour))
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	up(2, state.JourneyCompleted, t0.Add(3*time.Hour))
	want(s, 2, state.JourneyCompleted, t0, t0.Add(3*time.Hour))
	s.Close()
	s2 := openStore(t, dir, nil) // checkpoint + replay
	want(s2, 2, state.JourneyCompleted, t0, t0.Add(3*time.Hour))
	if st := s2.Stats(); st.Replayed != 1 {
		t.Fatalf("replayed %d records, want 1 after the checkpoint", st.Replayed)
	}
	s = s2
	up(0, state.JourneyActive, t0.Add(5*time.Hour)) // re-entry
	want(s2, 0, state.JourneyActive, t0.Add(5*time.Hour), t0.Add(5*time.Hour))
}

// dump renders the whole state canonically, for comparisons.
func dump(s *Store) string {
	var lines []string
	for i := range s.stripes {
		for id, e := range s.stripes[i].m {
			cs := e.p.Load()
			lines = append(lines, fmt.Sprintf("%s lsn=%d%s", id, cs.Seq(), s.Describe(cs)))
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
	s := openStore(t, dir, func(c *state.Config) { c.Stripes = 4; c.WAL.SyncInterval = 100 * time.Microsecond })
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
					err = s.RecordContact(state.Contact{Customer: cust, Action: fmt.Sprintf("a%d", i%4), Group: "g", Channel: "web", Outcome: state.Outcome(i % 6), At: at})
				case 1:
					err = s.ApplyEvent(state.Event{Customer: cust, Type: "purchase", At: at, Attrs: map[string]any{"amount": i}})
				default:
					err = s.SetJourney(state.JourneyUpdate{Customer: cust, Journey: "j", Step: i % 5, At: at})
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
	s2 := openStore(t, dir, func(c *state.Config) { c.Stripes = 8 })
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
	for name, tweak := range map[string]func(*state.Config){
		"stripes":   func(c *state.Config) { c.Stripes = 3 },
		"window":    func(c *state.Config) { c.MaxWindow = 500 * 24 * time.Hour },
		"events":    func(c *state.Config) { c.MaxEventsPerCustomer = -1 },
		"no dir":    func(c *state.Config) { c.WAL.Dir = "" },
		"mappings":  func(c *state.Config) { c.Mappings.Events = map[string][]state.Op{"x": {{}}} },
		"ckpt time": func(c *state.Config) { c.CheckpointEvery = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := state.Config{WAL: wal.Config{Dir: t.TempDir()}}
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
		s.RecordContact(state.Contact{Customer: "c", Action: fmt.Sprintf("a%d", i%10), Group: "g", Channel: "web", At: t0.Add(time.Duration(i) * time.Hour)})
	}
	s.ApplyEvent(state.Event{Customer: "c", Type: "upgrade", At: t0, Attrs: map[string]any{"tier": "gold", "vip": true}})
	s.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "j", At: t0})
	id := []byte("c")
	tier := slot(t, s, "tier")
	now := t0.Add(60 * time.Hour)
	var v state.View
	hist := make([]state.Contact, 0, 10)
	sink := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if !s.View(id, &v) {
			t.Fatal("not found")
		}
		sink += v.Count(state.KindAction, "a3", state.Impression, 7*24*time.Hour, now)
		sink += v.Count(state.KindChannel, "web", state.Impression, time.Hour, now)
		if _, ok := v.Last(state.KindGroup, "g", state.Impression); ok {
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
	s := openStore(t, dir, func(c *state.Config) { c.CheckpointEvery = time.Millisecond })
	for i := range 40 {
		if err := s.RecordContact(state.Contact{Customer: "c", Action: "a", At: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
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
