package sidecar

import (
	"errors"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
)

// testCatalogAdds are declared context fields and pinned actions added to
// the demo catalog: one per channel so each can be seen on its own.
const (
	testContext = `context:
  basket: number
  vip: bool
  seen_at: time
`
	testActions = `  - {id: big_basket, channels: [app], tier: 1, value: 1, features: {offer_kind: 7, category: 0, discount_pct: 0, price_level: 0}, rules: {applicable: ["context.basket > 100"]}}
  - {id: xmas_week, channels: [push], tier: 1, value: 1, start: 2026-12-20, end: 2026-12-27, features: {offer_kind: 7, category: 0, discount_pct: 0, price_level: 0}}
  - {id: morning_call, channels: [agent], tier: 1, value: 1, features: {offer_kind: 7, category: 0, discount_pct: 0, price_level: 0}, rules: {applicable: ["hour() < 10"]}}
journeys:
`
)

// openTestBundle opens the demo bundle with testContext and testActions
// added to its catalog.
func openTestBundle(t *testing.T, cfg Config, now time.Time) *Sidecar {
	t.Helper()
	mfs := fstest.MapFS{}
	err := fs.WalkDir(demo.Bundle(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(demo.Bundle(), path)
		mfs[path] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cat := string(mfs["catalog.yaml"].Data)
	cat = strings.Replace(cat, "context:\n", testContext, 1)
	cat = strings.Replace(cat, "journeys:\n", testActions, 1)
	mfs["catalog.yaml"].Data = []byte(cat)
	cfg.Bundle, cfg.BundleName, cfg.StateDir, cfg.Now = mfs, "test", t.TempDir(), func() time.Time { return now }
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("cannot open the test bundle: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func decideIDs(t *testing.T, s *Sidecar, req server.DecideRequest) []string {
	t.Helper()
	var resp server.DecideResponse
	if err := s.Decide(&req, &resp); err != nil {
		t.Fatalf("decide %+v: %v", req, err)
	}
	var out []string
	for _, a := range resp.Actions {
		out = append(out, a.ID)
	}
	return out
}

// Regression: a context value of another type than declared
// ({"basket":"lots"} for a number) was decided as if missing.
func TestContextOfWrongTypeIsRefused(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openTestBundle(t, Config{}, now)
	lenient := openTestBundle(t, Config{LenientContext: true}, now)
	for _, tc := range []struct {
		name  string
		field server.Field
		want  string // "" accepted, else in the message
	}{
		{"number as string", server.Field{Key: "basket", Kind: server.KindString, Str: "lots"}, "context.basket: the catalog declares it a number, the request gives a string"},
		{"number as bool", server.Field{Key: "basket", Kind: server.KindBool, Bool: true}, "declares it a number, the request gives a boolean"},
		{"number", server.Field{Key: "basket", Kind: server.KindNumber, Num: 150}, ""},
		{"string as number", server.Field{Key: "page", Kind: server.KindNumber, Num: 404}, "context.page: the catalog declares it a string"},
		{"bool as number", server.Field{Key: "vip", Kind: server.KindNumber, Num: 1}, "context.vip: the catalog declares it a boolean"},
		{"time as unix seconds", server.Field{Key: "seen_at", Kind: server.KindNumber, Num: 1.7e9}, ""},
		{"time as RFC 3339", server.Field{Key: "seen_at", Kind: server.KindString, Str: "2026-11-20T10:00:00Z"}, ""},
		{"time as other string", server.Field{Key: "seen_at", Kind: server.KindString, Str: "yesterday"}, "context.seen_at: the catalog declares it a time"},
		{"undeclared", server.Field{Key: "other", Kind: server.KindString, Str: "x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := server.DecideRequest{CustomerID: "c00042", Channel: "app", Limit: 3, DryRun: true, Context: []server.Field{tc.field}}
			err := s.Decide(&req, &server.DecideResponse{})
			var e *server.Error
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (!errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != server.CodeInvalidRequest || !strings.Contains(e.Message, tc.want)):
				t.Errorf("error %v, want 400 invalid_request with %q", err, tc.want)
			}
			if err := lenient.Decide(&req, &server.DecideResponse{}); err != nil {
				t.Errorf("lenient: %v", err)
			}
		})
	}
	// The value is read as declared.
	big := []server.Field{{Key: "basket", Kind: server.KindNumber, Num: 150}}
	if got := decideIDs(t, s, server.DecideRequest{CustomerID: "c00042", Channel: "app", Limit: 3, DryRun: true, Context: big}); !slices.Contains(got, "big_basket") {
		t.Errorf("basket 150: %v, want big_basket", got)
	}
}

// A dry run "as of" another time decides as that moment would: a scheduled
// action and an hour() rule flip with it, and the time is not recorded.
func TestDecideAt(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openTestBundle(t, Config{}, now)
	f := func(channel, action string, at time.Time, want bool) {
		t.Helper()
		// Anonymous: no profile time zone, hour() is UTC's.
		got := decideIDs(t, s, server.DecideRequest{CustomerID: "", Channel: channel, Limit: 3, DryRun: true, At: at})
		if slices.Contains(got, action) != want {
			t.Errorf("%s at %v: %v, want %s: %v", channel, at, got, action, want)
		}
	}
	f("push", "xmas_week", time.Time{}, false)
	f("push", "xmas_week", time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC), true)
	f("push", "xmas_week", time.Date(2026, 12, 28, 9, 0, 0, 0, time.UTC), false)
	f("agent", "morning_call", time.Time{}, false) // now is noon
	f("agent", "morning_call", time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC), true)
	f("agent", "morning_call", time.Date(2026, 12, 24, 10, 0, 0, 0, time.UTC), false)
	// Not without dry_run, whoever calls.
	err := s.Decide(&server.DecideRequest{CustomerID: "c00042", Channel: "push", At: time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC)}, &server.DecideResponse{})
	var e *server.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Errorf("at without dry_run: %v, want 400", err)
	}
}

// Regression: an event of a type nothing knows ("tiket_opened") was
// acknowledged and changed nothing.
func TestUnknownEventTypeIsRefused(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	err := s.Event(&server.Event{CustomerID: "c00042", Type: "tiket_opened", TS: now})
	var e *server.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != server.CodeUnknownEventType ||
		!strings.Contains(e.Message, `"tiket_opened"`) || !strings.Contains(e.Message, "cart_abandoned, purchase, signup, ticket_closed, ticket_opened") {
		t.Errorf("unknown type: %v, want 400 unknown_event_type listing the known types", err)
	}
	for _, typ := range []string{"ticket_opened", "signup", "purchase"} {
		if err := s.Event(&server.Event{CustomerID: "c00042", Type: typ, TS: now}); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if got := s.eventsUnknown.Load(); got != 1 {
		t.Errorf("unknown events counted %d, want 1", got)
	}
	accept, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), Now: func() time.Time { return now }, AcceptUnknownEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	defer accept.Close()
	if err := accept.Event(&server.Event{CustomerID: "c00042", Type: "tiket_opened", TS: now}); err != nil || accept.eventsUnknown.Load() != 1 {
		t.Errorf("with AcceptUnknownEvents: %v, counted %d", err, accept.eventsUnknown.Load())
	}
}
