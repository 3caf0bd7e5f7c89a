package sidecar

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"nba/nba/server"
	"nba/state"
)

// TestEraseStitchedPerson: erasing a customer whose profile absorbed an
// anonymous cookie's removes the whole person: the profile, the cookie's
// forward (which keeps the value from before the merge for an unmerge),
// every identifier in the index; afterwards the cookie and the CRM id
// answer 410 erased on feedback, events and identify, and nothing in the
// state names either of them.
func TestEraseStitchedPerson(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	s, err := Open(Config{Bundle: fsys, BundleName: "test", StateDir: t.TempDir(), Now: func() time.Time { return now }, ErasureKey: []byte("erasure-key")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cookie := []server.Field{{Key: "cookie", Kind: server.KindString, Str: "c-91"}}
	crm := []server.Field{{Key: "crm_id", Kind: server.KindString, Str: "c00042"}}
	if _, err := s.ApplyEvent(&server.Event{IDs: cookie, Type: "cart_abandoned", TS: now.Add(-time.Hour), Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 80}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identify(&server.IdentifyRequest{IDs: append(cookie, crm...), TS: now, EventID: "login-1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Feedback(&server.Feedback{IDs: crm, ActionID: "birthday_gift", Channel: "web", Outcome: server.OutcomeImpression, TS: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendErasure(nil, "c00042"); err != nil {
		t.Fatal(err)
	}

	erased := func(what string, err error) {
		t.Helper()
		var se *server.Error
		if !errors.As(err, &se) || se.Code != server.CodeErased {
			t.Errorf("%s after the erasure: %v, want 410 erased", what, err)
		}
	}
	erased("feedback by cookie", s.Feedback(&server.Feedback{IDs: cookie, ActionID: "birthday_gift", Channel: "web", Outcome: server.OutcomeImpression, TS: now}))
	_, err = s.ApplyEvent(&server.Event{IDs: crm, Type: "cart_abandoned", TS: now, Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 1}}})
	erased("event by CRM id", err)
	_, err = s.Identify(&server.IdentifyRequest{IDs: cookie, TS: now})
	erased("identify of the cookie", err)
	_, err = s.Identify(&server.IdentifyRequest{IDs: append(cookie, crm...), TS: now})
	erased("identify of both", err)
	if id, _ := s.ResolveCustomer("cookie", "c-91"); id == "c00042" {
		t.Errorf("the cookie still resolves to the erased profile")
	}
	if _, err := s.AppendCustomer(nil, "c00042"); err == nil {
		t.Errorf("the erased customer's view answers")
	}
	// Another visitor is not affected.
	if _, err := s.Identify(&server.IdentifyRequest{IDs: []server.Field{{Key: "cookie", Kind: server.KindString, Str: "c-92"}}, TS: now}); err != nil {
		t.Errorf("identify of another cookie: %v", err)
	}
	p, ok := unwrapState(s.state).(state.Porter)
	if !ok {
		t.Fatalf("%T is not a state.Porter", unwrapState(s.state))
	}
	err = p.Each(func(c *state.CustomerDump) error {
		if strings.Contains(c.ID, "c-91") || c.ID == "c00042" {
			t.Errorf("customer %q is still in the state: %+v", c.ID, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEraseRemovesEveryForward: erasing a person removes the forwards of
// the identifiers it dropped (device max 5) and of the merges it no longer
// keeps receipts of (12 anonymous cookies merged in, 8 receipts kept), and
// tombstones them; later writes through any of them do not bring the
// person back, and nothing in the state names the person's id. Regression:
// events via a dropped device after the erasure recreated the profile
// through the device's forward, which the erasure had left.
func TestEraseRemovesEveryForward(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	s, err := Open(Config{Bundle: fsys, BundleName: "test", StateDir: t.TempDir(), Now: func() time.Time { return now }, ErasureKey: []byte("erasure-key")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := func(ns, v string) []server.Field { return []server.Field{{Key: ns, Kind: server.KindString, Str: v}} }
	crm := f("crm_id", "c04000")
	for i := 1; i <= 12; i++ {
		ck := f("cookie", fmt.Sprintf("ck-%d", i))
		if _, err := s.ApplyEvent(&server.Event{IDs: ck, Type: "purchase", TS: now.Add(time.Duration(i-60) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Identify(&server.IdentifyRequest{IDs: append(ck, crm...), TS: now.Add(time.Duration(i-50) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 7; i++ { // edv-1, edv-2 dropped
		if _, err := s.Identify(&server.IdentifyRequest{IDs: append(f("device", fmt.Sprintf("edv-%d", i)), crm...), TS: now.Add(time.Duration(i-20) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ApplyEvent(&server.Event{CustomerID: "c04000", Type: "ticket_opened", TS: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendErasure(nil, "c04000"); err != nil {
		t.Fatal(err)
	}
	// Late writes through every identifier and anonymous id the person
	// ever had: refused (410), or made to a profile of their own.
	var late []server.Event
	for _, d := range []string{"edv-1", "edv-2", "edv-3"} {
		late = append(late, server.Event{IDs: f("device", d), Type: "cart_abandoned", TS: now, Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 77}}})
		late = append(late, server.Event{CustomerID: "~device:" + d, Type: "ticket_opened", TS: now})
	}
	for _, c := range []string{"ck-1", "ck-12"} {
		late = append(late, server.Event{IDs: f("cookie", c), Type: "ticket_opened", TS: now})
		late = append(late, server.Event{CustomerID: "~cookie:" + c, Type: "ticket_opened", TS: now})
	}
	for _, ev := range late {
		if _, err := s.ApplyEvent(&ev); err != nil {
			var se *server.Error
			if !errors.As(err, &se) || se.Code != server.CodeErased {
				t.Errorf("late event %+v: %v", ev, err)
			}
		}
	}
	p := unwrapState(s.state).(state.Porter)
	err = p.Each(func(c *state.CustomerDump) error {
		if c.ID == "c04000" || c.MergedInto == "c04000" {
			t.Errorf("after the erasure the state holds %q (merged into %q)", c.ID, c.MergedInto)
		}
		for _, m := range c.Merges {
			if m.From != "" && strings.Contains(m.From, "c04000") {
				t.Errorf("%q remembers a merge of %q", c.ID, m.From)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendCustomer(nil, "c04000"); err == nil {
		t.Error("the erased customer's view answers")
	}
}
