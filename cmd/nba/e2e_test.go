package main

// End-to-end tests of the real nba process: TestMain builds the binary once
// (with -race when the tests run with -race, and then a data race reported
// by the process fails the test), each test starts it with its own state
// directory on 127.0.0.1 ports chosen by the kernel (-http.addr
// 127.0.0.1:0), talks to it over HTTP and raw TCP, sends it signals, and
// kills it at the end. Every wait is bounded; no test asserts on how long
// something took, only that it happened before a generous deadline.
// -short skips the slowest parts (fewer kill rounds, no stalled-client
// shutdown).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"nba/nba/server/servertest"
)

// nbaBin is the nba binary under test, built by TestMain.
var nbaBin string

// adminToken is the NBA_ADMIN_TOKEN every test process gets.
const adminToken = "e2e-admin-token"

// Deadlines for things that happen in milliseconds on an idle machine; they
// are generous because the machine may be busy. None is an assertion on
// speed: they only stop a test that would otherwise hang.
const (
	startDeadline = 60 * time.Second // the process logs "serving"
	waitDeadline  = 30 * time.Second // a reload, a signal, an exit takes effect
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "nba-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot create a directory for the nba binary:", err)
		os.Exit(1)
	}
	nbaBin = filepath.Join(dir, "nba")
	// go test puts $GOROOT/bin first in PATH, so this is the go that runs
	// the tests.
	args := []string{"build", "-o", nbaBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build nba:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running "nba serve".
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:PORT of the decision API
	addr   string // 127.0.0.1:PORT of the decision API
	admin  string // http://127.0.0.1:PORT of the admin API
	logs   *logLines
	client *http.Client
	exited chan struct{} // closed once the process has exited and been reaped
}

// startServe starts "nba serve" on loopback ports with args added, waits for
// it to log that it serves, and registers its killing at test end.
func startServe(t *testing.T, args ...string) *proc {
	t.Helper()
	p := launch(t, args...)
	p.waitServing()
	return p
}

// launch starts "nba serve" on loopback ports with args added and registers
// its killing at test end; it does not wait for it to serve.
func launch(t *testing.T, args ...string) *proc {
	t.Helper()
	all := append([]string{"serve", "-http.addr", "127.0.0.1:0", "-admin.addr", "127.0.0.1:0"}, patientRedis(args)...)
	cmd := exec.Command(nbaBin, all...)
	cmd.Env = append(os.Environ(), "NBA_ADMIN_TOKEN="+adminToken, "XDG_STATE_HOME="+t.TempDir())
	logs := newLogLines()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start nba serve: %v", err)
	}
	p := &proc{t: t, cmd: cmd, logs: logs, exited: make(chan struct{}),
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true}}}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if logs.contains("WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in nba serve:\n%s", logs)
		}
	})
	return p
}

// waitServing waits for the "serving" log line and takes the addresses from
// it.
func (p *proc) waitServing() {
	p.t.Helper()
	select {
	case addrs := <-p.logs.serving:
		p.addr = addrs[0]
		p.base = "http://" + addrs[0]
		p.admin = "http://" + addrs[1]
	case <-p.exited:
		p.t.Fatalf("nba %s exited with %v before serving; its log:\n%s", strings.Join(p.cmd.Args[1:], " "), p.cmd.ProcessState, p.logs)
	case <-time.After(startDeadline):
		p.t.Fatalf("nba serve did not log \"serving\" within %v; its log:\n%s", startDeadline, p.logs)
	}
}

// with returns p reporting to t: a subtest's failures must go to the
// subtest's t.
func (p *proc) with(t *testing.T) *proc {
	q := *p
	q.t = t
	return &q
}

// kill sends SIGKILL unless the process has exited, and reaps it.
func (p *proc) kill() {
	p.client.CloseIdleConnections()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(waitDeadline):
		p.t.Errorf("nba serve (pid %d) did not die on SIGKILL", p.cmd.Process.Pid)
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("cannot send %v: %v", sig, err)
	}
}

// waitExit waits up to d for the process to exit and returns its exit code.
func (p *proc) waitExit(d time.Duration) (int, bool) {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// reply is one HTTP answer.
type reply struct {
	status int
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// try sends one request; headers are name, value pairs.
func (p *proc) try(method, url, body string, headers ...string) (reply, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, b}, err
}

// call sends one request to the decision API and fails the test when it
// gets no answer.
func (p *proc) call(method, path, body string) reply {
	p.t.Helper()
	r, err := p.try(method, p.base+path, body)
	if err != nil {
		p.t.Fatalf("%s %s: %v; the process log:\n%s", method, path, err, p.logs)
	}
	return r
}

// ok posts body to path and fails the test unless the answer is 200.
func (p *proc) ok(path, body string) []byte {
	p.t.Helper()
	r := p.call("POST", path, body)
	if r.status != http.StatusOK {
		p.t.Fatalf("POST %s %s: got %v, want 200", path, body, r)
	}
	return r.body
}

// decide posts a decision request and decodes the answer.
func (p *proc) decide(req string) decision {
	p.t.Helper()
	return decodeJSON[decision](p.t, p.ok("/v1/decide", req))
}

// customer gets GET /v1/customers/{id}.
func (p *proc) customer(id string) customerView {
	p.t.Helper()
	r := p.call("GET", "/v1/customers/"+id, "")
	if r.status != http.StatusOK {
		p.t.Fatalf("GET /v1/customers/%s: %v", id, r)
	}
	return decodeJSON[customerView](p.t, r.body)
}

// metric returns the value of an unlabelled metric in GET /metrics.
func (p *proc) metric(name string) float64 {
	p.t.Helper()
	r := p.call("GET", "/metrics", "")
	if r.status != http.StatusOK {
		p.t.Fatalf("GET /metrics: %v", r)
	}
	for line := range strings.Lines(string(r.body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				p.t.Fatalf("metric %s: %q is not a number", name, v)
			}
			return f
		}
	}
	p.t.Fatalf("metric %s not in /metrics:\n%s", name, r.body)
	return 0
}

// checkpoints returns the state checkpoints written since start, from
// GET /admin/status.
func (p *proc) checkpoints() int {
	p.t.Helper()
	r, err := p.try("GET", p.admin+"/admin/status", "")
	if err != nil || r.status != http.StatusOK {
		p.t.Fatalf("GET /admin/status: %v %v", r, err)
	}
	var st struct {
		State struct{ Checkpoints int }
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		p.t.Fatalf("GET /admin/status: %v", err)
	}
	return st.State.Checkpoints
}

// eventually polls cond until it holds or waitDeadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("cannot decode %T from %s: %v", v, b, err)
	}
	return v
}

// decision is the body of a POST /v1/decide answer, as the README
// documents it; unknown fields fail decoding.
type decision struct {
	DecisionID string      `json:"decision_id"`
	CustomerID string      `json:"customer_id"`
	Channel    string      `json:"channel"`
	Actions    []actionOut `json:"actions"`
	Control    bool        `json:"control"`
	Withheld   []actionOut `json:"withheld"`
	// stopped_by and candidates as the sidecar's own tests decode them.
	StoppedBy *servertest.StoppedBy `json:"stopped_by"`
	Versions  struct {
		Bundle   string `json:"bundle"`
		Catalog  string `json:"catalog"`
		Model    string `json:"model"`
		Snapshot string `json:"snapshot"`
	} `json:"versions"`
	Candidates []servertest.Candidate `json:"candidates"`
	TookUS     int64                  `json:"took_us"`
}

type actionOut struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Score      float64         `json:"score"`
	Propensity float64         `json:"propensity"`
	Value      float64         `json:"value"`
	Lever      float64         `json:"lever"`
	Tier       int             `json:"tier"`
	Treatment  json.RawMessage `json:"treatment"`
}

func (d decision) ids() []string {
	var ids []string
	for _, a := range d.Actions {
		ids = append(ids, a.ID)
	}
	return ids
}

