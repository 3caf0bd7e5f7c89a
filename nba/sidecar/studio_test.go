package sidecar

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"nba/nba/server"
)

func rankedIDs(r *server.DecideResponse) []string {
	var out []string
	for _, c := range r.Candidates {
		if c.Rank > 0 {
			out = append(out, c.ID)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return rankOf(r, a) - rankOf(r, b) })
	return out
}

func rankOf(r *server.DecideResponse, id string) int {
	for _, c := range r.Candidates {
		if c.ID == id {
			return c.Rank
		}
	}
	return 0
}

// TestStudioWhatIf: a lever override moves an action up the ranking of
// that one dry run only; an override the catalog refuses is 400
// invalid_override.
func TestStudioWhatIf(t *testing.T) {
	s := openDemo(t, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	whatIf := func(acts []server.ActionOverride, cand bool) (*server.DecideResponse, error) {
		var resp server.DecideResponse
		req := server.DecideRequest{DecisionID: "d1", CustomerID: "c00042", Channel: "agent", Limit: 3, Explain: true, DryRun: true}
		return &resp, s.DecideWhatIf(&req, &server.WhatIf{Actions: acts, Candidate: cand}, &resp)
	}
	base := rankedIDs(decide(t, s, "c00042", "agent"))
	if len(base) < 2 {
		t.Fatalf("the demo ranks %v for c00042 on agent: too few to reorder", base)
	}
	last := base[len(base)-1]
	lever := 1e6
	got, err := whatIf([]server.ActionOverride{{ID: last, Lever: &lever}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if r := rankedIDs(got); r[0] != last {
		t.Errorf("with %s's lever at %g the ranking is %v, want it first (was %v)", last, lever, r, base)
	}
	if again := rankedIDs(decide(t, s, "c00042", "agent")); !slices.Equal(again, base) {
		t.Errorf("after the what-if the ranking is %v, want %v as before", again, base)
	}
	for _, tc := range []struct {
		name string
		ov   server.ActionOverride
		want string
	}{
		{"unknown action", server.ActionOverride{ID: "wb_20_offf", Lever: &lever}, `did you mean "wb_20_off"`},
		{"tier", server.ActionOverride{ID: last, Tier: new(100)}, "tier 100 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := whatIf([]server.ActionOverride{tc.ov}, false)
			var e *server.Error
			if !errors.As(err, &e) || e.Code != server.CodeInvalidOverride || !strings.Contains(e.Message, tc.want) {
				t.Errorf("error %v, want %s with %q", err, server.CodeInvalidOverride, tc.want)
			}
		})
	}
	t.Run("no candidate", func(t *testing.T) {
		_, err := whatIf(nil, true)
		var e *server.Error
		if !errors.As(err, &e) || e.Code != server.CodeNotFound {
			t.Errorf("candidate decision without a candidate: %v, want not_found", err)
		}
	})
}

// TestStudioCandidate: a candidate bundle decides beside the live one by
// its own catalog; one that would not load as a reload is refused with the
// reason, and the candidate before stays.
func TestStudioCandidate(t *testing.T) {
	s := openDemo(t, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	edit := func(old, new string) func(string, []byte) []byte {
		return func(name string, data []byte) []byte {
			if name == "catalog.yaml" {
				if !bytes.Contains(data, []byte(old)) {
					t.Fatalf("the demo catalog has no %q", old)
				}
				data = bytes.Replace(data, []byte(old), []byte(new), 1)
			}
			return data
		}
	}
	if b, err := s.AppendCandidate(nil); err != nil || string(b) != `{"loaded":false}` {
		t.Errorf("before any was loaded: %s, %v", b, err)
	}
	if err := s.LoadCandidate(demoWith(t, edit("version: demo-2026-11", "version: next")), "next"); err != nil {
		t.Fatal(err)
	}
	var live, cand server.DecideResponse
	req := server.DecideRequest{DecisionID: "d1", CustomerID: "c00042", Channel: "agent", Limit: 3, Explain: true, DryRun: true}
	if err := s.Decide(&req, &live); err != nil {
		t.Fatal(err)
	}
	if err := s.DecideWhatIf(&req, &server.WhatIf{Candidate: true}, &cand); err != nil {
		t.Fatal(err)
	}
	if live.Versions.Catalog != "demo-2026-11" || cand.Versions.Catalog != "next" || cand.Versions.Bundle == live.Versions.Bundle {
		t.Errorf("versions: live %+v, candidate %+v", live.Versions, cand.Versions)
	}
	if !slices.Equal(rankedIDs(&live), rankedIDs(&cand)) {
		t.Errorf("the same catalog under another version ranks %v, the live one %v", rankedIDs(&cand), rankedIDs(&live))
	}
	b, err := s.AppendCandidate(nil)
	if err != nil || !strings.Contains(string(b), `"catalog":"next"`) {
		t.Errorf("candidate: %s, %v", b, err)
	}
	for _, tc := range []struct {
		name     string
		old, new string
		want     string
	}{
		{"catalog", "    lever: 1.2\n", "    levr: 1.2\n", `unknown field "levr"`},
		{"rule", `suitable: ["!profile.open_ticket"]`, `suitable: ["!profile.open_tickets"]`, "open_tickets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.LoadCandidate(demoWith(t, edit(tc.old, tc.new)), "bad")
			if err == nil || !strings.Contains(err.Error(), "cannot load candidate bundle bad") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming the bundle and %q", err, tc.want)
			}
			if b, _ := s.AppendCandidate(nil); !strings.Contains(string(b), `"catalog":"next"`) {
				t.Errorf("after a refused candidate: %s, want the one before", b)
			}
		})
	}
}

// TestStudioWhatIfSeed: on a channel that explores, decisions given the
// same seed draw the same, so a what-if's ranking differs from the plain
// one by the override alone; without one they draw anew.
func TestStudioWhatIfSeed(t *testing.T) {
	s := openDemo(t, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	decideSeeded := func(seed uint64) []string {
		t.Helper()
		var resp server.DecideResponse
		req := server.DecideRequest{DecisionID: "d1", CustomerID: "c00042", Channel: "web", Limit: 3, Explain: true, DryRun: true}
		if err := s.DecideWhatIf(&req, &server.WhatIf{Seed: seed}, &resp); err != nil {
			t.Fatal(err)
		}
		return rankedIDs(&resp)
	}
	first := decideSeeded(7)
	for range 5 {
		if got := decideSeeded(7); !slices.Equal(got, first) {
			t.Fatalf("seed 7 ranked %v, then %v", first, got)
		}
	}
	// Other seeds draw otherwise, and Thompson sampling's draws reorder
	// the web's ranking: a seed that changed nothing would pass the loop
	// above too.
	differs := false
	for i := range 50 {
		if !slices.Equal(decideSeeded(uint64(100+i)), first) {
			differs = true
			break
		}
	}
	if !differs {
		t.Errorf("50 seeds all ranked %v: the web does not explore, or the seed is ignored", first)
	}
}

// TestDecideSeedMakesExplorationRepeatable: a request's Seed reaches the
// engine, so two dry runs with the same seed rank the same on a channel
// that explores (the web site: Thompson sampling), which the studio's
// funnel and "nba funnel" rely on to count alike; without a seed the
// draws differ.
func TestDecideSeedMakesExplorationRepeatable(t *testing.T) {
	s := openDemo(t, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	draws := func(customer string, seed uint64) []float64 {
		req := server.DecideRequest{DecisionID: "d", CustomerID: customer, Channel: "web", Limit: 3, Explain: true, DryRun: true, Seed: seed}
		var resp server.DecideResponse
		if err := s.Decide(&req, &resp); err != nil {
			t.Fatal(err)
		}
		var out []float64
		for _, c := range resp.Candidates {
			if c.Exploration.Method != "" {
				out = append(out, c.Exploration.Drawn)
			}
		}
		return out
	}
	unseeded := 0
	for i := 1; i <= 20; i++ {
		c := fmt.Sprintf("c%05d", i)
		a, b := draws(c, server.FunnelSeed(c)), draws(c, server.FunnelSeed(c))
		if len(a) == 0 {
			t.Fatalf("%s: no candidate explored on web", c)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%s: the same seed drew %v then %v", c, a, b)
		}
		if !slices.Equal(draws(c, 0), draws(c, 0)) {
			unseeded++
		}
	}
	if unseeded == 0 {
		t.Errorf("unseeded decisions drew the same every time: the test cannot tell seeded from not")
	}
}

func TestFirstCustomerIDs(t *testing.T) {
	s := openDemo(t, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	all := s.CustomerIDs()
	f := func(n int, want []string) {
		t.Helper()
		if got := s.FirstCustomerIDs(n); !slices.Equal(got, want) || got == nil {
			t.Errorf("FirstCustomerIDs(%d) = %d ids, want %d", n, len(got), len(want))
		}
	}
	f(0, []string{})
	f(-1, []string{})
	f(3, all[:3])
	f(len(all), all)
	f(len(all)+5, all)
}
