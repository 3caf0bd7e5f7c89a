package stateio

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"nba/state"
)

// Source is a state store export reads: either backend (state.Porter:
// the embedded store, the Redis backend).
type Source interface {
	// Each calls fn with every customer's state until fn fails.
	Each(fn func(*state.CustomerDump) error) error
	// Tombstones lists the tombstones of erased customers lasting at now.
	Tombstones(now time.Time) ([]state.Tombstone, error)
}

// Target is a state store import writes to.
type Target interface {
	// RecordContacts records contacts durably and returns how many were
	// duplicates (their id remembered) and so not recorded; on an error
	// none is recorded.
	RecordContacts(cs []state.Contact) (dups int, err error)
	// Restore replaces customers' states; on an error none is restored.
	Restore(cs ...state.CustomerDump) error
	// RestoreTombstones keeps erased customers' tombstones; on an error
	// none is kept.
	RestoreTombstones(ts ...state.Tombstone) error
	// Checkpoint makes restored states and tombstones durable.
	Checkpoint() error
}

var (
	_ Source = state.Porter(nil)
	_ Target = state.Porter(nil)
)

// Counts says how much state an export wrote or an import loaded.
type Counts struct {
	Customers  int `json:"customers"`  // customers whose state was written or restored, or who had contact rows
	Contacts   int `json:"contacts"`   // contacts (rows recorded, and in customers' states)
	Duplicates int `json:"duplicates"` // contact rows not recorded again: their id was remembered
	Fields     int `json:"fields"`     // profile field values (what events set)
	Journeys   int `json:"journeys"`   // journey positions
	IDs        int `json:"ids"`        // remembered idempotency keys
	Refused    int `json:"refused"`    // rows refused (import)
	Tombstones int `json:"tombstones"` // tombstones of erased customers
}

func (c *Counts) addCustomer(x *state.CustomerDump) {
	c.Customers++
	c.Contacts += len(x.Contacts)
	c.Fields += len(x.Fields)
	c.Journeys += len(x.Journeys)
	c.IDs += len(x.IDs)
}

// Export writes every customer's state from src to w as JSON Lines, one
// customer a line, then the tombstones of erased customers lasting now,
// one a line.
func Export(w io.Writer, src Source) (Counts, error) { return ExportWith(w, src, ExportOptions{}) }

// ExportOptions configure ExportWith.
type ExportOptions struct {
	// IdentityKey is the key src's hashed identifiers were hashed with
	// (nil: unknown): its fingerprint is written first, so that an import
	// can refuse a target whose key would not resolve them.
	IdentityKey []byte
}

