package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The model's API for a backend that keeps its own log and checkpoints
// (package state/embedded): the log record codec, the records only such a
// log carries (compaction, eviction, erasure), the checkpoint format and
// the sequence numbers a store keeps per customer. A shared backend
// (state/redis) needs none of it: it keeps each customer's value
// (Model.AppendCustomer) and applies records with Model.Apply.

// Validated returns c with its defaults filled in, or the error that makes
// it invalid: a store reads its own settings (Stripes, MaxCustomers,
// CheckpointEvery) from it. NewModel validates the same way.
func (c Config) Validated() (Config, error) {
	err := c.validate()
	return c, err
}

// AppendRecord appends r's log encoding to dst: what the embedded store
// writes to its log, with r's sequence number (SetSeq). The format is
// versioned by record type (codec.go): records written by older versions
// still decode.
func AppendRecord(dst []byte, r *Record) []byte { return appendRecord(dst, r) }

// DecodeRecord decodes a log record AppendRecord wrote into r, reusing r's
// slices. A record read back is applied with Model.ApplyLogged, unless
// its LogOp says it is for the store itself.
func DecodeRecord(b []byte, r *Record) error { return decodeRecord(b, r) }

// Seq returns r's sequence number (SetSeq; a record read from a log: its
// position in it).
func (r *record) Seq() uint64 { return r.lsn }

// At returns the time r carries (unix ns): when a contact, event or move
// happened, the as-of of a compaction, when a customer was evicted, when an
// erased customer's tombstone ends.
func (r *record) At() int64 { return r.at }

// Pseudonym returns the pseudonym whose tombstone an erase record keeps
// (LogErase; may be empty).
func (r *record) Pseudonym() string {
	if r.typ != recErase {
		return ""
	}
	return r.id
}

// Changes reports whether an event record (Model.EventRecord) may change
// its customer: it has mapped overlay changes or journey moves, given or
// to compute (Event.JourneysFrom). The embedded store does not log an
// event without, nor remember its id.
func (r *record) Changes() bool {
	return len(r.effects) > 0 || len(r.moves) > 0 || r.movesFrom != nil
}

// LogOp is what a record read back from a log asks of the store that
// wrote it.
type LogOp uint8

const (
	// LogApply: a change to one customer, applied by Model.ApplyLogged.
	LogApply LogOp = iota
	// LogCompact: the store's compaction as-of rose to At (Compact).
	LogCompact
	// LogForget: the customer's state was evicted at At, if it was last
	// written before the record (Config.MaxCustomers).
	LogForget
	// LogErase: the customer's state was erased; Pseudonym's tombstone (if
	// any) lasts until At.
	LogErase
)

// LogOp tells what r asks of the store reading it back from its log.
func (r *record) LogOp() LogOp {
	switch r.typ {
	case recCompact:
		return LogCompact
	case recForget:
		return LogForget
	case recErase:
		return LogErase
	}
	return LogApply
}

// CompactRecord returns the log record of a compaction to the as-of asOf
// (unix ns): LogCompact.
func CompactRecord(asOf int64) Record { return record{typ: recCompact, at: asOf} }

// ForgetRecord returns the log record of the eviction of a customer's
// state at (unix ns): LogForget.
func ForgetRecord(customer string, at int64) Record {
	return record{typ: recForget, customer: customer, at: at}
}

// EraseRecord returns the log record of the erasure of a customer's state,
// keeping pseudonym's tombstone (none when empty) until until (unix ns):
// LogErase.
func EraseRecord(customer, pseudonym string, until int64) Record {
	return record{typ: recErase, customer: customer, id: pseudonym, at: until}
}

// Seq returns the sequence number of the last record applied to c (see
// Record.SetSeq): the embedded store's order of last writes (eviction) and
// its test for a logged record that a checkpoint already holds.
func (c *custState) Seq() uint64 { return c.lsn }

// SetSeq sets c's sequence number. Only for a value nothing shares yet:
// one Model.Apply just returned (and not old), or Model.Restored.
func (c *custState) SetSeq(seq uint64) { c.lsn = seq }

