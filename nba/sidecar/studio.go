package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"nba/cache/snapshot"
	"nba/nba"
	"nba/nba/server"
)

// The studio's what-ifs and candidate bundle (server.Studio). A candidate
// is a second bundle loaded beside the live one, checked as a reload
// checks a bundle, that only ever decides dry runs for the studio's
// explorer: it reads the same customer state as the live bundle (through
// its own snapshot), records nothing, learns nothing, and is never
// served to the decision API. Its online models start from the live
// ones' posteriors at the time it was loaded when their features agree,
// from their priors otherwise.

var _ server.Studio = (*Sidecar)(nil)

// candidate is a loaded candidate bundle; immutable.
type candidate struct {
	name     string
	parts    *parts
	snap     *snapshot.Snapshot
	engine   *nba.Engine
	loadedAt time.Time
	learning string // where its online models started from
}

// LoadCandidate loads the bundle in fsys as the studio's candidate, in
// place of any before. It is checked as a reload is (manifest, models,
// catalog, snapshot, and the same live profile as the state was opened
// with); on error the candidate before, if any, stays.
func (s *Sidecar) LoadCandidate(fsys fs.FS, name string) error {
	c, err := s.loadCandidate(fsys, name)
	if err != nil {
		return fmt.Errorf("cannot load candidate bundle %s: %w", name, err)
	}
	s.candidate.Store(c)
	s.log.Info("candidate bundle loaded for the studio", "bundle", name, "version", c.parts.version,
		"catalog", c.parts.catalog.Version(), "snapshot", c.snap.Version(), "learning", c.learning)
	return nil
}

func (s *Sidecar) loadCandidate(fsys fs.FS, name string) (*candidate, error) {
	p, err := loadParts(fsys, s.state)
	if err != nil {
		return nil, err
	}
	if !sameProfile(s.state, s.parts.Load().manifest, p.manifest) {
		return nil, errors.New("profile fields and event mappings differ from the live bundle's: a candidate must read the same customer state")
	}
	snap, err := readSnapshot(fsys, p)
	if err == nil {
		// The checks of a first load (schema, rows).
		err = snapshot.NewStore(p.snapshotConfig()).Swap(snap)
	}
	if err != nil {
		return nil, err
	}
	cust := &customers{state: s.state}
	cust.binding.Store(newBinding(snap, p.src))
	eng, err := nba.NewEngine(nba.Config{Catalog: p.catalog, Customers: cust, DecisionMemory: -1})
	if err != nil {
		return nil, err
	}
	c := &candidate{name: name, parts: p, snap: snap, engine: eng, loadedAt: s.now(), learning: "none"}
	if p.catalog.Learning() {
		c.learning = "priors"
		if ck, err := s.engine.MarshalLearner(); err == nil && ck != nil && eng.UnmarshalLearner(ck) == nil {
			c.learning = "live posteriors at load"
		}
	}
	return c, nil
}

// DecideWhatIf implements server.Studio.
func (s *Sidecar) DecideWhatIf(req *server.DecideRequest, w *server.WhatIf, resp *server.DecideResponse) error {
	if !req.DryRun {
		return server.Invalidf("a what-if needs dry_run")
	}
	eng, bundle := s.engine, ""
	if w.Candidate {
		c := s.candidate.Load()
		if c == nil {
			return server.NotFoundf("no candidate bundle: start nba serve with -studio.candidate DIR")
		}
		eng, bundle = c.engine, c.parts.version
	}
	// A reload between compiling and deciding makes the overrides stale:
	// compile them again against the new catalog.
	for attempt := 0; ; attempt++ {
		cat := eng.Catalog()
		list := make([]nba.ActionOverride, 0, len(w.Actions))
		for _, a := range w.Actions {
			if w.Candidate && cat.Action(a.ID) == nil {
				continue // the page sends one what-if to both bundles: an action the candidate lacks has nothing to change
			}
			list = append(list, nba.ActionOverride{Action: a.ID, Lever: a.Lever, Weight: a.Weight, Tier: a.Tier})
		}
		ov, err := cat.CompileOverrides(list)
		if err != nil {
			return server.InvalidOverridef("%v", err)
		}
		*resp = server.DecideResponse{Actions: resp.Actions[:0], Withheld: resp.Withheld[:0], Candidates: resp.Candidates[:0]}
		err = s.decideBy(eng, bundle, req, resp, ov, w.Seed, false)
		if errors.Is(err, nba.ErrStaleOverrides) && attempt < 3 {
			continue
		}
		return err
	}
}

// AppendCandidate implements server.Studio.
func (s *Sidecar) AppendCandidate(dst []byte) ([]byte, error) {
	c := s.candidate.Load()
	if c == nil {
		return append(dst, `{"loaded":false}`...), nil
	}
	b, err := json.Marshal(map[string]any{"loaded": true,
		"name": c.name, "loaded_at": c.loadedAt.UTC().Format(time.RFC3339), "learning": c.learning,
		"versions": map[string]string{"bundle": c.parts.version, "catalog": c.parts.catalog.Version(),
			"snapshot": c.snap.Version()},
		"actions": len(c.parts.catalog.Actions()),
	})
	return append(dst, b...), err
}

// The studio's funnel samples the snapshot's first customers.
var _ server.FunnelSample = (*Sidecar)(nil)

// FirstCustomerIDs returns the ids of the first n customers of the served
// snapshot, in its order (all of them when it has fewer): the sample of
// the studio's population funnel and "nba funnel". Unlike CustomerIDs it
// copies only the n ids asked for.
func (s *Sidecar) FirstCustomerIDs(n int) []string {
	snap := s.snaps.Current()
	ids := make([]string, max(0, min(n, snap.Len())))
	for i := range ids {
		ids[i] = snap.ID(i)
	}
	return ids
}
