// Package wal is an append-only, checksummed write-ahead log with group
// commit and checkpoints.
//
// Guarantees:
//
//   - Append returns only after an fsync that covers its records; a record
//     acknowledged by Append is replayed by every later Open of the directory
//     until a checkpoint that covers it has been written.
//
//   - fsync runs at most once per Config.SyncInterval; concurrent writers that
//     arrive in between share one write and one fsync (group commit).
//
//   - Every record carries its length (twice) and a CRC32C. On Open, an
//     incomplete final write (a torn tail) is detected and truncated; any
//     other damage stops Open with a *CorruptError naming the file, the
//     offset and why, unless Config.SkipCorrupt is set, in which case damaged
//     bytes are skipped and counted.
//
//   - Checkpoint rotates to a new segment, writes the caller's state into a
//     checksummed checkpoint file (temp file, fsync, rename, fsync of the
//     directory), then removes the segments and checkpoints it supersedes.
//     Open loads the newest checkpoint, then replays the segments after it.
//
//   - A failed write or fsync (a full disk, an I/O error) fails the writers
//     of its batch and every append after it (Err reports it) until the log
//     heals: every Config.RetryInterval it reopens the segment, truncates it
//     to the end of the last acknowledged record, fsyncs that, checks
//     that the last acknowledged record (or the segment header) is intact
//     at the new end, and proves with a probe write (one page, fsynced,
//     truncated) that the disk takes writes again. Retrying the failed fsync would prove nothing (the
//     kernel may have dropped the dirty pages); dropping every byte after
//     the last acknowledged record and syncing the truncation does. So a
//     failed write is never replayed, and an acknowledged one never lost.
//
// Limits: records are at most Config.MaxRecordBytes (ErrRecordTooLarge);
// at most Config.MaxPendingBytes of records wait for the next fsync (Append
// fails fast with ErrBacklog beyond that, and Stats.Rejected counts it).
//
// A Log is safe for concurrent use. The directory must be used by one process
// at a time; the log does not lock it.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Log. The zero value of every field but Dir picks the
// documented default.
type Config struct {
	// Dir holds segments and checkpoints; it is created if missing.
	Dir string
	// SyncInterval is the minimum time between two fsyncs; writers arriving
	// in between are batched into the next one. Default 2ms. A writer
	// arriving after a pause longer than SyncInterval does not wait for it;
	// back-to-back appends of a lone writer do (a latency of about
	// SyncInterval plus the fsync: lower it when latency matters more than
	// fsync rate).
	SyncInterval time.Duration
	// MaxRecordBytes is the largest payload Append accepts and replay
	// trusts. Default 1 MiB; at most 1 GiB.
	MaxRecordBytes int
	// MaxPendingBytes bounds the framed bytes waiting for the next fsync.
	// Default 64 MiB; at least MaxRecordBytes plus framing.
	MaxPendingBytes int
	// SkipCorrupt makes Open skip damaged records (counting them in
	// Stats.CorruptRecords) instead of failing.
	SkipCorrupt bool
	// RetryInterval is how often a log whose write failed tries to heal
	// (see the package documentation). Default 1s.
	RetryInterval time.Duration

	// openFile opens a segment; tests replace it to inject faults.
	openFile func(path string, flag int) (segmentFile, error)
}

// segmentFile is what the log needs of a segment file (*os.File).
type segmentFile interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Truncate(size int64) error
	Close() error
}

func openOSFile(path string, flag int) (segmentFile, error) {
	return os.OpenFile(path, flag, 0o644)
}

const (
	defaultSyncInterval = 2 * time.Millisecond
	defaultMaxRecord    = 1 << 20
	defaultMaxPending   = 64 << 20
	maxMaxRecord        = 1 << 30
)

