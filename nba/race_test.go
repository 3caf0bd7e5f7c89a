//go:build race

package nba

// RaceEnabled: sync.Pool drops objects at random under the race detector,
// so allocation tests are skipped.
const RaceEnabled = true
