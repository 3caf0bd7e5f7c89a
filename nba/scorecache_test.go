package nba

import (
	"math"
	"slices"
	"testing"
)

// mapScores is a ScoreCache in a map, counting hits.
type mapScores struct {
	m          map[ScoreKey][]float64
	hits, sets int
}

func (c *mapScores) GetScores(k *ScoreKey) ([]float64, bool) {
	v, ok := c.m[*k]
	if ok {
		c.hits++
	}
	return v, ok
}

func (c *mapScores) SetScores(k *ScoreKey, s []float64) {
	c.m[*k] = append([]float64(nil), s...)
	c.sets++
}

// TestScoreCacheSkipsRescoringRepeatVisitors: a repeat decision with the
// same model inputs reads its propensities from the cache, bit for bit; a
// changed profile is a new key.
func TestScoreCacheSkipsRescoringRepeatVisitors(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c1", map[string]any{"aff_birthday": 0.1, "aff_welcome": 0.5, "aff_xsell": 0.3, "segment": "silver", "in_arrears": false})
	cache := &mapScores{m: map[ScoreKey][]float64{}}
	cat := mustCatalog(t, textbook(0, ""), testOpts)
	e, err := NewEngine(Config{Catalog: cat, Profiles: prof, Scores: cache})
	if err != nil {
		t.Fatal(err)
	}
	plain := mustEngine(t, cat, prof, nil, nil)
	decide := func(e *Engine) *Decision {
		var d Decision
		if err := e.Decide(&Request{Customer: "c1", Channel: "web", Limit: 3, Now: monday, Explain: true}, &d); err != nil {
			t.Fatal(err)
		}
		return &d
	}
	first := decide(e)
	scored := e.Stats().Scored
	if scored == 0 || cache.sets != 1 {
		t.Fatalf("first decision: %d rows scored, %d sets", scored, cache.sets)
	}
	second := decide(e)
	if e.Stats().Scored != scored || cache.hits != 1 {
		t.Errorf("repeat decision scored %d more rows (hits %d), want all from the cache", e.Stats().Scored-scored, cache.hits)
	}
	want := decide(plain)
	for _, d := range []*Decision{first, second} {
		if len(d.Explain) != len(want.Explain) {
			t.Fatalf("explain lengths differ")
		}
		for i := range d.Explain {
			if math.Float64bits(d.Explain[i].Propensity) != math.Float64bits(want.Explain[i].Propensity) {
				t.Errorf("candidate %s: propensity %v with the cache, %v without", d.Explain[i].Action, d.Explain[i].Propensity, want.Explain[i].Propensity)
			}
		}
	}
	prof.set("c1", map[string]any{"aff_birthday": 0.9, "aff_welcome": 0.5, "aff_xsell": 0.3, "segment": "silver", "in_arrears": false})
	decide(e)
	if e.Stats().Scored == scored {
		t.Error("a changed profile was answered from the cache")
	}
	// Anonymous requests are never cached.
	before := cache.sets
	var d Decision
	if err := e.Decide(&Request{Channel: "web", Now: monday}, &d); err != nil {
		t.Fatal(err)
	}
	if cache.sets != before {
		t.Error("an anonymous decision was cached")
	}
}

func TestMergeScores(t *testing.T) {
	f := func(old []float64, fresh []scorePair, want []float64) {
		t.Helper()
		got := mergeScores(nil, old, fresh)
		if !slices.Equal(got, want) {
			t.Errorf("mergeScores(%v, %v) = %v, want %v", old, fresh, got, want)
		}
		for i := 0; i+1 < len(want); i += 2 {
			if p, ok := cachedScore(got, int32(want[i])); !ok || p != want[i+1] {
				t.Errorf("cachedScore(%v, %v) = %v, %v", got, want[i], p, ok)
			}
		}
		for _, a := range []int32{-1, 4, 100} {
			if _, ok := cachedScore(got, a); ok && !slices.Contains(want, float64(a)) {
				t.Errorf("cachedScore(%v, %d) found a score it does not hold", got, a)
			}
		}
	}
	f(nil, nil, nil)
	f(nil, []scorePair{{2, 0.2}, {0, 0.1}}, []float64{0, 0.1, 2, 0.2})
	f([]float64{1, 0.5, 3, 0.7}, nil, []float64{1, 0.5, 3, 0.7})
	f([]float64{1, 0.5, 3, 0.7}, []scorePair{{0, 0.1}, {2, 0.2}, {5, 0.9}}, []float64{0, 0.1, 1, 0.5, 2, 0.2, 3, 0.7, 5, 0.9})
	f([]float64{1, 0.5, 3, 0.7}, []scorePair{{3, 0.8}}, []float64{1, 0.5, 3, 0.8})
}
