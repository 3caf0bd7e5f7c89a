package sidecar

import "context"

// prefetcher is a state backend that reads many customers in one round
// trip (the Redis backend); the embedded store reads in memory and has no
// need to.
type prefetcher interface {
	Prefetch(ctx context.Context, customers []string) error
}

// Prefetch reads the live state of customers about to be decided, so that
// their decisions' loads do not each take a round trip to a shared state
// backend (the batch run calls it per chunk). With the embedded state it
// does nothing. An error is not fatal: a customer not prefetched is read
// by its decision.
func (s *Sidecar) Prefetch(ctx context.Context, customers []string) error {
	if p, ok := unwrapState(s.state).(prefetcher); ok {
		return p.Prefetch(ctx, customers)
	}
	return nil
}
