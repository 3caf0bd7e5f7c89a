package state

import (
	"reflect"
	"testing"
)

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
		{typ: recIdent, lsn: 18, at: 22, customer: "~cookie:c-1", ident: &identOp{op: identRestore, receipt: "r.1", value: []byte("\x01c\x00"), expect: []byte("0123456789abcdef0123456789abcdef")}},
		{typ: recIdent, lsn: 19, at: 23, customer: "c", ident: &identOp{op: identUnmerge, peer: "~cookie:c-1", receipt: "r.1", rules: []nsLimit{{ns: "crm_id", unique: true, max: 1}},
			value: []byte("\x01c\x00"), logged: 7, expect: []byte("0123456789abcdef0123456789abcdef")}},
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
