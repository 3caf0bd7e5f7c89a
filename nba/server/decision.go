package server

import (
	"crypto/rand"
	"encoding/binary"
)

// DecisionIDs issues decision ids in the server's format (32 hex digits: a
// random 64-bit prefix, then a counter) for decisions made outside a
// Server. It is not safe for concurrent use.
type DecisionIDs struct {
	prefix, n uint64
}

// NewDecisionIDs returns a DecisionIDs with a fresh random prefix.
func NewDecisionIDs() *DecisionIDs {
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails on supported platforms
	return &DecisionIDs{prefix: binary.LittleEndian.Uint64(seed[:])}
}

// Next returns the next id.
func (d *DecisionIDs) Next() string {
	d.n++
	return string(appendDecisionID(nil, d.prefix, d.n))
}

// ResetResponse empties resp for the next Decide, keeping the capacity of
// its slices, as the server does between decisions.
func ResetResponse(resp *DecideResponse) { resp.reset() }
