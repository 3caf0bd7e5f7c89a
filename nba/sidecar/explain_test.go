package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"nba/nba"
	"nba/nba/server"
	"nba/nba/server/servertest"
)

// answer is the JSON of POST /v1/decide as the README documents it.
type answer struct {
	DecisionID string                 `json:"decision_id"`
	Actions    []json.RawMessage      `json:"actions"`
	Control    bool                   `json:"control"`
	StoppedBy  *servertest.StoppedBy  `json:"stopped_by"`
	Versions   map[string]string      `json:"versions"`
	Candidates []servertest.Candidate `json:"candidates"`
}

// stageVerbs: every reason starts with one of its stage's verbs.
var stageVerbs = map[string][]string{
	"chosen":         {"chosen"},
	"placement":      {"not offered on placement "},
	"schedule":       {"not scheduled: "},
	"journey":        {"held: ", "held by locked journey "},
	"eligibility":    {"failed eligible: "},
	"applicability":  {"failed applicable: "},
	"suitability":    {"failed suitable: "},
	"contact_policy": {"cap reached: ", "suppressed: "},
	"exclusion":      {"excluded: "},
	"holdout":        {"withheld: "},
	"rank":           {"outranked: "},
}

var (
	capReason  = regexp.MustCompile(`^cap reached: (\d+) [a-z]+ of (action|group|channel) \S+ in \d+[dhms] \(max (\d+)\)$`)
	digest     = regexp.MustCompile(`^[0-9a-f]{16}$`)
	explorerOf = map[string]string{"web": "thompson", "app": "thompson", "email": "epsilon"} // the demo's learning.explore
)

