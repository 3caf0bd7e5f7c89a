//go:build race

package sidecar

// raceEnabled skips allocation budgets: the race detector allocates, and
// sync.Pool drops entries at random under it.
const raceEnabled = true