func (c *Config) validate() error {
	if c.Dir == "" {
		return errors.New("wal: Dir is empty")
	}
	if c.SyncInterval < 0 {
		return fmt.Errorf("wal: SyncInterval %v is negative", c.SyncInterval)
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = defaultSyncInterval
	}
	if c.RetryInterval < 0 {
		return fmt.Errorf("wal: RetryInterval %v is negative", c.RetryInterval)
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
	if c.openFile == nil {
		c.openFile = openOSFile
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = defaultMaxRecord
	}
	if c.MaxRecordBytes < 0 || c.MaxRecordBytes > maxMaxRecord {
		return fmt.Errorf("wal: MaxRecordBytes %d is outside [1, %d]", c.MaxRecordBytes, maxMaxRecord)
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = max(defaultMaxPending, c.MaxRecordBytes+frameHeaderLen)
	}
	if c.MaxPendingBytes < c.MaxRecordBytes+frameHeaderLen {
		return fmt.Errorf("wal: MaxPendingBytes %d is below MaxRecordBytes %d plus framing", c.MaxPendingBytes, c.MaxRecordBytes)
	}
	return nil
}

// Errors returned by Append.
var (
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("wal: log is closed")
	// ErrBacklog is returned when MaxPendingBytes are already waiting for
	// an fsync; the caller should shed load.
	ErrBacklog = errors.New("wal: too many bytes waiting for fsync")
	// ErrRecordTooLarge is returned for a record above MaxRecordBytes.
	ErrRecordTooLarge = errors.New("wal: record too large")
)

// CorruptError reports a damaged record found by Open.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

// Error says which file, where and why.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt wal record in %q at offset %d: %s", e.File, e.Offset, e.Reason)
}

// batch is one group commit: the writers waiting on done share err.
type batch struct {
	done chan struct{}
	err  error
}

// Log is an open write-ahead log. It is safe for concurrent use.
type Log struct {
	cfg Config

	mu      sync.Mutex
	pending []byte // framed records waiting for the flusher
	cur     *batch // the batch pending completes; nil when pending is empty
	closed  bool
	failed  error // write/fsync error, until the log heals
	healErr error // why the last attempt to heal failed

	kick chan struct{} // capacity 1: "pending is not empty"
	stop chan struct{}
	done chan struct{}

	fileMu  sync.Mutex // guards f, seq, size and lastRec against the flusher and Checkpoint
	f       segmentFile
	seq     uint64 // sequence of the segment f
	size    int64  // end of the last acknowledged record of f (fsynced)
	lastRec int64  // start of the last acknowledged record of f; 0: none, only the header

	ckptMu sync.Mutex // one Checkpoint at a time

	st stats
}

// Open opens or creates the log in cfg.Dir. If a checkpoint exists, load is
// called once with its body (already verified against its CRC); then replay
// is called for every record after it, in append order. Either callback's
// error stops Open. load may be nil when no checkpoint is expected. Open
// always starts a new segment for appends.
func Open(cfg Config, load func(body io.Reader) error, replay func(rec []byte) error) (*Log, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cannot open wal: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot open wal: %w", err)
	}
	l := &Log{
		cfg:  cfg,
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	next, err := l.recover(load, replay)
	if err != nil {
		return nil, err
	}
	if err := l.startSegment(next); err != nil {
		return nil, fmt.Errorf("cannot open wal %q: %w", cfg.Dir, err)
	}
	l.pending = make([]byte, 0, 64<<10)
	go l.flusher()
	return l, nil
}

func segName(seq uint64) string  { return fmt.Sprintf("wal-%016x.seg", seq) }
func ckptName(seq uint64) string { return fmt.Sprintf("ckpt-%016x.bin", seq) }

