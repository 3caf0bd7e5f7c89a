package sidecar

import (
	"testing"
	"time"

	"nba/nba/server"
	"nba/state/redis/redistest"
)

// TestStreamEntriesNamedByIDs: with identity stitching, an event-stream
// entry that names its customer by ids lands where the same POST
// /v1/events would: an unlinked cookie's anonymous profile, which a later
// login merges into the customer; an entry by CRM id on that customer.
func TestStreamEntriesNamedByIDs(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	cfg := streamConfig(t.TempDir(), rs.URL, "", nil)
	cfg.Bundle, cfg.BundleName = fsys, "test"
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rc := streamClient(t, rs.URL)
	xadd(t, rc, "ids", `{"cookie":"c-91"}`, "type", "cart_abandoned", "attrs", `{"value": 80}`, "ts", streamNow.Add(-time.Hour).Format(time.RFC3339))
	xadd(t, rc, "ids", `{"crm_id":"c00042"}`, "type", "ticket_opened", "ts", streamNow.Add(-time.Hour).Format(time.RFC3339))
	deadline := time.Now().Add(10 * time.Second)
	for s.stream.Stats().Consumed < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("entries not consumed: %+v", s.stream.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := s.stream.Stats(); st.Applied != 2 || st.DeadLettered != 0 {
		t.Fatalf("stream stats %+v, want both applied", st)
	}
	journeys := func(id string) int {
		t.Helper()
		js, _ := customerView(t, s, id)["journeys"].([]any)
		return len(js)
	}
	if n := journeys("~cookie:c-91"); n != 1 {
		t.Errorf("the cookie's anonymous profile has %d journeys, want the cart journey", n)
	}
	if _, err := s.Identify(&server.IdentifyRequest{IDs: []server.Field{{Key: "cookie", Kind: server.KindString, Str: "c-91"}, {Key: "crm_id", Kind: server.KindString, Str: "c00042"}}, TS: streamNow}); err != nil {
		t.Fatal(err)
	}
	if n := journeys("c00042"); n != 1 {
		t.Errorf("after the login c00042 has %d journeys, want the cart journey", n)
	}
	if live, _ := customerView(t, s, "c00042")["live"].(map[string]any); live["open_ticket"] == nil {
		t.Errorf("the event by crm id did not reach c00042: live %v", live)
	}
}
