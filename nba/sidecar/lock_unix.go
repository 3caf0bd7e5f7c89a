//go:build unix

package sidecar

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile is the file in the state directory a Sidecar holds an exclusive
// lock on while open, so that a second process (or a second Open in the
// same process) cannot append to and compact the same state log.
const LockFile = "lock"

// lockDir takes the exclusive lock of dir. The kernel releases it when the
// returned file is closed or the process exits, however it exits (kill -9
// included), so a stale lock file never blocks a restart.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot lock state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %q is in use by another nba process", dir)
		}
		return nil, fmt.Errorf("cannot lock state directory %q: %w", dir, err)
	}
	return f, nil
}
