package redisstate_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"nba/state"
	"nba/state/embedded"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
	"nba/state/stateio"
	"nba/state/statetest"
	"nba/state/wal"
)

// portConfig has small per-customer bounds, so that a round trip carries
// counters that count more contacts than the history keeps.
func portConfig(t *testing.T) state.Config {
	t.Helper()
	var cfg state.Config
	if err := yaml.Unmarshal([]byte(statetest.Mappings), &cfg.Mappings); err != nil {
		t.Fatal(err)
	}
	cfg.MaxEventsPerCustomer, cfg.MaxKeysPerCustomer, cfg.MaxJourneysPerCustomer, cfg.MaxIDsPerCustomer = 5, 8, 3, 4
	cfg.MaxCustomers = -1
	return cfg
}

func openEmbedded(t *testing.T, cfg state.Config) *embedded.Store {
	t.Helper()
	cfg.WAL = wal.Config{Dir: filepath.Join(t.TempDir(), "state")}
	s, err := embedded.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fill writes contacts (beyond the bounds), events with journey moves,
// journey updates and idempotency keys for 20 customers.
func fill(t *testing.T, s state.Backend) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(3, 4))
	w := s.(interface {
		RecordContact(...state.Contact) error
		ApplyEvent(...state.Event) error
		SetJourney(...state.JourneyUpdate) error
	})
	for i := range 400 {
		cust := fmt.Sprintf("c%d", rnd.IntN(20))
		at := t0.Add(time.Duration(rnd.IntN(30*24*60)) * time.Minute)
		id := ""
		if rnd.IntN(3) == 0 {
			id = fmt.Sprintf("k%d", i)
		}
		var err error
		switch rnd.IntN(4) {
		case 0, 1:
			err = w.RecordContact(state.Contact{Customer: cust, Action: fmt.Sprintf("a%d", rnd.IntN(12)), Group: fmt.Sprintf("g%d", rnd.IntN(3)),
				Channel: []string{"web", "email", ""}[rnd.IntN(3)], Outcome: state.Outcome(rnd.IntN(3)), Value: float64(rnd.IntN(5)) / 4, At: at, ID: id})
		case 2:
			e := state.Event{Customer: cust, At: at, ID: id, Type: "purchase", Attrs: map[string]any{"amount": float64(rnd.IntN(100))}}
			if rnd.IntN(2) == 0 {
				e.Type, e.Attrs = "upgrade", map[string]any{"tier": "gold", "vip": rnd.IntN(2) == 0}
			}
			if rnd.IntN(3) == 0 {
				e.Journeys = []state.JourneyMove{{Journey: fmt.Sprintf("j%d", rnd.IntN(4)), Step: rnd.IntN(3)}}
			}
			err = w.ApplyEvent(e)
		default:
			err = w.SetJourney(state.JourneyUpdate{Customer: cust, Journey: fmt.Sprintf("j%d", rnd.IntN(5)), Step: rnd.IntN(4),
				Status: state.JourneyStatus(1 + rnd.IntN(3)), At: at})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// export returns src's export, one customer a line, lines sorted (Each's
// order is unspecified).
func export(t *testing.T, src stateio.Source) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := stateio.Export(&buf, src); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "")
}

