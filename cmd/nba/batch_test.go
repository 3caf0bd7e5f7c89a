package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Regression: on a terminal the bar stopped at the first chunk (256/10000):
// it drew at most every 100 ms and never drew its final state.
func TestBatchProgressShowsTheEnd(t *testing.T) {
	var out strings.Builder
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	p := &progress{w: &out, total: 10000, tty: true, now: func() time.Time { return now }}
	for n := 0; n < 10000; n += 256 {
		p.add(min(256, 10000-n))
		now = now.Add(time.Millisecond) // the chunks come faster than the bar redraws
	}
	p.done()
	frames := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\r")
	last := frames[len(frames)-1]
	if !strings.HasSuffix(last, "] 10000/10000") || !strings.HasPrefix(last, "["+strings.Repeat("=", 40)+"]") {
		t.Errorf("last frame %q, want a full bar at 10000/10000; all:\n%q", last, out.String())
	}
	if len(frames) > 4 { // "" before the first \r, a frame at 256, one at 100 ms, the final one
		t.Errorf("%d frames for 40 ms of chunks, want the bar drawn at most every 100 ms", len(frames)-1)
	}

	out.Reset()
	q := &progress{w: &out, total: 10, now: time.Now}
	q.add(10)
	q.done()
	if out.Len() != 0 {
		t.Errorf("progress drawn on a non-terminal: %q", out.String())
	}
}

// Every line of nba batch carries a decision_id, distinct per customer, so
// that feedback can name the decision it answers.
func TestBatchLinesCarryDecisionIDs(t *testing.T) {
	list := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(list, []byte("c00042\nc00043\nc00044\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runNBA(t, "batch", "-channel", "email", "-customers", list)
	if code != 0 {
		t.Fatalf("nba batch: exit %d: %s", code, stderr)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for line := range strings.Lines(stdout) {
		var d struct {
			DecisionID string `json:"decision_id"`
			CustomerID string `json:"customer_id"`
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if !hex32.MatchString(d.DecisionID) || seen[d.DecisionID] {
			t.Errorf("%s: decision_id %q, want 32 hex digits, unique", d.CustomerID, d.DecisionID)
		}
		seen[d.DecisionID] = true
	}
	if len(seen) != 3 {
		t.Errorf("%d lines with decision ids, want 3:\n%s", len(seen), stdout)
	}
}
