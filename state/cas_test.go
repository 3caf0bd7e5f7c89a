package state_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nba/state"
	"nba/state/statetest"
)

// casBackend is a second state backend built only from the exported model,
// the way a shared store does it: each customer is one encoded value with
// a version; a write reads the value, applies the model in Go and writes
// the value back if its version did not change, else retries. It shows
// that the model and the behaviour table need nothing of the embedded
// store. (A test backend: a call's writes are atomic per customer.)
type casBackend struct {
	m *state.Model

	mu   sync.Mutex // stands for the store's compare-and-set
	vals map[string]casValue
	tomb map[string]time.Time
	stub map[string]time.Time // erased stubs: customer → until
	asOf atomic.Int64

	retries, dups, histEvicted, journeys atomic.Uint64
}

type casValue struct {
	b   []byte
	ver uint64
}

func newCAS(t *testing.T, cfg state.Config) state.Backend {
	m, err := state.NewModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &casBackend{m: m, vals: map[string]casValue{}, tomb: map[string]time.Time{}, stub: map[string]time.Time{}}
}

func (b *casBackend) load(customer string) (*state.Customer, uint64) {
	b.mu.Lock()
	v, ok := b.vals[customer]
	b.mu.Unlock()
	if !ok {
		return nil, 0
	}
	c, err := b.m.DecodeCustomer(v.b)
	if err != nil {
		panic(err) // the test wrote it
	}
	return c, v.ver
}

// write applies the records of one customer, in order, atomically.
func (b *casBackend) write(customer string, recs []*state.Record) (dups int, err error) {
	for {
		cur, ver := b.load(customer)
		next, dups, journeys, evicted := cur, 0, 0, 0
		for _, r := range recs {
			n, res, err := b.m.Apply(next, r, b.asOf.Load())
			if err != nil {
				return 0, err
			}
			if res.Duplicate {
				dups++
			}
			next, journeys, evicted = n, journeys+res.Journeys, evicted+res.HistoryEvicted
		}
		if next == cur {
			b.dups.Add(uint64(dups))
			return dups, nil
		}
		val := b.m.AppendCustomer(nil, next)
		b.mu.Lock()
		if b.stub[customer].After(time.Now()) {
			b.mu.Unlock()
			return 0, state.ErasedErrorf(customer)
		}
		if b.vals[customer].ver == ver {
			b.vals[customer] = casValue{b: val, ver: ver + 1}
			b.mu.Unlock()
			b.dups.Add(uint64(dups))
			b.journeys.Add(uint64(journeys))
			b.histEvicted.Add(uint64(evicted))
			return dups, nil
		}
		b.mu.Unlock()
		b.retries.Add(1)
	}
}

// writeAll validates every record first (nothing written on an error),
// then writes each customer's records.
func writeAll[T any](b *casBackend, items []T, build func(T) (state.Record, error), customer func(T) string) (int, error) {
	recs := make([]state.Record, len(items))
	for i, x := range items {
		var err error
		if recs[i], err = build(x); err != nil {
			return 0, &state.Error{Kind: state.ErrInvalid, Err: err}
		}
	}
	var order []string
	by := map[string][]*state.Record{}
	for i, x := range items {
		if _, event := any(x).(state.Event); event && !recs[i].Changes() {
			continue // an event that changes nothing is neither written nor remembered
		}
		c := customer(x)
		if by[c] == nil {
			order = append(order, c)
		}
		by[c] = append(by[c], &recs[i])
	}
	dups := 0
	for _, c := range order {
		n, err := b.write(c, by[c])
		if err != nil {
			return dups, err
		}
		dups += n
	}
	return dups, nil
}

func (b *casBackend) View(customer []byte, v *state.View) bool {
	c, _ := b.load(string(customer))
	b.m.View(c, b.asOf.Load(), v)
	return c != nil
}

func (b *casBackend) Load(_ context.Context, customer []byte, v *state.View) (bool, error) {
	return b.View(customer, v), nil
}

func (b *casBackend) Slot(field string) (state.Slot, state.FieldType, bool) { return b.m.Slot(field) }
func (b *casBackend) Fields() []state.FieldInfo                             { return b.m.Fields() }
func (b *casBackend) MaxWindow() time.Duration                              { return b.m.MaxWindow() }
func (b *casBackend) Err() error                                            { return nil }
func (b *casBackend) SetInSnapshot(func(string) bool)                       {}
func (b *casBackend) Close() error                                          { return nil }

