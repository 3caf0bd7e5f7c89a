package wal

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"nba/internal/faulttest"
)

// crashChildEnv makes the test binary act as the crash test's child process:
// the value is the log directory.
const crashChildEnv = "NBA_WAL_CRASH_CHILD"

var soak = flag.Int("wal.soak", 0, "crash-test iterations to run in TestCrashSoak (0 skips it)")

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild replays dir, prints "ready", then appends numbered records from
// several goroutines forever, printing each number after its Append returned,
// and checkpoints now and then. The parent kills it.
func crashChild(dir string) {
	var mu sync.Mutex // guards seen and stdout; excluded during checkpoints
	seen := map[uint64]bool{}
	var next uint64
	addSeen := func(n uint64) {
		seen[n] = true
		next = max(next, n+1)
	}
	l, err := Open(Config{Dir: dir, SyncInterval: time.Millisecond}, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		for i := 0; i+8 <= len(b); i += 8 {
			addSeen(binary.LittleEndian.Uint64(b[i:]))
		}
		return err
	}, func(rec []byte) error {
		addSeen(binary.LittleEndian.Uint64(rec))
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var gate sync.RWMutex // writers share it; a checkpoint takes it alone
	os.Stdout.WriteString("ready\n")
	for w := range 4 {
		go func() {
			payload := make([]byte, 8+w*50)
			for {
				gate.RLock()
				mu.Lock()
				n := next
				next++
				mu.Unlock()
				binary.LittleEndian.PutUint64(payload, n)
				if err := l.Append(payload); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				seen[n] = true
				os.Stdout.WriteString(strconv.FormatUint(n, 10) + "\n")
				mu.Unlock()
				gate.RUnlock()
			}
		}()
	}
	for {
		time.Sleep(3 * time.Millisecond)
		gate.Lock()
		err := l.Checkpoint(func(w io.Writer) error {
			mu.Lock()
			defer mu.Unlock()
			var b []byte
			for n := range seen {
				b = binary.LittleEndian.AppendUint64(b, n)
			}
			_, err := w.Write(b)
			return err
		})
		gate.Unlock()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
	}
}

// crashOnce runs the child, kills it with SIGKILL after a random delay, and
// checks that every number it acknowledged is replayed.
func crashOnce(t *testing.T, dir string, rnd *rand.Rand) (acknowledged int) {
	t.Helper()
	// The kill lands at a random point: in a write, an fsync, a rotation
	// or a checkpoint.
	lines := faulttest.KillChild(t, crashChildEnv+"="+dir, 20*time.Millisecond, rnd)
	var acked []uint64
	for _, ln := range lines {
		n, err := strconv.ParseUint(string(ln), 10, 64)
		if err != nil {
			t.Fatalf("child output %q: %v", ln, err)
		}
		acked = append(acked, n)
	}
	present := map[uint64]bool{}
	l, err := Open(Config{Dir: dir}, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		for i := 0; i+8 <= len(b); i += 8 {
			present[binary.LittleEndian.Uint64(b[i:])] = true
		}
		return err
	}, func(rec []byte) error {
		present[binary.LittleEndian.Uint64(rec)] = true
		return nil
	})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	l.Close()
	var missing []uint64
	for _, n := range acked {
		if !present[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("%d acknowledged records lost after SIGKILL, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	return len(acked)
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns 50 processes")
	}
	dir := t.TempDir()
	rnd := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	acked := 0
	for range 50 {
		acked += crashOnce(t, dir, rnd)
	}
	// Without acknowledged records the test proves nothing.
	if acked == 0 {
		t.Fatal("the child acknowledged no record in 50 runs")
	}
	t.Logf("%d records acknowledged across 50 kills", acked)
}

// TestCrashSoak runs -wal.soak iterations against one directory.
func TestCrashSoak(t *testing.T) {
	if *soak == 0 {
		t.Skip("enable with -wal.soak=N")
	}
	dir := t.TempDir()
	rnd := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	acked := 0
	for range *soak {
		acked += crashOnce(t, dir, rnd)
	}
	t.Logf("%d records acknowledged across %d kills", acked, *soak)
}
