package sidecar

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"nba/nba/server"
)

// TestEraseByIdentifier is the regression test of DELETE
// /admin/customers/{value}?ns=email ignoring ns: it erased a literal
// customer "zed@example.com" (nothing), left the person in place, answered
// 200 as a success, and ?ns=fax was not refused. Now the identifier is
// resolved as GET /v1/customers does (the hashed email namespace
// included) and the whole person erased; an unknown namespace or query
// parameter is 400; an erasure that found nothing says "found":false.
func TestEraseByIdentifier(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	s, err := Open(Config{Bundle: fsys, BundleName: "test", StateDir: t.TempDir(), Now: func() time.Time { return now }, ErasureKey: []byte("erasure-key")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := func(kv ...string) []server.Field {
		var f []server.Field
		for i := 0; i < len(kv); i += 2 {
			f = append(f, server.Field{Key: kv[i], Kind: server.KindString, Str: kv[i+1]})
		}
		return f
	}
	if _, err := s.Identify(&server.IdentifyRequest{IDs: ids("email", "zed@example.com", "crm_id", "c00500", "cookie", "c-500", "device", "d-500"), TS: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Feedback(&server.Feedback{IDs: ids("crm_id", "c00500"), ActionID: "birthday_gift", Channel: "web", Outcome: server.OutcomeImpression, TS: now}); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{AdminToken: "tok"}, s)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeAdmin(ln)
	defer srv.Shutdown(context.Background())
	del := func(path string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("DELETE", "http://"+ln.Addr().String()+"/admin/customers/"+path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("DELETE %s: %s", path, b)
		}
		return resp.StatusCode, m
	}
	code := func(m map[string]any) any {
		e, _ := m["error"].(map[string]any)
		return e["code"]
	}
	for _, tc := range []struct{ path, why string }{
		{"x?ns=fax", "unknown namespace"},
		{"zed@example.com?namespace=email", "unknown query parameter"},
	} {
		if st, m := del(tc.path); st != http.StatusBadRequest || code(m) != server.CodeInvalidRequest {
			t.Errorf("DELETE %s (%s): %d %v, want 400 invalid_request", tc.path, tc.why, st, m)
		}
	}
	if id, _ := s.ResolveCustomer("device", "d-500"); id != "c00500" {
		t.Fatalf("a refused erasure changed the person: the device resolves to %q", id)
	}
	st, m := del("zed@example.com?ns=email")
	if st != http.StatusOK || m["found"] != true {
		t.Fatalf("DELETE by email: %d %v, want 200 found", st, m)
	}
	if id, _ := s.ResolveCustomer("device", "d-500"); id == "c00500" {
		t.Errorf("after the erasure by email the device still resolves to c00500")
	}
	if _, err := s.AppendCustomer(nil, "c00500"); err == nil {
		t.Errorf("after the erasure by email c00500's view answers")
	}
	if st, m := del("c09999"); st != http.StatusOK || m["found"] != false {
		t.Errorf("DELETE of a customer nothing was kept for: %d %v, want 200 with found false", st, m)
	}
}