// ExportWith is Export with options.
func ExportWith(w io.Writer, src Source, opt ExportOptions) (Counts, error) {
	var n Counts
	bw := bufio.NewWriterSize(w, 256<<10)
	var buf []byte
	if len(opt.IdentityKey) > 0 {
		buf = AppendKeyLine(buf, KeyFingerprint(opt.IdentityKey))
		if _, err := bw.Write(buf); err != nil {
			return n, fmt.Errorf("cannot export state: %w", err)
		}
	}
	err := src.Each(func(c *state.CustomerDump) error {
		var err error
		if buf, err = AppendCustomer(buf[:0], c); err != nil {
			return err
		}
		n.addCustomer(c)
		_, err = bw.Write(buf)
		return err
	})
	if err == nil {
		var ts []state.Tombstone
		ts, err = src.Tombstones(time.Now())
		slices.SortFunc(ts, func(a, b state.Tombstone) int { return strings.Compare(a.Pseudonym, b.Pseudonym) })
		for i := 0; i < len(ts) && err == nil; i++ {
			if buf, err = AppendTombstone(buf[:0], ts[i]); err == nil {
				_, err = bw.Write(buf)
				n.Tombstones++
			}
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return n, fmt.Errorf("cannot export state: %w", err)
	}
	return n, nil
}

// Options configure Import.
type Options struct {
	// Refused is called for each refused row with its line number (of
	// the file after decompression, from 1) and the reason, which names
	// keys and columns but no value. Nil: refused rows are only counted.
	Refused func(line int, reason error)
	// MaxLineBytes bounds a JSON line (a customer's whole state). Default
	// 16 MiB.
	MaxLineBytes int
	// CheckContact, if not nil, checks each contact row (CSV or JSON, not
	// a customer's line) before it is written, as feedback would check it
	// (the catalog's actions and channels, the range of its time), and
	// may complete it (the action's group when the row has none). An
	// error refuses the row; it names the column or key at fault.
	CheckContact func(c *state.Contact) error
	// CheckIdentityKey, if not nil, is called with the fingerprint of the
	// identity key a file names (KeyFingerprint): an error stops the
	// import, so that identifiers hashed with another key than the
	// target's are not imported (they would resolve to no one). Nil: the
	// fingerprint is not checked.
	CheckIdentityKey func(fingerprint string) error
}

// Batch sizes of Import: contacts and customers per write.
const (
	contactBatch  = 4096
	customerBatch = 256
)

// Import reads JSON Lines or CSV (see the package documentation),
// zstd-compressed or not (told by its magic bytes), into dst. A row that
// does not decode, or that dst refuses as invalid, is refused: reported to
// opt.Refused and counted, and the others are imported. Rows are applied
// in file order. Import returns after everything imported is durable; it
// fails only when the input cannot be read or dst cannot be written (then
// rows before the failure may have been imported).
//
// Importing a file twice leaves the same state as once for customers'
// states (they replace) and for contacts with an id (while the customer's
// state remembers it: state.Config.MaxIDsPerCustomer); contacts without an
// id are recorded again.
func Import(r io.Reader, dst Target, opt Options) (Counts, error) {
	if opt.MaxLineBytes <= 0 {
		opt.MaxLineBytes = 16 << 20
	}
	br := bufio.NewReaderSize(r, 256<<10)
	if magic, _ := br.Peek(4); bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return Counts{}, fmt.Errorf("cannot import state: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 256<<10)
	}
	im := &importer{dst: dst, opt: opt, seen: map[string]struct{}{}}
	var err error
	if first, skipped := firstByte(br); first == '{' {
		err = im.jsonLines(br, 1+skipped)
	} else if first != 0 {
		err = im.csv(br, skipped)
	}
	if err == nil {
		err = im.flush()
	}
	if im.restored {
		// Also after a failure: what was restored before it is kept if
		// the store can still checkpoint.
		if cerr := dst.Checkpoint(); cerr != nil && err == nil {
			err = fmt.Errorf("cannot make restored state durable: %w", cerr)
		}
	}
	if err != nil {
		return im.n, fmt.Errorf("cannot import state: %w", err)
	}
	return im.n, nil
}

// firstByte returns the first byte that is not white space or a byte
// order mark, without consuming it, or 0 at the end, and how many lines it
// skipped.
func firstByte(br *bufio.Reader) (first byte, lines int) {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return 0, lines
		}
		switch b[0] {
		case '\n':
			lines++
			fallthrough
		case ' ', '\t', '\r':
			br.ReadByte()
			continue
		case 0xef:
			if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xef, 0xbb, 0xbf}) {
				br.Discard(3)
				continue
			}
		}
		return b[0], lines
	}
}

type pendingContact struct {
	line int
	c    state.Contact
}

type pendingCustomer struct {
	line int
	c    state.CustomerDump
}

type pendingTombstone struct {
	line int
	t    state.Tombstone
}

type importer struct {
	dst        Target
	opt        Options
	n          Counts
	contacts   []pendingContact
	customers  []pendingCustomer
	tombstones []pendingTombstone
	seen       map[string]struct{} // customers of contact rows
	restored   bool
}

func (im *importer) refuse(line int, err error) {
	im.n.Refused++
	if im.opt.Refused != nil {
		im.opt.Refused(line, err)
	}
}

func (im *importer) addContact(line int, c state.Contact) error {
	if im.opt.CheckContact != nil {
		if err := im.opt.CheckContact(&c); err != nil {
			im.refuse(line, err)
			return nil
		}
	}
	if len(im.customers) > 0 {
		if err := im.flushCustomers(); err != nil {
			return err
		}
	}
	im.contacts = append(im.contacts, pendingContact{line, c})
	if len(im.contacts) >= contactBatch {
		return im.flushContacts()
	}
	return nil
}

