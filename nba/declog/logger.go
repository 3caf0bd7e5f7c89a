package declog

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Config configures a Logger. Zero values take the documented defaults.
type Config struct {
	// Dir is the directory of the log files; created if absent. Required.
	Dir string
	// Prefix starts every file name. Default "decisions".
	Prefix string
	// Secret keys the customer pseudonyms; at least 16 bytes. Required.
	// Keep it out of flags and files (an environment variable).
	Secret []byte
	// QueueSize is the number of records waiting for the writer; beyond it
	// records are dropped. As many encoded records are kept for reuse, so
	// memory is up to about 2·QueueSize·(typical record size). Default 8192.
	QueueSize int
	// MaxRecordBytes bounds one encoded record. Default 64 KiB.
	MaxRecordBytes int
	// MaxBatchBytes is the uncompressed size at which a batch is written
	// before its FlushInterval. Default 1 MiB, at most 32 MiB.
	MaxBatchBytes int
	// FlushInterval is the longest a record waits in memory before its batch
	// is written. Default 1s.
	FlushInterval time.Duration
	// MaxFileBytes rotates a file before a batch would take it past this
	// many (compressed) bytes. Default 64 MiB.
	MaxFileBytes int64
	// MaxFileAge rotates a file at the first batch after it is this old.
	// Default 1h.
	MaxFileAge time.Duration
	// MaxFiles keeps at most this many files of this prefix in Dir,
	// deleting the oldest. Default 1000.
	MaxFiles int
	// NoSync skips the fsync after each batch (faster; a machine crash may
	// then lose what the OS had not written).
	NoSync bool
	// Codec compresses the files: CodecZstd (the default) or CodecSnappy.
	Codec Codec
	// Level is the zstd level. Default zstd.SpeedFastest: the log is written
	// beside decisions on the same cores, and compresses well even so.
	Level zstd.EncoderLevel
	// Now is the clock of file names and ages. Default time.Now.
	Now func() time.Time
}

// Stats counts what a Logger did. All counters only grow.
type Stats struct {
	Enqueued uint64 `json:"enqueued"`  // records accepted into the queue
	Dropped  uint64 `json:"dropped"`   // records dropped because the queue was full or the logger closed
	TooLarge uint64 `json:"too_large"` // records dropped for exceeding MaxRecordBytes
	Written  uint64 `json:"written"`   // records written in complete batches
	Batches  uint64 `json:"batches"`   // batches written
	Files    uint64 `json:"files"`     // files opened
	Removed  uint64 `json:"removed"`   // old files deleted by MaxFiles
	// Errors counts failed writes, opens, syncs and deletes; LostIO the
	// records of batches that could not be written.
	Errors uint64 `json:"errors"`
	LostIO uint64 `json:"lost_io"`
}

