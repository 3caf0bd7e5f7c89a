package declog

import "testing"

// TestStaleDecisionIsMarked: a decision made while the customer's live
// state could not be read is written with "state":"stale" and read back
// so; the others carry no state.
func TestStaleDecisionIsMarked(t *testing.T) {
	l := newTestLogger(t, Config{})
	for i := range 4 {
		d := sampleDecision(i)
		d.Stale = i%2 == 1
		if !l.LogDecision(d) {
			t.Fatal("decision dropped")
		}
	}
	l.Close()
	recs, _ := readAll(t, l.cfg.Dir)
	if len(recs) != 4 {
		t.Fatalf("read %d records, want 4", len(recs))
	}
	for i, r := range recs {
		want := ""
		if i%2 == 1 {
			want = "stale"
		}
		if r.State != want {
			t.Errorf("decision %d read back with state %q, want %q", i, r.State, want)
		}
	}
}
