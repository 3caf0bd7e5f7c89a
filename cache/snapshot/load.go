package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"time"
)

// Config controls loading and validation. The zero value is usable: every
// zero field takes the default documented on it.
type Config struct {
	// Schema declares the expected columns. Nil infers them from the file
	// (CSV/JSONL: from every value; Parquet: from the column types).
	Schema *Schema
	// IDColumn names the id field when Schema is nil. Default "id"; for CSV
	// the first header field is the id whatever its name.
	IDColumn string
	// MaxShrink is the largest fraction of rows a new snapshot may lose
	// against the one a Store is serving before it is rejected as a
	// truncated export. Default 0.2; 1 disables the check.
	MaxShrink float64
	// MaxDecompressedBytes caps the size of the decompressed file in bytes.
	// Default 16 GiB.
	MaxDecompressedBytes int64
	// MaxDecoderMemory caps the memory of the zstd decoder in bytes
	// (zstd.WithDecoderMaxMemory). Default 512 MiB.
	MaxDecoderMemory uint64
	// MaxIDLen caps the length of a customer id in bytes. Default 256.
	MaxIDLen int
	// MaxCategories caps the distinct values of one category column.
	// Default 1<<20.
	MaxCategories int
	// Workers is the number of parsing goroutines. Default GOMAXPROCS.
	Workers int
	// Version overrides the content-hash version.
	Version string
	// AsOf overrides the as-of time (see Snapshot.AsOf).
	AsOf time.Time
}

// Defaults applied by withDefaults.
const (
	defaultMaxShrink            = 0.2
	defaultMaxDecompressedBytes = 16 << 30
	defaultMaxDecoderMemory     = 512 << 20
	defaultMaxIDLen             = 256
	defaultMaxCategories        = 1 << 20
)

// Validate reports whether cfg is usable; call it at start-up to fail
// early (NewStore and Parse apply the same checks).
func (cfg Config) Validate() error {
	_, err := cfg.withDefaults()
	return err
}

// withDefaults checks cfg and fills defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.MaxShrink == 0 {
		cfg.MaxShrink = defaultMaxShrink
	}
	if cfg.MaxShrink < 0 || cfg.MaxShrink > 1 {
		return cfg, fmt.Errorf("invalid snapshot config: MaxShrink=%v must be in (0, 1]", cfg.MaxShrink)
	}
	if cfg.MaxDecompressedBytes == 0 {
		cfg.MaxDecompressedBytes = defaultMaxDecompressedBytes
	}
	if cfg.MaxDecoderMemory == 0 {
		cfg.MaxDecoderMemory = defaultMaxDecoderMemory
	}
	if cfg.MaxIDLen == 0 {
		cfg.MaxIDLen = defaultMaxIDLen
	}
	if cfg.MaxCategories == 0 {
		cfg.MaxCategories = defaultMaxCategories
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.IDColumn == "" {
		cfg.IDColumn = "id"
	}
	if cfg.MaxDecompressedBytes < 0 || cfg.MaxIDLen < 0 || cfg.MaxCategories < 0 || cfg.Workers < 0 {
		return cfg, errors.New("invalid snapshot config: limits must not be negative")
	}
	if s := cfg.Schema; s != nil {
		seen := make(map[string]bool, len(s.Columns))
		id := s.ID
		if id == "" {
			id = "id"
		}
		for i, c := range s.Columns {
			if c.Name == "" {
				return cfg, fmt.Errorf("invalid snapshot schema: column %d has no name", i)
			}
			if seen[c.Name] || c.Name == id {
				return cfg, fmt.Errorf("invalid snapshot schema: column %q declared twice", c.Name)
			}
			if c.Kind > KindBool {
				return cfg, fmt.Errorf("invalid snapshot schema: column %q: unknown kind %d", c.Name, c.Kind)
			}
			seen[c.Name] = true
		}
	}
	return cfg, nil
}

// Load reads, decompresses and parses the snapshot at path. Format and
// compression are detected from the content. The file is streamed: it is
// never held in memory whole (see the package doc for the peak).
func Load(path string, cfg Config) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot load snapshot: %w", err)
	}
	if cfg.AsOf.IsZero() {
		cfg.AsOf, err = asOfFor(path)
		if err != nil {
			return nil, fmt.Errorf("cannot load snapshot %q: %w", path, err)
		}
	}
	return parseFrom(path, f, fi.Size(), cfg)
}