// startSegment creates segment seq with its header and makes it durable.
// A segment that cannot be completed is removed: left behind, it would sit
// before the next one with an incomplete header.
func (l *Log) startSegment(seq uint64) error {
	path := filepath.Join(l.cfg.Dir, segName(seq))
	f, err := l.cfg.openFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR|os.O_APPEND)
	if err != nil {
		return err
	}
	_, err = f.Write(appendSegHeader(nil, seq))
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(l.cfg.Dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	l.f, l.seq, l.size, l.lastRec = f, seq, segHeaderSize, 0
	l.st.segments.Add(1)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append writes recs as one unit of group commit and returns after the
// fsync that covers them. recs are copied; the caller may reuse them.
func (l *Log) Append(recs ...[]byte) error {
	need := 0
	for _, r := range recs {
		if len(r) > l.cfg.MaxRecordBytes {
			l.st.tooLarge.Add(1)
			return fmt.Errorf("cannot append to wal: record of %d bytes exceeds the limit of %d: %w", len(r), l.cfg.MaxRecordBytes, ErrRecordTooLarge)
		}
		need += frameHeaderLen + len(r)
	}
	if len(recs) == 0 {
		return nil
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	case l.failed != nil:
		err := l.failed
		l.mu.Unlock()
		return fmt.Errorf("cannot append to wal: earlier write failed: %w", err)
	case len(l.pending)+need > l.cfg.MaxPendingBytes && len(l.pending) > 0:
		l.mu.Unlock()
		l.st.rejected.Add(1)
		return ErrBacklog
	}
	for _, r := range recs {
		l.pending = appendFrame(l.pending, r)
	}
	b := l.cur
	if b == nil {
		b = &batch{done: make(chan struct{})}
		l.cur = b
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	<-b.done
	if b.err == nil {
		l.st.appends.Add(uint64(len(recs)))
	}
	return b.err
}

// flusher writes and fsyncs pending records, at most once per SyncInterval.
func (l *Log) flusher() {
	defer close(l.done)
	spare := make([]byte, 0, 64<<10)
	var last time.Time
	for {
		var retry <-chan time.Time
		if l.Err() != nil {
			retry = time.After(l.cfg.RetryInterval)
		}
		select {
		case <-l.kick:
		case <-retry:
			l.heal()
			continue
		case <-l.stop:
			// Close: flush what is left, then exit.
			l.flushOnce(&spare)
			return
		}
		if wait := l.cfg.SyncInterval - time.Since(last); wait > 0 {
			time.Sleep(wait)
		}
		last = time.Now()
		l.flushOnce(&spare)
	}
}

// flushOnce writes the pending batch, if any, and completes it.
func (l *Log) flushOnce(spare *[]byte) {
	l.mu.Lock()
	data, b := l.pending, l.cur
	l.pending, l.cur = (*spare)[:0], nil
	l.mu.Unlock()
	*spare = data
	if b == nil {
		return
	}
	if err := l.Err(); err != nil {
		// Queued before the log failed: writing it after the failed
		// batch would put it behind a partial record.
		b.err = fmt.Errorf("cannot append to wal: earlier write failed: %w", err)
		close(b.done)
		return
	}
	l.fileMu.Lock()
	start := time.Now()
	_, err := l.f.Write(data)
	if err == nil {
		err = l.f.Sync()
		l.st.observeFsync(time.Since(start))
	}
	if err != nil {
		err = fmt.Errorf("cannot write wal segment %q: %w", segName(l.seq), err)
		l.mu.Lock()
		l.failed = err
		l.mu.Unlock()
		l.st.writeErrors.Add(1)
	} else {
		l.lastRec = l.size + lastFrameStart(data)
		l.size += int64(len(data))
		l.st.bytes.Add(uint64(len(data)))
	}
	l.fileMu.Unlock()
	b.err = err
	close(b.done)
}

// lastFrameStart returns the offset of the last framed record in data, a
// sequence of whole frames.
func lastFrameStart(data []byte) int64 {
	off := 0
	for {
		next := off + frameHeaderLen + int(binary.LittleEndian.Uint32(data[off:]))
		if next >= len(data) {
			return int64(off)
		}
		off = next
	}
}

// Err returns why the log cannot be written now, or nil. A failed log
// heals by itself (see the package documentation).
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil && l.healErr != nil {
		return fmt.Errorf("%w (and cannot heal: %v)", l.failed, l.healErr)
	}
	return l.failed
}

// heal tries to make a failed log writable again: reopen the segment,
// truncate it to the end of the last acknowledged record, fsync, and check
// that record. On any failure the log stays failed until the next try.
func (l *Log) heal() {
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	path := filepath.Join(l.cfg.Dir, segName(l.seq))
	f, err := l.cfg.openFile(path, os.O_RDWR|os.O_APPEND)
	if err == nil {
		err = l.verifyTail(f)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		l.st.healErrors.Add(1)
		l.mu.Lock()
		l.healErr = err
		l.mu.Unlock()
		return
	}
	l.f.Close() // the descriptor that failed; its error is the one we had
	l.f = f
	l.mu.Lock()
	l.failed, l.healErr = nil, nil
	l.mu.Unlock()
	l.st.recoveries.Add(1)
}

// healProbe is how many bytes heal writes and fsyncs past the last
// acknowledged record, then truncates, to prove that the disk takes writes
// again: without it a full disk would look healed at every try (truncating
// needs no space), and /readyz would flap. A crash in between leaves zeros
// at the tail, which Open truncates as a torn write.
const healProbe = 4096

// verifyTail truncates f to the end of the last acknowledged record, fsyncs
// it, checks that this record (or the header) ends exactly there, and
// proves with a probe write that the disk takes writes.
func (l *Log) verifyTail(f segmentFile) error {
	if err := f.Truncate(l.size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := l.checkLast(f); err != nil {
		return err
	}
	_, err := f.Write(make([]byte, healProbe))
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return fmt.Errorf("cannot write yet: %w", err)
	}
	if err := f.Truncate(l.size); err != nil {
		return err
	}
	return f.Sync()
}

// checkLast checks that the last acknowledged record (or the header) of f
// ends at l.size.
func (l *Log) checkLast(f segmentFile) error {
	buf := make([]byte, l.size-l.lastRec)
	if _, err := f.ReadAt(buf, l.lastRec); err != nil {
		return fmt.Errorf("cannot read the last acknowledged record: %w", err)
	}
	if l.lastRec == 0 {
		seq, err := parseSegHeader(buf)
		if err == nil && seq != l.seq {
			err = fmt.Errorf("header names segment %d", seq)
		}
		if err != nil {
			return fmt.Errorf("segment header: %v", err)
		}
		return nil
	}
	if _, next, why, _ := frameAt(buf, 0, l.cfg.MaxRecordBytes); why != "" || next != int64(len(buf)) {
		return fmt.Errorf("the last acknowledged record at offset %d is damaged: %s", l.lastRec, why)
	}
	return nil
}

// Close flushes and fsyncs pending records, then closes the segment. Appends
// after Close fail with ErrClosed. Close is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("cannot close wal %q: %w", l.cfg.Dir, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.cfg.Dir }

// Stats returns the log's counters.
func (l *Log) Stats() Stats { return l.st.snapshot() }

// FsyncBuckets are the upper bounds of the fsync latency histogram in
// Stats.FsyncLatency; the last bucket of the histogram counts everything
// slower than the last bound.
var FsyncBuckets = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	time.Second,
}

