package server_test

import (
	"testing"

	"nba/nba/server"
	"nba/nba/server/servertest"
)

// eraseBackend takes erasures (server.ConsentBackend).
type eraseBackend struct{ idBackend }

func (eraseBackend) Consent(*server.ConsentChange) error { return nil }
func (eraseBackend) AppendErasure(dst []byte, _ string) ([]byte, error) {
	return append(dst, "{}"...), nil
}

// TestAdminDisabledCode is the regression test of an erasure with no admin
// token answering 403 reload_disabled: erasure and unmerge name the admin
// API being off (admin_disabled); reload keeps its own code.
func TestAdminDisabledCode(t *testing.T) {
	h := start(t, server.Config{}, eraseBackend{idBackend{&servertest.Backend{}}})
	for _, tc := range []struct{ name, method, path, body, code string }{
		{"erasure", "DELETE", "/admin/customers/c1", "", server.CodeAdminDisabled},
		{"unmerge", "POST", "/admin/identity/unmerge", `{"receipt":"r"}`, server.CodeAdminDisabled},
		{"reload", "POST", "/admin/reload", "", server.CodeReloadDisabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := h.do(t, tc.method, h.admin+tc.path, tc.body, "Authorization", "Bearer x"); r.status != 403 || r.code() != tc.code {
				t.Errorf("%s %s: %d %s; want 403 %s", tc.method, tc.path, r.status, r.body, tc.code)
			}
		})
	}
}
