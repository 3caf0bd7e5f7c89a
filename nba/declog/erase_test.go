package declog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadDirSkipsErased: after an erasure, ReadDir (and every tool built
// on it: nba log, replay, evaluate, uplift) passes no record of the
// erased customer, decisions and feedback alike, before or after the
// erasure was logged; other customers' records are untouched.
func TestReadDirSkipsErased(t *testing.T) {
	l := newTestLogger(t, Config{})
	for i := range 14 { // customers customer-0 .. customer-6, two decisions each
		l.LogDecision(sampleDecision(i))
	}
	l.LogFeedback(&Feedback{Decision: "d-3", Time: time.Unix(3, 0), Customer: "customer-3", Action: "savings", Event: "click"})
	l.Flush()
	if err := l.LogErasure("customer-3", time.Unix(10, 0)); err != nil {
		t.Fatal(err)
	}
	l.LogDecision(sampleDecision(10)) // customer-3 again, after the erasure
	l.Close()
	recs, st := readAll(t, l.cfg.Dir)
	gone := Pseudonym(secret, "customer-3")
	for _, r := range recs {
		if r.Customer == gone {
			t.Errorf("record of the erased customer read: %+v", r)
		}
	}
	if len(recs) != 12 || st.Erased != 4 || st.Records != 12 {
		t.Errorf("read %d records, stats %+v; want 12 read, 4 erased", len(recs), st)
	}
	b, err := os.ReadFile(filepath.Join(l.cfg.Dir, ErasuresFile))
	if err != nil || !strings.Contains(string(b), gone) || strings.Contains(string(b), "customer-3") {
		t.Errorf("erasures file %q (%v): want the pseudonym only", b, err)
	}
}

func TestErasedPseudonymsDamaged(t *testing.T) {
	dir := t.TempDir()
	if m, err := ErasedPseudonyms(dir); err != nil || len(m) != 0 {
		t.Errorf("no file: %v %v", m, err)
	}
	os.WriteFile(filepath.Join(dir, ErasuresFile), []byte("{\"type\":\"erasure\",\"customer\":\"ab\"}\nnot json\n"), 0o600)
	if _, err := ErasedPseudonyms(dir); err == nil {
		t.Error("a damaged erasures file read without error")
	}
}
