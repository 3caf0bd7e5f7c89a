package server_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"nba/nba/server"
	"nba/nba/server/servertest"
)

// dryRecorder records whether each decision was a dry run.
type dryRecorder struct {
	*servertest.Backend
	mu  sync.Mutex
	dry []bool
}

func (d *dryRecorder) Decide(req *server.DecideRequest, resp *server.DecideResponse) error {
	d.mu.Lock()
	d.dry = append(d.dry, req.DryRun)
	d.mu.Unlock()
	return d.Backend.Decide(req, resp)
}

// TestStudioRoutes: the admin listener serves the studio's page on every
// path under /ui/, and under /ui/api/ only the read-only routes of the
// decision API, with decisions always dry runs and the admin token
// required when one is set; the Host check holds for all of it.
func TestStudioRoutes(t *testing.T) {
	for _, token := range []string{"", "s3cret"} {
		rec := &dryRecorder{Backend: &servertest.Backend{}}
		h := start(t, server.Config{AdminToken: token}, rec)
		auth := []string{}
		if token != "" {
			auth = []string{"Authorization", "Bearer " + token}
		}
		page := h.do(t, "GET", h.admin+"/ui/", "")
		h.do(t, "POST", h.base+"/v1/events", `{"customer_id":"c00042","type":"signup"}`) // servertest knows customers with events
		tests := []struct {
			name, method, path, body string
			hdr                      []string
			status                   int
			want                     string // in the body
		}{
			{"page", "GET", "/ui/", "", nil, 200, "<!doctype html>"},
			{"deep link", "GET", "/ui/customers/c00042", "", nil, 200, string(page.body)},
			{"deep link with query", "GET", "/ui/explain?customer=c1&channel=web", "", nil, 200, string(page.body)},
			{"page not built", "GET", "/ui/funnel", "", nil, 200, string(page.body)},
			{"script", "GET", "/ui/static/app.js", "", nil, 200, "use strict"},
			{"no such file", "GET", "/ui/static/nope.js", "", nil, 404, ""},
			{"no index by the static path", "GET", "/ui/static/index.html", "", nil, 404, ""},
			{"root redirects to the page", "GET", "/", "", nil, 200, string(page.body)},
			{"post to the page", "POST", "/ui/", "{}", nil, 405, ""},
			{"foreign host", "GET", "/ui/customers/c1", "", []string{"Host", "evil.example"}, 403, "host_not_allowed"},
			{"foreign host api", "GET", "/ui/api/v1/actions", "", append([]string{"Host", "evil.example"}, auth...), 403, "host_not_allowed"},
			{"actions", "GET", "/ui/api/v1/actions", "", auth, 200, ""},
			{"customer", "GET", "/ui/api/v1/customers/c00042", "", auth, 200, "c00042"},
			{"decide", "POST", "/ui/api/v1/decide", `{"customer_id":"c1","channel":"web","explain":true}`, auth, 200, "decision_id"},
			{"decide by GET", "GET", "/ui/api/v1/decide", "", auth, 405, ""},
			{"no feedback", "POST", "/ui/api/v1/feedback", `{}`, auth, 404, ""},
			{"no events", "POST", "/ui/api/v1/events", `{}`, auth, 404, ""},
			{"no batch", "POST", "/ui/api/v1/decide/batch", `{}`, auth, 404, ""},
			{"no reload", "POST", "/ui/api/admin/reload", ``, auth, 404, ""},
			{"auth", "GET", "/ui/api/auth", "", auth, 200, `"authorized":true`},
		}
		if token != "" {
			tests = append(tests,
				struct {
					name, method, path, body string
					hdr                      []string
					status                   int
					want                     string
				}{"api without the token", "GET", "/ui/api/v1/customers/c00042", "", nil, 401, "unauthorized"},
				struct {
					name, method, path, body string
					hdr                      []string
					status                   int
					want                     string
				}{"api with a wrong token", "POST", "/ui/api/v1/decide", `{"channel":"web"}`, []string{"Authorization", "Bearer wrong"}, 401, "unauthorized"},
				struct {
					name, method, path, body string
					hdr                      []string
					status                   int
					want                     string
				}{"auth without the token", "GET", "/ui/api/auth", "", nil, 200, `{"token_required":true,"authorized":false}`})
		}
		for _, tt := range tests {
			t.Run("token="+token+"/"+tt.name, func(t *testing.T) {
				r := h.do(t, tt.method, h.admin+tt.path, tt.body, tt.hdr...)
				if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
					t.Errorf("%s %s: %d %.200s; want %d with %q", tt.method, tt.path, r.status, r.body, tt.status, tt.want)
				}
				if r.status == 200 && strings.HasPrefix(tt.path, "/ui/") && !strings.HasPrefix(tt.path, "/ui/api/") &&
					!strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'self'") {
					t.Errorf("%s: no content security policy", tt.path)
				}
			})
		}
		// The decision the page asked for was a dry run although the body
		// did not say so; one on the decision API is not.
		h.do(t, "POST", h.base+"/v1/decide", `{"customer_id":"c1","channel":"web"}`)
		rec.mu.Lock()
		if len(rec.dry) != 2 || !rec.dry[0] || rec.dry[1] {
			t.Errorf("token %q: dry runs %v, want [true false] (the studio's, then the public API's)", token, rec.dry)
		}
		rec.mu.Unlock()
		if m := h.do(t, "GET", h.base+"/metrics", ""); !strings.Contains(string(m.body), `endpoint="/ui/"`) {
			t.Errorf("no /ui/ endpoint in the metrics")
		} else if strings.Contains(string(m.body), "c00042") {
			t.Errorf("a customer id in the metrics")
		}
		if r := h.do(t, "GET", h.admin+"/admin/status", ""); r.status != http.StatusOK {
			t.Errorf("/admin/status beside the studio: %d", r.status)
		}
	}
}

// idBackend finds customers by one identifier, cookie=ck-1 → c00042.
type idBackend struct{ *servertest.Backend }

func (idBackend) Identify(*server.IdentifyRequest) (server.IdentifyResult, error) {
	return server.IdentifyResult{}, nil
}
func (idBackend) Unmerge(string) (server.IdentifyResult, error) { return server.IdentifyResult{}, nil }
func (idBackend) ResolveCustomer(ns, value string) (string, error) {
	if ns == "cookie" && value == "ck-1@x" {
		return "c00042", nil
	}
	return "", nil
}

// TestStudioCustomerByIdentifier: the studio's customer route finds a
// customer by any identifier as GET /v1/customers/{value}?ns= does, and
// the log names neither the identifier nor the customer.
func TestStudioCustomerByIdentifier(t *testing.T) {
	h := start(t, server.Config{}, idBackend{&servertest.Backend{}})
	h.do(t, "POST", h.base+"/v1/events", `{"customer_id":"c00042","type":"signup"}`)
	for _, tt := range []struct {
		name, path string
		status     int
		want       string
	}{
		{"by identifier", "/ui/api/v1/customers/ck-1%40x?ns=cookie", 200, `"c00042"`},
		{"unknown identifier", "/ui/api/v1/customers/ck-2?ns=cookie", 404, "not_found"},
		{"by customer id", "/ui/api/v1/customers/c00042", 200, `"c00042"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(t, "GET", h.admin+tt.path, "")
			if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("GET %s: %d %.200s; want %d with %q", tt.path, r.status, r.body, tt.status, tt.want)
			}
		})
	}
	if logs := h.logs.String(); strings.Contains(logs, "ck-1") || strings.Contains(logs, "c00042") {
		t.Errorf("the log names the identifier or the customer:\n%s", logs)
	}
}
