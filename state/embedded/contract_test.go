package embedded_test

import (
	"testing"

	"nba/state"
	"nba/state/embedded"
	"nba/state/statetest"
	"nba/state/wal"
)

// TestContract runs the behaviour table every state backend passes against
// the embedded store.
func TestContract(t *testing.T) {
	statetest.Run(t, func(t *testing.T, cfg state.Config) state.Backend {
		cfg.WAL = wal.Config{Dir: t.TempDir()}
		s, err := embedded.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
