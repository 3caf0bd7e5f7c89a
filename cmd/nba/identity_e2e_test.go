package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"nba/state/redis/redistest"
)

// TestIdentityStoryE2E: against a real listener, an anonymous cookie
// abandons a cart and enters the cart journey, is shown two actions, logs
// in (identify with the CRM id), and the agent desktop, deciding by CRM id,
// sees the journey, the contacts and the caps; a second CRM id for the
// same cookie is refused with 409 identity_conflict; the merge is undone
// by its receipt through the admin API.
func TestIdentityStoryE2E(t *testing.T) {
	dir := exportDemoWithIdentity(t)
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

// TestIdentityReplicasE2E: links, events and feedback for one person from
// 16 clients spread over 3 nba serve processes sharing one Redis lose no
// update: the person's profile ends with every event and every contact,
// whichever replica took it and whatever merges raced with it.
func TestIdentityReplicasE2E(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	dir := exportDemoWithIdentity(t)
	t.Setenv("NBA_IDENTITY_KEY", "e2e-identity-key-0123456789")
	var ps [3]*proc
	for i := range ps {
		ps[i] = startServe(t, "-bundle", dir, "-state", t.TempDir(), "-state.redis", rs.URL, "-state.redis.allowVolatile", "-decisionlog=false")
	}
	// post sends body until it is not refused by a conflict (a client's
	// retry with the same event_id, which dedupes it).
	post := func(p *proc, path, body string) error {
		for range 8 {
			r, err := p.try("POST", p.base+path, body)
			if err != nil {
				return err
			}
			if r.status == http.StatusOK {
				return nil
			}
			if r.status != http.StatusConflict {
				return fmt.Errorf("POST %s %s: %v", path, body, r)
			}
		}
		return fmt.Errorf("POST %s %s: conflicts did not settle", path, body)
	}
	const workers, per = 16, 9
	var wg sync.WaitGroup
	var events, contacts atomic.Int64
	errs := make(chan error, workers*per)
	for w := range workers {
		p := ps[w%3]
		wg.Go(func() {
			for i := range per {
				cookie := fmt.Sprintf("c-%d", (w+i)%5)
				var err error
				switch i % 3 {
				case 0:
					err = post(p, "/v1/identify", fmt.Sprintf(`{"ids":{"cookie":%q,"crm_id":"p1"}}`, cookie))
				case 1:
					if err = post(p, "/v1/events", fmt.Sprintf(`{"ids":{"cookie":%q},"type":"purchase","event_id":"e-%d-%d"}`, cookie, w, i)); err == nil {
						events.Add(1)
					}
				case 2:
					if err = post(p, "/v1/feedback", fmt.Sprintf(`{"ids":{"crm_id":"p1"},"action_id":"birthday_gift","channel":"web","outcome":"impression","event_id":"f-%d-%d"}`, w, i)); err == nil {
						contacts.Add(1)
					}
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A last round of links merges any anonymous profile made meanwhile.
	for c := range 5 {
		ps[0].ok("/v1/identify", fmt.Sprintf(`{"ids":{"cookie":"c-%d","crm_id":"p1"}}`, c))
	}
	for i, p := range ps {
		c := p.customer("p1")
		if got := c.LiveFields["orders_since_snapshot"].Value; got != float64(events.Load()) {
			t.Errorf("replica %d: orders %v, want %d", i, got, events.Load())
		}
		for _, k := range c.Caps {
			if k.Key == "birthday_gift" && int64(k.Count) != contacts.Load() {
				t.Errorf("replica %d: birthday_gift impressions %d, want %d", i, k.Count, contacts.Load())
			}
		}
		for n := range 5 {
			if by := p.customer(fmt.Sprintf("c-%d?ns=cookie", n)); by.CustomerID != "p1" {
				t.Errorf("replica %d: cookie c-%d names %q", i, n, by.CustomerID)
			}
		}
	}
}

// exportDemoWithIdentity writes the demo bundle out with the identity
// section of the example in its bundle.yaml (crm_id primary and
// unique, email unique and hashed, device at most 5, cookie at most 20 with
// a 90-day ttl, the blocked values) and returns its directory.
func exportDemoWithIdentity(t *testing.T) string {
	t.Helper()
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
	return dir
}
