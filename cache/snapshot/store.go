package snapshot

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds the snapshot being served and replaces it atomically. Current
// never blocks and never returns a partly loaded snapshot; a rejected load
// leaves the current snapshot serving. It is safe for concurrent use;
// loads are serialised among themselves.
type Store struct {
	cfg Config
	cur atomic.Pointer[Snapshot]

	mu       sync.Mutex // serialises LoadFile and Swap; guards lastErr*
	lastErr  error
	lastErrT time.Time
	loads    atomic.Uint64
	failures atomic.Uint64
	lastOK   atomic.Int64 // unix nanos of the last successful swap
}

// StoreStatus describes a Store for status pages and metrics.
type StoreStatus struct {
	Ready     bool      `json:"ready"`       // a snapshot is being served
	Name      string    `json:"name"`        // file of the current snapshot
	Version   string    `json:"version"`     // version of the current snapshot
	AsOf      time.Time `json:"as_of"`       // as-of time of the current snapshot
	Rows      int       `json:"rows"`        // customers in the current snapshot
	Bytes     int64     `json:"bytes"`       // memory of the current snapshot (Snapshot.SizeBytes)
	SwappedAt time.Time `json:"swapped_at"`  // when the current snapshot was swapped in
	Loads     uint64    `json:"loads"`       // successful swaps
	Failures  uint64    `json:"failures"`    // rejected loads and swaps
	LastError string    `json:"last_error"`  // the last rejection, "" if none
	LastErrAt time.Time `json:"last_err_at"` // when it happened
}

// NewStore returns an empty Store that loads with cfg. An invalid cfg (see
// Config.Validate, which start-up code should call first) makes every load
// fail with the validation error.
func NewStore(cfg Config) *Store {
	return &Store{cfg: cfg}
}

// Current returns the snapshot being served, or nil before the first
// successful load.
func (st *Store) Current() *Snapshot { return st.cur.Load() }

// LoadFile loads the snapshot at path beside the current one, validates it
// and swaps it in. On error the current snapshot keeps serving and the
// failure is counted and kept for Status.
func (st *Store) LoadFile(path string) error {
	s, err := Load(path, st.cfg)
	if err != nil {
		st.fail(err)
		return err
	}
	return st.Swap(s)
}

// Swap validates s against the current snapshot (a shrink beyond
// Config.MaxShrink, and the declared schema when there is one) and makes it
// current.
func (st *Store) Swap(s *Snapshot) error {
	if s == nil {
		err := errors.New("cannot swap snapshot: nil snapshot")
		st.fail(err)
		return err
	}
	cfg, err := st.cfg.withDefaults()
	if err != nil {
		st.fail(err)
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := checkSchema(s, cfg.Schema); err != nil {
		st.failLocked(err)
		return err
	}
	if old := st.cur.Load(); old != nil && cfg.MaxShrink < 1 {
		floor := float64(old.Len()) * (1 - cfg.MaxShrink)
		if float64(s.Len()) < floor {
			err := fmt.Errorf("cannot swap snapshot %q: it has %d rows, %.1f%% fewer than the %d of %q (limit %.1f%%); is the export truncated?",
				s.Name(), s.Len(), 100*(1-float64(s.Len())/float64(old.Len())), old.Len(), old.Name(), 100*cfg.MaxShrink)
			st.failLocked(err)
			return err
		}
	}
	st.cur.Store(s)
	st.loads.Add(1)
	st.lastOK.Store(time.Now().UnixNano())
	return nil
}

// checkSchema verifies that s has exactly the declared columns.
func checkSchema(s *Snapshot, sc *Schema) error {
	if sc == nil {
		return nil
	}
	if len(sc.Columns) != len(s.Columns()) {
		return fmt.Errorf("cannot swap snapshot %q: it has %d columns, the schema declares %d", s.Name(), len(s.Columns()), len(sc.Columns))
	}
	for _, c := range sc.Columns {
		i, ok := s.ColumnIndex(c.Name)
		if !ok {
			return fmt.Errorf("cannot swap snapshot %q: column %q is missing", s.Name(), c.Name)
		}
		if k := s.Columns()[i].Kind; k != c.Kind {
			return fmt.Errorf("cannot swap snapshot %q: column %q is %s, the schema declares %s", s.Name(), c.Name, k, c.Kind)
		}
	}
	return nil
}

func (st *Store) fail(err error) {
	st.mu.Lock()
	st.failLocked(err)
	st.mu.Unlock()
}

func (st *Store) failLocked(err error) {
	st.failures.Add(1)
	st.lastErr, st.lastErrT = err, time.Now()
}

// Status returns a consistent view of the current snapshot and the
// counters.
func (st *Store) Status() StoreStatus {
	var ss StoreStatus
	if s := st.cur.Load(); s != nil {
		ss.Ready = true
		ss.Name, ss.Version, ss.AsOf, ss.Rows, ss.Bytes = s.Name(), s.Version(), s.AsOf(), s.Len(), s.SizeBytes()
	}
	if t := st.lastOK.Load(); t != 0 {
		ss.SwappedAt = time.Unix(0, t)
	}
	ss.Loads, ss.Failures = st.loads.Load(), st.failures.Load()
	st.mu.Lock()
	if st.lastErr != nil {
		ss.LastError, ss.LastErrAt = st.lastErr.Error(), st.lastErrT
	}
	st.mu.Unlock()
	return ss
}
