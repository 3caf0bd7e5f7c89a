//go:build race

package snapshot

// raceEnabled: the race detector allocates, so allocation tests skip.
const raceEnabled = true
