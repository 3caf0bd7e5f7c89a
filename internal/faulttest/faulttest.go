// Package faulttest holds the fault injections several packages' tests
// share: a child process killed with SIGKILL at a random point of its
// work, and a full disk on a real tmpfs. It is for tests only.
package faulttest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// KillChild runs the test binary again as a child with env ("NAME=value")
// added to its environment, waits for the child to print "ready\n", lets
// it work for a random time up to maxDelay (drawn from rnd), kills it with
// SIGKILL and returns the whole lines it printed after "ready" (a last
// line cut by the kill is dropped). The child is expected to run until
// killed; one that exits by itself fails t with its stderr. The test
// binary's TestMain must recognise env and run the child's work.
func KillChild(t testing.TB, env string, maxDelay time.Duration, rnd *rand.Rand) [][]byte {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	ready := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		signalled := false
		for {
			n, err := out.Read(buf)
			got = append(got, buf[:n]...)
			if !signalled && bytes.HasPrefix(got, []byte("ready\n")) {
				close(ready)
				signalled = true
			}
			if err != nil {
				if !signalled {
					close(ready)
				}
				return
			}
		}
	}()
	<-ready
	time.Sleep(time.Duration(rnd.Int64N(int64(maxDelay) + 1)))
	cmd.Process.Signal(syscall.SIGKILL)
	<-readDone
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child did not die by the signal: %v: %s", err, stderr.Bytes())
	}
	if !bytes.HasPrefix(got, []byte("ready\n")) {
		t.Fatalf("child never said ready: %q: %s", got, stderr.Bytes())
	}
	lines := bytes.Split(got, []byte("\n"))
	return lines[1 : len(lines)-1] // "ready", and a possibly cut last line
}

// MountTmpfs mounts a tmpfs of size bytes on a new directory and returns
// it; it is unmounted when t ends (cleanups run last registered first, so
// a process started after this call is stopped before the unmount).
// Without the permission it skips, except in CI (env CI set), where it
// fails.
func MountTmpfs(t testing.TB, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot mount a tmpfs (needed in CI): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (run as root to test a full disk): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("cannot unmount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// FillDisk writes a file in dir until the disk is full, then frees spare
// bytes of it; it returns the file's path (remove it to free the disk).
func FillDisk(t testing.TB, dir string, spare int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(max(0, n-spare)); err != nil {
		t.Fatal(err)
	}
	return path
}