// CheckString checks an identifier given to a backend (a customer id, a
// pseudonym) against Config.MaxStringBytes, and that it is not empty when
// required; what names it in the error.
func (m *Model) CheckString(what, v string, required bool) error {
	return m.checkString(what, v, required)
}

// Compacted returns c without the values of fields that reset on a
// snapshot (FieldInfo.ResetOnSnapshot) stamped at or before asOf (unix ns),
// which readers already do not see: c itself when it has none, else a new
// value sharing the rest with c. The embedded store frees them with it
// after Compact.
func (m *Model) Compacted(c *Customer, asOf int64) *Customer {
	stale, fresh := false, false
	for j, v := range c.overlay {
		if v.at != 0 && v.at <= asOf && m.m.fields[j].ResetOnSnapshot {
			stale = true
		} else if v.at != 0 {
			fresh = true
		}
	}
	if !stale {
		return c
	}
	next := *c
	next.overlay = nil
	if fresh {
		next.overlay = slices.Clone(c.overlay)
		for j := range next.overlay {
			if next.overlay[j].at <= asOf && m.m.fields[j].ResetOnSnapshot {
				next.overlay[j] = value{}
			}
		}
	}
	return &next
}

// CheckpointWriter writes the embedded store's checkpoint format (see
// ckptVersion in codec.go): a header with the store's sequence number,
// as-of and the overlay fields, the customers, then the tombstones. Not
// safe for concurrent use.
type CheckpointWriter struct {
	m *Model
	w io.Writer
	b []byte
}

// NewCheckpointWriter starts a checkpoint on w: seq is the last sequence
// number the store assigned, asOf its compaction as-of (unix ns).
func (m *Model) NewCheckpointWriter(w io.Writer, seq uint64, asOf int64) *CheckpointWriter {
	b := make([]byte, 0, 64<<10)
	b = append(b, ckptMagic...)
	b = binary.AppendUvarint(b, ckptVersion)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendVarint(b, asOf)
	b = binary.AppendUvarint(b, uint64(len(m.m.fields)))
	for _, f := range m.m.fields {
		b = appendString(b, f.Name)
		b = append(b, byte(f.Type))
	}
	return &CheckpointWriter{m: m, w: w, b: b}
}

// Customer adds one customer; it writes to w in chunks of about 48 KiB.
func (cw *CheckpointWriter) Customer(cs *Customer) error {
	b := append(cw.b, 1)
	b = cw.m.appendCustomer(b, cs)
	b = appendSections(b, cs)
	if len(b) >= 48<<10 {
		if _, err := cw.w.Write(b); err != nil {
			return err
		}
		b = b[:0]
	}
	cw.b = b
	return nil
}

// Finish ends the checkpoint with the tombstones to keep and writes what
// is left to w.
func (cw *CheckpointWriter) Finish(ts []Tombstone) error {
	b := append(cw.b, 0)
	b = binary.AppendUvarint(b, uint64(len(ts)))
	for _, t := range ts {
		b = appendString(b, t.Pseudonym)
		b = binary.AppendVarint(b, t.Until.UnixNano())
	}
	cw.b = b[:0]
	_, err := cw.w.Write(b)
	return err
}

// CheckpointLoader receives what ReadCheckpoint reads, in order: the
// header, each customer, each tombstone.
type CheckpointLoader struct {
	// Header receives the store's sequence number and as-of (unix ns).
	Header func(seq uint64, asOf int64)
	// Customer receives one customer, its id interned, and what this
	// model's bounds and mappings dropped from it; an error fails the load.
	Customer func(c *Customer, res Result) error
	// Tombstone receives one tombstone; until is unix ns.
	Tombstone func(pseudonym string, until int64)
}

