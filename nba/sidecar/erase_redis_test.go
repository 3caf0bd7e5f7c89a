package sidecar

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"nba/nba"
	"nba/nba/demo"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestEraseAcrossRedisReplicas: two sidecars sharing the state on Redis.
// Consent set through one is honoured by the other; an erasure through
// one removes the customer's state and shared impressions awaiting an
// outcome, and the other refuses the customer's writes at once (410) and
// decides it as anonymous once it reads the tombstones again.
func TestEraseAcrossRedisReplicas(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	now := time.Now().UTC().Truncate(time.Second)
	open := func() *Sidecar {
		s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateRedis: rs.URL,
			Now: func() time.Time { return now }, ErasureKey: []byte("shared-erasure-key")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	const c = "c00042"
	d := decide(t, a, c, "web")
	if err := a.Feedback(&server.Feedback{DecisionID: "d1", CustomerID: c, ActionID: d.Actions[0].ID, Channel: "web", Outcome: server.OutcomeImpression, TS: now}); err != nil {
		t.Fatal(err)
	}
	if err := b.Consent(&server.ConsentChange{CustomerID: c, Channel: "email", Purpose: "marketing", TS: now, Source: "pc"}); err != nil {
		t.Fatal(err)
	}
	for _, x := range decide(t, a, c, "email").Candidates {
		if x.Stage != "consent" && a.Catalog().Action(x.ID).Purpose() == "marketing" && x.Selected {
			t.Errorf("replica a chose %s against the consent set through b", x.ID)
		}
	}
	es, err := a.EraseCustomer(c)
	if err != nil {
		t.Fatal(err)
	}
	if e := es[0]; !e.State.Found || e.State.Contacts != 1 || e.State.Consents != 1 || e.Pending != 1 || e.Pseudonym != b.Pseudonym(c) {
		t.Errorf("erased %+v", e)
	}
	var se *server.Error
	if err := b.Feedback(&server.Feedback{CustomerID: c, ActionID: "newsletter", Outcome: server.OutcomeClick, TS: now}); !errors.As(err, &se) || se.Status != http.StatusGone {
		t.Errorf("feedback through the other replica: %v, want 410", err)
	}
	b.refreshTombstones() // what its decisions do every tombRefresh
	var cust nba.Customer
	cust.Profile.Num, cust.Profile.Str = make([]float64, 64), make([]string, 64)
	if known, _ := b.cust.Load(context.Background(), c, &cust); known {
		t.Error("the other replica still decides from the erased customer's snapshot row")
	}
	// A third process, started after the erasure, reads the tombstone.
	if err := open().Event(&server.Event{CustomerID: c, Type: "ticket_opened", TS: now}); !errors.As(err, &se) || se.Code != server.CodeErased {
		t.Errorf("event through a new replica: %v, want 410 erased", err)
	}
}
