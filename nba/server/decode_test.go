package server

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var testLimits = limits{maxIDBytes: 256, maxFields: 64, maxLimit: 100, maxBatch: 1000}

func TestDecodeDecide(t *testing.T) {
	type want struct {
		code string // "" for success
		req  DecideRequest
	}
	f := func(body string, w want) {
		t.Helper()
		var req DecideRequest
		_, err := decodeDecide([]byte(body), nil, &req, &testLimits)
		if w.code != "" {
			de, ok := err.(*decodeError)
			if !ok || de.code != w.code {
				t.Errorf("decode %q: error %v, want code %s", body, err, w.code)
			}
			return
		}
		if err != nil {
			t.Errorf("decode %q: %v", body, err)
			return
		}
		if req.CustomerID != w.req.CustomerID || req.Channel != w.req.Channel || req.Placement != w.req.Placement ||
			req.Limit != w.req.Limit || req.Explain != w.req.Explain || req.DryRun != w.req.DryRun || len(req.Context) != len(w.req.Context) {
			t.Errorf("decode %q: got %+v, want %+v", body, req, w.req)
			return
		}
		for i := range req.Context {
			if req.Context[i] != w.req.Context[i] {
				t.Errorf("decode %q: context[%d] = %+v, want %+v", body, i, req.Context[i], w.req.Context[i])
			}
		}
	}
	f(`{"customer_id":"c1","channel":"web"}`, want{req: DecideRequest{CustomerID: "c1", Channel: "web"}})
	f(` {"customer_id":"c\u00e9\n\"1","channel":"web","placement":"home","limit":5,"explain":true,"dry_run":true,"unknown":{"x":[1,{"y":null}]}} `,
		want{req: DecideRequest{CustomerID: "cé\n\"1", Channel: "web", Placement: "home", Limit: 5, Explain: true, DryRun: true}})
	f(`{"customer_id":"c1","channel":"web","context":{"s":"v","n":-1.5e2,"b":false,"z":null}}`,
		want{req: DecideRequest{CustomerID: "c1", Channel: "web", Context: []Field{
			{Key: "s", Kind: KindString, Str: "v"}, {Key: "n", Kind: KindNumber, Num: -150}, {Key: "b", Kind: KindBool}}}})
	f(`{"customer_id":"a","customer_id":"b","channel":"web","limit":null}`, want{req: DecideRequest{CustomerID: "b", Channel: "web"}})
	f(`{"customer_id":"\ud83d\ude00","channel":"web"}`, want{req: DecideRequest{CustomerID: "😀", Channel: "web"}})
	f(`{"customer_id":"\ud83d","channel":"web"}`, want{req: DecideRequest{CustomerID: "\ufffd", Channel: "web"}})

	for _, bad := range []struct{ body, code string }{
		{``, CodeMalformedJSON},
		{`{`, CodeMalformedJSON},
		{`[]`, CodeInvalidRequest},
		{`"x"`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web"} x`, CodeMalformedJSON},
		{`{"customer_id":"c1","channel":"web",}`, CodeMalformedJSON},
		{`{"customer_id":"c1" "channel":"web"}`, CodeMalformedJSON},
		{`{"customer_id":"c` + "\x01" + `","channel":"web"}`, CodeMalformedJSON},
		{`{"customer_id":"c` + "\xff" + `","channel":"web"}`, CodeMalformedJSON},
		{`{"customer_id":"\x","channel":"web"}`, CodeMalformedJSON},
		{`{"customer_id":"c1","channel":"web","limit":01}`, CodeMalformedJSON},
		{`{"customer_id":"c1","channel":"web","limit":1.}`, CodeMalformedJSON},
		{`{"customer_id":"c1","channel":"web","explain":tru}`, CodeMalformedJSON},
		{`{"customer_id":"c1","channel":"web","x":[1,]}`, CodeMalformedJSON},
		{`{"channel":"web"}`, CodeInvalidRequest},
		{`{"customer_id":"","channel":"web"}`, CodeInvalidRequest},
		{`{"customer_id":"c1"}`, CodeInvalidRequest},
		{`{"customer_id":1,"channel":"web"}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","limit":"5"}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","limit":1.5}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","limit":-1}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","limit":101}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","limit":1e999}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","explain":"yes"}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","context":{"a":{"b":1}}}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","context":{"a":[1]}}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","context":{"a":1,"a":2}}`, CodeInvalidRequest},
		// Regression: a repeated key whose second value was null kept the
		// first value, where encoding/json keeps the null.
		{`{"customer_id":"c1","channel":"web","context":{"a":true,"a":null}}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","context":{"a":null,"a":true}}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","context":[]}`, CodeInvalidRequest},
		{`{"customer_id":"` + strings.Repeat("x", 257) + `","channel":"web"}`, CodeInvalidRequest},
		{`{"customer_id":"c1","channel":"web","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, CodeInvalidRequest},
	} {
		f(bad.body, want{code: bad.code})
	}
	many := `{"customer_id":"c1","channel":"web","context":{`
	for i := 0; i < 65; i++ {
		if i > 0 {
			many += ","
		}
		many += `"k` + string(rune('A'+i%26)) + string(rune('a'+i/26)) + `":1`
	}
	f(many+"}}", want{code: CodeInvalidRequest})
}

func TestDecodeFeedbackAndEvent(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var fb Feedback
	if _, err := decodeFeedback([]byte(`{"decision_id":"d","customer_id":"c","action_id":"a","channel":"web","outcome":"click","value":2.5}`), nil, &fb, &testLimits, now); err != nil {
		t.Fatal(err)
	}
	if fb.Outcome != OutcomeClick || fb.Value != 2.5 || !fb.TS.Equal(now) || fb.ActionID != "a" || fb.DecisionID != "d" {
		t.Errorf("feedback = %+v", fb)
	}
	if _, err := decodeFeedback([]byte(`{"customer_id":"c","action_id":"a","outcome":"convert","ts":"2025-06-01T10:00:00.5+02:00"}`), nil, &fb, &testLimits, now); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 6, 1, 8, 0, 0, 5e8, time.UTC); !fb.TS.Equal(want) {
		t.Errorf("ts = %v, want %v", fb.TS, want)
	}
	for _, bad := range []string{
		`{"customer_id":"c","action_id":"a","outcome":"love"}`,
		`{"customer_id":"c","action_id":"a"}`,
		`{"customer_id":"c","outcome":"click"}`,
		`{"action_id":"a","outcome":"click"}`,
		`{"customer_id":"c","action_id":"a","outcome":"click","ts":"yesterday"}`,
		`{"customer_id":"c","action_id":"a","outcome":"click","value":"1"}`,
	} {
		_, err := decodeFeedback([]byte(bad), nil, &fb, &testLimits, now)
		if de, ok := err.(*decodeError); !ok || de.code != CodeInvalidRequest {
			t.Errorf("feedback %s: error %v, want invalid_request", bad, err)
		}
	}
	var ev Event
	if _, err := decodeEvent([]byte(`{"customer_id":"c","type":"page_view","attrs":{"page":"/loans","n":3}}`), nil, &ev, &testLimits, now); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "page_view" || len(ev.Attrs) != 2 || ev.Attrs[0].Str != "/loans" || ev.Attrs[1].Num != 3 {
		t.Errorf("event = %+v", ev)
	}
	for _, bad := range []string{`{"customer_id":"c"}`, `{"type":"t"}`, `{"customer_id":"c","type":"t","attrs":{"x":{}}}`} {
		_, err := decodeEvent([]byte(bad), nil, &ev, &testLimits, now)
		if de, ok := err.(*decodeError); !ok || de.code != CodeInvalidRequest {
			t.Errorf("event %s: error %v, want invalid_request", bad, err)
		}
	}
}

// The arena must never grow during a decode, or strings decoded earlier
// would point at a stale copy. Regression guard for the sizing argument.
func TestArenaDoesNotGrow(t *testing.T) {
	body := []byte(`{"customer_id":"\ud800\ud800\ud800","channel":"\u00e9\u00e9","context":{"\ud800":"\ud83d\ude00"}}`)
	var req DecideRequest
	arena := make([]byte, 0, len(body))
	p := &arena[:1][0]
	arena, err := decodeDecide(body, arena, &req, &testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if &arena[:1][0] != p {
		t.Fatal("arena was reallocated")
	}
	if req.CustomerID != "\ufffd\ufffd\ufffd" {
		t.Errorf("customer_id = %q", req.CustomerID)
	}
}

// checkAgainstStdlib asserts the decoder agrees with encoding/json: what it
// accepts is valid JSON, and what is valid UTF-8 JSON is never refused as
// malformed.
func checkAgainstStdlib(t *testing.T, body []byte, err error) (m map[string]any) {
	t.Helper()
	valid := json.Valid(body)
	if err == nil && !valid {
		t.Fatalf("accepted invalid JSON %q", body)
	}
	if de, ok := err.(*decodeError); ok && de.code == CodeMalformedJSON && valid && utf8.Valid(body) {
		t.Fatalf("refused valid JSON %q as malformed: %v", body, err)
	}
	if err != nil {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if e := d.Decode(&m); e != nil {
		t.Fatalf("encoding/json cannot decode accepted %q: %v", body, e)
	}
	return m
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func checkFields(t *testing.T, what string, got []Field, v any) {
	t.Helper()
	m, _ := v.(map[string]any)
	n := 0
	for _, x := range m {
		if x != nil {
			n++
		}
	}
	if n != len(got) {
		t.Fatalf("%s: %d fields, encoding/json has %d non-null", what, len(got), n)
	}
	for _, f := range got {
		switch f.Kind {
		case KindString:
			if m[f.Key] != f.Str {
				t.Fatalf("%s.%s = %q, encoding/json %v", what, f.Key, f.Str, m[f.Key])
			}
		case KindBool:
			if m[f.Key] != f.Bool {
				t.Fatalf("%s.%s = %v, encoding/json %v", what, f.Key, f.Bool, m[f.Key])
			}
		case KindNumber:
			num, _ := m[f.Key].(json.Number)
			want, err := num.Float64()
			if err != nil || want != f.Num || math.IsInf(f.Num, 0) {
				t.Fatalf("%s.%s = %v, encoding/json %v", what, f.Key, f.Num, m[f.Key])
			}
		default:
			t.Fatalf("%s.%s: kind %d", what, f.Key, f.Kind)
		}
	}
}

func checkDecide(t *testing.T, req *DecideRequest, m map[string]any) {
	t.Helper()
	if req.CustomerID != str(m, "customer_id") || req.Channel != str(m, "channel") || req.Placement != str(m, "placement") {
		t.Fatalf("decoded %+v, encoding/json %v", req, m)
	}
	if b, _ := m["explain"].(bool); b != req.Explain {
		t.Fatalf("explain %v, encoding/json %v", req.Explain, m["explain"])
	}
	// An accepted "at" is a dry run's, within the accepted range.
	if !req.At.IsZero() && (!req.DryRun || req.At.Before(defaultMinTime) || req.At.After(maxAt)) {
		t.Fatalf("accepted at %v (dry_run %v)", req.At, req.DryRun)
	}
	if at := str(m, "at"); at != "" {
		if want, err := time.Parse(time.RFC3339Nano, at); err != nil || !want.Equal(req.At) {
			t.Fatalf("at %q decoded as %v", at, req.At)
		}
	}
	checkFields(t, "context", req.Context, m["context"])
	checkFields(t, "ids", req.IDs, m["ids"])
	if req.CustomerID == "" && len(req.IDs) == 0 {
		t.Fatalf("accepted a request naming no customer: %v", m)
	}
}

// encodeDecide re-encodes a decoded request, for round trips.
func encodeDecide(req *DecideRequest) []byte {
	ctx := map[string]any{}
	for _, f := range req.Context {
		switch f.Kind {
		case KindString:
			ctx[f.Key] = f.Str
		case KindNumber:
			ctx[f.Key] = f.Num
		case KindBool:
			ctx[f.Key] = f.Bool
		}
	}
	w := map[string]any{"customer_id": req.CustomerID, "channel": req.Channel, "placement": req.Placement,
		"limit": req.Limit, "context": ctx, "explain": req.Explain, "dry_run": req.DryRun, "ids": idsMap(req.IDs)}
	if !req.At.IsZero() {
		w["at"] = req.At.Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(w)
	return b
}

// idsMap is the wire form of decoded ids.
func idsMap(ids []Field) map[string]string {
	m := map[string]string{}
	for _, f := range ids {
		m[f.Key] = f.Str
	}
	return m
}

func sameIDs(a, b []Field) bool {
	if len(a) != len(b) {
		return false
	}
	m := idsMap(a)
	for _, f := range b {
		if v, ok := m[f.Key]; !ok || v != f.Str {
			return false
		}
	}
	return true
}

func sameDecide(a, b *DecideRequest) bool {
	if a.CustomerID != b.CustomerID || a.Channel != b.Channel || a.Placement != b.Placement || a.Limit != b.Limit ||
		a.Explain != b.Explain || a.DryRun != b.DryRun || !a.At.Equal(b.At) || len(a.Context) != len(b.Context) || !sameIDs(a.IDs, b.IDs) {
		return false
	}
	byKey := map[string]Field{}
	for _, f := range a.Context {
		byKey[f.Key] = f
	}
	for _, f := range b.Context {
		if byKey[f.Key] != f {
			return false
		}
	}
	return true
}

var decideSeeds = []string{
	`{"customer_id":"c1","channel":"web"}`,
	`{"customer_id":"c-42","channel":"app","placement":"home","limit":3,"context":{"device":"ios","score":0.7,"vip":true,"x":null},"explain":true,"dry_run":false}`,
	`{"customer_id":"\u00e9\ud83d\ude00\n","channel":"web","unknown":[1,{"a":[]},"s",-0.5e-3,true,false,null]}`,
	`{"customer_id":"c1","channel":"web","limit":1e2}`,
	`{"customer_id":"c1","channel":"web","dry_run":true,"at":"2026-12-24T09:00:00Z"}`,
	`{"customer_id":"c1","channel":"web","at":"2026-12-24T09:00:00Z"}`,
	`{"customer_id":"c1","channel":"web","dry_run":true,"at":"1000-01-01T00:00:00Z"}`,
	`{"customer_id":"c1","channel":"web","context":{"a":{"b":1}}}`,
	`{"customer_id":"c1"`,
	`[1,2]`,
	`{"ids":{"cookie":"c-91","crm_id":"c00042"},"channel":"web"}`,
	`{"ids":{"cookie":1},"channel":"web"}`,
	`{"ids":{},"channel":"web"}`,
}

func FuzzDecodeDecide(f *testing.F) {
	for _, s := range decideSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req DecideRequest
		_, err := decodeDecide(body, nil, &req, &testLimits)
		m := checkAgainstStdlib(t, body, err)
		if err != nil {
			return
		}
		checkDecide(t, &req, m)
		again := encodeDecide(&req)
		var req2 DecideRequest
		if _, err := decodeDecide(again, nil, &req2, &testLimits); err != nil {
			t.Fatalf("cannot decode re-encoded %s: %v", again, err)
		}
		if !sameDecide(&req, &req2) {
			t.Fatalf("round trip changed %+v into %+v", req, req2)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"requests":[` + decideSeeds[0] + `,` + decideSeeds[1] + `]}`))
	f.Add([]byte(`{"requests":[]}`))
	f.Add([]byte(`{"requests":[{"channel":"web"}]}`))
	f.Add([]byte(`{"other":1,"requests":[` + decideSeeds[2] + `]}`))
	f.Add([]byte(`{"requests":{}}`))
	small := testLimits
	small.maxBatch = 4
	f.Fuzz(func(t *testing.T, body []byte) {
		_, reqs, err := decodeBatch(body, nil, nil, &small)
		m := checkAgainstStdlib(t, body, err)
		if err != nil {
			return
		}
		list, _ := m["requests"].([]any)
		if len(list) != len(reqs) || len(reqs) > small.maxBatch {
			t.Fatalf("decoded %d requests, encoding/json %d", len(reqs), len(list))
		}
		for i := range reqs {
			checkDecide(t, &reqs[i], list[i].(map[string]any))
		}
	})
}

func FuzzDecodeFeedback(f *testing.F) {
	for _, s := range []string{
		`{"decision_id":"d1","customer_id":"c1","action_id":"a1","channel":"web","outcome":"click","value":3.5,"ts":"2026-01-02T03:04:05Z"}`,
		`{"customer_id":"c1","action_id":"a1","outcome":"dismiss"}`,
		`{"customer_id":"c1","action_id":"a1","outcome":"nope"}`,
		`{"customer_id":"c1","action_id":"a1","outcome":"accept","ts":"2026-13-02T03:04:05Z"}`,
		`{"customer_id":"c1","action_id":"a1","outcome":"impression","event_id":"fb-7f3a"}`,
		`{"customer_id":"c1","action_id":"a1","outcome":"impression","event_id":""}`,
		`{"customer_id":"c1","action_id":"a1","outcome":"impression","event_id":"x","event_id":null}`,
		`{"customer_id":"c1","action_id":"a1","outcome":"click","ts":"1000-01-01T00:00:00Z"}`,
		`{"customer_id":"c1","action_id":"a1","outcome":"click","ts":"1970-01-01T00:00:00Z"}`,
		`{"customer_id":"c1","action_id":"a1","outcome":"click","ts":"9999-12-31T23:59:59+14:00"}`,
		`{"ids":{"cookie":"c-91"},"action_id":"a1","outcome":"click"}`,
		`{"ids":{"cookie":null},"action_id":"a1","outcome":"click"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Unix(1700000000, 0).UTC()
	f.Fuzz(func(t *testing.T, body []byte) {
		var fb Feedback
		_, err := decodeFeedback(body, nil, &fb, &testLimits, now)
		m := checkAgainstStdlib(t, body, err)
		if err != nil {
			return
		}
		if fb.CustomerID != str(m, "customer_id") || fb.ActionID != str(m, "action_id") || fb.DecisionID != str(m, "decision_id") ||
			fb.Outcome.String() != str(m, "outcome") || fb.CustomerID == "" && len(fb.IDs) == 0 || fb.TS.IsZero() {
			t.Fatalf("decoded %+v, encoding/json %v", fb, m)
		}
		checkTS(t, fb.TS, m, now)
		checkEventID(t, fb.EventID, m)
		checkFields(t, "ids", fb.IDs, m["ids"])
		// Round trip through the wire form.
		w := map[string]any{"decision_id": fb.DecisionID, "customer_id": fb.CustomerID, "action_id": fb.ActionID,
			"channel": fb.Channel, "outcome": fb.Outcome.String(), "value": fb.Value, "ts": fb.TS.Format(time.RFC3339Nano), "ids": idsMap(fb.IDs)}
		if fb.EventID != "" {
			w["event_id"] = fb.EventID
		}
		b, _ := json.Marshal(w)
		var fb2 Feedback
		if _, err := decodeFeedback(b, nil, &fb2, &testLimits, now); err != nil {
			t.Fatalf("cannot decode re-encoded %s: %v", b, err)
		}
		if fb2.CustomerID != fb.CustomerID || fb2.ActionID != fb.ActionID || fb2.Outcome != fb.Outcome || fb2.Value != fb.Value || !fb2.TS.Equal(fb.TS) ||
			fb2.EventID != fb.EventID || !sameIDs(fb.IDs, fb2.IDs) {
			t.Fatalf("round trip changed %+v into %+v", fb, fb2)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"customer_id":"c1","type":"page_view","ts":"2026-01-02T03:04:05.123Z","attrs":{"page":"/x","n":1,"b":true}}`,
		`{"customer_id":"c1","type":"login"}`,
		`{"customer_id":"c1","type":"t","attrs":{"a":[1]}}`,
		`{"customer_id":"c1","type":"purchase","event_id":"order-991","attrs":{"amount":12.5}}`,
		`{"customer_id":"c1","type":"purchase","event_id":7}`,
		`{"customer_id":"c1","type":"login","ts":"1000-01-01T00:00:00Z"}`,
		`{"customer_id":"c1","type":"login","ts":"2262-04-12T00:00:00Z"}`,
		`{"ids":{"cookie":"c-91"},"type":"cart_abandoned"}`,
		`{"customer_id":"c1","ids":{"device":"d1","email":"a@b"},"type":"login"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Unix(1700000000, 0).UTC()
	f.Fuzz(func(t *testing.T, body []byte) {
		var ev Event
		_, err := decodeEvent(body, nil, &ev, &testLimits, now)
		m := checkAgainstStdlib(t, body, err)
		if err != nil {
			return
		}
		if ev.CustomerID != str(m, "customer_id") || ev.Type != str(m, "type") || ev.CustomerID == "" && len(ev.IDs) == 0 || ev.Type == "" {
			t.Fatalf("decoded %+v, encoding/json %v", ev, m)
		}
		checkTS(t, ev.TS, m, now)
		checkFields(t, "attrs", ev.Attrs, m["attrs"])
		checkEventID(t, ev.EventID, m)
		checkFields(t, "ids", ev.IDs, m["ids"])
		// Round trip through the wire form.
		w := map[string]any{"customer_id": ev.CustomerID, "type": ev.Type, "ts": ev.TS.Format(time.RFC3339Nano), "ids": idsMap(ev.IDs)}
		if ev.EventID != "" {
			w["event_id"] = ev.EventID
		}
		b, _ := json.Marshal(w)
		var ev2 Event
		if _, err := decodeEvent(b, nil, &ev2, &testLimits, now); err != nil {
			t.Fatalf("cannot decode re-encoded %s: %v", b, err)
		}
		if ev2.CustomerID != ev.CustomerID || ev2.Type != ev.Type || !ev2.TS.Equal(ev.TS) || ev2.EventID != ev.EventID || !sameIDs(ev.IDs, ev2.IDs) {
			t.Fatalf("round trip changed %+v into %+v", ev, ev2)
		}
	})
}

// checkTS asserts an accepted ts is the one sent (or now) and within the
// default range, and that its nanoseconds since 1970 read back as the same
// time (what the state log stores).
func checkTS(t *testing.T, ts time.Time, m map[string]any, now time.Time) {
	t.Helper()
	if s := str(m, "ts"); s != "" {
		if want, err := time.Parse(time.RFC3339Nano, s); err != nil || !want.Equal(ts) {
			t.Fatalf("ts %q decoded as %v", s, ts)
		}
	} else if !ts.Equal(now) {
		t.Fatalf("no ts decoded as %v, want now %v", ts, now)
	}
	if ts.Before(defaultMinTime) || ts.After(now.Add(defaultMaxAhead)) || !time.Unix(0, ts.UnixNano()).Equal(ts) {
		t.Fatalf("accepted ts %v outside %v to now + %v", ts, defaultMinTime, defaultMaxAhead)
	}
}

// Regression: a ts of year 1000 was accepted and stored as 2169, since
// time.UnixNano wraps outside 1678-2262; 1970 was refused by the state
// store with no word of what is accepted.
func TestTimestampOutOfRange(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	custom := testLimits
	custom.minTime, custom.maxAhead = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour
	for _, tc := range []struct {
		name, ts string
		l        *limits
		ok       bool
		inMsg    string
	}{
		{"year 1000", "1000-01-01T00:00:00Z", &testLimits, false, "2000-01-01T00:00:00Z to 2026-12-07T12:00:00Z"},
		{"unix epoch", "1970-01-01T00:00:00Z", &testLimits, false, "accepted range"},
		{"before the minimum", "1999-12-31T23:59:59Z", &testLimits, false, "accepted range"},
		{"the minimum", "2000-01-01T00:00:00Z", &testLimits, true, ""},
		{"a day ahead", "2026-12-07T12:00:00Z", &testLimits, true, ""},
		{"past a day ahead", "2026-12-07T12:00:01Z", &testLimits, false, "accepted range"},
		{"year 9999", "9999-01-01T00:00:00Z", &testLimits, false, "accepted range"},
		{"custom minimum", "2019-06-01T00:00:00Z", &custom, false, "2020-01-01T00:00:00Z to 2026-12-06T13:00:00Z"},
		{"custom ahead", "2026-12-06T12:30:00Z", &custom, true, ""},
		{"custom past ahead", "2026-12-06T13:00:01Z", &custom, false, "accepted range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fb Feedback
			_, errFB := decodeFeedback([]byte(`{"customer_id":"c","action_id":"a","outcome":"click","ts":"`+tc.ts+`"}`), nil, &fb, tc.l, now)
			var ev Event
			_, errEv := decodeEvent([]byte(`{"customer_id":"c","type":"t","ts":"`+tc.ts+`"}`), nil, &ev, tc.l, now)
			for what, err := range map[string]error{"feedback": errFB, "event": errEv} {
				if tc.ok {
					if err != nil {
						t.Errorf("%s: %v", what, err)
					}
					continue
				}
				de, ok := err.(*decodeError)
				if !ok || de.code != CodeInvalidRequest || !strings.Contains(de.msg, tc.inMsg) {
					t.Errorf("%s: error %v, want invalid_request naming %q", what, err, tc.inMsg)
				}
			}
		})
	}
}

// A decide request "as of" another time must be a dry run.
func TestDecideAt(t *testing.T) {
	var req DecideRequest
	body := `{"customer_id":"c","channel":"web","dry_run":true,"at":"2026-12-24T09:00:00+01:00"}`
	if _, err := decodeDecide([]byte(body), nil, &req, &testLimits); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 24, 8, 0, 0, 0, time.UTC); !req.At.Equal(want) {
		t.Errorf("at = %v, want %v", req.At, want)
	}
	if _, err := decodeDecide([]byte(`{"customer_id":"c","channel":"web","dry_run":true}`), nil, &req, &testLimits); err != nil || !req.At.IsZero() {
		t.Errorf("a pooled request kept at %v (err %v)", req.At, err)
	}
	for _, bad := range []struct{ body, inMsg string }{
		{`{"customer_id":"c","channel":"web","at":"2026-12-24T09:00:00Z"}`, "dry_run"},
		{`{"customer_id":"c","channel":"web","dry_run":false,"at":"2026-12-24T09:00:00Z"}`, "dry_run"},
		{`{"customer_id":"c","channel":"web","dry_run":true,"at":"Christmas"}`, "RFC 3339"},
		{`{"customer_id":"c","channel":"web","dry_run":true,"at":"1000-01-01T00:00:00Z"}`, "accepted range"},
		{`{"customer_id":"c","channel":"web","dry_run":true,"at":7}`, "string"},
	} {
		_, err := decodeDecide([]byte(bad.body), nil, &req, &testLimits)
		if de, ok := err.(*decodeError); !ok || de.code != CodeInvalidRequest || !strings.Contains(de.msg, bad.inMsg) {
			t.Errorf("%s: error %v, want invalid_request naming %q", bad.body, err, bad.inMsg)
		}
	}
}

func TestAppendStringIsValidJSON(t *testing.T) {
	f := func(in string) {
		t.Helper()
		out := appendString(nil, in)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", in, out, err)
		}
		if utf8.ValidString(in) && back != in {
			t.Errorf("appendString(%q) reads back as %q", in, back)
		}
	}
	for _, s := range []string{"", "plain", `q"b\s`, "\x00\x1f\n\t\r", "é😀", "bad\xffutf8", "\u2028"} {
		f(s)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("a\"b\\c\x00é\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := appendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, out, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("appendString(%q) reads back as %q", s, back)
		}
	})
}
