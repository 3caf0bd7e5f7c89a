//go:build race

package main

// raceEnabled: the tests run with -race, so TestMain builds the nba binary
// under test with -race too, and a data race in the process fails the test.
const raceEnabled = true
