package sidecar

import (
	"nba/cache/scorecache"
	"nba/nba"
)

// scores adapts the score cache to the engine: the key's Inputs hash stands
// in for the overlay version (it covers snapshot, live profile and context
// values the model reads).
type scores struct{ c *scorecache.Cache }

func (s scores) GetScores(k *nba.ScoreKey) ([]float64, bool) {
	return s.c.Get(scorecache.Key{Customer: k.Customer, Overlay: k.Inputs, Model: k.Model})
}

func (s scores) SetScores(k *nba.ScoreKey, v []float64) {
	s.c.Set(scorecache.Key{Customer: k.Customer, Overlay: k.Inputs, Model: k.Model}, v)
}
