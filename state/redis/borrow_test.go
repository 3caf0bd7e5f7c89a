package redisstate_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"unsafe"

	"nba/state"
	redisstate "nba/state/redis"
	"nba/state/redis/redistest"
)

// TestBorrowedCustomerIDIsNotKept: the sidecar passes customer ids that
// share memory with a pooled request buffer, which the next request
// overwrites. The backend kept such an id as the key of its decoded
// values, so the key changed under its map: a lookup could then answer a
// customer with another customer's state (TestRedisKilledMidBurst showed
// a customer view with another customer's cart). Here one buffer holds
// each id in turn, as a reused request buffer does: the ids kept must be
// the ids written, and every customer loads with its own contact.
func TestBorrowedCustomerIDIsNotKept(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	b := open(t, redisstate.Config{URL: s.URL, State: portConfig(t), AllowVolatile: true})
	buf := make([]byte, 6)
	var want []string
	for i := range 200 {
		id := fmt.Sprintf("c%05d", i)
		want = append(want, id)
		copy(buf, id)
		borrowed := unsafe.String(&buf[0], len(buf))
		if err := b.RecordContact(state.Contact{Customer: borrowed, Action: fmt.Sprintf("a%d", i), Outcome: state.Impression, At: t0}); err != nil {
			t.Fatal(err)
		}
		var v state.View
		if found, err := b.Load(context.Background(), buf, &v); err != nil || !found {
			t.Fatalf("customer %s: found %v, %v", id, found, err)
		}
		if h := v.History(nil, 2); len(h) != 1 || h[0].Action != fmt.Sprintf("a%d", i) {
			t.Fatalf("customer %s loads with history %+v: another customer's state", id, h)
		}
	}
	copy(buf, "xxxxxx")
	kept := b.KeptCustomers()
	slices.Sort(kept)
	if !slices.Equal(kept, want) {
		t.Fatalf("the backend keeps its values under %d ids, %d of them the buffer's last content; want the 200 ids written",
			len(kept), len(slices.DeleteFunc(slices.Clone(kept), func(k string) bool { return k != "xxxxxx" })))
	}
}
