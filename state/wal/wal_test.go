package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// openCollect opens dir and returns the checkpoint body and replayed records.
func openCollect(t testing.TB, cfg Config) (*Log, []byte, [][]byte, error) {
	t.Helper()
	var body []byte
	var recs [][]byte
	l, err := Open(cfg, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		body = b
		return err
	}, func(rec []byte) error {
		recs = append(recs, bytes.Clone(rec))
		return nil
	})
	return l, body, recs, err
}

func rec(i int) []byte { return fmt.Appendf(nil, "record-%04d-%s", i, bytes.Repeat([]byte{'x'}, i%7)) }

func TestAppendReplay(t *testing.T) {
	dir := t.TempDir()
	l, _, recs, err := openCollect(t, Config{Dir: dir})
	if err != nil || len(recs) != 0 {
		t.Fatalf("open empty: %v, %d records", err, len(recs))
	}
	const writers, per = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if err := l.Append(rec(w*per + i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := l.Append(rec(1000), rec(1001)); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Appends != writers*per+2 || st.Fsyncs == 0 || st.Fsyncs > st.Appends {
		t.Fatalf("stats: %+v", st)
	}
	var hist uint64
	for _, c := range st.FsyncLatency {
		hist += c
	}
	if hist != st.Fsyncs {
		t.Fatalf("histogram holds %d fsyncs, want %d", hist, st.Fsyncs)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(rec(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	l, _, recs, err = openCollect(t, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var want [][]byte
	for i := range writers * per {
		want = append(want, rec(i))
	}
	want = append(want, rec(1000), rec(1001))
	sortBytes := func(s [][]byte) { slices.SortFunc(s, bytes.Compare) }
	sortBytes(want)
	got := slices.Clone(recs)
	sortBytes(got)
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	// The two records of one Append stay adjacent and ordered.
	if i := slices.IndexFunc(recs, func(r []byte) bool { return bytes.Equal(r, rec(1000)) }); i < 0 || !bytes.Equal(recs[i+1], rec(1001)) {
		t.Fatal("records of one Append are not adjacent")
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no dir":             {},
		"negative interval":  {Dir: "x", SyncInterval: -1},
		"huge record":        {Dir: "x", MaxRecordBytes: 2 << 30},
		"pending below rec":  {Dir: "x", MaxRecordBytes: 100, MaxPendingBytes: 50},
		"negative recordmax": {Dir: "x", MaxRecordBytes: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Open(cfg, nil, func([]byte) error { return nil }); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestRecordTooLarge(t *testing.T) {
	l, _, _, err := openCollect(t, Config{Dir: t.TempDir(), MaxRecordBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append(make([]byte, 17)); err == nil {
		t.Fatal("no error for a record above the limit")
	}
	if err := l.Append(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.TooLarge != 1 || st.Appends != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestBacklog(t *testing.T) {
	l, _, _, err := openCollect(t, Config{Dir: t.TempDir(), MaxRecordBytes: 8, MaxPendingBytes: 2 * (8 + frameHeaderLen)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Hold the segment so the flusher blocks on its first batch; at most
	// one batch in flight (itself at most two records: it was pending) and
	// two records pending fit, the rest must be refused.
	l.fileMu.Lock()
	errs := make(chan error, 10)
	for range 10 {
		go func() { errs <- l.Append(make([]byte, 8)) }()
	}
	if err := <-errs; !errors.Is(err, ErrBacklog) {
		t.Fatalf("first finished append: %v, want ErrBacklog", err)
	}
	l.fileMu.Unlock()
	var ok, rejected int
	for range 9 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, ErrBacklog):
			rejected++
		default:
			t.Fatal(err)
		}
	}
	if ok > 4 || ok == 0 || l.Stats().Rejected != uint64(rejected+1) {
		t.Fatalf("%d acknowledged, %d rejected, stats %+v", ok, rejected+1, l.Stats())
	}
}

func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l, _, _, err := openCollect(t, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	body := []byte("state covering records 0..9")
	if err := l.Checkpoint(func(w io.Writer) error { _, err := w.Write(body); return err }); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 13; i++ {
		if err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A failing checkpoint leaves the previous one and all segments.
	if err := l.Checkpoint(func(w io.Writer) error { return errors.New("boom") }); err == nil {
		t.Fatal("failing writer: no error")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, ckpts, _ := listDir(dir)
	if len(ckpts) != 1 || segs[0] != ckpts[0] {
		t.Fatalf("after checkpoint: segments %v, checkpoints %v", segs, ckpts)
	}
	l, gotBody, recs, err := openCollect(t, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotBody, body) {
		t.Fatalf("checkpoint body %q", gotBody)
	}
	if len(recs) != 3 || !bytes.Equal(recs[0], rec(10)) || !bytes.Equal(recs[2], rec(12)) {
		t.Fatalf("replayed %q", recs)
	}
	l.Close()

	t.Run("corrupt checkpoint", func(t *testing.T) {
		path := filepath.Join(dir, ckptName(ckpts[0]))
		data, _ := os.ReadFile(path)
		data[ckptHeaderSize+3] ^= 1
		os.WriteFile(path, data, 0o644)
		if _, _, _, err := openCollect(t, Config{Dir: dir}); err == nil {
			t.Fatal("no error for a corrupt checkpoint")
		}
	})
}

// writeLog writes n records to a fresh log in dir and returns the segment's
// path and bytes.
func writeLog(t *testing.T, dir string, n int) (string, []byte) {
	t.Helper()
	l, _, _, err := openCollect(t, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, segName(1))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

// recordEnds returns the offsets at which each record of a clean segment ends.
func recordEnds(data []byte) []int64 {
	var ends []int64
	off := int64(segHeaderSize)
	for off < int64(len(data)) {
		off += frameHeaderLen + int64(binary.LittleEndian.Uint32(data[off:]))
		ends = append(ends, off)
	}
	return ends
}

func TestTruncateEveryOffset(t *testing.T) {
	src := t.TempDir()
	_, data := writeLog(t, src, 6)
	ends := recordEnds(data)
	for cut := 0; cut < len(data); cut++ {
		dir := t.TempDir()
		path := filepath.Join(dir, segName(1))
		os.WriteFile(path, data[:cut], 0o644)
		l, _, recs, err := openCollect(t, Config{Dir: dir})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		l.Close()
		whole := 0
		for _, e := range ends {
			if e <= int64(cut) {
				whole++
			}
		}
		if len(recs) != whole {
			t.Fatalf("cut at %d: replayed %d records, want %d", cut, len(recs), whole)
		}
		torn := l.Stats().TornTails
		clean := cut == segHeaderSize || slices.Contains(ends, int64(cut))
		if clean != (torn == 0) {
			t.Fatalf("cut at %d: %d torn tails reported", cut, torn)
		}
		// The tail was truncated: a second open is clean and sees the same.
		l, _, again, err := openCollect(t, Config{Dir: dir})
		if err != nil || len(again) != whole || l.Stats().TornTails != 0 {
			t.Fatalf("cut at %d: reopen: %v, %d records, %+v", cut, err, len(again), l.Stats())
		}
		l.Close()
	}
}

func TestFlipEveryBit(t *testing.T) {
	src := t.TempDir()
	_, data := writeLog(t, src, 4)
	ends := recordEnds(data)
	for bit := 0; bit < len(data)*8; bit++ {
		off := bit / 8
		bad := bytes.Clone(data)
		bad[off] ^= 1 << (bit % 8)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, segName(1)), bad, 0o644)
		l, _, recs, err := openCollect(t, Config{Dir: dir})
		var ce *CorruptError
		switch {
		case errors.As(err, &ce):
			if ce.File == "" || ce.Offset > int64(off) {
				t.Fatalf("bit %d: error names offset %d", bit, ce.Offset)
			}
		case err != nil:
			t.Fatalf("bit %d: %v", bit, err)
		default:
			// Accepted only as a torn tail in the last record.
			l.Close()
			if l.Stats().TornTails != 1 || off < int(ends[len(ends)-2]) || len(recs) != len(ends)-1 {
				t.Fatalf("bit %d (byte %d): flip not detected: %d records, %+v", bit, off, len(recs), l.Stats())
			}
		}
	}
}

func TestCorruptMiddle(t *testing.T) {
	src := t.TempDir()
	_, data := writeLog(t, src, 5)
	ends := recordEnds(data)
	bad := bytes.Clone(data)
	bad[ends[1]+frameHeaderLen+2] ^= 0xff // payload of the third record
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprint("skip=", skip), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, segName(1))
			os.WriteFile(path, bad, 0o644)
			l, _, recs, err := openCollect(t, Config{Dir: dir, SkipCorrupt: skip})
			if !skip {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.File != path || ce.Offset != ends[1] || ce.Reason != "crc mismatch" {
					t.Fatalf("error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if len(recs) != 4 || !bytes.Equal(recs[2], rec(3)) || l.Stats().CorruptRecords != 1 {
				t.Fatalf("skip: %d records, %+v", len(recs), l.Stats())
			}
		})
	}
}

func TestReplayError(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 3)
	_, err := Open(Config{Dir: dir}, nil, func(rec []byte) error { return errors.New("bad record") })
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("bad record")) {
		t.Fatalf("error: %v", err)
	}
}

// FuzzReplay feeds arbitrary segment bodies to the record scanner. It checks
// that scanning never panics and that, without skipping, the records it
// accepts re-frame to exactly the bytes before where it stopped.
func FuzzReplay(f *testing.F) {
	var clean []byte
	for i := range 4 {
		clean = appendFrame(clean, rec(i))
	}
	f.Add(clean)
	f.Add(clean[:len(clean)-3])
	f.Add([]byte{})
	f.Add(make([]byte, 30))
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append(appendSegHeader(nil, 1), body...)
		for _, skip := range []bool{false, true} {
			var reframed []byte
			res, err := scanRecords(data, segHeaderSize, 1<<16, skip, func(int64, string) {}, func(r []byte) error {
				reframed = appendFrame(reframed, r)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.end < segHeaderSize || res.end > int64(len(data)) {
				t.Fatalf("end %d outside the data", res.end)
			}
			if !skip && !bytes.Equal(reframed, data[segHeaderSize:res.end]) {
				t.Fatal("accepted records do not re-frame to the scanned bytes")
			}
			if !skip && res.torn && res.corrupt >= 0 {
				t.Fatal("both torn and corrupt")
			}
		}
	})
}

// FuzzCheckpoint feeds arbitrary files to the checkpoint verifier: it must
// not panic, and a file it accepts must re-encode identically.
func FuzzCheckpoint(f *testing.F) {
	dir := f.TempDir()
	if err := writeCheckpoint(dir, 3, func(w io.Writer) error { _, err := w.Write([]byte("body")); return err }); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, ckptName(3)))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := verifyCheckpoint(bytes.NewReader(data), int64(len(data)), 0)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(body)
		if len(b) != len(data)-ckptHeaderSize-ckptTrailer {
			t.Fatalf("body of %d bytes from a file of %d", len(b), len(data))
		}
		if crc(b) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
			t.Fatal("accepted a body whose crc does not match")
		}
	})
}

func TestDirectoryDamage(t *testing.T) {
	// Three segments: 1 and 2 with records, 3 empty (from the last Open).
	build := func(t *testing.T) string {
		dir := t.TempDir()
		for i := range 3 {
			l, _, _, err := openCollect(t, Config{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if i < 2 {
				l.Append(rec(i))
			}
			l.Close()
		}
		return dir
	}
	seg := func(dir string, n uint64) string { return filepath.Join(dir, segName(n)) }
	for _, tc := range []struct {
		name    string
		damage  func(dir string)
		wantErr string // "" = opens
		records int
	}{
		{"intact", func(string) {}, "", 2},
		{"missing middle segment", func(dir string) { os.Remove(seg(dir, 2)) }, "segment wal-0000000000000002.seg is missing", 0},
		{"bad segment header", func(dir string) {
			data, _ := os.ReadFile(seg(dir, 1))
			data[3] ^= 1
			os.WriteFile(seg(dir, 1), data, 0o644)
		}, "segment header: bad magic", 0},
		{"renamed segment", func(dir string) { os.Rename(seg(dir, 3), seg(dir, 4)); os.Rename(seg(dir, 2), seg(dir, 3)) }, "segment wal-0000000000000002.seg is missing", 0},
		{"crash while creating the last segment", func(dir string) { os.WriteFile(seg(dir, 3), []byte("NBA"), 0o644) }, "", 2},
		{"leftover temporary checkpoint", func(dir string) { os.WriteFile(filepath.Join(dir, ckptName(9)+".tmp"), []byte("x"), 0o644) }, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := build(t)
			tc.damage(dir)
			l, _, recs, err := openCollect(t, Config{Dir: dir})
			if tc.wantErr != "" {
				if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr)) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if len(recs) != tc.records {
				t.Fatalf("%d records, want %d", len(recs), tc.records)
			}
			if _, err := os.Stat(filepath.Join(dir, ckptName(9)+".tmp")); err == nil {
				t.Fatal("temporary checkpoint left behind")
			}
		})
	}
}
