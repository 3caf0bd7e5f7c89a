package main

// The studio's population funnel, dashboard and customer timeline in a real
// browser (see studio_e2e_test.go for the harness): the page's numbers are
// compared with the command line's for the same input.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"nba/nba/server"
)

// TestStudioFunnelAndDashboardInBrowser opens the funnel and checks that
// its counts per action and stage, its no-action count and its threshold
// slider equal "nba funnel -json" on the same sample; then makes decisions
// with feedback (control-group ones too), and checks that the dashboard's
// uplift rows equal "nba uplift -json" on the sidecar's decision log, that
// it plots the decide rate and the actions decided, and that the customer
// page plots the customer's contacts. No page logs a console error.
func TestStudioFunnelAndDashboardInBrowser(t *testing.T) {
	b := newBrowser(t)
	state := t.TempDir()
	p := startServe(t, "-state", state)
	const at = "2026-12-24T09:00:00Z"
	const n = 2000

	// The funnel, by its deep link, after the token. Web explores
	// (Thompson sampling): the funnel seeds each customer's draws.
	b.do("funnel page", chromedp.Navigate(p.admin+"/ui/funnel?channel=web&n="+strconv.Itoa(n)+"&at="+at), chromedp.WaitVisible(chromedp.ID("admin-token")))
	b.do("token", chromedp.SendKeys(chromedp.ID("admin-token"), adminToken), chromedp.Click(chromedp.CSS("#token-form button")),
		chromedp.WaitVisible(chromedp.ID("funnel-table")))
	code, stdout, stderr := runNBA(t, "funnel", "-channel", "web", "-n", strconv.Itoa(n), "-at", at, "-json")
	if code != 0 {
		t.Fatalf("nba funnel: exit %d: %s", code, stderr)
	}
	var want server.FunnelResult
	if err := json.Unmarshal([]byte(stdout), &want); err != nil {
		t.Fatalf("nba funnel -json: %v\n%s", err, stdout)
	}
	if want.Customers != n || len(want.Actions) == 0 {
		t.Fatalf("nba funnel decided %d customers, %d actions", want.Customers, len(want.Actions))
	}
	// The page's table: per action, considered, passed per stage, chosen, first.
	got := eval[[][]string](b, `[...document.querySelectorAll("#funnel-table tbody tr")].map(r => [r.dataset.id, ...[...r.querySelectorAll("td[data-k]")].map(td => td.textContent)])`)
	var wantRows [][]string
	for _, a := range want.Actions {
		row := []string{a.ID, strconv.Itoa(a.Considered)}
		for _, x := range a.Passed {
			row = append(row, strconv.Itoa(x))
		}
		wantRows = append(wantRows, append(row, strconv.Itoa(a.Chosen), strconv.Itoa(a.First)))
	}
	if !reflect.DeepEqual(got, wantRows) {
		t.Errorf("funnel table (action, considered, passed by stage, chosen, first):\n%v\nnba funnel counts:\n%v", got, wantRows)
	}
	firsts := 0
	for _, a := range want.Actions {
		firsts += a.First
	}
	if firsts == 0 || firsts+want.NoAction != n {
		t.Errorf("nba funnel: %d first places and %d without action for %d customers", firsts, want.NoAction, n)
	}
	if got := eval[string](b, `document.getElementById("f-no-action").dataset.count`); got != strconv.Itoa(want.NoAction) {
		t.Errorf("funnel page: %s customers without action, nba funnel %d", got, want.NoAction)
	}
	// The slider: customers with no action or only actions below it.
	for _, th := range []int{0, 75, 100, 30} {
		wantBelow := want.NoAction
		for i := 0; i < th; i++ {
			wantBelow += want.BestPropensity[i]
		}
		expr := fmt.Sprintf(`(() => { const s = document.getElementById("f-threshold"); s.value = "%.2f"; s.dispatchEvent(new Event("input")); return document.getElementById("below-threshold").dataset.count; })()`, float64(th)/100)
		if got := eval[string](b, expr); got != strconv.Itoa(wantBelow) {
			t.Errorf("funnel slider at %.2f: %s customers, nba funnel's histogram says %d", float64(th)/100, got, wantBelow)
		}
	}
	if n := eval[int](b, `document.querySelectorAll("#first-chart, #stage-chart").length`); n != 2 {
		t.Errorf("funnel page: %d charts, want 2", n)
	}
	b.page("funnel")

	// Decisions with feedback, as the decision log records them: every
	// second decision's action (or, for the control group, the withheld
	// one) is accepted with a value.
	decided := 0
	for i := 1; decided < 300; i++ {
		c := fmt.Sprintf("c%05d", i)
		d := p.decide(`{"customer_id":"` + c + `","channel":"web","limit":1}`)
		decided++
		shown := d.Actions
		if d.Control {
			shown = d.Withheld
		}
		if len(shown) == 0 || i%2 == 1 {
			continue
		}
		p.ok("/v1/feedback", fmt.Sprintf(`{"decision_id":%q,"customer_id":%q,"action_id":%q,"channel":"web","outcome":"accept","value":%d}`, d.DecisionID, c, shown[0].ID, i%7))
	}
	logDir := filepath.Join(state, "decisions")
	uplift := func() string {
		t.Helper()
		code, stdout, stderr := runNBA(t, "uplift", "-json", logDir)
		if code != 0 {
			return "exit " + strconv.Itoa(code) + ": " + stderr
		}
		return stdout
	}
	// The log is written in batches (each second): wait until it holds
	// every decision and two reads agree.
	var cli string
	eventually(t, "the decision log holds the 300 decisions and their feedback", func() bool {
		a := uplift()
		var rows []struct {
			Action           string
			Treated, Control int
		}
		if json.Unmarshal([]byte(a), &rows) != nil || len(rows) == 0 || rows[0].Action != "*" || rows[0].Treated+rows[0].Control != decided {
			time.Sleep(200 * time.Millisecond)
			return false
		}
		time.Sleep(1500 * time.Millisecond)
		cli = uplift()
		return a == cli
	})
	var wantUplift []map[string]any
	if err := json.Unmarshal([]byte(cli), &wantUplift); err != nil {
		t.Fatal(err)
	}
	control := 0
	for _, r := range wantUplift {
		if r["action"] == "*" {
			control = int(r["control"].(float64))
		}
	}
	if control == 0 {
		t.Fatalf("no control-group decision among %d: no uplift to compare\n%s", decided, cli)
	}

	b.do("dashboard", chromedp.Navigate(p.admin+"/ui/dashboard"), chromedp.WaitVisible(chromedp.ID("uplift")))
	gotUplift := eval[[]map[string]any](b, `[...document.querySelectorAll("#uplift tbody tr")].map(r => ({channel: r.dataset.channel, action: r.dataset.action,
		treated: Number(r.querySelector("[data-k=treated]").textContent), control: Number(r.querySelector("[data-k=control]").textContent),
		uplift: JSON.parse(r.dataset.uplift)}))`)
	if len(gotUplift) != len(wantUplift) {
		t.Errorf("dashboard: %d uplift rows, nba uplift %d:\n%v\n%s", len(gotUplift), len(wantUplift), gotUplift, cli)
	}
	for i := range min(len(gotUplift), len(wantUplift)) {
		g, w := gotUplift[i], wantUplift[i]
		for _, k := range []string{"channel", "action", "treated", "control", "uplift"} {
			if !reflect.DeepEqual(g[k], w[k]) {
				t.Errorf("dashboard uplift row %d %s: %v, nba uplift -json: %v", i, k, g[k], w[k])
			}
		}
	}
	if n := eval[int](b, `document.querySelectorAll("#decisions-table tbody tr").length`); n == 0 {
		t.Errorf("dashboard: no action decided shown after %d decisions", decided)
	}
	if n := eval[int](b, `Chart.getChart("rate-chart").data.datasets[0].data.filter(p => p.y > 0).length`); n == 0 {
		t.Errorf("dashboard: no decide rate above 0 after %d decisions", decided)
	}
	b.page("dashboard")

	// The customer page's timeline plots the contacts.
	b.do("customer timeline", chromedp.Navigate(p.admin+"/ui/customers/c00002"), chromedp.WaitVisible(chromedp.ID("timeline-chart")))
	if n := eval[int](b, `Chart.getChart("timeline-chart").data.datasets.reduce((n, d) => n + d.data.length, 0)`); n == 0 {
		t.Errorf("customer timeline: no point plotted")
	}
	b.page("customer-timeline")
}

