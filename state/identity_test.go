package state_test

import (
	"testing"

	"nba/state"
	"nba/state/identitytest"
	"nba/state/wal"
)

// TestIdentity runs the identity behaviour table against the embedded
// store.
func TestIdentity(t *testing.T) {
	identitytest.Run(t, func(t *testing.T, cfg state.Config) state.IdentityBackend {
		cfg.WAL = wal.Config{Dir: t.TempDir()}
		s, err := state.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