const (
	maxBatchLimit = 32 << 20
	metaSize      = 24
	skipMagic     = 0x184D2A5E
	metaTag       = 0x4c44424e // "NBDL"
	fileSuffix    = ".jsonl.zst"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Logger writes decision logs in the background. It is safe for concurrent
// use.
type Logger struct {
	cfg     Config
	queue   chan *record
	free    chan *record // records to reuse, with their buffers: at most QueueSize
	flushes chan chan struct{}
	done    chan struct{}
	stopped chan struct{}
	closed  atomic.Bool
	once    sync.Once
	hold    chan struct{} // tests: the writer waits for it before starting

	enqueued, dropped, tooLarge, written, batches, files, removed, errs, lostIO atomic.Uint64

	eraseMu sync.Mutex // one append to the erasures file at a time (erase.go)
}

// record is one encoded record waiting in the queue.
type record struct {
	kind     string // "decision" or "feedback"
	customer []byte // raw id, pseudonymised by the writer
	body     []byte // JSON after the customer field, with "}\n"
}

// New validates cfg, creates the directory and starts the writer.
func New(cfg Config) (*Logger, error) {
	return newLogger(cfg, nil)
}

func newLogger(cfg Config, hold chan struct{}) (*Logger, error) {
	fail := func(format string, args ...any) (*Logger, error) {
		return nil, fmt.Errorf("cannot start decision log %q: "+format, append([]any{cfg.Dir}, args...)...)
	}
	if cfg.Dir == "" {
		return fail("no directory configured")
	}
	if len(cfg.Secret) < 16 {
		return fail("the pseudonym secret must have at least 16 bytes, got %d", len(cfg.Secret))
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "decisions"
	}
	if strings.ContainsAny(cfg.Prefix, `/\`) {
		return fail("prefix %q contains a path separator", cfg.Prefix)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.QueueSize, 8192)
	def(&cfg.MaxRecordBytes, 64<<10)
	def(&cfg.MaxBatchBytes, 1<<20)
	def(&cfg.MaxFiles, 1000)
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.MaxFileBytes == 0 {
		cfg.MaxFileBytes = 64 << 20
	}
	if cfg.MaxFileAge == 0 {
		cfg.MaxFileAge = time.Hour
	}
	if cfg.Level == 0 {
		cfg.Level = zstd.SpeedFastest
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.QueueSize < 1:
		return fail("queue size must be positive, got %d", cfg.QueueSize)
	case cfg.MaxRecordBytes < 256:
		return fail("max record bytes must be at least 256, got %d", cfg.MaxRecordBytes)
	case cfg.MaxBatchBytes < 1 || cfg.MaxBatchBytes > maxBatchLimit:
		return fail("max batch bytes must be in 1..%d, got %d", maxBatchLimit, cfg.MaxBatchBytes)
	case cfg.FlushInterval < 0 || cfg.MaxFileAge < 0 || cfg.MaxFileBytes < 0:
		return fail("negative flush interval, file age or file size")
	case cfg.MaxFiles < 1:
		return fail("max files must be positive, got %d", cfg.MaxFiles)
	case cfg.Codec > CodecSnappy:
		return fail("unknown codec %d", cfg.Codec)
	}
	cfg.Secret = slices.Clone(cfg.Secret)
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fail("%w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(cfg.Level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		return fail("%w", err)
	}
	l := &Logger{
		cfg:     cfg,
		queue:   make(chan *record, cfg.QueueSize),
		free:    make(chan *record, cfg.QueueSize),
		flushes: make(chan chan struct{}),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		hold:    hold,
	}
	w := &writer{l: l, enc: enc, mac: hmac.New(sha256.New, cfg.Secret)}
	go w.run()
	return l, nil
}

// LogDecision queues a decision for writing. It never blocks; it returns
// false when the record was dropped (counted in Stats).
func (l *Logger) LogDecision(d *Decision) bool {
	r := l.get()
	r.kind = "decision"
	r.customer = append(r.customer[:0], d.Customer...)
	r.body = appendDecision(r.body[:0], d)
	return l.enqueue(r)
}

// LogFeedback queues a feedback for writing. It never blocks; it returns
// false when the record was dropped (counted in Stats).
func (l *Logger) LogFeedback(f *Feedback) bool {
	r := l.get()
	r.kind = "feedback"
	r.customer = append(r.customer[:0], f.Customer...)
	r.body = appendFeedback(r.body[:0], f)
	return l.enqueue(r)
}

func (l *Logger) enqueue(r *record) bool {
	if len(r.body)+len(r.customer)+64 > l.cfg.MaxRecordBytes {
		l.tooLarge.Add(1)
		l.release(r)
		return false
	}
	if l.closed.Load() {
		l.dropped.Add(1)
		l.release(r)
		return false
	}
	select {
	case l.queue <- r:
		l.enqueued.Add(1)
		return true
	default:
		l.dropped.Add(1)
		l.release(r)
		return false
	}
}

// get returns a record to fill, reused when one is free. Unlike a sync.Pool
// the free list survives garbage collections, so a steady load does not
// allocate; it holds at most QueueSize records (with their buffers of up to
// MaxRecordBytes).
func (l *Logger) get() *record {
	select {
	case r := <-l.free:
		return r
	default:
		return new(record)
	}
}

// release returns r to the free list unless the list is full.
func (l *Logger) release(r *record) {
	select {
	case l.free <- r:
	default:
	}
}

// Flush writes every record queued before the call and returns when they are
// written (or failed, see Stats). It does nothing after Close.
func (l *Logger) Flush() {
	ack := make(chan struct{})
	select {
	case l.flushes <- ack:
		<-ack
	case <-l.stopped:
	}
}

// Close writes what is queued, closes the current file and stops the writer.
// Records logged concurrently with or after Close are dropped and counted.
func (l *Logger) Close() error {
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.done)
	})
	<-l.stopped
	return nil
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	return Stats{
		Enqueued: l.enqueued.Load(), Dropped: l.dropped.Load(), TooLarge: l.tooLarge.Load(),
		Written: l.written.Load(), Batches: l.batches.Load(), Files: l.files.Load(),
		Removed: l.removed.Load(), Errors: l.errs.Load(), LostIO: l.lostIO.Load(),
	}
}

// Pseudonym returns the pseudonym the log writes for customer under secret.
func Pseudonym(secret []byte, customer string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(customer))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// writer owns the batch, the encoder and the current file.
type writer struct {
	l      *Logger
	enc    *zstd.Encoder
	mac    hash.Hash
	sum    []byte
	batch  []byte
	count  int
	frame  []byte
	file   *os.File
	size   int64
	opened time.Time
	seq    int
}

func (w *writer) run() {
	l := w.l
	defer close(l.stopped)
	if l.hold != nil {
		<-l.hold
	}
	tick := time.NewTicker(l.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case r := <-l.queue:
			w.add(r)
		case <-tick.C:
			w.flush()
		case ack := <-l.flushes:
			w.drain()
			w.flush()
			close(ack)
		case <-l.done:
			w.drain()
			w.flush()
			w.closeFile()
			w.enc.Close()
			return
		}
	}
}

// drain adds every record already queued.
func (w *writer) drain() {
	for {
		select {
		case r := <-w.l.queue:
			w.add(r)
		default:
			return
		}
	}
}

// add appends one record to the batch, writing the batch when it is full.
func (w *writer) add(r *record) {
	w.mac.Reset()
	w.mac.Write(r.customer)
	w.sum = w.mac.Sum(w.sum[:0])
	w.batch = append(w.batch, `{"type":"`...)
	w.batch = append(w.batch, r.kind...)
	w.batch = append(w.batch, `","customer":"`...)
	w.batch = hex.AppendEncode(w.batch, w.sum[:16])
	w.batch = append(w.batch, `",`...)
	w.batch = append(w.batch, r.body...)
	w.count++
	w.l.release(r)
	if len(w.batch) >= w.l.cfg.MaxBatchBytes {
		w.flush()
	}
}

// flush writes the batch as one skippable metadata frame and one zstd frame.
func (w *writer) flush() {
	l := w.l
	if w.count == 0 {
		return
	}
	if l.cfg.Codec == CodecSnappy {
		w.frame = appendSnappyBatch(w.frame[:0], w.batch, w.count)
	} else {
		w.frame = appendBatch(w.frame[:0], w.enc, w.batch, w.count)
	}
	count := w.count
	w.batch, w.count = w.batch[:0], 0
	if cap(w.batch) > 4*l.cfg.MaxBatchBytes {
		w.batch = nil // a burst grew it; do not keep the memory
	}
	now := l.cfg.Now()
	if w.file != nil && ((w.size > 0 && w.size+int64(len(w.frame)) > l.cfg.MaxFileBytes) || now.Sub(w.opened) >= l.cfg.MaxFileAge) {
		w.closeFile()
	}
	if w.file == nil && !w.open(now) {
		l.lostIO.Add(uint64(count))
		return
	}
	if _, err := w.file.Write(w.frame); err != nil {
		l.errs.Add(1)
		l.lostIO.Add(uint64(count))
		w.closeFile() // the next batch starts a clean file
		return
	}
	w.size += int64(len(w.frame))
	if !l.cfg.NoSync {
		if err := w.file.Sync(); err != nil {
			l.errs.Add(1)
		}
	}
	l.written.Add(uint64(count))
	l.batches.Add(1)
}

// appendBatch appends the metadata frame and the compressed frame of batch.
func appendBatch(dst []byte, enc *zstd.Encoder, batch []byte, count int) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, 8+metaSize)...)
	dst = enc.EncodeAll(batch, dst)
	frame := dst[start+8+metaSize:]
	m := dst[start:]
	binary.LittleEndian.PutUint32(m[0:], skipMagic)
	binary.LittleEndian.PutUint32(m[4:], metaSize)
	putMeta(m[8:], count, len(batch), frame)
	return dst
}

