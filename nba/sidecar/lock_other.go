//go:build !unix

package sidecar

import "os"

// LockFile is the file in the state directory a Sidecar holds an exclusive
// lock on while open. Without flock (non-Unix systems) it is created but not
// locked: running two processes on one state directory is then not refused.
const LockFile = "lock"

func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(dir+string(os.PathSeparator)+LockFile, os.O_RDWR|os.O_CREATE, 0o600)
}
