package embedded

import (
	"bytes"
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"nba/state"
	"nba/state/wal"
)

var fuzzMappings = sync.OnceValue(func() state.Mappings { return testMappings(nil) })

// fuzzStore is a small store without a log, cheap enough for fuzzing.
func fuzzStore(t testing.TB) *Store {
	s, err := newStore(state.Config{Mappings: fuzzMappings(), Stripes: 1, WAL: wal.Config{Dir: "unused"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedState writes a little of everything to a store, identities
// included: contacts (with and without ids), overlay changes of every
// type, journeys, consent with a trail, a merge of two profiles and a
// tombstone; the identity parts only if identities.
func seedState(t testing.TB, identities bool) *Store {
	s := openStore(t, t.TempDir(), func(c *state.Config) { c.Mappings, c.Stripes = fuzzMappings(), 1 })
	ctx := context.Background()
	must(t, s.RecordContact(
		state.Contact{Customer: "c1", Action: "a", Group: "g", Channel: "web", Outcome: state.Click, Value: 2.5, At: t0},
		state.Contact{Customer: "c2", Action: "b", Channel: "email", At: t0.Add(time.Hour)},
	))
	must(t, s.ApplyEvent(
		state.Event{Customer: "c1", Type: "purchase", At: t0, Attrs: map[string]any{"amount": 1.0}},
		state.Event{Customer: "c3", Type: "upgrade", At: t0, Attrs: map[string]any{"tier": "gold", "vip": true}},
	))
	must(t, s.SetJourney(state.JourneyUpdate{Customer: "c2", Journey: "j", Step: 3, Status: state.JourneyExited, At: t0}))
	must(t, s.RecordContact(state.Contact{Customer: "c2", ID: "fb-1", Action: "b", Channel: "web", At: t0.Add(2 * time.Hour)}))
	must(t, s.ApplyEvent(
		state.Event{Customer: "c2", ID: "ev-1", Type: "purchase", At: t0.Add(2 * time.Hour), Attrs: map[string]any{"amount": 3.0},
			Journeys: []state.JourneyMove{{Journey: "k", Step: 1, Status: state.JourneyActive}}},
		state.Event{Customer: "c4", ID: "ev-2", Type: "unmapped", At: t0, Journeys: []state.JourneyMove{{Journey: "k", Status: state.JourneyExited}}},
	))
	if _, err := s.SetConsent(
		state.Consent{Customer: "c1", ID: "cs-1", Channel: "email", Purpose: "marketing", Source: "pc", At: t0},
		state.Consent{Customer: "c1", Channel: "email", Purpose: "marketing", Granted: true, At: t0.Add(-time.Hour)},
	); err != nil {
		t.Fatal(err)
	}
	s.tomb.add("0123abcd", time.Now().Add(time.Hour).UnixNano())
	if !identities {
		return s
	}
	// Identity parts: identifiers, a merge's receipt, a forward.
	x := state.NewIdentities(s, []byte("0123456789abcdef"))
	// The anonymous profile of cookie k2, with state of its own, merged
	// into c1 by a link of c1's crm_id with the cookie.
	must(t, x.Configure(&state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true}, "cookie": {}}}))
	if _, err := x.Identify(ctx, map[string]string{"crm_id": "c1"}, t0, ""); err != nil {
		t.Fatal(err)
	}
	anon, err := x.Identify(ctx, map[string]string{"cookie": "k2"}, t0, "")
	if err != nil {
		t.Fatal(err)
	}
	must(t, s.RecordContact(state.Contact{Customer: anon.Customer, Action: "b", Channel: "web", At: t0}))
	must(t, s.SetJourney(state.JourneyUpdate{Customer: anon.Customer, Journey: "j", Step: 1, At: t0}))
	if _, err := x.Identify(ctx, map[string]string{"crm_id": "c1", "cookie": "k2"}, t0, ""); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Get(ctx, anon.Customer); c == nil {
		t.Fatal("the seed's anonymous profile is gone")
	} else if to, merging := c.Moved(); to != "c1" || merging {
		t.Fatalf("the seed's merge did not apply: %s moved to %q (merging %v)", anon.Customer, to, merging)
	}
	// A write via an identifier after the merge: logged by its receipt.
	must(t, s.RecordContact(state.Contact{Customer: "c1", Action: "a", At: t0, ID: "k", Via: "crm_id:c1"}))
	// A namespace's ttl, and an identifier it dropped at a later write.
	must(t, x.Configure(&state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true}, "cookie": {TTL: "1m"}}}))
	if _, err := x.Identify(ctx, map[string]string{"crm_id": "c3", "cookie": "c-3"}, t0, ""); err != nil {
		t.Fatal(err)
	}
	must(t, s.RecordContact(state.Contact{Customer: "c3", Action: "a", At: t0.Add(time.Hour)}))
	if c, _ := s.Get(ctx, "c3"); c == nil || slices.ContainsFunc(c.Identifiers(), func(id state.Identifier) bool { return id.NS == "cookie" }) {
		t.Fatal("the seed's ttl did not drop the cookie")
	}
	return s
}

// FuzzCheckpointLoad loads arbitrary checkpoint bodies: no panic, and a body
// that loads is written back and reloads to the same state.
func FuzzCheckpointLoad(f *testing.F) {
	for _, identities := range []bool{false, true} {
		var buf bytes.Buffer
		if err := seedState(f, identities).writeCheckpoint(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		if !identities {
			f.Add(buf.Bytes()[:buf.Len()/2])
		}
	}
	f.Add([]byte("NBASTATE\x01\x00\x00\x00\x00"))
	f.Add([]byte("NBASTATE\x02\x00\x00\x00\x01\x01c\x00\x00\x00\x00\x00\x01\x02\x02id\x00"))
	// The body of a version 1 checkpoint, written before idempotency keys
	// (the log's file has a 20-byte header and a 12-byte trailer).
	if b, err := os.ReadFile("testdata/wal-v1/ckpt-0000000000000002.bin"); err == nil && len(b) > 32 {
		f.Add(b[20 : len(b)-12])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzStore(t)
		if err := s.loadCheckpoint(bytes.NewReader(data)); err != nil {
			return
		}
		var out bytes.Buffer
		if err := s.writeCheckpoint(&out); err != nil {
			t.Fatal(err)
		}
		s2 := fuzzStore(t)
		if err := s2.loadCheckpoint(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatalf("re-written checkpoint does not load: %v", err)
		}
		if a, b := dump(s), dump(s2); a != b {
			t.Fatalf("round trip changed the state:\n%s\n%s", a, b)
		}
	})
}
