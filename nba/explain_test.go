package nba

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"nba/nba/explore"
)

// TestExplainStructuredReasons: contact policies that remove a candidate are
// described (kind, scope, key, window, max, count); a channel limit that
// stops the decision is Decision.StoppedBy, not a candidate without an
// action; every explained candidate names its action.
func TestExplainStructuredReasons(t *testing.T) {
	prof := newMemProfiles(testSchema)
	hist := newMemHistory()
	day := 24 * time.Hour
	for _, id := range []string{"capped", "rejected", "emailed"} {
		prof.set(id, map[string]any{"clv": 100})
	}
	hist.add("capped", contact{action: "card", channel: "web", groups: []string{"sales"}, outcome: Impression, at: monday.Add(-day)})
	hist.add("capped", contact{action: "card", channel: "app", groups: []string{"sales"}, outcome: Impression, at: monday.Add(-2 * day)})
	hist.add("rejected", contact{action: "card", channel: "web", groups: []string{"sales"}, outcome: Reject, at: monday.Add(-2 * day)})
	hist.add("emailed", contact{action: "tips", channel: "email", outcome: Impression, at: monday.Add(-time.Hour)})
	e := mustEngine(t, mustCatalog(t, policyCatalog, Options{Schema: testSchema}), prof, hist, nil)
	decide := func(customer, channel string, explain bool) *Decision {
		t.Helper()
		var d Decision
		if err := e.Decide(&Request{Customer: customer, Channel: channel, Limit: 5, Now: monday, Explain: explain}, &d); err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Explain {
			if c.Action == "" {
				t.Errorf("%s/%s: a candidate without an action: %+v", customer, channel, c)
			}
		}
		return &d
	}
	card := func(d *Decision) *Candidate {
		for i := range d.Explain {
			if d.Explain[i].Action == "card" {
				return &d.Explain[i]
			}
		}
		t.Fatal("card not explained")
		return nil
	}
	t.Run("cap", func(t *testing.T) {
		c := card(decide("capped", "web", true))
		want := PolicyHit{Scope: ScopeAction, Key: "card", Outcome: Impression, Window: 7 * day, Max: 2, Count: 2}
		if c.Stage != StageContactPolicy || c.Policy.Desc == "" || c.Count != c.Policy.Count {
			t.Fatalf("card: %+v", c)
		}
		c.Policy.Desc = ""
		if c.Policy != want {
			t.Errorf("card's policy %+v, want %+v", c.Policy, want)
		}
	})
	t.Run("suppression", func(t *testing.T) {
		c := card(decide("rejected", "web", true))
		if c.Stage != StageContactPolicy || !c.Policy.Suppression || c.Policy.Outcome != Reject || c.Policy.Desc == "" {
			t.Errorf("card: %+v", c)
		}
	})
	for _, explain := range []bool{true, false} {
		t.Run("channel limit", func(t *testing.T) {
			d := decide("emailed", "email", explain)
			want := PolicyHit{Scope: ScopeChannel, Key: "email", Outcome: Impression, Window: day, Max: 1, Count: 1, Desc: d.StoppedBy.Desc}
			if d.Reason != "channel_limit" || d.StoppedBy != want || want.Desc == "" {
				t.Errorf("reason %q, stopped by %+v, want %+v", d.Reason, d.StoppedBy, want)
			}
			if len(d.Explain) != 0 {
				t.Errorf("stopped before any candidate, yet %d explained", len(d.Explain))
			}
		})
	}
	t.Run("not stopped", func(t *testing.T) {
		if d := decide("emailed", "web", true); d.Reason == "channel_limit" || d.StoppedBy != (PolicyHit{}) {
			t.Errorf("web is not limited: reason %q, stopped by %+v", d.Reason, d.StoppedBy)
		}
	})
}

