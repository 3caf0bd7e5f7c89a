//go:build !race

package scorecache

const raceEnabled = false
