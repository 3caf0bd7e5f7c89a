package sidecar

import (
	"nba/nba/eventstream"
	"nba/nba/metrics"
)

// startEventStream starts consuming Config.EventStream when a stream is
// named: its entries are applied by ApplyEvent, as POST /v1/events is. The
// stream needs only a Redis URL: the customer state may be embedded.
func (s *Sidecar) startEventStream() error {
	cfg := s.cfg.EventStream
	if cfg.Stream == "" {
		return nil
	}
	if cfg.URL == "" {
		cfg.URL = s.cfg.StateRedis
	}
	cfg.Apply = s.ApplyEvent
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	if cfg.Now == nil {
		cfg.Now = s.now
	}
	c, err := eventstream.Start(cfg)
	if err != nil {
		return err
	}
	s.stream = c
	return nil
}

// stopEventStream ends the consumer's loop; Close calls it before the
// state closes, so no entry is applied to a closed state.
func (s *Sidecar) stopEventStream() {
	if s.stream != nil {
		s.stream.Stop()
	}
}

// EventStreamStats returns the event stream consumer's counters; ok is
// false when no stream is consumed.
func (s *Sidecar) EventStreamStats() (st eventstream.Stats, ok bool) {
	if s.stream == nil {
		return st, false
	}
	return s.stream.Stats(), true
}

func (s *Sidecar) registerStreamMetrics(set *metrics.Set) error {
	if s.stream == nil {
		return nil
	}
	return s.stream.RegisterMetrics(set)
}
