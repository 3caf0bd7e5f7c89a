package main

// The studio in a real browser: headless Chromium (Debian's chromium, which
// .ci/run installs), driven by chromedp against a real "nba serve" on the
// demo. The test writes a screenshot of each page at 1280×800 into
// docs/screenshots/ (not committed; the README shows a copy).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotDir is where TestStudioInBrowser writes its screenshots,
// relative to this package's directory.
const screenshotDir = "../../docs/screenshots"

// chromium returns the path of the Chromium binary; without one the test
// is skipped, except in CI, where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium: the browser tests of the studio need it (apt-get install chromium)")
	}
	t.Skip("no chromium (apt-get install chromium): skipping the browser tests of the studio")
	return ""
}

// browser is one headless Chromium with a fresh profile, and the console
// errors of its page.
type browser struct {
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("cannot start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.errs = append(b.errs, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs the actions and fails the test on an error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (console errors so far: %q)", what, err, b.consoleErrors())
	}
}

// text returns the text of the first element sel matches.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.errs)
}

// page checks that the page has logged no console error and writes its
// screenshot.
func (b *browser) page(name string) {
	b.t.Helper()
	time.Sleep(200 * time.Millisecond) // let late console messages arrive
	if errs := b.consoleErrors(); len(errs) > 0 {
		b.t.Errorf("%s: console errors: %q", name, errs)
		b.mu.Lock()
		b.errs = nil
		b.mu.Unlock()
	}
	// No value the page failed to fill in.
	if bad := eval[[]string](b, `document.getElementById("main").innerText.match(/\b(undefined|null|NaN|\[object Object\])\b/g) || []`); len(bad) > 0 {
		b.t.Errorf("%s: the page shows %q", name, bad)
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("%s: screenshot: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestStudioInBrowser opens each page of the studio in Chromium against a
// real sidecar with an admin token: the page asks for the token; the
// customer page shows the contact a feedback recorded; the decision
// explorer shows every candidate as the API explains it, in rank order,
// with the sales actions an open ticket removed at their stage; the pages
// not built yet say so; no page logs a console error.
func TestStudioInBrowser(t *testing.T) {
	b := newBrowser(t)
	p := startServe(t)
	const c = "c00042"
	d := p.decide(`{"customer_id":"` + c + `","channel":"web","limit":1}`)
	if len(d.Actions) == 0 {
		t.Fatalf("the demo decided nothing for %s on web", c)
	}
	shown := d.Actions[0].ID
	p.ok("/v1/feedback", fmt.Sprintf(`{"decision_id":%q,"customer_id":%q,"action_id":%q,"channel":"web","outcome":"impression"}`, d.DecisionID, c, shown))
	// And one on SMS, whose channel limit (one a week) it reaches.
	sms := p.decide(`{"customer_id":"` + c + `","channel":"sms","limit":1}`)
	if len(sms.Actions) == 0 {
		t.Fatalf("the demo decided nothing for %s on sms", c)
	}
	p.ok("/v1/feedback", fmt.Sprintf(`{"decision_id":%q,"customer_id":%q,"action_id":%q,"channel":"sms","outcome":"impression"}`, sms.DecisionID, c, sms.Actions[0].ID))
	p.ok("/v1/events", `{"customer_id":"`+c+`","type":"ticket_opened"}`)

	// The customer page, by its deep link: first the admin token.
	b.do("customer page", chromedp.Navigate(p.admin+"/ui/customers/"+c), chromedp.WaitVisible(chromedp.ID("admin-token")))
	b.page("token")
	b.do("token", chromedp.SendKeys(chromedp.ID("admin-token"), adminToken), chromedp.Click(chromedp.CSS("#token-form button")),
		chromedp.WaitVisible(chromedp.ID("contacts")))
	if got := b.text("#customer-shown"); got != c {
		t.Errorf("customer page shows %q, want %s", got, c)
	}
	contacts := b.text("#contacts tbody")
	if !strings.Contains(contacts, shown) || !strings.Contains(contacts, "impression") {
		t.Errorf("customer page contacts %q: want the impression of %s", contacts, shown)
	}
	// The web impression counts toward the web channel's limits and the
	// action's caps: the caps table lists what the API counts.
	var counted []string
	for _, cp := range p.customer(c).Caps {
		if cp.Count > 0 {
			counted = append(counted, cp.Policy)
		}
	}
	if len(counted) == 0 {
		t.Errorf("the API counts no cap after an impression")
	}
	if caps := b.text("#caps tbody"); len(counted) > 0 && !strings.Contains(caps, counted[0]) {
		t.Errorf("customer page caps %q: want %q, which the API counts", caps, counted[0])
	}
	if prof := b.text("#profile tbody"); !strings.Contains(prof, "open_ticket") {
		t.Errorf("customer page profile %q: want the live field open_ticket", prof)
	}
	b.page("customer")

	// The explorer: the same rows as the API's explanation, in rank order
	// (on the agent desktop, which does not explore: the same decision
	// twice ranks the same).
	want := p.decide(`{"customer_id":"` + c + `","channel":"agent","limit":3,"explain":true,"dry_run":true}`)
	b.do("explorer", chromedp.Navigate(p.admin+"/ui/explain?customer="+c+"&channel=agent"), chromedp.WaitVisible(chromedp.ID("candidates")))
	rows := eval[[][]string](b, `[...document.querySelectorAll("#candidates tbody tr")].map(r => [r.dataset.id, r.dataset.stage, r.className, r.querySelector(".reason").textContent])`)
	type row struct{ id, stage string }
	var wantRanked, wantOthers []row
	ranks := map[string]int{}
	for _, cd := range want.Candidates {
		if cd.Rank > 0 {
			ranks[cd.ID] = cd.Rank
			wantRanked = append(wantRanked, row{cd.ID, cd.Stage})
		} else {
			wantOthers = append(wantOthers, row{cd.ID, cd.Stage})
		}
	}
	slices.SortFunc(wantRanked, func(x, y row) int { return ranks[x.id] - ranks[y.id] })
	wantRows := append(wantRanked, wantOthers...)
	var gotRows []row
	suppressed := 0
	for _, r := range rows {
		gotRows = append(gotRows, row{r[0], r[1]})
		if r[1] == "suitability" && r[3] == "failed suitable: !profile.open_ticket" {
			suppressed++
			if r[2] != "removed" {
				t.Errorf("explorer: %s removed by the ticket is shown as %q", r[0], r[2])
			}
		}
		if (r[2] == "chosen") != (r[1] == "chosen") {
			t.Errorf("explorer: %s at stage %s marked %q", r[0], r[1], r[2])
		}
	}
	if !slices.Equal(gotRows, wantRows) {
		t.Errorf("explorer rows (id, stage):\n%v\nwant the API's in rank order:\n%v", gotRows, wantRows)
	}
	if suppressed == 0 {
		t.Errorf("explorer: no candidate shown as failed suitable: !profile.open_ticket after the ticket: %v", rows)
	}
	if chosen := b.text("#chosen"); len(want.Actions) == 0 || !strings.HasPrefix(chosen, want.Actions[0].ID) {
		t.Errorf("explorer: chosen %q, the API chose %v", chosen, want.ids())
	}
	b.page("explain-agent")
	// And the web site, where Thompson sampling ranks by its draws.
	b.do("explorer on web", chromedp.Navigate(p.admin+"/ui/explain?customer="+c+"&channel=web"), chromedp.WaitVisible(chromedp.CSS("#candidates td.num")))
	if n := eval[int](b, `document.querySelectorAll("#candidates tbody tr.chosen").length`); n == 0 {
		t.Errorf("explorer on web: no chosen row")
	}
	b.page("explain")
	// A deep link with a time decides as of then.
	b.do("explorer at a time", chromedp.Navigate(p.admin+"/ui/explain?customer="+c+"&channel=web&at=2026-12-24T09:00:00Z"),
		chromedp.WaitVisible(chromedp.ID("candidates")))
	if got := b.text("#as-of"); got != "2026-12-24 09:00:00 UTC" {
		t.Errorf("explorer at 2026-12-24T09:00:00Z says as of %q", got)
	}
	if got := eval[string](b, `document.getElementById("x-at").value`); got != "2026-12-24T09:00:00Z" {
		t.Errorf("explorer's at field: %q", got)
	}
	b.page("explain-at")

	// The start page (the catalog: studio_pages_test.go; the funnel and
	// the dashboard: studio_funnel_test.go).
	b.do("start page", chromedp.Navigate(p.admin+"/ui/"), chromedp.WaitVisible(chromedp.CSS("ul.pages")))
	b.page("home")

	// The decisions the pages made were dry runs: the customer's contacts
	// are still the two impressions.
	if v := p.customer(c); len(v.History) != 2 {
		t.Errorf("after the studio's decisions, %s has %d contacts, want 2: %+v", c, len(v.History), v.History)
	}
	// The pages' addresses held the customer id and the token; the
	// process logs neither.
	if p.logs.contains(c) || p.logs.contains(adminToken) {
		t.Errorf("the process log names the customer or the token:\n%s", p.logs)
	}
}
