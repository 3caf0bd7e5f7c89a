package sidecar

import "nba/nba/server"

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
