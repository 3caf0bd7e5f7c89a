package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/klauspost/compress/zstd"

	"nba/nba"
	"nba/nba/declog"
	"nba/nba/demo"
	"nba/nba/server"
	"nba/state"
)

// consentSidecar serves the demo with an erasure key, a decision log and
// an admin token through real listeners; it returns the public and admin
// base URLs. dir is the state directory (reopened by a second call).
func consentSidecar(t *testing.T, dir string, now time.Time) (*Sidecar, string, string, func()) {
	t.Helper()
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, Now: func() time.Time { return now },
		DecisionLog: true, ErasureKey: []byte("erasure-key-for-tests")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AdminToken: "tok"}, s)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	go func() { _ = srv.ServeAdmin(aln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			s.Close()
		})
	}
	t.Cleanup(stop)
	return s, "http://" + ln.Addr().String(), "http://" + aln.Addr().String(), stop
}

func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %s: not a JSON object", method, url, r.StatusCode, b)
	}
	if e, ok := out["error"].(map[string]any); ok {
		out["code"] = e["code"] // errors are {"error":{"code","message"}}
	}
	return r.StatusCode, out
}

type decided struct {
	Actions []struct {
		ID string `json:"id"`
	} `json:"actions"`
	Candidates []struct {
		ID, Stage, Reason string
	} `json:"candidates"`
}