// TestExplainExploration: with a learning catalog and fixed seeds, every
// explored candidate carries its method and drawn score, and the drawn
// scores account for the order: each chosen candidate drew at least as much
// as every candidate that lost on rank, even one with a higher mean.
func TestExplainExploration(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5})
	e := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, learningSection), learnOpts), prof, nil, nil)
	beaten := 0
	for seed := range uint64(100) {
		var d Decision
		if err := e.Decide(&Request{Customer: "c", Channel: "web", Limit: 1, Now: monday, Seed: seed + 1, Explain: true}, &d); err != nil {
			t.Fatal(err)
		}
		var chosen *Candidate
		for i := range d.Explain {
			c := &d.Explain[i]
			if c.Exploration.Method != explore.Thompson || math.IsNaN(c.Exploration.Drawn) || math.IsInf(c.Exploration.Drawn, 0) {
				t.Fatalf("seed %d: %s: exploration %+v", seed+1, c.Action, c.Exploration)
			}
			if c.Stage == StageChosen {
				chosen = c
			}
		}
		if chosen == nil {
			t.Fatalf("seed %d: nothing chosen", seed+1)
		}
		for _, c := range d.Explain {
			if c.Stage != StageRank {
				continue
			}
			if c.Exploration.Drawn > chosen.Exploration.Drawn {
				t.Fatalf("seed %d: %s drew %v, more than the chosen %s (%v), and lost on rank", seed+1, c.Action, c.Exploration.Drawn, chosen.Action, chosen.Exploration.Drawn)
			}
			if c.Priority > chosen.Priority {
				beaten++
			}
		}
	}
	if beaten == 0 {
		t.Error("exploration never ranked a higher mean below a lower one: the test proves nothing")
	}
	t.Run("epsilon", func(t *testing.T) {
		random := 0
		for seed := range uint64(100) {
			var d Decision
			_ = e.Decide(&Request{Customer: "c", Channel: "email", Limit: 1, Now: monday, Seed: seed + 1, Explain: true}, &d)
			for _, c := range d.Explain {
				if x := c.Exploration; x.Method != explore.Epsilon || !math.IsNaN(x.Drawn) {
					t.Fatalf("seed %d: %s: exploration %+v", seed+1, c.Action, x)
				}
			}
			if d.Explain[0].Exploration.RandomSlate {
				random++
			}
		}
		if random < 10 || random > 55 { // ε = 0.3
			t.Errorf("%d random slates of 100 at ε = 0.3", random)
		}
	})
	t.Run("not exploring", func(t *testing.T) {
		var d Decision
		_ = e.Decide(&Request{Customer: "c", Channel: "app", Limit: 1, Now: monday, Explain: true}, &d)
		for _, c := range d.Explain {
			if c.Exploration.Method != explore.None {
				t.Errorf("app does not explore, yet %s says %+v", c.Action, c.Exploration)
			}
		}
	})
}

// TestExplainedDecideDoesNotAllocate: explaining fills structured fields
// (strings from the catalog), so once the Decision's slices have grown an
// explained decision allocates nothing either.
func TestExplainedDecideDoesNotAllocate(t *testing.T) {
	if RaceEnabled {
		t.Skip("sync.Pool drops objects under the race detector")
	}
	prof := newMemProfiles(testSchema)
	hist := newMemHistory()
	prof.set("c", map[string]any{"clv": 100, "aff_xsell": 0.5})
	hist.add("c", contact{action: "card", channel: "web", groups: []string{"sales"}, outcome: Reject, at: monday.Add(-time.Hour)})
	hist.add("c", contact{action: "tips", channel: "email", outcome: Impression, at: monday.Add(-time.Hour)})
	policies := mustEngine(t, mustCatalog(t, policyCatalog, Options{Schema: testSchema}), prof, hist, nil)
	learning := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, learningSection), learnOpts), prof, nil, nil)
	for _, tc := range []struct {
		name    string
		e       *Engine
		channel string
	}{{"policies", policies, "web"}, {"channel limit", policies, "email"}, {"thompson", learning, "web"}, {"epsilon", learning, "email"}} {
		t.Run(tc.name, func(t *testing.T) {
			var d Decision
			req := &Request{Customer: "c", Channel: tc.channel, Limit: 2, Now: monday, Explain: true, Seed: 7}
			if err := tc.e.Decide(req, &d); err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(200, func() { _ = tc.e.Decide(req, &d) }); n > 0 {
				t.Errorf("explained Decide allocates %.1f times per call, want 0", n)
			}
		})
	}
}

