package sidecar

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"nba/nba"
	"nba/nba/server"
	redisstate "nba/state/redis"
)

// Learning shared across replicas (Config.StateRedis set): every sidecar on
// one Redis learns the same online models.
//
//   - A learning decision's features (what the decision memory holds) are
//     also written to Redis under its decision id, with a TTL of the
//     response window plus ten minutes, by a background writer fed through
//     a bounded queue (a full queue drops the write, counted): an outcome
//     reaching a replica whose memory does not hold the decision reads them
//     from Redis (hits and misses counted).
//   - Observations are not applied where they are computed: the replica
//     receiving an outcome computes the observation (features and offset)
//     and appends it to one Redis Stream; every replica, itself included,
//     applies the stream in its order from the last id it applied. The
//     online update is deterministic, so replicas that applied the same
//     entries hold the same posteriors.
//   - Impressions awaiting an outcome are kept in Redis, not per replica:
//     an outcome or a sweep after the response window removes one with a
//     script, and only the replica whose removal succeeded publishes its
//     observation; so the "ignored" negative is produced once, by whichever
//     replica's sweep comes first, even when the replica that received the
//     impression has gone.
//   - The learner checkpoint lives in Redis with the stream id it covers,
//     written every Config.LearnCheckpointEvery by whichever replica has
//     applied a later id (compare-and-set on that id). A starting replica
//     restores it, replays the stream after it, then follows the stream.
//
// Costs and limits: an outcome costs one or two Redis round trips on the
// feedback path after the state write (take the pending impression, append
// the observation; a features read when the local memory misses). While
// Redis is unreachable, observations cannot be published: they are lost
// and counted (publish_errors), as are impressions not recorded. A replica
// learns its own observations only once the stream returns them
// (milliseconds). The stream is trimmed at about 1,000,000 entries: a
// replica whose starting point was trimmed has missed observations, which
// is logged and counted (trimmed_gaps).

// learnShareQueue bounds the decision feature writes waiting to be sent.
const learnShareQueue = 1 << 14

// decisionBatch is the most decision feature writes sent in one round trip.
const decisionBatch = 128

// learnShareTimeout bounds one Redis call of the shared learning.
const learnShareTimeout = 2 * time.Second

type decisionWrite struct {
	id  string
	key uint64
}

// learnShare is the shared learning of one sidecar; nil without Redis.
type learnShare struct {
	s         *Sidecar
	ls        *redisstate.LearnStream
	decisions chan decisionWrite
	cancel    context.CancelFunc
	decStop   chan struct{} // closed by close: the writer drains the queue and returns
	decDone   chan struct{}
	wg        sync.WaitGroup

	mu          sync.Mutex // guards last and checkpointed, for the applier and Close
	last        string     // last stream id applied
	checkpointd string     // last stream id checkpointed by this replica

	decWritten, decDropped, decWriteErrors  atomic.Uint64
	localHits, redisHits, redisMisses       atomic.Uint64
	published, publishErrors, pendingErrors atomic.Uint64
	applied, applyErrors, readErrors        atomic.Uint64
	checkpoints, checkpointErrors           atomic.Uint64
	replayed, trimmedGaps                   atomic.Uint64
	restoredFrom                            atomic.Pointer[string]
}

