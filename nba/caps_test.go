package nba

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

const exactCatalog = `
policies:
  channels:
    email: [{max: 1, window: 1d, exact: true}]
actions:
  - id: exact_a
    channels: [web, email]
    caps: [{max: 1, window: 7d, exact: true}]
  - id: loose_b
    channels: [web]
    caps: [{max: 1, window: 7d}]
`

// resvHistory is a customer with no contacts and the reservations listed
// by "scope/key".
type resvHistory map[string]int

func (h resvHistory) Count(Scope, string, Outcome, time.Duration, time.Time) int { return 0 }
func (h resvHistory) Contacts(_ Scope, _ string, dst []ContactAt) ([]ContactAt, bool) {
	return dst, true
}
func (h resvHistory) Reserved(scope Scope, key string, _ time.Time) int {
	return h[scope.String()+"/"+key]
}

type resvCustomers struct{ h resvHistory }

func (c resvCustomers) Load(_ context.Context, _ string, dst *Customer) (bool, error) {
	dst.History = c.h
	return true, nil
}
func (c resvCustomers) Version() string { return "resv" }

// TestExactCapsCountReservations: an exact cap counts the customer's live
// reservations (decisions on any replica awaiting their impression) on
// top of the contacts; a cap that is not exact ignores them.
func TestExactCapsCountReservations(t *testing.T) {
	cat := mustCatalog(t, exactCatalog, Options{Schema: testSchema})
	for _, tc := range []struct {
		name     string
		channel  string
		res      resvHistory
		want     []string
		stopped  bool
		whyExact bool // exact_a removed, its reason naming the reservations
	}{
		{name: "no reservations", channel: "web", want: []string{"exact_a", "loose_b"}},
		{name: "exact cap reserved elsewhere", channel: "web", res: resvHistory{"action/exact_a": 1}, want: []string{"loose_b"}, whyExact: true},
		{name: "reservation ignored by a cap that is not exact", channel: "web", res: resvHistory{"action/loose_b": 1}, want: []string{"exact_a", "loose_b"}},
		{name: "exact channel limit reserved", channel: "email", res: resvHistory{"channel/email": 1}, stopped: true},
		{name: "exact channel limit free", channel: "email", res: resvHistory{"channel/web": 1}, want: []string{"exact_a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEngine(Config{Catalog: cat, Customers: resvCustomers{tc.res}})
			if err != nil {
				t.Fatal(err)
			}
			var d Decision
			if err := e.Decide(&Request{Customer: "c", Channel: tc.channel, Limit: 2, Explain: true}, &d); err != nil {
				t.Fatal(err)
			}
			got := chosenIDs(&d)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("chosen %v, want %v", got, tc.want)
			}
			if tc.stopped && (d.Reason != "channel_limit" || d.StoppedBy.Reserved != 1 || d.StoppedBy.Count != 1) {
				t.Errorf("reason %q stopped by %+v; want the exact channel limit, its count 1 reservation", d.Reason, d.StoppedBy)
			}
			if tc.whyExact {
				for _, c := range d.Explain {
					if c.Action == "exact_a" && (c.Stage != StageContactPolicy || !strings.Contains(c.Reason, "1 reserved by decisions awaiting their impression") || c.Policy.Reserved != 1) {
						t.Errorf("exact_a explained as %v %q %+v", c.Stage, c.Reason, c.Policy)
					}
				}
			}
		})
	}
}

// TestExactCapsOfAnAction: the caps a decision reserves for an action on
// a channel are the channel's exact limits and the action's exact caps.
func TestExactCapsOfAnAction(t *testing.T) {
	cat := mustCatalog(t, exactCatalog, Options{Schema: testSchema})
	if !cat.HasExact() {
		t.Fatal("HasExact false for a catalog with exact caps")
	}
	got := cat.ExactCaps(nil, cat.Action("exact_a"), cat.ChannelIndex("email"))
	if len(got) != 2 || got[0].Scope != ScopeChannel || got[0].Key != "email" || got[0].Max != 1 || got[1].Scope != ScopeAction || got[1].Key != "exact_a" || got[1].Window != 7*24*time.Hour {
		t.Errorf("exact caps of exact_a on email: %+v", got)
	}
	if got := cat.ExactCaps(nil, cat.Action("loose_b"), cat.ChannelIndex("web")); len(got) != 0 {
		t.Errorf("exact caps of loose_b on web: %+v", got)
	}
	if mustCatalog(t, strings.ReplaceAll(exactCatalog, "exact: true", "exact: false"), Options{Schema: testSchema}).HasExact() {
		t.Error("HasExact true without exact caps")
	}
	_, err := CompileCatalog("test.yaml", []byte(strings.Replace(exactCatalog, "caps: [{max: 1, window: 7d, exact: true}]", "caps: [{max: 1, window: 7d, outcome: click, exact: true}]", 1)), Options{Schema: testSchema})
	if err == nil || !strings.Contains(err.Error(), "an exact cap counts impressions") {
		t.Errorf("an exact cap of clicks: err %v", err)
	}
}
