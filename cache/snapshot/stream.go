package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// blockSize is how much text a load reads and parses at a time. A load
// holds two blocks of text (one parsed, one read ahead), whatever the size
// of the file; a line longer than a block grows its block. A variable for
// tests.
var blockSize = 4 << 20

// Compressions of a source.
const (
	compNone = iota
	compZstd
	compGzip
)

// source is a snapshot file that can be read from the start once per pass
// (CSV and JSON Lines take one pass, or more when inference or a late JSON
// key asks for it). It is read through io.ReaderAt, so a pass never
// disturbs the file's offset and the file is never held whole.
type source struct {
	name string
	ra   io.ReaderAt
	size int64
	cfg  Config
	comp int
	// hash asks every pass for the SHA-256 of the file's bytes; version is
	// that of the last pass that read the file to its end.
	hash    bool
	version string
	// The decompressor, made once and reset for every pass; see close.
	zr *zstd.Decoder
	gr *gzip.Reader
	// bufs are the two block buffers every pass shares.
	bufs [2][]byte
}

// close releases the decompressor (zstd keeps goroutines and buffers).
func (src *source) close() {
	if src.zr != nil {
		src.zr.Close()
		src.zr = nil
	}
	if src.gr != nil {
		src.gr.Close()
		src.gr = nil
	}
}

// textSize returns the size of the decompressed text when the file tells
// it (plain files; the frame header of zstd; the trailer of gzip, modulo
// 4 GiB), or 0. It is an estimate for sizing the table, not a limit.
func (src *source) textSize() int64 {
	switch src.comp {
	case compNone:
		return src.size
	case compZstd:
		var head [zstd.HeaderMaxSize]byte
		n, _ := src.ra.ReadAt(head[:], 0)
		var h zstd.Header
		if h.Decode(head[:n]) == nil && h.HasFCS {
			return int64(min(h.FrameContentSize, 1<<40))
		}
	case compGzip:
		var tail [4]byte
		if _, err := src.ra.ReadAt(tail[:], src.size-4); err == nil {
			if n := int64(binary.LittleEndian.Uint32(tail[:])); n >= src.size {
				return n
			}
		}
	}
	return 0
}

// text is one pass over the decompressed content of a source.
type text struct {
	io.Reader
	raw io.Reader // the file's bytes, through h when hashing
	h   hash.Hash
	n   int64 // decompressed bytes read so far
	max int64
}

// errTooLarge reports text beyond Config.MaxDecompressedBytes.
var errTooLarge = errors.New("decompressed size exceeds the limit")

// open starts a pass, stopping any earlier one.
func (src *source) open() (*text, error) {
	t := &text{raw: io.NewSectionReader(src.ra, 0, src.size), max: src.cfg.MaxDecompressedBytes}
	if src.hash {
		t.h = sha256.New()
		t.raw = io.TeeReader(t.raw, t.h)
	}
	var r io.Reader
	switch src.comp {
	case compZstd:
		var err error
		if src.zr == nil {
			src.zr, err = zstd.NewReader(t.raw,
				zstd.WithDecoderMaxMemory(src.cfg.MaxDecoderMemory),
				zstd.WithDecoderConcurrency(src.cfg.Workers))
		} else {
			err = src.zr.Reset(t.raw)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot load snapshot %q: cannot open zstd stream: %w", src.name, err)
		}
		r = src.zr
	case compGzip:
		var err error
		if src.gr == nil {
			src.gr, err = gzip.NewReader(t.raw)
		} else {
			err = src.gr.Reset(t.raw)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot load snapshot %q: cannot open gzip stream: %w", src.name, err)
		}
		r = src.gr
	default:
		r = t.raw
	}
	t.Reader = r
	return t, nil
}

// Read reads decompressed text, failing with errTooLarge past the cap.
func (t *text) Read(p []byte) (int, error) {
	if t.n > t.max {
		return 0, errTooLarge
	}
	if int64(len(p)) > t.max-t.n+1 {
		p = p[:t.max-t.n+1]
	}
	n, err := t.Reader.Read(p)
	t.n += int64(n)
	if t.n > t.max {
		return n, errTooLarge
	}
	return n, err
}

// finish reads what is left of the file into the hash (a decompressor may
// stop before the file's end) and records the version.
func (t *text) finish(src *source) error {
	if t.h == nil {
		return nil
	}
	if _, err := io.Copy(io.Discard, t.raw); err != nil {
		return err
	}
	src.version = hex.EncodeToString(t.h.Sum(nil)[:8])
	return nil
}

// readError wraps an error from reading the text of src.
func (src *source) readError(err error) error {
	switch {
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("cannot load snapshot %q: decompressed size exceeds the limit of %d bytes", src.name, src.cfg.MaxDecompressedBytes)
	case src.comp != compNone:
		return fmt.Errorf("cannot load snapshot %q: cannot decompress: %w", src.name, err)
	}
	return fmt.Errorf("cannot load snapshot %q: cannot read: %w", src.name, err)
}

// errStopScan ends a scan early without an error.
var errStopScan = errors.New("stop scan")

// scan makes one pass over the text of src, calling fn with each block of
// whole lines in order (the last may lack its final newline). One goroutine
// reads and decompresses the next block while fn parses the current one;
// fn must not keep the block. A pass that reads to the end sets
// src.version.
func (src *source) scan(fn func(block []byte) error) error {
	t, err := src.open()
	if err != nil {
		return err
	}
	type result struct {
		data []byte
		err  error
	}
	full := make(chan result, 1)
	free := make(chan []byte, 2)
	if src.bufs[0] == nil {
		size := blockSize
		if n := src.textSize(); n > 0 && n < int64(size) {
			size = int(n) + 1 // small files get small buffers
		}
		src.bufs = [2][]byte{make([]byte, 0, size), make([]byte, 0, size)}
	}
	free <- src.bufs[0]
	free <- src.bufs[1]
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(full)
		lr := lineReader{r: t}
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-done:
				return
			}
			data, err := lr.next(buf)
			select {
			case full <- result{data, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	})
	// The reader must be gone before the decompressor closes.
	defer wg.Wait()
	defer close(done)
	for res := range full {
		if res.err == io.EOF {
			if err := t.finish(src); err != nil {
				return src.readError(err)
			}
			return nil
		}
		if res.err != nil {
			return src.readError(res.err)
		}
		if err := fn(res.data); err != nil {
			return err
		}
		free <- res.data[:0]
	}
	return nil
}

// lineReader cuts a stream into blocks of whole lines.
type lineReader struct {
	r     io.Reader
	carry []byte // the start of a line read with the previous block
	eof   bool
}

// next fills buf (growing it when one line does not fit) and returns its
// whole lines: the rest of the file at the end, io.EOF after that. Blocks
// depend only on the content and blockSize, so every pass over the same
// file cuts the same blocks.
func (lr *lineReader) next(buf []byte) ([]byte, error) {
	buf = append(buf[:0], lr.carry...)
	lr.carry = lr.carry[:0]
	for {
		if lr.eof {
			if len(buf) == 0 {
				return nil, io.EOF
			}
			return buf, nil
		}
		n, err := io.ReadFull(lr.r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			lr.eof = true
			continue
		case err != nil:
			return nil, err
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			lr.carry = append(lr.carry, buf[i+1:]...)
			return buf[:i+1], nil
		}
		buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
	}
}
