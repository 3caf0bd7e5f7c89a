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
	ok, _, err := a.cas(ctx, "c1", 0, va)
	if err != nil || !ok {
		t.Fatalf("first write: ok %v, err %v", ok, err)
	}
	ok, cur, err := b.cas(ctx, "c1", 0, vb)
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
	args := a.casArgs(1, va)
	for i := range 2 {
		n, err := a.client.Do(ctx, a.client.B().Eval().Script(casScript).Numkeys(1).Key(key("c1")).Arg(args...).Build()).AsInt64()
		if err != nil || n != 1 {
			t.Fatalf("send %d of one compare-and-set: %d, %v", i, n, err)
		}
	}
}
