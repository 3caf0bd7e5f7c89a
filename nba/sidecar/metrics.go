package sidecar

import (
	"context"
	"io/fs"
	"time"

	"nba/nba"
	"nba/nba/metrics"
)

// maxDecisionSeries bounds the (action, channel) series of
// nba_decisions_total; beyond it decisions count in the overflow series.
const maxDecisionSeries = 20000

// sidecarMetrics are the metrics the sidecar updates on the request path.
type sidecarMetrics struct {
	decisions *metrics.CounterVec
	controls  *metrics.Counter
}

// counters caches, per catalog, the decision counter of each action and
// channel so the request path does no label lookup.
type counters struct {
	byAction map[*nba.Action][]*metrics.Counter // indexed by channel
}

func (m *sidecarMetrics) forCatalog(c *nba.Catalog) *counters {
	if m == nil {
		return nil
	}
	out := &counters{byAction: map[*nba.Action][]*metrics.Counter{}}
	acts := c.Actions()
	for i := range acts {
		a := &acts[i]
		cs := make([]*metrics.Counter, len(c.Channels()))
		for ch, name := range c.Channels() {
			cs[ch] = m.decisions.With(a.ID, name)
		}
		out.byAction[a] = cs
	}
	return out
}

// RegisterMetrics registers the sidecar's metrics on set: decisions per
// action and channel, engine counters, snapshot age and size, reloads,
// customer-state and decision-log counters, fsync latency.
func (s *Sidecar) RegisterMetrics(set *metrics.Set) error {
	var err error
	m := &sidecarMetrics{}
	if m.decisions, err = set.NewCounterVec("nba_decisions_total", "Actions decided, by action and channel (control-group decisions excluded).",
		[]string{"action", "channel"}, maxDecisionSeries); err != nil {
		return err
	}
	if m.controls, err = set.NewCounter("nba_decisions_control_total", "Decisions withheld because the customer is in a control group."); err != nil {
		return err
	}
	engine := func(f func(nba.Stats) uint64) func() uint64 { return func() uint64 { return f(s.engine.Stats()) } }
	state := s.state
	type cf struct {
		name, help string
		f          func() uint64
	}
	for _, c := range []cf{
		{"nba_engine_decisions_total", "Decisions made by the engine.", engine(func(st nba.Stats) uint64 { return st.Decisions })},
		{"nba_engine_unknown_customers_total", "Decisions for customers without a profile (decided as anonymous).", engine(func(st nba.Stats) uint64 { return st.UnknownCustomers })},
		{"nba_engine_unknown_context_keys_total", "Request context keys the catalog does not declare (ignored).", engine(func(st nba.Stats) uint64 { return st.UnknownContextKeys })},
		{"nba_engine_channel_limited_total", "Decisions emptied by a channel contact limit.", engine(func(st nba.Stats) uint64 { return st.ChannelLimited })},
		{"nba_engine_fallbacks_total", "Decisions answered with the fallback action.", engine(func(st nba.Stats) uint64 { return st.Fallbacks })},
		{"nba_engine_stale_decisions_total", "Decisions made without the customer's live state (it could not be read): answered with \"state\":\"stale\", no contact policies or journey steps applied.", engine(func(st nba.Stats) uint64 { return st.Stale })},
		{"nba_engine_scored_total", "Candidate rows scored by a model.", engine(func(st nba.Stats) uint64 { return st.Scored })},
		{"nba_events_unknown_type_total", "Events of a type no profile mapping or journey names (refused, or recorded with -events.acceptUnknown).", s.eventsUnknown.Load},
		{"nba_reloads_total", "Successful bundle reloads.", s.reloads.Load},
		{"nba_reload_failures_total", "Failed bundle reloads (the last good bundle kept serving).", s.reloadFailures.Load},
		{"nba_journey_effects_dropped_total", "Journey steps not given because their move could not be written before the answer (state unavailable, or the journey still moved by concurrent decisions on the last attempt): journey steps fail closed.", s.effectsDropped.Load},
		{"nba_exact_reservations_total", "Reservations of exact caps made by decisions.", s.resv.made.Load},
		{"nba_exact_reservation_conflicts_total", "Reservations of exact caps refused because concurrent decisions took the slots first (the request was decided again).", s.resv.conflicts.Load},
		{"nba_exact_refused_total", "Actions not given because their exact caps could not be reserved (state unavailable, or slots still contended): exact caps fail closed.", s.resv.refused.Load},
		{"nba_journey_effects_conflicts_total", "Journey moves of decisions refused because the customer had moved on in the journey since the decision read it (another decision delivered the step first): the request was decided again.", s.effectsConflicts.Load},
		{"nba_journey_effects_failed_total", "Journey moves of decisions that could not be written (state unavailable): their steps were not given.", s.effectsFailed.Load},
		{"nba_snapshot_failures_total", "Rejected snapshot loads.", func() uint64 { return s.snaps.Status().Failures }},
		{"nba_state_contacts_total", "Contacts recorded in the customer state.", func() uint64 { return state.Stats().Contacts }},
		{"nba_state_events_total", "Events applied to live profiles.", func() uint64 { return state.Stats().Events }},
		{"nba_state_duplicates_total", "Feedback and events acknowledged but not applied: a retry whose event_id was remembered.", func() uint64 { return state.Stats().Duplicates }},
		{"nba_state_history_evicted_total", "Contacts dropped from bounded customer histories.", func() uint64 { return state.Stats().HistoryEvicted }},
		{"nba_state_log_appends_total", "Records acknowledged by the state log.", func() uint64 { return state.Stats().WAL.Appends }},
		{"nba_state_log_fsyncs_total", "Group commits (write and fsync) of the state log.", func() uint64 { return state.Stats().WAL.Fsyncs }},
		{"nba_state_log_rejected_total", "State log appends refused because the backlog was full.", func() uint64 { return state.Stats().WAL.Rejected }},
		{"nba_state_unavailable_total", "Writes of customer state refused because its log could not be written (feedback and events answered 503 state_unavailable).", func() uint64 { return state.Stats().Unavailable }},
		{"nba_state_log_write_errors_total", "Failed writes or fsyncs of the state log (a full disk, an I/O error).", func() uint64 { return state.Stats().WAL.WriteErrors }},
		{"nba_state_log_recoveries_total", "Times the state log healed after a failed write and took writes again.", func() uint64 { return state.Stats().WAL.Recoveries }},
		{"nba_state_customers_evicted_total", "Customers not in the snapshot whose live state was evicted (-state.maxCustomers).", func() uint64 { return state.Stats().CustomersEvicted }},
		{"nba_state_log_corrupt_records_total", "Damaged state log records found at start-up (skipped with -state.skipCorrupt).", func() uint64 {
			st := state.Stats()
			return st.WAL.CorruptRecords + st.ReplayCorrupt
		}},
	} {
		if err := set.NewCounterFunc(c.name, c.help, c.f); err != nil {
			return err
		}
	}
	type gf struct {
		name, help string
		f          func() float64
	}
	for _, g := range []gf{
		{"nba_snapshot_age_seconds", "Age of the served snapshot's data (now minus its as-of time).", func() float64 {
			return s.now().Sub(s.snaps.Status().AsOf).Seconds()
		}},
		{"nba_snapshot_customers", "Customers in the served snapshot.", func() float64 { return float64(s.snaps.Status().Rows) }},
		{"nba_snapshot_bytes", "Memory held by the served snapshot.", func() float64 { return float64(s.snaps.Status().Bytes) }},
		{"nba_state_customers", "Customers with live state.", func() float64 { return float64(state.Stats().Customers) }},
		{"nba_state_writable", "1 when customer state can be written, 0 while its log is failed (a full disk) and has not healed.", func() float64 {
			if state.Err() != nil {
				return 0
			}
			return 1
		}},
		{"nba_state_log_fsync_seconds_sum", "Total time spent writing and fsyncing the state log.", func() float64 { return state.Stats().WAL.FsyncSum.Seconds() }},
	} {
		if err := set.NewGaugeFunc(g.name, g.help, g.f); err != nil {
			return err
		}
	}
	if err := s.registerStreamMetrics(set); err != nil {
		return err
	}
	if s.scores != nil {
		sc := s.scores
		for _, c := range []cf{
			{"nba_scorecache_hits_total", "Score vectors found in the cache (the customer was not scored again).", func() uint64 { return sc.Stats().Hits }},
			{"nba_scorecache_misses_total", "Score cache lookups that missed.", func() uint64 { return sc.Stats().Misses }},
			{"nba_scorecache_sets_dropped_total", "Score vectors not cached: dropped under contention or refused by admission.", func() uint64 {
				st := sc.Stats()
				return st.SetsDropped + st.SetsRejected + st.SetsTooLarge
			}},
			{"nba_scorecache_sets_deferred_total", "Score vectors not cached because the customer was seen for the first time (the doorkeeper caches from the second decision on).",
				func() uint64 { return sc.Stats().SetsDeferred }},
		} {
			if err := set.NewCounterFunc(c.name, c.help, c.f); err != nil {
				return err
			}
		}
		if err := set.NewGaugeFunc("nba_scorecache_hit_ratio", "Score cache hits over lookups since start.", func() float64 {
			st := sc.Stats()
			if st.Hits+st.Misses == 0 {
				return 0
			}
			return float64(st.Hits) / float64(st.Hits+st.Misses)
		}); err != nil {
			return err
		}
	}
	if s.declog != nil {
		if err := set.NewCounterFunc("nba_decisionlog_dropped_total", "Decision-log records dropped because the queue was full.",
			func() uint64 { return s.declog.Stats().Dropped }); err != nil {
			return err
		}
	}
	s.metrics = m
	s.counters.Store(m.forCatalog(s.parts.Load().catalog))
	return nil
}