// TestModelVersionIsModelSetDigest: a decision names its models by one
// short digest of the set, which changes when any model's version does.
func TestModelVersionIsModelSetDigest(t *testing.T) {
	opts := func(v string) Options {
		o := learnOpts
		o.ModelVersions = map[string]string{"prop": v}
		return o
	}
	src := learnCatalog([3]float64{-1, -1.1, -1.2}, "")
	c1, c2 := mustCatalog(t, src, opts("v1")), mustCatalog(t, src, opts("v2"))
	var d Decision
	e := mustEngine(t, c1, newMemProfiles(testSchema), nil, nil)
	if err := e.Decide(&Request{Channel: "web", Now: monday}, &d); err != nil {
		t.Fatal(err)
	}
	if want := ModelSetDigest([]ModelVersion{{"prop", "v1"}}); d.ModelVersion != want || len(want) != 16 {
		t.Errorf("model version %q, want the digest %q", d.ModelVersion, want)
	}
	if got := c1.ModelVersions(); len(got) != 1 || got[0] != (ModelVersion{"prop", "v1"}) {
		t.Errorf("model versions %v", got)
	}
	e.Swap(c2)
	_ = e.Decide(&Request{Channel: "web", Now: monday}, &d)
	if d.ModelVersion == ModelSetDigest(c1.ModelVersions()) {
		t.Error("a new model version kept the digest")
	}
	f := func(a, b []ModelVersion, same bool) {
		t.Helper()
		if (ModelSetDigest(a) == ModelSetDigest(b)) != same {
			t.Errorf("digest(%v) == digest(%v): want %v", a, b, same)
		}
	}
	f([]ModelVersion{{"a", "1"}, {"b", "2"}}, []ModelVersion{{"b", "2"}, {"a", "1"}}, true)
	f([]ModelVersion{{"a", "1"}, {"b", "2"}}, []ModelVersion{{"a", "1"}}, false)
	f([]ModelVersion{{"a", "1@b"}}, []ModelVersion{{"a@1", "b"}}, false)
	if ModelSetDigest(nil) != "" {
		t.Error("no model: want an empty digest")
	}
}

// TestModelVersionStaysShortWithManyModels: a bundle of 50 models, one per
// action, names them in every decision by one 16-digit digest (the answer
// once listed name@version for each, most of its bytes).
func TestModelVersionStaysShortWithManyModels(t *testing.T) {
	var src strings.Builder
	src.WriteString("actions:\n")
	opts := Options{Schema: testSchema, Models: map[string]Scorer{}, ModelVersions: map[string]string{}}
	for i := range 50 {
		name := fmt.Sprintf("propensity_%02d", i)
		fmt.Fprintf(&src, "  - {id: a%02d, channels: [web], model: %s}\n", i, name)
		opts.Models[name] = linModel{feats: []string{"clv"}, w: []float64{0.01}}
		opts.ModelVersions[name] = fmt.Sprintf("%016x", i)
	}
	c := mustCatalog(t, src.String(), opts)
	if n := len(c.ModelVersions()); n != 50 {
		t.Fatalf("%d models bound, want 50", n)
	}
	var d Decision
	if err := mustEngine(t, c, newMemProfiles(testSchema), nil, nil).Decide(&Request{Channel: "web", Now: monday}, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.ModelVersion) != 16 || d.ModelVersion != ModelSetDigest(c.ModelVersions()) {
		t.Errorf("model version %q (%d bytes), want the 16-digit digest of the set", d.ModelVersion, len(d.ModelVersion))
	}
}