func (w *writer) open(now time.Time) bool {
	l := w.l
	w.seq++
	name := fmt.Sprintf("%s-%s-%06d%s", l.cfg.Prefix, now.UTC().Format("20060102T150405.000000000Z"), w.seq, l.cfg.Codec.suffix())
	f, err := os.OpenFile(filepath.Join(l.cfg.Dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		l.errs.Add(1)
		return false
	}
	size := int64(0)
	if l.cfg.Codec == CodecSnappy {
		if _, err := f.WriteString(snappyStreamID); err != nil {
			l.errs.Add(1)
			f.Close()
			return false
		}
		size = int64(len(snappyStreamID))
	}
	w.file, w.size, w.opened = f, size, now
	l.files.Add(1)
	w.prune()
	return true
}

func (w *writer) closeFile() {
	if w.file == nil {
		return
	}
	if err := w.file.Close(); err != nil {
		w.l.errs.Add(1)
	}
	w.file = nil
}

// prune deletes the oldest files beyond MaxFiles.
func (w *writer) prune() {
	l := w.l
	files, err := Files(l.cfg.Dir, l.cfg.Prefix)
	if err != nil {
		l.errs.Add(1)
		return
	}
	for _, f := range files[:max(0, len(files)-l.cfg.MaxFiles)] {
		if err := os.Remove(f); err != nil {
			l.errs.Add(1)
			continue
		}
		l.removed.Add(1)
	}
}

// Files returns the paths of the log files of prefix in dir, oldest first.
func Files(dir, prefix string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list decision logs in %q: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, prefix+"-") && (strings.HasSuffix(n, fileSuffix) || strings.HasSuffix(n, snappySuffix)) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}
