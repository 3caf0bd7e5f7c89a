package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIdentityStoryE2E: against a real listener, an anonymous cookie
// abandons a cart and enters the cart journey, is shown two actions, logs
// in (identify with the CRM id), and the agent desktop, deciding by CRM id,
// sees the journey, the contacts and the caps; a second CRM id for the
// same cookie is refused with 409 identity_conflict; the merge is undone
// by its receipt through the admin API.
func TestIdentityStoryE2E(t *testing.T) {
	dir := exportDemo(t)
	manifest := filepath.Join(dir, "bundle.yaml")
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, `
identity:
  namespaces:
    crm_id: {primary: true, unique: true}
    email:  {unique: true, hash: true}
    device: {max: 5}
    cookie: {max: 20, ttl: 90d}
  blocked: ["", "null", "unknown", "0"]
`...)
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, "-bundle", dir, "-state", t.TempDir())

	p.ok("/v1/events", `{"ids":{"cookie":"c-91"},"type":"cart_abandoned","attrs":{"value":80}}`)
	p.ok("/v1/feedback", `{"ids":{"cookie":"c-91"},"action_id":"cart_reminder_1","channel":"web","outcome":"impression"}`)
	p.ok("/v1/feedback", `{"ids":{"cookie":"c-91"},"action_id":"birthday_gift","channel":"web","outcome":"impression"}`)
	if c := p.customer("c-91?ns=cookie"); c.CustomerID != "~cookie:c-91" {
		t.Fatalf("the anonymous visitor is %q", c.CustomerID)
	}
	r := decodeJSON[struct {
		CustomerID string   `json:"customer_id"`
		Merged     []string `json:"merged"`
	}](t, p.ok("/v1/identify", `{"ids":{"cookie":"c-91","crm_id":"c00042","email":"ann@example.com"},"event_id":"login-1"}`))
	if r.CustomerID != "c00042" || len(r.Merged) != 1 {
		t.Fatalf("identify answered %+v", r)
	}
	d := p.decide(`{"ids":{"crm_id":"c00042"},"channel":"agent","dry_run":true}`)
	if d.CustomerID != "c00042" {
		t.Errorf("the agent's decision is for %q", d.CustomerID)
	}
	c := p.customer("c00042")
	if st, _, ok := c.journey("abandoned_cart"); !ok || st != "active" {
		t.Errorf("the agent does not see the cart journey: %+v", c.Journeys)
	}
	if !c.hasContact("cart_reminder_1", "web", "impression", 0) || !c.hasContact("birthday_gift", "web", "impression", 0) {
		t.Errorf("the agent does not see the web contacts: %+v", c.History)
	}
	capSeen := false
	for _, k := range c.Caps {
		if k.Key == "birthday_gift" {
			capSeen = k.Count == 1
		}
	}
	if !capSeen {
		t.Errorf("the birthday_gift cap does not count the web impression: %+v", c.Caps)
	}
	if by := p.customer("c-91?ns=cookie"); by.CustomerID != "c00042" {
		t.Errorf("the cookie now names %q", by.CustomerID)
	}
	if by := p.customer("ann@example.com?ns=email"); by.CustomerID != "c00042" {
		t.Errorf("the e-mail names %q", by.CustomerID)
	}
	conflict := p.call("POST", "/v1/identify", `{"ids":{"cookie":"c-91","crm_id":"c00043"}}`)
	if conflict.status != http.StatusConflict || !strings.Contains(string(conflict.body), `"identity_conflict"`) {
		t.Errorf("a second crm id for the cookie: %v", conflict)
	}
	un, err := p.try("POST", p.admin+"/admin/identity/unmerge", `{"receipt":"`+r.Merged[0]+`"}`, "Authorization", "Bearer "+adminToken)
	if err != nil || un.status != http.StatusOK {
		t.Fatalf("unmerge: %v %v", un, err)
	}
	if c := p.customer("c00042"); len(c.Journeys) != 0 || len(c.History) != 0 {
		t.Errorf("after unmerge c00042 keeps %+v %+v", c.Journeys, c.History)
	}
	if c := p.customer("c-91?ns=cookie"); c.CustomerID != "~cookie:c-91" || len(c.History) != 2 {
		t.Errorf("after unmerge the cookie is %q with %d contacts", c.CustomerID, len(c.History))
	}
	if noAuth, _ := p.try("POST", p.admin+"/admin/identity/unmerge", `{"receipt":"`+r.Merged[0]+`"}`); noAuth.status != http.StatusUnauthorized {
		t.Errorf("unmerge without the token: %v", noAuth)
	}
}
