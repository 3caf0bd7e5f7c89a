package sidecar

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/state"
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
// retry an event that was lost; then 500 internal. It is 503
// state_unavailable: nothing was recorded, retry later.
func TestEventNotWrittenIsStateUnavailable(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := func(what string, err error) {
		t.Helper()
		var e *server.Error
		if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Code != server.CodeStateUnavailable {
			t.Errorf("%s on a closed state log: %v, want 503 %s", what, err, server.CodeStateUnavailable)
		}
	}
	want("event", s.Event(&server.Event{CustomerID: "c00042", Type: "ticket_opened", TS: now}))
	want("feedback", s.Feedback(&server.Feedback{CustomerID: "c00042", ActionID: "xs_shoes", Channel: "web", Outcome: server.OutcomeClick, TS: now}))
	if got := s.state.Stats().Unavailable; got != 2 {
		t.Errorf("unavailable writes counted: %d, want 2", got)
	}
}

// TestStateErrorByKind: state errors are answered by their kind, not by
// what they are not; an error of no kind is the server's (500).
func TestStateErrorByKind(t *testing.T) {
	s := openDemo(t, time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	cause := errors.New("cause")
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"invalid", &state.Error{Kind: state.ErrInvalid, Err: cause}, 400, server.CodeInvalidRequest},
		{"unavailable", fmt.Errorf("cannot record: %w", &state.Error{Kind: state.ErrUnavailable, Err: fmt.Errorf("write /x/wal: %w", syscall.ENOSPC)}), 503, server.CodeStateUnavailable},
		{"conflict", &state.Error{Kind: state.ErrConflict, Err: cause}, 409, server.CodeConflict},
		{"no kind", &os.PathError{Op: "write", Path: "/x", Err: syscall.EIO}, 500, ""},
		{"no kind, plain", cause, 500, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.stateError(tc.err)
			var e *server.Error
			if !errors.As(err, &e) {
				if tc.status != 500 {
					t.Fatalf("%v: answered 500, want %d", err, tc.status)
				}
				return
			}
			if e.Status != tc.status || e.Code != tc.code {
				t.Fatalf("answered %d %s (%s), want %d %s", e.Status, e.Code, e.Message, tc.status, tc.code)
			}
			if tc.status == 503 && (!strings.Contains(e.Message, "no space left on device") || strings.Contains(e.Message, "/x")) {
				t.Fatalf("message %q should say why without naming files", e.Message)
			}
		})
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