func (im *importer) addCustomer(line int, c *state.CustomerDump) error {
	if len(im.contacts) > 0 {
		if err := im.flushContacts(); err != nil {
			return err
		}
	}
	im.customers = append(im.customers, pendingCustomer{line, *c})
	if len(im.customers) >= customerBatch {
		return im.flushCustomers()
	}
	return nil
}

func (im *importer) flush() error {
	if err := im.flushContacts(); err != nil {
		return err
	}
	if err := im.flushCustomers(); err != nil {
		return err
	}
	return im.flushTombstones()
}

// addTombstone queues a tombstone; tombstones are independent of the
// other rows, so they are kept in batches of their own.
func (im *importer) addTombstone(line int, t state.Tombstone) error {
	im.tombstones = append(im.tombstones, pendingTombstone{line, t})
	if len(im.tombstones) >= contactBatch {
		return im.flushTombstones()
	}
	return nil
}

// flushTombstones keeps the pending tombstones, as flushContacts writes
// contacts.
func (im *importer) flushTombstones() error {
	p := im.tombstones
	if len(p) == 0 {
		return nil
	}
	im.tombstones = p[:0]
	ts := make([]state.Tombstone, len(p))
	for i := range p {
		ts[i] = p[i].t
	}
	return im.restoreTombstones(p, ts)
}

func (im *importer) restoreTombstones(p []pendingTombstone, ts []state.Tombstone) error {
	err := im.dst.RestoreTombstones(ts...)
	switch {
	case err == nil:
		im.restored = true
		im.n.Tombstones += len(ts)
		return nil
	case !errors.Is(err, state.ErrInvalid):
		return err
	case len(ts) == 1:
		im.refuse(p[0].line, reason(err))
		return nil
	}
	h := len(ts) / 2
	if err := im.restoreTombstones(p[:h], ts[:h]); err != nil {
		return err
	}
	return im.restoreTombstones(p[h:], ts[h:])
}

// flushContacts writes the pending contacts in one durable write. If dst
// refuses the batch as invalid, it writes the halves, down to single rows,
// and refuses the invalid ones: a bad row costs about 2·log2(batch) writes.
func (im *importer) flushContacts() error {
	p := im.contacts
	if len(p) == 0 {
		return nil
	}
	im.contacts = p[:0]
	cs := make([]state.Contact, len(p))
	for i := range p {
		cs[i] = p[i].c
	}
	return im.recordContacts(p, cs)
}

func (im *importer) recordContacts(p []pendingContact, cs []state.Contact) error {
	dups, err := im.dst.RecordContacts(cs)
	switch {
	case err == nil:
		im.contactsDone(cs, dups)
		return nil
	case !errors.Is(err, state.ErrInvalid):
		return err
	case len(cs) == 1:
		im.refuse(p[0].line, reason(err))
		return nil
	}
	h := len(cs) / 2
	if err := im.recordContacts(p[:h], cs[:h]); err != nil {
		return err
	}
	return im.recordContacts(p[h:], cs[h:])
}

func (im *importer) contactsDone(cs []state.Contact, dups int) {
	im.n.Contacts += len(cs) - dups
	im.n.Duplicates += dups
	for i := range cs {
		if _, ok := im.seen[cs[i].Customer]; !ok {
			im.seen[cs[i].Customer] = struct{}{}
			im.n.Customers++
		}
	}
}

// flushCustomers restores the pending customers, as flushContacts writes
// contacts.
func (im *importer) flushCustomers() error {
	p := im.customers
	if len(p) == 0 {
		return nil
	}
	im.customers = p[:0]
	cs := make([]state.CustomerDump, len(p))
	for i := range p {
		cs[i] = p[i].c
	}
	return im.restore(p, cs)
}

func (im *importer) restore(p []pendingCustomer, cs []state.CustomerDump) error {
	err := im.dst.Restore(cs...)
	switch {
	case err == nil:
		im.customersDone(cs)
		return nil
	case !errors.Is(err, state.ErrInvalid):
		return err
	case len(cs) == 1:
		im.refuse(p[0].line, reason(err))
		return nil
	}
	h := len(cs) / 2
	if err := im.restore(p[:h], cs[:h]); err != nil {
		return err
	}
	return im.restore(p[h:], cs[h:])
}

