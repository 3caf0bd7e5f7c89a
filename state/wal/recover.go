package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A checkpoint file is
//
//	magic "NBACKP\x00" (7) | version (1) | sequence u64 LE | crc32c of the previous 16 bytes u32 LE
//	body
//	body length u64 LE | crc32c(body) u32 LE
//
// Checkpoint k holds everything appended to segments before k; replay starts
// at segment k.
const (
	ckptMagic      = "NBACKP\x00"
	ckptHeaderSize = 20
	ckptTrailer    = 12
)

// listDir returns the segment and checkpoint sequences in dir, ascending, and
// removes temporary files left by an interrupted checkpoint.
func listDir(dir string) (segs, ckpts []uint64, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		name := e.Name()
		var seq uint64
		switch {
		case strings.HasSuffix(name, ".tmp"):
			os.Remove(filepath.Join(dir, name))
		case len(name) == len("wal-0000000000000000.seg") && strings.HasPrefix(name, "wal-") && strings.HasSuffix(name, ".seg"):
			if _, err := fmt.Sscanf(name, "wal-%016x.seg", &seq); err == nil {
				segs = append(segs, seq)
			}
		case len(name) == len("ckpt-0000000000000000.bin") && strings.HasPrefix(name, "ckpt-") && strings.HasSuffix(name, ".bin"):
			if _, err := fmt.Sscanf(name, "ckpt-%016x.bin", &seq); err == nil {
				ckpts = append(ckpts, seq)
			}
		}
	}
	slices.Sort(segs)
	slices.Sort(ckpts)
	return segs, ckpts, nil
}

// recover loads the newest checkpoint and replays the segments after it. It
// returns the sequence of the segment to create next.
func (l *Log) recover(load func(io.Reader) error, replay func([]byte) error) (uint64, error) {
	dir := l.cfg.Dir
	segs, ckpts, err := listDir(dir)
	if err != nil {
		return 0, fmt.Errorf("cannot open wal %q: %w", dir, err)
	}
	base := uint64(1)
	if len(ckpts) > 0 {
		base = ckpts[len(ckpts)-1]
		path := filepath.Join(dir, ckptName(base))
		if err := loadCheckpoint(path, base, load); err != nil {
			return 0, err
		}
	}
	// Leftovers of a checkpoint whose clean-up was interrupted.
	for _, s := range segs {
		if s < base {
			os.Remove(filepath.Join(dir, segName(s)))
		}
	}
	for _, c := range ckpts {
		if c < base {
			os.Remove(filepath.Join(dir, ckptName(c)))
		}
	}
	segs = slices.DeleteFunc(segs, func(s uint64) bool { return s < base })
	if len(segs) == 0 {
		return base, nil
	}
	if len(ckpts) > 0 && segs[0] != base {
		return 0, fmt.Errorf("cannot open wal %q: segment %s after checkpoint %s is missing", dir, segName(base), ckptName(base))
	}
	for i := 1; i < len(segs); i++ {
		if segs[i] != segs[i-1]+1 {
			return 0, fmt.Errorf("cannot open wal %q: segment %s is missing", dir, segName(segs[i-1]+1))
		}
	}
	next := segs[len(segs)-1] + 1
	for i, seq := range segs {
		last := i == len(segs)-1
		removed, err := l.replaySegment(seq, last, replay)
		if err != nil {
			return 0, err
		}
		if removed {
			next = seq
		}
	}
	return next, nil
}

// replaySegment replays one segment. A torn tail of the last segment is
// truncated; removed reports that the last segment had no complete header
// and was deleted.
func (l *Log) replaySegment(seq uint64, last bool, replay func([]byte) error) (removed bool, err error) {
	path := filepath.Join(l.cfg.Dir, segName(seq))
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("cannot replay wal: %w", err)
	}
	if len(data) < segHeaderSize && last {
		// Crashed while creating the segment: nothing in it was acknowledged.
		l.st.tornTails.Add(1)
		if err := os.Remove(path); err != nil {
			return false, fmt.Errorf("cannot replay wal: %w", err)
		}
		return true, nil
	}
	hseq, err := parseSegHeader(data)
	if err == nil && hseq != seq {
		err = fmt.Errorf("header names segment %d", hseq)
	}
	if err != nil {
		l.st.corrupt.Add(1)
		return false, &CorruptError{File: path, Offset: 0, Reason: "segment header: " + err.Error()}
	}
	onSkip := func(off int64, why string) { l.st.corrupt.Add(1) }
	res, err := scanRecords(data, segHeaderSize, l.cfg.MaxRecordBytes, l.cfg.SkipCorrupt, onSkip, func(rec []byte) error {
		l.st.replayed.Add(1)
		return replay(rec)
	})
	if err != nil {
		return false, fmt.Errorf("cannot replay wal %q: %w", path, err)
	}
	if res.corrupt >= 0 && !l.cfg.SkipCorrupt {
		l.st.corrupt.Add(1)
		return false, &CorruptError{File: path, Offset: res.corrupt, Reason: res.why}
	}
	if res.torn && !last && !l.cfg.SkipCorrupt {
		// Segments are fsynced before a new one is started, so only the
		// last one can end in an incomplete write.
		l.st.corrupt.Add(1)
		return false, &CorruptError{File: path, Offset: res.end, Reason: "incomplete record before the last segment"}
	}
	if res.end < int64(len(data)) {
		if res.torn {
			l.st.tornTails.Add(1)
		}
		if err := truncate(path, res.end); err != nil {
			return false, fmt.Errorf("cannot truncate torn tail of wal %q: %w", path, err)
		}
	}
	return false, nil
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadCheckpoint verifies a checkpoint file against its CRC and hands its body
// to load.
func loadCheckpoint(path string, seq uint64, load func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot load checkpoint: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot load checkpoint: %w", err)
	}
	body, err := verifyCheckpoint(f, fi.Size(), seq)
	if err != nil {
		return fmt.Errorf("cannot load checkpoint %q: %w", path, err)
	}
	if load == nil {
		return fmt.Errorf("cannot load checkpoint %q: no loader given", path)
	}
	if err := load(bufio.NewReaderSize(body, 256<<10)); err != nil {
		return fmt.Errorf("cannot load checkpoint %q: %w", path, err)
	}
	return nil
}