// count records a decision in the metrics.
func (s *Sidecar) count(c *nba.Catalog, channel string, d *nba.Decision) {
	if d.Control {
		if s.metrics != nil {
			s.metrics.controls.Inc()
		}
		return
	}
	cs := s.counters.Load()
	if cs == nil {
		return
	}
	ch := c.ChannelIndex(channel)
	for i := range d.Actions {
		if byCh := cs.byAction[d.Actions[i].Action]; ch >= 0 && ch < len(byCh) {
			byCh[ch].Inc()
		}
	}
}

// Watch reloads the bundle whenever one of its files changes (size or
// modification time), looking every interval, until ctx is done.
func (s *Sidecar) Watch(ctx context.Context, interval time.Duration) {
	last := s.fingerprint()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := s.fingerprint()
		if fp == last {
			continue
		}
		last = fp
		if err := s.Reload(ctx); err == nil {
			s.log.Info("bundle reloaded after a file change")
		}
	}
}

// fingerprint summarises the sizes and modification times of the bundle's
// files.
func (s *Sidecar) fingerprint() string {
	var b []byte
	_ = fs.WalkDir(s.cfg.Bundle, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			b = append(b, path...)
			b = fi.ModTime().AppendFormat(b, time.RFC3339Nano)
			b = append(b, byte(fi.Size()), byte(fi.Size()>>8), byte(fi.Size()>>16), byte(fi.Size()>>24), 0)
		}
		return nil
	})
	return string(b)
}
