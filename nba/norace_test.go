//go:build !race

package nba

// RaceEnabled: see race_test.go.
const RaceEnabled = false