func (d decision) action(id string) (actionOut, bool) {
	for _, a := range d.Actions {
		if a.ID == id {
			return a, true
		}
	}
	return actionOut{}, false
}

// customerView is the body of GET /v1/customers/{id}.
type customerView struct {
	CustomerID string         `json:"customer_id"`
	InSnapshot bool           `json:"in_snapshot"`
	Live       bool           `json:"has_live_state"`
	State      string         `json:"state"` // "stale": the live state could not be read
	Profile    map[string]any `json:"profile"`
	Snapshot   *struct {
		AsOf   string         `json:"as_of"`
		Values map[string]any `json:"values"`
	} `json:"snapshot"`
	LiveFields map[string]struct {
		Value     any    `json:"value"`
		ChangedAt string `json:"changed_at"`
		Applied   bool   `json:"applied"`
	} `json:"live"`
	Caps []struct {
		Policy       string `json:"policy"`
		Scope        string `json:"scope"`
		Key          string `json:"key"`
		Outcome      string `json:"outcome"`
		Window       string `json:"window"`
		Max          int    `json:"max"`
		Count        int    `json:"count"`
		Headroom     int    `json:"headroom"`
		ChannelLimit bool   `json:"channel_limit"`
		FreesAt      string `json:"frees_at"`
	} `json:"caps"`
	Holdout struct {
		Global  bool     `json:"global"`
		Actions []string `json:"actions"`
	} `json:"holdout"`
	History []struct {
		ActionID string  `json:"action_id"`
		Channel  string  `json:"channel"`
		Outcome  string  `json:"outcome"`
		Value    float64 `json:"value"`
		TS       string  `json:"ts"`
	} `json:"history"`
	Journeys []struct {
		Journey    string `json:"journey"`
		Step       int    `json:"step"`
		Status     string `json:"status"`
		EnteredAt  string `json:"entered_at"`
		StepAt     string `json:"step_at"`
		Mode       string `json:"mode"`
		NextAction string `json:"next_action"`
		DueAt      string `json:"due_at"`
	} `json:"journeys"`
	Consent []struct {
		Channel   string `json:"channel"`
		Purpose   string `json:"purpose"`
		Status    string `json:"status"`
		Default   bool   `json:"default"`
		ChangedAt string `json:"changed_at"`
		Source    string `json:"source"`
		Trail     []struct {
			Status string `json:"status"`
			TS     string `json:"ts"`
			Source string `json:"source"`
		} `json:"trail"`
	} `json:"consent"`
	// Identity stitching (identity_e2e_test.go).
	Identifiers []map[string]any `json:"identifiers"`
	MergedFrom  string           `json:"merged_from"`
	// The suppressions in force (studio_customer_test.go).
	Suppressions []struct {
		Policy   string   `json:"policy"`
		ActionID string   `json:"action_id"`
		Group    string   `json:"group"`
		After    string   `json:"after"`
		Count    int      `json:"count"`
		Within   string   `json:"within"`
		Without  string   `json:"without"`
		Pause    string   `json:"pause"`
		Counted  []string `json:"counted"`
		Since    string   `json:"since"`
		Until    string   `json:"until"`
	} `json:"suppressions"`
}

func (c customerView) journey(id string) (status string, step int, ok bool) {
	for _, j := range c.Journeys {
		if j.Journey == id {
			return j.Status, j.Step, true
		}
	}
	return "", 0, false
}

func (c customerView) hasContact(action, channel, outcome string, value float64) bool {
	for _, h := range c.History {
		if h.ActionID == action && h.Channel == channel && h.Outcome == outcome && h.Value == value {
			return true
		}
	}
	return false
}

