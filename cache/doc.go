// Package cache holds what is read from memory and rebuilt when lost:
// feature snapshots (snapshot) and model scores (scorecache). The live
// customer state (profile overlay, contact history, journeys) is the
// source of truth, not a cache: it lives in package nba/state.
// Its sub-packages do the work; this package only documents the layout.
package cache
