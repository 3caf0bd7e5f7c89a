package redisstate

import (
	"context"
	"testing"
	"time"

	"nba/state"
	"nba/state/redis/redistest"
)

// TestCASIdenticalValueOfAnotherWrite: two processes that read the same
// version and write the same bytes (two id-less impressions at the same
// time: the second must count too) are two writes; the second one's
// compare-and-set must lose and apply again, not be taken for a retry of
// the first (lost update). A retry of one compare-and-set (the same call
// sent again after a lost answer) still succeeds.
func TestCASIdenticalValueOfAnotherWrite(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	open := func() *Backend {
		b, err := Open(context.Background(), Config{URL: s.URL, AllowVolatile: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	a, b := open(), open()
	ctx := context.Background()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	c := state.Contact{Customer: "c1", Action: "a", Group: "g", Channel: "web", Outcome: state.Impression, At: at}
	val := func(be *Backend) []byte {
		r, err := be.m.ContactRecord(c)
		if err != nil {
			t.Fatal(err)
		}
		next, _, err := be.m.Apply(nil, &r, 0)
		if err != nil {
			t.Fatal(err)
		}
		return be.m.AppendCustomer(nil, next)
	}
	va, vb := val(a), val(b)
	if string(va) != string(vb) {
		t.Fatal("the two writes differ; the test needs identical values")
	}
	ok, _, _, err := a.cas(ctx, "c1", value{}, va)
	if err != nil || !ok {
		t.Fatalf("first write: ok %v, err %v", ok, err)
	}
	ok, _, cur, err := b.cas(ctx, "c1", value{}, vb)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatal("the second write from version 0 was taken as applied: one impression lost")
	}
	if cur.ver != 1 {
		t.Fatalf("refusal answered version %d, want 1", cur.ver)
	}
	// The retry path: the same compare-and-set (same arguments) sent again.
	args := a.casArgs(cur, va)
	for i := range 2 {
		n, err := a.client.Do(ctx, a.client.B().Eval().Script(casScript).Numkeys(1).Key(key("c1")).Arg(args...).Build()).AsInt64()
		if err != nil || n != 1 {
			t.Fatalf("send %d of one compare-and-set: %d, %v", i, n, err)
		}
	}
}

// TestCASRecreatedKey (redis-1): a compare-and-set applied on version 1 of
// a customer whose key was deleted and written again (version 1 again,
// another value) must lose, not replace the new customer with a change of
// the old one.
func TestCASRecreatedKey(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	b, err := Open(context.Background(), Config{URL: s.URL, AllowVolatile: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	val := func(action string) []byte {
		r, err := b.m.ContactRecord(state.Contact{Customer: "c1", Action: action, Group: "g", Channel: "web", Outcome: state.Impression, At: at})
		if err != nil {
			t.Fatal(err)
		}
		next, _, err := b.m.Apply(nil, &r, 0)
		if err != nil {
			t.Fatal(err)
		}
		return b.m.AppendCustomer(nil, next)
	}
	ok, w, _, err := b.cas(ctx, "c1", value{}, val("old"))
	if err != nil || !ok {
		t.Fatalf("first write: ok %v, err %v", ok, err)
	}
	old := value{ver: 1, w: w}
	if err := b.client.Do(ctx, b.client.B().Del().Key(key("c1")).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if ok, _, _, err := b.cas(ctx, "c1", value{}, val("new")); err != nil || !ok {
		t.Fatalf("write of the new customer: ok %v, err %v", ok, err)
	}
	ok, _, cur, err := b.cas(ctx, "c1", old, val("change"))
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatal("a write applied on the deleted customer's version 1 replaced the new customer")
	}
	if cur.ver != 1 || cur.w == w {
		t.Errorf("refusal answered version %d nonce %q, want version 1 of the new write", cur.ver, cur.w)
	}
}
