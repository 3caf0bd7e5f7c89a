package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"nba/nba/server"
	"nba/state"
)

// failingLoad is a state backend whose reads fail with err and hold no
// copy, as a shared store out of reach (or written with other mappings)
// that this process never read the customer from.
type failingLoad struct {
	state.Backend
	err error
}

func (f *failingLoad) Load(context.Context, []byte, *state.View) (bool, error) { return false, f.err }

// TestCustomerViewUnreadableNotUnknown is the regression test of GET
// /v1/customers/{id} answering 404 "unknown" when the state could not be
// read: with no copy held it answers as a read that failed, 503
// state_unavailable worded for a read (no event_id), or 500 state_mismatch
// that does not take readiness down.
func TestCustomerViewUnreadableNotUnknown(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	unavailable := &state.Error{Kind: state.ErrUnavailable, Err: context.DeadlineExceeded}
	mismatch := fmt.Errorf("customer zz1: %w", state.ErrMismatch)
	for _, tc := range []struct {
		name, customer string
		err            error
		status         int
		code           string
	}{
		{"unavailable, not in snapshot", "zz1", unavailable, 503, server.CodeStateUnavailable},
		{"unavailable, in snapshot", "c00042", unavailable, 503, server.CodeStateUnavailable},
		{"mismatch", "zz1", mismatch, 500, server.CodeStateMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openDemo(t, now)
			f := &failingLoad{Backend: s.state, err: tc.err}
			s.state, s.cust.state = f, f
			_, err := s.AppendCustomer(nil, tc.customer)
			var se *server.Error
			if !errors.As(err, &se) || se.Status != tc.status || se.Code != tc.code {
				t.Fatalf("AppendCustomer(%s) = %v; want %d %s", tc.customer, err, tc.status, tc.code)
			}
			if strings.Contains(se.Message, "event_id") || strings.Contains(se.Message, "cannot be written") || strings.Contains(se.Message, "unknown") {
				t.Errorf("message %q is not a read's", se.Message)
			}
			if err := s.Ready(); err != nil {
				t.Errorf("a read that failed took readiness down: %v", err)
			}
		})
	}
}

// TestUnavailableMessageByRoute: a 503 state_unavailable says what the
// route could not do; only a write keyed by event_id is told to retry
// with it.
func TestUnavailableMessageByRoute(t *testing.T) {
	err := &state.Error{Kind: state.ErrUnavailable, Err: errors.New("i/o timeout")}
	for _, tc := range []struct {
		name    string
		op      stateOp
		want    string
		eventID bool
	}{
		{"write", opWrite, "cannot be written now", true},
		{"read", opRead, "cannot be read now", false},
		{"change", opChange, "cannot be changed now", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, redis := range []bool{false, true} {
				msg := unavailableMessage(err, redis, tc.op)
				if !strings.Contains(msg, tc.want) || strings.Contains(msg, "event_id") != tc.eventID {
					t.Errorf("redis %v: %q; want %q, event_id named %v", redis, msg, tc.want, tc.eventID)
				}
			}
		})
	}
}
