package sidecar

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/klauspost/compress/zstd"

	"nba/nba/demo"
	"nba/nba/server"
)

// demoFS copies the demo bundle into a map the test can change between
// reloads.
func demoFS(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(demo.Bundle(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(demo.Bundle(), path)
		m[path] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// editManifest replaces old by new in the bundle's manifest.
func editManifest(t *testing.T, m fstest.MapFS, old, new string) {
	t.Helper()
	data := string(m[ManifestFile].Data)
	if !strings.Contains(data, old) {
		t.Fatalf("manifest has no %q", old)
	}
	m[ManifestFile] = &fstest.MapFile{Data: []byte(strings.Replace(data, old, new, 1))}
}

func openFS(t *testing.T, fsys fs.FS, now time.Time) *Sidecar {
	t.Helper()
	s, err := Open(Config{Bundle: fsys, BundleName: "test", StateDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("cannot open bundle: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// customerView is GET /v1/customers/{id}, decoded.
func customerView(t *testing.T, s *Sidecar, id string) map[string]any {
	t.Helper()
	b, err := s.AppendCustomer(nil, id)
	if err != nil {
		t.Fatalf("customer %s: %v", id, err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Regression: after one event for an id that is not in the snapshot, the
// customer view said "in_snapshot": true. Snapshot membership and live
// state are two facts.
func TestCustomerViewInSnapshotIsSnapshotMembership(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	for _, ev := range []server.Event{
		{CustomerID: "new-customer", Type: "ticket_opened", TS: now},
		{CustomerID: "c00043", Type: "ticket_opened", TS: now},
	} {
		if err := s.Event(&ev); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		id             string
		inSnap, isLive bool
	}{
		{"c00042", true, false},       // in the snapshot, nothing live
		{"c00043", true, true},        // in the snapshot, with an event
		{"new-customer", false, true}, // only events
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			v := customerView(t, s, tt.id)
			if v["in_snapshot"] != tt.inSnap || v["has_live_state"] != tt.isLive {
				t.Errorf("in_snapshot %v, has_live_state %v; want %v, %v", v["in_snapshot"], v["has_live_state"], tt.inSnap, tt.isLive)
			}
		})
	}
	if _, err := s.AppendCustomer(nil, "nobody"); statusOf(err) != 404 {
		t.Errorf("customer neither in the snapshot nor live: %v, want 404", err)
	}
}

// Regression: reloading a newer snapshot hid every live value stamped
// before its as-of, also fields the snapshot does not carry: with a ticket
// still open, the agent's decision turned from service_recovery to sales
// offers. The snapshot resets only what it carries and what the mappings
// say resets (the demo's orders_since_snapshot).
func TestSnapshotReloadKeepsLiveOnlyFields(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	bundle := demoFS(t)
	dir := t.TempDir()
	s, err := Open(Config{Bundle: bundle, BundleName: "test", StateDir: dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const c = "c00042"
	for _, ev := range []server.Event{
		{CustomerID: c, Type: "ticket_opened", TS: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)},
		{CustomerID: c, Type: "purchase", TS: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)},
	} {
		if err := s.Event(&ev); err != nil {
			t.Fatal(err)
		}
	}
	check := func(stage string, wantOrders any) {
		t.Helper()
		if got := ids(decide(t, s, c, "agent")); len(got) == 0 || got[0] != "service_recovery" {
			t.Errorf("%s: open ticket: want service_recovery first, got %v", stage, got)
		}
		p := customerView(t, s, c)["profile"].(map[string]any)
		if p["open_ticket"] != true || p["orders_since_snapshot"] != wantOrders {
			t.Errorf("%s: open_ticket %v, orders_since_snapshot %v; want true, %v", stage, p["open_ticket"], p["orders_since_snapshot"], wantOrders)
		}
	}
	check("before the reload", 1.0)

	// A new snapshot, as of after both events (same customers, plain CSV:
	// a new version).
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	csv, err := dec.DecodeAll(bundle["customers.csv.zst"].Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle["customers.csv"] = &fstest.MapFile{Data: bytes.Clone(csv)}
	editManifest(t, bundle, "file: customers.csv.zst", "file: customers.csv")
	editManifest(t, bundle, "as_of: 2026-11-01T00:00:00Z", "as_of: 2026-11-25T00:00:00Z")
	if err := s.Reload(t.Context()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := s.snaps.Current().AsOf(); !got.Equal(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("snapshot as of %v after the reload, want the new one", got)
	}
	check("after the reload", nil)

	// And after a restart on the new snapshot.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Config{Bundle: bundle, BundleName: "test", StateDir: dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check("after a restart", nil)
}

// TestRestartOnNewerSnapshotResets: a snapshot that arrives with a restart
// rather than a reload resets the same fields.
func TestRestartOnNewerSnapshotResets(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	bundle := demoFS(t)
	dir := filepath.Join(t.TempDir(), "state")
	open := func() *Sidecar {
		s, err := Open(Config{Bundle: bundle, BundleName: "test", StateDir: dir, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	ev := server.Event{CustomerID: "c00042", Type: "purchase", TS: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	if err := s.Event(&ev); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	editManifest(t, bundle, "as_of: 2026-11-01T00:00:00Z", "as_of: 2026-11-25T00:00:00Z")
	s = open()
	defer s.Close()
	p := customerView(t, s, "c00042")["profile"].(map[string]any)
	if _, ok := p["orders_since_snapshot"]; ok || p["last_purchase_at"] == nil {
		t.Errorf("restart on a newer snapshot: profile %v, want orders_since_snapshot reset and last_purchase_at kept", p)
	}
}

// Regression: reloads compared the profile mappings by their printed form,
// which holds the address of a by:'s number, so a bundle with {incr: x,
// by: 2} failed every reload. A changed mapping is still refused.
func TestReloadWithByMapping(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	bundle := demoFS(t)
	editManifest(t, bundle, "{incr: orders_since_snapshot}", "{incr: orders_since_snapshot, by: 2}")
	s := openFS(t, bundle, now)
	for i := range 2 {
		if err := s.Reload(t.Context()); err != nil {
			t.Fatalf("reload %d of an unchanged bundle: %v", i, err)
		}
	}
	editManifest(t, bundle, "by: 2}", "by: 3}")
	if err := s.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Errorf("reload of a changed mapping: %v, want refused (restart)", err)
	}
}

// TestSameProfileSeesCarriedFields: a live field that becomes (or stops
// being) a snapshot column changes what a new snapshot resets: a restart.
func TestSameProfileSeesCarriedFields(t *testing.T) {
	m, _, err := readManifest(demo.Bundle())
	if err != nil {
		t.Fatal(err)
	}
	st, err := openState(t.TempDir(), m, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !sameProfile(st, m, m) {
		t.Fatal("the same manifest differs")
	}
	b := m
	b.Snapshot.Columns = map[string]string{"open_ticket": "bool"}
	for k, v := range m.Snapshot.Columns {
		b.Snapshot.Columns[k] = v
	}
	if sameProfile(st, m, b) {
		t.Error("a live field now carried by the snapshot: want a difference")
	}
}

// TestCustomerViewSnapshotAndLive: the customer view shows the snapshot's
// row with its as-of time and each live field with when it changed and
// whether decisions see it, beside the merged profile.
func TestCustomerViewSnapshotAndLive(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	before := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC) // the demo snapshot is as of 2026-11-01
	after := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	for _, ev := range []server.Event{
		{CustomerID: "c00042", Type: "ticket_opened", TS: now},
		{CustomerID: "c00043", Type: "signup", TS: before},
		{CustomerID: "c00044", Type: "signup", TS: after},
	} {
		if err := s.Event(&ev); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		id, field string
		changed   time.Time
		applied   bool
	}{
		{"c00042", "open_ticket", now, true},   // live only
		{"c00043", "signup_at", before, false}, // older than the snapshot: not kept, the snapshot's value holds
		{"c00044", "signup_at", after, true},   // newer: the live value holds
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			v := customerView(t, s, tt.id)
			snap, _ := v["snapshot"].(map[string]any)
			if snap == nil || snap["as_of"] != "2026-11-01T00:00:00Z" {
				t.Fatalf("snapshot %v: want its as_of and values", v["snapshot"])
			}
			values := snap["values"].(map[string]any)
			if _, ok := values["open_ticket"]; ok {
				t.Errorf("snapshot values hold the live-only field open_ticket")
			}
			lf, _ := v["live"].(map[string]any)[tt.field].(map[string]any)
			if !tt.applied {
				if lf != nil && lf["applied"] != false {
					t.Errorf("live %s = %v: a value older than the snapshot shown as applied", tt.field, lf)
				}
				if got := v["profile"].(map[string]any)[tt.field]; got != values[tt.field] {
					t.Errorf("profile %s = %v, want the snapshot's %v", tt.field, got, values[tt.field])
				}
				return
			}
			if lf == nil {
				t.Fatalf("live %v: no %s", v["live"], tt.field)
			}
			if lf["changed_at"] != tt.changed.Format(time.RFC3339Nano) || lf["applied"] != tt.applied {
				t.Errorf("live %s = %v: want changed_at %v, applied %v", tt.field, lf, tt.changed, tt.applied)
			}
			if got := v["profile"].(map[string]any)[tt.field]; got != lf["value"] {
				t.Errorf("profile %s = %v, want the live %v", tt.field, got, lf["value"])
			}
		})
	}
}

// TestCustomerViewCaps: the customer view lists every cap and channel
// limit with the customer's count, the headroom left and, once reached,
// when it frees.
func TestCustomerViewCaps(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	shown := now.Add(-time.Hour)
	for _, f := range []server.Feedback{
		{CustomerID: "c00042", ActionID: "birthday_gift", Channel: "web", Outcome: server.OutcomeImpression, TS: shown},
		{CustomerID: "c00042", ActionID: "nps_survey", Channel: "sms", Outcome: server.OutcomeImpression, TS: shown},
	} {
		if err := s.Feedback(&f); err != nil {
			t.Fatal(err)
		}
	}
	find := func(v map[string]any, scope, key, window string) map[string]any {
		for _, c := range v["caps"].([]any) {
			c := c.(map[string]any)
			if c["scope"] == scope && c["key"] == key && c["window"] == window {
				return c
			}
		}
		t.Fatalf("no %s %s cap over %s in %v", scope, key, window, v["caps"])
		return nil
	}
	tests := []struct {
		customer, scope, key, window string
		count, headroom              float64
		freesAt                      string
	}{
		{"c00042", "action", "birthday_gift", "30d", 1, 1, ""},
		{"c00042", "channel", "sms", "7d", 1, 0, shown.Add(7 * 24 * time.Hour).Format(time.RFC3339Nano)},
		{"c00043", "channel", "sms", "7d", 0, 1, ""}, // in the snapshot, no contacts
	}
	for _, tt := range tests {
		t.Run(tt.customer+"/"+tt.key, func(t *testing.T) {
			c := find(customerView(t, s, tt.customer), tt.scope, tt.key, tt.window)
			got, _ := c["frees_at"].(string)
			if c["count"] != tt.count || c["headroom"] != tt.headroom || got != tt.freesAt || c["policy"] == "" {
				t.Errorf("%v: want count %v, headroom %v, frees_at %q", c, tt.count, tt.headroom, tt.freesAt)
			}
		})
	}
}