func importAll(t *testing.T, in string, dst stateio.Target) stateio.Counts {
	t.Helper()
	n, err := stateio.Import(strings.NewReader(in), dst, stateio.Options{Refused: func(line int, why error) {
		t.Errorf("line %d refused: %v", line, why)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestExportImportThroughRedis: an embedded state exported, imported into
// Redis, exported from Redis and imported into a new embedded state gives
// the same export at every step (history, cap-window counters, overlay,
// journeys, idempotency keys), on a standalone server and on a Cluster
// (Each visits every master); and a contact history (CSV, as
// bench/bundlegen writes it) imported into Redis gives the state importing
// it into an embedded store gives, duplicates by id included.
func TestExportImportThroughRedis(t *testing.T) {
	cfg := portConfig(t)
	src := openEmbedded(t, cfg)
	fill(t, src)
	want := export(t, src)
	if strings.Count(want, "\n") != 20 || !strings.Contains(want, `"counters"`) || !strings.Contains(want, `"journeys"`) || !strings.Contains(want, `"ids"`) {
		t.Fatalf("the source state lacks what the test needs:\n%s", want)
	}

	var csv strings.Builder
	csv.WriteString("customer_id,action,group,channel,outcome,at,value,id\n")
	for i := range 300 {
		id := ""
		if i%4 == 0 {
			id = fmt.Sprintf("h%d", i)
		}
		row := fmt.Sprintf("h%d,a%d,g%d,email,%s,%s,%d,%s\n", i%37, i%5, i%2, []string{"impression", "click", "convert"}[i%3],
			t0.Add(time.Duration(i)*time.Hour).Format(time.RFC3339), i%3, id)
		csv.WriteString(row)
		if i%20 == 0 {
			csv.WriteString(row) // a duplicate by id
		}
	}
	embedded := openEmbedded(t, cfg)
	wantCounts := importAll(t, csv.String(), embedded)
	if wantCounts.Duplicates == 0 {
		t.Fatal("the contact history has no duplicate ids")
	}
	wantContacts := export(t, embedded)
	wantAgain := importAll(t, csv.String(), embedded)
	wantContactsAgain := export(t, embedded)

	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"standalone", func(t *testing.T) string { return redistest.Start(t, redistest.Options{}).URL }},
		{"cluster", func(t *testing.T) string { return redistest.StartCluster(t, redistest.Options{}).URL }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			rb := open(t, redisstate.Config{URL: url, State: cfg, AllowVolatile: true})
			n := importAll(t, want, rb)
			if n.Customers != 20 {
				t.Errorf("imported %d customers into Redis, want 20", n.Customers)
			}
			if got := export(t, rb); got != want {
				t.Fatalf("export from Redis differs from the embedded export:\n got %s\nwant %s", got, want)
			}
			back := openEmbedded(t, cfg)
			importAll(t, export(t, rb), back)
			if got := export(t, back); got != want {
				t.Fatalf("embedded → Redis → embedded differs:\n got %s\nwant %s", got, want)
			}
			// Another process on the same Redis reads what was imported.
			other := open(t, redisstate.Config{URL: url, State: cfg, AllowVolatile: true})
			if got := export(t, other); got != want {
				t.Fatalf("another process's export differs:\n got %s\nwant %s", got, want)
			}
			// Importing again replaces: the same state.
			importAll(t, want, rb)
			if got := export(t, other); got != want {
				t.Fatalf("importing twice changed the state:\n got %s\nwant %s", got, want)
			}

			flush(t, url)
			rc := open(t, redisstate.Config{URL: url, State: cfg, AllowVolatile: true})
			got := importAll(t, csv.String(), rc)
			if got != wantCounts {
				t.Errorf("contact import into Redis counted %+v, into the embedded store %+v", got, wantCounts)
			}
			if ex := export(t, rc); ex != wantContacts {
				t.Fatalf("contact history imported into Redis differs from the embedded import:\n got %s\nwant %s", ex, wantContacts)
			}
			if again := importAll(t, csv.String(), rc); again != wantAgain {
				t.Errorf("importing the history again into Redis counted %+v, into the embedded store %+v", again, wantAgain)
			}
			if ex := export(t, rc); ex != wantContactsAgain {
				t.Fatalf("contact history imported twice into Redis differs from the embedded store:\n got %s\nwant %s", ex, wantContactsAgain)
			}
		})
	}
}

// TestRestoreRefusesInvalidOnRedis: an invalid customer among valid ones
// is refused as ErrInvalid and none of the call is written.
func TestRestoreRefusesInvalidOnRedis(t *testing.T) {
	cfg := portConfig(t)
	s := redistest.Start(t, redistest.Options{})
	b := open(t, redisstate.Config{URL: s.URL, State: cfg, AllowVolatile: true})
	ok := state.CustomerDump{ID: "ok", Contacts: []state.Contact{{Action: "a", Outcome: state.Click, At: t0}}}
	bad := state.CustomerDump{ID: "bad", Journeys: []state.JourneyState{{Journey: "j", EnteredAt: t0, StepAt: t0}}}
	if err := b.Restore(ok, bad); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("Restore = %v, want ErrInvalid", err)
	}
	n := 0
	if err := b.Each(func(*state.CustomerDump) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d customers stored after a refused Restore, want 0", n)
	}
	if _, err := b.RecordContacts([]state.Contact{{Customer: "ok", Action: "a", At: t0}, {Customer: "x", At: t0}}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("RecordContacts with a contact without action = %v, want ErrInvalid", err)
	}
	if err := b.Each(func(*state.CustomerDump) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("%d customers stored after a refused RecordContacts (%v), want 0", n, err)
	}
}

