package server

import (
	"strings"
	"testing"
	"time"
)

// TestCustomerIDRulesEveryRoute is the regression test of a customer_id
// with a slash accepted by events, feedback, consent and decide (and the
// event stream) although the erasure route could not take it: every
// decoder refuses it with the customer id rules.
func TestCustomerIDRulesEveryRoute(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	dec, err := NewEventDecoder(Config{MaxFields: 8, MaxIDBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"q/1", "/", "a/b/c"} {
		for _, tc := range []struct {
			route  string
			decode func(body string) error
			body   string
		}{
			{"events", func(b string) error { _, err := decodeEvent([]byte(b), nil, &Event{}, &testLimits, now); return err },
				`{"customer_id":%q,"type":"cart_abandoned","attrs":{"value":12}}`},
			{"events with ids", func(b string) error { _, err := decodeEvent([]byte(b), nil, &Event{}, &testLimits, now); return err },
				`{"customer_id":%q,"ids":{"cookie":"c-1"},"type":"login"}`},
			{"feedback", func(b string) error {
				_, err := decodeFeedback([]byte(b), nil, &Feedback{}, &testLimits, now)
				return err
			},
				`{"customer_id":%q,"action_id":"a","outcome":"impression"}`},
			{"consent", func(b string) error {
				_, err := decodeConsent([]byte(b), nil, &ConsentChange{}, &testLimits, now)
				return err
			},
				`{"customer_id":%q,"channel":"email","purpose":"marketing","status":"denied"}`},
			{"decide", func(b string) error {
				_, err := decodeDecide([]byte(b), nil, &DecideRequest{}, &testLimits)
				return err
			},
				`{"customer_id":%q,"channel":"web"}`},
			{"event stream", func(b string) error {
				return dec.Decode(EventFields{CustomerID: b, Type: "cart_abandoned"}, &Event{}, now)
			}, ""},
		} {
			t.Run(tc.route+"/"+id, func(t *testing.T) {
				body := id
				if tc.body != "" {
					body = strings.Replace(tc.body, "%q", `"`+id+`"`, 1)
				}
				err := tc.decode(body)
				if err == nil || !strings.Contains(err.Error(), "slash") {
					t.Errorf("customer_id %q: %v; want refused for its slash", id, err)
				}
			})
		}
	}
	// The rule refuses only what it names.
	if _, err := decodeEvent([]byte(`{"customer_id":"q.1-x@y","type":"t"}`), nil, &Event{}, &testLimits, now); err != nil {
		t.Errorf("a customer id without a slash: %v", err)
	}
}