// salesActions returns the ids of the actions of the group "sales" and its
// descendants, read from GET /v1/actions.
func (p *proc) salesActions() map[string]bool {
	p.t.Helper()
	r := p.call("GET", "/v1/actions", "")
	if r.status != http.StatusOK {
		p.t.Fatalf("GET /v1/actions: %v", r)
	}
	var body struct {
		Version string `json:"version"`
		Catalog struct {
			Groups []struct {
				ID     string `json:"id"`
				Parent string `json:"parent"`
			} `json:"groups"`
			Actions []struct {
				ID    string `json:"id"`
				Group string `json:"group"`
			} `json:"actions"`
		} `json:"catalog"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		p.t.Fatalf("GET /v1/actions: %v", err)
	}
	parent := map[string]string{}
	for _, g := range body.Catalog.Groups {
		parent[g.ID] = g.Parent
	}
	isSales := func(g string) bool {
		for i := 0; g != "" && i < 100; i++ {
			if g == "sales" {
				return true
			}
			g = parent[g]
		}
		return false
	}
	sales := map[string]bool{}
	for _, a := range body.Catalog.Actions {
		if isSales(a.Group) {
			sales[a.ID] = true
		}
	}
	if len(sales) < 10 {
		p.t.Fatalf("GET /v1/actions: want the demo's sales actions, got %v", sales)
	}
	return sales
}

// logLines collects a process's output lines (the last maxLogLines) and
// reports the addresses of its "serving" line.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	serving chan [2]string
	found   bool
}

const maxLogLines = 400

func newLogLines() *logLines { return &logLines{serving: make(chan [2]string, 1)} }

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if len(l.lines) == maxLogLines {
			l.lines = slices.Delete(l.lines, 0, maxLogLines/2)
		}
		l.lines = append(l.lines, line)
		var rec struct{ Msg, HTTP, Admin string }
		if !l.found && json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
			l.found = true
			l.serving <- [2]string{rec.HTTP, rec.Admin}
		}
	}
	return len(b), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n") + string(l.partial)
}

// contains reports whether a line contains s.
func (l *logLines) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// runNBA runs a one-shot nba command and returns its exit code and output.
func runNBA(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if len(args) > 0 && (args[0] == "batch" || args[0] == "decide" || args[0] == "funnel") {
		args = append(args[:1:1], patientRedis(args[1:])...)
	}
	cmd := exec.Command(nbaBin, args...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start nba %s: %v", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("nba %s: %v", strings.Join(args, " "), err)
		}
	case <-time.After(waitDeadline):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("nba %s did not exit within %v", strings.Join(args, " "), waitDeadline)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// exportDemo writes the demo bundle to a new directory and returns it.
func exportDemo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	if code, _, stderr := runNBA(t, "demo", "export", dir); code != 0 {
		t.Fatalf("nba demo export: exit %d: %s", code, stderr)
	}
	return dir
}

// writeAtomically replaces a file the way a deployment should: write beside
// it, then rename over it.
func writeAtomically(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestFlow walks one demo customer through decide, feedback, events and the
// customer view against a real process: a ticket pins service recovery and
// silences sales; an abandoned cart locks the customer into its journey
// until a purchase ends it.
func TestFlow(t *testing.T) {
	p := startServe(t, "-state", t.TempDir())
	const c = "c00042"
	sales := p.salesActions()
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := p.call("GET", path, ""); r.status != http.StatusOK {
			t.Errorf("GET %s: %v", path, r)
		}
	}
	if code, stdout, stderr := runNBA(t, "healthcheck", "-addr", p.addr); code != 0 {
		t.Errorf("nba healthcheck on a serving process: exit %d: %s%s", code, stdout, stderr)
	}

	first := p.decide(`{"customer_id":"` + c + `","channel":"web","limit":3}`)
	if first.Control || len(first.Actions) == 0 {
		t.Fatalf("first decision for %s: want actions outside the control group, got %+v", c, first)
	}
	if first.CustomerID != c || first.Channel != "web" || first.DecisionID == "" ||
		first.Versions.Bundle == "" || first.Versions.Catalog == "" || first.Versions.Model == "" || first.Versions.Snapshot == "" {
		t.Fatalf("first decision: ids or versions missing: %+v", first)
	}
	for _, a := range first.Actions {
		if !json.Valid(a.Treatment) || len(a.Treatment) < 2 || a.Treatment[0] != '{' {
			t.Errorf("action %s: treatment %q is not a JSON object", a.ID, a.Treatment)
		}
	}
	shown := first.Actions[0].ID
	if n := p.metric(`nba_decisions_total{action="` + shown + `",channel="web"}`); n != 1 {
		t.Errorf("nba_decisions_total for %s on web: %v, want 1", shown, n)
	}
	for _, outcome := range []string{"impression", "click"} {
		body := p.ok("/v1/feedback", fmt.Sprintf(`{"decision_id":%q,"customer_id":%q,"action_id":%q,"channel":"web","outcome":%q}`,
			first.DecisionID, c, shown, outcome))
		if string(bytes.TrimSpace(body)) != `{"ok":true}` {
			t.Fatalf("feedback %s: got %s", outcome, body)
		}
	}

	p.ok("/v1/events", `{"customer_id":"`+c+`","type":"ticket_opened"}`)
	d := p.decide(`{"customer_id":"` + c + `","channel":"web","limit":3,"explain":true}`)
	if ids := d.ids(); len(ids) == 0 || ids[0] != "service_recovery" {
		t.Fatalf("open ticket: want service_recovery first, got %v", ids)
	}
	for _, a := range d.Actions {
		if sales[a.ID] {
			t.Errorf("open ticket: sales action %s offered (actions %v)", a.ID, d.ids())
		}
	}
	if len(d.Candidates) == 0 {
		t.Error("explain: no candidates")
	}
	for _, cand := range d.Candidates {
		if sales[cand.ID] && cand.Selected {
			t.Errorf("open ticket: candidate %s selected", cand.ID)
		}
		if !cand.Selected && cand.Reason == "" {
			t.Errorf("explain: candidate %s not selected and no reason given", cand.ID)
		}
		if sales[cand.ID] && cand.Stage == "suitability" && cand.Reason != "failed suitable: !profile.open_ticket" {
			t.Errorf("explain: candidate %s at %s says %q", cand.ID, cand.Stage, cand.Reason)
		}
	}
	view := p.customer(c)
	if view.Profile["open_ticket"] != true {
		t.Errorf("customer view: want open_ticket true, profile %v", view.Profile)
	}
	for _, outcome := range []string{"impression", "click"} {
		if !view.hasContact(shown, "web", outcome, 0) {
			t.Errorf("customer view: no %s of %s on web in history %+v", outcome, shown, view.History)
		}
	}
	if !view.InSnapshot || !view.Live {
		t.Errorf("customer view: in_snapshot %v, has_live_state %v for a demo customer with events; want both", view.InSnapshot, view.Live)
	}

	// The ticket is closed, the cart abandoned: the locked journey holds
	// the customer on its first step, whatever else would rank higher.
	p.ok("/v1/events", `{"customer_id":"`+c+`","type":"ticket_closed"}`)
	p.ok("/v1/events", `{"customer_id":"`+c+`","type":"cart_abandoned","attrs":{"value":120}}`)
	d = p.decide(`{"customer_id":"` + c + `","channel":"web","limit":3}`)
	if ids := d.ids(); !slices.Equal(ids, []string{"cart_reminder_1"}) {
		t.Fatalf("abandoned cart: want only cart_reminder_1 (locked journey), got %v", ids)
	}
	if got := d.Actions[0].Value; math.Abs(got-36) > 1e-9 {
		t.Errorf("cart_reminder_1 value: got %v, want 30%% of the cart, 36", got)
	}
	// Showing the first step advances the journey (persisted in the
	// background); the second step waits a day, and the lock holds
	// everything else meanwhile.
	eventually(t, "the journey advanced to its first step", func() bool {
		_, step, _ := p.customer(c).journey("abandoned_cart")
		return step == 1
	})
	view = p.customer(c)
	if st, _, ok := view.journey("abandoned_cart"); !ok || st != "active" {
		t.Errorf("customer view: want abandoned_cart active, journeys %+v", view.Journeys)
	}
	if view.Profile["cart_value"] != 120.0 {
		t.Errorf("customer view: cart_value %v, want 120", view.Profile["cart_value"])
	}
	if d := p.decide(`{"customer_id":"` + c + `","channel":"web","limit":3}`); len(d.Actions) != 0 {
		t.Errorf("locked journey, next step not due: want nothing shown, got %v", d.ids())
	}

	p.ok("/v1/events", `{"customer_id":"`+c+`","type":"purchase"}`)
	d = p.decide(`{"customer_id":"` + c + `","channel":"web","limit":3}`)
	for _, a := range d.Actions {
		if strings.HasPrefix(a.ID, "cart_reminder") {
			t.Errorf("after purchase: %s still offered (%v)", a.ID, d.ids())
		}
	}
	if len(d.Actions) < 2 {
		t.Errorf("after purchase: want the journey's lock lifted (several actions), got %v", d.ids())
	}
	view = p.customer(c)
	if st, _, ok := view.journey("abandoned_cart"); !ok || st != "exited" {
		t.Errorf("customer view: want abandoned_cart exited after a purchase, journeys %+v", view.Journeys)
	}
	if view.Profile["cart_value"] != 0.0 || view.Profile["orders_since_snapshot"] != 1.0 {
		t.Errorf("customer view after purchase: cart_value %v orders_since_snapshot %v, want 0 and 1",
			view.Profile["cart_value"], view.Profile["orders_since_snapshot"])
	}

	// A control-group customer is shown nothing; the answer says what was
	// withheld.
	found := false
	for i := 1; i <= 400 && !found; i++ {
		d := p.decide(fmt.Sprintf(`{"customer_id":"c%05d","channel":"web","limit":2,"dry_run":true}`, i))
		if !d.Control {
			continue
		}
		found = true
		if len(d.Actions) != 0 || len(d.Withheld) == 0 {
			t.Errorf("control customer c%05d: actions %v, %d withheld: want none shown, the withheld listed", i, d.ids(), len(d.Withheld))
		}
	}
	if !found {
		t.Error("no control-group customer among the first 400 of the demo (5% holdout)")
	}
}

// TestBadRequests sends requests a caller should not send and checks each
// is answered with its status and stable code, and that the process keeps
// serving after each.
func TestBadRequests(t *testing.T) {
	p := startServe(t, "-state", t.TempDir())
	check := func(t *testing.T, p *proc) {
		t.Helper()
		d := p.with(t).decide(`{"customer_id":"c00042","channel":"web","dry_run":true}`)
		if len(d.Actions) == 0 {
			t.Fatalf("after a bad request: decision without actions %+v", d)
		}
	}
	stillServing := func(t *testing.T) { t.Helper(); check(t, p) }
	batchOf := func(n int) string {
		return `{"requests":[` + strings.TrimSuffix(strings.Repeat(`{"customer_id":"c00042","channel":"web"},`, n), ",") + `]}`
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		msg                      string // the message contains it
	}{
		{"malformed json", "POST", "/v1/decide", `{"customer_id":"c00042",`, 400, "malformed_json", ""},
		{"empty body", "POST", "/v1/decide", ``, 400, "malformed_json", ""},
		{"invalid utf-8", "POST", "/v1/decide", "{\"customer_id\":\"\xff\xfe\",\"channel\":\"web\"}", 400, "malformed_json", "UTF-8"},
		{"not an object", "POST", "/v1/decide", `[]`, 400, "invalid_request", ""},
		{"channel not a string", "POST", "/v1/decide", `{"customer_id":"c00042","channel":1}`, 400, "invalid_request", "channel"},
		{"limit not a number", "POST", "/v1/decide", `{"customer_id":"c00042","channel":"web","limit":"3"}`, 400, "invalid_request", "limit"},
		{"limit too large", "POST", "/v1/decide", `{"customer_id":"c00042","channel":"web","limit":1000}`, 400, "invalid_request", "limit"},
		{"context value an array", "POST", "/v1/decide", `{"customer_id":"c00042","channel":"web","context":{"page":[1]}}`, 400, "invalid_request", "context.page"},
		{"missing customer id", "POST", "/v1/decide", `{"channel":"web"}`, 400, "invalid_request", "customer_id"},
		{"unknown channel", "POST", "/v1/decide", `{"customer_id":"c00042","channel":"fax"}`, 400, "invalid_request", `"fax"`},
		{"unknown outcome", "POST", "/v1/feedback", `{"customer_id":"c00042","action_id":"xs_shoes","outcome":"meh"}`, 400, "invalid_request", `"meh"`},
		{"unknown action", "POST", "/v1/feedback", `{"customer_id":"c00042","action_id":"no_such_action","outcome":"click"}`, 400, "invalid_request", `"no_such_action"`},
		{"feedback on an unknown channel", "POST", "/v1/feedback", `{"customer_id":"c00042","action_id":"xs_shoes","channel":"fax","outcome":"click"}`, 400, "invalid_request", `"fax"`},
		{"feedback value out of range", "POST", "/v1/feedback", `{"customer_id":"c00042","action_id":"xs_shoes","outcome":"convert","value":1e999}`, 400, "invalid_request", ""},
		{"feedback ts before 1970", "POST", "/v1/feedback", `{"customer_id":"c00042","action_id":"xs_shoes","outcome":"click","ts":"1960-01-01T00:00:00Z"}`, 400, "invalid_request", "accepted range"},
		// Regression: year 1000 wrapped to 2169 in the state log.
		{"feedback ts in year 1000", "POST", "/v1/feedback", `{"customer_id":"c00042","action_id":"xs_shoes","outcome":"click","ts":"1000-01-01T00:00:00Z"}`, 400, "invalid_request", "2000-01-01T00:00:00Z to "},
		{"event ts after 2200", "POST", "/v1/events", `{"customer_id":"c00042","type":"purchase","ts":"2300-01-01T00:00:00Z"}`, 400, "invalid_request", "accepted range"},
		{"event attribute of the wrong type", "POST", "/v1/events", `{"customer_id":"c00042","type":"cart_abandoned","attrs":{"value":"abc"}}`, 400, "invalid_request", "cart_value"},
		{"feedback bad ts", "POST", "/v1/feedback", `{"customer_id":"c00042","action_id":"xs_shoes","outcome":"click","ts":"yesterday"}`, 400, "invalid_request", "ts"},
		{"event without type", "POST", "/v1/events", `{"customer_id":"c00042"}`, 400, "invalid_request", "type"},
		{"batch not a list", "POST", "/v1/decide/batch", `{"requests":{}}`, 400, "", ""},
		{"batch over 1000 requests", "POST", "/v1/decide/batch", batchOf(1001), 400, "invalid_request", "1000"},
		{"wrong method", "GET", "/v1/decide", ``, 405, "method_not_allowed", ""},
		{"wrong method on a GET route", "DELETE", "/v1/actions", ``, 405, "method_not_allowed", ""},
		{"unknown route", "POST", "/v1/nope", `{}`, 404, "not_found", ""},
		{"unknown customer", "GET", "/v1/customers/nobody-at-all", ``, 404, "not_found", "nobody-at-all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := p.with(t).call(tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("got %.300s, want status %d", r, tc.status)
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("error body %.300s: want {\"error\":{\"code\",\"message\"}}", r.body)
			}
			if tc.code != "" && e.Error.Code != tc.code {
				t.Errorf("code %q, want %q (message %q)", e.Error.Code, tc.code, e.Error.Message)
			}
			if !strings.Contains(e.Error.Message, tc.msg) {
				t.Errorf("message %q does not name %s", e.Error.Message, tc.msg)
			}
			stillServing(t)
		})
	}

	// Too large: sent on a raw connection, so that an answer given before
	// the whole request is read cannot race with a client still writing
	// (the server closes the connection, and the reset may hide the answer
	// from an HTTP client). Over the batch limit (4 MiB) the headers alone
	// get the answer; under it the server reads the body before checking
	// the route's limit, so it is sent whole.
	big := `{"customer_id":"` + strings.Repeat("x", 1<<20) + `","channel":"web"}`
	tooLarge := []struct {
		name, request string
		status        int
		code          string
	}{
		{"1 MB decide body", fmt.Sprintf("POST /v1/decide HTTP/1.1\r\nHost: e2e\r\nContent-Length: %d\r\n\r\n%s", len(big), big), 413, "payload_too_large"},
		{"1 MB feedback body", fmt.Sprintf("POST /v1/feedback HTTP/1.1\r\nHost: e2e\r\nContent-Length: %d\r\n\r\n%s", len(big), big), 413, "payload_too_large"},
		{"5 MB batch body", "POST /v1/decide/batch HTTP/1.1\r\nHost: e2e\r\nContent-Length: 5242880\r\n\r\n", 413, "payload_too_large"},
		{"10 KB of headers", "GET /healthz HTTP/1.1\r\nHost: e2e\r\nX-Padding: " + strings.Repeat("a", 10_000) + "\r\n\r\n", 431, "header_too_large"},
	}
	for _, tc := range tooLarge {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawExchange(t, p.addr, tc.request)
			if status != tc.status || !strings.Contains(string(body), `"code":"`+tc.code+`"`) {
				t.Errorf("got %d %s, want %d %s", status, body, tc.status, tc.code)
			}
			stillServing(t)
		})
	}

	t.Run("batch element refused in place", func(t *testing.T) {
		body := p.with(t).ok("/v1/decide/batch", `{"requests":[{"customer_id":"c00042","channel":"web"},{"customer_id":"c00042","channel":"fax"}]}`)
		var b struct {
			Decisions []json.RawMessage `json:"decisions"`
		}
		if err := json.Unmarshal(body, &b); err != nil || len(b.Decisions) != 2 {
			t.Fatalf("batch: %s (%v)", body, err)
		}
		if !bytes.Contains(b.Decisions[0], []byte(`"actions"`)) || !bytes.Contains(b.Decisions[1], []byte(`"invalid_request"`)) {
			t.Errorf("batch: want a decision then an invalid_request error, got %s", body)
		}
		body = p.with(t).ok("/v1/decide/batch", batchOf(1000))
		if err := json.Unmarshal(body, &b); err != nil || len(b.Decisions) != 1000 {
			t.Errorf("batch of the largest size: %d decisions (%v), want 1000", len(b.Decisions), err)
		}
	})

	t.Run("admin reload without token", func(t *testing.T) {
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}} {
			r, err := p.try("POST", p.admin+"/admin/reload", "", hdr...)
			if err != nil || r.status != 401 || !strings.Contains(string(r.body), `"unauthorized"`) {
				t.Errorf("reload with %v: got %v, %v; want 401 unauthorized", hdr, r, err)
			}
		}
		stillServing(t)
	})

	// A client that sends part of a request and stalls is answered 408 and
	// disconnected once -http.readTimeout (1s, on a process of its own)
	// passes; the deadline below only stops a test that would hang.
	slow := startServe(t, "-state", t.TempDir(), "-http.readTimeout", "1s")
	// Its checks go over fresh connections: a kept-alive one left idle by
	// another subtest during a stall may be timed out by the server just
	// as the check reuses it, which is not what is being tested here.
	freshSlow := *slow
	freshSlow.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	stalls := []struct{ name, data string }{
		{"connects and sends nothing", ""},
		{"headers then stalls", "POST /v1/decide HTTP/1.1\r\nHost: x\r\n"},
		{"body then stalls", "POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"customer_id\":"},
	}
	t.Run("slow clients", func(t *testing.T) {
		for _, tc := range stalls {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				conn, err := net.Dial("tcp", slow.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := io.WriteString(conn, tc.data); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(waitDeadline))
				got, err := io.ReadAll(conn) // returns once the server closes
				if err != nil {
					t.Fatalf("the server did not close the stalled connection: %v (read %q)", err, got)
				}
				if len(got) > 0 && (!bytes.HasPrefix(got, []byte("HTTP/1.1 408")) || !bytes.Contains(got, []byte(`"timeout"`))) {
					t.Errorf("stalled client: got %q, want 408 timeout or a closed connection", got)
				}
				check(t, &freshSlow)
			})
		}
	})

	if n := p.metric("nba_http_handler_panics_total") + p.metric("nba_http_decode_panics_total"); n != 0 {
		t.Errorf("%v panics recovered while serving bad requests", n)
	}
}

// acked is one write the process acknowledged with 200.
type acked struct {
	customer string
	value    float64 // feedback value or cart value: unique per write
	event    bool    // a cart_abandoned event, else a convert feedback
}

// TestKill9Durability sends feedback and events from 8 concurrent clients,
// SIGKILLs the process after a random number of acknowledgements, restarts
// it on the same state, and checks every write acknowledged before, in this
// and earlier rounds, is there. Some rounds checkpoint often so that kills
// also land during checkpoints.
func TestKill9Durability(t *testing.T) {
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	stateDir := t.TempDir()
	var all []acked
	var next atomic.Int64 // the next customer and value
	for round := 0; round < rounds; round++ {
		args := []string{"-state", stateDir, "-decisionlog=" + strconv.FormatBool(round%2 == 0)}
		if round%2 == 1 {
			args = append(args, "-state.checkpointInterval", "50ms")
		}
		p := startServe(t, args...)
		if round > 0 {
			verifyAcked(t, p, all)
		}
		killAfter := 20 + rng.IntN(300)
		const maxPerRound = 1500
		w := startWriters(p, &next, int64(round+1)*maxPerRound)
		// Kill once killAfter writes are acknowledged: a moment that
		// depends on the seed, not on the clock. In checkpointing rounds,
		// also after a checkpoint, so that replay starts from one.
		eventually(t, "acknowledgements before the kill", func() bool { return w.acked() >= killAfter })
		if round%2 == 1 {
			eventually(t, "a checkpoint", func() bool { return p.checkpoints() > 0 })
		}
		p.kill()
		got := w.wait()
		t.Logf("round %d: killed after %d acknowledged writes", round, len(got))
		all = append(all, got...)
		// Writes sent but not answered before the kill may or may not be
		// there; the customers are not reused, so they do not matter.
		next.Store(int64(round+1) * maxPerRound)
	}
	p := startServe(t, "-state", stateDir)
	verifyAcked(t, p, all)
	if p.logs.contains(`"level":"ERROR"`) {
		t.Errorf("errors logged on restart:\n%s", p.logs)
	}
}

// writers are 8 clients posting feedback and events as fast as they are
// answered, each write for its own customer with its own value, until the
// process stops answering or the values reach a limit.
type writers struct {
	t    *testing.T
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  []acked  // answered 200
	bad  []string // answered otherwise
	stop chan struct{}
}

// startWriters starts the writers on p; next is the last value used, and
// values stay at most limit.
func startWriters(p *proc, next *atomic.Int64, limit int64) *writers {
	w := &writers{t: p.t, stop: make(chan struct{})}
	for range 8 {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				n := next.Add(1)
				if n > limit {
					return
				}
				a := acked{customer: fmt.Sprintf("c%05d", 1+(n-1)%10000), value: float64(n), event: n%4 == 0}
				path, body := "/v1/feedback", fmt.Sprintf(`{"customer_id":%q,"action_id":"xs_shoes","channel":"web","outcome":"convert","value":%d}`, a.customer, n)
				if a.event {
					path, body = "/v1/events", fmt.Sprintf(`{"customer_id":%q,"type":"cart_abandoned","attrs":{"value":%d}}`, a.customer, n)
				}
				r, err := p.try("POST", p.base+path, body)
				if err != nil {
					return // the process is gone or going
				}
				w.mu.Lock()
				if r.status == http.StatusOK {
					w.got = append(w.got, a)
				} else {
					w.bad = append(w.bad, path+" "+r.String())
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// acked returns how many writes were acknowledged so far.
func (w *writers) acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.got)
}

// wait stops the writers, waits for them, fails the test if any write was
// refused, and returns the acknowledged writes.
func (w *writers) wait() []acked {
	w.t.Helper()
	close(w.stop)
	w.wg.Wait()
	if len(w.bad) > 0 {
		w.t.Fatalf("%d writes refused, first: %s", len(w.bad), w.bad[0])
	}
	return w.got
}

// verifyAcked checks every acknowledged write is in the customer views.
func verifyAcked(t *testing.T, p *proc, all []acked) {
	t.Helper()
	var missing atomic.Int64
	var wg sync.WaitGroup
	work := make(chan acked)
	var first sync.Once
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				r, err := p.try("GET", p.base+"/v1/customers/"+a.customer, "")
				ok := err == nil && r.status == http.StatusOK
				if ok {
					var v customerView
					ok = json.Unmarshal(r.body, &v) == nil
					if a.event {
						st, _, in := v.journey("abandoned_cart")
						ok = ok && v.Profile["cart_value"] == a.value && in && st == "active"
					} else {
						ok = ok && v.hasContact("xs_shoes", "web", "convert", a.value)
					}
				}
				if !ok {
					missing.Add(1)
					first.Do(func() { t.Errorf("acknowledged write %+v lost: customer view %v (%v)", a, r, err) })
				}
			}
		}()
	}
	for _, a := range all {
		work <- a
	}
	close(work)
	wg.Wait()
	if n := missing.Load(); n > 0 {
		t.Fatalf("%d of %d acknowledged writes lost; the process log:\n%s", n, len(all), p.logs)
	}
}

// TestSIGTERM checks a graceful stop under load: the listener closes, a
// request already in flight is still answered, no request is refused, the
// process exits 0, and everything acknowledged is there after a restart.
func TestSIGTERM(t *testing.T) {
	stateDir := t.TempDir()
	p := startServe(t, "-state", stateDir, "-http.readTimeout", "30s", "-shutdown.timeout", "20s")
	const c = "c00077"
	for i := 1; i <= 5; i++ {
		p.ok("/v1/feedback", fmt.Sprintf(`{"customer_id":%q,"action_id":"xs_books","channel":"email","outcome":"impression","value":%d}`, c, i))
	}
	p.ok("/v1/events", `{"customer_id":"`+c+`","type":"ticket_opened"}`)
	body := fmt.Sprintf(`{"customer_id":%q,"action_id":"xs_books","channel":"email","outcome":"click","value":99}`, c)
	// A journey step given by a decision is persisted in the background:
	// a graceful stop must not lose it.
	const j = "c00088"
	p.ok("/v1/events", `{"customer_id":"`+j+`","type":"cart_abandoned","attrs":{"value":10}}`)
	if d := p.decide(`{"customer_id":"` + j + `","channel":"web"}`); !slices.Equal(d.ids(), []string{"cart_reminder_1"}) {
		t.Fatalf("abandoned cart: want cart_reminder_1, got %v", d.ids())
	}

	// Clients writing concurrently: every write answered must be answered
	// 200 and be there after the restart.
	var next atomic.Int64
	next.Store(100)
	w := startWriters(p, &next, 8000)
	eventually(t, "concurrent writes acknowledged", func() bool { return w.acked() >= 50 })

	// A request in flight: its headers are read (the server answered
	// 100 Continue) and its body is not sent yet.
	conn, br := expectContinue(t, p.addr, "/v1/feedback", len(body))
	defer conn.Close()
	p.signal(syscall.SIGTERM)
	eventually(t, "the listener closed after SIGTERM", func() bool {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// Hold the request a while longer: a process that does not wait for
	// it exits meanwhile. (A correct one waits up to -shutdown.timeout,
	// far longer, so this cannot fail it.)
	if code, exited := p.waitExit(500 * time.Millisecond); exited {
		t.Fatalf("the process exited (code %d) with a request in flight; its log:\n%s", code, p.logs)
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatalf("cannot finish the in-flight request: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight request: no answer after SIGTERM: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(bytes.TrimSpace(answer)) != `{"ok":true}` {
		t.Fatalf("in-flight request: got %d %s", resp.StatusCode, answer)
	}
	code, ok := p.waitExit(waitDeadline)
	if !ok {
		t.Fatalf("the process did not exit after SIGTERM; its log:\n%s", p.logs)
	}
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; its log:\n%s", code, p.logs)
	}

	written := w.wait()
	t.Logf("%d concurrent writes acknowledged", len(written))

	p = startServe(t, "-state", stateDir)
	verifyAcked(t, p, written)
	v := p.customer(c)
	for i := 1; i <= 5; i++ {
		if !v.hasContact("xs_books", "email", "impression", float64(i)) {
			t.Errorf("impression %d lost over SIGTERM: history %+v", i, v.History)
		}
	}
	if !v.hasContact("xs_books", "email", "click", 99) {
		t.Errorf("the in-flight click lost over SIGTERM: history %+v", v.History)
	}
	if v.Profile["open_ticket"] != true {
		t.Errorf("ticket_opened lost over SIGTERM: profile %v", v.Profile)
	}
	if st, step, _ := p.customer(j).journey("abandoned_cart"); st != "active" || step != 1 {
		t.Errorf("journey step given before SIGTERM lost: abandoned_cart %q step %d, want active step 1", st, step)
	}
}

// rawExchange sends request as is on a new connection and returns the
// status and body of the answer.
func rawExchange(t *testing.T, addr, request string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitDeadline))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("cannot send the request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("cannot read the answer: %v", err)
	}
	return resp.StatusCode, body
}

// expectContinue opens a connection and sends the headers of a POST with
// "Expect: 100-continue", and returns once the server answered 100
// Continue: the request is then in flight, its body not sent yet.
func expectContinue(t *testing.T, addr, path string, bodyLen int) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(waitDeadline))
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", path, bodyLen); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		t.Fatalf("want 100 Continue, got %q, %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the 100 Continue answer: %v", err)
		}
		if line == "\r\n" {
			return conn, br
		}
	}
}

// Regression: the process caught SIGHUP only some time after logging
// "serving"; a SIGHUP before (during the bundle load, or sent as soon as the
// process announced itself) ended it, SIGHUP's default action. Now a
// SIGHUP from the moment the load starts is a reload.
func TestSIGHUPDuringStart(t *testing.T) {
	p := launch(t, "-state", t.TempDir())
	eventually(t, "the bundle load started", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("nba serve exited before loading; its log:\n%s", p.logs)
		default:
		}
		return p.logs.contains(`"msg":"loading bundle"`)
	})
	p.signal(syscall.SIGHUP)
	p.waitServing()
	p.signal(syscall.SIGHUP) // and right after "serving"
	eventually(t, "the reloads asked for during the start", func() bool { return p.metric("nba_reloads_total") >= 1 })
	if d := p.decide(`{"customer_id":"c00042","channel":"web"}`); len(d.Actions) == 0 {
		t.Errorf("after SIGHUPs at start: %+v", d)
	}
}

// TestSIGTERMStalledClient checks a client that never finishes its request
// cannot hold the process past -shutdown.timeout.
func TestSIGTERMStalledClient(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the shutdown timeout")
	}
	stateDir := t.TempDir()
	p := startServe(t, "-state", stateDir, "-http.readTimeout", "60s", "-shutdown.timeout", "500ms")
	p.ok("/v1/feedback", `{"customer_id":"c00078","action_id":"xs_books","channel":"email","outcome":"impression","value":7}`)
	conn, _ := expectContinue(t, p.addr, "/v1/feedback", 1000)
	defer conn.Close()
	p.signal(syscall.SIGTERM)
	if _, ok := p.waitExit(waitDeadline); !ok {
		t.Fatalf("a stalled client held the process past -shutdown.timeout; its log:\n%s", p.logs)
	}
	p = startServe(t, "-state", stateDir)
	if v := p.customer("c00078"); !v.hasContact("xs_books", "email", "impression", 7) {
		t.Errorf("feedback lost over a timed-out shutdown: history %+v", v.History)
	}
}

// TestReloadUnderLoad reloads the bundle in every way while 8 clients post
// decisions, and checks no request fails: SIGHUP, POST /admin/reload, a
// changed catalog file picked up by -reload.interval, a broken catalog that
// is refused while the last good bundle keeps serving, and a repaired one.
func TestReloadUnderLoad(t *testing.T) {
	dir := exportDemo(t)
	catalogPath := filepath.Join(dir, "catalog.yaml")
	good, err := os.ReadFile(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	p := startServe(t, "-bundle", dir, "-state", t.TempDir(), "-reload.interval", "200ms")

	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		requests atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	channels := []string{"web", "email", "app", "push", "agent"}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := requests.Add(1)
				body := fmt.Sprintf(`{"customer_id":"c%05d","channel":%q,"limit":2}`, 1+n%10000, channels[int(n)%len(channels)])
				path := "/v1/decide"
				if i%10 == 9 {
					path, body = "/v1/decide/batch", `{"requests":[`+body+`,`+body+`]}`
				}
				r, err := p.try("POST", p.base+path, body)
				if err != nil || r.status != http.StatusOK {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s %s: %v %v", path, body, r, err))
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	defer func() { // also on t.Fatal: stop the load before the process dies
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	reloads := p.metric("nba_reloads_total")
	t.Run("SIGHUP", func(t *testing.T) {
		p := p.with(t)
		p.signal(syscall.SIGHUP)
		eventually(t, "a reload counted after SIGHUP", func() bool { return p.metric("nba_reloads_total") > reloads })
		reloads = p.metric("nba_reloads_total")
	})
	t.Run("admin reload", func(t *testing.T) {
		p := p.with(t)
		r, err := p.try("POST", p.admin+"/admin/reload", "", "Authorization", "Bearer "+adminToken)
		if err != nil || r.status != 200 {
			t.Fatalf("POST /admin/reload: %v %v", r, err)
		}
		if got := p.metric("nba_reloads_total"); got <= reloads {
			t.Errorf("nba_reloads_total %v after an acknowledged reload, was %v", got, reloads)
		}
	})

	// The value an action is decided with, on sms: a channel the demo does
	// not explore on, so the ranking is deterministic.
	valueOf := func(t *testing.T, id string) (float64, bool) {
		d := p.with(t).decide(`{"customer_id":"c00042","channel":"sms","limit":3,"dry_run":true}`)
		a, ok := d.action(id)
		return a.Value, ok
	}
	if v, ok := valueOf(t, "wb_20_off"); !ok || v != 30 {
		t.Fatalf("before the edit: want wb_20_off at value 30 for c00042, got %v %v", v, ok)
	}
	withValue := func(t *testing.T, v int) []byte {
		old := []byte("id: wb_20_off, name: \"Win-back: 20% off\", group: win_back, channels: [email, sms, push, web], value: 30,")
		if !bytes.Contains(good, old) {
			t.Fatalf("the demo catalog no longer has %q", old)
		}
		return bytes.Replace(good, old, bytes.Replace(old, []byte("value: 30"), []byte("value: "+strconv.Itoa(v)), 1), 1)
	}
	t.Run("file change", func(t *testing.T) {
		writeAtomically(t, catalogPath, withValue(t, 777))
		eventually(t, "the new value of wb_20_off served", func() bool { v, _ := valueOf(t, "wb_20_off"); return v == 777 })
	})
	// Bundles that must be refused, each while the last good one (wb_20_off
	// at 777) keeps serving; each is then put back.
	read := func(t *testing.T, name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	snap, manifest := read(t, "customers.csv.zst"), read(t, "bundle.yaml")
	refused := []struct {
		name, file string
		data       []byte
		wantErr    []string // the error in /admin/status contains each
	}{
		{"unknown group in the catalog", "catalog.yaml",
			bytes.Replace(withValue(t, 555), []byte("group: credit\n"), []byte("group: no_such_group\n"), 1), []string{"catalog.yaml", "no_such_group"}},
		{"truncated snapshot", "customers.csv.zst", snap[:len(snap)/2], []string{"customers.csv.zst"}},
		{"snapshot with half the customers", "customers.csv.zst", halfSnapshot(t, snap), []string{"customers.csv.zst", "5000"}},
		{"changed profile mappings", "bundle.yaml",
			bytes.Replace(manifest, []byte("    orders_since_snapshot: number\n"), []byte("    orders_since_snapshot: number\n    vip: bool\n"), 1), []string{"restart"}},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.name, func(t *testing.T) {
			p := p.with(t)
			path := filepath.Join(dir, tc.file)
			good := read(t, tc.file)
			if bytes.Equal(good, tc.data) {
				t.Fatal("the edit changed nothing")
			}
			failed := p.metric("nba_reload_failures_total")
			writeAtomically(t, path, tc.data)
			eventually(t, "a reload failure counted", func() bool { return p.metric("nba_reload_failures_total") > failed })
			if v, _ := valueOf(t, "wb_20_off"); v != 777 {
				t.Errorf("after a failed reload: wb_20_off value %v, want 777 from the last good bundle", v)
			}
			if n := p.metric("nba_snapshot_customers"); n != 10000 {
				t.Errorf("after a failed reload: %v customers served, want 10000", n)
			}
			r, err := p.try("GET", p.admin+"/admin/status", "")
			if err != nil || r.status != 200 {
				t.Fatalf("GET /admin/status: %v %v", r, err)
			}
			var st struct {
				LastReloadError struct{ Error string } `json:"last_reload_error"`
			}
			if err := json.Unmarshal(r.body, &st); err != nil {
				t.Fatalf("GET /admin/status: %v", err)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(st.LastReloadError.Error, want) {
					t.Errorf("/admin/status: the last reload error %q does not name %q", st.LastReloadError.Error, want)
				}
			}
			r, err = p.try("POST", p.admin+"/admin/reload", "", "Authorization", "Bearer "+adminToken)
			if err != nil || r.status != 500 || !strings.Contains(string(r.body), `"reload_failed"`) {
				t.Errorf("POST /admin/reload of a refused bundle: got %v %v, want 500 reload_failed", r, err)
			}
			if r := p.call("GET", "/readyz", ""); r.status != 200 {
				t.Errorf("/readyz after a failed reload: %v", r)
			}
			reloads := p.metric("nba_reloads_total")
			writeAtomically(t, path, good)
			eventually(t, "a reload after the file is put back", func() bool { return p.metric("nba_reloads_total") > reloads })
		})
	}
	t.Run("another change", func(t *testing.T) {
		writeAtomically(t, catalogPath, withValue(t, 555))
		eventually(t, "the changed catalog served", func() bool { v, _ := valueOf(t, "wb_20_off"); return v == 555 })
	})

	// Keep the load on for at least 2s so reloads overlap with it.
	if rest := 2*time.Second - time.Since(start); rest > 0 {
		time.Sleep(rest)
	}
	close(stop)
	wg.Wait()
	n := requests.Load()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %s", len(failures), n, failures[0])
	}
	if n < 100 {
		t.Errorf("only %d requests during the reloads", n)
	}
	t.Logf("%d requests, none failed", n)
}

// halfSnapshot returns the demo snapshot (zstd CSV) with the first half of
// its customers only.
func halfSnapshot(t *testing.T, snap []byte) []byte {
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
	lines := strings.SplitAfter(string(csv), "\n")
	if len(lines) < 10001 {
		t.Fatalf("the demo snapshot has %d lines, want a header and 10000 customers", len(lines))
	}
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll([]byte(strings.Join(lines[:1+5000], "")), nil)
}

// TestCorruptStateStopsStart checks a damaged record in the middle of the
// state log stops start-up with its file and offset, rather than being
// skipped or taken for a torn tail (which would drop the records after it).
func TestCorruptStateStopsStart(t *testing.T) {
	stateDir := t.TempDir()
	p := startServe(t, "-state", stateDir, "-decisionlog=false")
	for i := 1; i <= 20; i++ {
		p.ok("/v1/feedback", fmt.Sprintf(`{"customer_id":"c%05d","action_id":"xs_shoes","channel":"web","outcome":"click","value":%d}`, i, i))
	}
	p.signal(syscall.SIGTERM)
	if code, ok := p.waitExit(waitDeadline); !ok || code != 0 {
		t.Fatalf("SIGTERM: exited %v with %d; its log:\n%s", ok, code, p.logs)
	}
	segs, err := filepath.Glob(filepath.Join(stateDir, "state", "wal-*.seg"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("want one log segment in %s, got %v (%v)", stateDir, segs, err)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x80
	if err := os.WriteFile(segs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runNBA(t, "serve", "-state", stateDir, "-http.addr", "127.0.0.1:0", "-admin.addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, filepath.Base(segs[0])) || !strings.Contains(stderr, "offset") {
		t.Errorf("start on a corrupted log: exit %d, want 1 and the segment and offset named; output:\n%s%s", code, stdout, stderr)
	}
}

// TestServeRefusesToStart checks "nba serve" exits 1 with a message naming
// the problem when it cannot serve, and that a second process on the state
// directory of a running one is refused while the first keeps serving.
func TestServeRefusesToStart(t *testing.T) {
	stateDir := t.TempDir()
	running := startServe(t, "-state", stateDir)
	broken := exportDemo(t)
	cat, err := os.ReadFile(filepath.Join(broken, "catalog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cat = bytes.Replace(cat, []byte("group: credit\n"), []byte("group: no_such_group\n"), 1)
	if err := os.WriteFile(filepath.Join(broken, "catalog.yaml"), cat, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string // in the output
	}{
		{"state directory in use", []string{"-state", stateDir}, "in use"},
		{"http address in use", []string{"-state", t.TempDir(), "-http.addr", running.addr}, "-http.addr"},
		{"no such bundle", []string{"-state", t.TempDir(), "-bundle", filepath.Join(t.TempDir(), "nope")}, "not a directory"},
		{"broken bundle", []string{"-state", t.TempDir(), "-bundle", broken}, "no_such_group"},
		{"negative limit", []string{"-state", t.TempDir(), "-http.maxBodyBytes", "-1"}, "MaxBodyBytes"},
		{"bad log level", []string{"-state", t.TempDir(), "-log.level", "loud"}, "-log.level"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "-http.addr", "127.0.0.1:0", "-admin.addr", "127.0.0.1:0"}, tc.args...)
			code, stdout, stderr := runNBA(t, args...)
			if code != 1 || !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("nba %s: exit %d, want 1 and a message naming %q; output:\n%s%s", strings.Join(args, " "), code, tc.want, stdout, stderr)
			}
		})
	}
	if d := running.decide(`{"customer_id":"c00042","channel":"web"}`); len(d.Actions) == 0 {
		t.Errorf("the running process: %+v", d)
	}
}

// TestCommands runs the one-shot commands: validate, decide, batch and
// healthcheck.
func TestCommands(t *testing.T) {
	t.Run("healthcheck without a server", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if code, _, _ := runNBA(t, "healthcheck", "-addr", addr); code != 1 {
			t.Errorf("nba healthcheck on a closed port: exit %d, want 1", code)
		}
	})
	t.Run("validate good bundle", func(t *testing.T) {
		dir := exportDemo(t)
		code, stdout, stderr := runNBA(t, "validate", dir)
		if code != 0 || !strings.Contains(stdout, "ok") {
			t.Errorf("nba validate on the demo: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("validate broken catalog", func(t *testing.T) {
		dir := exportDemo(t)
		path := filepath.Join(dir, "catalog.yaml")
		cat, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		edits := []struct{ old, new string }{
			{`eligible: ["profile.orders_12m >= 2"]`, `eligible: ["profile.orderz_12m >= 2"]`},
			{`group: credit` + "\n", `group: creditz` + "\n"},
			{`value: 30, features: {offer_kind: 1, category: 1`, `value: "profile.nope * 2", features: {offer_kind: 1, category: 1`},
			// A misspelt key used to hide every other problem of the file.
			{"    lever: 1.2\n", "    levr: 1.2\n"},
		}
		for _, e := range edits {
			if !bytes.Contains(cat, []byte(e.old)) {
				t.Fatalf("the demo catalog no longer has %q", e.old)
			}
			cat = bytes.Replace(cat, []byte(e.old), []byte(e.new), 1)
		}
		if err := os.WriteFile(path, cat, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runNBA(t, "validate", dir)
		if code != 1 {
			t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
		}
		// Every problem on its own line, with the file, line and column,
		// the action or group by id and a guess at what was meant.
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^catalog\.yaml:\d+:\d+: group "up_sell": unknown field "levr" \(did you mean "lever"\?\)$`),
			regexp.MustCompile(`(?m)^catalog\.yaml:\d+:\d+: group "\w+": rules\.eligible\[0\]: unknown field "orderz_12m" \(did you mean "orders_12m"\?\)`),
			regexp.MustCompile(`(?m)^catalog\.yaml:\d+:\d+: action "\w+": group: unknown group "creditz" \(did you mean "credit"\?\)$`),
			regexp.MustCompile(`(?m)^catalog\.yaml:\d+:\d+: action "\w+": value: .*nope`),
			regexp.MustCompile(`(?m)4 problem\(s\)$`),
		} {
			if !want.MatchString(stderr) {
				t.Errorf("stderr does not match %s:\n%s", want, stderr)
			}
		}
	})
	t.Run("validate broken manifest and model", func(t *testing.T) {
		dir := exportDemo(t)
		if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(`{"learner":`), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runNBA(t, "validate", dir)
		if code != 1 || !strings.Contains(stderr, "models.propensity") || !strings.Contains(stderr, "model.json") {
			t.Errorf("broken model: exit %d, stderr:\n%s", code, stderr)
		}
		if err := os.WriteFile(filepath.Join(dir, "bundle.yaml"), []byte("catalog: catalog.yaml\nsnapshot: {file: customers.csv.zst}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr = runNBA(t, "validate", dir)
		if code != 1 || !strings.Contains(stderr, "bundle.yaml: models") || !strings.Contains(stderr, "bundle.yaml: snapshot.columns") {
			t.Errorf("broken manifest: exit %d, want 1 and both problems; stderr:\n%s", code, stderr)
		}
	})
	t.Run("decide", func(t *testing.T) {
		code, stdout, stderr := runNBA(t, "decide", "-customer", "c00042", "-channel", "web", "-limit", "2", "-explain")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var d struct {
			CustomerID string      `json:"customer_id"`
			Channel    string      `json:"channel"`
			Actions    []actionOut `json:"actions"`
			Candidates []any       `json:"candidates"`
		}
		if err := json.Unmarshal([]byte(stdout), &d); err != nil {
			t.Fatalf("nba decide printed invalid JSON: %v\n%s", err, stdout)
		}
		if d.CustomerID != "c00042" || d.Channel != "web" || len(d.Actions) != 2 || len(d.Candidates) == 0 {
			t.Errorf("nba decide: %s", stdout)
		}
		code, _, stderr = runNBA(t, "decide", "-customer", "c00042", "-channel", "fax")
		if code != 1 || !strings.Contains(stderr, `"fax"`) {
			t.Errorf("nba decide on an unknown channel: exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("batch", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "x.jsonl.zst")
		code, _, stderr := runNBA(t, "batch", "-channel", "email", "-limit", "2", "-out", out)
		if code != 0 {
			t.Fatalf("nba batch: exit %d: %s", code, stderr)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := zstd.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		seen := map[string]bool{}
		controls := 0
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var d decision
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("line %d: %v: %s", len(seen)+1, err, sc.Bytes())
			}
			if d.Channel != "email" || d.CustomerID == "" || seen[d.CustomerID] || len(d.Actions) > 2 {
				t.Fatalf("line %d: %s", len(seen)+1, sc.Bytes())
			}
			if d.Control {
				controls++
				if len(d.Actions) != 0 {
					t.Fatalf("line %d: a control-group customer is given actions: %s", len(seen)+1, sc.Bytes())
				}
			}
			seen[d.CustomerID] = true
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("cannot read %s: %v", out, err)
		}
		if len(seen) != 10000 {
			t.Errorf("%d lines, want one per demo customer, 10000", len(seen))
		}
		if controls == 0 || controls > 1000 {
			t.Errorf("%d control-group customers of 10000, want about 5%%", controls)
		}
	})
}

// TestLogCommand: nba log prints the records of a sidecar's decision log,
// zstd or Snappy, and filters them by type.
func TestLogCommand(t *testing.T) {
	for _, codec := range []string{"zstd", "snappy"} {
		t.Run(codec, func(t *testing.T) {
			stateDir := t.TempDir()
			p := startServe(t, "-state", stateDir, "-decisionlog.codec", codec)
			d := p.decide(`{"customer_id":"c00042","channel":"web"}`)
			p.ok("/v1/feedback", `{"customer_id":"c00042","action_id":"xs_books","channel":"web","outcome":"impression","decision_id":"`+d.DecisionID+`"}`)
			p.decide(`{"customer_id":"c00043","channel":"web"}`)
			p.signal(syscall.SIGTERM)
			if code, ok := p.waitExit(15 * time.Second); !ok || code != 0 {
				t.Fatalf("nba serve did not stop cleanly: exit %d (%v)", code, ok)
			}
			logDir := filepath.Join(stateDir, "decisions")
			code, stdout, stderr := runNBA(t, "log", logDir)
			if code != 0 {
				t.Fatalf("nba log: exit %d: %s", code, stderr)
			}
			var types []string
			for line := range strings.Lines(stdout) {
				var r struct{ Type, ID, Decision string }
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("nba log printed a line that is not JSON: %q", line)
				}
				types = append(types, r.Type)
			}
			if !slices.Equal(types, []string{"decision", "feedback", "decision"}) || !strings.Contains(stderr, "3 records, 0 lost") {
				t.Errorf("nba log: record types %v, stderr %q", types, stderr)
			}
			_, stdout, _ = runNBA(t, "log", "-type", "feedback", logDir)
			if n := strings.Count(stdout, "\n"); n != 1 || !strings.Contains(stdout, d.DecisionID) {
				t.Errorf("nba log -type feedback: %q", stdout)
			}
			if code, _, _ := runNBA(t, "log", "-type", "nope", logDir); code == 0 {
				t.Error("nba log -type nope: exit 0")
			}
		})
	}
}

// patientRedis adds -state.redis.readTimeout 5s to the arguments of a
// process on Redis state that do not set it: a decision gives up on a
// customer's state after 100 ms by default and decides stale, which on a
// machine loaded by parallel test packages (and the race detector) happens
// without any fault. The tests of faults set their own.
func patientRedis(args []string) []string {
	redis := false
	for _, a := range args {
		if strings.HasPrefix(a, "-state.redis.readTimeout") {
			return args
		}
		redis = redis || a == "-state.redis"
	}
	if !redis {
		return args
	}
	return append(args[:len(args):len(args)], "-state.redis.readTimeout", "5s")
}
