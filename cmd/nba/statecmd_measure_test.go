package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"nba/bench/bundlegen"
	"nba/state/redis/redistest"
)

// TestStateImportExportTimes measures nba state import and export of a
// bench/bundlegen history (20,000 customers, about 210,000 contacts) on a
// state directory and on Redis (appendfsync everysec), in the same run, as
// ratios; run with NBA_MEASURE=1:
//
//	NBA_MEASURE=1 go test -count=1 -v -run TestStateImportExportTimes ./cmd/nba/
func TestStateImportExportTimes(t *testing.T) {
	if os.Getenv("NBA_MEASURE") == "" {
		t.Skip("a measurement: set NBA_MEASURE=1")
	}
	now := time.Now().UTC().Truncate(time.Second)
	b, err := bundlegen.Generate(bundlegen.Config{Customers: 20000, Actions: 40, Trees: 4, Depth: 2, CustomerFeatures: 8, HistoryShare: 1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	bdir := t.TempDir()
	if err := b.Write(bdir); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d contacts", len(b.Contacts))
	for round := range 2 {
		rs := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
		sdir := t.TempDir()
		run := func(args ...string) time.Duration {
			t0 := time.Now()
			code, _, stderr := runNBA(t, args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, stderr)
			}
			return time.Since(t0)
		}
		csv := filepath.Join(bdir, "contacts.csv")
		de := run("state", "import", "-bundle", bdir, "-state", sdir, csv)
		dr := run("state", "import", "-bundle", bdir, "-state.redis", rs.URL, csv)
		out := filepath.Join(t.TempDir(), "x.jsonl")
		ee := run("state", "export", "-bundle", bdir, "-state", sdir, "-out", out)
		er := run("state", "export", "-bundle", bdir, "-state.redis", rs.URL, "-out", out)
		ri := run("state", "import", "-bundle", bdir, "-state.redis", rs.URL, out)
		ei := run("state", "import", "-bundle", bdir, "-state", t.TempDir(), out)
		t.Logf("round %d: contacts import embedded %v redis %v (%.1fx); export embedded %v redis %v (%.1fx); customer-line import embedded %v redis %v (%.1fx)",
			round, de, dr, float64(dr)/float64(de), ee, er, float64(er)/float64(ee), ei, ri, float64(ri)/float64(ei))
	}
}