// TestUnmergeAfterImportIntoRedis: a merge made on the embedded state, with
// writes by both identifiers after it, exported and imported into Redis,
// is undone on Redis as it is on the embedded state: the same export after
// both unmerges. Before, merge receipts were not exported and the unmerge
// on Redis was refused.
func TestUnmergeAfterImportIntoRedis(t *testing.T) {
	cfg := portConfig(t)
	ic := &state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true, Unique: true}, "cookie": {}}}
	key := []byte("0123456789abcdef-identity-key")
	stitch := func(b state.IdentityBackend) *state.Identities {
		x := state.NewIdentities(b, key)
		if err := x.Configure(ic); err != nil {
			t.Fatal(err)
		}
		return x
	}
	src := openEmbedded(t, cfg)
	x := stitch(src)
	ctx := t.Context()
	anon := state.AnonymousID("cookie:c-1")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(src.RecordContact(state.Contact{Customer: anon, Action: "a", Channel: "web", At: t0, ID: "k0"}))
	must(src.ApplyEvent(state.Event{Customer: "c1", Type: "purchase", At: t0, Attrs: map[string]any{"amount": 5.0}}))
	l, err := x.Identify(ctx, map[string]string{"cookie": "c-1", "crm_id": "c1"}, t0.Add(time.Minute), "login")
	must(err)
	for i, via := range []string{"cookie:c-1", "crm_id:c1", "cookie:c-1", ""} {
		at := t0.Add(time.Duration(2+i) * time.Minute)
		must(x.Stitched().RecordContact(state.Contact{Customer: "c1", Action: "b", Channel: "email", At: at, ID: fmt.Sprintf("k%d", i+1), Via: via}))
		must(x.Stitched().ApplyEvent(state.Event{Customer: "c1", Type: "purchase", At: at, Attrs: map[string]any{"amount": float64(i + 1)}, ID: fmt.Sprintf("e%d", i), Via: via}))
	}
	exported := export(t, src)
	rb := open(t, redisstate.Config{URL: redistest.Start(t, redistest.Options{}).URL, State: cfg, AllowVolatile: true})
	importAll(t, exported, rb)
	for _, z := range []*state.Identities{x, stitch(rb)} {
		if u, err := z.Unmerge(ctx, l.Receipts[0]); err != nil || u.Customer != anon {
			t.Fatalf("unmerge: %+v %v", u, err)
		}
	}
	want := export(t, src)
	if want == exported {
		t.Fatal("the unmerge changed nothing")
	}
	if got := export(t, rb); got != want {
		t.Errorf("after the unmerge on Redis:\n%s\nafter the unmerge on the embedded state:\n%s", got, want)
	}
}