func (im *importer) customersDone(cs []state.CustomerDump) {
	im.restored = true
	for i := range cs {
		if _, ok := im.seen[cs[i].ID]; ok {
			im.n.Customers-- // counted again below
		}
		im.seen[cs[i].ID] = struct{}{}
		im.n.addCustomer(&cs[i])
	}
}

// reason strips a store's error of its "cannot restore customer 0:"
// wrapping, which names the position in a batch of one.
func reason(err error) error {
	var se *state.Error
	if errors.As(err, &se) {
		if inner := errors.Unwrap(se.Err); inner != nil {
			return inner
		}
		return se.Err
	}
	return err
}

func (im *importer) jsonLines(br *bufio.Reader, first int) error {
	for line := first; ; line++ {
		b, err := readLine(br, im.opt.MaxLineBytes)
		if errors.Is(err, errLineTooLong) {
			im.refuse(line, fmt.Errorf("line longer than %d bytes", im.opt.MaxLineBytes))
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(bytes.TrimSpace(b)) > 0 {
			row, derr := DecodeLine(b)
			switch {
			case derr != nil:
				im.refuse(line, derr)
			case row.IdentityKey != "":
				if im.opt.CheckIdentityKey != nil {
					if kerr := im.opt.CheckIdentityKey(row.IdentityKey); kerr != nil {
						return fmt.Errorf("line %d: %w", line, kerr)
					}
				}
			case row.Tombstone != nil:
				if werr := im.addTombstone(line, *row.Tombstone); werr != nil {
					return werr
				}
			case row.Customer != nil:
				if werr := im.addCustomer(line, row.Customer); werr != nil {
					return werr
				}
			default:
				if werr := im.addContact(line, row.Contact); werr != nil {
					return werr
				}
			}
		}
		if err != nil {
			return nil // io.EOF
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline; a line longer than
// max is skipped whole and errLineTooLong returned.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(b) > max {
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = br.ReadSlice('\n')
				}
				if err != nil && !errors.Is(err, io.EOF) {
					return nil, err
				}
				return nil, errLineTooLong
			}
			long = append(long, b...)
			continue
		}
		if long != nil {
			b = append(long, b...)
		}
		if len(b) > max {
			return nil, errLineTooLong
		}
		return bytes.TrimSuffix(b, []byte{'\n'}), err
	}
}

// csvColumns are the columns a contacts CSV may have.
var csvColumns = []string{"customer_id", "action", "group", "channel", "outcome", "at", "value", "id"}

// csv reads contacts as CSV; skipped lines came before r.
func (im *importer) csv(r io.Reader, skipped int) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return fmt.Errorf("CSV header: %w", err)
	}
	col := make([]int, len(csvColumns))
	for i := range col {
		col[i] = -1
	}
	for i, h := range head {
		j := slices.Index(csvColumns, h)
		if j < 0 {
			return fmt.Errorf("CSV header: unknown column %q (want customer_id, action, group, channel, outcome, at, value, id)", h)
		}
		if col[j] >= 0 {
			return fmt.Errorf("CSV header: column %q given twice", h)
		}
		col[j] = i
	}
	for _, need := range []string{"customer_id", "action", "channel", "outcome", "at"} {
		if col[slices.Index(csvColumns, need)] < 0 {
			return fmt.Errorf("CSV header: no %q column", need)
		}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			im.refuse(skipped+pe.Line, fmt.Errorf("column %d: %w", pe.Column, pe.Err))
			continue
		}
		if err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
		line += skipped
		if len(rec) != len(head) {
			im.refuse(line, fmt.Errorf("%d columns, the header has %d", len(rec), len(head)))
			continue
		}
		get := func(name string) string {
			if i := col[slices.Index(csvColumns, name)]; i >= 0 {
				return rec[i]
			}
			return ""
		}
		k := contactRow{Customer: get("customer_id"), Action: get("action"), Group: get("group"), Channel: get("channel"),
			Outcome: get("outcome"), At: get("at"), ID: get("id")}
		v, err := parseValue(get("value"))
		var c state.Contact
		if err == nil {
			c, err = k.contact(v)
		}
		if err != nil {
			im.refuse(line, err)
			continue
		}
		if err := im.addContact(line, c); err != nil {
			return err
		}
	}
}
