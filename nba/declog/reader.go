package declog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ReadStats says what a read recovered and what it lost.
type ReadStats struct {
	Files   int
	Batches int // complete batches read
	Records int // records passed to the callback
	// LostRecords is the number of records in batches that could not be
	// read (truncated or corrupt), as their metadata states; a batch whose
	// metadata itself is cut off counts as unknown (0 here, but its bytes
	// are in LostBytes).
	LostRecords int
	// LostBytes is the number of file bytes that could not be read.
	LostBytes int64
	// Damaged is the number of files with lost bytes.
	Damaged int
	// Erased is the number of records skipped because their customer was
	// erased (erase.go); not in Records.
	Erased int
}

func (s *ReadStats) add(o ReadStats) {
	s.Files += o.Files
	s.Batches += o.Batches
	s.Records += o.Records
	s.LostRecords += o.LostRecords
	s.LostBytes += o.LostBytes
	s.Damaged += o.Damaged
	s.Erased += o.Erased
}

// ReadDir reads every log file of prefix in dir, oldest first, passing each
// record line (without its newline) to fn. The line is only valid during the
// call. It tolerates truncated and corrupt batches (counted in the stats) and
// stops at the first error of fn or of the file system. Records of
// customers erased (ErasedPseudonyms) are skipped and counted in
// ReadStats.Erased.
func ReadDir(dir, prefix string, fn func(line []byte) error) (ReadStats, error) {
	var total ReadStats
	files, err := Files(dir, prefix)
	if err != nil {
		return total, err
	}
	erased, err := ErasedPseudonyms(dir)
	if err != nil {
		return total, err
	}
	if len(erased) > 0 {
		inner := fn
		fn = func(line []byte) error {
			if c := recordCustomer(line); c != nil && erased[string(c)] {
				total.Erased++
				return nil
			}
			return inner(line)
		}
	}
	dec, err := newDecoder()
	if err != nil {
		return total, err
	}
	defer dec.Close()
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return total, fmt.Errorf("cannot read decision log: %w", err)
		}
		st, err := readFile(f, dec, fn)
		f.Close()
		total.add(st)
		if err != nil {
			return total, fmt.Errorf("cannot read decision log %q: %w", path, err)
		}
	}
	total.Records -= total.Erased
	return total, nil
}

// ReadFile reads one log file from r; see ReadDir.
func ReadFile(r io.Reader, fn func(line []byte) error) (ReadStats, error) {
	dec, err := newDecoder()
	if err != nil {
		return ReadStats{}, err
	}
	defer dec.Close()
	return readFile(r, dec, fn)
}

func newDecoder() (*zstd.Decoder, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBatchLimit), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("cannot create zstd decoder: %w", err)
	}
	return dec, nil
}

func readFile(r io.Reader, dec *zstd.Decoder, fn func(line []byte) error) (ReadStats, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if isSnappy(br) {
		return readSnappy(br, fn)
	}
	fr := fileReader{r: br, fn: fn, st: ReadStats{Files: 1}}
	var hdr [8 + metaSize]byte
	var frame, buf []byte
	for {
		if more, err := fr.header(hdr[:]); !more {
			return fr.st, err
		}
		n := len(hdr)
		m := hdr[:]
		x, ok := parseMeta(m[8:])
		if binary.LittleEndian.Uint32(m[0:]) != skipMagic || binary.LittleEndian.Uint32(m[4:]) != metaSize || !ok {
			fr.lose(0, int64(n), true)
			return fr.st, nil
		}
		frame = grow(frame, int(x.zLen))
		k, err := io.ReadFull(br, frame)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			fr.lose(x.count, int64(n+k), false)
			return fr.st, nil
		}
		if err != nil {
			return fr.st, err
		}
		ok = crc32.Checksum(frame, castagnoli) == x.sum
		if ok {
			// The output is capped at the size the metadata states.
			buf, err = dec.DecodeAll(frame, grow(buf, int(x.raw))[:0])
			ok = err == nil
		}
		if err := fr.emit(buf, ok, x, int64(n+k)); err != nil {
			return fr.st, err
		}
	}
}

