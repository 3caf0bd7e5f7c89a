package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"nba/state/redis/redistest"
)

// TestSharedStateOnRedis: two nba serve processes on one redis-server
// (each with its own -state directory) are one customer state: an
// impression sent to A makes the SMS-capped action disappear on B, an
// event sent to B changes A's agent decision, a feedback retried on the
// other process is a duplicate, and nba decide on the command line sees
// the same state.
func TestSharedStateOnRedis(t *testing.T) {
	const replicaLag = 50 * time.Millisecond
	rs := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	a := startServe(t, "-state", t.TempDir(), "-state.redis", rs.URL, "-decisionlog=false")
	b := startServe(t, "-state", t.TempDir(), "-state.redis", rs.URL, "-decisionlog=false")
	if !a.logs.contains("appendfsync always: an acknowledged write is on disk") {
		t.Errorf("A did not log what an acknowledgement is worth:\n%s", a.logs)
	}
	const c = "c00042"

	// The demo's SMS limit: 1 per 7 days.
	onB := b.decide(`{"customer_id":"` + c + `","channel":"sms","limit":1,"dry_run":true}`)
	if len(onB.Actions) == 0 {
		t.Fatalf("B offers nothing on sms before any contact: %+v", onB)
	}
	d := a.decide(`{"customer_id":"` + c + `","channel":"sms","limit":1}`)
	if len(d.Actions) == 0 {
		t.Fatalf("A offers nothing on sms: %+v", d)
	}
	fb := fmt.Sprintf(`{"decision_id":%q,"customer_id":%q,"action_id":%q,"channel":"sms","outcome":"impression","event_id":"fb-1"}`,
		d.DecisionID, c, d.Actions[0].ID)
	a.ok("/v1/feedback", fb)
	// The promise is read-your-writes on another replica for a decision
	// started 50ms after the acknowledgement (the other replica's cached
	// copy is invalidated by Redis in well under that on loopback; on a
	// loaded machine the invalidation can trail an HTTP round trip).
	time.Sleep(replicaLag)
	settle(t, c, a, b) // on a loaded machine an invalidation can trail the promise
	if got := b.decide(`{"customer_id":"` + c + `","channel":"sms","limit":1,"dry_run":true}`); len(got.Actions) != 0 {
		t.Errorf("B still offers %v on sms after A recorded an impression there (limit 1 per 7d)", got.ids())
	}

	// The same feedback retried on B: acknowledged, not recorded again.
	b.ok("/v1/feedback", fb)
	if n := b.metric("nba_state_duplicates_total"); n != 1 {
		t.Errorf("B counted %v duplicates after the retry, want 1", n)
	}
	for name, p := range map[string]*proc{"A": a, "B": b} {
		if n := p.customer(c).count(d.Actions[0].ID, "sms", "impression"); n != 1 {
			t.Errorf("%s shows %d impressions of %s on sms, want 1", name, n, d.Actions[0].ID)
		}
	}

	// An event on B changes A's agent decision.
	if ids := a.decide(`{"customer_id":"` + c + `","channel":"agent","limit":3,"dry_run":true}`).ids(); len(ids) > 0 && ids[0] == "service_recovery" {
		t.Fatalf("service_recovery first before any ticket: %v", ids)
	}
	b.ok("/v1/events", `{"customer_id":"`+c+`","type":"ticket_opened","event_id":"ev-1"}`)
	time.Sleep(replicaLag)
	settle(t, c, a, b) // on a loaded machine an invalidation can trail the promise
	if ids := a.decide(`{"customer_id":"` + c + `","channel":"agent","limit":3,"dry_run":true}`).ids(); len(ids) == 0 || ids[0] != "service_recovery" {
		t.Errorf("A's agent decision after ticket_opened on B: %v, want service_recovery first; A %v B %v", ids, a.customer(c).Profile, b.customer(c).Profile)
	}

	// A repeat visitor is served from the client-side cache: A decided
	// for c twice on agent, the second time without a write in between.
	a.decide(`{"customer_id":"` + c + `","channel":"agent","limit":3,"dry_run":true}`)
	r, err := a.try("GET", a.admin+"/admin/status", "")
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("GET /admin/status: %v %v", r, err)
	}
	var st struct {
		StateRedis struct {
			Counters struct {
				CacheHits   int `json:"cache_hits"`
				CacheMisses int `json:"cache_misses"`
			}
			Acknowledgement string
		} `json:"state_redis"`
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.StateRedis.Counters.CacheHits == 0 || !strings.Contains(st.StateRedis.Acknowledgement, "on disk") {
		t.Errorf("A's status: state_redis %+v; want cache hits and what an acknowledgement is worth", st.StateRedis)
	}

	// nba decide on the command line reads the same state.
	out, err := exec.Command(nbaBin, "decide", "-state.redis", rs.URL, "-state.redis.readTimeout", "5s", "-customer", c, "-channel", "sms", "-limit", "1").Output()
	if err != nil {
		t.Fatalf("nba decide -state.redis: %v\n%s", err, out)
	}
	if cli := decodeJSON[decision](t, out); len(cli.Actions) != 0 {
		t.Errorf("nba decide -state.redis offers %v on sms, which the shared state caps", cli.ids())
	}
}

// count returns the contacts of action on channel with outcome in the
// customer's history.
func (c customerView) count(action, channel, outcome string) int {
	n := 0
	for _, h := range c.History {
		if h.ActionID == action && h.Channel == channel && h.Outcome == outcome {
			n++
		}
	}
	return n
}
