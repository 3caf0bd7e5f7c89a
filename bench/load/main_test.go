package main

import (
	"bytes"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHistogramPrecision(t *testing.T) {
	for v := uint64(1); v < 1<<40; v = v*17/16 + 1 {
		i := bucketOf(v)
		mid := bucketMid(i)
		if rel := math.Abs(mid-float64(v)) / float64(v); rel > 0.016 {
			t.Fatalf("value %d: bucket %d middle %v, off by %.3f", v, i, mid, rel)
		}
		if i > 0 && bucketOf(v-1) > i {
			t.Fatalf("buckets not monotonic at %d", v)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ { // 1µs .. 1000µs
		h.record(time.Duration(i) * time.Microsecond)
	}
	f := func(q, want float64) {
		t.Helper()
		if got := h.quantile(q); math.Abs(got-want)/want > 0.02 {
			t.Errorf("quantile(%v) = %vµs, want about %vµs", q, got, want)
		}
	}
	f(0.5, 500)
	f(0.99, 990)
	f(0.999, 999)
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
}

// TestRunPrintsSummary runs the whole driver briefly; it checks the output's
// shape, not any speed.
func TestRunPrintsSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and drives them")
	}
	var out bytes.Buffer
	if err := run([]string{"-d", "100ms", "-rounds", "1", "-c", "2", "-customers", "10"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^floor_rps=\d+ nba_rps=\d+ ratio=[\d.]+ floor_p99_us=[\d.]+ nba_p99_us=[\d.]+$`).MatchString(last) {
		t.Errorf("last line %q is not the machine-readable summary", last)
	}
	if err := run([]string{"-bundle", "/nonexistent"}, &out); err == nil {
		t.Error("-bundle accepted before the bundle backend is wired")
	}
}
