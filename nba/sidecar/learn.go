package sidecar

import (
	"errors"
	"os"
	"path/filepath"
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

// pending tracks impressions awaiting an outcome. It is bounded; when full,
// the oldest impression is observed as a negative early.
type pending struct {
	mu      sync.Mutex
	max     int
	at      map[pendingKey]time.Time
	evicted uint64
	expired uint64
}

func (p *pending) add(k pendingKey, at time.Time) (old pendingKey, evicted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.at[k]; ok {
		return old, false
	}
	if len(p.at) >= p.max {
		// Evict the oldest: O(n), but only when the bound is hit.
		var oldest time.Time
		for key, t := range p.at {
			if oldest.IsZero() || t.Before(oldest) {
				old, oldest = key, t
			}
		}
		delete(p.at, old)
		p.evicted++
		evicted = true
	}
	p.at[k] = at
	return old, evicted
}

// take removes k and reports whether it was pending.
func (p *pending) take(k pendingKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.at[k]; !ok {
		return false
	}
	delete(p.at, k)
	return true
}

// expire removes and returns the impressions shown before cutoff.
func (p *pending) expire(cutoff time.Time) []pendingKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []pendingKey
	for k, t := range p.at {
		if t.Before(cutoff) {
			out = append(out, k)
			delete(p.at, k)
		}
	}
	p.expired += uint64(len(out))
	return out
}

func (p *pending) stats() (n int, evicted, expired uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.at), p.evicted, p.expired
}

// learnFromFeedback feeds one feedback to the engine's online models.
func (s *Sidecar) learnFromFeedback(fb *server.Feedback, actionID string) {
	if !s.engine.Catalog().Learning() {
		return
	}
	k := pendingKey{customer: fb.CustomerID, action: actionID}
	switch fb.Outcome {
	case server.OutcomeImpression:
		if old, evicted := s.pending.add(pendingKey{customer: clone(k.customer), action: clone(k.action)}, fb.TS); evicted {
			s.observe(old.customer, old.action, 0, fb.TS)
		}
	case server.OutcomeAccept, server.OutcomeConvert:
		s.pending.take(k)
		s.observe(k.customer, k.action, 1, fb.TS)
	case server.OutcomeReject, server.OutcomeDismiss:
		if s.pending.take(k) {
			s.observe(k.customer, k.action, 0, fb.TS)
		}
	}
}

func (s *Sidecar) observe(customer, action string, reward float64, at time.Time) {
	if err := s.engine.Observe(customer, action, reward, at); err != nil && !errors.Is(err, nba.ErrLearningOff) {
		s.observeErrors.Add(1)
	}
}

// learnLoop closes response windows and checkpoints the online models until
// stop is closed.
func (s *Sidecar) learnLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	sweep := time.NewTicker(min(s.cfg.ResponseWindow/4, time.Minute))
	checkpoint := time.NewTicker(s.cfg.CheckpointEvery)
	defer sweep.Stop()
	defer checkpoint.Stop()
	for {
		select {
		case <-stop:
			return
		case <-sweep.C:
			now := s.now()
			for _, k := range s.pending.expire(now.Add(-s.cfg.ResponseWindow)) {
				s.observe(k.customer, k.action, 0, now)
			}
		case <-checkpoint.C:
			if err := s.saveLearner(); err != nil {
				s.log.Warn("cannot checkpoint online models", "error", err)
			}
		}
	}
}

// learnerFile holds the online models' checkpoint.
func (s *Sidecar) learnerFile() string { return filepath.Join(s.cfg.StateDir, "learner.bin") }

// saveLearner writes the online models' checkpoint atomically.
func (s *Sidecar) saveLearner() error {
	if !s.engine.Catalog().Learning() {
		return nil
	}
	data, err := s.engine.MarshalLearner()
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
	return d.Sync()
}

// loadLearner restores the online models from their checkpoint, if any.
func (s *Sidecar) loadLearner() {
	data, err := os.ReadFile(s.learnerFile())
	if err != nil {
		return
	}
	if err := s.engine.UnmarshalLearner(data); err != nil {
		s.log.Warn("cannot restore online models; starting from the priors", "error", err)
	}
}

func clone(s string) string { return string(append([]byte(nil), s...)) }
