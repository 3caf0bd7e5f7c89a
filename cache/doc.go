// Package cache holds customer state in memory: feature snapshots, the live
// profile overlay, contact history and journey state, and their durability.
// Its sub-packages do the work; this package only documents the layout.
package cache
