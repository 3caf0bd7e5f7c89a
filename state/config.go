package state

import (
	"fmt"
	"sync/atomic"
	"time"

	"nba/state/wal"
)

// Config configures the model (NewModel: the mappings and the bounds per
// customer, which every backend serving a bundle must share) and the
// embedded store (package state/embedded: Stripes, MaxCustomers,
// CheckpointEvery, WAL; other backends ignore them). Zero values pick the
// documented defaults.
type Config struct {
	// Mappings turn events into overlay field changes.
	Mappings Mappings
	// SnapshotFields are the fields the feature snapshot carries (its
	// columns). Those that are also overlay fields reset on a new snapshot
	// (see Compact); the others are ignored.
	SnapshotFields []string
	// MaxEventsPerCustomer bounds the contacts kept in a customer's
	// history (aggregates keep counting evicted ones). Default 100; at
	// most 100000.
	MaxEventsPerCustomer int
	// MaxKeysPerCustomer bounds a customer's (kind, key, outcome)
	// aggregates; the least recently updated is evicted. Default 64.
	MaxKeysPerCustomer int
	// MaxJourneysPerCustomer bounds the journeys kept per customer; a
	// finished journey is evicted before an active one, the oldest first.
	// Default 16.
	MaxJourneysPerCustomer int
	// MaxIDsPerCustomer bounds the idempotency keys (Contact.ID and
	// Event.ID together) remembered per customer: the newest are kept, so
	// a retry is recognised as long as fewer than this many newer keyed
	// writes of the same customer came in between. Keys are not expired by
	// time. Memory: up to this many keys of at most MaxStringBytes each per
	// customer that sends keys. Default 64; at most 4096.
	MaxIDsPerCustomer int
	// MaxWindow is the longest cap window counted, rounded up to whole
	// days; longer windows are clamped (Model.MaxWindow tells a catalog
	// compiler, which refuses them). Default DefaultMaxWindow; at most 400
	// days.
	MaxWindow time.Duration
	// MaxStringBytes bounds customer ids, keys, journey ids, event types
	// and category values. Default 256.
	MaxStringBytes int
	// MaxInterned bounds the distinct strings interned (deduplicated) in
	// memory; past it strings are stored as given. Default 1<<20.
	MaxInterned int
	// Stripes is the number of lock stripes (a power of two). Default 256.
	Stripes int
	// MaxCustomers bounds the customers with live state who are not in the
	// feature snapshot (see SetInSnapshot): new ids seen by feedback or
	// events. Past it, a background pass evicts the least recently written
	// of them (by their last write: feedback, event or journey move) down
	// to MaxCustomers minus 1/16, durably (a log record), and counts them
	// in Stats.CustomersEvicted. An evicted customer loses all of its live
	// state: contact history (caps and pauses count from zero again),
	// overlay fields, journey positions and idempotency keys. Memory: a
	// customer with a few contacts takes about 1 KiB. Default 200,000;
	// negative: no bound.
	MaxCustomers int
	// CheckpointEvery makes the store checkpoint in the background at
	// this interval. Zero disables it: call Checkpoint yourself.
	CheckpointEvery time.Duration
	// WAL configures the log; WAL.Dir is required.
	WAL wal.Config
}

