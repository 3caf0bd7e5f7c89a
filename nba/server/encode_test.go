package server

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// TestReasonsPhraseWhatHappened: every stage's reason starts with its verb
// and carries the detail verbatim, escaped (rule texts hold quotes), and
// the answer stays valid JSON.
func TestReasonsPhraseWhatHappened(t *testing.T) {
	capHit := ContactPolicy{Scope: "group", Key: "sales", Outcome: "impression", Window: 7 * 24 * time.Hour, Max: 2, Count: 2, Desc: "group sales: at most 2 impressions in 7d"}
	pause := ContactPolicy{Suppression: true, Scope: "group", Key: "sales", Outcome: "reject", Window: 30 * 24 * time.Hour, Max: 1, Count: 1, Desc: "group sales: paused 30d after 1 reject(s)"}
	for _, tc := range []struct {
		c    Candidate
		want string
	}{
		{Candidate{Stage: StageChosen, Selected: true}, "chosen"},
		{Candidate{Stage: StagePlacement}, `not offered on placement hero"`},
		{Candidate{Stage: StageSchedule, Detail: "after its end"}, "not scheduled: after its end"},
		{Candidate{Stage: StageJourney, Detail: "journey step not due"}, "held: journey step not due"},
		{Candidate{Stage: StageJourney, Detail: "held by locked journey cart"}, "held by locked journey cart"},
		{Candidate{Stage: StageEligibility, Detail: "profile.age >= 18"}, "failed eligible: profile.age >= 18"},
		{Candidate{Stage: StageApplicability, Detail: `context.page == "checkout"`}, `failed applicable: context.page == "checkout"`},
		{Candidate{Stage: StageSuitability, Detail: "!profile.in_arrears"}, "failed suitable: !profile.in_arrears"},
		{Candidate{Stage: StageContactPolicy, Policy: capHit}, "cap reached: 2 impressions of group sales in 7d (max 2)"},
		{Candidate{Stage: StageContactPolicy, Policy: ContactPolicy{Scope: "action", Key: "card", Outcome: "click", Window: 12 * time.Hour, Max: 1, Count: 1}}, "cap reached: 1 click of action card in 12h (max 1)"},
		{Candidate{Stage: StageContactPolicy, Policy: pause}, "suppressed: group sales: paused 30d after 1 reject(s) (count 1)"},
		{Candidate{Stage: StageContactPolicy, Policy: ContactPolicy{Scope: "channel", Key: "email", Outcome: "impression", Window: 24 * time.Hour, Max: 1, Count: 1, Reserved: 1}},
			"cap reached: 1 impression of channel email in 1d (max 1; 1 reserved by decisions awaiting their impression)"},
		{Candidate{Stage: StageContactPolicy, Detail: "customer state unavailable", Policy: ContactPolicy{Scope: "channel", Key: "email", Outcome: "impression", Max: 1, Count: -1, Desc: "channel email: at most 1 impressions in 1d (exact)"}},
			"exact cap not reserved: channel email: at most 1 impressions in 1d (exact): customer state unavailable"},
		{Candidate{Stage: StageExclusion, Detail: "another action of its exclusive group ranked higher"}, "excluded: another action of its exclusive group ranked higher"},
		{Candidate{Stage: StageHoldout, Detail: "in the global holdout"}, "withheld: in the global holdout"},
		{Candidate{Stage: StageRank}, "outranked: not among the best 3"},
	} {
		t.Run(tc.c.Stage, func(t *testing.T) {
			req := &DecideRequest{DecisionID: "d", CustomerID: "c", Channel: "web", Placement: `hero"`, Explain: true}
			tc.c.ID = "a"
			resp := &DecideResponse{Limit: 3, Candidates: []Candidate{tc.c}}
			b := AppendDecision(nil, req, resp, time.Millisecond)
			var got struct {
				Candidates []struct{ Stage, Reason string }
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("invalid JSON %s: %v", b, err)
			}
			if c := got.Candidates[0]; c.Stage != tc.c.Stage || c.Reason != tc.want {
				t.Errorf("stage %q reason %q, want %q", c.Stage, c.Reason, tc.want)
			}
		})
	}
}

// TestStoppedByAndExploration: stopped_by is written exactly when the
// decision was stopped, with or without explain; an exploration note
// carries the method, the mean, and the draw or the slate.
func TestStoppedByAndExploration(t *testing.T) {
	req := &DecideRequest{DecisionID: "d", CustomerID: "c", Channel: "email"}
	resp := &DecideResponse{Versions: Versions{Bundle: "b", Catalog: "c", Model: "m", Snapshot: "s"}}
	b := string(AppendDecision(nil, req, resp, 0))
	if strings.Contains(b, "stopped_by") || !strings.Contains(b, `"versions":{"bundle":"b","catalog":"c","model":"m","snapshot":"s"}`) {
		t.Errorf("not stopped: %s", b)
	}
	resp.Stopped = true
	resp.StoppedBy = ContactPolicy{Scope: "channel", Key: "email", Outcome: "impression", Window: 24 * time.Hour, Max: 1, Count: 1, Desc: "channel email: at most 1 impression in 1d"}
	for _, explain := range []bool{false, true} {
		req.Explain = explain
		b = string(AppendDecision(nil, req, resp, 0))
		if want := `"stopped_by":{"policy":"channel email: at most 1 impression in 1d","kind":"cap","scope":"channel","key":"email","outcome":"impression","window":"1d","max":1,"count":1}`; !strings.Contains(b, want) || !json.Valid([]byte(b)) {
			t.Errorf("stopped (explain %v): %s, want %s", explain, b, want)
		}
	}
	resp.Stopped = false
	resp.Candidates = []Candidate{
		{ID: "x", Stage: StageRank, Score: 6.03, Exploration: Exploration{Method: "thompson", Mean: 6.03, Drawn: 2.1}},
		{ID: "y", Stage: StageChosen, Score: 3.3, Selected: true, Exploration: Exploration{Method: "epsilon", Mean: 3.3, Drawn: math.NaN(), RandomSlate: true}},
		{ID: "z", Stage: StageChosen, Score: 1, Selected: true},
	}
	b = string(AppendDecision(nil, req, resp, 0))
	for _, want := range []string{
		`{"id":"x","stage":"rank","score":6.03,"selected":false,"reason":"outranked: not among the best 0","exploration":{"method":"thompson","mean":6.03,"drawn":2.1}}`,
		`"exploration":{"method":"epsilon","mean":3.3,"random_slate":true}}`,
		`{"id":"z","stage":"chosen","score":1,"selected":true,"reason":"chosen"}`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("%s\nwant %s", b, want)
		}
	}
}

// TestStaleStateAnswered: a decision made without the customer's live
// state says so ("state":"stale"); a fresh one carries no state field.
func TestStaleStateAnswered(t *testing.T) {
	req := &DecideRequest{DecisionID: "d", CustomerID: "c", Channel: "web"}
	for _, stale := range []bool{false, true} {
		resp := &DecideResponse{Stale: stale}
		b := AppendDecision(nil, req, resp, 0)
		var got struct {
			State *string `json:"state"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("invalid JSON %s: %v", b, err)
		}
		switch {
		case stale && (got.State == nil || *got.State != "stale"):
			t.Errorf("stale decision answered %s", b)
		case !stale && got.State != nil:
			t.Errorf("fresh decision answered a state: %s", b)
		}
		ResetResponse(resp)
		if resp.Stale {
			t.Error("reset kept Stale")
		}
	}
}
