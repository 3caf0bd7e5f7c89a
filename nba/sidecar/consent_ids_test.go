package sidecar

import (
	"errors"
	"testing"
	"time"

	"nba/nba/server"
)

// TestConsentByIDs: POST /v1/consent names the customer by "ids" as
// feedback and events do: a change by CRM id lands on that customer, a
// change by an anonymous cookie follows the cookie's profile into the
// customer it is later linked to; without identity stitching, ids alone
// are refused (400).
func TestConsentByIDs(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	s := openFS(t, fsys, now)
	id := func(ns, v string) []server.Field { return []server.Field{{Key: ns, Kind: server.KindString, Str: v}} }
	emailMarketing := func(customer string) string {
		t.Helper()
		for _, c := range customerView(t, s, customer)["consent"].([]any) {
			if m := c.(map[string]any); m["channel"] == "email" && m["purpose"] == "marketing" {
				src, _ := m["source"].(string)
				return m["status"].(string) + "/" + src
			}
		}
		return ""
	}
	withdraw := func(ids []server.Field, source string) *server.ConsentChange {
		t.Helper()
		c := &server.ConsentChange{IDs: ids, Channel: "email", Purpose: "marketing", TS: now, Source: source}
		if err := s.Consent(c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := withdraw(id("crm_id", "c00043"), "crm"); c.CustomerID != "c00043" {
		t.Errorf("consent by crm_id went to %q", c.CustomerID)
	}
	if got := emailMarketing("c00043"); got != "denied/crm" {
		t.Errorf("c00043's e-mail marketing consent: %q", got)
	}
	if c := withdraw(id("cookie", "c-91"), "banner"); c.CustomerID != "~cookie:c-91" {
		t.Errorf("consent by an unlinked cookie went to %q", c.CustomerID)
	}
	if got := emailMarketing("c00042"); got != "granted/" {
		t.Errorf("before the link c00042's e-mail marketing consent: %q", got)
	}
	if _, err := s.Identify(&server.IdentifyRequest{IDs: append(id("cookie", "c-91"), id("crm_id", "c00042")...), TS: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got := emailMarketing("c00042"); got != "denied/banner" {
		t.Errorf("after the link c00042's e-mail marketing consent: %q", got)
	}
	var resp server.DecideResponse
	if err := s.Decide(&server.DecideRequest{DecisionID: "d1", IDs: id("crm_id", "c00042"), Channel: "email", Limit: 5, DryRun: true, At: now.Add(time.Hour)}, &resp); err != nil {
		t.Fatal(err)
	}
	cat := s.parts.Load().catalog
	for _, a := range resp.Actions {
		if cat.Action(a.ID).Purpose() == "marketing" {
			t.Errorf("marketing %s given after the withdrawal by cookie", a.ID)
		}
	}

	plain := openDemo(t, now)
	var se *server.Error
	if err := plain.Consent(&server.ConsentChange{IDs: id("cookie", "c-91"), Channel: "email", Purpose: "marketing", TS: now}); !errors.As(err, &se) || se.Status != 400 {
		t.Errorf("consent by ids without identity stitching: %v", err)
	}
}
