package declog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

var secret = []byte("0123456789abcdef-test-secret")

func newTestLogger(t *testing.T, cfg Config) *Logger {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Secret == nil {
		cfg.Secret = secret
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func sampleDecision(i int) *Decision {
	return &Decision{
		ID:       fmt.Sprintf("d-%d", i),
		Time:     time.Date(2026, 11, 22, 10, 0, 0, i, time.UTC),
		Customer: fmt.Sprintf("customer-%d", i%7),
		Channel:  "web",
		Context:  "c0ffee",
		Control:  i%10 == 0,
		Versions: []Version{{"catalog", "v3"}, {"model", "ab12"}},
		Candidates: []Candidate{
			{Action: "gold-card", Stage: "cap"},
			{Action: "savings", P: 0.031, Value: 12.5, Score: 0.3875},
			{Action: "loan \"quoted\"\n", P: math.NaN(), Value: 1, Score: 0},
		},
		Chosen: []Chosen{{Action: "savings", Prob: 0.9}, {Action: "loan \"quoted\"\n", Prob: 0.05, Samples: 101}},
	}
}

func readAll(t *testing.T, dir string) ([]Record, ReadStats) {
	t.Helper()
	var recs []Record
	st, err := ReadDir(dir, "decisions", func(line []byte) error {
		r, err := ParseRecord(line)
		if err != nil {
			return fmt.Errorf("%w: %s", err, line)
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, st
}

func TestRoundTrip(t *testing.T) {
	for _, codec := range []Codec{CodecZstd, CodecSnappy} {
		t.Run(codec.String(), func(t *testing.T) { testRoundTrip(t, codec) })
	}
}

func testRoundTrip(t *testing.T, codec Codec) {
	l := newTestLogger(t, Config{Codec: codec})
	for i := range 50 {
		if !l.LogDecision(sampleDecision(i)) {
			t.Fatal("decision dropped")
		}
		if !l.LogFeedback(&Feedback{Decision: fmt.Sprintf("d-%d", i), Time: time.Unix(int64(i), 0), Customer: "customer-1", Action: "savings", Event: "click", Reward: 1.5}) {
			t.Fatal("feedback dropped")
		}
	}
	l.Close()
	recs, st := readAll(t, l.cfg.Dir)
	if len(recs) != 100 || st.Records != 100 || st.LostRecords != 0 || st.LostBytes != 0 || st.Files != 1 {
		t.Fatalf("read %d records, stats %+v", len(recs), st)
	}
	for i := range 50 {
		d, f := recs[2*i], recs[2*i+1]
		want := sampleDecision(i)
		if d.Type != "decision" || d.ID != want.ID || !d.Time.Equal(want.Time) || d.Channel != "web" || d.Control != want.Control ||
			// Scored candidates first, then the removed ones by stage.
			d.Versions["model"] != "ab12" || len(d.Candidates) != 3 || d.Candidates[2].Stage != "cap" || d.Candidates[2].P != nil ||
			d.Candidates[2].Action != "gold-card" || *d.Candidates[0].P != 0.031 || d.Candidates[1].Action != "loan \"quoted\"\n" || d.Candidates[1].P != nil ||
			len(d.Chosen) != 2 || d.Chosen[1].Slot != 1 || *d.Chosen[1].Prob != 0.05 || d.Chosen[1].Samples != 101 {
			t.Fatalf("decision %d read back as %+v", i, d)
		}
		if d.Customer != Pseudonym(secret, want.Customer) || len(d.Customer) != 32 {
			t.Fatalf("customer %q, want the pseudonym of %q", d.Customer, want.Customer)
		}
		if f.Type != "feedback" || f.Decision != want.ID || *f.Reward != 1.5 || f.Event != "click" || f.Customer != Pseudonym(secret, "customer-1") {
			t.Fatalf("feedback %d read back as %+v", i, f)
		}
	}
	// The file is a plain zstd stream (or Snappy framed stream) whose text
	// never holds a raw id.
	files, _ := Files(l.cfg.Dir, "decisions")
	if len(files) != 1 || !strings.HasSuffix(files[0], codec.suffix()) {
		t.Fatalf("files %v, want one %s file", files, codec.suffix())
	}
	raw, _ := os.ReadFile(files[0])
	var text []byte
	var err error
	if codec == CodecSnappy {
		text, err = io.ReadAll(s2.NewReader(bytes.NewReader(raw)))
	} else {
		dec, _ := zstd.NewReader(bytes.NewReader(raw))
		defer dec.Close()
		text, err = io.ReadAll(dec)
	}
	if err != nil {
		t.Fatalf("%s stream: %v", codec, err)
	}
	if n := bytes.Count(text, []byte("\n")); n != 100 || bytes.Contains(text, []byte("customer-")) {
		t.Fatalf("plain %s read gives %d lines; raw ids present: %v", codec, n, bytes.Contains(text, []byte("customer-")))
	}
	if s := l.Stats(); s.Enqueued != 100 || s.Written != 100 || s.Dropped != 0 || s.Files != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestAppendStringIsJSON(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		b := appendString(nil, in)
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != want {
			t.Errorf("appendString(%q) = %s: decodes to %q (%v), want %q", in, b, got, err, want)
		}
	}
	f("plain", "plain")
	f("q\"b\\s/", "q\"b\\s/")
	f("\x00\x1f\t\n\r", "\x00\x1f\t\n\r")
	f("é漢\u2028", "é漢\u2028")
	f("bad\xffutf8", "bad\ufffdutf8")
}

func TestRotation(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		l := newTestLogger(t, Config{MaxFileBytes: 300})
		for i := range 12 {
			l.LogDecision(sampleDecision(i))
			l.Flush()
		}
		l.Close()
		recs, st := readAll(t, l.cfg.Dir)
		if len(recs) != 12 || st.Files < 4 || uint64(st.Files) != l.Stats().Files {
			t.Fatalf("%d records in %d files (stats %+v)", len(recs), st.Files, l.Stats())
		}
		for i, r := range recs {
			if r.ID != fmt.Sprintf("d-%d", i) {
				t.Fatalf("record %d is %s: files out of order", i, r.ID)
			}
		}
		files, _ := Files(l.cfg.Dir, "decisions")
		for _, f := range files {
			if fi, _ := os.Stat(f); fi.Size() > 300 && st.Batches != st.Files {
				t.Errorf("%s has %d bytes, over the limit with several batches", f, fi.Size())
			}
		}
	})
	t.Run("age and retention", func(t *testing.T) {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := make(chan time.Time, 1)
		clock <- now
		l := newTestLogger(t, Config{MaxFileAge: time.Hour, MaxFiles: 3, Now: func() time.Time {
			t := <-clock
			clock <- t
			return t
		}})
		for i := range 5 {
			l.LogDecision(sampleDecision(i))
			l.Flush()
			l.LogDecision(sampleDecision(100 + i)) // same file: younger than an hour
			l.Flush()
			now = now.Add(time.Hour)
			<-clock
			clock <- now
		}
		l.Close()
		recs, st := readAll(t, l.cfg.Dir)
		s := l.Stats()
		if s.Files != 5 || s.Removed != 2 || st.Files != 3 || len(recs) != 6 || recs[0].ID != "d-2" {
			t.Fatalf("stats %+v, read %+v, first %q", s, st, recs[0].ID)
		}
	})
}

func TestQueueOverflowCounted(t *testing.T) {
	hold := make(chan struct{})
	l, err := newLogger(Config{Dir: t.TempDir(), Secret: secret, QueueSize: 4}, hold)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for i := range 10 {
		if l.LogDecision(sampleDecision(i)) {
			accepted++
		}
	}
	close(hold)
	l.Close()
	if l.LogDecision(sampleDecision(99)) {
		t.Error("a record after Close was accepted")
	}
	s := l.Stats()
	if accepted != 4 || s.Enqueued != 4 || s.Dropped != 7 || s.Written != 4 {
		t.Fatalf("accepted %d, stats %+v; want 4 enqueued and written, 7 dropped", accepted, s)
	}
	if recs, _ := readAll(t, l.cfg.Dir); len(recs) != 4 {
		t.Fatalf("read %d records, want 4", len(recs))
	}
	big := sampleDecision(0)
	big.Context = strings.Repeat("x", 70<<10)
	l2 := newTestLogger(t, Config{})
	if l2.LogDecision(big) || l2.Stats().TooLarge != 1 {
		t.Error("an oversized record was not dropped and counted")
	}
}

// batches writes n batches of sizes 1..n records into one file image and
// returns it with the end offset of each batch.
// batchesImage returns a log file of n batches (batch b holds b records)
// and the offset where each batch ends; first is where the first batch
// starts, and metaLen the size of a batch's metadata.
func batchesImage(t testing.TB, n int, codec Codec) (file []byte, ends []int, first, metaLen int) {
	t.Helper()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	defer enc.Close()
	metaLen = 8 + metaSize
	if codec == CodecSnappy {
		file = append(file, snappyStreamID...)
		metaLen = 4 + metaSize
	}
	first = len(file)
	id := 0
	for b := 1; b <= n; b++ {
		var batch []byte
		for range b {
			batch = append(batch, fmt.Sprintf(`{"type":"feedback","customer":"c","decision":"d-%d","time":"2026-01-01T00:00:00Z","action":"a","event":"e","reward":1}`+"\n", id)...)
			id++
		}
		if codec == CodecSnappy {
			file = appendSnappyBatch(file, batch, b)
		} else {
			file = appendBatch(file, enc, batch, b)
		}
		ends = append(ends, len(file))
	}
	return file, ends, first, metaLen
}

func TestTruncatedFileReportsLoss(t *testing.T) {
	for _, codec := range []Codec{CodecZstd, CodecSnappy} {
		t.Run(codec.String(), func(t *testing.T) { testTruncatedFileReportsLoss(t, codec) })
	}
}

func testTruncatedFileReportsLoss(t *testing.T, codec Codec) {
	file, ends, first, metaLen := batchesImage(t, 5, codec)
	for cut := 0; cut <= len(file); cut++ {
		complete := 0
		for complete < len(ends) && ends[complete] <= cut {
			complete++
		}
		wantRecords := complete * (complete + 1) / 2
		var got int
		st, err := ReadFile(bytes.NewReader(file[:cut]), func(line []byte) error {
			if _, err := ParseRecord(line); err != nil {
				return err
			}
			got++
			return nil
		})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		start := 0
		if cut >= first { // the stream identifier is read
			start = first
		}
		if complete > 0 {
			start = ends[complete-1]
		}
		wantLost := 0
		if cut-start >= metaLen { // the cut batch's metadata survived
			wantLost = complete + 1
		}
		if got != wantRecords || st.Records != wantRecords || st.LostBytes != int64(cut-start) || st.LostRecords != wantLost {
			t.Fatalf("cut at %d of %d: %d records, stats %+v; want %d records, %d lost records, %d lost bytes", cut, len(file), got, st, wantRecords, wantLost, cut-start)
		}
	}
}

func TestCorruptBatchIsSkipped(t *testing.T) {
	for _, codec := range []Codec{CodecZstd, CodecSnappy} {
		t.Run(codec.String(), func(t *testing.T) { testCorruptBatchIsSkipped(t, codec) })
	}
}

func testCorruptBatchIsSkipped(t *testing.T, codec Codec) {
	file, ends, _, metaLen := batchesImage(t, 4, codec)
	file[ends[1]+metaLen+5] ^= 0x40 // inside the third batch's frame
	st, err := ReadFile(bytes.NewReader(file), func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 1+2+4 || st.LostRecords != 3 || st.LostBytes != int64(ends[2]-ends[1]) || st.Damaged != 1 {
		t.Fatalf("stats %+v", st)
	}
	garbage := append(file[:ends[0]:ends[0]], "not a frame at all"...)
	if st, _ := ReadFile(bytes.NewReader(garbage), func([]byte) error { return nil }); st.Records != 1 || st.LostBytes != 18 {
		t.Fatalf("garbage tail: %+v", st)
	}
}

// TestCrashChild is the child of TestCrashRecovery: it logs and flushes
// batches forever, announcing each flush on stdout, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("DECLOG_CRASH_DIR")
	if dir == "" {
		t.Skip("run by TestCrashRecovery")
	}
	codec, err := ParseCodec(os.Getenv("DECLOG_CRASH_CODEC"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Config{Dir: dir, Secret: secret, FlushInterval: time.Hour, NoSync: true, MaxFileBytes: 4 << 10, Codec: codec})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		l.LogDecision(sampleDecision(i))
		if i%10 == 9 {
			l.Flush()
			fmt.Printf("flushed %d\n", i+1)
		}
	}
}

func TestCrashRecovery(t *testing.T) {
	if os.Getenv("DECLOG_CRASH_DIR") != "" {
		t.Skip("child")
	}
	for _, codec := range []Codec{CodecZstd, CodecSnappy} {
		t.Run(codec.String(), func(t *testing.T) { testCrashRecovery(t, codec) })
	}
}

func testCrashRecovery(t *testing.T, codec Codec) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), "DECLOG_CRASH_DIR="+dir, "DECLOG_CRASH_CODEC="+codec.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	flushed := 0
	for flushed < 300 && sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "flushed "); ok {
			flushed, _ = strconv.Atoi(n)
		}
	}
	cmd.Process.Kill() // SIGKILL mid-stream: the child keeps logging
	cmd.Wait()
	if flushed < 300 {
		t.Fatalf("child announced only %d flushed records", flushed)
	}
	// Simulate a torn final write as well.
	files, _ := Files(dir, "decisions")
	last := files[len(files)-1]
	fi, _ := os.Stat(last)
	if fi.Size() > 10 {
		os.Truncate(last, fi.Size()-7)
	}
	recs, st := readAll(t, dir)
	if len(recs) < flushed-10 {
		t.Fatalf("recovered %d records, but %d were flushed before the kill (stats %+v)", len(recs), flushed, st)
	}
	for i, r := range recs {
		if r.ID != fmt.Sprintf("d-%d", i) {
			t.Fatalf("record %d is %q: a gap or a duplicate", i, r.ID)
		}
	}
	if fi.Size() > 10 && (st.LostRecords == 0 || st.LostBytes == 0) {
		t.Errorf("the torn batch was not reported: %+v", st)
	}
}

