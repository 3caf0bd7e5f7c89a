package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"nba/internal/faulttest"
)

// TestFullDiskHeals is the regression test for a full disk that never
// healed: with the state on a 2 MiB tmpfs, feedback and events were
// acknowledged until the disk filled, then answered 500 internal forever,
// even after space was freed, while /readyz said 200. Now: 503
// state_unavailable, /readyz 503, counted in metrics and status; writes
// resume by themselves once space returns; after a restart every
// acknowledged write is there and no refused one.
func TestFullDiskHeals(t *testing.T) {
	mnt := faulttest.MountTmpfs(t, 2<<20)
	p := startServe(t, "-state", filepath.Join(mnt, "state"), "-decisionlog=false", "-reload.interval=0")
	filler := faulttest.FillDisk(t, mnt, 16<<10)
	var ok []acked
	var refused []string // customers whose only write was refused
	n := 0
	write := func() reply {
		n++
		a := acked{customer: fmt.Sprintf("fd%05d", n), value: float64(n), event: n%2 == 0}
		path, body := "/v1/feedback", fmt.Sprintf(`{"customer_id":%q,"action_id":"xs_shoes","channel":"web","outcome":"convert","value":%d}`, a.customer, n)
		if a.event {
			path, body = "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"cart_abandoned","attrs":{"value":%d}}`, a.customer, n)
		}
		r := p.call("POST", path, body)
		switch r.status {
		case http.StatusOK:
			ok = append(ok, a)
		case http.StatusServiceUnavailable:
			var e struct {
				Error struct{ Code, Message string }
			}
			if json.Unmarshal(r.body, &e) != nil || e.Error.Code != "state_unavailable" || e.Error.Message == "" {
				t.Fatalf("POST %s on a full disk: %v, want 503 state_unavailable with a message", path, r)
			}
			refused = append(refused, a.customer)
		default:
			t.Fatalf("POST %s: %v, want 200 or 503 state_unavailable", path, r)
		}
		return r
	}
	for n < 20_000 && write().status == http.StatusOK {
	}
	if len(refused) == 0 || len(ok) == 0 {
		t.Fatalf("%d writes acknowledged, %d refused: the disk never filled", len(ok), len(refused))
	}
	// Until the log's next attempt to heal (1s), it is failed.
	if r := p.call("GET", "/readyz", ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("readyz on a full disk: %v, want 503", r)
	}
	for range 5 {
		write()
	}
	time.Sleep(1500 * time.Millisecond) // the log tries to heal, in vain: the disk is still full
	if r := p.call("GET", "/readyz", ""); r.status != http.StatusServiceUnavailable || !bytes.Contains(r.body, []byte("state_unavailable")) {
		t.Errorf("readyz on a disk still full: %v, want 503 state_unavailable", r)
	}
	if got := p.metric("nba_state_writable"); got != 0 {
		t.Errorf("nba_state_writable %v on a full disk, want 0", got)
	}
	if got := p.metric("nba_state_unavailable_total"); got < float64(len(refused)) {
		t.Errorf("nba_state_unavailable_total %v, want at least %d", got, len(refused))
	}
	r, err := p.try("GET", p.admin+"/admin/status", "")
	var st struct {
		State struct {
			Unavailable uint64
			WAL         struct {
				WriteErrors uint64 `json:"write_errors"`
			}
		}
	}
	if err != nil || json.Unmarshal(r.body, &st) != nil || st.State.Unavailable == 0 || st.State.WAL.WriteErrors == 0 {
		t.Errorf("status on a full disk: %v %v, want state.unavailable and state.wal.write_errors counted", r, err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	for write().status != http.StatusOK {
		if time.Since(freed) > 10*time.Second {
			t.Fatalf("writes still refused 10s after space returned; log:\n%s", p.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("writes resumed %v after space returned; %d acknowledged, %d refused", time.Since(freed).Round(time.Millisecond), len(ok), len(refused))
	for range 20 {
		if r := write(); r.status != http.StatusOK {
			t.Fatalf("write after healing: %v", r)
		}
	}
	if r := p.call("GET", "/readyz", ""); r.status != http.StatusOK {
		t.Errorf("readyz after healing: %v", r)
	}
	if !p.logs.contains("cannot write customer state") || p.logs.contains("backend error") {
		t.Errorf("want the unavailable state logged, and no internal error; log:\n%s", p.logs)
	}
	p.signal(syscall.SIGTERM)
	if code, ok := p.waitExit(waitDeadline); !ok || code != 0 {
		t.Fatalf("exit after SIGTERM: %d (exited %v); log:\n%s", code, ok, p.logs)
	}
	p = startServe(t, "-state", filepath.Join(mnt, "state"), "-decisionlog=false", "-reload.interval=0")
	verifyAcked(t, p, ok)
	for _, c := range refused {
		if r := p.call("GET", "/v1/customers/"+c, ""); r.status != http.StatusNotFound {
			t.Fatalf("customer %s, whose only write was refused, has state after a restart: %v", c, r)
		}
	}
}

// TestStateBoundsFlags: -state.maxCustomers bounds the live state of ids
// not in the snapshot (evictions in the metrics); a damaged state log record
// stops start-up with a message naming -state.skipCorrupt, and with the
// flag the process starts without it and says so in status.
func TestStateBoundsFlags(t *testing.T) {
	stateDir := t.TempDir()
	p := startServe(t, "-state", stateDir, "-decisionlog=false", "-reload.interval=0", "-state.maxCustomers", "3")
	for i := range 10 {
		p.ok("/v1/events", fmt.Sprintf(`{"customer_id":"bound-%02d-xyz","type":"cart_abandoned","attrs":{"value":%d}}`, i, i+1))
	}
	eventually(t, "evictions past -state.maxCustomers", func() bool { return p.metric("nba_state_customers_evicted_total") == 7 })
	if r := p.call("GET", "/v1/customers/bound-09-xyz", ""); r.status != http.StatusOK {
		t.Errorf("the most recent customer lost its state: %v", r)
	}
	if r := p.call("GET", "/v1/customers/bound-00-xyz", ""); r.status != http.StatusNotFound {
		t.Errorf("the least recent customer kept its state: %v", r)
	}
	p.signal(syscall.SIGTERM)
	if code, ok := p.waitExit(waitDeadline); !ok || code != 0 {
		t.Fatalf("exit after SIGTERM: %d (exited %v)", code, ok)
	}
	segs, _ := filepath.Glob(filepath.Join(stateDir, "state", "wal-*.seg"))
	damaged := false
	for _, seg := range segs {
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(data, []byte("bound-09-xyz")); i >= 0 {
			data[i] ^= 0xff
			damaged = os.WriteFile(seg, data, 0o644) == nil
		}
	}
	if !damaged {
		t.Fatalf("no segment of %v holds the last event", segs)
	}
	p = launch(t, "-state", stateDir, "-decisionlog=false")
	if code, ok := p.waitExit(waitDeadline); !ok || code == 0 || !p.logs.contains("-state.skipCorrupt") {
		t.Fatalf("start on a damaged log: exit %d (exited %v), want non-zero naming -state.skipCorrupt; log:\n%s", code, ok, p.logs)
	}
	p = startServe(t, "-state", stateDir, "-decisionlog=false", "-state.skipCorrupt")
	if got := p.metric("nba_state_log_corrupt_records_total"); got != 1 {
		t.Errorf("nba_state_log_corrupt_records_total %v, want 1", got)
	}
	if !p.logs.contains("skipped damaged customer state log records") {
		t.Errorf("skipped record not logged:\n%s", p.logs)
	}
	if r := p.call("GET", "/v1/customers/bound-09-xyz", ""); r.status != http.StatusNotFound {
		t.Errorf("the damaged event was applied: %v", r)
	}
}