// Stats are cumulative counters of a Log since Open.
type Stats struct {
	Appends        uint64 `json:"appends"`         // records acknowledged
	Fsyncs         uint64 `json:"fsyncs"`          // group commits (write + fsync)
	Bytes          uint64 `json:"bytes"`           // framed bytes written to segments
	Rejected       uint64 `json:"rejected"`        // Append calls refused with ErrBacklog
	TooLarge       uint64 `json:"too_large"`       // records refused for exceeding MaxRecordBytes
	WriteErrors    uint64 `json:"write_errors"`    // failed writes or fsyncs (the log is then failed until it heals)
	Recoveries     uint64 `json:"recoveries"`      // times a failed log healed and took appends again
	HealErrors     uint64 `json:"heal_errors"`     // attempts to heal a failed log that failed
	Replayed       uint64 `json:"replayed"`        // records replayed by Open
	TornTails      uint64 `json:"torn_tails"`      // incomplete final writes truncated by Open
	CorruptRecords uint64 `json:"corrupt_records"` // damaged records found (and skipped, with SkipCorrupt)
	Segments       uint64 `json:"segments"`        // segments created
	Checkpoints    uint64 `json:"checkpoints"`     // checkpoints written
	// FsyncLatency counts fsyncs (with their write) by duration: element i
	// counts those at most FsyncBuckets[i] and above FsyncBuckets[i-1]; the
	// last element counts the slower ones.
	FsyncLatency [len(FsyncBuckets) + 1]uint64 `json:"fsync_latency"`
	FsyncSum     time.Duration                 `json:"fsync_sum_ns"` // total time spent in write + fsync
}

type stats struct {
	appends, fsyncs, bytes, rejected, tooLarge, writeErrors atomic.Uint64
	replayed, tornTails, corrupt, segments, checkpoints     atomic.Uint64
	recoveries, healErrors                                  atomic.Uint64
	latency                                                 [len(FsyncBuckets) + 1]atomic.Uint64
	latencySum                                              atomic.Int64
}

func (s *stats) observeFsync(d time.Duration) {
	s.fsyncs.Add(1)
	s.latencySum.Add(int64(d))
	i := 0
	for i < len(FsyncBuckets) && d > FsyncBuckets[i] {
		i++
	}
	s.latency[i].Add(1)
}

func (s *stats) snapshot() Stats {
	out := Stats{
		Appends: s.appends.Load(), Fsyncs: s.fsyncs.Load(), Bytes: s.bytes.Load(),
		Rejected: s.rejected.Load(), TooLarge: s.tooLarge.Load(), WriteErrors: s.writeErrors.Load(),
		Replayed: s.replayed.Load(), TornTails: s.tornTails.Load(), CorruptRecords: s.corrupt.Load(),
		Segments: s.segments.Load(), Checkpoints: s.checkpoints.Load(),
		Recoveries: s.recoveries.Load(), HealErrors: s.healErrors.Load(),
		FsyncSum: time.Duration(s.latencySum.Load()),
	}
	for i := range s.latency {
		out.FsyncLatency[i] = s.latency[i].Load()
	}
	return out
}
