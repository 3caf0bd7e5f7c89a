package wal

import (
	"errors"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faultyFile is a segment file whose writes or fsyncs fail while its fault
// is set: a write then persists the first half of its bytes, as a full disk
// does.
type faultyFile struct {
	*os.File
	fault *atomic.Pointer[error]
	sync  bool // the fault hits Sync, not Write
}

func (f faultyFile) Write(p []byte) (int, error) {
	if e := f.fault.Load(); e != nil && !f.sync {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: *e}
	}
	return f.File.Write(p)
}

func (f faultyFile) Sync() error {
	if e := f.fault.Load(); e != nil && f.sync {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: *e}
	}
	return f.File.Sync()
}

// TestFullDiskHeals is the regression test for a log that refused every
// append forever after one failed write: appends fail while the fault
// lasts, succeed again by themselves once it is gone, and a reopen replays
// exactly the acknowledged records (none of the failed ones, though some
// of their bytes reached the segment).
func TestFullDiskHeals(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		sync bool
	}{
		{"write ENOSPC", syscall.ENOSPC, false},
		{"fsync EIO", syscall.EIO, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var fault atomic.Pointer[error]
			cfg := Config{Dir: dir, RetryInterval: 10 * time.Millisecond, SyncInterval: time.Microsecond}
			cfg.openFile = func(path string, flag int) (segmentFile, error) {
				f, err := os.OpenFile(path, flag, 0o644)
				if err != nil {
					return nil, err
				}
				return faultyFile{File: f, fault: &fault, sync: tc.sync}, nil
			}
			l, _, _, err := openCollect(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var acked [][]byte
			i := 0
			appendOne := func() error {
				r := rec(i)
				i++
				err := l.Append(r)
				if err == nil {
					acked = append(acked, r)
				}
				return err
			}
			for range 10 {
				if err := appendOne(); err != nil {
					t.Fatal(err)
				}
			}
			fault.Store(&tc.err)
			if err := appendOne(); !errors.Is(err, tc.err) {
				t.Fatalf("append on a failing disk: %v, want %v", err, tc.err)
			}
			if err := l.Err(); !errors.Is(err, tc.err) {
				t.Fatalf("Err: %v", err)
			}
			if err := l.Checkpoint(func(w io.Writer) error { return nil }); err == nil {
				t.Fatal("checkpoint of a failed log succeeded")
			}
			for start := time.Now(); l.Stats().HealErrors < 2 && time.Since(start) < 5*time.Second; {
				time.Sleep(time.Millisecond) // tries to heal, in vain
			}
			if err := l.Err(); err == nil || l.Stats().HealErrors < 2 {
				t.Fatalf("a log whose disk still fails looks healed: err %v, stats %+v", err, l.Stats())
			}
			if err := appendOne(); err == nil {
				t.Fatal("append succeeded while the disk still fails")
			}
			fault.Store(nil)
			deadline := time.Now().Add(5 * time.Second)
			for appendOne() != nil {
				if time.Now().After(deadline) {
					t.Fatalf("still failing 5s after the fault ended: %v", l.Err())
				}
				time.Sleep(time.Millisecond)
			}
			for range 5 {
				if err := appendOne(); err != nil {
					t.Fatal(err)
				}
			}
			st := l.Stats()
			if st.Recoveries == 0 || st.WriteErrors == 0 || l.Err() != nil {
				t.Fatalf("stats after healing: %+v, err %v", st, l.Err())
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2, _, got, err := openCollect(t, Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer l2.Close()
			if !slices.EqualFunc(got, acked, func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Fatalf("replayed %d records, acknowledged %d: %q", len(got), len(acked), got)
			}
		})
	}
}
