package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"nba/nba/server"
	"nba/nba/server/servertest"
)

// studioBackend records the studio's what-ifs.
type studioBackend struct {
	*servertest.Backend
	mu    sync.Mutex
	calls []string
}

func (b *studioBackend) DecideWhatIf(req *server.DecideRequest, w *server.WhatIf, resp *server.DecideResponse) error {
	var sb strings.Builder
	sb.WriteString(req.CustomerID)
	if !req.DryRun {
		sb.WriteString(" RECORDED")
	}
	if w.Candidate {
		sb.WriteString(" candidate")
	}
	if w.Seed != 0 {
		fmt.Fprintf(&sb, " seed %d", w.Seed)
	}
	for _, a := range w.Actions {
		if a.ID == "nope" {
			return server.InvalidOverridef("action %q is not in the catalog", a.ID)
		}
		sb.WriteString(" " + a.ID)
		if a.Lever != nil {
			sb.WriteString(" lever")
		}
		if a.Tier != nil {
			sb.WriteString(" tier")
		}
	}
	for _, f := range req.Context {
		sb.WriteString(" " + f.Key + "=" + f.Str)
	}
	b.mu.Lock()
	b.calls = append(b.calls, sb.String())
	b.mu.Unlock()
	return b.Backend.Decide(req, resp)
}

func (b *studioBackend) AppendCandidate(dst []byte) ([]byte, error) {
	return append(dst, `{"loaded":true,"name":"next"}`...), nil
}

// TestStudioWhatIfRoute: the studio's decide route hands overrides and the
// bundle to the backend as a dry run, with the what-if's context in place
// of the request's; bad overrides are 400 invalid_override, whether the
// decoder or the backend refuses them; a backend without what-ifs answers
// 404.
func TestStudioWhatIfRoute(t *testing.T) {
	b := &studioBackend{Backend: &servertest.Backend{}}
	h := start(t, server.Config{}, b)
	const req = `"customer_id":"c1","channel":"web","context":{"page":"home","device":"ios"}`
	for _, tc := range []struct {
		name, body string
		status     int
		want, call string
	}{
		{"plain", `{` + req + `}`, 200, "decision_id", ""},
		{"what-if", `{` + req + `,"overrides":{"actions":{"a":{"lever":2},"b":{"tier":0}},"context":{"page":"cart"}}}`, 200, "decision_id", "c1 a lever b tier page=cart device=ios"},
		{"candidate", `{` + req + `,"bundle":"candidate","dry_run":false}`, 200, "decision_id", "c1 candidate page=home device=ios"},
		{"seed", `{` + req + `,"seed":42}`, 200, "decision_id", "c1 seed 42 page=home device=ios"},
		{"malformed override", `{` + req + `,"overrides":{"actions":{"a":{"lever":"x"}}}}`, 400, `"code":"invalid_override"`, ""},
		{"refused override", `{` + req + `,"overrides":{"actions":{"nope":{"lever":1}}}}`, 400, `"code":"invalid_override","message":"action \"nope\" is not in the catalog"`, ""},
		{"malformed body", `{` + req + `,"overrides":{`, 400, `"code":"malformed_json"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.mu.Lock()
			b.calls = nil
			b.mu.Unlock()
			r := h.do(t, "POST", h.admin+"/ui/api/v1/decide", tc.body)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
				t.Errorf("%d %s; want %d with %s", r.status, r.body, tc.status, tc.want)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if got := strings.Join(b.calls, "|"); got != tc.call {
				t.Errorf("what-if calls %q, want %q", got, tc.call)
			}
		})
	}
	if r := h.do(t, "GET", h.admin+"/ui/api/candidate", ""); r.status != 200 || string(r.body) != `{"loaded":true,"name":"next"}` {
		t.Errorf("candidate: %d %s", r.status, r.body)
	}
	plain := start(t, server.Config{}, &servertest.Backend{})
	if r := plain.do(t, "POST", plain.admin+"/ui/api/v1/decide", `{`+req+`,"bundle":"candidate"}`); r.status != 404 || !strings.Contains(string(r.body), "not_found") {
		t.Errorf("what-if on a backend without: %d %s", r.status, r.body)
	}
	if r := plain.do(t, "GET", plain.admin+"/ui/api/candidate", ""); r.status != 200 || string(r.body) != `{"loaded":false}` {
		t.Errorf("candidate on a backend without: %d %s", r.status, r.body)
	}
}

// atRecorder records the dry run and "at" of each decision, with and
// without what-ifs.
type atRecorder struct {
	*servertest.Backend
	mu   sync.Mutex
	seen []string
}

func (b *atRecorder) Decide(req *server.DecideRequest, resp *server.DecideResponse) error {
	b.mu.Lock()
	b.seen = append(b.seen, fmt.Sprintf("dry=%v at=%s", req.DryRun, req.At.UTC().Format(time.RFC3339)))
	b.mu.Unlock()
	return b.Backend.Decide(req, resp)
}

func (b *atRecorder) DecideWhatIf(req *server.DecideRequest, _ *server.WhatIf, resp *server.DecideResponse) error {
	return b.Decide(req, resp)
}

func (b *atRecorder) AppendCandidate(dst []byte) ([]byte, error) {
	return append(dst, `{"loaded":false}`...), nil
}

// TestStudioDecideAtWithoutDryRun is the regression test of the studio's
// decide route refusing "at" without "dry_run" (400): it checked "at"
// against the body before forcing the dry run. A studio decision is
// always a dry run, so "at" needs nothing more there, with or without
// what-ifs; on the decision API it still needs "dry_run":true.
func TestStudioDecideAtWithoutDryRun(t *testing.T) {
	b := &atRecorder{Backend: &servertest.Backend{}}
	h := start(t, server.Config{}, b)
	const req = `"customer_id":"c1","channel":"web","at":"2026-03-01T10:00:00Z"`
	const seen = "dry=true at=2026-03-01T10:00:00Z"
	for _, tc := range []struct {
		name, url, body string
		status          int
		seen            string
	}{
		{"studio", h.admin + "/ui/api/v1/decide", `{` + req + `}`, 200, seen},
		{"studio, dry_run false", h.admin + "/ui/api/v1/decide", `{` + req + `,"dry_run":false}`, 200, seen},
		{"studio what-if", h.admin + "/ui/api/v1/decide", `{` + req + `,"overrides":{"actions":{"a":{"lever":2}}}}`, 200, seen},
		{"decision API", h.base + "/v1/decide", `{` + req + `}`, 400, ""},
		{"decision API, dry run", h.base + "/v1/decide", `{` + req + `,"dry_run":true}`, 200, seen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.mu.Lock()
			b.seen = nil
			b.mu.Unlock()
			if r := h.do(t, "POST", tc.url, tc.body); r.status != tc.status {
				t.Errorf("%d %s; want %d", r.status, r.body, tc.status)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if got := strings.Join(b.seen, "|"); got != tc.seen {
				t.Errorf("backend saw %q, want %q", got, tc.seen)
			}
		})
	}
}
