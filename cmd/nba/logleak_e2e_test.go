package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// sendRaw writes request on a new connection and reads whatever comes back
// until the server closes or a short deadline passes: a malformed request
// may be answered or just dropped.
func sendRaw(t *testing.T, addr, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("cannot send: %v", err)
	}
	b, _ := io.ReadAll(conn)
	return string(b)
}

// editSnapshot returns the demo snapshot (zstd CSV) with lines appended.
func editSnapshot(t *testing.T, snap []byte, extra ...string) []byte {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	csv, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range extra {
		csv = append(csv, l+"\n"...)
	}
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(csv, nil)
}

// Regression: fasthttp's parse-error lines echoed request lines and header
// values despite SecureErrorLogMessage (a NUL in a customer path logged the
// customer id; "Authorization: Bearer <token>\0" on the admin port logged
// the token), and snapshot reload errors logged raw ids and cell values.
// Every id, value and token sent through a hostile path must stay out of
// the sidecar's output.
func TestLogsCarryNoRequestContents(t *testing.T) {
	dir := exportDemo(t)
	p := startServe(t, "-bundle", dir, "-reload.interval", "100ms")
	adminAddr := strings.TrimPrefix(p.admin, "http://")
	secrets := []string{
		"Xcustpathnul7", "Xcustpathctl8", "Xreqline9", "Xmethod10", "Xhdrkey11", "Xhdrval12", "Xcontentlen13",
		"Xhost14", "Xadmintoken15", "Xadminpath16", "Xbodyid17", "Xqueryval18", "Xsnapdupid19", "Xsnapcell20", "Xsnapcat21",
	}
	const token = adminToken // the real token, sent broken
	requests := []struct{ addr, req string }{
		{p.addr, "GET /v1/customers/Xcustpathnul7\x00 HTTP/1.1\r\nHost: a\r\n\r\n"},
		{p.addr, "GET /v1/customers/Xcustpathctl8\x01\x7f HTTP/1.1\r\nHost: a\r\n\r\n"},
		{p.addr, "GET /v1/customers/Xreqline9 HTTP/1.1 junk\r\nHost: a\r\n\r\n"},
		{p.addr, "Xmethod10\x00 / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{p.addr, "GET /healthz HTTP/1.1\r\nHost: a\r\nXhdrkey11\x00: v\r\n\r\n"},
		{p.addr, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Id: Xhdrval12\x00\r\n\r\n"},
		{p.addr, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Id Xhdrval12\r\n\r\n"},
		{p.addr, "POST /v1/decide HTTP/1.1\r\nHost: a\r\nContent-Length: Xcontentlen13\r\n\r\n{}"},
		{p.addr, "GET /healthz HTTP/1.1\r\nHost: Xhost14\x00\r\n\r\n"},
		{p.addr, "GET /v1/customers/x?Xqueryval18\x00 HTTP/1.1\r\nHost: a\r\n\r\n"},
		{p.addr, "POST /v1/decide HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\n{\"customer_id\":\"Xbodyid17\x00\",\"channel\":1}"},
		{p.addr, "POST /v1/decide HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nXbodyid17\r\n0\r\n\r\n"},
		{adminAddr, "POST /admin/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "Xadmintoken15\x00\r\n\r\n"},
		{adminAddr, "POST /admin/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "\x00\r\n\r\n"},
		{adminAddr, "GET /admin/Xadminpath16\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{adminAddr, "GET /admin/status HTTP/1.1\r\nHost: Xhost14.attacker\r\n\r\n"},
	}
	for _, r := range requests {
		sendRaw(t, r.addr, r.req)
	}
	// The same through the HTTP client, where a Go client lets them pass.
	p.call("GET", "/v1/customers/Xcustpathnul7", "")
	p.call("POST", "/v1/decide", `{"customer_id":"Xbodyid17","channel":"fax"}`)
	p.call("POST", "/v1/events", `{"customer_id":"Xbodyid17","type":"Xhdrval12"}`)

	// Snapshots that fail to load on reload: a duplicate id, a cell that
	// is not a number, a row too short.
	path := filepath.Join(dir, "customers.csv.zst")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	row := "21,642,1,76,92,2,0,false,true,false,0.42,false,none,young,north,120,2005-05-09,2025-01-28T00:00:00Z"
	for _, bad := range [][]string{
		{"Xsnapdupid19," + row, "Xsnapdupid19," + row},
		{"c99999,Xsnapcell20" + row[2:]},
		{"c99998,Xsnapcat21"},
	} {
		failed := p.metric("nba_reload_failures_total")
		writeAtomically(t, path, editSnapshot(t, good, bad...))
		eventually(t, "a reload failure counted", func() bool { return p.metric("nba_reload_failures_total") > failed })
		if r, err := p.try("POST", p.admin+"/admin/reload", "", "Authorization", "Bearer "+token); err != nil || r.status == 200 {
			t.Errorf("reload of a bad snapshot: %v %v", r, err)
		}
	}
	writeAtomically(t, path, good)
	// Wait for the logs of what was sent to be written: one more request
	// that logs, after all of them.
	time.Sleep(300 * time.Millisecond)

	logs := p.logs.String()
	if !strings.Contains(logs, "reload failed") && !strings.Contains(logs, "cannot reload") {
		t.Errorf("no reload failure logged; the test sees no logs:\n%s", logs)
	}
	var leaked []string
	for _, s := range append(secrets, token) {
		if strings.Contains(logs, s) {
			leaked = append(leaked, s)
		}
	}
	if len(leaked) > 0 {
		t.Errorf("the log contains %q:\n%s", leaked, logs)
	}
}
