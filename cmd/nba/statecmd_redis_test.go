package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
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
	"nba/state/redis/redistest"
)

// TestStateExportImportThroughRedis: nba state export -state DIR piped
// into nba state import -state.redis URL, then nba state export
// -state.redis URL imported into a new directory gives every customer the
// state they had (history, counters, overlay, journeys, idempotency keys).
func TestStateExportImportThroughRedis(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	src, dst := t.TempDir(), t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	rnd := rand.New(rand.NewPCG(5, 6))
	{
		s, err := sidecar.Open(sidecar.Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: src, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		actions := s.Catalog().Actions()
		for c := range 40 {
			id := fmt.Sprintf("c%05d", c*41)
			for i := range 3 + rnd.IntN(8) {
				fb := server.Feedback{CustomerID: id, ActionID: actions[rnd.IntN(len(actions))].ID, Channel: []string{"web", "email", "sms", "push", "agent"}[rnd.IntN(5)],
					Outcome: server.Outcome(1 + rnd.IntN(6)), TS: now.Add(-time.Duration(rnd.IntN(9*24*60)) * time.Minute), EventID: fmt.Sprintf("fb-%d-%d", c, i)}
				if err := s.Feedback(&fb); err != nil {
					t.Fatal(err)
				}
			}
			for _, typ := range []string{"cart_abandoned", "ticket_opened", "purchase"}[:rnd.IntN(4)] {
				ev := server.Event{CustomerID: id, Type: typ, TS: now.Add(-time.Duration(rnd.IntN(3*24*60)) * time.Minute), EventID: "ev-" + id + typ}
				if err := s.Event(&ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// nba state export -state src | nba state import -state.redis URL -
	exp := exec.Command(nbaBin, "state", "export", "-state", src)
	imp := exec.Command(nbaBin, "state", "import", "-state.redis", rs.URL, "-")
	pipe, err := exp.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var expErr, impErr bytes.Buffer
	exp.Stderr, imp.Stdin, imp.Stderr = &expErr, pipe, &impErr
	if err := imp.Start(); err != nil {
		t.Fatal(err)
	}
	if err := exp.Run(); err != nil {
		t.Fatalf("nba state export -state: %v\n%s", err, &expErr)
	}
	if err := imp.Wait(); err != nil || !regexp.MustCompile(`imported 40 customers: \d+ contacts .* 0 rows refused`).MatchString(impErr.String()) {
		t.Fatalf("nba state import -state.redis: %v\n%s", err, &impErr)
	}

	file := filepath.Join(t.TempDir(), "redis.jsonl.zst")
	if code, _, stderr := runNBA(t, "state", "export", "-state.redis", rs.URL, "-out", file); code != 0 || !strings.Contains(stderr, "exported 40 customers") {
		t.Fatalf("nba state export -state.redis: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runNBA(t, "state", "import", "-state", dst, file); code != 0 {
		t.Fatalf("nba state import -state: exit %d\n%s", code, stderr)
	}
	want := customers(t, "", src)
	if got := customers(t, "", dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("directory → Redis → directory changed the state:\n got %+v\nwant %+v", got, want)
	}

	if code, _, stderr := runNBA(t, "state", "export", "-state", src, "-state.redis", rs.URL); code == 0 || !strings.Contains(stderr, "not both") {
		t.Errorf("export with -state and -state.redis: exit %d, want a refusal\n%s", code, stderr)
	}
}

// TestStateImportContactsIntoRedis: the contact history bench/bundlegen
// writes, imported with nba state import -state.redis, caps a sidecar on
// that Redis: a customer with an SMS impression in the last 7 days gets
// no SMS action, which the same sidecar without the history gives.
func TestStateImportContactsIntoRedis(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	b, err := bundlegen.Generate(bundlegen.Config{Customers: 200, Actions: 40, Trees: 4, Depth: 2, CustomerFeatures: 8, HistoryShare: 1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	bdir := t.TempDir()
	if err := b.Write(bdir); err != nil {
		t.Fatal(err)
	}
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	code, _, stderr := runNBA(t, "state", "import", "-bundle", bdir, "-state.redis", rs.URL, filepath.Join(bdir, "contacts.csv"))
	if code != 0 || !strings.Contains(stderr, fmt.Sprintf("imported 200 customers: %d contacts", len(b.Contacts))) {
		t.Fatalf("nba state import -state.redis: exit %d, want %d contacts; stderr:\n%s", code, len(b.Contacts), stderr)
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
	bundle, name, err := openBundle(bdir)
	if err != nil {
		t.Fatal(err)
	}
	with, err := sidecar.Open(sidecar.Config{Bundle: bundle, BundleName: name, StateDir: t.TempDir(), StateRedis: rs.URL, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer with.Close()
	without := openQuiet(t, bdir, t.TempDir())
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
		if got.Stale {
			t.Fatalf("decision for %s on Redis is stale", id)
		}
		if len(got.Actions) != 0 {
			t.Errorf("customer %s had an SMS impression within 7 days but gets %d SMS actions from the state on Redis", id, len(got.Actions))
		}
		if len(free.Actions) > 0 {
			opened++
		}
	}
	if len(ids) == 0 || opened == 0 {
		t.Fatalf("%d capped customers, %d of them get SMS actions without the history: the test proves nothing", len(ids), opened)
	}
	// A running sidecar on Redis imports contacts too (ImportContacts).
	f, err := os.Open(filepath.Join(bdir, "contacts.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := with.ImportContacts(f); err != nil {
		t.Fatalf("ImportContacts into a sidecar on Redis: %v", err)
	}
}
