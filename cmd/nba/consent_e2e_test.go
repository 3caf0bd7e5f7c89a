package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/nba/sidecar"
)

// TestBatchHonoursWithdrawnConsent: a customer who withdrew e-mail
// marketing consent gets no marketing e-mail from nba batch, but the
// service message (an open ticket's service recovery) still goes out; a
// customer who did not withdraw it still gets marketing e-mails.
func TestBatchHonoursWithdrawnConsent(t *testing.T) {
	dir := t.TempDir()
	s, err := sidecar.Open(sidecar.Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(-time.Hour)
	for _, c := range []string{"c00042", "c00043"} {
		if err := s.Event(&server.Event{CustomerID: c, Type: "ticket_opened", TS: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Consent(&server.ConsentChange{CustomerID: "c00042", Channel: "email", Purpose: "marketing", TS: now, Source: "preference_center"}); err != nil {
		t.Fatal(err)
	}
	cat := s.Catalog()
	s.Close()

	list := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(list, []byte("c00042\nc00043\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runNBA(t, "batch", "-channel", "email", "-limit", "3", "-customers", list, "-state", dir)
	if code != 0 {
		t.Fatalf("nba batch: exit %d: %s", code, stderr)
	}
	got := map[string][]string{}
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
			got[d.CustomerID] = append(got[d.CustomerID], a.ID)
		}
	}
	marketing := func(ids []string) (n int, service bool) {
		for _, id := range ids {
			if cat.Action(id).Purpose() == "marketing" {
				n++
			}
			service = service || id == "service_recovery"
		}
		return n, service
	}
	if n, service := marketing(got["c00042"]); n != 0 || !service {
		t.Errorf("withdrawn: %v, want the service message and no marketing", got["c00042"])
	}
	if n, service := marketing(got["c00043"]); n == 0 || !service {
		t.Errorf("not withdrawn: %v, want the service message and marketing", got["c00043"])
	}
}
