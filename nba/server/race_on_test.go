//go:build race

package server_test

// raceEnabled skips allocation budgets: the race detector allocates, and
// sync.Pool drops entries at random under it.
const raceEnabled = true
