package sidecar

import (
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestConsentFailsClosedWhileRedisIsDown: a customer withdraws e-mail
// marketing consent through one replica; Redis goes down; another replica
// that never read the customer (no last-good copy) decides for them on
// e-mail. It must give no marketing: the withdrawal cannot be read, so
// every purpose whose consent could have been withdrawn is denied, and
// explain says the state was unavailable. Before, that replica applied
// only the snapshot and the catalog's defaults and offered marketing. The
// replica holding a last-good copy denies by the customer's change.
func TestConsentFailsClosedWhileRedisIsDown(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	open := func() *Sidecar {
		t.Helper()
		s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateRedis: rs.URL, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	const customer = "c00043"
	decide := func(s *Sidecar) *server.DecideResponse {
		t.Helper()
		req := server.DecideRequest{DecisionID: "0123456789abcdef0123456789abcdef", CustomerID: customer, Channel: "email", Limit: 5, DryRun: true, Explain: true, At: now}
		var resp server.DecideResponse
		if err := s.Decide(&req, &resp); err != nil {
			t.Fatal(err)
		}
		return &resp
	}
	cat := a.parts.Load().catalog
	marketing := func(d *server.DecideResponse) (given []string) {
		for _, x := range d.Actions {
			if cat.Action(x.ID).Purpose() != "service" {
				given = append(given, x.ID)
			}
		}
		return given
	}
	if d := decide(a); len(marketing(d)) == 0 || d.Stale {
		t.Fatalf("before the withdrawal: actions %v stale %v, want marketing", d.Actions, d.Stale)
	}
	if err := a.Consent(&server.ConsentChange{CustomerID: customer, Channel: "email", Purpose: "marketing", Granted: false, TS: now, Source: "preference_center", EventID: "w1"}); err != nil {
		t.Fatal(err)
	}
	if d := decide(a); len(marketing(d)) != 0 {
		t.Fatalf("after the withdrawal: marketing %v given", marketing(d))
	}
	rs.Kill()
	for _, s := range []*Sidecar{a, b} {
		for deadline := time.Now().Add(5 * time.Second); s.state.Err() == nil; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the state backend did not notice Redis was killed")
			}
		}
	}
	for _, c := range []struct {
		name string
		s    *Sidecar
		want server.ConsentDenial // of every marketing candidate
	}{
		{"no copy", b, server.ConsentDenial{Channel: "email", Purpose: "marketing", Stale: true}},
		{"last-good copy", a, server.ConsentDenial{Channel: "email", Purpose: "marketing", Source: "preference_center", At: now}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := decide(c.s)
			if !d.Stale {
				t.Error("decision with Redis down not marked stale")
			}
			if m := marketing(d); len(m) != 0 {
				t.Errorf("marketing %v given with the withdrawal out of reach", m)
			}
			n := 0
			for i := range d.Candidates {
				x := &d.Candidates[i]
				if cat.Action(x.ID).Purpose() != "marketing" {
					continue
				}
				n++
				if x.Stage != server.StageConsent || !x.Consent.At.Equal(c.want.At) || x.Consent.Stale != c.want.Stale || x.Consent.Source != c.want.Source || x.Consent.Default {
					t.Errorf("%s: stage %s %+v, want consent %+v", x.ID, x.Stage, x.Consent, c.want)
				}
			}
			if n == 0 {
				t.Error("no marketing candidate explained")
			}
		})
	}
}
