package sidecar

import (
	"errors"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"nba/nba"
	"nba/nba/server"
)

// Learning from feedback: an accept or convert is a positive observation of
// the action for the customer, a reject or dismiss a negative one. An
// impression that gets neither within the response window becomes a
// negative observation when the window closes. Clicks and impressions are
// not observations by themselves. Each shown action is observed at most
// once: the first outcome that decides it wins.

// pendingKey identifies one shown action awaiting its outcome.
type pendingKey struct{ customer, action string }

// pending tracks impressions awaiting an outcome, each with what its
// decision saw (nil when the decision memory no longer held it). It is
// bounded; when full, the oldest impression is observed as a negative
// early. It is saved with the learner checkpoint, so that a restart does
// not forget the negatives it owes while keeping later positives.
type pending struct {
	mu      sync.Mutex
	max     int
	at      map[pendingKey]pendingImpression
	evicted uint64
	expired uint64
	changes uint64 // additions and removals, to skip unchanged checkpoints
}

type pendingImpression struct {
	at  time.Time
	rec *nba.Recalled
}

// expiredImpression is an impression whose response window closed.
type expiredImpression struct {
	key pendingKey
	rec *nba.Recalled
	at  time.Time // when it was shown
}

func (p *pending) add(k pendingKey, at time.Time, rec *nba.Recalled) (old expiredImpression, evicted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.at[k]; ok {
		return old, false
	}
	if len(p.at) >= p.max {
		// Evict the oldest: O(n), but only when the bound is hit.
		var oldest time.Time
		for key, pi := range p.at {
			if oldest.IsZero() || pi.at.Before(oldest) {
				old, oldest = expiredImpression{key, pi.rec, pi.at}, pi.at
			}
		}
		delete(p.at, old.key)
		p.evicted++
		evicted = true
	}
	p.at[k] = pendingImpression{at: at, rec: rec}
	p.changes++
	return old, evicted
}

// list returns the pending impressions, for the learner checkpoint.
func (p *pending) list() []nba.PendingImpression {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]nba.PendingImpression, 0, len(p.at))
	for k, pi := range p.at {
		out = append(out, nba.PendingImpression{Customer: k.customer, Action: k.action, At: pi.at, Seen: pi.rec})
	}
	return out
}

// take removes k and reports whether it was pending, with what its
// decision saw.
func (p *pending) take(k pendingKey) (*nba.Recalled, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pi, ok := p.at[k]
	if !ok {
		return nil, false
	}
	delete(p.at, k)
	p.changes++
	return pi.rec, true
}

// expire removes and returns the impressions shown before cutoff, oldest
// first (ties by customer and action): online updates depend on their
// order, and this one does not depend on map order or restarts.
func (p *pending) expire(cutoff time.Time) []expiredImpression {
	p.mu.Lock()
	var out []expiredImpression
	for k, pi := range p.at {
		if pi.at.Before(cutoff) {
			out = append(out, expiredImpression{k, pi.rec, pi.at})
			delete(p.at, k)
		}
	}
	p.expired += uint64(len(out))
	p.changes += uint64(len(out))
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b expiredImpression) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if c := strings.Compare(a.key.customer, b.key.customer); c != 0 {
			return c
		}
		return strings.Compare(a.key.action, b.key.action)
	})
	return out
}

func (p *pending) stats() (n int, evicted, expired uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.at), p.evicted, p.expired
}

// learnFromFeedback feeds one feedback to the engine's online models, with
// the features its decision saw when the decision memory still holds them
// (looked up by the feedback's decision id when the impression arrives,
// then kept with the pending impression).
func (s *Sidecar) learnFromFeedback(fb *server.Feedback, actionID string) {
	if !s.engine.Catalog().Learning() {
		return
	}
	if s.share != nil {
		s.share.learnFromFeedback(fb, actionID)
		return
	}
	k := pendingKey{customer: fb.CustomerID, action: actionID}
	switch fb.Outcome {
	case server.OutcomeImpression:
		rec, _ := s.engine.Recall(s.rememberKey(fb.DecisionID), actionID)
		if old, evicted := s.pending.add(pendingKey{customer: clone(k.customer), action: clone(k.action)}, fb.TS, rec); evicted {
			s.observe(old.key.customer, old.key.action, old.rec, 0, fb.TS)
		}
	case server.OutcomeAccept, server.OutcomeConvert:
		rec, ok := s.pending.take(k)
		if !ok || rec == nil {
			rec, _ = s.engine.Recall(s.rememberKey(fb.DecisionID), actionID)
		}
		s.observe(k.customer, k.action, rec, 1, fb.TS)
	case server.OutcomeReject, server.OutcomeDismiss:
		if rec, ok := s.pending.take(k); ok {
			s.observe(k.customer, k.action, rec, 0, fb.TS)
		}
	}
}

