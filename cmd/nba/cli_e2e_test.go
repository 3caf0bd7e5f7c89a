package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// exportTypedDemo exports the demo bundle with a number context field,
// basket, declared beside its string fields.
func exportTypedDemo(t *testing.T) string {
	t.Helper()
	dir := exportDemo(t)
	path := filepath.Join(dir, "catalog.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "context:\n", "context:\n  basket: number\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// varying are the parts of a decision that differ between two runs of the
// same request.
var varying = regexp.MustCompile(`"decision_id":"[0-9a-f]{32}"|"took_us":[0-9]+`)

// Regression: nba decide printed Go field names (ID, Score, Selected) for
// candidates, where the HTTP API answers id, score, selected. It must print
// the very bytes POST /v1/decide answers to the same dry run.
//
// The channels are ones the demo does not explore on (web, app and email
// draw at random), so the two decisions can be compared.
func TestDecideCommandPrintsTheHTTPAnswer(t *testing.T) {
	dir := exportTypedDemo(t)
	p := startServe(t, "-bundle", dir)
	for _, tc := range []struct {
		name string
		body string
		args []string
	}{
		{"explained with context", `{"customer_id":"c00042","channel":"agent","limit":2,"explain":true,"dry_run":true,"context":{"page":"checkout","basket":120}}`,
			[]string{"-customer", "c00042", "-channel", "agent", "-limit", "2", "-explain", "-context", "page=checkout", "-context", "basket=120"}},
		{"as of a time", `{"customer_id":"c00007","channel":"sms","limit":3,"dry_run":true,"at":"2026-12-24T09:00:00Z"}`,
			[]string{"-customer", "c00007", "-channel", "sms", "-limit", "3", "-at", "2026-12-24T09:00:00Z"}},
		{"unknown customer", `{"customer_id":"nobody","channel":"push","explain":true,"dry_run":true}`,
			[]string{"-customer", "nobody", "-channel", "push", "-explain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := p.with(t).call("POST", "/v1/decide", tc.body)
			if r.status != http.StatusOK {
				t.Fatalf("POST /v1/decide: %v", r)
			}
			code, stdout, stderr := runNBA(t, append([]string{"decide", "-bundle", dir}, tc.args...)...)
			if code != 0 {
				t.Fatalf("nba decide: exit %d: %s", code, stderr)
			}
			if !varying.MatchString(stdout) || !strings.HasSuffix(stdout, "}\n") {
				t.Errorf("nba decide printed no decision id or took_us: %s", stdout)
			}
			httpOut := varying.ReplaceAllString(string(r.body), "")
			cliOut := varying.ReplaceAllString(strings.TrimSuffix(stdout, "\n"), "")
			if httpOut != cliOut {
				t.Errorf("nba decide and POST /v1/decide differ:\nnba decide: %s\nHTTP:       %s", cliOut, httpOut)
			}
		})
	}
}

// Regression: a context value of another type than declared was decided as
// if it were missing, over HTTP and from the command line.
func TestContextOfWrongTypeIsRefused(t *testing.T) {
	dir := exportTypedDemo(t)
	p := startServe(t, "-bundle", dir)
	const want = "context.basket: the catalog declares it a number, the request gives a string"
	r := p.call("POST", "/v1/decide", `{"customer_id":"c00042","channel":"web","context":{"basket":"lots"}}`)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"invalid_request"`) || !strings.Contains(string(r.body), want) {
		t.Errorf("decide: %v, want 400 invalid_request with %q", r, want)
	}
	r = p.call("POST", "/v1/decide/batch", `{"requests":[{"customer_id":"c00042","channel":"web","context":{"basket":"lots"}},{"customer_id":"c00042","channel":"web","context":{"basket":3}}]}`)
	var batch struct {
		Decisions []json.RawMessage `json:"decisions"`
	}
	if err := json.Unmarshal(r.body, &batch); r.status != http.StatusOK || err != nil || len(batch.Decisions) != 2 ||
		!strings.Contains(string(batch.Decisions[0]), want) || !strings.Contains(string(batch.Decisions[1]), `"decision_id"`) {
		t.Errorf("batch: %v, want the first element refused with %q and the second decided", r, want)
	}
	code, _, stderr := runNBA(t, "decide", "-bundle", dir, "-customer", "c00042", "-context", "basket=lots")
	if code == 0 || !strings.Contains(stderr, "basket") || !strings.Contains(stderr, "number") {
		t.Errorf("nba decide -context basket=lots: exit %d, stderr %q; want an error naming basket and number", code, stderr)
	}
	// A string field given digits stays a string: typed by the catalog,
	// not by its look.
	if code, stdout, stderr := runNBA(t, "decide", "-bundle", dir, "-customer", "c00042", "-context", "page=404"); code != 0 {
		t.Errorf("nba decide -context page=404: exit %d: %s%s", code, stdout, stderr)
	}
	lenient := startServe(t, "-bundle", dir, "-http.lenientContext")
	if r := lenient.call("POST", "/v1/decide", `{"customer_id":"c00042","channel":"web","context":{"basket":"lots"}}`); r.status != http.StatusOK {
		t.Errorf("with -http.lenientContext: %v, want 200", r)
	}
}

func TestRequestRefusals(t *testing.T) {
	p := startServe(t)
	for _, tc := range []struct {
		name, path, body string
		status           int
		code, inMsg      string
	}{
		{"at without dry_run", "/v1/decide", `{"customer_id":"c00042","channel":"web","at":"2026-12-24T09:00:00Z"}`, 400, "invalid_request", "dry_run"},
		{"at in a batch without dry_run", "/v1/decide/batch", `{"requests":[{"customer_id":"c00042","channel":"web","at":"2026-12-24T09:00:00Z"}]}`, 400, "invalid_request", "requests[0]: at needs"},
		{"misspelt event type", "/v1/events", `{"customer_id":"c00042","type":"tiket_opened"}`, 400, "unknown_event_type", "ticket_opened"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := p.with(t).call("POST", tc.path, tc.body)
			if r.status != tc.status || !strings.Contains(string(r.body), `"code":"`+tc.code+`"`) || !strings.Contains(string(r.body), tc.inMsg) {
				t.Errorf("got %v, want %d %s naming %q", r, tc.status, tc.code, tc.inMsg)
			}
		})
	}
	if n := p.metric("nba_events_unknown_type_total"); n != 1 {
		t.Errorf("nba_events_unknown_type_total = %v, want 1", n)
	}
	accepting := startServe(t, "-events.acceptUnknown")
	if r := accepting.call("POST", "/v1/events", `{"customer_id":"c00042","type":"tiket_opened"}`); r.status != http.StatusOK {
		t.Errorf("with -events.acceptUnknown: %v, want 200", r)
	}
}

func TestDecideAndBatchCommands(t *testing.T) {
	t.Run("decide without -customer", func(t *testing.T) {
		code, stdout, stderr := runNBA(t, "decide", "-channel", "web")
		if code == 0 || !strings.Contains(stderr, "-customer") {
			t.Errorf("exit %d, stdout %q, stderr %q; want non-zero and -customer named", code, stdout, stderr)
		}
	})
	t.Run("batch decides a repeated id once", func(t *testing.T) {
		list := filepath.Join(t.TempDir(), "ids.txt")
		if err := os.WriteFile(list, []byte("c00001\nc00002\nc00001\n c00002 \nc00003\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runNBA(t, "batch", "-channel", "email", "-customers", list)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got []string
		for line := range strings.Lines(stdout) {
			d := decodeJSON[decision](t, []byte(line))
			if !varying.MatchString(line) {
				t.Errorf("line without a decision id: %s", line)
			}
			got = append(got, d.CustomerID)
		}
		if strings.Join(got, ",") != "c00001,c00002,c00003" {
			t.Errorf("decided %v, want c00001, c00002, c00003 once each in order", got)
		}
	})
}