func (b *casBackend) RecordContact(cs ...state.Contact) error {
	_, err := writeAll(b, cs, b.m.ContactRecord, func(c state.Contact) string { return c.Customer })
	return err
}

func (b *casBackend) RecordContactOnce(c state.Contact) (bool, error) {
	n, err := writeAll(b, []state.Contact{c}, b.m.ContactRecord, func(c state.Contact) string { return c.Customer })
	return n > 0, err
}

func (b *casBackend) ApplyEvent(es ...state.Event) error {
	_, err := writeAll(b, es, b.m.EventRecord, func(e state.Event) string { return e.Customer })
	return err
}

func (b *casBackend) ApplyEventOnce(e state.Event) (bool, error) {
	n, err := writeAll(b, []state.Event{e}, b.m.EventRecord, func(e state.Event) string { return e.Customer })
	return n > 0, err
}

func (b *casBackend) SetJourney(us ...state.JourneyUpdate) error {
	_, err := writeAll(b, us, b.m.JourneyRecord, func(u state.JourneyUpdate) string { return u.Customer })
	return err
}

func (b *casBackend) Reserve(rs ...state.Reservation) error {
	_, err := writeAll(b, rs, b.m.ReserveRecord, func(r state.Reservation) string { return r.Customer })
	return err
}

func (b *casBackend) SetConsent(cs ...state.Consent) (int, error) {
	return writeAll(b, cs, b.m.ConsentRecord, func(c state.Consent) string { return c.Customer })
}

func (b *casBackend) EventConsents(e state.Event) ([]state.Consent, error) {
	return b.m.EventConsents(e)
}

func (b *casBackend) Erase(customer string, t state.Tombstone) (state.Erased, error) {
	c, _ := b.load(customer)
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.vals, customer)
	b.stub[customer] = time.Now().Add(state.ErasedStubTTL)
	if t.Pseudonym != "" {
		b.tomb[t.Pseudonym] = t.Until
	}
	return state.ErasedOf(c), nil
}

func (b *casBackend) Tombstoned(p string, now time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.tomb[p]
	return ok && u.After(now), nil
}

func (b *casBackend) Tombstones(now time.Time) ([]state.Tombstone, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ts []state.Tombstone
	for p, u := range b.tomb {
		if u.After(now) {
			ts = append(ts, state.Tombstone{Pseudonym: p, Until: u})
		}
	}
	return ts, nil
}

func (b *casBackend) Compact(asOf time.Time) error {
	if t := asOf.UnixNano(); t > b.asOf.Load() {
		b.asOf.Store(t)
	}
	return nil
}

func (b *casBackend) Stats() state.Stats {
	st := b.m.Stats()
	st.Duplicates, st.HistoryEvicted, st.Journeys = b.dups.Load(), b.histEvicted.Load(), b.journeys.Load()
	return st
}

// TestContractCAS runs the behaviour table against the compare-and-set
// backend: the model, the codec of one customer's value and the table
// serve a second backend unchanged.
func TestContractCAS(t *testing.T) {
	statetest.Run(t, newCAS)
}

// TestCustomerCodecRoundTrip: a customer's value decodes to the state it
// encodes (the value a shared backend stores per customer).
func TestCustomerCodecRoundTrip(t *testing.T) {
	b := newCAS(t, state.Config{}).(*casBackend)
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.RecordContact(state.Contact{Customer: "c", Action: "a", Group: "g", Channel: "web", At: at, ID: "k"}))
	must(b.SetJourney(state.JourneyUpdate{Customer: "c", Journey: "j", Step: 2, At: at}))
	c, _ := b.load("c")
	enc := b.m.AppendCustomer(nil, c)
	d, err := b.m.DecodeCustomer(enc)
	must(err)
	if again := b.m.AppendCustomer(nil, d); !bytes.Equal(enc, again) || d.ID() != "c" || len(d.Journeys()) != 1 {
		t.Errorf("round trip changed the value:\n%x\n%x", enc, again)
	}
	if _, err := b.m.DecodeCustomer(append(enc, 0)); err == nil {
		t.Error("trailing bytes accepted")
	}
	// Without consent, reservations or identifiers the value has no
	// sections: it is the format from before them, which older processes
	// read. Cut anywhere, it does not decode.
	if len(enc) == 0 || enc[len(enc)-1] == 0 {
		t.Errorf("a value without sections ends with a section end tag: %x", enc)
	}
	for n := range len(enc) {
		if _, err := b.m.DecodeCustomer(enc[:n]); err == nil {
			t.Errorf("a value truncated to %d of %d bytes decoded", n, len(enc))
		}
	}
}
