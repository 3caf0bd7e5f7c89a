package sidecar

import (
	"io"
	"log/slog"
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

// BenchmarkDecideConsent: the cost of consent and of the tombstone check on
// a decision through the sidecar, against the same decision without
// either, in one run:
//
//	go test -run XXX -bench DecideConsent -benchtime 20000x -count 5 ./nba/sidecar/
func BenchmarkDecideConsent(b *testing.B) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, bc := range []struct {
		name               string
		consent, tombstone bool
	}{{"baseline", false, false}, {"consent", true, false}, {"tombstones", false, true}, {"both", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: b.TempDir(), Now: func() time.Time { return now },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if bc.tombstone {
				cfg.ErasureKey = []byte("k")
			}
			s, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// Live state for the customer in every case (a contact), so
			// that only consent differs.
			if err := s.Feedback(&server.Feedback{CustomerID: "c00042", ActionID: "newsletter", Channel: "web", Outcome: server.OutcomeImpression, TS: now}); err != nil {
				b.Fatal(err)
			}
			if bc.consent {
				// Changes on other channels: the decision on e-mail reads
				// them and gives the same actions.
				for _, ch := range []string{"sms", "push", "app"} {
					if err := s.Consent(&server.ConsentChange{CustomerID: "c00042", Channel: ch, Purpose: "marketing", TS: now}); err != nil {
						b.Fatal(err)
					}
				}
			}
			if bc.tombstone {
				if _, err := s.EraseCustomer("c00099"); err != nil {
					b.Fatal(err)
				}
				s.tombs.read.Store(now.UnixNano())
			}
			req := server.DecideRequest{DecisionID: "d", CustomerID: "c00042", Channel: "email", Limit: 3}
			var resp server.DecideResponse
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				resp.Actions, resp.Withheld, resp.Candidates = resp.Actions[:0], resp.Withheld[:0], resp.Candidates[:0]
				if err := s.Decide(&req, &resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