// checkAnswer checks the properties every encoded decision has, whatever
// was decided; stopped says whether the engine counted a channel limit.
func checkAnswer(t *testing.T, what string, b []byte, channel string, stopped bool, seen map[string]int) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s: invalid JSON %s: %v", what, b, err)
	}
	if (a.StoppedBy != nil) != stopped {
		t.Errorf("%s: stopped_by %+v, but the engine stopped the decision: %v", what, a.StoppedBy, stopped)
	}
	if s := a.StoppedBy; s != nil {
		seen["stopped_by"]++
		if s.Policy == "" || s.Kind != "cap" || s.Scope != "channel" || s.Key != channel || s.Window == "" || s.Max <= 0 || s.Count < s.Max {
			t.Errorf("%s: stopped_by %+v", what, s)
		}
		if len(a.Candidates) != 0 || len(a.Actions) != 0 {
			t.Errorf("%s: stopped, yet %d actions and %d candidates", what, len(a.Actions), len(a.Candidates))
		}
	}
	if len(a.Versions) != 4 || a.Versions["bundle"] == "" || a.Versions["catalog"] == "" || a.Versions["snapshot"] == "" || !digest.MatchString(a.Versions["model"]) {
		t.Errorf("%s: versions %v: want bundle, catalog, snapshot and the model set's digest", what, a.Versions)
	}
	type explored struct {
		id           string
		score, drawn float64
	}
	var chosen, ranked []explored
	// The candidates that reached the ranking carry their place in it and
	// its factors; those places are 1..n, and the chosen come first.
	places := map[int]string{}
	lastChosen, firstOutranked := 0, len(a.Candidates)+1
	for _, c := range a.Candidates {
		seen[c.Stage]++
		arbitrated := c.Stage == "chosen" || c.Stage == "rank" || c.Stage == "exclusion" || c.Stage == "holdout"
		factors := c.Propensity != nil && c.Weight != nil && c.Value != nil && c.Lever != nil && c.Tier != nil
		if arbitrated != (c.Rank > 0) || arbitrated != factors {
			t.Errorf("%s: %s at stage %s: rank %d, factors given %v", what, c.ID, c.Stage, c.Rank, factors)
		} else if arbitrated {
			seen["ranked with factors"]++
			if other, dup := places[c.Rank]; dup {
				t.Errorf("%s: %s and %s both ranked %d", what, other, c.ID, c.Rank)
			}
			places[c.Rank] = c.ID
			if p := *c.Propensity * *c.Weight * *c.Value * *c.Lever; math.Abs(p-c.Score) > 1e-9*math.Max(1, math.Abs(p)) {
				t.Errorf("%s: %s: score %v is not P·C·V·L = %v·%v·%v·%v", what, c.ID, c.Score, *c.Propensity, *c.Weight, *c.Value, *c.Lever)
			}
			switch c.Stage {
			case "chosen":
				lastChosen = max(lastChosen, c.Rank)
			case "rank":
				firstOutranked = min(firstOutranked, c.Rank)
			}
		}
		if c.ID == "" {
			t.Errorf("%s: a candidate without an id: %+v", what, c)
		}
		verbs, ok := stageVerbs[c.Stage]
		if !ok {
			t.Errorf("%s: %s: unknown stage %q", what, c.ID, c.Stage)
		}
		if !slicesAny(verbs, func(v string) bool {
			return strings.HasPrefix(c.Reason, v) && (len(c.Reason) > len(v) || c.Stage == "chosen")
		}) {
			t.Errorf("%s: %s: stage %s, reason %q: want it to start with one of %q and say more", what, c.ID, c.Stage, c.Reason, verbs)
		}
		if c.Selected != (c.Stage == "chosen") {
			t.Errorf("%s: %s: selected %v at stage %s", what, c.ID, c.Selected, c.Stage)
		}
		if m := capReason.FindStringSubmatch(c.Reason); m != nil {
			n, _ := strconv.Atoi(m[1])
			limit, _ := strconv.Atoi(m[3])
			if n < limit {
				t.Errorf("%s: %s: %q: the count is under the cap", what, c.ID, c.Reason)
			}
		} else if strings.HasPrefix(c.Reason, "cap reached") {
			t.Errorf("%s: %s: %q does not say count, outcome, scope, window and max", what, c.ID, c.Reason)
		}
		x := c.Exploration
		if x == nil {
			continue
		}
		seen["exploration:"+x.Method]++
		if x.Method != explorerOf[channel] || x.Mean != c.Score || (x.Drawn != nil) != (x.Method == "thompson") || (x.RandomSlate != nil) != (x.Method == "epsilon") {
			t.Errorf("%s: %s: exploration %+v on %s (score %v)", what, c.ID, *x, channel, c.Score)
		}
		if x.Drawn == nil {
			continue
		}
		e := explored{c.ID, c.Score, *x.Drawn}
		switch c.Stage {
		case "chosen":
			chosen = append(chosen, e)
		case "rank":
			ranked = append(ranked, e)
		}
	}
	for i := 1; i <= len(places); i++ {
		if places[i] == "" {
			t.Errorf("%s: ranks %v are not 1..%d", what, places, len(places))
			break
		}
	}
	if lastChosen > firstOutranked {
		t.Errorf("%s: a chosen candidate ranked %d, after an outranked one at %d", what, lastChosen, firstOutranked)
	}
	// A better mean that lost on rank explains itself: the draws put it
	// below every explored candidate chosen before it.
	for _, r := range ranked {
		for _, c := range chosen {
			if r.score > c.score {
				seen["better mean outranked"]++
				if r.drawn > c.drawn {
					t.Errorf("%s: %s (mean %v, drawn %v) lost on rank to %s (mean %v, drawn %v)", what, r.id, r.score, r.drawn, c.id, c.score, c.drawn)
				}
			}
		}
	}
	return a
}