// fileReader is the state of one file's read, whatever its codec.
type fileReader struct {
	r  io.Reader
	fn func(line []byte) error
	st ReadStats
}

// header reads the next batch's (or chunk's) fixed-size header into b. It
// reports false at the end of the file, counting a cut-off header as lost,
// or on a read error.
func (f *fileReader) header(b []byte) (more bool, err error) {
	n, err := io.ReadFull(f.r, b)
	switch err {
	case nil:
		return true, nil
	case io.EOF:
		return false, nil
	case io.ErrUnexpectedEOF:
		f.lose(0, int64(n), false)
		return false, nil
	}
	return false, err
}

// lose counts records and bytes that could not be read; with rest, the
// remaining bytes cannot be framed and are discarded as lost too.
func (f *fileReader) lose(records int, n int64, rest bool) {
	f.st.LostRecords += records
	f.st.LostBytes += n
	f.st.Damaged = 1
	if rest {
		k, _ := io.Copy(io.Discard, f.r)
		f.st.LostBytes += k
	}
}

// emit passes the lines of a decoded batch to fn, or counts the batch
// (size bytes in the file) as lost when it could not be decoded (!ok) or
// does not match its metadata. It returns fn's error.
func (f *fileReader) emit(out []byte, ok bool, x meta, size int64) error {
	if !ok || uint64(len(out)) != x.raw || bytes.Count(out, []byte{'\n'}) != x.count || (len(out) > 0 && out[len(out)-1] != '\n') {
		f.lose(x.count, size, false)
		return nil
	}
	f.st.Batches++
	for len(out) > 0 {
		i := bytes.IndexByte(out, '\n')
		f.st.Records++
		if err := f.fn(out[:i]); err != nil {
			return err
		}
		out = out[i+1:]
	}
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// Record is one decoded log line: the union of the decision and feedback
// fields (see the package documentation for the schema).
type Record struct {
	Type      string    `json:"type"`
	Customer  string    `json:"customer"`
	ID        string    `json:"id,omitempty"`
	Decision  string    `json:"decision,omitempty"`
	Time      time.Time `json:"time"`
	Channel   string    `json:"channel,omitempty"`
	Placement string    `json:"placement,omitempty"`
	Limit     int       `json:"limit,omitempty"`
	// Context is the context digest: "context_digest", or "context" when
	// a string (records written before the context was logged in full).
	Context string `json:"-"`
	// ContextValues is the "context" object, in the order written.
	ContextValues Values          `json:"-"`
	RawContext    json.RawMessage `json:"context,omitempty"`
	ContextDigest string          `json:"context_digest,omitempty"`
	Seed          uint64          `json:"seed,omitempty"`
	// Inputs is nil for records written without them.
	Inputs   *RecordInputs     `json:"inputs,omitempty"`
	Control  bool              `json:"control,omitempty"`
	Versions map[string]string `json:"versions,omitempty"`
	// Candidates lists the scored candidates, then the removed ones (from
	// "removed", by stage in name order; Stage set, no scores).
	Candidates []RecordCandidate   `json:"candidates,omitempty"`
	Removed    map[string][]string `json:"removed,omitempty"`
	Chosen     []struct {
		Action  string   `json:"action"`
		Slot    int      `json:"slot"`
		Prob    *float64 `json:"prob"`
		Samples int      `json:"samples"`
	} `json:"chosen,omitempty"`
	Action string   `json:"action,omitempty"`
	Event  string   `json:"event,omitempty"`
	Reward *float64 `json:"reward,omitempty"`

	// State is "stale" for a decision made while the customer's live
	// state could not be read (its inputs hold what it used instead).
	State string `json:"state,omitempty"`
}

// RecordInputs is a decoded "inputs" object.
type RecordInputs struct {
	Known     bool   `json:"known"`
	Anonymous bool   `json:"anonymous,omitempty"`
	Profile   Values `json:"profile"`
	// NonZeroHistory: History lists only non-zero counts (see Inputs).
	NonZeroHistory bool `json:"history_nonzero,omitempty"`
	History        []struct {
		Scope    string `json:"scope"`
		Key      string `json:"key"`
		Outcome  string `json:"outcome"`
		WindowNS int64  `json:"window_ns"`
		Count    int    `json:"count"`
	} `json:"history"`
	Journeys []struct {
		Journey    string    `json:"journey"`
		Step       int       `json:"step"`
		Status     string    `json:"status"`
		EnteredAt  time.Time `json:"entered_at"`
		LastStepAt time.Time `json:"last_step_at"`
	} `json:"journeys"`
	Contacts []struct {
		Scope    string   `json:"scope"`
		Key      string   `json:"key"`
		AtNS     []int64  `json:"at_ns"`
		Outcomes []string `json:"outcomes"`
	} `json:"contacts,omitempty"`
}

// Values is a decoded object of named values (a context or a profile) in
// the order written: strings have KindString, numbers KindNumber (null is
// NaN), booleans KindBool (Num 1 or 0), {"s","n"} objects KindCategory.
type Values []Value

// UnmarshalJSON decodes a JSON object of values.
func (vs *Values) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("values: want an object")
	}
	*vs = (*vs)[:0]
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("values: %w", err)
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("values: %q: %w", key, err)
		}
		v := Value{Key: key, Kind: KindNumber, Num: math.NaN()}
		switch raw[0] {
		case '"':
			v.Kind, v.Num = KindString, 0
			err = json.Unmarshal(raw, &v.Str)
		case 't', 'f':
			var b bool
			err = json.Unmarshal(raw, &b)
			v.Kind, v.Num = KindBool, 0
			if b {
				v.Num = 1
			}
		case 'n':
		case '{':
			var c struct {
				S string   `json:"s"`
				N *float64 `json:"n"`
			}
			err = json.Unmarshal(raw, &c)
			v.Kind, v.Str = KindCategory, c.S
			if c.N != nil {
				v.Num = *c.N
			}
		default:
			err = json.Unmarshal(raw, &v.Num)
		}
		if err != nil {
			return fmt.Errorf("values: %q: %w", key, err)
		}
		*vs = append(*vs, v)
	}
	return nil
}

