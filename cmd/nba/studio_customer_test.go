package main

// The studio's customer page in headless Chromium against a real "nba
// serve" on the demo with identity stitching (helpers in
// studio_e2e_test.go and studio_pages_test.go): the suppressions in force
// with their end, consent with its trail, the identifiers, and the search
// by any identifier.

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestStudioCustomerInBrowser: after a reject, the customer page lists the
// suppression the demo's sales group starts (the action, and until when,
// as the API says); it shows the consent a change denied with its trail,
// and the identifiers a link added; searching by a cookie opens the
// customer with the customer id in the address (not the cookie); the page
// passes axe-core; the log names neither the customer nor the cookie.
func TestStudioCustomerInBrowser(t *testing.T) {
	dir := exportDemoWithIdentity(t)
	b := newBrowser(t)
	p := startServe(t, "-bundle", dir)
	const c, cookie, action = "c00042", "ck-7731", "us_warranty" // us_warranty: up_sell, in the sales group
	p.ok("/v1/feedback", `{"customer_id":"`+c+`","action_id":"`+action+`","channel":"web","outcome":"reject"}`)
	p.ok("/v1/consent", `{"customer_id":"`+c+`","channel":"email","purpose":"marketing","status":"denied","source":"preference-centre"}`)
	p.ok("/v1/identify", `{"ids":{"cookie":"`+cookie+`","crm_id":"`+c+`"},"event_id":"login-7"}`)
	view := p.customer(c)
	if len(view.Suppressions) != 1 || view.Suppressions[0].ActionID != action || view.Suppressions[0].Group != "sales" {
		t.Fatalf("after a reject of %s the API lists suppressions %+v", action, view.Suppressions)
	}
	until, err := time.Parse(time.RFC3339Nano, view.Suppressions[0].Until)
	if err != nil {
		t.Fatal(err)
	}
	since, _ := time.Parse(time.RFC3339Nano, view.Suppressions[0].Since)
	if d := until.Sub(since); d != 30*24*time.Hour {
		t.Errorf("the pause lasts %v, the demo's sales group says 30d", d)
	}

	// The search by cookie, from the empty customer page.
	b.do("customer page", chromedp.Navigate(p.admin+"/ui/customers/"), chromedp.WaitVisible(chromedp.ID("admin-token")))
	b.do("token", chromedp.SendKeys(chromedp.ID("admin-token"), adminToken), chromedp.Click(chromedp.CSS("#token-form button")),
		chromedp.WaitVisible(chromedp.ID("customer-ns")))
	b.do("search by cookie", chromedp.SetValue(chromedp.ID("customer-ns"), "cookie"),
		chromedp.SendKeys(chromedp.ID("customer-id"), cookie), chromedp.Click(chromedp.CSS("#customer-form button")),
		chromedp.WaitVisible(chromedp.ID("suppressions")))
	if got := b.text("#customer-shown"); got != c {
		t.Errorf("the search by cookie shows %q, want %s", got, c)
	}
	if got := eval[string](b, `location.pathname + location.search`); got != "/ui/customers/"+c {
		t.Errorf("after the search the address is %q, want /ui/customers/%s (no cookie in it)", got, c)
	}
	if got := b.text("#found-by"); got != "cookie" {
		t.Errorf("found by %q, want cookie", got)
	}

	// The suppression, with its end as the API says.
	rows := eval[[][]string](b, `[...document.querySelectorAll("#suppressions tbody tr")].map(r => [...r.cells].map(c => c.textContent))`)
	wantUntil := until.UTC().Format("2006-01-02 15:04:05") + " UTC"
	if len(rows) != 1 || rows[0][0] != action || rows[0][4] != wantUntil || rows[0][1] != "paused 30d after a reject (group sales)" || rows[0][2] != "1 reject" {
		t.Errorf("suppressions on the page %q: want %s until %s (group sales, a reject)", rows, action, wantUntil)
	}

	// Consent: e-mail marketing denied, its trail behind a disclosure.
	consent := eval[[][]string](b, `[...document.querySelectorAll("#consent tbody tr")].map(r => [...r.cells].slice(0, 5).map(c => c.textContent))`)
	found := false
	for _, row := range consent {
		if row[0] == "email" && row[1] == "marketing" {
			found = true
			if row[2] != "denied" || row[4] != "preference-centre" {
				t.Errorf("consent email/marketing on the page %q: want denied by preference-centre", row)
			}
		} else if row[2] != "granted" || row[3] != "catalog default" {
			t.Errorf("consent %q: want the catalog's default, granted", row)
		}
	}
	if !found || len(consent) < 2 {
		t.Errorf("consent on the page %q: want every channel and purpose, email/marketing among them", consent)
	}
	b.do("open the trail", chromedp.Click(chromedp.CSS("#consent details summary")))
	if trail := b.text("#consent details ol"); !strings.Contains(trail, "denied") || !strings.Contains(trail, "preference-centre") {
		t.Errorf("consent trail %q: want the denial by preference-centre", trail)
	}

	// The identifiers with their provenance.
	if ids := b.text("#identifiers tbody"); !strings.Contains(ids, cookie) || !strings.Contains(ids, "login-7") || !strings.Contains(ids, "crm_id") {
		t.Errorf("identifiers %q: want the cookie and crm_id linked by login-7", ids)
	}
	b.page("customer-suppressions")
	b.axe("customer-suppressions")
	b.do("scroll to the consent", chromedp.ScrollIntoView(chromedp.ID("h-consent")))
	b.page("customer-consent")

	// A deep link by identifier opens the customer too, and the address
	// drops the identifier.
	b.do("deep link by cookie", chromedp.Navigate(p.admin+"/ui/customers/"+cookie+"?ns=cookie"), chromedp.WaitVisible(chromedp.ID("suppressions")))
	if got := eval[string](b, `location.pathname + location.search`); got != "/ui/customers/"+c {
		t.Errorf("after the deep link by cookie the address is %q", got)
	}
	// An identifier no one has.
	b.do("unknown cookie", chromedp.Navigate(p.admin+"/ui/customers/ck-none?ns=cookie"), chromedp.WaitVisible(chromedp.CSS("#customer-out .notice")))
	if got := b.text("#customer-out .notice"); !strings.Contains(got, "No customer has this cookie") {
		t.Errorf("unknown cookie: %q", got)
	}
	// Chromium logs the API's 404 (the answer the page reads) as a
	// console error; that one is expected, any other is not.
	b.mu.Lock()
	errs := b.errs[:0]
	for _, e := range b.errs {
		if !strings.Contains(e, "status of 404") || !strings.Contains(e, "/ui/api/v1/customers/ck-none?ns=cookie") {
			errs = append(errs, e)
		}
	}
	b.errs = errs
	b.mu.Unlock()
	b.page("customer-unknown-identifier")

	if p.logs.contains(c) || p.logs.contains(cookie) || p.logs.contains(adminToken) {
		t.Errorf("the process log names the customer, the cookie or the token:\n%s", p.logs)
	}
}
