package sidecar

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
)

// statusOf returns the HTTP status the server answers for a Backend error.
func statusOf(err error) int {
	var e *server.Error
	if errors.As(err, &e) {
		return e.Status
	}
	return http.StatusInternalServerError
}

// Regression: feedback whose ts the state store refuses (before 1970, after
// 2200) was answered 500 internal and logged as a server error; events with
// the same ts were answered 400.
func TestFeedbackTimeOutOfRangeIsInvalid(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	for _, ts := range []time.Time{time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)} {
		fb := server.Feedback{CustomerID: "c00042", ActionID: "xs_shoes", Channel: "web", Outcome: server.OutcomeClick, TS: ts}
		if got := statusOf(s.Feedback(&fb)); got != http.StatusBadRequest {
			t.Errorf("feedback at %v: status %d, want 400", ts, got)
		}
		ev := server.Event{CustomerID: "c00042", Type: "purchase", TS: ts}
		if got := statusOf(s.Event(&ev)); got != http.StatusBadRequest {
			t.Errorf("event at %v: status %d, want 400", ts, got)
		}
	}
}

// Regression: an event the state log could not write (here: the log is
// closed) was answered 400 invalid_request, telling the caller not to
// retry an event that was lost.
func TestEventNotWrittenIsServerError(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ev := server.Event{CustomerID: "c00042", Type: "ticket_opened", TS: now}
	if got := statusOf(s.Event(&ev)); got != http.StatusInternalServerError {
		t.Errorf("event on a closed state log: status %d, want 500", got)
	}
	fb := server.Feedback{CustomerID: "c00042", ActionID: "xs_shoes", Channel: "web", Outcome: server.OutcomeClick, TS: now}
	if got := statusOf(s.Feedback(&fb)); got != http.StatusInternalServerError {
		t.Errorf("feedback on a closed state log: status %d, want 500", got)
	}
}

// Regression: two processes could open the same state directory; the
// second's checkpoints removed log segments the first was still appending
// to, losing writes the first had acknowledged.
func TestStateDirInUseIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir}
	first, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if second, err := Open(cfg); err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second Open of a state directory in use succeeded")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Open: %v, want the directory named in use", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}