func slicesAny(s []string, f func(string) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

// TestExplainedAnswers decides the demo for customers in every state the
// demo can put them in (open tickets, caps and channel limits reached,
// holdouts, journeys) on every channel, encodes each answer as the HTTP API
// does, and checks what every explained answer must say.
func TestExplainedAnswers(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	feedback := func(c, action, channel, outcome string, ago time.Duration) {
		o, _ := server.ParseOutcome(outcome)
		if err := s.Feedback(&server.Feedback{CustomerID: c, ActionID: action, Channel: channel, Outcome: o, TS: now.Add(-ago)}); err != nil {
			t.Fatal(err)
		}
	}
	event := func(c, typ string) {
		if err := s.Event(&server.Event{CustomerID: c, Type: typ, TS: now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	var customers []string
	ticket := map[string]bool{}
	for i := 1; i <= 120; i++ {
		c := fmt.Sprintf("c%05d", i)
		customers = append(customers, c)
		switch i % 6 {
		case 1:
			event(c, "ticket_opened")
			ticket[c] = true
		case 2: // today's e-mail and push: the channel caps stop the next
			feedback(c, "nps_survey", "email", "impression", time.Hour)
			feedback(c, "app_download", "push", "impression", time.Hour)
			feedback(c, "app_download", "push", "impression", 2*time.Hour)
		case 3: // the store card shown twice this week, once rejected
			feedback(c, "store_card", "web", "impression", 24*time.Hour)
			feedback(c, "store_card", "app", "impression", 48*time.Hour)
			feedback(c, "us_gold_upgrade", "web", "reject", 72*time.Hour)
		case 4:
			event(c, "cart_abandoned")
		}
	}
	customers = append(customers, "nobody")
	seen := map[string]int{}
	var out []byte
	for _, c := range customers {
		for _, ch := range []string{"web", "app", "email", "agent", "sms", "push"} {
			req := server.DecideRequest{DecisionID: "d-" + c, CustomerID: c, Channel: ch, Limit: 3, Explain: true}
			var resp server.DecideResponse
			before := s.engine.Stats().ChannelLimited
			if err := s.Decide(&req, &resp); err != nil {
				t.Fatalf("%s on %s: %v", c, ch, err)
			}
			stopped := s.engine.Stats().ChannelLimited > before
			out = server.AppendDecision(out[:0], &req, &resp, time.Millisecond)
			a := checkAnswer(t, c+" on "+ch, out, ch, stopped, seen)
			for _, cand := range a.Candidates {
				// The example: the rule did not hold, and the
				// reason says so.
				if cand.ID == "service_recovery" && !ticket[c] && cand.Stage == "applicability" {
					seen["service_recovery not applicable"]++
					if cand.Reason != "failed applicable: profile.open_ticket" {
						t.Errorf("%s on %s: service_recovery: %q", c, ch, cand.Reason)
					}
				}
			}
		}
	}
	t.Logf("seen: %v", seen)
	for _, want := range []string{"chosen", "rank", "eligibility", "applicability", "suitability", "contact_policy", "holdout", "journey",
		"exclusion", "stopped_by", "ranked with factors", "exploration:thompson", "exploration:epsilon", "better mean outranked", "service_recovery not applicable"} {
		if seen[want] == 0 {
			t.Errorf("no answer showed %s: the scenario misses a case", want)
		}
	}
}

// TestExplainOverHTTP: the answers through a real listener, and the model
// set behind the answer's digest on /admin/status.
func TestExplainOverHTTP(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := openDemo(t, now)
	srv, err := server.New(server.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, s)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	go func() { _ = srv.ServeAdmin(aln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	base, admin := "http://"+ln.Addr().String(), "http://"+aln.Addr().String()
	post := func(path, body string) []byte {
		t.Helper()
		r, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("POST %s %s: %d %s", path, body, r.StatusCode, b)
		}
		return b
	}
	seen := map[string]int{}
	const c = "c00042"
	post("/v1/events", `{"customer_id":"`+c+`","type":"ticket_opened","ts":"2026-11-20T11:00:00Z"}`)
	b := post("/v1/decide", `{"customer_id":"`+c+`","channel":"web","limit":2,"explain":true}`)
	a := checkAnswer(t, "open ticket", b, "web", false, seen)
	suitable := 0
	for _, cand := range a.Candidates {
		if cand.Reason == "failed suitable: !profile.open_ticket" {
			suitable++
		}
	}
	if suitable == 0 {
		t.Errorf("open ticket: no sales action says it failed suitable: !profile.open_ticket: %s", b)
	}
	post("/v1/feedback", `{"customer_id":"`+c+`","action_id":"nps_survey","channel":"email","outcome":"impression","ts":"2026-11-20T11:00:00Z"}`)
	b = post("/v1/decide", `{"customer_id":"`+c+`","channel":"email","explain":true}`)
	checkAnswer(t, "e-mail cap", b, "email", true, seen)
	b = post("/v1/decide", `{"customer_id":"`+c+`","channel":"email"}`)
	if a := checkAnswer(t, "e-mail cap without explain", b, "email", true, seen); a.Candidates != nil {
		t.Errorf("candidates without explain: %s", b)
	}

	r, err := http.Get(admin + "/admin/status")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var st struct {
		Versions struct {
			Bundle, Catalog, Model, Snapshot string
			Models                           []nba.ModelVersion
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	v := st.Versions
	if len(v.Models) == 0 || v.Model != nba.ModelSetDigest(v.Models) || v.Model != a.Versions["model"] ||
		v.Bundle != a.Versions["bundle"] || v.Catalog != a.Versions["catalog"] || v.Snapshot != a.Versions["snapshot"] {
		t.Errorf("status versions %+v do not account for the answer's %v", v, a.Versions)
	}
}
