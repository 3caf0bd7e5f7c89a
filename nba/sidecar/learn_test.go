package sidecar

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"nba/nba"
	"nba/nba/demo"
	"nba/nba/server"
)

// posteriors decodes the online models of a learner checkpoint (see the
// layouts in nba/learn.go and model/online.go): per action or group, in
// checkpoint order, its evidence, mean and precision vectors; nil when
// absent.
func posteriors(t *testing.T, ck []byte) [][]float64 {
	t.Helper()
	b := ck[8:] // magic
	u32 := func() int {
		v := binary.LittleEndian.Uint32(b)
		b = b[4:]
		return int(v)
	}
	u16 := func() int {
		v := binary.LittleEndian.Uint16(b)
		b = b[2:]
		return int(v)
	}
	f64 := func() float64 {
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		return v
	}
	for range 2 { // action and group ids
		for range u32() {
			b = b[u16():]
		}
	}
	u32()     // online checkpoint length
	b = b[8:] // its magic
	u32()     // version
	dim, na, ng := u32(), u32(), u32()
	for range dim - 1 {
		b = b[u16():]
	}
	out := make([][]float64, na+ng)
	for i := range out {
		present := b[0]
		b = b[1:]
		if present == 0 {
			continue
		}
		n := f64()
		b = b[8:] // time of the last update
		out[i] = append(out[i], n)
		for range 2 * dim {
			out[i] = append(out[i], f64())
		}
	}
	return out
}

// Regression: online learning drifted upward across a restart. The
// impressions waiting for their outcome were dropped at the restart, so the
// rejects and the ignored impressions after it were never learned, while
// the accepts were. The same feedback stream with and without a restart in
// the middle must give the same posteriors.
func TestLearningAcrossRestartMatchesNoRestart(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	shown := now.Add(-2 * time.Hour)
	feedback := func(s *Sidecar, i int, o server.Outcome, at time.Time) {
		t.Helper()
		fb := server.Feedback{CustomerID: fmt.Sprintf("c%05d", 100+i), ActionID: "xs_books", Channel: "web", Outcome: o, TS: at}
		if err := s.Feedback(&fb); err != nil {
			t.Fatal(err)
		}
	}
	run := func(restart bool) [][]float64 {
		dir := t.TempDir()
		open := func() *Sidecar {
			s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		s := open()
		for i := range 40 {
			feedback(s, i, server.OutcomeImpression, shown)
		}
		for i := range 5 {
			feedback(s, i, server.OutcomeAccept, shown.Add(time.Minute))
		}
		if restart {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open()
		}
		defer s.Close()
		for i := 5; i < 15; i++ {
			feedback(s, i, server.OutcomeAccept, shown.Add(30*time.Minute))
		}
		for i := 15; i < 25; i++ {
			feedback(s, i, server.OutcomeReject, shown.Add(30*time.Minute))
		}
		// The response window of the other 15 closes: ignored.
		s.expirePending(shown.Add(s.cfg.ResponseWindow + time.Hour))
		if n, _, _ := s.pending.stats(); n != 0 {
			t.Fatalf("restart %v: %d impressions still pending after their window", restart, n)
		}
		ck, err := s.engine.MarshalLearner()
		if err != nil {
			t.Fatal(err)
		}
		return posteriors(t, ck)
	}
	want, got := run(false), run(true)
	if len(got) != len(want) {
		t.Fatalf("%d posteriors after a restart, want %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("posterior %d: %v after a restart, want %v", i, got[i], want[i])
		}
		for j := range want[i] {
			// The ignored impressions are learned in map order: the same
			// observations, rounding may differ.
			if d := math.Abs(got[i][j] - want[i][j]); d > 1e-9*max(1, math.Abs(want[i][j])) {
				t.Errorf("posterior %d, value %d: %v after a restart, want %v (evidence, means, precisions)", i, j, got[i][j], want[i][j])
			}
		}
	}
}

// TestLearnerCheckpointedWhileServing: the learner checkpoint is written
// periodically, not only at shutdown, and loads in an offline engine (nba
// replay and nba evaluate -learner read it beside a running sidecar).
func TestLearnerCheckpointedWhileServing(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s, err := Open(Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, LearnCheckpointEvery: 20 * time.Millisecond,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, o := range []server.Outcome{server.OutcomeImpression, server.OutcomeAccept} {
		fb := server.Feedback{CustomerID: "c00100", ActionID: "xs_books", Channel: "web", Outcome: o, TS: now}
		if err := s.Feedback(&fb); err != nil {
			t.Fatal(err)
		}
	}
	fb := server.Feedback{CustomerID: "c00101", ActionID: "xs_home", Channel: "web", Outcome: server.OutcomeImpression, TS: now}
	if err := s.Feedback(&fb); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "learner.bin")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(file)
		if err == nil {
			cat, err := LoadCatalog(demo.Bundle())
			if err != nil {
				t.Fatal(err)
			}
			e, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: &customers{}})
			if err != nil {
				t.Fatal(err)
			}
			pending, err := e.RestoreLearner(data)
			if err != nil {
				t.Fatalf("the checkpoint of a running sidecar does not load: %v", err)
			}
			if e.LearnerStats().Actions != nil && len(pending) == 1 && pending[0].Action == "xs_home" {
				for _, a := range e.LearnerStats().Actions {
					if a.Action == "xs_books" && a.Evidence > 0 {
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no learner checkpoint with the accept and the pending impression in %s while serving (last read: %v)", file, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