func TestLogAllocs(t *testing.T) {
	hold := make(chan struct{})
	l, err := newLogger(Config{Dir: t.TempDir(), Secret: secret, NoSync: true, FlushInterval: time.Hour}, hold)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := sampleDecision(1)
	f := &Feedback{Decision: "d-1", Customer: "c", Action: "a", Event: "click", Reward: 1}
	// Warm up with the writer held: 1000 records with grown buffers end on
	// the free list, more than can be in flight below.
	for range 500 {
		l.LogDecision(d)
		l.LogFeedback(f)
	}
	close(hold)
	l.Flush()
	n := testing.AllocsPerRun(200, func() {
		l.LogDecision(d)
		l.LogFeedback(f)
	})
	if n != 0 {
		t.Errorf("logging allocates %.2f times per call pair, want 0", n)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no dir":       {Secret: secret},
		"short secret": {Dir: t.TempDir(), Secret: []byte("short")},
		"prefix":       {Dir: t.TempDir(), Secret: secret, Prefix: "a/b"},
		"batch":        {Dir: t.TempDir(), Secret: secret, MaxBatchBytes: 1 << 30},
		"codec":        {Dir: t.TempDir(), Secret: secret, Codec: 7},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

func FuzzReadFile(f *testing.F) {
	for _, codec := range []Codec{CodecZstd, CodecSnappy} {
		file, ends, _, _ := batchesImage(f, 3, codec)
		f.Add(file)
		f.Add(file[:ends[1]+13])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := 0
		st, err := ReadFile(bytes.NewReader(data), func(line []byte) error {
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatal("line contains a newline")
			}
			lines++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.Records != lines || st.LostBytes < 0 || st.LostBytes > int64(len(data)) {
			t.Fatalf("stats %+v for %d bytes and %d lines", st, len(data), lines)
		}
		// Whatever was recovered, re-encoded, reads back identically.
		var again []byte
		enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		defer enc.Close()
		var batch []byte
		ReadFile(bytes.NewReader(data), func(line []byte) error {
			batch = append(append(batch, line...), '\n')
			return nil
		})
		if lines > 0 {
			again = appendBatch(again, enc, batch, lines)
		}
		var back []byte
		st2, _ := ReadFile(bytes.NewReader(again), func(line []byte) error {
			back = append(append(back, line...), '\n')
			return nil
		})
		if !bytes.Equal(back, batch) || st2.LostBytes != 0 {
			t.Fatalf("re-encoded records differ")
		}
	})
}

func BenchmarkLogDecision(b *testing.B) {
	l, err := New(Config{Dir: b.TempDir(), Secret: secret, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	d := sampleDecision(1)
	b.ReportAllocs()
	for b.Loop() {
		l.LogDecision(d)
	}
	b.StopTimer()
	l.Flush()
	b.ReportMetric(float64(l.Stats().Dropped)/float64(b.N), "dropped/op")
}

// BenchmarkEncodeBaseline is the baseline of BenchmarkLogDecision: encoding the
// same decision with encoding/json, without queueing or writing.
func BenchmarkEncodeBaseline(b *testing.B) {
	d := sampleDecision(1)
	d.Candidates[2].P = 0 // encoding/json rejects NaN
	b.ReportAllocs()
	for b.Loop() {
		json.Marshal(d)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"\\\n\x00", "é漢\u2028", "bad\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: not JSON: %v", s, b, err)
		}
		// Valid UTF-8 round-trips exactly; invalid bytes become U+FFFD.
		if utf8.ValidString(s) && got != s {
			t.Fatalf("appendString(%q) decodes to %q", s, got)
		}
	})
}
