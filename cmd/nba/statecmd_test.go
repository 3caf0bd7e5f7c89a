package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"nba/bench/bundlegen"
	"nba/nba/demo"
	"nba/nba/server"
	"nba/nba/sidecar"
	"nba/state"
	"nba/state/redis/redistest"
)

// openQuiet opens a sidecar on the embedded demo (or bundle dir) and state
// dir, closed at test end.
func openQuiet(t *testing.T, bundleDir, dir string) *sidecar.Sidecar {
	t.Helper()
	bundle, name, err := openBundle(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sidecar.Open(sidecar.Config{Bundle: bundle, BundleName: name, StateDir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// customers reads every customer's state in a state directory, sorted.
func customers(t *testing.T, bundleDir, dir string) []state.CustomerDump {
	t.Helper()
	bundle, _, err := openBundle(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	st, done, err := sidecar.OpenStateDir(dir, bundle, false)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	var all []state.CustomerDump
	if err := st.Each(func(c *state.CustomerDump) error { all = append(all, *c); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b state.CustomerDump) int { return cmp.Compare(a.ID, b.ID) })
	for i := range all {
		slices.SortFunc(all[i].Counters, func(a, b state.Counter) int {
			return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Outcome, b.Outcome))
		})
	}
	return all
}

// decideAll decides a dry run for each customer on each channel at a fixed
// time and returns the answers, as POST /v1/decide gives them.
func decideAll(t *testing.T, s *sidecar.Sidecar, ids []string, channels []string, at time.Time) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		for _, ch := range channels {
			req := server.DecideRequest{DecisionID: "0123456789abcdef0123456789abcdef", CustomerID: id, Channel: ch, Limit: 3, DryRun: true, At: at, Explain: true}
			var resp server.DecideResponse
			if err := s.Decide(&req, &resp); err != nil {
				t.Fatal(err)
			}
			out = append(out, string(server.AppendDecision(nil, &req, &resp, 0)))
		}
	}
	return out
}

// TestStateExportImportRoundTrip builds state in a demo sidecar through
// feedback and events, exports it with nba state export, imports it with
// nba state import into a fresh directory, and checks that every
// customer's state is the same and that caps, suppressions and journeys
// decide the same there (where the state makes decisions differ from a
// state without it).
func TestStateExportImportRoundTrip(t *testing.T) {
	src, dst, empty := t.TempDir(), t.TempDir(), t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	rnd := rand.New(rand.NewPCG(3, 4))
	var ids []string
	{
		s, err := sidecar.Open(sidecar.Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: src, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		actions := s.Catalog().Actions()
		for c := range 60 {
			id := fmt.Sprintf("c%05d", c*37)
			ids = append(ids, id)
			for i := range 4 + rnd.IntN(8) {
				a := actions[rnd.IntN(len(actions))]
				fb := server.Feedback{CustomerID: id, ActionID: a.ID, Channel: []string{"web", "email", "sms", "push", "agent"}[rnd.IntN(5)],
					Outcome: server.Outcome(1 + rnd.IntN(6)), TS: now.Add(-time.Duration(rnd.IntN(9*24*60)) * time.Minute)}
				if rnd.IntN(2) == 0 {
					fb.EventID = fmt.Sprintf("fb-%d-%d", c, i)
				}
				if fb.Outcome == server.OutcomeConvert {
					fb.Value = float64(rnd.IntN(200)) / 4
				}
				if err := s.Feedback(&fb); err != nil {
					t.Fatal(err)
				}
			}
			for _, typ := range []string{"cart_abandoned", "ticket_opened", "purchase", "ticket_closed"}[:rnd.IntN(4)] {
				ev := server.Event{CustomerID: id, Type: typ, TS: now.Add(-time.Duration(rnd.IntN(3*24*60)) * time.Minute), EventID: "ev-" + id + typ}
				if typ == "cart_abandoned" {
					ev.Attrs = []server.Field{{Key: "value", Kind: server.KindNumber, Num: float64(rnd.IntN(300))}}
				}
				if err := s.Event(&ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Online learning is not customer state: give the imported directory
	// the same learner, so that decisions differ only by state if at all.
	for _, d := range []string{dst, empty} {
		b, err := os.ReadFile(filepath.Join(src, "learner.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "learner.bin"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "state.jsonl.zst")
	code, _, stderr := runNBA(t, "state", "export", "-state", src, "-out", file)
	if code != 0 || !strings.Contains(stderr, "exported 60 customers") {
		t.Fatalf("nba state export: exit %d, stderr:\n%s", code, stderr)
	}
	code, _, stderr = runNBA(t, "state", "import", "-state", dst, file)
	if code != 0 || !regexp.MustCompile(`imported 60 customers: \d+ contacts .* 0 rows refused`).MatchString(stderr) {
		t.Fatalf("nba state import: exit %d, stderr:\n%s", code, stderr)
	}
	want := customers(t, "", src)
	if got := customers(t, "", dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("imported state differs from the exported:\n got %+v\nwant %+v", got, want)
	}
	// Importing again changes nothing.
	if code, _, stderr = runNBA(t, "state", "import", "-state", dst, file); code != 0 {
		t.Fatalf("nba state import again: exit %d, stderr:\n%s", code, stderr)
	}
	if got := customers(t, "", dst); !reflect.DeepEqual(got, want) {
		t.Fatal("importing twice changed the state")
	}
	// The channels the demo does not explore on decide deterministically.
	channels := []string{"sms", "push", "agent"}
	at := now.Add(time.Minute)
	before := decideAll(t, openQuiet(t, "", src), ids, channels, at)
	after := decideAll(t, openQuiet(t, "", dst), ids, channels, at)
	without := decideAll(t, openQuiet(t, "", empty), ids, channels, at)
	differ := 0
	for i := range before {
		if after[i] != before[i] {
			t.Errorf("decision %d differs after the round trip:\n got %s\nwant %s", i, after[i], before[i])
		}
		if without[i] != before[i] {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("the state changes no decision: the test proves nothing")
	}
	t.Logf("%d of %d decisions depend on the state", differ, len(before))
}

// TestStateImportBundlegenContacts imports the contact history
// bench/bundlegen writes and checks that the channel caps count it: a
// customer with an SMS impression in the last 7 days gets no SMS action,
// which a state without the history would give.
func TestStateImportBundlegenContacts(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	b, err := bundlegen.Generate(bundlegen.Config{Customers: 400, Actions: 40, Trees: 4, Depth: 2, CustomerFeatures: 8, HistoryShare: 1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	bdir, sdir, empty := t.TempDir(), t.TempDir(), t.TempDir()
	if err := b.Write(bdir); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runNBA(t, "state", "import", "-bundle", bdir, "-state", sdir, filepath.Join(bdir, "contacts.csv"))
	if code != 0 || !strings.Contains(stderr, fmt.Sprintf("imported 400 customers: %d contacts", len(b.Contacts))) {
		t.Fatalf("nba state import: exit %d, want %d contacts; stderr:\n%s", code, len(b.Contacts), stderr)
	}
	capped := map[string]bool{}
	for _, c := range b.Contacts {
		if bundlegen.Channels[c.Channel] == "sms" && c.Outcome.String() == "impression" && c.At > now.Add(-7*24*time.Hour).Unix() {
			capped[bundlegen.CustomerID(int(c.Customer))] = true
		}
	}
	var ids []string
	for id := range capped {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	with := openQuiet(t, bdir, sdir)
	without := openQuiet(t, bdir, empty)
	opened := 0
	for _, id := range ids {
		req := server.DecideRequest{DecisionID: "0123456789abcdef0123456789abcdef", CustomerID: id, Channel: "sms", Limit: 3, DryRun: true, At: now.Add(time.Minute)}
		var got, free server.DecideResponse
		if err := with.Decide(&req, &got); err != nil {
			t.Fatal(err)
		}
		if err := without.Decide(&req, &free); err != nil {
			t.Fatal(err)
		}
		if len(got.Actions) != 0 {
			t.Errorf("customer %s had an SMS impression within 7 days but gets %d SMS actions", id, len(got.Actions))
		}
		if len(free.Actions) > 0 {
			opened++
		}
	}
	t.Logf("%d customers capped on SMS, %d of them get SMS actions without the history", len(ids), opened)
	if len(ids) == 0 || opened == 0 {
		t.Fatalf("%d capped customers, %d of them get SMS actions without the history: the test proves nothing", len(ids), opened)
	}
}

// TestStateImportRefusesBadRows: bad rows are refused with their line
// and reason, on stderr, without their values; the good rows are imported
// and the exit status is 1.
func TestStateImportRefusesBadRows(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(t.TempDir(), "contacts.csv")
	rows := "customer_id,action,group,channel,outcome,at,value,id\n" +
		"c00001,wb_20_off,win_back,web,impression,2026-12-01T10:00:00Z,,k1\n" +
		"secret-7,wb_20_off,win_back,web,clicked,2026-12-01T10:00:00Z,,\n" +
		"secret-8,wb_20_off,win_back,web,click,yesterday,,\n" +
		"c00001,wb_20_off,win_back,web,click,2026-12-01T11:00:00Z,1.5,k2\n" +
		"secret-9,,win_back,web,click,2026-12-01T11:00:00Z,,\n" +
		"secret-10,wb_20_off,win_back,web,click,2026-12-01T11:00:00Z,lots,\n" +
		"secret-11,wb_20_off\n"
	if err := os.WriteFile(in, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runNBA(t, "state", "import", "-state", dir, in)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"line 3: refused: outcome: want", "line 4: refused: at: not an RFC 3339 time", "line 6: refused: action: empty",
		"line 7: refused: value: not a number", "line 8: refused: 2 columns, the header has 8",
		"imported 1 customers: 2 contacts (0 duplicates not recorded again)", "5 rows refused"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "secret") {
		t.Errorf("stderr names a customer id:\n%s", stderr)
	}
	// Again: the contacts with ids are not recorded twice.
	_, _, stderr = runNBA(t, "state", "import", "-state", dir, in)
	if !strings.Contains(stderr, "0 contacts (2 duplicates not recorded again)") {
		t.Errorf("a second import recorded contacts with ids again:\n%s", stderr)
	}
}

// TestStateCommandsRefuseALockedDirectory: export and import refuse a
// state directory a running sidecar holds, and leave it untouched.
func TestStateCommandsRefuseALockedDirectory(t *testing.T) {
	dir := t.TempDir()
	s := openQuiet(t, "", dir)
	if err := s.Feedback(&server.Feedback{CustomerID: "c00001", ActionID: "wb_20_off", Outcome: server.OutcomeImpression, TS: time.Now()}); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "c.jsonl")
	if err := os.WriteFile(in, []byte(`{"customer":"c00001"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"export", "-state", dir}, {"import", "-state", dir, in}} {
		code, stdout, stderr := runNBA(t, append([]string{"state"}, args...)...)
		if code == 0 || !strings.Contains(stderr, "in use by another nba process") || stdout != "" {
			t.Errorf("nba state %s on a held directory: exit %d, stdout %q, stderr:\n%s", args[0], code, stdout, stderr)
		}
	}
	var buf []byte
	buf, err := s.AppendCustomer(buf, "c00001")
	if err != nil || !bytes.Contains(buf, []byte("wb_20_off")) {
		t.Fatalf("the held state changed: %s, %v", buf, err)
	}
}

// TestStateImportRefusesContactsFeedbackRefuses: contact rows that HTTP
// feedback would refuse (an action not in the catalog, a group not the
// action's, a channel the catalog does not configure, a time more than the
// allowance ahead) are refused with their line and column, into a state
// directory and into Redis; a row without a group gets its action's.
// Before, only format errors were refused: such rows were recorded, and
// one far ahead was in the history but counted by no cap.
func TestStateImportRefusesContactsFeedbackRefuses(t *testing.T) {
	at := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	ahead := time.Now().UTC().Add(48 * time.Hour).Format(time.RFC3339)
	in := filepath.Join(t.TempDir(), "contacts.csv")
	rows := "customer_id,action,group,channel,outcome,at\n" +
		"c00001,wb_20_off,win_back,web,impression," + at + "\n" +
		"c00001,no_such_action,win_back,web,impression," + at + "\n" +
		"c00001,wb_20_off,wrong_group,web,impression," + at + "\n" +
		"c00001,wb_20_off,win_back,fax,impression," + at + "\n" +
		"c00001,wb_20_off,win_back,web,impression,2099-12-06T10:00:00Z\n" +
		"c00001,wb_20_off,win_back,web,impression," + ahead + "\n" +
		"c00001,wb_20_off,,web,click," + at + "\n"
	if err := os.WriteFile(in, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, target ...string) {
		t.Helper()
		code, _, stderr := runNBA(t, append(append([]string{"state", "import"}, target...), in)...)
		if code != 1 {
			t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
		}
		for _, want := range []string{"line 3: refused: action: not in the bundle's catalog", "line 4: refused: group: not the action's group",
			"line 5: refused: channel: not a channel", "line 6: refused: at: more than 24h0m0s after now", "line 7: refused: at: more than 24h0m0s after now",
			"imported 1 customers: 2 contacts", "5 rows refused"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		file := filepath.Join(t.TempDir(), "out.jsonl")
		if code, _, stderr := runNBA(t, append(append([]string{"state", "export"}, target...), "-out", file)...); code != 0 {
			t.Fatalf("export: exit %d; stderr:\n%s", code, stderr)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(b), `"group":"win_back"`); got != 2 {
			t.Errorf("%d contacts of group win_back exported, want 2 (the row without a group gets its action's):\n%s", got, b)
		}
	}
	t.Run("embedded", func(t *testing.T) { check(t, "-state", t.TempDir()) })
	t.Run("redis", func(t *testing.T) {
		check(t, "-state.redis", redistest.Start(t, redistest.Options{AppendFsync: "always"}).URL)
	})
}

// TestStateMoveChecksTheIdentityKey: moving an embedded state whose
// profiles hold hashed identifiers (email) with nba state export and
// import. The export names the identity key by its fingerprint, never the
// key; the import refuses a target without the key (saying how to bring
// it) or with another key, on a directory and on Redis, and imports nothing
// then; with the source's identity.key copied over, the hashed email
// resolves to the person again. A state that holds hashed identifiers but
// no identity.key (an export without the fingerprint) makes nba serve log
// that the key it generates will not resolve them. Before, the import
// accepted every target, and the person's email named an anonymous
// profile from then on, without a word.
func TestStateMoveChecksTheIdentityKey(t *testing.T) {
	t.Setenv(sidecar.IdentityKeyEnv, "")
	bdir := exportDemoWithIdentity(t)
	src := t.TempDir()
	open := func(dir string, log *bytes.Buffer) *sidecar.Sidecar {
		t.Helper()
		logger := quietLogger()
		if log != nil {
			logger = slog.New(slog.NewTextHandler(log, nil))
		}
		s, err := sidecar.Open(sidecar.Config{Bundle: os.DirFS(bdir), BundleName: "b", StateDir: dir, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(src, nil)
	ids := []server.Field{{Key: "cookie", Str: "x-1"}, {Key: "crm_id", Str: "c04100"}, {Key: "email", Str: "x@example.com"}}
	if _, err := s.Identify(&server.IdentifyRequest{IDs: ids, TS: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	key, err := os.ReadFile(filepath.Join(src, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "exp.jsonl")
	if code, _, stderr := runNBA(t, "state", "export", "-bundle", bdir, "-state", src, "-out", file); code != 0 {
		t.Fatalf("export: exit %d:\n%s", code, stderr)
	}
	exported, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(exported, []byte(`{"identity_key":"hmac-sha256:`)) || bytes.Contains(exported, key) {
		t.Fatalf("the export does not start with the key's fingerprint, or carries the key:\n%s", exported)
	}

	refused := func(t *testing.T, want string, target ...string) {
		t.Helper()
		code, _, stderr := runNBA(t, append(append([]string{"state", "import", "-bundle", bdir}, target...), file)...)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("import: exit %d, want a refusal with %q:\n%s", code, want, stderr)
		}
	}
	t.Run("no key yet", func(t *testing.T) {
		dst := t.TempDir()
		refused(t, "has none yet: copy identity.key from the exported state directory to "+filepath.Join(dst, "identity.key"), "-state", dst)
		if got := customers(t, bdir, dst); len(got) != 0 {
			t.Errorf("a refused import restored %d customers", len(got))
		}
	})
	t.Run("another key", func(t *testing.T) {
		dst := t.TempDir()
		if err := os.WriteFile(filepath.Join(dst, "identity.key"), []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
			t.Fatal(err)
		}
		refused(t, "hashed with another identity key", "-state", dst)
	})
	t.Run("redis without the key", func(t *testing.T) {
		refused(t, "$NBA_IDENTITY_KEY is not set", "-state.redis", redistest.Start(t, redistest.Options{AppendFsync: "always"}).URL)
	})
	t.Run("the key copied", func(t *testing.T) {
		dst := t.TempDir()
		if err := os.WriteFile(filepath.Join(dst, "identity.key"), key, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runNBA(t, "state", "import", "-bundle", bdir, "-state", dst, file); code != 0 {
			t.Fatalf("import: exit %d:\n%s", code, stderr)
		}
		s := open(dst, nil)
		defer s.Close()
		if id, err := s.ResolveCustomer("email", "x@example.com"); err != nil || id != "c04100" {
			t.Errorf("after the move the email names %q %v, want c04100", id, err)
		}
	})
	t.Run("serve warns", func(t *testing.T) {
		dst := t.TempDir()
		old := filepath.Join(t.TempDir(), "old.jsonl")
		if err := os.WriteFile(old, exported[bytes.IndexByte(exported, '\n')+1:], 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runNBA(t, "state", "import", "-bundle", bdir, "-state", dst, old); code != 0 {
			t.Fatalf("import of an export without the fingerprint: exit %d:\n%s", code, stderr)
		}
		var log bytes.Buffer
		open(dst, &log).Close()
		if !strings.Contains(log.String(), "generated a new identity key, but the state already holds hashed identifiers") {
			t.Errorf("serving the moved state without its key logs nothing about it:\n%s", log.String())
		}
		log.Reset()
		open(dst, &log).Close()
		open(src, &log).Close()
		if strings.Contains(log.String(), "generated a new identity key") {
			t.Errorf("a state with its key logs that a key was generated:\n%s", log.String())
		}
	})
}

// TestStateMoveKeepsErasure: a customer erased on a state directory stays
// erased after nba state export and import into another directory and into
// Redis: its late event is refused with 410 there, as on the source. Before,
// tombstones were not exported, and the event was accepted after the move.
func TestStateMoveKeepsErasure(t *testing.T) {
	key := []byte("0123456789abcdef-erasure-key")
	open := func(cfg sidecar.Config) *sidecar.Sidecar {
		t.Helper()
		cfg.Bundle, cfg.BundleName, cfg.Logger, cfg.ErasureKey = demo.Bundle(), "demo", quietLogger(), key
		s, err := sidecar.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	late := func(t *testing.T, s *sidecar.Sidecar) {
		t.Helper()
		err := s.Event(&server.Event{CustomerID: "c00042", Type: "purchase", TS: time.Now()})
		var se *server.Error
		if !errors.As(err, &se) || se.Status != http.StatusGone {
			t.Errorf("a late event of the erased customer = %v, want 410", err)
		}
		if err := s.Event(&server.Event{CustomerID: "c00043", Type: "purchase", TS: time.Now()}); err != nil {
			t.Errorf("an event of another customer = %v", err)
		}
	}
	src := t.TempDir()
	s := open(sidecar.Config{StateDir: src})
	if err := s.Event(&server.Event{CustomerID: "c00042", Type: "purchase", TS: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EraseCustomer("c00042"); err != nil {
		t.Fatal(err)
	}
	late(t, s)
	s.Close()
	file := filepath.Join(t.TempDir(), "exp.jsonl")
	if code, _, stderr := runNBA(t, "state", "export", "-state", src, "-out", file); code != 0 || !strings.Contains(stderr, "1 tombstones") {
		t.Fatalf("export: exit %d, want 1 tombstone:\n%s", code, stderr)
	}
	t.Run("directory", func(t *testing.T) {
		dst := t.TempDir()
		if code, _, stderr := runNBA(t, "state", "import", "-state", dst, file); code != 0 || !strings.Contains(stderr, "1 tombstones") {
			t.Fatalf("import: exit %d, want 1 tombstone:\n%s", code, stderr)
		}
		s := open(sidecar.Config{StateDir: dst})
		defer s.Close()
		late(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		url := redistest.Start(t, redistest.Options{AppendFsync: "always"}).URL
		if code, _, stderr := runNBA(t, "state", "import", "-state.redis", url, file); code != 0 {
			t.Fatalf("import: exit %d:\n%s", code, stderr)
		}
		s := open(sidecar.Config{StateDir: t.TempDir(), StateRedis: url})
		defer s.Close()
		late(t, s)
	})
}

// TestStateMoveToRedisWithTheIdentityKey: a state served with
// $NBA_IDENTITY_KEY moves to Redis when the import has the same key, and
// its hashed email resolves there; with another key the import is refused.
func TestStateMoveToRedisWithTheIdentityKey(t *testing.T) {
	const key = "0123456789abcdef-identity-key"
	t.Setenv(sidecar.IdentityKeyEnv, key)
	bdir := exportDemoWithIdentity(t)
	open := func(cfg sidecar.Config) *sidecar.Sidecar {
		t.Helper()
		cfg.Bundle, cfg.BundleName, cfg.Logger, cfg.IdentityKey = os.DirFS(bdir), "b", quietLogger(), []byte(key)
		s, err := sidecar.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	src := t.TempDir()
	s := open(sidecar.Config{StateDir: src})
	ids := []server.Field{{Key: "crm_id", Str: "c04100"}, {Key: "email", Str: "x@example.com"}}
	if _, err := s.Identify(&server.IdentifyRequest{IDs: ids, TS: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	file := filepath.Join(t.TempDir(), "exp.jsonl")
	if code, _, stderr := runNBA(t, "state", "export", "-bundle", bdir, "-state", src, "-out", file); code != 0 {
		t.Fatalf("export: exit %d:\n%s", code, stderr)
	}
	url := redistest.Start(t, redistest.Options{AppendFsync: "always"}).URL
	t.Setenv(sidecar.IdentityKeyEnv, key+"-other")
	if code, _, stderr := runNBA(t, "state", "import", "-bundle", bdir, "-state.redis", url, file); code == 0 || !strings.Contains(stderr, "from $NBA_IDENTITY_KEY") {
		t.Errorf("import with another key: exit %d, want a refusal:\n%s", code, stderr)
	}
	t.Setenv(sidecar.IdentityKeyEnv, key)
	if code, _, stderr := runNBA(t, "state", "import", "-bundle", bdir, "-state.redis", url, file); code != 0 {
		t.Fatalf("import with the key: exit %d:\n%s", code, stderr)
	}
	r := open(sidecar.Config{StateDir: t.TempDir(), StateRedis: url})
	defer r.Close()
	if id, err := r.ResolveCustomer("email", "x@example.com"); err != nil || id != "c04100" {
		t.Errorf("on Redis the email names %q %v, want c04100", id, err)
	}
}
