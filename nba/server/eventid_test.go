package server

import (
	"strings"
	"testing"
	"time"
)

// checkEventID asserts that a decoded event_id agrees with encoding/json's
// reading of the body and is within its bounds.
func checkEventID(t *testing.T, got string, m map[string]any) {
	t.Helper()
	if want := str(m, "event_id"); got != want {
		t.Fatalf("event_id %q, encoding/json %q", got, want)
	}
	if len(got) > MaxEventIDBytes {
		t.Fatalf("event_id of %d bytes accepted", len(got))
	}
}

func TestDecodeEventID(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	long := strings.Repeat("x", MaxEventIDBytes)
	// f decodes the member (or none) in a feedback and in an event body and
	// checks the id decoded or the error message.
	f := func(member, wantID, wantErr string) {
		t.Helper()
		if member != "" {
			member = "," + member
		}
		var fb Feedback
		_, fbErr := decodeFeedback([]byte(`{"customer_id":"c","action_id":"a","outcome":"impression"`+member+`}`), nil, &fb, &testLimits, now)
		var ev Event
		ev.EventID = "stale" // the decoder must reset it
		_, evErr := decodeEvent([]byte(`{"customer_id":"c","type":"purchase"`+member+`}`), nil, &ev, &testLimits, now)
		for _, c := range []struct {
			what string
			err  error
			id   string
		}{{"feedback", fbErr, fb.EventID}, {"event", evErr, ev.EventID}} {
			if wantErr == "" {
				if c.err != nil || c.id != wantID {
					t.Errorf("%s with %s: event_id %q, error %v; want %q", c.what, member, c.id, c.err, wantID)
				}
				continue
			}
			de, ok := c.err.(*decodeError)
			if !ok || de.code != CodeInvalidRequest || !strings.Contains(de.msg, wantErr) {
				t.Errorf("%s with %.80s: error %v, want invalid_request %q", c.what, member, c.err, wantErr)
			}
		}
	}
	f("", "", "")
	f(`"event_id":null`, "", "")
	f(`"event_id":"order-991"`, "order-991", "")
	f(`"event_id":"\u00e9"`, "é", "")
	f(`"event_id":"`+long+`"`, long, "")
	f(`"event_id":"a","event_id":null`, "", "") // the last one counts, as in encoding/json
	f(`"event_id":""`, "", "event_id must not be empty")
	f(`"event_id":"`+long+`y"`, "", "event_id is longer than 128 bytes")
	f(`"event_id":42`, "", "event_id must be a string")
	f(`"event_id":{"a":1}`, "", "event_id must be a string")
}
