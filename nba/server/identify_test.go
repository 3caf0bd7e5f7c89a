package server

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDecodeIdentify(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	f := func(body string, wantCode string, wantIDs map[string]string) {
		t.Helper()
		var req IdentifyRequest
		_, err := decodeIdentify([]byte(body), nil, &req, &testLimits, now)
		if wantCode != "" {
			de, ok := err.(*decodeError)
			if !ok || de.code != wantCode {
				t.Errorf("%s: err %v, want %s", body, err, wantCode)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if got := idsMap(req.IDs); len(got) != len(wantIDs) {
			t.Errorf("%s: ids %v, want %v", body, got, wantIDs)
		} else {
			for k, v := range wantIDs {
				if got[k] != v {
					t.Errorf("%s: ids %v, want %v", body, got, wantIDs)
				}
			}
		}
	}
	f(`{"ids":{"cookie":"c-91","crm_id":"c00042"},"ts":"2023-11-14T22:13:20Z","event_id":"login-1"}`, "", map[string]string{"cookie": "c-91", "crm_id": "c00042"})
	f(`{"ids":{"cookie":"c-91","cookie":"c-92"}}`, CodeInvalidRequest, nil)
	f(`{"ids":{"cookie":7}}`, CodeInvalidRequest, nil)
	f(`{"ids":{"":"x"}}`, CodeInvalidRequest, nil)
	f(`{"ids":{}}`, CodeInvalidRequest, nil)
	f(`{"ids":null}`, CodeInvalidRequest, nil)
	f(`{"ts":"2023-11-14T22:13:20Z"}`, CodeInvalidRequest, nil)
	f(`{"ids":{"cookie":"c"},"customer_id":"x"}`, CodeInvalidRequest, nil) // strict: unknown members refused
	f(`{"ids":{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9","j":"10","k":"11","l":"12","m":"13","n":"14","o":"15","p":"16","q":"17"}}`, CodeInvalidRequest, nil)
	f(`{"ids":{"cookie":"c"}`, CodeMalformedJSON, nil)
}

func FuzzDecodeIdentify(f *testing.F) {
	for _, s := range []string{
		`{"ids":{"cookie":"c-91","crm_id":"c00042"},"ts":"2026-01-02T03:04:05Z","event_id":"e1"}`,
		`{"ids":{"email":"\u00e9@x"}}`,
		`{"ids":{"cookie":null,"device":"d"}}`,
		`{"ids":{"cookie":"c"},"ts":"1000-01-01T00:00:00Z"}`,
		`{"ids":[1]}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Unix(1700000000, 0).UTC()
	f.Fuzz(func(t *testing.T, body []byte) {
		var req IdentifyRequest
		_, err := decodeIdentify(body, nil, &req, &testLimits, now)
		m := checkAgainstStdlib(t, body, err)
		if err != nil {
			return
		}
		if len(req.IDs) == 0 || len(req.IDs) > MaxIDs || req.TS.IsZero() {
			t.Fatalf("accepted %+v", req)
		}
		checkFields(t, "ids", req.IDs, m["ids"])
		checkTS(t, req.TS, m, now)
		checkEventID(t, req.EventID, m)
		w := map[string]any{"ids": idsMap(req.IDs), "ts": req.TS.Format(time.RFC3339Nano)}
		if req.EventID != "" {
			w["event_id"] = req.EventID
		}
		b, _ := json.Marshal(w)
		var req2 IdentifyRequest
		if _, err := decodeIdentify(b, nil, &req2, &testLimits, now); err != nil {
			t.Fatalf("cannot decode re-encoded %s: %v", b, err)
		}
		if !sameIDs(req.IDs, req2.IDs) || !req.TS.Equal(req2.TS) || req.EventID != req2.EventID {
			t.Fatalf("round trip changed %+v into %+v", req, req2)
		}
	})
}

func FuzzDecodeUnmerge(f *testing.F) {
	for _, s := range []string{`{"receipt":"0a1b.7e63"}`, `{"receipt":""}`, `{"receipt":"x","other":1}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, receipt, err := decodeUnmerge(body, nil, &testLimits)
		m := checkAgainstStdlib(t, body, err)
		if err != nil {
			return
		}
		if receipt == "" || receipt != str(m, "receipt") {
			t.Fatalf("receipt %q, encoding/json %v", receipt, m)
		}
	})
}
