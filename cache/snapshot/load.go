package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
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
// compression are detected from the content.
func Load(path string, cfg Config) (*Snapshot, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load snapshot: %w", err)
	}
	if cfg.AsOf.IsZero() {
		cfg.AsOf, err = asOfFor(path)
		if err != nil {
			return nil, fmt.Errorf("cannot load snapshot %q: %w", path, err)
		}
	}
	return Parse(path, raw, cfg)
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
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	version := cfg.Version
	var hashDone chan struct{}
	if version == "" {
		hashDone = make(chan struct{})
		go func() {
			sum := sha256.Sum256(data)
			version = hex.EncodeToString(sum[:8])
			close(hashDone)
		}()
	}
	s, err := parse(name, data, cfg)
	if hashDone != nil {
		<-hashDone
	}
	if err != nil {
		return nil, err
	}
	s.version = version
	s.asOf = cfg.AsOf
	return s, nil
}

// ParseReader reads all of r and parses it like Parse.
func ParseReader(name string, r io.Reader, cfg Config) (*Snapshot, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cannot read snapshot %q: %w", name, err)
	}
	return Parse(name, data, cfg)
}

var (
	magicZstd    = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicGzip    = []byte{0x1f, 0x8b}
	magicParquet = []byte("PAR1")
)

func parse(name string, data []byte, cfg Config) (*Snapshot, error) {
	buf, err := decompress(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot load snapshot %q: %w", name, err)
	}
	var s *Snapshot
	switch {
	case bytes.HasPrefix(buf, magicParquet):
		s, err = parseParquet(name, buf, cfg)
	default:
		body := bytes.TrimPrefix(buf, []byte("\ufeff"))
		i := 0
		for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n') {
			i++
		}
		if i < len(body) && body[i] == '{' {
			s, err = parseJSONL(name, body, cfg)
		} else {
			s, err = parseCSV(name, body, cfg)
		}
	}
	if err != nil {
		return nil, err
	}
	s.name = name
	s.size = s.computeSize()
	return s, nil
}

// decompress returns data itself when it is not compressed, or its
// decompressed content, bounded by cfg.MaxDecompressedBytes.
func decompress(data []byte, cfg Config) ([]byte, error) {
	var r io.Reader
	switch {
	case bytes.HasPrefix(data, magicZstd):
		d, err := zstd.NewReader(bytes.NewReader(data),
			zstd.WithDecoderMaxMemory(cfg.MaxDecoderMemory),
			zstd.WithDecoderConcurrency(cfg.Workers))
		if err != nil {
			return nil, fmt.Errorf("cannot open zstd stream: %w", err)
		}
		defer d.Close()
		r = d
	case bytes.HasPrefix(data, magicGzip):
		g, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("cannot open gzip stream: %w", err)
		}
		defer g.Close()
		r = g
	default:
		if int64(len(data)) > cfg.MaxDecompressedBytes {
			return nil, fmt.Errorf("file has %d bytes, more than the limit of %d", len(data), cfg.MaxDecompressedBytes)
		}
		return data, nil
	}
	// Guess the size to limit regrowth: feature tables compress about 3-5x.
	guess := min(int64(len(data))*4+4096, cfg.MaxDecompressedBytes+1)
	out := bytes.NewBuffer(make([]byte, 0, guess))
	n, err := out.ReadFrom(io.LimitReader(r, cfg.MaxDecompressedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot decompress: %w", err)
	}
	if n > cfg.MaxDecompressedBytes {
		return nil, fmt.Errorf("decompressed size exceeds the limit of %d bytes", cfg.MaxDecompressedBytes)
	}
	b := out.Bytes()
	if bytes.HasPrefix(b, magicZstd) || bytes.HasPrefix(b, magicGzip) {
		return nil, errors.New("nested compression is not supported")
	}
	return b, nil
}
