package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOnePersonStoryE2E is the story end to end against real
// processes: an anonymous cookie abandons a cart and gets the cart
// journey; it logs in (identify with the CRM id) and the agent desktop,
// deciding by CRM id, sees the journey, the contacts and the caps; the
// customer withdraws e-mail marketing consent (named by ids) and nba batch
// gives them a service notice on e-mail but no marketing; the customer is
// erased and nothing about them remains: the customer view answers 404 by
// either identifier, identify, feedback and events by either answer 410,
// nba state export names neither identifier and the decision-log tools
// skip the person's records.
func TestOnePersonStoryE2E(t *testing.T) {
	dir := exportDemoWithIdentity(t)
	t.Setenv("NBA_ERASURE_KEY", "e2e-erasure-key-0123456789abcdef")
	stateDir := t.TempDir()
	const cookie, crm = `{"cookie":"c-91"}`, `{"crm_id":"c00042"}`
	stop := func(p *proc) {
		t.Helper()
		p.signal(syscall.SIGTERM)
		if code, ok := p.waitExit(waitDeadline); !ok || code != 0 {
			t.Fatalf("nba serve did not stop cleanly (exit %d, %v); its log:\n%s", code, ok, p.logs)
		}
	}

	p := startServe(t, "-bundle", dir, "-state", stateDir)
	// The anonymous visitor abandons a cart and is shown the reminder.
	p.ok("/v1/events", `{"ids":`+cookie+`,"type":"cart_abandoned","attrs":{"value":80}}`)
	web := p.decide(`{"ids":` + cookie + `,"channel":"web","limit":3}`)
	if web.CustomerID != "~cookie:c-91" {
		t.Fatalf("the anonymous visitor's decision is for %q", web.CustomerID)
	}
	if _, ok := web.action("cart_reminder_1"); !ok {
		t.Fatalf("the anonymous visitor is not offered the cart reminder: %v", web.ids())
	}
	p.ok("/v1/feedback", `{"ids":`+cookie+`,"decision_id":"`+web.DecisionID+`","action_id":"cart_reminder_1","channel":"web","outcome":"impression"}`)
	p.ok("/v1/feedback", `{"ids":`+cookie+`,"action_id":"birthday_gift","channel":"web","outcome":"impression"}`) // capped: 2 in 30 days
	if st, _, ok := p.customer("c-91?ns=cookie").journey("abandoned_cart"); !ok || st != "active" {
		t.Fatalf("the anonymous visitor is not in the cart journey")
	}
	// The login; the agent desktop decides by CRM id.
	p.ok("/v1/identify", `{"ids":{"cookie":"c-91","crm_id":"c00042","email":"ann@example.com"},"event_id":"login-1"}`)
	if d := p.decide(`{"ids":` + crm + `,"channel":"agent"}`); d.CustomerID != "c00042" {
		t.Errorf("the agent's decision is for %q", d.CustomerID)
	}
	c := p.customer("c00042")
	if st, _, ok := c.journey("abandoned_cart"); !ok || st != "active" {
		t.Errorf("the agent does not see the cart journey: %+v", c.Journeys)
	}
	if !c.hasContact("cart_reminder_1", "web", "impression", 0) {
		t.Errorf("the agent does not see the web contact: %+v", c.History)
	}
	capSeen := false
	for _, k := range c.Caps {
		capSeen = capSeen || k.Scope == "action" && k.Key == "birthday_gift" && k.Count == 1
	}
	if !capSeen {
		t.Errorf("no cap counts the anonymous visitor's impression: %+v", c.Caps)
	}
	// The customer withdraws e-mail marketing consent, named by ids; an
	// open ticket makes the service recovery due.
	p.ok("/v1/consent", `{"ids":`+crm+`,"channel":"email","purpose":"marketing","status":"denied","source":"preference_center"}`)
	p.ok("/v1/events", `{"ids":`+crm+`,"type":"ticket_opened"}`)
	stop(p)

	list := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(list, []byte("c00042\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runNBA(t, "batch", "-bundle", dir, "-channel", "email", "-limit", "3", "-customers", list, "-state", stateDir)
	if code != 0 {
		t.Fatalf("nba batch: exit %d: %s", code, stderr)
	}
	var given []string
	for line := range strings.Lines(stdout) {
		var d struct {
			CustomerID string `json:"customer_id"`
			Actions    []struct {
				ID string `json:"id"`
			} `json:"actions"`
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		for _, a := range d.Actions {
			given = append(given, a.ID)
		}
	}
	// service_recovery is the demo's one action of purpose service.
	if len(given) != 1 || given[0] != "service_recovery" {
		t.Errorf("nba batch -channel email gave %v, want the service recovery and no marketing", given)
	}

	// The erasure.
	p = startServe(t, "-bundle", dir, "-state", stateDir)
	if r, err := p.try("DELETE", p.admin+"/admin/customers/c00042", "", "Authorization", "Bearer "+adminToken); err != nil || r.status != http.StatusOK {
		t.Fatalf("erasure: %v %v", r, err)
	}
	for _, id := range []string{"c00042", "c-91?ns=cookie", "ann@example.com?ns=email"} {
		if r := p.call("GET", "/v1/customers/"+id, ""); r.status != http.StatusNotFound {
			t.Errorf("GET /v1/customers/%s after the erasure: %v, want 404", id, r)
		}
	}
	for _, ids := range []string{cookie, crm} {
		for _, req := range [][2]string{
			{"/v1/identify", `{"ids":` + ids + `}`},
			{"/v1/feedback", `{"ids":` + ids + `,"action_id":"cart_reminder_1","channel":"web","outcome":"click"}`},
			{"/v1/events", `{"ids":` + ids + `,"type":"cart_abandoned"}`},
		} {
			if r := p.call("POST", req[0], req[1]); r.status != http.StatusGone || !strings.Contains(string(r.body), `"erased"`) {
				t.Errorf("POST %s %s after the erasure: %v, want 410 erased", req[0], req[1], r)
			}
		}
	}
	stop(p)

	code, stdout, stderr = runNBA(t, "state", "export", "-bundle", dir, "-state", stateDir)
	if code != 0 {
		t.Fatalf("nba state export: exit %d: %s", code, stderr)
	}
	for _, id := range []string{"c00042", "c-91", "ann@example.com"} {
		if strings.Contains(stdout, id) {
			t.Errorf("nba state export names %q after the erasure:\n%s", id, stdout)
		}
	}
	code, stdout, stderr = runNBA(t, "log", filepath.Join(stateDir, "decisions"))
	if code != 0 {
		t.Fatalf("nba log: exit %d: %s", code, stderr)
	}
	for _, id := range []string{"c00042", "c-91"} {
		if strings.Contains(stdout, id) {
			t.Errorf("nba log shows records of %q after the erasure:\n%s", id, stdout)
		}
	}
	if !strings.Contains(stderr, "records of erased customers skipped") {
		t.Errorf("nba log does not say it skipped the erased customer's records: %s", stderr)
	}
}
