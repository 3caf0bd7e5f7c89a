package main

// The studio's explorer what-ifs, the candidate bundle beside the live one,
// the catalog page and an accessibility check of every page, in headless
// Chromium against a real "nba serve" on the demo (helpers in
// studio_e2e_test.go).

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"nba/nba/demo"
)

// axeImpacts are the axe-core impacts that fail TestStudioPagesInBrowser;
// "moderate" and "minor" findings are logged.
var axeImpacts = []string{"serious", "critical"}

// axeViolation is one rule axe-core found broken, and where.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axe runs axe-core (testdata/axe, vendored from npm) on the page as it
// stands, over the WCAG 2.1 A and AA rules and axe's best practices, and
// fails the test on a violation of the impacts in axeImpacts, or on a
// visible control that the Tab key does not reach or that has no name.
func (b *browser) axe(name string) {
	b.t.Helper()
	src, err := os.ReadFile("testdata/axe/axe.min.js")
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](string(src)+";0")); err != nil {
		b.t.Fatalf("%s: cannot load axe-core: %v", name, err)
	}
	const run = `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
		.then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
			nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))))`
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](run, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: axe-core: %v", name, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		b.t.Fatalf("%s: axe-core's answer %q: %v", name, out, err)
	}
	// The keyboard: every visible control is in the Tab order and has a
	// name (its label, aria-label or text).
	keys := eval[[]string](b, `[...document.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]")]
		.filter(e => e.offsetParent !== null && !e.disabled && e.id !== "main")
		.filter(e => e.tabIndex < 0 || !((e.labels && e.labels.length) || e.getAttribute("aria-label") || e.textContent.trim()))
		.map(e => (e.tabIndex < 0 ? "not reachable: " : "no name: ") + e.outerHTML.slice(0, 80))`)
	for _, k := range keys {
		b.t.Errorf("%s: keyboard: %s", name, k)
	}
	for _, v := range vs {
		if slices.Contains(axeImpacts, v.Impact) {
			b.t.Errorf("%s: accessibility: %s (%s, %s) at %q", name, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			b.t.Logf("%s: accessibility, %s: %s (%s) at %q", name, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
}

// poll waits until the JavaScript expression is true in the page.
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
		b.t.Fatalf("%s: waiting for %s: %v (console errors so far: %q)", what, expr, err, b.consoleErrors())
	}
}

// candidateBundle writes the demo bundle into a directory with its catalog
// edited.
func candidateBundle(t *testing.T, edits ...string) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(demo.Bundle(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(demo.Bundle(), p)
		if err != nil {
			return err
		}
		if p == "catalog.yaml" {
			for i := 0; i+1 < len(edits); i += 2 {
				if !strings.Contains(string(data), edits[i]) {
					t.Fatalf("the demo catalog has no %q", edits[i])
				}
				data = []byte(strings.Replace(string(data), edits[i], edits[i+1], 1))
			}
		}
		return os.WriteFile(filepath.Join(dir, p), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStudioCandidateRefused: nba serve does not start with a candidate
// bundle a reload would refuse, and says why.
func TestStudioCandidateRefused(t *testing.T) {
	dir := candidateBundle(t, "    lever: 1.2\n", "    levr: 1.2\n")
	p := launch(t, "-studio.candidate", dir)
	code, ok := p.waitExit(startDeadline)
	if !ok {
		t.Fatal("nba serve started with a candidate bundle whose catalog has an unknown field")
	}
	if code == 0 || !p.logs.contains("-studio.candidate: cannot load candidate bundle") || !p.logs.contains(`unknown field \"levr\"`) && !p.logs.contains(`unknown field "levr"`) {
		t.Errorf("exit %d; log:\n%s", code, p.logs)
	}
}

// TestStudioPagesInBrowser: in the decision explorer a lever typed into
// the page reorders the ranking as the API's what-if does, the candidate
// bundle's decision of the same request shows beside the live one with
// the differences marked, and nothing is recorded; the catalog page draws
// the demo's journeys; every page loads without a console error and passes
// axe-core (no serious or critical violation).
func TestStudioPagesInBrowser(t *testing.T) {
	b := newBrowser(t)
	// The candidate pins the extended warranty (tier 1).
	dir := candidateBundle(t, "version: demo-2026-11", "version: demo-candidate",
		"{id: us_warranty, name: \"Up-sell: extended warranty\", group: up_sell,", "{id: us_warranty, name: \"Up-sell: extended warranty\", group: up_sell, tier: 1,")
	p := startServe(t, "-studio.candidate", dir)
	const c = "c00042"

	// The token first, on the start page's deep link to the explorer.
	b.do("explorer", chromedp.Navigate(p.admin+"/ui/explain?customer="+c+"&channel=agent"), chromedp.WaitVisible(chromedp.ID("admin-token")))
	b.axe("token")
	b.do("token", chromedp.SendKeys(chromedp.ID("admin-token"), adminToken), chromedp.Click(chromedp.CSS("#token-form button")),
		chromedp.WaitVisible(chromedp.ID("candidates")), chromedp.WaitVisible(chromedp.ID("compare")))
	ranked := func() []string {
		return eval[[]string](b, `[...document.querySelectorAll("#candidates tbody tr.chosen, #candidates tbody tr.ranked")].map(r => r.dataset.id)`)
	}
	before := ranked()
	if len(before) < 2 {
		t.Fatalf("explorer ranks %v for %s on agent: too few to reorder", before, c)
	}
	b.axe("explain")

	// The candidate beside the live bundle: it pins the warranty first.
	if got := b.text("#compare-candidate"); !strings.HasPrefix(got, "us_warranty") {
		t.Errorf("candidate chooses %q, want us_warranty first (pinned in the candidate)", got)
	}
	if got := b.text("#compare-live"); !strings.HasPrefix(got, before[0]) {
		t.Errorf("compare: live chooses %q, the explorer's first is %s", got, before[0])
	}
	if n := eval[int](b, `document.querySelectorAll("#compare-table tr.diff").length`); n == 0 {
		t.Errorf("compare: no difference marked between the live bundle and the candidate")
	}
	b.do("scroll to the comparison", chromedp.ScrollIntoView(chromedp.ID("compare")))
	b.page("explain-candidate")

	// A what-if: the last-ranked action's lever raised in the page.
	last := before[len(before)-1]
	b.do("lever", chromedp.SendKeys(chromedp.ID("wi-lever-"+last), "1000"+kb.Tab))
	b.poll("lever", `document.getElementById("whatif-status").textContent.includes("`+last+`: lever 1000")`)
	after := ranked()
	if len(after) == 0 || after[0] != last {
		t.Errorf("after lever 1000 on %s the page ranks %v, want it first (before %v)", last, after, before)
	}
	// The page shows what the API's what-if answers.
	r, err := p.try("POST", p.admin+"/ui/api/v1/decide",
		`{"customer_id":"`+c+`","channel":"agent","limit":3,"explain":true,"overrides":{"actions":{"`+last+`":{"lever":1000}}}}`,
		"Authorization", "Bearer "+adminToken)
	if err != nil || r.status != 200 {
		t.Fatalf("what-if over the API: %v %v", r, err)
	}
	want := decodeJSON[decision](t, r.body)
	byRank := map[int]string{}
	for _, x := range want.Candidates {
		if x.Rank > 0 {
			byRank[x.Rank] = x.ID
		}
	}
	var wantRanked []string
	for rank := 1; byRank[rank] != ""; rank++ {
		wantRanked = append(wantRanked, byRank[rank])
	}
	if !slices.Equal(after, wantRanked) {
		t.Errorf("the page ranks %v under the what-if, the API %v", after, wantRanked)
	}
	if moved := eval[int](b, `document.querySelectorAll("#candidates tr.moved").length`); moved == 0 {
		t.Errorf("no row marked as moved by the what-if")
	}
	b.do("scroll to the what-if", chromedp.ScrollIntoView(chromedp.ID("whatif-form")))
	b.page("explain-whatif")
	b.axe("explain-whatif")
	// Reset: the catalog's ranking again.
	b.do("reset", chromedp.Click(chromedp.ID("wi-reset")))
	b.poll("reset", `document.getElementById("whatif-status").textContent.startsWith("No what-if")`)
	if got := ranked(); !slices.Equal(got, before) {
		t.Errorf("after the reset the page ranks %v, want %v", got, before)
	}

	// On the web site, where Thompson sampling draws, the page's decisions
	// share one seed: a what-if that changes nothing (a weight set to
	// what it is) moves nothing.
	b.do("explorer on web", chromedp.Navigate(p.admin+"/ui/explain?customer="+c+"&channel=web"), chromedp.WaitVisible(chromedp.CSS("#candidates td.num")))
	webFirst := eval[string](b, `document.querySelector("#candidates tbody tr.chosen").dataset.id`)
	weight := eval[string](b, `document.getElementById("wi-weight-`+webFirst+`").placeholder`)
	b.do("same weight", chromedp.SendKeys(chromedp.ID("wi-weight-"+webFirst), weight+kb.Tab))
	b.poll("same weight", `document.getElementById("whatif-status").textContent.includes("`+webFirst+`: weight")`)
	if moved := eval[[]string](b, `[...document.querySelectorAll("#candidates tr.moved")].map(r => r.dataset.id)`); len(moved) > 0 {
		t.Errorf("on web, setting %s's weight to its own %s moved %v", webFirst, weight, moved)
	}

	// The catalog page: the locked abandoned-cart journey, its steps in
	// order with the wait between them.
	b.do("catalog", chromedp.Navigate(p.admin+"/ui/catalog"), chromedp.WaitVisible(chromedp.ID("journey-abandoned_cart")))
	steps := eval[[]string](b, `[...document.querySelectorAll("#journey-abandoned_cart .step")].map(s => s.dataset.action)`)
	if want := []string{"cart_reminder_1", "cart_reminder_2"}; !slices.Equal(steps, want) {
		t.Errorf("catalog: abandoned_cart steps %v, want %v", steps, want)
	}
	j := b.text("#journey-abandoned_cart")
	for _, w := range []string{"lock", "ahead of 3", "wait 1d", "on event cart_abandoned", "on purchase", "after 7d in it", "tier 3"} {
		if !strings.Contains(j, w) {
			t.Errorf("catalog: journey abandoned_cart %q lacks %q", j, w)
		}
	}
	if got := b.text("#journey-welcome"); !strings.Contains(got, "free") || !strings.Contains(got, "wait 2d") {
		t.Errorf("catalog: journey welcome %q: want free and wait 2d", got)
	}
	if got := b.text(`#actions-cross_sell`); !strings.Contains(got, "xs_shoes") {
		t.Errorf("catalog: cross_sell group %q lacks xs_shoes", got)
	}
	if got := b.text(`#group-sales`); !strings.Contains(got, "!profile.open_ticket") || !strings.Contains(got, "pause 30d after a reject") {
		t.Errorf("catalog: group sales %q lacks its rule or suppression", got)
	}
	b.page("catalog")
	b.axe("catalog")

	// Every other page passes the checks too.
	for _, pg := range []struct{ name, path, wait string }{
		{"home", "/ui/", "ul.pages"},
		{"customer", "/ui/customers/" + c, "#profile"},
		{"funnel", "/ui/funnel", "h1"},
		{"dashboard", "/ui/dashboard", "h1"},
	} {
		b.do(pg.name, chromedp.Navigate(p.admin+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.wait)))
		time.Sleep(300 * time.Millisecond) // let the page's requests land
		b.axe(pg.name)
	}
	// The what-ifs and the candidate's decisions recorded nothing.
	if v := p.customer(c); len(v.History) != 0 {
		t.Errorf("after the studio's what-ifs, %s has %d contacts, want 0", c, len(v.History))
	}
	if p.logs.contains(c) || p.logs.contains(adminToken) {
		t.Errorf("the process log names the customer or the token:\n%s", p.logs)
	}
}

// TestStudioRendersAfterPageScripts is the regression test of a page that
// rendered before its script had run: app.js routed as soon as it ran and
// its first request was answered, and a page script (explain.js) still
// loading was "not a function". The test holds explain.js back for a
// while; the page must wait for it.
func TestStudioRendersAfterPageScripts(t *testing.T) {
	b := newBrowser(t)
	p := startServe(t)
	b.do("start page", chromedp.Navigate(p.admin+"/ui/"), chromedp.WaitVisible(chromedp.CSS("ul.pages")))
	// The token kept, so that the explorer's first request is answered
	// without a prompt.
	eval[any](b, `sessionStorage.setItem("nba-admin-token", "`+adminToken+`")`)
	paused := chromedp.Events(b.ctx, fetch.RequestPaused)
	if _, err := chromedp.Call(b.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/ui/static/explain.js"}}}); err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{}, 1)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			select {
			case held <- struct{}{}:
			default:
			}
			time.Sleep(1500 * time.Millisecond)
			_, _ = chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	b.do("explorer", chromedp.Navigate(p.admin+"/ui/explain?customer=c00042&channel=agent"), chromedp.WaitVisible(chromedp.ID("candidates")))
	select {
	case <-held:
	default:
		t.Fatal("explain.js was not held back: the test tests nothing")
	}
	b.page("explain-late-script")
}