func (c *Config) validate() error {
	def := func(v *int, d, lo, hi int, name string) error {
		if *v == 0 {
			*v = d
		}
		if *v < lo || *v > hi {
			return fmt.Errorf("%s %d is outside [%d, %d]", name, *v, lo, hi)
		}
		return nil
	}
	if err := def(&c.MaxEventsPerCustomer, 100, 1, 100_000, "MaxEventsPerCustomer"); err != nil {
		return err
	}
	if err := def(&c.MaxKeysPerCustomer, 64, 1, 1<<16, "MaxKeysPerCustomer"); err != nil {
		return err
	}
	if err := def(&c.MaxJourneysPerCustomer, 16, 1, 1<<12, "MaxJourneysPerCustomer"); err != nil {
		return err
	}
	if err := def(&c.MaxIDsPerCustomer, 64, 1, maxDecodedIDs, "MaxIDsPerCustomer"); err != nil {
		return err
	}
	if err := def(&c.MaxStringBytes, 256, 1, 1<<16, "MaxStringBytes"); err != nil {
		return err
	}
	if err := def(&c.MaxInterned, 1<<20, 0, 1<<30, "MaxInterned"); err != nil {
		return err
	}
	if err := def(&c.Stripes, 256, 1, 1<<16, "Stripes"); err != nil {
		return err
	}
	if c.Stripes&(c.Stripes-1) != 0 {
		return fmt.Errorf("Stripes %d is not a power of two", c.Stripes)
	}
	if c.MaxWindow == 0 {
		c.MaxWindow = DefaultMaxWindow
	}
	if c.MaxWindow < 0 || c.MaxWindow > 400*24*time.Hour {
		return fmt.Errorf("MaxWindow %v is outside (0, 400 days]", c.MaxWindow)
	}
	if c.CheckpointEvery < 0 {
		return fmt.Errorf("CheckpointEvery %v is negative", c.CheckpointEvery)
	}
	if c.MaxCustomers == 0 {
		c.MaxCustomers = DefaultMaxCustomers
	}
	return nil
}

// DefaultMaxCustomers is the default of Config.MaxCustomers.
const DefaultMaxCustomers = 200_000

// DefaultMaxWindow is Config.MaxWindow's default: contacts are counted up
// to 30 days back.
const DefaultMaxWindow = 30 * 24 * time.Hour

// counters are the model's own cumulative counters (Model.Stats); a
// backend counts its writes itself.
type counters struct {
	unmapped, missingAttrs, internFull atomic.Uint64
}

// Stats are the store's cumulative counters.
type Stats struct {
	Customers        uint64    `json:"customers"`        // customers with state
	Contacts         uint64    `json:"contacts"`         // contacts recorded
	Events           uint64    `json:"events"`           // events applied (with at least one mapped change or journey move)
	Journeys         uint64    `json:"journeys"`         // journey updates
	UnmappedEvents   uint64    `json:"unmapped_events"`  // events of a type without mappings (ignored)
	MissingAttrs     uint64    `json:"missing_attrs"`    // mapping ops skipped because the event lacked the attribute
	HistoryEvicted   uint64    `json:"history_evicted"`  // contacts dropped from histories (MaxEventsPerCustomer)
	KeysEvicted      uint64    `json:"keys_evicted"`     // aggregates dropped (MaxKeysPerCustomer)
	JourneysEvicted  uint64    `json:"journeys_evicted"` // journeys dropped (MaxJourneysPerCustomer)
	Duplicates       uint64    `json:"duplicates"`       // contacts and events acknowledged but not applied: their idempotency key was remembered
	IDsEvicted       uint64    `json:"ids_evicted"`      // idempotency keys forgotten (MaxIDsPerCustomer)
	InternFull       uint64    `json:"intern_full"`      // strings not interned because MaxInterned was reached
	Replayed         uint64    `json:"replayed"`         // log records applied at Open
	ReplaySkipped    uint64    `json:"replay_skipped"`   // log records already in the checkpoint
	ReplayDropped    uint64    `json:"replay_dropped"`   // overlay changes to fields no longer mapped
	Compactions      uint64    `json:"compactions"`
	Checkpoints      uint64    `json:"checkpoints"`
	CheckpointErrors uint64    `json:"checkpoint_errors"`
	WAL              wal.Stats `json:"wal"`

	// Faults and bounds.
	Unavailable      uint64 `json:"unavailable"`       // writes refused because the log could not be written (ErrUnavailable)
	Conflicts        uint64 `json:"conflicts"`         // conditional journey moves refused: the customer had moved on (ErrConflict)
	CustomersEvicted uint64 `json:"customers_evicted"` // customers not in the snapshot whose state was evicted (MaxCustomers)
	ReplayCorrupt    uint64 `json:"replay_corrupt"`    // log records whose checksum held but that could not be decoded, skipped (WAL.SkipCorrupt)
}
