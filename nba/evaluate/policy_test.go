package evaluate

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"nba/nba"

	"nba/nba/declog"
	"nba/nba/demo"
)

// respond writes synthetic feedback for the logged decisions: the first
// action of each non-control decision is accepted with probability
// rate(action), drawn from a seeded generator; with expected, every first
// action is accepted with value rate(action) (the expected reward, for
// estimates whose only noise is the logging policy's). It returns the
// decisions.
func respond(t *testing.T, logs string, rate func(string) float64, expected bool) []declog.Record {
	t.Helper()
	var recs []declog.Record
	if _, err := declog.ReadDir(logs, "decisions", func(line []byte) error {
		r, err := declog.ParseRecord(line)
		if err == nil && r.Type == "decision" {
			recs = append(recs, r)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	l, err := declog.New(declog.Config{Dir: logs, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, r := range recs {
		if r.Control || len(r.Chosen) == 0 {
			continue
		}
		a := r.Chosen[0].Action
		value := 1.0
		if expected {
			value = rate(a)
		}
		if expected || rng.Float64() < rate(a) {
			if !l.LogFeedback(&declog.Feedback{Decision: r.ID, Time: r.Time, Customer: "c", Action: a, Event: "accept", Reward: value}) {
				t.Fatal("feedback dropped")
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// relog decides every decision logged in dir again with catalog c and a
// fixed seed per decision, and logs the result into a new directory.
func relog(t *testing.T, dir string, c *nba.Catalog) string {
	t.Helper()
	var recs []declog.Record
	if _, err := declog.ReadDir(dir, "decisions", func(line []byte) error {
		r, err := declog.ParseRecord(line)
		if err == nil && r.Type == "decision" {
			recs = append(recs, r)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	l, err := declog.New(declog.Config{Dir: out, Secret: testSecret, QueueSize: len(recs) + 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReplayer(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		rec := &recs[i]
		d, err := r.Decide(rec, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		ld := declog.Decision{ID: rec.ID, Time: rec.Time, Customer: rec.Customer, Channel: rec.Channel, Placement: rec.Placement,
			Limit: rec.Limit, ContextValues: rec.ContextValues, Control: rec.Control, Seed: d.Trace.Seed,
			Versions: []declog.Version{{Name: "catalog", Value: d.CatalogVersion}, {Name: "model", Value: d.ModelVersion}}}
		in := rec.Inputs
		ld.Inputs = declog.Inputs{Logged: true, Known: in.Known, Anonymous: in.Anonymous, Profile: in.Profile}
		for _, h := range in.History {
			ld.Inputs.History = append(ld.Inputs.History, declog.Count{Scope: h.Scope, Key: h.Key, Outcome: h.Outcome, Window: time.Duration(h.WindowNS), N: h.Count})
		}
		for _, j := range in.Journeys {
			ld.Inputs.Journeys = append(ld.Inputs.Journeys, declog.Journey{Journey: j.Journey, Step: j.Step, Status: j.Status, EnteredAt: j.EnteredAt, LastStepAt: j.LastStepAt})
		}
		for _, a := range d.Actions {
			ld.Chosen = append(ld.Chosen, declog.Chosen{Action: a.Action.ID, Prob: a.Prob, Samples: a.Samples})
		}
		if !l.LogDecision(&ld) {
			t.Fatal("decision dropped")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// rate is a synthetic response rate per action in [0.05, 0.65).
func rate(action string) float64 {
	h := fnv.New64a()
	h.Write([]byte(action))
	return 0.05 + 0.6*float64(h.Sum64()%1000)/1000
}

func TestEvaluateUnchangedBundleEqualsLoggedValue(t *testing.T) {
	logs, _ := logDecisions(t, demo.Bundle(), 600)
	respond(t, logs, rate, false)
	cat, err := LoadCatalog(demo.Bundle())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Evaluate(logs, cat, PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Used < 300 || rep.Agree != rep.Used || rep.Unresolved != 0 {
		t.Fatalf("used %d, agree %d, unresolved %d: %+v", rep.Used, rep.Agree, rep.Unresolved, rep)
	}
	if rep.Logged.Value <= 0 {
		t.Fatalf("no reward in the logs: %+v", rep.Logged)
	}
	for name, e := range map[string]float64{"ips": rep.IPS.Value, "snips": rep.SNIPS.Value, "dr": rep.DR.Value} {
		if math.Abs(e-rep.Logged.Value) > 1e-12 {
			t.Errorf("%s = %v, want the logged value %v", name, e, rep.Logged.Value)
		}
	}
}

// TestEvaluateRecoversValueFromUniformLogs logs a uniformly random policy
// (epsilon 1 on e-mail) and estimates the greedy policy (no exploration)
// whose true value, under the synthetic response rates, is known.
func TestEvaluateRecoversValueFromUniformLogs(t *testing.T) {
	const explore = "email: {method: epsilon, epsilon: 0.05}"
	uniform := bundleWith(t, explore, "email: {method: epsilon, epsilon: 1}")
	// The sidecar seeds its exploration at random: decide its logged
	// requests again with fixed seeds so that the test is deterministic.
	live, _ := logDecisionsOn(t, uniform, 1500, false, "email")
	uniformCat, err := LoadCatalog(uniform)
	if err != nil {
		t.Fatal(err)
	}
	logs := relog(t, live, uniformCat)
	recs := respond(t, logs, rate, true)

	greedy, err := LoadCatalog(bundleWith(t, "    "+explore+"\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	// The true value: the mean response rate of the greedy first actions.
	r, err := NewReplayer(greedy, nil)
	if err != nil {
		t.Fatal(err)
	}
	var truth float64
	var n int
	logged := map[string]int{}
	for i := range recs {
		rec := &recs[i]
		if rec.Control || len(rec.Chosen) == 0 {
			continue
		}
		logged[rec.Chosen[0].Action]++
		d, err := r.Decide(rec, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Actions) > 0 {
			truth += rate(d.Actions[0].Action.ID)
		}
		n++
	}
	truth /= float64(n)
	if len(logged) < 5 {
		t.Fatalf("the uniform policy showed only %d actions first", len(logged))
	}

	rep, err := Evaluate(logs, greedy, PolicyConfig{Reward: "value"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Used != n || rep.Unresolved != 0 {
		t.Fatalf("used %d of %d decisions, %d unresolved", rep.Used, n, rep.Unresolved)
	}
	for name, e := range map[string]struct{ v, lo, hi float64 }{
		"ips": {rep.IPS.Value, rep.IPS.Lower, rep.IPS.Upper}, "snips": {rep.SNIPS.Value, rep.SNIPS.Lower, rep.SNIPS.Upper},
		"dr": {rep.DR.Value, rep.DR.Lower, rep.DR.Upper}} {
		if !(e.lo <= truth && truth <= e.hi) {
			t.Errorf("%s = %.4f [%.4f, %.4f] misses the true value %.4f", name, e.v, e.lo, e.hi, truth)
		}
	}
	// The greedy policy is better than the uniform one it is estimated
	// from, and the estimate must see it.
	if !(rep.IPS.Value > rep.Logged.Value) || !(truth > rep.Logged.Value) {
		t.Errorf("ips %.4f, truth %.4f, logged %.4f: want the greedy policy above the uniform one", rep.IPS.Value, truth, rep.Logged.Value)
	}
	t.Logf("truth %.4f; ips %.4f [%.4f, %.4f]; snips %.4f; dr %.4f; logged %.4f; n %d", truth, rep.IPS.Value, rep.IPS.Lower, rep.IPS.Upper, rep.SNIPS.Value, rep.DR.Value, rep.Logged.Value, rep.Used)
}
