package state

import (
	"bytes"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"nba/state/wal"
)

var fuzzMappings = sync.OnceValue(func() Mappings { return testMappings(nil) })

// fuzzStore is a small store without a log, cheap enough for fuzzing.
func fuzzStore(t testing.TB) *Store {
	s, err := newStore(Config{Mappings: fuzzMappings(), Stripes: 1, WAL: wal.Config{Dir: "unused"}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedState applies a little of everything to a store without a log.
func seedState(t testing.TB) *Store {
	s := fuzzStore(t)
	for i, r := range []record{
		{typ: recContact, customer: "c1", action: "a", group: "g", channel: "web", outcome: Click, num: 2.5, at: t0.UnixNano()},
		{typ: recContact, customer: "c2", action: "b", channel: "email", at: t0.Add(time.Hour).UnixNano()},
		{typ: recEvent, customer: "c1", at: t0.UnixNano(), effects: []effect{{field: "orders_30d", op: opIncr, typ: TypeNumber, v: value{num: 1}}, {field: "last_purchase_at", op: opSet, typ: TypeTime, v: value{unix: 5}}}},
		{typ: recEvent, customer: "c3", at: t0.UnixNano(), effects: []effect{{field: "tier", op: opSet, typ: TypeCategory, v: value{str: "gold"}}, {field: "vip", op: opSet, typ: TypeBool, v: value{num: 1}}}},
		{typ: recJourney, customer: "c2", journey: "j", step: 3, status: JourneyExited, at: t0.UnixNano()},
		{typ: recContact2, customer: "c2", id: "fb-1", action: "b", channel: "web", at: t0.Add(2 * time.Hour).UnixNano()},
		{typ: recEvent2, customer: "c2", id: "ev-1", at: t0.Add(2 * time.Hour).UnixNano(), effects: []effect{{field: "orders_30d", op: opIncr, typ: TypeNumber, v: value{num: 1}}},
			moves: []move{{journey: "k", step: 1, status: JourneyActive}}},
		{typ: recEvent2, customer: "c4", id: "ev-2", at: t0.UnixNano(), moves: []move{{journey: "k", status: JourneyExited}}},
		{typ: recConsent, customer: "c1", id: "cs-1", channel: "email", group: "marketing", action: "pc", at: t0.UnixNano()},
		{typ: recConsent, customer: "c1", channel: "email", group: "marketing", num: 1, at: t0.Add(-time.Hour).UnixNano()},
	} {
		r.lsn = uint64(i + 1)
		s.lsn.Store(r.lsn)
		s.apply(&s.stripes[s.stripeOf(r.customer)], &r, false)
	}
	s.tomb.add("0123abcd", time.Now().Add(time.Hour).UnixNano())
	return s
}

// FuzzRecord decodes arbitrary log records: no panic, and a record that
// decodes re-encodes to one that decodes to the same.
func FuzzRecord(f *testing.F) {
	for _, r := range []record{
		{typ: recContact, lsn: 1, at: 5, customer: "c", action: "a", group: "g", channel: "web", outcome: Click, num: 3},
		{typ: recEvent, lsn: 2, at: 6, customer: "c", effects: []effect{{field: "x", op: opIncr, typ: TypeNumber, v: value{num: 1}}, {field: "t", op: opSet, typ: TypeCategory, v: value{str: "gold"}}, {field: "ts", op: opSet, typ: TypeTime, v: value{unix: 77}}}},
		{typ: recJourney, lsn: 3, at: 7, customer: "c", journey: "j", step: 2, status: JourneyCompleted},
		{typ: recCompact, lsn: 4, at: 8},
		{typ: recContact2, lsn: 5, at: 9, customer: "c", id: "fb-1", action: "a", outcome: Impression},
		{typ: recEvent2, lsn: 6, at: 10, customer: "c", id: "ev-1", effects: []effect{{field: "x", op: opIncr, typ: TypeNumber, v: value{num: 1}}},
			moves: []move{{journey: "j", step: 0, status: JourneyActive}, {journey: "k", step: 3, status: JourneyExited}}},
		{typ: recEvent2, lsn: 7, at: 11, customer: "c", moves: []move{{journey: "j", status: JourneyCompleted}}},
		{typ: recForget, lsn: 8, at: 12, customer: "c"},
		{typ: recReserve, lsn: 9, at: 13, customer: "c", decision: "d", action: "a", group: "g", channel: "email", expires: 99,
			caps: []capKey{{kind: KindChannel, key: "email", window: 86400e9, max: 1}, {kind: KindGroup, key: "g", window: 3600e9, max: 2}}},
		{typ: recContact3, lsn: 10, at: 14, customer: "c", id: "fb-2", decision: "d", action: "a", channel: "email", outcome: Impression},
		{typ: recConsent, lsn: 11, at: 15, customer: "c", id: "k", channel: "email", group: "marketing", num: 1, action: "pc"},
		{typ: recErase, lsn: 12, at: 16, customer: "c", id: "0123abcd"},
		{typ: recIdent, lsn: 13, at: 17, customer: "c", ident: &identOp{op: identLink, ids: []Identifier{{NS: "cookie", Value: "c-1", Source: "e1"}},
			rules: []nsLimit{{ns: "cookie", max: 20, ttl: 3600}, {ns: "crm_id", unique: true, max: 1}}}},
		{typ: recIdent, lsn: 14, at: 18, customer: "c", ident: &identOp{op: identAbsorb, peer: "~cookie:c-1", receipt: "r.1", value: []byte("\x01c\x00")}},
		{typ: recContact2, lsn: 15, at: 19, customer: "c", id: "fb-3", action: "a", outcome: Click, via: "cookie:c-1"},
		{typ: recEvent2, lsn: 16, at: 20, customer: "c", moves: []move{{journey: "j", status: JourneyActive}}, via: "email:h:00ff"},
		{typ: recConsent, lsn: 17, at: 21, customer: "c", channel: "email", group: "marketing", via: "device:d-1"},
	} {
		f.Add(appendRecord(nil, &r))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r, r2 record
		if err := decodeRecord(data, &r); err != nil {
			return
		}
		if err := decodeRecord(appendRecord(nil, &r), &r2); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if len(r.effects) == 0 {
			r.effects, r2.effects = nil, nil
		}
		if len(r.moves) == 0 {
			r.moves, r2.moves = nil, nil
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, r2)
		}
	})
}

// FuzzCheckpointLoad loads arbitrary checkpoint bodies: no panic, and a body
// that loads is written back and reloads to the same state.
func FuzzCheckpointLoad(f *testing.F) {
	s := seedState(f)
	var buf bytes.Buffer
	if err := s.writeCheckpoint(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	// With identity parts: identifiers, a merge's receipt, a forward.
	x := NewIdentities(s, []byte("0123456789abcdef"))
	if err := x.Configure(&IdentityConfig{Namespaces: map[string]Namespace{"crm_id": {Primary: true}, "cookie": {}}}); err != nil {
		f.Fatal(err)
	}
	for _, r := range []record{
		x.m.identityRecord("c1", t0, identOp{op: identLink, ids: []Identifier{{NS: "crm_id", Value: "c1"}}}),
		x.m.identityRecord("c2", t0, identOp{op: identMark, peer: "c1", receipt: "r.1"}),
	} {
		s.apply(&s.stripes[s.stripeOf(r.customer)], &r, false)
	}
	c2, _ := s.Get(f.Context(), "c2")
	own := *c2
	own.ident = c2.ident.withoutMark()
	for _, r := range []record{
		x.m.identityRecord("c1", t0, identOp{op: identAbsorb, peer: "c2", receipt: "r.1", value: s.AppendCustomer(nil, &own)}),
		x.m.identityRecord("c2", t0, identOp{op: identForward, peer: "c1", receipt: "r.1"}),
	} {
		s.apply(&s.stripes[s.stripeOf(r.customer)], &r, false)
	}
	// A write via an identifier after the merge: logged by its receipt.
	cr, err := s.ContactRecord(Contact{Customer: "c1", Action: "a", At: t0, ID: "k", Via: "crm_id:c1"})
	if err != nil {
		f.Fatal(err)
	}
	s.apply(&s.stripes[s.stripeOf(cr.customer)], &cr, false)
	// A namespace's ttl, and an identifier it dropped at a later write.
	lr := x.m.identityRecord("c3", t0, identOp{op: identLink, ids: []Identifier{{NS: "cookie", Value: "c-3"}}, rules: []nsLimit{{ns: "cookie", max: 20, ttl: int64(time.Minute)}}})
	s.apply(&s.stripes[s.stripeOf(lr.customer)], &lr, false)
	if cr, err = s.ContactRecord(Contact{Customer: "c3", Action: "a", At: t0.Add(time.Hour)}); err != nil {
		f.Fatal(err)
	}
	s.apply(&s.stripes[s.stripeOf(cr.customer)], &cr, false)
	if c3, _ := s.Get(f.Context(), "c3"); c3.ident == nil || len(c3.ident.gone) != 1 || len(c3.ident.ttls) != 1 {
		f.Fatal("the seed's ttl did not drop the cookie")
	}
	if c1, _ := s.Get(f.Context(), "c1"); len(c1.ident.merges) != 1 || len(c1.ident.merges[0].since) != 1 {
		f.Fatal("the seed's merge or its logged write did not apply")
	}
	buf.Reset()
	if err := s.writeCheckpoint(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
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
