package state

import (
	"context"
	"testing"
	"time"

	"nba/state/wal"
)

// A write that meets the mark of a merge which then turns out to conflict
// (the survivor got another value of a unique namespace meanwhile) is
// made on the profile it was sent to, which takes writes again.
func TestWriteMeetingARefusedMergeLandsWhereSent(t *testing.T) {
	s, err := Open(Config{WAL: wal.Config{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := NewIdentities(s, []byte("0123456789abcdef"))
	if err := x.Configure(&IdentityConfig{Namespaces: map[string]Namespace{"crm_id": {Primary: true, Unique: true}, "email": {Unique: true}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, kv := range []map[string]string{{"crm_id": "A", "email": "a@x"}, {"crm_id": "B", "email": "b@x"}} {
		if _, err := x.Identify(ctx, kv, t0, ""); err != nil {
			t.Fatal(err)
		}
	}
	// B marked "merging into A" (step 1 of a merge that cannot succeed).
	mark := x.m.identityRecord("B", t0, identOp{op: identMark, peer: "A", receipt: "r1.42"})
	if _, err := s.WriteRecord(ctx, &mark); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordContact(Contact{Customer: "B", Action: "a", At: t0}); err == nil {
		t.Fatal("a write to a marked profile was applied")
	}
	if err := x.Stitched().RecordContact(Contact{Customer: "B", Action: "a", At: t0}); err != nil {
		t.Fatal(err)
	}
	var v View
	if !s.View([]byte("B"), &v) || v.HistoryLen() != 1 {
		t.Errorf("B has %d contacts, want the write", v.HistoryLen())
	}
	if to, _ := v.Moved(); to != "" {
		t.Errorf("B still moved to %q", to)
	}
	if s.View([]byte("A"), &v) && v.HistoryLen() != 0 {
		t.Error("the write went to A")
	}
}