// TestFunnelCommand: "nba funnel" refuses what it cannot decide with a
// message, and its table counts what its JSON counts.
func TestFunnelCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no channel", []string{"funnel"}, "-channel is required"},
		{"n too large", []string{"funnel", "-channel", "web", "-n", "100001"}, "want 1 to 100000"},
		{"n zero", []string{"funnel", "-channel", "web", "-n", "0"}, "want 1 to 100000"},
		{"bad at", []string{"funnel", "-channel", "web", "-at", "tomorrow"}, "RFC 3339"},
		{"unknown channel", []string{"funnel", "-channel", "fax", "-n", "10"}, `channel "fax" is not configured`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runNBA(t, tc.args...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want an error with %q", code, stderr, tc.want)
			}
		})
	}
	code, stdout, stderr := runNBA(t, "funnel", "-channel", "email", "-n", "300", "-at", "2026-12-24T09:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, js, _ := runNBA(t, "funnel", "-channel", "email", "-n", "300", "-at", "2026-12-24T09:00:00Z", "-json")
	var res server.FunnelResult
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Actions {
		fields := []string{a.ID, strconv.Itoa(a.Considered)}
		for _, p := range a.Passed {
			fields = append(fields, strconv.Itoa(p))
		}
		fields = append(fields, strconv.Itoa(a.Chosen), strconv.Itoa(a.First))
		if !containsFields(stdout, fields) {
			t.Errorf("table has no row %v:\n%s", fields, stdout)
		}
	}
	if want := fmt.Sprintf("300 customers on email as of 2026-12-24T09:00:00Z: %d with no action", res.NoAction); !strings.Contains(stdout, want) {
		t.Errorf("table's summary: want %q in\n%s", want, stdout)
	}
}

// containsFields reports whether a line of text has exactly these
// whitespace-separated fields.
func containsFields(text string, fields []string) bool {
	for _, l := range strings.Split(text, "\n") {
		if slices.Equal(strings.Fields(l), fields) {
			return true
		}
	}
	return false
}

// TestDecisionLogReportBounded: the dashboard's reader of the decision log
// answers empty lists without a log, and refuses, with the command to run
// instead, a log larger than it may hold in the serving process.
func TestDecisionLogReportBounded(t *testing.T) {
	dir := t.TempDir()
	got, err := decisionLogReport(dir, 1024)(nil)
	if err != nil || string(got) != `{"uplift":[],"propensity":[]}` {
		t.Errorf("no log: %s, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "decisions-20261206T120000.000000000Z-000001.jsonl.zst"), make([]byte, 2048), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := decisionLogReport(dir, 1024)(nil); err == nil || !strings.Contains(err.Error(), "run nba uplift "+dir) {
		t.Errorf("a log over the limit: %v", err)
	}
}
