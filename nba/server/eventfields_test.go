package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzEventFields checks that an event given as stream entry fields is
// decoded exactly as the same event posted to /v1/events: both accepted
// with equal events, or both refused.
func FuzzEventFields(f *testing.F) {
	f.Add("c1", "purchase", "", "", "", "")
	f.Add("c1", "purchase", "2026-12-01T10:00:00Z", "e1", `{"value": 12.5, "src": "web", "ok": true}`, "")
	f.Add("", "purchase", "", "", "", "")
	f.Add("c1", "purchase", "1990-01-01T00:00:00Z", "", "", "")
	f.Add("c1", "purchase", "", "", `{"a": {"b": 1}}`, "")
	f.Add("c1", "purchase", "", "", `{"a": 1, "a": 2}`, "")
	f.Add("c1", "purchase", "", "", `{"a": 1} x`, "")
	f.Add("c1", "purchase", "", "", `null`, "")
	f.Add("c1", "purchase", "", "", `{"a": "\u00e9\n"}`, "")
	f.Add("", "cart_abandoned", "", "", "", `{"cookie": "c-91"}`)
	f.Add("c1", "login", "", "", "", `{"device": "d1", "email": "a@b"}`)
	f.Add("", "login", "", "", "", `{"cookie": null}`)
	f.Add("", "login", "", "", "", `{"cookie": 7}`)
	f.Add("", "login", "", "", "", `{}`)
	f.Add("", "login", "", "", "", `["c-91"]`)
	f.Add("\xff\xfe", "cart_abandoned", "", "", "", "")
	f.Add("c1", "cart\xff", "", "", "", "")
	f.Add("c1", "purchase", "", "e\xc3", "", "")
	cfg := Config{MaxFields: 4, MaxIDBytes: 16}
	dec, err := NewEventDecoder(cfg)
	if err != nil {
		f.Fatal(err)
	}
	lim := dec.lim
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, customer, typ, ts, eventID, attrs, ids string) {
		for _, s := range []string{customer, typ, ts, eventID} {
			if !utf8.ValidString(s) {
				// JSON cannot carry it: POST /v1/events refuses such a
				// body, so the fields must be refused too.
				var ev Event
				if err := dec.Decode(EventFields{CustomerID: customer, Type: typ, TS: ts, EventID: eventID, Attrs: []byte(attrs), IDs: []byte(ids)}, &ev, now); err == nil {
					t.Fatalf("fields %q %q %q %q with invalid UTF-8 were accepted: %+v", customer, typ, ts, eventID, ev)
				}
				return
			}
		}
		m := map[string]any{"type": typ}
		if customer != "" || ids == "" {
			m["customer_id"] = customer // empty beside ids: absent in a stream entry
		}
		if ts != "" {
			m["ts"] = ts
		}
		if eventID != "" {
			m["event_id"] = eventID // empty: absent in a stream entry
		}
		if attrs != "" {
			if !json.Valid([]byte(attrs)) {
				var ev Event
				if err := dec.Decode(EventFields{CustomerID: customer, Type: typ, TS: ts, EventID: eventID, Attrs: []byte(attrs)}, &ev, now); err == nil {
					t.Fatalf("attrs %q is not JSON but was accepted: %+v", attrs, ev)
				}
				return
			}
			m["attrs"] = json.RawMessage(attrs)
		}
		if ids != "" {
			if !json.Valid([]byte(ids)) {
				var ev Event
				if err := dec.Decode(EventFields{CustomerID: customer, Type: typ, TS: ts, EventID: eventID, IDs: []byte(ids)}, &ev, now); err == nil {
					t.Fatalf("ids %q is not JSON but was accepted: %+v", ids, ev)
				}
				return
			}
			m["ids"] = json.RawMessage(ids)
		}
		body, err := json.Marshal(m)
		if err != nil {
			return
		}
		var want, got Event
		_, werr := decodeEvent(body, nil, &want, &lim, now)
		gerr := dec.Decode(EventFields{CustomerID: customer, Type: typ, TS: ts, EventID: eventID, Attrs: []byte(attrs), IDs: []byte(ids)}, &got, now)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("body %s: over HTTP err %v, from fields err %v", body, werr, gerr)
		}
		if werr != nil {
			return
		}
		if len(want.Attrs) == 0 {
			want.Attrs = nil
		}
		if len(got.Attrs) == 0 {
			got.Attrs = nil
		}
		if len(want.IDs) == 0 {
			want.IDs = nil
		}
		if len(got.IDs) == 0 {
			got.IDs = nil
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("body %s:\nover HTTP   %+v\nfrom fields %+v", body, want, got)
		}
	})
}

// TestEventFieldsInvalidUTF8 is the regression test of a stream entry
// whose customer_id was raw bytes: POST /v1/events refuses such a body as
// malformed JSON, the stream applied it under an id no export could keep.
func TestEventFieldsInvalidUTF8(t *testing.T) {
	dec, err := NewEventDecoder(Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		f    EventFields
	}{
		{"customer_id", EventFields{CustomerID: "\xff\xfe", Type: "cart_abandoned"}},
		{"type", EventFields{CustomerID: "c1", Type: "cart\xc3"}},
		{"event_id", EventFields{CustomerID: "c1", Type: "purchase", EventID: "e\xff"}},
		{"ts", EventFields{CustomerID: "c1", Type: "purchase", TS: "2026-12-01T10:00:00Z\xff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			err := dec.Decode(tc.f, &ev, now)
			if err == nil || !strings.Contains(err.Error(), tc.name+" is not valid UTF-8") {
				t.Fatalf("Decode(%+v) = %v, want %s is not valid UTF-8", tc.f, err, tc.name)
			}
		})
	}
	var ev Event
	if err := dec.Decode(EventFields{CustomerID: "cé", Type: "purchase", EventID: "ü"}, &ev, now); err != nil {
		t.Fatalf("valid UTF-8 refused: %v", err)
	}
}
