//go:build race

package scorecache

// raceEnabled: the race detector allocates, so allocation tests skip.
const raceEnabled = true
