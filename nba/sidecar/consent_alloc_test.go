package sidecar

import (
	"runtime/debug"
	"testing"
	"time"

	"nba/nba/demo"
	"nba/nba/server"
)

// TestDecideWithConsentAndTombstonesDoesNotAllocate: a customer with
// consent changes, and a sidecar holding tombstones (each decision then
// checks the customer's keyed hash), still decide without allocating.
func TestDecideWithConsentAndTombstonesDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: t.TempDir(),
		Now: func() time.Time { return now }, ErasureKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, c := range []server.ConsentChange{
		{CustomerID: "c00042", Channel: "email", Purpose: "marketing", TS: now},
		{CustomerID: "c00042", Channel: "sms", Purpose: "marketing", Granted: true, TS: now},
	} {
		if err := s.Consent(&c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.EraseCustomer("c00099"); err != nil {
		t.Fatal(err)
	}
	s.tombs.read.Store(now.UnixNano()) // no background re-read during the count
	for _, explain := range []bool{false, true} {
		req := server.DecideRequest{DecisionID: "d", CustomerID: "c00042", Channel: "email", Limit: 3, Explain: explain}
		var resp server.DecideResponse
		decide := func() {
			resp.Actions, resp.Withheld, resp.Candidates = resp.Actions[:0], resp.Withheld[:0], resp.Candidates[:0]
			if err := s.Decide(&req, &resp); err != nil {
				t.Fatal(err)
			}
		}
		decide()
		decide()
		if n := testing.AllocsPerRun(100, decide); n > 0 {
			t.Errorf("explain %v: %.1f allocations per decision, want 0", explain, n)
		}
	}
}
