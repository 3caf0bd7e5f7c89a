package sidecar

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"nba/nba/server"
)

const identitySection = `identity:
  namespaces:
    crm_id: {primary: true, unique: true}
    email:  {unique: true, hash: true}
    device: {max: 5}
    cookie: {max: 20, ttl: 90d}
  blocked: ["", "null", "unknown", "0"]
catalog: catalog.yaml`

// TestIdentityStory: an anonymous cookie abandons a cart and enters the
// cart journey, is shown a reminder, logs in (identify with the CRM id),
// and the agent desktop, deciding by CRM id, sees the journey, the contact
// and the cap count; the customer view lists the identifiers.
func TestIdentityStory(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	s := openFS(t, fsys, now)
	cookie := []server.Field{{Key: "cookie", Kind: server.KindString, Str: "c-91"}}

	ev := server.Event{IDs: cookie, Type: "cart_abandoned", TS: now.Add(-time.Hour), Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 80}}}
	if _, err := s.ApplyEvent(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.CustomerID != "~cookie:c-91" {
		t.Fatalf("the anonymous event went to %q", ev.CustomerID)
	}
	if err := s.Feedback(&server.Feedback{IDs: cookie, ActionID: "birthday_gift", Channel: "web", Outcome: server.OutcomeImpression, TS: now.Add(-30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Identify(&server.IdentifyRequest{IDs: append(cookie, server.Field{Key: "crm_id", Kind: server.KindString, Str: "c00042"}), TS: now, EventID: "login-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.CustomerID != "c00042" || len(res.Receipts) != 1 {
		t.Fatalf("identify answered %+v", res)
	}
	var resp server.DecideResponse
	req := server.DecideRequest{DecisionID: "d1", IDs: []server.Field{{Key: "crm_id", Kind: server.KindString, Str: "c00042"}}, Channel: "agent", Limit: 3, DryRun: true}
	if err := s.Decide(&req, &resp); err != nil {
		t.Fatal(err)
	}
	if req.CustomerID != "c00042" {
		t.Errorf("decided for %q", req.CustomerID)
	}
	view := customerView(t, s, "c00042")
	js, _ := view["journeys"].([]any)
	if len(js) != 1 || js[0].(map[string]any)["journey"] != "abandoned_cart" {
		t.Errorf("journeys after login: %v", view["journeys"])
	}
	if h, _ := view["history"].([]any); len(h) != 1 {
		t.Errorf("contacts after login: %v", view["history"])
	}
	found := false
	for _, c := range view["caps"].([]any) {
		if m := c.(map[string]any); m["key"] == "birthday_gift" {
			found = m["count"].(float64) == 1
		}
	}
	if !found {
		t.Errorf("no cap counts the anonymous visitor's impression: %v", view["caps"])
	}
	if ids, _ := view["identifiers"].([]any); len(ids) != 2 {
		t.Errorf("identifiers %v", view["identifiers"])
	}
	if v := customerView(t, s, "~cookie:c-91"); v["customer_id"] != "c00042" || v["merged_from"] != "~cookie:c-91" {
		t.Errorf("the merged anonymous id's view: %v %v", v["customer_id"], v["merged_from"])
	}
	if id, err := s.ResolveCustomer("cookie", "c-91"); err != nil || id != "c00042" {
		t.Errorf("the cookie resolves to %q %v", id, err)
	}
	// A second CRM id for the cookie's person: refused, 409 identity_conflict.
	_, err = s.Identify(&server.IdentifyRequest{IDs: append(cookie, server.Field{Key: "crm_id", Kind: server.KindString, Str: "c00043"}), TS: now})
	var se *server.Error
	if !errors.As(err, &se) || se.Code != server.CodeIdentityConflict || se.Status != 409 {
		t.Errorf("conflicting link: %v", err)
	}
	if st, err := s.AppendStatus(nil); err != nil || !strings.Contains(string(st), `"identity":{"links":1,"merges":1,"unmerges":0,"conflicts":1`) {
		t.Errorf("status lacks the identity counters: %s %v", st, err)
	}
	// The merge undone: the visitor's journey and contact go back to the
	// cookie's profile; the CRM id stays with c00042.
	if u, err := s.Unmerge(res.Receipts[0]); err != nil || u.CustomerID != "~cookie:c-91" {
		t.Fatalf("unmerge: %+v %v", u, err)
	}
	if id, _ := s.ResolveCustomer("cookie", "c-91"); id != "~cookie:c-91" {
		t.Errorf("after unmerge the cookie resolves to %q", id)
	}
	if v := customerView(t, s, "c00042"); len(v["journeys"].([]any)) != 0 || len(v["identifiers"].([]any)) != 1 {
		t.Errorf("after unmerge c00042 has journeys %v, identifiers %v", v["journeys"], v["identifiers"])
	}
	if v := customerView(t, s, "~cookie:c-91"); len(v["journeys"].([]any)) != 1 {
		t.Errorf("after unmerge the cookie's profile has journeys %v", v["journeys"])
	}
	// Regression: a receipt already undone, unknown or malformed was
	// answered 400 invalid_request, as if the request were malformed: it
	// names no merge, 404 unknown_receipt.
	for _, r := range []string{res.Receipts[0], res.Receipts[0] + "00", "0123.6e6f2d6f6e65", "no-dot"} {
		_, err := s.Unmerge(r)
		if !errors.As(err, &se) || se.Code != server.CodeUnknownReceipt || se.Status != 404 {
			t.Errorf("unmerge of %q (undone, unknown or malformed): %v, want 404 unknown_receipt", r, err)
		}
	}
}

// TestIdentityBundleErrorsPlaced: problems of the identity section name
// their line and column in bundle.yaml.
func TestIdentityBundleErrorsPlaced(t *testing.T) {
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", `identity:
  namespaces:
    crm_id: {primary: true}
    account: {primary: true, max: 3}
    cookie: {ttl: 90 days}
catalog: catalog.yaml`)
	_, err := Open(Config{Bundle: fsys, BundleName: "test", StateDir: t.TempDir()})
	if err == nil {
		t.Fatal("a bad identity section loaded")
	}
	line := func(key string) string {
		for i, l := range strings.Split(string(fsys[ManifestFile].Data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), key) {
				return fmt.Sprintf("bundle.yaml:%d:", i+1)
			}
		}
		t.Fatalf("no %q in the manifest", key)
		return ""
	}
	for _, want := range []string{
		line("account:") + "35: identity.namespaces.account.max: the primary namespace holds one value per profile",
		line("cookie:") + `19: identity.namespaces.cookie.ttl: bad duration "90 days"`,
		"at most one may be",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestNoIdentityNeedsCustomerID: without identity: a request naming only
// ids is refused, as before.
func TestNoIdentityNeedsCustomerID(t *testing.T) {
	s := openDemo(t, time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC))
	var resp server.DecideResponse
	req := server.DecideRequest{IDs: []server.Field{{Key: "cookie", Kind: server.KindString, Str: "c"}}, Channel: "web"}
	var se *server.Error
	if err := s.Decide(&req, &resp); !errors.As(err, &se) || se.Status != 400 {
		t.Errorf("decide by ids without identity: %v", err)
	}
	if _, err := s.Identify(&server.IdentifyRequest{IDs: req.IDs}); !errors.As(err, &se) || se.Status != 404 {
		t.Errorf("identify without identity: %v", err)
	}
}

// TestUnmergeSplitsFeedbackByIdentifier: feedback sent after a login by the
// cookie goes back to the cookie's profile at an unmerge; feedback by the
// CRM id stays. Regression: the survivor kept all of it.
func TestUnmergeSplitsFeedbackByIdentifier(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	s := openFS(t, fsys, now)
	cookie := []server.Field{{Key: "cookie", Kind: server.KindString, Str: "c-91"}}
	crm := []server.Field{{Key: "crm_id", Kind: server.KindString, Str: "c00042"}}
	ev := server.Event{IDs: cookie, Type: "cart_abandoned", TS: now.Add(-time.Hour), Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 80}}}
	if _, err := s.ApplyEvent(&ev); err != nil {
		t.Fatal(err)
	}
	res, err := s.Identify(&server.IdentifyRequest{IDs: append(cookie, crm...), TS: now.Add(-50 * time.Minute), EventID: "login-1"})
	if err != nil || len(res.Receipts) != 1 {
		t.Fatalf("identify: %+v %v", res, err)
	}
	for i, ids := range [][]server.Field{cookie, crm, cookie} {
		fb := server.Feedback{IDs: ids, ActionID: "birthday_gift", Channel: "web", Outcome: server.OutcomeImpression, TS: now.Add(time.Duration(i-40) * time.Minute), EventID: fmt.Sprintf("fb-%d", i)}
		if err := s.Feedback(&fb); err != nil {
			t.Fatal(err)
		}
		if fb.CustomerID != "c00042" {
			t.Fatalf("feedback %d went to %q", i, fb.CustomerID)
		}
	}
	if _, err := s.Unmerge(res.Receipts[0]); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{"~cookie:c-91": 2, "c00042": 1} {
		if h, _ := customerView(t, s, id)["history"].([]any); len(h) != want {
			t.Errorf("%s: %d contacts after the unmerge, want %d: %v", id, len(h), want, h)
		}
	}
}

// TestDroppedDeviceDecidesAsItsOwnProfile: a device dropped by its
// namespace's max (5) names a fresh anonymous profile; a decision by it
// answers that profile and reads its state, not the customer's.
// Regression: it answered "~device:dv-1" and decided on c00600's state
// through the forward that device's first anonymous profile kept.
func TestDroppedDeviceDecidesAsItsOwnProfile(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	s := openFS(t, fsys, now)
	for i := 1; i <= 7; i++ {
		ids := []server.Field{{Key: "device", Kind: server.KindString, Str: fmt.Sprintf("dv-%d", i)}, {Key: "crm_id", Kind: server.KindString, Str: "c00600"}}
		if _, err := s.Identify(&server.IdentifyRequest{IDs: ids, TS: now.Add(time.Duration(i-10) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	ev := server.Event{CustomerID: "c00600", Type: "cart_abandoned", TS: now.Add(-time.Minute), Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 80}}}
	if _, err := s.ApplyEvent(&ev); err != nil {
		t.Fatal(err)
	}
	dv1 := []server.Field{{Key: "device", Kind: server.KindString, Str: "dv-1"}}
	var resp server.DecideResponse
	req := server.DecideRequest{DecisionID: "d1", IDs: dv1, Channel: "web", Limit: 3, DryRun: true}
	if err := s.Decide(&req, &resp); err != nil {
		t.Fatal(err)
	}
	if req.CustomerID == "c00600" || req.CustomerID == "~device:dv-1" {
		t.Fatalf("a decision by the dropped device answered %q", req.CustomerID)
	}
	// Its events stay with its own profile.
	ev = server.Event{IDs: dv1, Type: "purchase", TS: now}
	if _, err := s.ApplyEvent(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.CustomerID != req.CustomerID {
		t.Errorf("an event by the dropped device went to %q, the decision answered %q", ev.CustomerID, req.CustomerID)
	}
	if v := customerView(t, s, req.CustomerID); v["customer_id"] != req.CustomerID || len(v["journeys"].([]any)) != 0 {
		t.Errorf("the answered profile %q reads %v with journeys %v", req.CustomerID, v["customer_id"], v["journeys"])
	}
	if _, err := s.Identify(&server.IdentifyRequest{IDs: append(dv1, server.Field{Key: "crm_id", Kind: server.KindString, Str: "c00602"}), TS: now}); err != nil {
		t.Errorf("the dropped device cannot link to another customer: %v", err)
	}
}

// TestPrimaryValueRules: a crm id is a customer id: one in the anonymous
// profiles' "~" namespace or with a slash is refused with 400 naming the
// namespace and the rule, on identify and on a decision by ids.
func TestPrimaryValueRules(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	s := openFS(t, fsys, now)
	for _, c := range []struct{ value, rule string }{{"~cookie:c-777", `"~"`}, {"a/b", "slash"}} {
		ids := []server.Field{{Key: "crm_id", Kind: server.KindString, Str: c.value}, {Key: "device", Kind: server.KindString, Str: "dv-777"}}
		check := func(op string, err error) {
			t.Helper()
			var se *server.Error
			if !errors.As(err, &se) || se.Status != 400 || !strings.Contains(se.Error(), "crm_id") || !strings.Contains(se.Error(), c.rule) {
				t.Errorf("%s with crm_id %q: %v, want 400 naming crm_id and %s", op, c.value, err, c.rule)
			}
		}
		_, err := s.Identify(&server.IdentifyRequest{IDs: ids, TS: now})
		check("identify", err)
		var resp server.DecideResponse
		check("decide", s.Decide(&server.DecideRequest{DecisionID: "d1", IDs: ids[:1], Channel: "web", Limit: 1, DryRun: true}, &resp))
	}
}
