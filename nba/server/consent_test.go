package server

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestDecodeConsent(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	for _, c := range []struct {
		name, body string
		code       string // "" accepted
		want       ConsentChange
	}{
		{"full", `{"customer_id":"c1","channel":"email","purpose":"marketing","status":"denied","ts":"2023-11-14T00:00:00Z","source":"pc","event_id":"e1"}`, "",
			ConsentChange{CustomerID: "c1", Channel: "email", Purpose: "marketing", TS: time.Date(2023, 11, 14, 0, 0, 0, 0, time.UTC), Source: "pc", EventID: "e1"}},
		{"granted, ts defaults to now", `{"customer_id":"c1","channel":"sms","purpose":"service","status":"granted"}`, "",
			ConsentChange{CustomerID: "c1", Channel: "sms", Purpose: "service", Granted: true, TS: now}},
		{"no status", `{"customer_id":"c1","channel":"sms","purpose":"service"}`, CodeInvalidRequest, ConsentChange{}},
		{"bad status", `{"customer_id":"c1","channel":"sms","purpose":"service","status":"Granted"}`, CodeInvalidRequest, ConsentChange{}},
		{"no customer", `{"channel":"sms","purpose":"service","status":"granted"}`, CodeInvalidRequest, ConsentChange{}},
		{"no channel", `{"customer_id":"c1","purpose":"service","status":"granted"}`, CodeInvalidRequest, ConsentChange{}},
		{"no purpose", `{"customer_id":"c1","channel":"sms","status":"granted"}`, CodeInvalidRequest, ConsentChange{}},
		{"unknown member", `{"customer_id":"c1","channel":"sms","purpose":"service","status":"granted","staus":"denied"}`, CodeInvalidRequest, ConsentChange{}},
		{"status not a string", `{"customer_id":"c1","channel":"sms","purpose":"service","status":true}`, CodeInvalidRequest, ConsentChange{}},
		{"ts out of range", `{"customer_id":"c1","channel":"sms","purpose":"service","status":"granted","ts":"1000-01-01T00:00:00Z"}`, CodeInvalidRequest, ConsentChange{}},
		{"empty event id", `{"customer_id":"c1","channel":"sms","purpose":"service","status":"granted","event_id":""}`, CodeInvalidRequest, ConsentChange{}},
		{"ids in place of customer_id", `{"ids":{"cookie":"c-91","crm_id":"c00042"},"channel":"email","purpose":"marketing","status":"denied"}`, "",
			ConsentChange{Channel: "email", Purpose: "marketing", TS: now, IDs: []Field{{Key: "cookie", Kind: KindString, Str: "c-91"}, {Key: "crm_id", Kind: KindString, Str: "c00042"}}}},
		{"ids beside customer_id", `{"customer_id":"c1","ids":{"email":"a@b"},"channel":"email","purpose":"marketing","status":"granted"}`, "",
			ConsentChange{CustomerID: "c1", Channel: "email", Purpose: "marketing", Granted: true, TS: now, IDs: []Field{{Key: "email", Kind: KindString, Str: "a@b"}}}},
		{"ids all null", `{"ids":{"cookie":null},"channel":"email","purpose":"marketing","status":"denied"}`, CodeInvalidRequest, ConsentChange{}},
		{"ids not a string", `{"ids":{"cookie":7},"channel":"email","purpose":"marketing","status":"denied"}`, CodeInvalidRequest, ConsentChange{}},
		{"ids not an object", `{"ids":"c-91","channel":"email","purpose":"marketing","status":"denied"}`, CodeInvalidRequest, ConsentChange{}},
		{"truncated", `{"customer_id":"c1"`, CodeMalformedJSON, ConsentChange{}},
		{"not an object", `[]`, CodeInvalidRequest, ConsentChange{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got ConsentChange
			_, err := decodeConsent([]byte(c.body), nil, &got, &testLimits, now)
			if c.code == "" {
				if err != nil || !reflect.DeepEqual(got, c.want) {
					t.Errorf("got %+v %v, want %+v", got, err, c.want)
				}
				return
			}
			de, ok := err.(*decodeError)
			if !ok || de.code != c.code {
				t.Errorf("err %v, want code %s", err, c.code)
			}
		})
	}
}

