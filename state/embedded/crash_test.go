package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nba/internal/faulttest"
	"nba/state"
	"nba/state/wal"
)

// crashChildEnv makes the test binary act as the crash test's child: the
// value is "DIR FIRST", the state directory and the first event number.
const crashChildEnv = "NBA_STATE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(crashChildEnv); v != "" {
		crashChild(v)
		return
	}
	os.Exit(m.Run())
}

// crashEvent is event n of the crash test: a purchase by its own customer
// with an idempotency key, entering journey "j" at step n%5 in the same
// record.
func crashEvent(n int) state.Event {
	return state.Event{Customer: "c" + strconv.Itoa(n), Type: "purchase", At: t0.Add(time.Duration(n) * time.Second),
		Attrs: map[string]any{"amount": n}, ID: "e" + strconv.Itoa(n), Journeys: []state.JourneyMove{{Journey: "j", Step: n % 5}}}
}

func crashConfig(dir string) state.Config {
	return state.Config{Mappings: testMappings(nil), CheckpointEvery: 3 * time.Millisecond,
		WAL: wal.Config{Dir: dir, SyncInterval: time.Millisecond}}
}

// crashChild opens the store, prints "ready", then applies numbered events
// from several goroutines forever (each retried now and then, as a client
// would after a timeout), printing each number once it is acknowledged,
// while the store checkpoints in the background. The parent kills it.
func crashChild(arg string) {
	var dir string
	var first int
	if _, err := fmt.Sscan(arg, &dir, &first); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s, err := Open(crashConfig(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex // serialises stdout
	os.Stdout.WriteString("ready\n")
	var next atomic.Int64
	next.Store(int64(first))
	for range 4 {
		go func() {
			for {
				n := int(next.Add(1))
				for range 1 + n%3 {
					if err := s.ApplyEvent(crashEvent(n)); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(3)
					}
				}
				mu.Lock()
				os.Stdout.WriteString(strconv.Itoa(n) + "\n")
				mu.Unlock()
			}
		}()
	}
	select {}
}

// crashOnce runs the child, kills it with SIGKILL after a random delay, and
// checks the state: every acknowledged event is there, and every event
// there is whole (overlay change, journey entry and key) and applied once;
// a retry of any of them is a duplicate.
func crashOnce(t *testing.T, dir string, first int, rnd *rand.Rand) (acknowledged int) {
	t.Helper()
	lines := faulttest.KillChild(t, fmt.Sprintf("%s=%s %d", crashChildEnv, dir, first), 30*time.Millisecond, rnd)
	var acked []int
	for _, ln := range lines {
		n, err := strconv.Atoi(string(ln))
		if err != nil {
			t.Fatalf("child output %q: %v", ln, err)
		}
		acked = append(acked, n)
	}

	s, err := Open(crashConfig(dir))
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	orders, spend := slot(t, s, "orders_30d"), slot(t, s, "spend_30d")
	present := 0
	for i := range s.stripes {
		for id := range s.stripes[i].m {
			n, err := strconv.Atoi(id[1:])
			if err != nil {
				t.Fatalf("customer %q", id)
			}
			var v state.View
			s.View([]byte(id), &v)
			o, _ := v.Number(orders)
			sp, _ := v.Number(spend)
			j, ok := v.Journey("j")
			at := t0.Add(time.Duration(n) * time.Second)
			c, _ := s.Get(context.Background(), id)
			keys := s.Dump(c, 0).IDs
			if o != 1 || sp != float64(n) || !ok || j.Step != n%5 || !j.EnteredAt.Equal(at) || !slices.Contains(keys, state.RememberedID{ID: "e" + strconv.Itoa(n), Event: true}) {
				t.Fatalf("event %d is not applied whole and once: orders %v, spend %v, journey %+v (%v), keys %v", n, o, sp, j, ok, keys)
			}
			present++
		}
	}
	for _, n := range acked {
		dup, err := s.ApplyEventOnce(crashEvent(n))
		if err != nil {
			t.Fatal(err)
		}
		if !dup {
			t.Fatalf("acknowledged event %d is lost or its key forgotten after SIGKILL", n)
		}
	}
	if present < len(acked) {
		t.Fatalf("%d customers present, %d events acknowledged", present, len(acked))
	}
	return len(acked)
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns 20 processes")
	}
	dir := t.TempDir()
	rnd := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	acked := 0
	for i := range 20 {
		acked += crashOnce(t, dir, i*1_000_000, rnd)
	}
	// Without acknowledged events the test proves nothing.
	if acked == 0 {
		t.Fatal("the child acknowledged no event in 20 runs")
	}
	t.Logf("%d events acknowledged across 20 kills", acked)
}
