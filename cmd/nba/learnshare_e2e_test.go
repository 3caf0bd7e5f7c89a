package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"nba/state/redis/redistest"
)

// TestLearningSharedOnRedis: two nba serve processes on one redis-server;
// each decision's feedback goes to the other process. Both end with the
// same learning evidence per action in /admin/status, and the process
// that did not decide read the decisions' features from Redis.
func TestLearningSharedOnRedis(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	a := startServe(t, "-state", t.TempDir(), "-state.redis", rs.URL, "-decisionlog=false")
	b := startServe(t, "-state", t.TempDir(), "-state.redis", rs.URL, "-decisionlog=false")
	type status struct {
		Learning struct {
			Models struct {
				Actions []struct {
					Action   string
					Evidence float64
				}
			}
		}
		Redis struct {
			Published  int `json:"published"`
			Applied    int `json:"applied"`
			RedisHits  int `json:"recall_redis_hits"`
			DecWritten int `json:"decisions_written"`
		} `json:"learning_redis"`
	}
	get := func(p *proc) status {
		t.Helper()
		r, err := p.try("GET", p.admin+"/admin/status", "")
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("GET /admin/status: %v %v", r, err)
		}
		var st status
		if err := json.Unmarshal(r.body, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	procs := []*proc{a, b}
	outcomes := []string{"accept", "reject", "convert", "dismiss"}
	for i := range 8 {
		dp, fp := procs[i%2], procs[(i+1)%2]
		c := fmt.Sprintf("c%05d", 200+i)
		d := dp.decide(`{"customer_id":"` + c + `","channel":"web","limit":1}`)
		if len(d.Actions) == 0 {
			t.Fatalf("no web action for %s", c)
		}
		// The features are written in the background: wait for them.
		for deadline := time.Now().Add(5 * time.Second); get(dp).Redis.DecWritten < i/2+1; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				r, _ := dp.try("GET", dp.admin+"/admin/status", "")
				t.Fatalf("decision features not written: %s", r.body)
			}
		}
		for j, o := range []string{"impression", outcomes[i%4]} {
			fp.ok("/v1/feedback", fmt.Sprintf(`{"decision_id":%q,"customer_id":%q,"action_id":%q,"channel":"web","outcome":%q,"event_id":"f%d-%d"}`,
				d.DecisionID, c, d.Actions[0].ID, o, i, j))
		}
	}
	var sa, sb status
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		sa, sb = get(a), get(b)
		total := sa.Redis.Published + sb.Redis.Published
		if total == 8 && sa.Redis.Applied == total && sb.Redis.Applied == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("published %d+%d, applied %d and %d; want 8 everywhere", sa.Redis.Published, sb.Redis.Published,
				sa.Redis.Applied, sb.Redis.Applied)
		}
	}
	if sa.Redis.RedisHits != 4 || sb.Redis.RedisHits != 4 {
		t.Errorf("features read from Redis: %d and %d, want 4 each", sa.Redis.RedisHits, sb.Redis.RedisHits)
	}
	ea, eb := sa.Learning.Models.Actions, sb.Learning.Models.Actions
	if len(ea) == 0 || len(ea) != len(eb) {
		t.Fatalf("evidence for %d and %d actions", len(ea), len(eb))
	}
	sum := 0.0
	for i := range ea {
		sum += ea[i].Evidence
		if ea[i].Action != eb[i].Action || math.Abs(ea[i].Evidence-eb[i].Evidence) > 1e-9 {
			t.Errorf("%s: evidence %v on A, %v on B", ea[i].Action, ea[i].Evidence, eb[i].Evidence)
		}
	}
	if math.Abs(sum-8) > 1e-6 {
		t.Errorf("total evidence %v, want 8 observations", sum)
	}
}
