package sidecar

import (
	"encoding/json"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestCustomerViewReadsStateOnce: GET /v1/customers/{id} reads the
// customer's state once, so its profile and its live fields always agree,
// and says "state":"stale" when the state could not be read (it then shows
// the last copy this process held). Before, the page read the state three
// times and ignored failures: a read that timed out showed a profile
// without the live fields beside live fields that had them, and nothing
// said so.
func TestCustomerViewReadsStateOnce(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(), StateRedis: rs.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const c = "c00042"
	ev := server.Event{CustomerID: c, Type: "cart_abandoned", TS: time.Now(), EventID: "ev-1",
		Attrs: []server.Field{{Key: "value", Kind: server.KindNumber, Num: 77}}}
	if err := s.Event(&ev); err != nil {
		t.Fatal(err)
	}
	view := func() map[string]any {
		t.Helper()
		b, err := s.AppendCustomer(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	check := func(m map[string]any, stale bool) {
		t.Helper()
		prof, _ := m["profile"].(map[string]any)
		live, _ := m["live"].(map[string]any)
		if prof["cart_value"] != 77.0 || live["cart_value"] == nil {
			t.Errorf("profile cart_value %v, live %v: want 77 in both", prof["cart_value"], live["cart_value"])
		}
		if _, got := m["state"]; got != stale {
			t.Errorf("view's state %v, want stale %v", m["state"], stale)
		}
	}
	check(view(), false)
	rs.Kill()
	for deadline := time.Now().Add(5 * time.Second); s.state.Err() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the state backend did not notice Redis was killed")
		}
	}
	check(view(), true)
}
