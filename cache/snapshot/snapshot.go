package snapshot

import (
	"fmt"
	"hash/maphash"
	"math"
	"time"
	"unsafe"
)

// Kind is the type of a snapshot column.
type Kind uint8

// Column kinds.
const (
	KindNumber   Kind = iota // float32; NaN when missing
	KindCategory             // dictionary code (int32); -1 when missing
	KindTime                 // unix seconds (int64)
	KindBool                 // stored as 0/1 float32; NaN when missing
)

// String returns the name of k as used in schemas and errors.
func (k Kind) String() string {
	switch k {
	case KindNumber:
		return "number"
	case KindCategory:
		return "category"
	case KindTime:
		return "time"
	case KindBool:
		return "bool"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind returns the Kind named s ("number", "category", "time", "bool").
func ParseKind(s string) (Kind, error) {
	switch s {
	case "number", "float", "float32":
		return KindNumber, nil
	case "category", "string":
		return KindCategory, nil
	case "time", "date", "timestamp":
		return KindTime, nil
	case "bool", "boolean":
		return KindBool, nil
	}
	return 0, fmt.Errorf("unknown column kind %q", s)
}

// Column names a feature column and its kind.
type Column struct {
	Name string
	Kind Kind
}

// Schema declares the columns a snapshot must have. The file must hold
// exactly these feature columns (in any order) plus the id column.
type Schema struct {
	// ID is the name of the id column. Empty means "id"; for CSV, an empty
	// ID accepts whatever the first header field is called.
	ID      string
	Columns []Column
}

// Missing values: a time is missingTime, and the words stored for a missing
// number or bool and a missing category are nanWord and missingCode.
const (
	missingTime        = math.MinInt64
	nanWord     uint32 = 0x7fc00000 // float32 quiet NaN
	missingCode uint32 = 1<<32 - 1  // int32(-1)
)

// column is one feature column: its kind, where its words sit in a row and,
// for a category column, its dictionary.
type column struct {
	Column
	// off is the index of the column's first word within a row: a number or
	// bool is one word of float32 bits (NaN when missing), a category one
	// word of int32 code (-1 when missing), a time two words, the low then
	// the high half of its int64 unix seconds (missingTime when missing).
	off  int
	dict []string // KindCategory: code -> value, sorted
	// codes maps a category value to its code; built at load.
	codes map[string]int32
}

// width returns the number of words a value of kind k takes in a row.
func width(k Kind) int {
	if k == KindTime {
		return 2
	}
	return 1
}

// layout gives every column its offset in a row and returns the number of
// words per row. Columns sit in storage order, without padding: a time's
// two words are read separately, so they need no 8-byte alignment.
func layout(cols []column) (stride int) {
	for i := range cols {
		cols[i].off = stride
		stride += width(cols[i].Kind)
	}
	return stride
}

// putTime stores the unix seconds v in the two words of w, low half first.
func putTime(w []uint32, v int64) {
	w = w[:2]
	w[0], w[1] = uint32(v), uint32(uint64(v)>>32)
}

// Snapshot is one loaded table of customer features. It is immutable and
// safe for concurrent use; Lookup and the value accessors do not allocate.
type Snapshot struct {
	name    string
	version string
	asOf    time.Time

	rows int
	// segs holds the values row after row, 1<<shift rows per segment: the
	// value of column c in row r starts at word (r&(1<<shift-1))*stride +
	// cols[c].off of segs[r>>shift]. A decision reads every column of one
	// random row, which this layout serves from a few adjacent cache lines
	// instead of one cache miss per column; see BenchmarkRowRead. Segments
	// (of about 4 MiB) let a load grow the table as it streams the file
	// without ever copying the whole of it.
	segs    [][]uint32
	shift   uint
	stride  int // words per row
	cols    []column
	columns []Column       // public copy of the column list
	byName  map[string]int // column name -> index

	ids    []byte   // all ids, back to back
	idOffs []uint32 // rows+1 offsets into ids

	// table is an open-addressing hash table with linear probing. A slot
	// holds row+1 in its low 32 bits (0 = empty) and the high 32 bits of
	// the id's hash in its high 32 bits, so most probes that miss are
	// settled without touching the id bytes.
	table []uint64
	mask  uint64
	seed  maphash.Seed

	size int64 // SizeBytes
}

// Name returns the file name or the name given to Parse.
func (s *Snapshot) Name() string { return s.name }

// Version identifies the content: Config.Version when given, otherwise the
// first 16 hex digits of the SHA-256 of the file's bytes as read (before
// decompression).
func (s *Snapshot) Version() string { return s.version }

// AsOf is the time the data describes: Config.AsOf when given; for Load, the
// RFC 3339 time in the sidecar file "<path>.asof" when it exists, otherwise
// the file's modification time; for Parse, the zero time.
func (s *Snapshot) AsOf() time.Time { return s.asOf }

// Len returns the number of customers (rows).
func (s *Snapshot) Len() int { return s.rows }

// Columns returns the feature columns (the id column excluded) in storage
// order. The caller must not modify the returned slice.
func (s *Snapshot) Columns() []Column { return s.columns }

// ColumnIndex returns the index of the named feature column.
func (s *Snapshot) ColumnIndex(name string) (int, bool) {
	i, ok := s.byName[name]
	return i, ok
}

// SizeBytes returns the memory held by the snapshot's tables (columns, ids,
// offsets, index and dictionaries), excluding small fixed overhead. It is
// computed once at load.
func (s *Snapshot) SizeBytes() int64 { return s.size }

// computeSize sums the memory of the snapshot's tables.
func (s *Snapshot) computeSize() int64 {
	n := int64(len(s.ids)) + 4*int64(len(s.idOffs)) + 8*int64(len(s.table))
	for _, seg := range s.segs {
		n += 4 * int64(cap(seg))
	}
	for i := range s.cols {
		for _, d := range s.cols[i].dict {
			n += int64(len(d)) + 16 + 16 // string header in dict and in the map
		}
	}
	return n
}

// row returns the words of row r.
func (s *Snapshot) row(r int) []uint32 {
	seg := s.segs[r>>s.shift]
	i := (r & (1<<s.shift - 1)) * s.stride
	return seg[i : i+s.stride : i+s.stride]
}

func (s *Snapshot) hash(id []byte) uint64 { return maphash.Bytes(s.seed, id) }

// Lookup returns the row of the customer id. It does not allocate.
func (s *Snapshot) Lookup(id []byte) (row int, ok bool) {
	if s == nil || len(s.table) == 0 {
		return -1, false
	}
	h := s.hash(id)
	tag := h >> 32
	for i := h & s.mask; ; i = (i + 1) & s.mask {
		slot := s.table[i]
		if slot == 0 {
			return -1, false
		}
		if slot>>32 == tag {
			r := int(uint32(slot)) - 1
			if string(s.ids[s.idOffs[r]:s.idOffs[r+1]]) == string(id) {
				return r, true
			}
		}
	}
}

// LookupString is Lookup for a string id. It does not allocate.
func (s *Snapshot) LookupString(id string) (row int, ok bool) {
	return s.Lookup(unsafe.Slice(unsafe.StringData(id), len(id)))
}

// ID returns the id of row. It allocates; it is meant for admin pages.
func (s *Snapshot) ID(row int) string {
	return string(s.ids[s.idOffs[row]:s.idOffs[row+1]])
}

// AppendID appends the id of row to dst.
func (s *Snapshot) AppendID(dst []byte, row int) []byte {
	return append(dst, s.ids[s.idOffs[row]:s.idOffs[row+1]]...)
}

// Number returns the value of a number column, 0/1 for a bool column, the
// code for a category column, and NaN for a missing value or a time column
// (use Time: float32 cannot hold unix seconds exactly).
func (s *Snapshot) Number(col, row int) float32 {
	c := &s.cols[col]
	return numberOf(c.Kind, s.row(row)[c.off])
}

// numberOf is Number for the first word w of a value of kind k.
func numberOf(k Kind, w uint32) float32 {
	switch k {
	case KindNumber, KindBool:
		return math.Float32frombits(w)
	case KindCategory:
		if v := int32(w); v >= 0 {
			return float32(v)
		}
	}
	return float32(math.NaN())
}

// Numbers writes Number(cols[i], row) as float64 into dst[i] for every i,
// the shape a model's input row takes; it does not allocate. Resolve cols
// once per snapshot with ColumnIndex. dst must be at least len(cols) long.
func (s *Snapshot) Numbers(dst []float64, row int, cols []int) {
	dst = dst[:len(cols)]
	// One bounds check for the row, then each value is at its offset.
	words := s.row(row)
	for i, col := range cols {
		c := &s.cols[col]
		dst[i] = float64(numberOf(c.Kind, words[c.off]))
	}
}

// Time returns the unix seconds of a time column; ok is false when the
// value is missing or col is not a time column.
func (s *Snapshot) Time(col, row int) (unixSec int64, ok bool) {
	c := &s.cols[col]
	if c.Kind != KindTime {
		return 0, false
	}
	w := s.row(row)[c.off:]
	w = w[:2:2]
	v := int64(w[0]) | int64(w[1])<<32
	return v, v != missingTime
}

// Bool returns the value of a bool column; ok is false when missing or when
// col is not a bool column.
func (s *Snapshot) Bool(col, row int) (v, ok bool) {
	c := &s.cols[col]
	if c.Kind != KindBool {
		return false, false
	}
	f := math.Float32frombits(s.row(row)[c.off])
	return f == 1, f == f
}

// Category returns the dictionary code of a category column; it returns
// -1, false when the value is missing or col is not a category column.
func (s *Snapshot) Category(col, row int) (code int32, ok bool) {
	c := &s.cols[col]
	if c.Kind != KindCategory {
		return -1, false
	}
	v := int32(s.row(row)[c.off])
	return v, v >= 0
}

// Dict returns the dictionary of a category column (code -> value), sorted;
// nil for other kinds. The caller must not modify it.
func (s *Snapshot) Dict(col int) []string { return s.cols[col].dict }

// CategoryCode returns the code of value in a category column. Resolve codes
// once per snapshot (at rule compile time), not per request.
func (s *Snapshot) CategoryCode(col int, value string) (int32, bool) {
	c, ok := s.cols[col].codes[value]
	return c, ok
}

// buildIndex fills the id hash table. It reports the first duplicate id.
func (s *Snapshot) buildIndex() error {
	n := uint64(4)
	for n < 2*uint64(s.rows) {
		n <<= 1
	}
	s.seed = maphash.MakeSeed()
	s.table = make([]uint64, n)
	s.mask = n - 1
	for r := 0; r < s.rows; r++ {
		id := s.ids[s.idOffs[r]:s.idOffs[r+1]]
		h := s.hash(id)
		tag := h >> 32
		i := h & s.mask
		for {
			slot := s.table[i]
			if slot == 0 {
				s.table[i] = tag<<32 | uint64(r+1)
				break
			}
			if slot>>32 == tag {
				o := int(uint32(slot)) - 1
				if string(s.ids[s.idOffs[o]:s.idOffs[o+1]]) == string(id) {
					// The id is left out: errors go to logs, which carry no
					// customer ids; the rows find it.
					return fmt.Errorf("duplicate id: rows %d and %d", o+1, r+1)
				}
			}
			i = (i + 1) & s.mask
		}
	}
	return nil
}