func decideHTTP(t *testing.T, base, customer, channel string) decided {
	t.Helper()
	r, err := http.Post(base+"/v1/decide", "application/json", strings.NewReader(`{"customer_id":"`+customer+`","channel":"`+channel+`","limit":3,"explain":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var d decided
	if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestConsentOverHTTP: withdrawing e-mail marketing consent removes every
// marketing action from e-mail decisions at the consent stage (naming
// channel, purpose, source and time) while the service message still
// goes out and other channels are untouched; an older change arriving
// late does not undo it; the customer view shows the status and its
// trail; bad bodies are refused with stable codes.
func TestConsentOverHTTP(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, base, _, _ := consentSidecar(t, t.TempDir(), now)
	const c = "c00042"
	purpose := func(id string) string { return s.Catalog().Action(id).Purpose() }
	if code, _ := call(t, "POST", base+"/v1/events", "", `{"customer_id":"`+c+`","type":"ticket_opened","ts":"2026-11-20T11:00:00Z"}`); code != 200 {
		t.Fatalf("event: %d", code)
	}
	before := decideHTTP(t, base, c, "email")
	if len(before.Actions) == 0 {
		t.Fatal("no e-mail action before the withdrawal")
	}
	for _, body := range []string{
		`{"customer_id":"` + c + `","channel":"email","purpose":"marketing","status":"denied","ts":"2026-11-20T10:00:00Z","source":"preference_center","event_id":"pc-1"}`,
		`{"customer_id":"` + c + `","channel":"email","purpose":"marketing","status":"granted","ts":"2026-11-19T10:00:00Z","source":"late_import"}`,
	} {
		if code, out := call(t, "POST", base+"/v1/consent", "", body); code != 200 {
			t.Fatalf("consent %s: %d %v", body, code, out)
		}
	}
	after := decideHTTP(t, base, c, "email")
	service := false
	for _, a := range after.Actions {
		if purpose(a.ID) == "marketing" {
			t.Errorf("marketing action %s given on e-mail after the withdrawal", a.ID)
		}
		service = service || a.ID == "service_recovery"
	}
	if !service {
		t.Errorf("the service message did not go out: %+v", after.Actions)
	}
	denied := 0
	for _, x := range after.Candidates {
		if x.Stage != "consent" {
			continue
		}
		denied++
		if want := "no consent: email marketing denied by preference_center at 2026-11-20T10:00:00Z"; x.Reason != want || purpose(x.ID) != "marketing" {
			t.Errorf("%s: reason %q (purpose %s), want %q", x.ID, x.Reason, purpose(x.ID), want)
		}
	}
	if denied == 0 {
		t.Error("no candidate removed at the consent stage")
	}
	if web := decideHTTP(t, base, c, "web"); len(web.Actions) == 0 || purpose(web.Actions[0].ID) != "marketing" && web.Actions[0].ID != "service_recovery" {
		t.Errorf("web decisions changed: %+v", web.Actions)
	}
	code, view := call(t, "GET", base+"/v1/customers/"+c, "", "")
	if code != 200 {
		t.Fatalf("customer view: %d", code)
	}
	found := false
	for _, x := range view["consent"].([]any) {
		e := x.(map[string]any)
		if e["channel"] == "email" && e["purpose"] == "marketing" {
			found = true
			trail := e["trail"].([]any)
			if e["status"] != "denied" || e["default"] != false || e["source"] != "preference_center" || len(trail) != 2 ||
				trail[0].(map[string]any)["source"] != "late_import" {
				t.Errorf("customer view consent %v", e)
			}
		}
		if e["channel"] == "sms" && e["purpose"] == "service" && (e["status"] != "granted" || e["default"] != true) {
			t.Errorf("default pair %v", e)
		}
	}
	if !found {
		t.Errorf("customer view has no e-mail marketing consent: %v", view["consent"])
	}
	for _, bad := range []struct{ body, code string }{
		{`{"customer_id":"c","channel":"email","purpose":"marketing"}`, server.CodeInvalidRequest},
		{`{"customer_id":"c","channel":"email","purpose":"marketing","status":"maybe"}`, server.CodeInvalidRequest},
		{`{"customer_id":"c","channel":"email","purpose":"marketting","status":"denied"}`, server.CodeInvalidRequest},
		{`{"customer_id":"c","channel":"fax","purpose":"marketing","status":"denied"}`, server.CodeInvalidRequest},
		{`{"customer_id":"c","channel":"email","purpose":"marketing","status":"denied","staus":"x"}`, server.CodeInvalidRequest},
		{`{"customer_id":"c","channel":"email","purpose":"marketing","status":"denied","ts":"yesterday"}`, server.CodeInvalidRequest},
		{`{"customer_id":"c",`, server.CodeMalformedJSON},
	} {
		if code, out := call(t, "POST", base+"/v1/consent", "", bad.body); code != 400 || out["code"] != bad.code {
			t.Errorf("%s: %d %v, want 400 %s", bad.body, code, out, bad.code)
		}
	}
}

// TestEraseOverHTTP: DELETE /admin/customers/{id} removes the customer's
// live state, impressions awaiting an outcome and remembered decisions,
// answers what it removed, and keeps a tombstone: feedback, events and
// consent answer 410 erased (also after a restart), the customer view is
// 404, decisions treat the customer as anonymous (its snapshot row
// absent), and the decision log's readers skip its records.
func TestEraseOverHTTP(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s, base, admin, stop := consentSidecar(t, dir, now)
	const c = "c00042"
	if !s.InSnapshot(c) {
		t.Fatal("the demo snapshot has no c00042")
	}
	d := decideHTTP(t, base, c, "web")
	for _, body := range []string{
		`{"customer_id":"` + c + `","action_id":"` + d.Actions[0].ID + `","channel":"web","outcome":"impression","ts":"2026-11-20T11:00:00Z","event_id":"f1"}`,
	} {
		if code, out := call(t, "POST", base+"/v1/feedback", "", body); code != 200 {
			t.Fatalf("feedback: %d %v", code, out)
		}
	}
	call(t, "POST", base+"/v1/consent", "", `{"customer_id":"`+c+`","channel":"email","purpose":"marketing","status":"denied"}`)
	call(t, "POST", base+"/v1/events", "", `{"customer_id":"`+c+`","type":"ticket_opened"}`)

	if code, out := call(t, "DELETE", admin+"/admin/customers/"+c, "", ""); code != 401 {
		t.Errorf("erasure without the token: %d %v", code, out)
	}
	if code, out := call(t, "POST", admin+"/admin/customers/"+c, "tok", ""); code != 405 {
		t.Errorf("POST erasure: %d %v", code, out)
	}
	code, out := call(t, "DELETE", admin+"/admin/customers/"+c, "tok", "")
	if code != 200 || out["tombstone"] != true {
		t.Fatalf("erasure: %d %v", code, out)
	}
	e := out["erased"].(map[string]any)
	st := e["state"].(map[string]any)
	if st["found"] != true || st["contacts"].(float64) != 1 || st["consents"].(float64) != 1 || st["fields"].(float64) < 1 ||
		e["pending_observations"].(float64) != 1 || e["decision_log"] != true || e["pseudonym"] != s.Pseudonym(c) {
		t.Errorf("erasure answer %v", out)
	}
	if strings.Contains(s.Pseudonym(c), c) || len(s.Pseudonym(c)) != 32 {
		t.Errorf("pseudonym %q", s.Pseudonym(c))
	}
	gone := func(s *Sidecar, base string) {
		t.Helper()
		for path, body := range map[string]string{
			"/v1/feedback": `{"customer_id":"` + c + `","action_id":"newsletter","outcome":"click"}`,
			"/v1/events":   `{"customer_id":"` + c + `","type":"ticket_opened"}`,
			"/v1/consent":  `{"customer_id":"` + c + `","channel":"email","purpose":"marketing","status":"granted"}`,
		} {
			if code, out := call(t, "POST", base+path, "", body); code != http.StatusGone || out["code"] != server.CodeErased {
				t.Errorf("%s after erasure: %d %v, want 410 erased", path, code, out)
			}
		}
		if code, _ := call(t, "GET", base+"/v1/customers/"+c, "", ""); code != 404 {
			t.Errorf("customer view after erasure: %d", code)
		}
		var cust nba.Customer
		cust.Profile.Num, cust.Profile.Str = make([]float64, 64), make([]string, 64)
		if known, _ := s.cust.Load(context.Background(), c, &cust); known || s.cust.inSnapshot(c) {
			t.Error("decisions still see the erased customer's snapshot row")
		}
		if code, _ := call(t, "POST", base+"/v1/events", "", `{"customer_id":"c00043","type":"ticket_opened"}`); code != 200 {
			t.Error("another customer's event refused")
		}
	}
	gone(s, base)
	s.declog.Flush()
	secret, err := loadSecret(filepath.Join(dir, "declog.secret"))
	if err != nil {
		t.Fatal(err)
	}
	pseudo := declog.Pseudonym(secret, c)
	n := 0
	st2, err := declog.ReadDir(filepath.Join(dir, "decisions"), "decisions", func(line []byte) error {
		r, err := declog.ParseRecord(line)
		if err == nil && r.Customer == pseudo {
			t.Errorf("the erased customer's record was read: %s", line)
		}
		n++
		return err
	})
	if err != nil || st2.Erased == 0 {
		t.Errorf("decision log read: %v, stats %+v", err, st2)
	}

	// After a restart: the tombstone is durable.
	stop()
	s2, base2, _, _ := consentSidecar(t, dir, now)
	gone(s2, base2)
}

// TestConsentFromEventMapping: the demo's unsubscribed event withdraws
// e-mail marketing consent through its mapping, once per event id.
func TestConsentFromEventMapping(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, base, _, _ := consentSidecar(t, t.TempDir(), now)
	const c = "c00042"
	for range 2 {
		if code, out := call(t, "POST", base+"/v1/events", "", `{"customer_id":"`+c+`","type":"unsubscribed","ts":"2026-11-20T11:00:00Z","event_id":"u1"}`); code != 200 {
			t.Fatalf("event: %d %v", code, out)
		}
	}
	d := decideHTTP(t, base, c, "email")
	for _, a := range d.Actions {
		if s.Catalog().Action(a.ID).Purpose() == "marketing" {
			t.Errorf("marketing e-mail %s after unsubscribing", a.ID)
		}
	}
	var v state.View
	if !s.state.View([]byte(c), &v) {
		t.Fatal("no live state after the event")
	}
	got, ok := v.Consent("email", "marketing")
	if !ok || got.Granted || got.Source != "event:unsubscribed" || len(v.ConsentAt(0).Trail) != 1 {
		t.Errorf("consent %+v %v, trail %+v", got, ok, v.ConsentAt(0).Trail)
	}
}

// TestConsentSnapshotColumn: a consent.<channel>.<purpose> column states
// consent as of the snapshot; a live change after the as-of time wins, an
// earlier one loses.
func TestConsentSnapshotColumn(t *testing.T) {
	bundle := demoFS(t)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	csv, err := dec.DecodeAll(bundle["customers.csv.zst"].Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(csv), "\n"), "\n")
	lines[0] += ",consent.email.marketing"
	for i := 1; i < len(lines); i++ {
		switch {
		case strings.HasPrefix(lines[i], "c00042,"), strings.HasPrefix(lines[i], "c00043,"):
			lines[i] += ",false"
		default:
			lines[i] += ","
		}
	}
	bundle["customers.csv"] = &fstest.MapFile{Data: []byte(strings.Join(lines, "\n") + "\n")}
	delete(bundle, "customers.csv.zst")
	editManifest(t, bundle, "file: customers.csv.zst", "file: customers.csv")
	editManifest(t, bundle, "    signup_at: time", "    signup_at: time\n    consent.email.marketing: bool")
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openFS(t, bundle, now)
	asOf := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []state.Consent{
		{Customer: "c00043", Channel: "email", Purpose: "marketing", Granted: true, At: asOf.Add(time.Hour), Source: "pc"},  // after: wins
		{Customer: "c00042", Channel: "email", Purpose: "marketing", Granted: true, At: asOf.Add(-time.Hour), Source: "pc"}, // before: loses
	} {
		if _, err := s.state.SetConsent(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		customer string
		granted  bool
		source   string
	}{{"c00042", false, "snapshot"}, {"c00043", true, "pc"}, {"c00044", true, ""}} {
		var cust nba.Customer
		cust.Profile.Num, cust.Profile.Str = make([]float64, 64), make([]string, 64)
		if _, err := s.cust.Load(context.Background(), c.customer, &cust); err != nil {
			t.Fatal(err)
		}
		got := nba.ConsentStatus{Granted: true}
		for _, x := range cust.Consent {
			if x.Channel == "email" && x.Purpose == "marketing" {
				got = x
			}
		}
		if got.Granted != c.granted || got.Source != c.source {
			t.Errorf("%s: %+v, want granted %v from %q", c.customer, got, c.granted, c.source)
		}
		d := decide(t, s, c.customer, "email")
		for _, a := range d.Actions {
			if !c.granted && s.Catalog().Action(a.ID).Purpose() == "marketing" {
				t.Errorf("%s: marketing e-mail %s against the snapshot's denial", c.customer, a.ID)
			}
		}
		v := customerView(t, s, c.customer)
		for _, x := range v["consent"].([]any) {
			e := x.(map[string]any)
			if e["channel"] == "email" && e["purpose"] == "marketing" && (e["status"] != state.ConsentStatusName(c.granted) || c.source != "" && e["source"] != c.source) {
				t.Errorf("%s: customer view %v", c.customer, e)
			}
		}
	}
	bad := demoFS(t)
	editManifest(t, bad, "    signup_at: time", "    signup_at: time\n    consent.fax.marketing: bool")
	if _, err := Open(Config{Bundle: bad, StateDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), `snapshot.columns.consent.fax.marketing: the catalog has no channel "fax"`) {
		t.Errorf("a consent column of an unknown channel: %v", err)
	}
}

// TestEraseLinkedIDs: the identifiers Config.LinkedIDs names are erased
// with the customer, each with its own tombstone.
func TestEraseLinkedIDs(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), Now: func() time.Time { return now },
		ErasureKey: []byte("k"), LinkedIDs: func(c string) []string {
			if c == "c00042" {
				return []string{"cookie-91"}
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []string{"c00042", "cookie-91"} {
		if err := s.Event(&server.Event{CustomerID: c, Type: "ticket_opened", TS: now}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.AppendErasure(nil, "c00042")
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Erased Erasure
		Linked []Erasure
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Linked) != 1 || !out.Linked[0].State.Found || out.Linked[0].Pseudonym != s.Pseudonym("cookie-91") {
		t.Fatalf("answer %s (%v)", b, err)
	}
	if strings.Contains(string(b), "cookie-91") {
		t.Errorf("the answer names the linked id: %s", b)
	}
	var se *server.Error
	if err := s.Event(&server.Event{CustomerID: "cookie-91", Type: "ticket_opened", TS: now}); !errors.As(err, &se) || se.Code != server.CodeErased {
		t.Errorf("event for the linked id: %v, want 410 erased", err)
	}
}
