package sidecar

import (
	"runtime/debug"
	"testing"
	"time"

	"nba/nba/server"
)

// openIdentityDemo opens the demo bundle with identity stitching and links
// a cookie and an e-mail address to c00042.
func openIdentityDemo(tb testing.TB, now time.Time) *Sidecar {
	tb.Helper()
	fsys := demoFS(tb)
	data := string(fsys[ManifestFile].Data)
	fsys[ManifestFile].Data = []byte(data + "\n" + identitySection[:len(identitySection)-len("catalog: catalog.yaml")])
	s, err := Open(Config{Bundle: fsys, BundleName: "test", StateDir: tb.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if _, err := s.Identify(&server.IdentifyRequest{IDs: []server.Field{str("cookie", "c-91"), str("crm_id", "c00042"), str("email", "ann@example.com")}, TS: now}); err != nil {
		tb.Fatal(err)
	}
	return s
}

func str(k, v string) server.Field { return server.Field{Key: k, Kind: server.KindString, Str: v} }

var decideByIDs = []struct {
	name string
	id   string
	ids  []server.Field
}{
	{"customer_id", "c00042", nil},
	{"primary", "", []server.Field{str("crm_id", "c00042")}},
	{"cookie", "", []server.Field{str("cookie", "c-91")}},
	{"hashed", "", []server.Field{str("email", "ann@example.com")}},
	{"anonymous", "", []server.Field{str("cookie", "never-seen")}},
}

// TestDecideByIDsAllocs: resolving ids on the decide path allocates
// nothing for a linked identifier or the primary one; a hashed namespace
// costs the HMAC's two, and an identifier linked nowhere its anonymous
// profile's id.
func TestDecideByIDsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openIdentityDemo(t, now)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	budget := map[string]float64{"customer_id": 0, "primary": 0, "cookie": 0, "hashed": 2, "anonymous": 1}
	for _, tc := range decideByIDs {
		req := server.DecideRequest{DecisionID: "d", Channel: "web", Limit: 3, IDs: tc.ids, DryRun: true}
		var resp server.DecideResponse
		decide := func() {
			req.CustomerID = tc.id
			resp.Actions, resp.Withheld, resp.Candidates = resp.Actions[:0], resp.Withheld[:0], resp.Candidates[:0]
			if err := s.Decide(&req, &resp); err != nil {
				t.Fatal(err)
			}
		}
		for range 100 {
			decide()
		}
		if want := map[string]string{"anonymous": "~cookie:never-seen"}[tc.name]; want == "" && req.CustomerID != "c00042" || want != "" && req.CustomerID != want {
			t.Errorf("%s: decided for %q", tc.name, req.CustomerID)
		}
		if n := testing.AllocsPerRun(200, decide); n > budget[tc.name] {
			t.Errorf("%s: Decide allocates %.1f times per call, budget %v", tc.name, n, budget[tc.name])
		}
	}
}

// BenchmarkDecideByIDs: a decision by customer_id (the baseline) and by
// each kind of identifier.
func BenchmarkDecideByIDs(b *testing.B) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openIdentityDemo(b, now)
	for _, tc := range decideByIDs {
		b.Run(tc.name, func(b *testing.B) {
			req := server.DecideRequest{DecisionID: "d", Channel: "web", Limit: 3, IDs: tc.ids, DryRun: true}
			var resp server.DecideResponse
			b.ReportAllocs()
			for b.Loop() {
				req.CustomerID = tc.id
				resp.Actions, resp.Withheld, resp.Candidates = resp.Actions[:0], resp.Withheld[:0], resp.Candidates[:0]
				if err := s.Decide(&req, &resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