// ReadCheckpoint reads a checkpoint NewCheckpointWriter wrote, or one of
// an older version: fields no longer mapped are dropped and the bounds of
// this model's Config applied.
func (m *Model) ReadCheckpoint(r io.Reader, l CheckpointLoader) error {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	d := &rd{r: br}
	var magic [len(ckptMagic)]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil || string(magic[:]) != ckptMagic {
		return errors.New("not a state checkpoint")
	}
	version := d.uvarint()
	if d.err == nil && (version < 1 || version > ckptVersion) {
		return fmt.Errorf("unsupported state checkpoint version %d", version)
	}
	seq := d.uvarint()
	asOf := d.varint()
	l.Header(seq, asOf)
	nf := d.count(maxFields, "fields")
	remap := make([]int, nf) // checkpoint field index → slot, or -1
	types := make([]FieldType, nf)
	for i := range nf {
		name := d.str()
		types[i] = FieldType(d.byte())
		if d.err == nil && !validType(types[i]) {
			d.fail("field %q: unknown type %d", name, types[i])
		}
		remap[i] = -1
		if sl, ok := m.m.slots[name]; ok && m.m.fields[sl].Type == types[i] {
			remap[i] = int(sl)
		}
	}
	for n := 0; d.err == nil; n++ {
		switch d.byte() {
		case 0:
			if d.err != nil {
				break
			}
			if version >= 3 {
				if readTombstones(d, l.Tombstone); d.err != nil {
					return fmt.Errorf("state checkpoint: tombstones: %w", d.err)
				}
			}
			if _, err := br.ReadByte(); err != io.EOF {
				return errors.New("state checkpoint: trailing bytes")
			}
			return nil
		case 1:
			var res Result
			cs, id := m.decodeCustomer(d, version, remap, types, &res)
			if cs != nil {
				cs.id = m.intern.get(id, &m.ctr.internFull)
				if err := l.Customer(cs, res); err != nil && d.err == nil {
					d.err = err
				}
			}
			if d.err != nil {
				d.err = fmt.Errorf("customer %d: %w", n, d.err)
			}
		default:
			d.fail("bad customer marker")
		}
	}
	return fmt.Errorf("state checkpoint: %w", d.err)
}

// readTombstones reads a checkpoint's tombstones.
func readTombstones(d *rd, add func(pseudonym string, until int64)) {
	n := d.count(MaxTombstones, "tombstones")
	for i := 0; i < n && d.err == nil; i++ {
		p, u := d.str(), d.varint()
		if d.err == nil && p == "" {
			d.fail("empty pseudonym")
		}
		if d.err == nil {
			add(p, u)
		}
	}
}

// Describe returns the whole of c but its id and sequence number as one
// line of text: set overlay values with their stamps, aggregates (sorted),
// visible history, journeys, idempotency keys, consent and the identity
// part. Two customers with the same description hold the same state. The
// embedded store's tests compare states with it (across restarts,
// checkpoints and restores); the format is not stable.
func (m *Model) Describe(c *Customer) string {
	var b strings.Builder
	for j, v := range c.overlay {
		if v.at != 0 {
			fmt.Fprintf(&b, " %s=%v/%d/%q@%d", m.m.fields[j].Name, v.num, v.unix, v.str, v.at)
		}
	}
	var aggs []string
	for _, ref := range c.aggs {
		a := ref.a
		aggs = append(aggs, fmt.Sprintf("%v:%s:%v:%d:%v:%d:%v:%d:%v", a.kind, a.key, a.outcome, a.seen, a.recent, a.hourTop, a.hours, a.dayTop, a.days))
	}
	slices.Sort(aggs)
	fmt.Fprintf(&b, " aggs=%v", aggs)
	v := View{c: c}
	for _, h := range v.History(nil, c.histN) {
		fmt.Fprintf(&b, " h=%s/%s/%s/%v/%v/%d", h.Action, h.Group, h.Channel, h.Outcome, h.Value, h.At.UnixNano())
	}
	for _, j := range c.journeys {
		fmt.Fprintf(&b, " j=%s/%d/%v/%d/%d", j.Journey, j.Step, j.Status, j.EnteredAt.UnixNano(), j.StepAt.UnixNano())
	}
	for _, k := range c.ids {
		fmt.Fprintf(&b, " id=%d/%s", k.kind, k.id)
	}
	for _, p := range c.consent {
		fmt.Fprintf(&b, " consent=%s/%s/%v", p.channel, p.purpose, p.trail)
	}
	if c.ident != nil {
		fmt.Fprintf(&b, " ident=%x", appendIdent(nil, c.ident))
	}
	return b.String()
}