// openLearnShare connects the shared learning, restores the checkpoint from
// Redis, replays the stream after it and starts the background work.
func (s *Sidecar) openLearnShare() error {
	ls, err := redisstate.OpenLearn(redisstate.LearnConfig{URL: s.cfg.StateRedis, DecisionTTL: s.cfg.ResponseWindow + 10*time.Minute,
		MaxPending: int64(s.cfg.MaxPending)})
	if err != nil {
		return err
	}
	sh := &learnShare{s: s, ls: ls, decisions: make(chan decisionWrite, learnShareQueue), last: "0-0",
		decStop: make(chan struct{}), decDone: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if id, data, ok, err := ls.LoadCheckpoint(ctx); err != nil {
		ls.Close()
		return err
	} else if ok && s.engine.Catalog().Learning() {
		if _, err := s.engine.RestoreLearner(data); err != nil {
			s.log.Warn("cannot restore the shared online models; replaying the whole stream", "error", err)
		} else {
			sh.last, sh.checkpointd = id, id
			sh.restoredFrom.Store(&id)
		}
	}
	if gap, err := ls.Trimmed(ctx, sh.last); err == nil && gap {
		sh.trimmedGaps.Add(1)
		s.log.Warn("the learning stream was trimmed past the checkpoint: observations in between are missed", "checkpoint", sh.last)
	}
	for {
		n, err := sh.applyBatch(ctx, 0)
		if err != nil {
			ls.Close()
			return err
		}
		sh.replayed.Add(uint64(n))
		if n == 0 {
			break
		}
	}
	ctx, sh.cancel = context.WithCancel(context.Background())
	sh.wg.Add(1)
	go sh.writeDecisions()
	go sh.follow(ctx)
	s.share = sh
	return nil
}

// close stops the background work: the decision features queued are
// written (for at most learnShareTimeout), and the applier checkpoints
// what it applied.
func (sh *learnShare) close() {
	close(sh.decStop)
	<-sh.decDone
	sh.cancel()
	sh.wg.Wait()
	sh.ls.Close()
}

// rememberDecision queues the write of a decision's features to Redis; it
// never blocks (a full queue drops the write, counted). d is the decision:
// one that gave no action left nothing in the engine's memory (as
// Engine.remember decides; nor does any with -learn.decisionMemory
// negative), so there is nothing to write and nothing to count as dropped.
func (sh *learnShare) rememberDecision(id string, key uint64, d *nba.Decision) {
	if key == 0 || len(d.Actions) == 0 || sh.s.cfg.DecisionMemory < 0 || !sh.s.engine.Catalog().Learning() {
		return
	}
	select {
	case sh.decisions <- decisionWrite{id: clone(id), key: key}:
	default:
		sh.decDropped.Add(1)
	}
}

func (sh *learnShare) writeDecisions() {
	defer close(sh.decDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		batch []decisionWrite
		ids   []string
		data  [][]byte
	)
	draining := false
	for {
		var w decisionWrite
		if draining {
			select {
			case w = <-sh.decisions:
			default:
				return
			}
		} else {
			select {
			case w = <-sh.decisions:
			case <-sh.decStop:
				// Write what is queued, within one timeout.
				var stop context.CancelFunc
				ctx, stop = context.WithTimeout(ctx, learnShareTimeout)
				defer stop()
				draining = true
				continue
			}
		}
		// Take what else is queued, up to a batch: one round trip.
		batch = append(batch[:0], w)
		for len(batch) < decisionBatch {
			select {
			case w := <-sh.decisions:
				batch = append(batch, w)
				continue
			default:
			}
			break
		}
		ids, data = ids[:0], data[:0]
		for _, w := range batch {
			d, ok := sh.s.engine.RememberedDecision(w.key)
			if !ok {
				sh.decDropped.Add(1) // overwritten in the memory already, or the catalog changed
				continue
			}
			b, err := d.AppendBinary(nil)
			if err != nil {
				sh.decWriteErrors.Add(1)
				continue
			}
			ids, data = append(ids, w.id), append(data, b)
		}
		if len(ids) == 0 {
			continue
		}
		c, cancel := context.WithTimeout(ctx, learnShareTimeout)
		n, _ := sh.ls.PutDecisions(c, ids, data)
		cancel()
		sh.decWritten.Add(uint64(n))
		sh.decWriteErrors.Add(uint64(len(ids) - n))
	}
}

// follow applies the stream as it grows, and checkpoints.
func (sh *learnShare) follow(ctx context.Context) {
	defer sh.wg.Done()
	tick := time.NewTicker(sh.s.cfg.LearnCheckpointEvery)
	defer tick.Stop()
	for ctx.Err() == nil {
		if _, err := sh.applyBatch(ctx, time.Second); err != nil && ctx.Err() == nil {
			sh.readErrors.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		select {
		case <-tick.C:
			sh.checkpoint()
		default:
		}
	}
	sh.checkpoint()
}

// applyBatch reads the entries after the last one applied (waiting up to
// block, none: do not wait) and applies them in order.
func (sh *learnShare) applyBatch(ctx context.Context, block time.Duration) (int, error) {
	sh.mu.Lock()
	last := sh.last
	sh.mu.Unlock()
	es, err := sh.ls.Read(ctx, last, 512, block)
	if err != nil {
		return 0, err
	}
	for _, e := range es {
		var o nba.Observation
		if err := o.UnmarshalBinary(e.Data); err != nil {
			sh.applyErrors.Add(1)
		} else if err := sh.s.engine.Apply(o); err != nil && !errors.Is(err, nba.ErrLearningOff) {
			sh.applyErrors.Add(1)
		} else {
			sh.applied.Add(1)
		}
		last = e.ID
	}
	sh.mu.Lock()
	sh.last = last
	sh.mu.Unlock()
	return len(es), nil
}

// checkpoint stores the online models in Redis with the stream id they
// cover, when this replica applied entries since its last one and no
// replica stored a later one. Called by the applier only, so the models
// are exactly those of the id.
func (sh *learnShare) checkpoint() {
	sh.mu.Lock()
	last, done := sh.last, sh.checkpointd
	sh.mu.Unlock()
	if last == done || !sh.s.engine.Catalog().Learning() {
		return
	}
	data, err := sh.s.engine.MarshalLearner()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), learnShareTimeout)
		_, err = sh.ls.SaveCheckpoint(ctx, last, data)
		cancel()
	}
	if err != nil {
		sh.checkpointErrors.Add(1)
		sh.s.log.Warn("cannot checkpoint the shared online models", "error", err)
		return
	}
	sh.checkpoints.Add(1)
	sh.mu.Lock()
	sh.checkpointd = last
	sh.mu.Unlock()
}