// verifyCheckpoint checks the framing and CRC of a checkpoint of size bytes
// and returns a reader over its body. seq 0 accepts any sequence.
func verifyCheckpoint(r io.ReaderAt, size int64, seq uint64) (*io.SectionReader, error) {
	if size < ckptHeaderSize+ckptTrailer {
		return nil, fmt.Errorf("file of %d bytes is too short", size)
	}
	var hdr [ckptHeaderSize]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return nil, err
	}
	if string(hdr[:7]) != ckptMagic {
		return nil, errors.New("bad magic")
	}
	if binary.LittleEndian.Uint32(hdr[16:20]) != crc(hdr[:16]) {
		return nil, errors.New("header crc mismatch")
	}
	if hdr[7] != formatVersion {
		return nil, fmt.Errorf("unsupported version %d", hdr[7])
	}
	if got := binary.LittleEndian.Uint64(hdr[8:16]); seq != 0 && got != seq {
		return nil, fmt.Errorf("header names checkpoint %d", got)
	}
	var tr [ckptTrailer]byte
	if _, err := r.ReadAt(tr[:], size-ckptTrailer); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(tr[0:8])
	if n != uint64(size-ckptHeaderSize-ckptTrailer) {
		return nil, fmt.Errorf("body length %d does not match the file size %d", n, size)
	}
	body := io.NewSectionReader(r, ckptHeaderSize, int64(n))
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, body); err != nil {
		return nil, err
	}
	if h.Sum32() != binary.LittleEndian.Uint32(tr[8:12]) {
		return nil, errors.New("body crc mismatch")
	}
	return io.NewSectionReader(r, ckptHeaderSize, int64(n)), nil
}

// Checkpoint rotates the log to a new segment k, calls write to store the
// caller's state into checkpoint k, and on success removes the segments and
// checkpoints before k.
//
// Contract: write must capture every record appended before Checkpoint was
// called, and may capture records appended after the rotation; those later
// records are replayed again after the checkpoint is loaded, so the caller
// must recognise them (e.g. by a sequence number inside each record).
// Appends proceed while write runs. One Checkpoint runs at a time. While
// the log is failed (see Err) Checkpoint fails: the segment may end in a
// partial record until the log heals, so it must stay the last one.
func (l *Log) Checkpoint(write func(w io.Writer) error) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	l.fileMu.Lock()
	if err := l.Err(); err != nil {
		// The segment may end in a partial record until the log heals:
		// it must stay the last one.
		l.fileMu.Unlock()
		return fmt.Errorf("cannot checkpoint wal %q: %w", l.cfg.Dir, err)
	}
	old := l.f
	oldSeq := l.seq
	if err := l.startSegment(oldSeq + 1); err != nil {
		l.fileMu.Unlock()
		return fmt.Errorf("cannot checkpoint wal %q: cannot rotate: %w", l.cfg.Dir, err)
	}
	k := l.seq
	l.fileMu.Unlock()
	// Every byte in old was fsynced by the flusher before its writers were
	// acknowledged; a failed fsync has already failed the log.
	old.Close()

	if err := writeCheckpoint(l.cfg.Dir, k, write); err != nil {
		return fmt.Errorf("cannot checkpoint wal %q: %w", l.cfg.Dir, err)
	}
	l.st.checkpoints.Add(1)
	segs, ckpts, err := listDir(l.cfg.Dir)
	if err != nil {
		return fmt.Errorf("cannot clean up wal %q after checkpoint: %w", l.cfg.Dir, err)
	}
	for _, s := range segs {
		if s < k {
			if err := os.Remove(filepath.Join(l.cfg.Dir, segName(s))); err != nil {
				return fmt.Errorf("cannot clean up wal %q after checkpoint: %w", l.cfg.Dir, err)
			}
		}
	}
	for _, c := range ckpts {
		if c < k {
			if err := os.Remove(filepath.Join(l.cfg.Dir, ckptName(c))); err != nil {
				return fmt.Errorf("cannot clean up wal %q after checkpoint: %w", l.cfg.Dir, err)
			}
		}
	}
	return nil
}

// countingWriter feeds a CRC and counts bytes.
type countingWriter struct {
	w io.Writer
	h hash.Hash32
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += uint64(n)
	return n, err
}

func writeCheckpoint(dir string, k uint64, write func(io.Writer) error) (err error) {
	final := filepath.Join(dir, ckptName(k))
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	var hdr [ckptHeaderSize]byte
	copy(hdr[:], ckptMagic)
	hdr[7] = formatVersion
	binary.LittleEndian.PutUint64(hdr[8:16], k)
	binary.LittleEndian.PutUint32(hdr[16:20], crc(hdr[:16]))
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	cw := &countingWriter{w: bw, h: crc32.New(castagnoli)}
	if err := write(cw); err != nil {
		return fmt.Errorf("cannot write checkpoint: %w", err)
	}
	var tr [ckptTrailer]byte
	binary.LittleEndian.PutUint64(tr[0:8], cw.n)
	binary.LittleEndian.PutUint32(tr[8:12], cw.h.Sum32())
	if _, err := bw.Write(tr[:]); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(dir)
}