// TestExportImportKeepsReservations: a reservation of an exact cap held on
// the embedded state is in the export and holds the slot after an import
// into a new embedded state and into Redis, and importing the line back
// into the source keeps it. Before, the export dropped reservations, so the
// moved customer was given the reserved slot a second time.
func TestExportImportKeepsReservations(t *testing.T) {
	cfg := portConfig(t)
	caps := []state.ExactCap{{Kind: state.KindChannel, Key: "email", Window: time.Hour, Max: 1}}
	reserve := func(decision string, at time.Time) state.Reservation {
		return state.Reservation{Customer: "c1", Decision: decision, Action: "a", Group: "g", Channel: "email",
			At: at, Expires: at.Add(10 * time.Minute), Caps: caps}
	}
	src := openEmbedded(t, cfg)
	if err := src.Reserve(reserve("d1", t0)); err != nil {
		t.Fatal(err)
	}
	exported := export(t, src)
	if !strings.Contains(exported, `"reservations"`) {
		t.Fatalf("the export has no reservation:\n%s", exported)
	}
	type reserver interface {
		stateio.Target
		stateio.Source
		Reserve(...state.Reservation) error
	}
	check := func(t *testing.T, dst reserver) {
		t.Helper()
		if err := dst.Reserve(reserve("d2", t0.Add(time.Minute))); !errors.Is(err, state.ErrConflict) {
			t.Errorf("a second reservation of the exact cap after the import = %v, want ErrConflict", err)
		}
		if got := export(t, dst); got != exported {
			t.Errorf("export after the import:\n%s\nwant\n%s", got, exported)
		}
	}
	t.Run("embedded", func(t *testing.T) {
		dst := openEmbedded(t, cfg)
		importAll(t, exported, dst)
		check(t, dst)
	})
	t.Run("redis", func(t *testing.T) {
		dst := open(t, redisstate.Config{URL: redistest.Start(t, redistest.Options{}).URL, State: cfg, AllowVolatile: true})
		importAll(t, exported, dst)
		check(t, dst)
	})
	t.Run("in place", func(t *testing.T) {
		importAll(t, exported, src)
		check(t, src)
	})
}

// TestExportImportKeepsTombstones: the tombstone of a customer erased on
// the embedded state is in the export (its pseudonym only) and is kept by
// an import into a new embedded state, durably (after a reopen), and into
// Redis; a later end already kept is not shortened. Before, tombstones
// were not exported: after a move, the erased customer's late events were
// accepted again.
func TestExportImportKeepsTombstones(t *testing.T) {
	cfg := portConfig(t)
	now := time.Now()
	src := openEmbedded(t, cfg)
	if err := src.RecordContact(state.Contact{Customer: "c1", Action: "a", At: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Erase("c1", state.Tombstone{Pseudonym: "p-c1", Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	exported := export(t, src)
	if !strings.Contains(exported, `{"tombstone":"p-c1","until":`) || strings.Contains(exported, `"c1"`) {
		t.Fatalf("the export does not carry the tombstone alone:\n%s", exported)
	}
	type tombs interface {
		stateio.Target
		stateio.Source
		Tombstoned(string, time.Time) (bool, error)
	}
	check := func(t *testing.T, dst tombs) {
		t.Helper()
		if ok, err := dst.Tombstoned("p-c1", now); !ok || err != nil {
			t.Errorf("Tombstoned after the import = %v %v, want true", ok, err)
		}
		if ok, err := dst.Tombstoned("p-c1", now.Add(2*time.Hour)); ok || err != nil {
			t.Errorf("Tombstoned after its end = %v %v, want false", ok, err)
		}
		if got := export(t, dst); got != exported {
			t.Errorf("export after the import:\n%s\nwant\n%s", got, exported)
		}
	}
	t.Run("embedded", func(t *testing.T) {
		c := cfg
		c.WAL = wal.Config{Dir: filepath.Join(t.TempDir(), "state")}
		dst, err := embedded.Open(c)
		if err != nil {
			t.Fatal(err)
		}
		if n := importAll(t, exported, dst); n.Tombstones != 1 {
			t.Errorf("imported %d tombstones, want 1", n.Tombstones)
		}
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
		dst, err = embedded.Open(c)
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Close()
		check(t, dst)
	})
	t.Run("redis", func(t *testing.T) {
		dst := open(t, redisstate.Config{URL: redistest.Start(t, redistest.Options{}).URL, State: cfg, AllowVolatile: true})
		importAll(t, exported, dst)
		check(t, dst)
		if err := dst.RestoreTombstones(state.Tombstone{Pseudonym: "p-c1", Until: now.Add(3 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		importAll(t, exported, dst)
		if ok, err := dst.Tombstoned("p-c1", now.Add(2*time.Hour)); !ok || err != nil {
			t.Errorf("an import shortened a later tombstone: Tombstoned = %v %v", ok, err)
		}
	})
}