// rememberKey is the decision memory's key of a decision id (0, "do not
// remember", for none).
func (s *Sidecar) rememberKey(decisionID string) uint64 {
	if decisionID == "" {
		return 0
	}
	return maphash.String(s.memSeed, decisionID) | 1
}

func (s *Sidecar) observe(customer, action string, rec *nba.Recalled, reward float64, at time.Time) {
	if err := s.engine.ObserveRecalled(rec, customer, action, reward, at); err != nil && !errors.Is(err, nba.ErrLearningOff) {
		s.observeErrors.Add(1)
	}
}

// learnLoop closes response windows and checkpoints the online models until
// stop is closed.
func (s *Sidecar) learnLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	sweep := time.NewTicker(min(s.cfg.ResponseWindow/4, time.Minute))
	checkpoint := time.NewTicker(s.cfg.LearnCheckpointEvery)
	defer sweep.Stop()
	defer checkpoint.Stop()
	for {
		select {
		case <-stop:
			return
		case <-sweep.C:
			s.expirePending(s.now())
		case <-checkpoint.C:
			if err := s.saveLearner(); err != nil {
				s.log.Warn("cannot checkpoint online models", "error", err)
			}
		}
	}
}

// expirePending learns from the impressions whose response window closed
// by now as ignored.
func (s *Sidecar) expirePending(now time.Time) {
	if s.share != nil {
		s.share.expirePending(now)
		return
	}
	for _, x := range s.pending.expire(now.Add(-s.cfg.ResponseWindow)) {
		s.observe(x.key.customer, x.key.action, x.rec, 0, now)
	}
}

// learnerFile holds the online models' checkpoint.
func (s *Sidecar) learnerFile() string { return filepath.Join(s.cfg.StateDir, "learner.bin") }

// saveLearner writes the online models' checkpoint, with the pending
// impressions, atomically (a temporary file renamed over the last one), so
// that nba replay and nba evaluate -learner can read it while the sidecar
// runs. It skips the write when nothing was learned and no impression came
// or went since the last one. Called from the learn loop, then from Close.
func (s *Sidecar) saveLearner() error {
	if !s.engine.Catalog().Learning() {
		return nil
	}
	observed := s.engine.LearnerStats().Observed
	s.pending.mu.Lock()
	changes := s.pending.changes
	s.pending.mu.Unlock()
	if s.learnerSaved && observed == s.savedObserved && changes == s.savedChanges {
		return nil
	}
	// The models first, then the pending impressions: an outcome takes
	// its impression from pending before it is learned, so it is in one
	// or the other, never in both (learned twice after a restart).
	data, err := s.engine.MarshalLearnerPending(s.pending.list)
	if err != nil {
		return err
	}
	tmp := s.learnerFile() + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.learnerFile()); err != nil {
		return err
	}
	// The rename is durable only once the directory is synced.
	d, err := os.Open(s.cfg.StateDir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return err
	}
	s.learnerSaved, s.savedObserved, s.savedChanges = true, observed, changes
	return nil
}

// loadLearner restores the online models and the pending impressions from
// their checkpoint, if any. Beyond MaxPending, the oldest are learned from
// as ignored, as when they arrived.
func (s *Sidecar) loadLearner() {
	data, err := os.ReadFile(s.learnerFile())
	if err != nil {
		return
	}
	pending, err := s.engine.RestoreLearner(data)
	if err != nil {
		s.log.Warn("cannot restore online models; starting from the priors", "error", err)
		return
	}
	for _, p := range pending { // oldest first
		if old, evicted := s.pending.add(pendingKey{customer: p.Customer, action: p.Action}, p.At, p.Seen); evicted {
			s.observe(old.key.customer, old.key.action, old.rec, 0, p.At)
		}
	}
}

func clone(s string) string { return string(append([]byte(nil), s...)) }
