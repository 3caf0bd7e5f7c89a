package nba

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"testing"
	"time"
)

// TestLearnerCheckpointKeepsPendingImpressions: pending impressions saved
// with the learner checkpoint come back in time order, with what their
// decision saw (the request context, the profile as it was), so that an
// outcome after a restart learns exactly what it would have learned
// without one. Actions no longer in the catalog are dropped.
func TestLearnerCheckpointKeepsPendingImpressions(t *testing.T) {
	const section = `
context: {basket: number}
learning:
  features: [clv, basket]
  prior_variance: 1
`
	cat := mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, section), learnOpts)
	newEngine := func() (*Engine, *memProfiles) {
		prof := newMemProfiles(testSchema)
		prof.set("c", map[string]any{"clv": 0.5, "aff_xsell": 0.2})
		e, err := NewEngine(Config{Catalog: cat, Profiles: prof})
		if err != nil {
			t.Fatal(err)
		}
		return e, prof
	}
	checkpoint := func(e *Engine, pending ...PendingImpression) []byte {
		t.Helper()
		b, err := e.MarshalLearner(pending...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := []ContextValue{{Key: "basket", Num: 3}}

	// The reference: no restart, the accept learns from the decision.
	ref, _ := newEngine()
	if err := ref.ObserveContext("c", "a", 1, monday, ctx); err != nil {
		t.Fatal(err)
	}
	want := checkpoint(ref)

	e, _ := newEngine()
	var d Decision
	if err := e.Decide(&Request{Customer: "c", Channel: "web", Limit: 2, Context: ctx, Now: monday, Remember: 7}, &d); err != nil {
		t.Fatal(err)
	}
	seen, ok := e.Recall(7, "a")
	if !ok {
		t.Fatal("the decision is not remembered")
	}
	pending := []PendingImpression{
		{Customer: "c", Action: "a", At: monday.Add(time.Minute), Seen: seen},
		{Customer: "d", Action: "b", At: monday},
		{Customer: "e", Action: "gone", At: monday}, // not in the catalog
	}
	data := checkpoint(e, pending...)

	// A new process: the profile changed since, the decision memory is empty.
	e2, prof := newEngine()
	prof.set("c", map[string]any{"clv": 0.9, "aff_xsell": 0.2})
	got, err := e2.RestoreLearner(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Customer != "d" || got[1].Customer != "c" || got[1].Action != "a" ||
		!got[1].At.Equal(monday.Add(time.Minute)) || got[0].Seen != nil || got[1].Seen == nil {
		t.Fatalf("restored pending %+v, want d/b then c/a (with what its decision saw)", got)
	}
	if err := e2.ObserveRecalled(got[1].Seen, "c", "a", 1, monday); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(checkpoint(e2), want) {
		t.Error("an outcome after the restart learned something else than the decision's inputs")
	}
	// UnmarshalLearner (offline tools) loads the same checkpoint.
	e3, _ := newEngine()
	if err := e3.UnmarshalLearner(data); err != nil {
		t.Fatal(err)
	}
}

// TestLearnerCheckpointVersion1Loads: a checkpoint written before pending
// impressions were saved still loads, with none pending.
func TestLearnerCheckpointVersion1Loads(t *testing.T) {
	cat := mustCatalog(t, learnCatalog([3]float64{0, -1.5, -4}, learningSection), learnOpts)
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5})
	e, _ := NewEngine(Config{Catalog: cat, Profiles: prof})
	if err := e.Observe("c", "a", 1, monday); err != nil {
		t.Fatal(err)
	}
	v2, err := e.MarshalLearner()
	if err != nil {
		t.Fatal(err)
	}
	// Version 1: its magic, no pending count, its own checksum.
	body := append([]byte(learnerMagicV1), v2[len(learnerMagic):len(v2)-8]...)
	if binary.LittleEndian.Uint32(v2[len(v2)-8:]) != 0 {
		t.Fatal("no pending impressions given, but the checkpoint counts some")
	}
	v1 := binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
	e2, _ := NewEngine(Config{Catalog: cat, Profiles: prof})
	pending, err := e2.RestoreLearner(v1)
	if err != nil || len(pending) != 0 {
		t.Fatalf("version 1 checkpoint: %v, %d pending", err, len(pending))
	}
	again, _ := e2.MarshalLearner()
	if !bytes.Equal(again, v2) {
		t.Error("posteriors restored from version 1 differ")
	}
}

// FuzzRestoreLearner: whatever checkpoint loads, its pending impressions
// checkpoint again and load to the same list.
func FuzzRestoreLearner(f *testing.F) {
	const section = `
context: {basket: number}
learning:
  features: [clv, basket]
  prior_variance: 1
`
	cat, err := CompileCatalog("t.yaml", []byte(learnCatalog([3]float64{}, section)), learnOpts)
	if err != nil {
		f.Fatal(err)
	}
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5})
	e, _ := NewEngine(Config{Catalog: cat, Profiles: prof})
	var d Decision
	_ = e.Decide(&Request{Customer: "c", Channel: "web", Limit: 2, Context: []ContextValue{{Key: "basket", Num: 3}}, Now: monday, Remember: 7}, &d)
	seen, _ := e.Recall(7, "a")
	ck, _ := e.MarshalLearner(PendingImpression{Customer: "c", Action: "a", At: monday, Seen: seen}, PendingImpression{Customer: "d", Action: "b", At: monday})
	f.Add(ck)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, _ := NewEngine(Config{Catalog: cat, Profiles: prof})
		pending, err := e.RestoreLearner(data)
		if err != nil {
			return
		}
		again, err := e.MarshalLearner(pending...)
		if err != nil {
			t.Fatal(err)
		}
		e2, _ := NewEngine(Config{Catalog: cat, Profiles: prof})
		pending2, err := e2.RestoreLearner(again)
		if err != nil {
			t.Fatalf("re-checkpoint does not load: %v", err)
		}
		if len(pending2) != len(pending) {
			t.Fatalf("%d pending after a round trip, want %d", len(pending2), len(pending))
		}
		for i := range pending {
			a, b := pending[i], pending2[i]
			if a.Customer != b.Customer || a.Action != b.Action || !a.At.Equal(b.At) || (a.Seen == nil) != (b.Seen == nil) {
				t.Fatalf("pending %d: %+v after a round trip, want %+v", i, b, a)
			}
			if a.Seen != nil && (a.Seen.a != b.Seen.a || !sameFloats(a.Seen.row, b.Seen.row) || !sameFloats([]float64{a.Seen.off}, []float64{b.Seen.off})) {
				t.Fatalf("pending %d: what the decision saw changed in a round trip", i)
			}
		}
	})
}

// sameFloats compares bit for bit (NaN equals NaN).
func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}
