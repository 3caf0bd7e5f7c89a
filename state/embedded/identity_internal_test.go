package embedded

import (
	"context"
	"slices"
	"testing"
	"time"

	"nba/state"
	"nba/state/wal"
)

// A write that meets the mark of a merge which then turns out to conflict
// (the survivor got another value of a unique namespace meanwhile) is
// made on the profile it was sent to, which takes writes again.
func TestWriteMeetingARefusedMergeLandsWhereSent(t *testing.T) {
	s, err := Open(state.Config{WAL: wal.Config{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := state.NewIdentities(s, []byte(identityKey))
	if err := x.Configure(&state.IdentityConfig{Namespaces: map[string]state.Namespace{"email": {Unique: true}, "cookie": {}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var profiles []string
	for _, kv := range []map[string]string{{"email": "a@x"}, {"email": "b@x"}} {
		l, err := x.Identify(ctx, kv, t0, "")
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, l.Customer)
	}
	// B marked "merging into A" (step 1 of a merge that cannot succeed).
	mark, b, a := mergeMark(t, "a@x", "b@x", t0)
	if !slices.Contains(profiles, a) || !slices.Contains(profiles, b) || a == b {
		t.Fatalf("the scratch merge of %s into %s is not between %v", b, a, profiles)
	}
	if _, err := s.WriteRecord(ctx, &mark); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Get(ctx, b); c == nil {
		t.Fatal("B is gone")
	} else if to, merging := c.Moved(); to != a || !merging {
		t.Fatalf("B is not marked merging into A: %q %v", to, merging)
	}
	if err := s.RecordContact(state.Contact{Customer: b, Action: "a", At: t0}); err == nil {
		t.Fatal("a write to a marked profile was applied")
	}
	if err := x.Stitched().RecordContact(state.Contact{Customer: b, Action: "a", At: t0}); err != nil {
		t.Fatal(err)
	}
	var v state.View
	if !s.View([]byte(b), &v) || v.HistoryLen() != 1 {
		t.Errorf("B has %d contacts, want the write", v.HistoryLen())
	}
	if to, _ := v.Moved(); to != "" {
		t.Errorf("B still moved to %q", to)
	}
	if s.View([]byte(a), &v) && v.HistoryLen() != 0 {
		t.Error("the write went to A")
	}
}

const identityKey = "0123456789abcdef"

// recordingStore records the records written through it.
type recordingStore struct {
	*Store
	recs []state.Record
}

func (r *recordingStore) WriteRecord(ctx context.Context, rec *state.Record) (bool, error) {
	r.recs = append(r.recs, *rec)
	return r.Store.WriteRecord(ctx, rec)
}

// mergeMark returns the record that marks one profile as merging into
// another (step 1 of a merge) as Identities writes it, and the two
// profiles: the anonymous profiles of the e-mail addresses e1 and e2
// (named from the identity key), merged on a scratch store where e-mail is
// not unique by a cookie linked to both.
func mergeMark(t *testing.T, e1, e2 string, at time.Time) (mark state.Record, from, into string) {
	t.Helper()
	s, err := Open(state.Config{WAL: wal.Config{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs := &recordingStore{Store: s}
	x := state.NewIdentities(rs, []byte(identityKey))
	if err := x.Configure(&state.IdentityConfig{Namespaces: map[string]state.Namespace{"email": {}, "cookie": {}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, kv := range []map[string]string{{"email": e1}, {"email": e2}, {"email": e1, "cookie": "c"}} {
		if _, err := x.Identify(ctx, kv, at, ""); err != nil {
			t.Fatal(err)
		}
	}
	rs.recs = nil
	l, err := x.Identify(ctx, map[string]string{"email": e2, "cookie": "c"}, at, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Receipts) != 1 {
		t.Fatalf("the scratch link made %d merges, want 1", len(l.Receipts))
	}
	into = l.Customer
	for _, r := range rs.recs {
		if r.Customer() == into {
			continue
		}
		// The first write to the merged profile: its mark.
		from = r.Customer()
		c, _ := s.Get(ctx, from)
		if c == nil {
			t.Fatalf("%s is gone", from)
		}
		if to, _ := c.Moved(); to != into {
			t.Fatalf("the scratch merge did not merge %s into %s: moved to %q", from, into, to)
		}
		return r, from, into
	}
	t.Fatal("no record written to the merged profile")
	return state.Record{}, "", ""
}