// RecordCandidate is one candidate of a logged decision: its scores, or the
// stage that removed it.
type RecordCandidate struct {
	Action string   `json:"action"`
	Stage  string   `json:"stage,omitempty"`
	P      *float64 `json:"p,omitempty"`
	Value  *float64 `json:"value,omitempty"`
	Score  *float64 `json:"score,omitempty"`
}

// ParseRecord decodes one log line. It is for offline analysis and allocates.
// It reads records of every schema version (see the package documentation).
func ParseRecord(line []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("cannot parse decision log record: %w", err)
	}
	r.Context = r.ContextDigest
	if len(r.RawContext) > 0 {
		var err error
		switch r.RawContext[0] {
		case '"':
			err = json.Unmarshal(r.RawContext, &r.Context)
		case 'n':
		default:
			err = json.Unmarshal(r.RawContext, &r.ContextValues)
		}
		if err != nil {
			return r, fmt.Errorf("cannot parse decision log record: context: %w", err)
		}
	}
	stages := make([]string, 0, len(r.Removed))
	for st := range r.Removed {
		stages = append(stages, st)
	}
	slices.Sort(stages)
	for _, st := range stages {
		for _, a := range r.Removed[st] {
			r.Candidates = append(r.Candidates, RecordCandidate{Action: a, Stage: st})
		}
	}
	if r.Type != "decision" && r.Type != "feedback" {
		return r, errors.New("cannot parse decision log record: unknown type " + fmt.Sprintf("%q", r.Type))
	}
	return r, nil
}