// learnFromFeedback is Sidecar.learnFromFeedback with the impressions
// awaiting an outcome, and the observations, shared on Redis.
func (sh *learnShare) learnFromFeedback(fb *server.Feedback, actionID string) {
	ctx, cancel := context.WithTimeout(context.Background(), learnShareTimeout)
	defer cancel()
	switch fb.Outcome {
	case server.OutcomeImpression:
		evicted, err := sh.ls.AddPending(ctx, fb.CustomerID, actionID, fb.DecisionID, fb.TS)
		if err != nil {
			sh.pendingErrors.Add(1)
			return
		}
		for _, p := range evicted {
			sh.publish(ctx, p.Customer, p.Action, p.DecisionID, 0, fb.TS)
		}
	case server.OutcomeAccept, server.OutcomeConvert:
		decision := fb.DecisionID
		if d, ok, err := sh.ls.TakePending(ctx, fb.CustomerID, actionID); err != nil {
			sh.pendingErrors.Add(1)
		} else if ok && decision == "" {
			decision = d
		}
		sh.publish(ctx, fb.CustomerID, actionID, decision, 1, fb.TS)
	case server.OutcomeReject, server.OutcomeDismiss:
		d, ok, err := sh.ls.TakePending(ctx, fb.CustomerID, actionID)
		if err != nil {
			sh.pendingErrors.Add(1)
			return
		}
		if ok {
			if fb.DecisionID != "" {
				d = fb.DecisionID
			}
			sh.publish(ctx, fb.CustomerID, actionID, d, 0, fb.TS)
		}
	}
}

// expirePending publishes as ignored the impressions whose response window
// closed by now and that this replica's sweep removed.
func (sh *learnShare) expirePending(now time.Time) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), learnShareTimeout)
		ps, err := sh.ls.ExpirePending(ctx, now.Add(-sh.s.cfg.ResponseWindow), 256)
		if err != nil {
			cancel()
			sh.pendingErrors.Add(1)
			return
		}
		for _, p := range ps {
			sh.publish(ctx, p.Customer, p.Action, p.DecisionID, 0, now)
		}
		cancel()
		if len(ps) < 256 {
			return
		}
	}
}

// recall returns what the decision saw for the action: from the local
// decision memory, else from the features another replica wrote.
func (sh *learnShare) recall(ctx context.Context, decisionID, actionID string) *nba.Recalled {
	if decisionID == "" {
		return nil
	}
	if r, ok := sh.s.engine.Recall(sh.s.rememberKey(decisionID), actionID); ok {
		sh.localHits.Add(1)
		return r
	}
	data, ok, err := sh.ls.GetDecision(ctx, decisionID)
	var d nba.DecisionFeatures
	if err == nil && ok {
		err = d.UnmarshalBinary(data)
	}
	if err == nil && ok {
		if r, ok := sh.s.engine.RecallFeatures(d, actionID); ok {
			sh.redisHits.Add(1)
			return r
		}
	}
	sh.redisMisses.Add(1)
	return nil
}

// publish computes an observation and appends it to the stream; it is
// learned when the stream returns it.
func (sh *learnShare) publish(ctx context.Context, customer, action, decisionID string, reward float64, at time.Time) {
	o, err := sh.s.engine.Observation(sh.recall(ctx, decisionID, action), customer, action, reward, at)
	if err != nil {
		if !errors.Is(err, nba.ErrLearningOff) {
			sh.s.observeErrors.Add(1)
		}
		return
	}
	data, err := o.AppendBinary(nil)
	if err == nil {
		_, err = sh.ls.Publish(ctx, data)
	}
	if err != nil {
		sh.publishErrors.Add(1)
		return
	}
	sh.published.Add(1)
}

// stats is the shared learning's part of /admin/status.
func (sh *learnShare) stats() map[string]any {
	sh.mu.Lock()
	last, ck := sh.last, sh.checkpointd
	sh.mu.Unlock()
	st := map[string]any{
		"decisions_written": sh.decWritten.Load(), "decisions_dropped": sh.decDropped.Load(), "decision_write_errors": sh.decWriteErrors.Load(),
		"recall_local_hits": sh.localHits.Load(), "recall_redis_hits": sh.redisHits.Load(), "recall_redis_misses": sh.redisMisses.Load(),
		"published": sh.published.Load(), "publish_errors": sh.publishErrors.Load(), "pending_errors": sh.pendingErrors.Load(),
		"applied": sh.applied.Load(), "apply_errors": sh.applyErrors.Load(), "read_errors": sh.readErrors.Load(),
		"replayed_at_start": sh.replayed.Load(), "trimmed_gaps": sh.trimmedGaps.Load(),
		"checkpoints": sh.checkpoints.Load(), "checkpoint_errors": sh.checkpointErrors.Load(),
		"last_applied": last, "last_checkpointed": ck,
	}
	if id := sh.restoredFrom.Load(); id != nil {
		st["restored_from"] = *id
	}
	if n, err := func() (int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return sh.ls.PendingLen(ctx)
	}(); err == nil {
		st["pending_impressions"] = n
	}
	return st
}