// asOfFor reads "<path>.asof" (an RFC 3339 time) or falls back to the
// modification time of path.
func asOfFor(path string) (time.Time, error) {
	if b, err := os.ReadFile(path + ".asof"); err == nil {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
		if err != nil {
			return time.Time{}, fmt.Errorf("cannot parse sidecar %q: %w", path+".asof", err)
		}
		return t, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// Parse parses a snapshot held in data (possibly compressed); name is used in
// errors and Snapshot.Name. Parse does not keep data.
func Parse(name string, data []byte, cfg Config) (*Snapshot, error) {
	return parseFrom(name, bytes.NewReader(data), int64(len(data)), cfg)
}

// ParseReader parses the snapshot read from r like Parse. When r is also an
// io.ReaderAt whose size is known (an *os.File, a *bytes.Reader, an
// io.SectionReader, the files of os.DirFS and fstest.MapFS), it is streamed
// like Load, from offset 0, and read again if a second pass is needed;
// otherwise all of r is read into memory first.
func ParseReader(name string, r io.Reader, cfg Config) (*Snapshot, error) {
	if ra, ok := r.(io.ReaderAt); ok {
		if size, ok := sizeOf(r); ok {
			return parseFrom(name, ra, size, cfg)
		}
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cannot read snapshot %q: %w", name, err)
	}
	return Parse(name, data, cfg)
}

// sizeOf returns the size of a reader that can tell it.
func sizeOf(r io.Reader) (int64, bool) {
	switch r := r.(type) {
	case interface{ Size() int64 }:
		return r.Size(), true
	case interface{ Stat() (fs.FileInfo, error) }:
		fi, err := r.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		return fi.Size(), true
	}
	return 0, false
}

var (
	magicZstd    = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicGzip    = []byte{0x1f, 0x8b}
	magicParquet = []byte("PAR1")
)

// parseFrom parses the size bytes of ra, streaming.
func parseFrom(name string, ra io.ReaderAt, size int64, cfg Config) (*Snapshot, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	src := &source{name: name, ra: ra, size: size, cfg: cfg, hash: cfg.Version == ""}
	defer src.close()
	head := make([]byte, 4)
	n, err := ra.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("cannot load snapshot %q: cannot read: %w", name, err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, magicZstd):
		src.comp = compZstd
	case bytes.HasPrefix(head, magicGzip):
		src.comp = compGzip
	case size > cfg.MaxDecompressedBytes:
		return nil, fmt.Errorf("cannot load snapshot %q: file has %d bytes, more than the limit of %d", name, size, cfg.MaxDecompressedBytes)
	}
	s, err := parse(src)
	if err != nil {
		return nil, err
	}
	s.name = name
	s.size = s.computeSize()
	s.version = cfg.Version
	if s.version == "" {
		s.version = src.version
	}
	s.asOf = cfg.AsOf
	return s, nil
}

func parse(src *source) (*Snapshot, error) {
	name := src.name
	// Peek at the decompressed text to tell the format: the magic bytes,
	// then the first byte that is not a space.
	text, err := src.open()
	if err != nil {
		return nil, err
	}
	head := make([]byte, 64<<10)
	n, err := io.ReadFull(text, head)
	for err == nil && len(bytes.TrimLeft(head[3:n], " \t\r\n")) == 0 {
		var m int
		m, err = io.ReadFull(text, head[4:])
		n = 4 + m
	}
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, src.readError(err)
	}
	head = head[:n]
	if src.comp != compNone && (bytes.HasPrefix(head, magicZstd) || bytes.HasPrefix(head, magicGzip)) {
		return nil, fmt.Errorf("cannot load snapshot %q: nested compression is not supported", name)
	}
	if bytes.HasPrefix(head, magicParquet) {
		return parseParquetSource(src)
	}
	body := bytes.TrimPrefix(head, []byte("\ufeff"))
	i := 0
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n') {
		i++
	}
	if i < len(body) && body[i] == '{' {
		return parseJSONL(src)
	}
	return parseCSV(src, head)
}

// parseParquetSource parses a Parquet file: in place when it is not
// compressed (the decoder reads the column chunks it needs from the file),
// otherwise from its decompressed bytes (one copy, capped).
func parseParquetSource(src *source) (*Snapshot, error) {
	if src.comp == compNone {
		if src.hash {
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(src.ra, 0, src.size)); err != nil {
				return nil, src.readError(err)
			}
			src.version = hex.EncodeToString(h.Sum(nil)[:8])
		}
		return parseParquet(src.name, src.ra, src.size, src.cfg)
	}
	text, err := src.open()
	if err != nil {
		return nil, err
	}
	buf, err := io.ReadAll(text)
	if err == nil {
		err = text.finish(src)
	}
	if err != nil {
		return nil, src.readError(err)
	}
	return parseParquet(src.name, bytes.NewReader(buf), int64(len(buf)), src.cfg)
}