func FuzzDecodeConsent(f *testing.F) {
	for _, s := range []string{
		`{"customer_id":"c1","channel":"email","purpose":"marketing","status":"denied","ts":"2023-11-14T00:00:00Z","source":"pc","event_id":"e1"}`,
		`{"customer_id":"c1","channel":"email","purpose":"marketing","status":"granted"}`,
		`{"customer_id":"c1","channel":"email","purpose":"marketing","status":"x"}`,
		`{"customer_id":"c1","channel":"email","purpose":"marketing","status":"denied","event_id":null}`,
		`{"customer_id":"c\u00e9","channel":"email","purpose":"marketing","status":"denied","source":null}`,
		`{"ids":{"cookie":"c-91","crm_id":"c00042"},"channel":"email","purpose":"marketing","status":"denied"}`,
		`{"ids":{"cookie":null},"channel":"email","purpose":"marketing","status":"denied"}`,
		`{"customer_id":"c1","ids":{"email":"a@b"},"channel":"email","purpose":"marketing","status":"granted"}`,
		`{"ids":{"cookie":7},"channel":"email","purpose":"marketing","status":"denied"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Unix(1700000000, 0).UTC()
	f.Fuzz(func(t *testing.T, body []byte) {
		var c ConsentChange
		_, err := decodeConsent(body, nil, &c, &testLimits, now)
		m := checkAgainstStdlib(t, body, err)
		if err != nil {
			return
		}
		status := "denied"
		if c.Granted {
			status = "granted"
		}
		if c.CustomerID != str(m, "customer_id") || c.Channel != str(m, "channel") || c.Purpose != str(m, "purpose") ||
			status != str(m, "status") || c.Source != str(m, "source") || c.CustomerID == "" && len(c.IDs) == 0 || c.Channel == "" || c.Purpose == "" {
			t.Fatalf("decoded %+v, encoding/json %v", c, m)
		}
		for k := range m {
			switch k {
			case "customer_id", "ids", "channel", "purpose", "status", "ts", "source", "event_id":
			default:
				t.Fatalf("accepted unknown member %q", k)
			}
		}
		checkTS(t, c.TS, m, now)
		checkEventID(t, c.EventID, m)
		checkFields(t, "ids", c.IDs, m["ids"])
		// Round trip through the wire form.
		w := map[string]any{"customer_id": c.CustomerID, "channel": c.Channel, "purpose": c.Purpose, "status": status,
			"ts": c.TS.Format(time.RFC3339Nano), "source": c.Source, "ids": idsMap(c.IDs)}
		if c.EventID != "" {
			w["event_id"] = c.EventID
		}
		b, _ := json.Marshal(w)
		var c2 ConsentChange
		if _, err := decodeConsent(b, nil, &c2, &testLimits, now); err != nil {
			t.Fatalf("cannot decode re-encoded %s: %v", b, err)
		}
		if c2.CustomerID != c.CustomerID || c2.Channel != c.Channel || c2.Purpose != c.Purpose || c2.Granted != c.Granted ||
			!c2.TS.Equal(c.TS) || c2.Source != c.Source || c2.EventID != c.EventID || !sameIDs(c.IDs, c2.IDs) {
			t.Fatalf("round trip changed %+v into %+v", c, c2)
		}
	})
}

// TestCustomerRequiredNamesIDs is the regression test of a consent
// change without customer_id or ids answered "customer_id is required":
// every route that takes customer_id takes ids in its place, and the
// message names both.
func TestCustomerRequiredNamesIDs(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	for _, tc := range []struct {
		route  string
		decode func([]byte) error
		body   string
	}{
		{"consent", func(b []byte) error {
			var c ConsentChange
			_, err := decodeConsent(b, nil, &c, &testLimits, now)
			return err
		}, `{"channel":"email","purpose":"marketing","status":"denied"}`},
		{"decide", func(b []byte) error {
			var r DecideRequest
			_, err := decodeDecide(b, nil, &r, &testLimits)
			return err
		}, `{"channel":"email"}`},
		{"feedback", func(b []byte) error {
			var fb Feedback
			_, err := decodeFeedback(b, nil, &fb, &testLimits, now)
			return err
		}, `{"action_id":"a","outcome":"impression"}`},
		{"events", func(b []byte) error {
			var ev Event
			_, err := decodeEvent(b, nil, &ev, &testLimits, now)
			return err
		}, `{"type":"purchase"}`},
	} {
		t.Run(tc.route, func(t *testing.T) {
			err := tc.decode([]byte(tc.body))
			if err == nil || err.Error() != "customer_id or ids is required" {
				t.Fatalf("%s without customer_id or ids: %v, want customer_id or ids is required", tc.body, err)
			}
		})
	}
}

// TestIDsValueTypeOneMessage is the regression test of ids values of the
// wrong type answered two ways ("must be a string" for a number,
// "values must be strings, numbers or booleans" for an array, which
// claimed numbers were fine): every non-string value gets one message.
func TestIDsValueTypeOneMessage(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	for _, v := range []string{`5`, `true`, `["a"]`, `{"a":"b"}`} {
		t.Run(v, func(t *testing.T) {
			var c ConsentChange
			_, err := decodeConsent([]byte(`{"ids":{"device":`+v+`},"channel":"email","purpose":"marketing","status":"denied"}`), nil, &c, &testLimits, now)
			if err == nil || err.Error() != "ids.device must be a string" {
				t.Fatalf("ids.device %s: %v, want ids.device must be a string", v, err)
			}
		})
	}
}
