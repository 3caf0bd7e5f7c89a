package nba

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// learnModels: "prop" predicts sigmoid(w · (aff_xsell, pick)) — with w =
// (0, 1) the action's "pick" feature is its offline logit.
var learnOpts = Options{Schema: testSchema, Models: map[string]Scorer{
	"prop": linModel{feats: []string{"aff_xsell", "pick"}, w: []float64{0, 1}},
}}

// learnCatalog has three actions whose offline logits are given, and a
// learning section (may be empty).
func learnCatalog(logits [3]float64, learning string) string {
	return fmt.Sprintf(`
defaults: {model: prop}
groups:
  - id: offers
actions:
  - id: a
    group: offers
    channels: [web, email, app]
    features: {pick: %v}
  - id: b
    group: offers
    channels: [web, email, app]
    features: {pick: %v}
  - id: c
    channels: [web, email, app]
    features: {pick: %v}
%s`, logits[0], logits[1], logits[2], learning)
}

const learningSection = `
learning:
  features: [aff_xsell, clv]
  prior_variance: 1
  explore:
    web: {method: thompson, draws: 200}
    email: {method: epsilon, epsilon: 0.3}
`

func TestLearningSectionErrors(t *testing.T) {
	for _, tc := range []struct{ name, section, want string }{
		{"unknown feature", "learning: {features: [nope]}", `learning.features[0]: unknown field "nope"`},
		{"category feature", "learning: {features: [segment]}", `learning.features[0]: field "segment" is a category`},
		{"duplicate feature", "learning: {features: [clv, clv]}", `learning.features[1]: duplicate feature "clv"`},
		{"unknown channel", "learning: {explore: {fax: {method: epsilon, epsilon: 0.1}}}", `learning.explore.fax: unknown channel "fax"`},
		{"unknown method", "learning: {explore: {web: {method: ucb}}}", `learning.explore.web.method: cannot parse exploration method "ucb"`},
		{"bad epsilon", "learning: {explore: {web: {method: epsilon, epsilon: 2}}}", `learning.explore.web: cannot configure epsilon exploration: epsilon must be in (0,1]`},
		{"bad draws", "learning: {explore: {web: {method: thompson, draws: -1}}}", `learning.explore.web: cannot configure thompson exploration: draws`},
		{"negative variance", "learning: {prior_variance: -1}", `learning.prior_variance: must be positive`},
		{"decay one", "learning: {decay: 1}", `learning.decay: must be in [0, 1)`},
		{"bad half-life", "learning: {half_life: soon}", `learning.half_life:`},
		{"unknown field", "learning: {feature: [clv]}", `learning: unknown field "feature"`},
		{"wrong shape", "learning: {features: clv}", `learning.features: want a list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := Validate("t.yaml", []byte(learnCatalog([3]float64{}, tc.section)), learnOpts)
			var all []string
			for _, err := range errs {
				all = append(all, err.Error())
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.want) {
				t.Errorf("errors %q, want one containing %q", all, tc.want)
			}
		})
	}
}

// Without a learning section nothing changes: the offline propensities
// rank, and every chosen action was shown with probability 1.
func TestNoLearningSectionKeepsOfflineScores(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 1.0})
	e := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{-1, 0.5, -2}, ""), learnOpts), prof, nil, nil)
	var d Decision
	if err := e.Decide(&Request{Customer: "c", Channel: "web", Limit: 3, Now: monday, Seed: 7}, &d); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(chosenIDs(&d), ","); got != "b,a,c" {
		t.Fatalf("order %s, want b,a,c", got)
	}
	for _, ch := range d.Actions {
		if ch.Prob != 1 || ch.Samples != 0 {
			t.Errorf("%s: Prob %v Samples %d, want 1, 0", ch.Action.ID, ch.Prob, ch.Samples)
		}
	}
	if want := 1 / (1 + math.Exp(-0.5)); d.Actions[0].Propensity != want {
		t.Errorf("propensity %v, want the model's %v", d.Actions[0].Propensity, want)
	}
	if err := e.Observe("c", "a", 1, monday); !errors.Is(err, ErrLearningOff) {
		t.Errorf("Observe without learning: %v, want ErrLearningOff", err)
	}
	if st := e.LearnerStats(); st.Enabled {
		t.Errorf("LearnerStats enabled without a learning section")
	}
}

// The offline model ranks a (logit 0) over b (logit -1.5), but customers
// respond to a 5% of the time and to b 30% of the time: after feedback the
// online correction flips the ranking on the greedy channel (app).
func TestOnlineCorrectionLearnsShift(t *testing.T) {
	prof := newMemProfiles(testSchema)
	for i := range 50 {
		prof.set(fmt.Sprint("c", i), map[string]any{"clv": float64(i%5) / 4, "aff_xsell": 0.5})
	}
	e := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{0, -1.5, -4}, learningSection), learnOpts), prof, nil, nil)
	top := func() string {
		t.Helper()
		var d Decision
		if err := e.Decide(&Request{Customer: "c3", Channel: "app", Now: monday}, &d); err != nil {
			t.Fatal(err)
		}
		return d.Actions[0].Action.ID
	}
	if got := top(); got != "a" {
		t.Fatalf("before feedback: %s first, want a", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	truth := map[string]float64{"a": 0.05, "b": 0.30}
	for i := range 3000 {
		for _, act := range []string{"a", "b"} {
			r := 0.0
			if rng.Float64() < truth[act] {
				r = 1
			}
			if err := e.Observe(fmt.Sprint("c", i%50), act, r, monday); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := top(); got != "b" {
		t.Fatalf("after feedback: %s first, want b", got)
	}
	var d Decision
	_ = e.Decide(&Request{Customer: "c3", Channel: "app", Limit: 2, Now: monday}, &d)
	for _, ch := range d.Actions {
		if want := truth[ch.Action.ID]; math.Abs(ch.Propensity-want) > 0.05 {
			t.Errorf("%s: learned propensity %.3f, want %.2f±0.05", ch.Action.ID, ch.Propensity, want)
		}
	}
	st := e.LearnerStats()
	if !st.Enabled || st.Observed != 6000 || st.Actions[0].Evidence != 3000 || st.Actions[2].Evidence != 0 {
		t.Errorf("stats %+v", st)
	}
	for _, tc := range []struct {
		act    string
		reward float64
	}{{"nope", 1}, {"a", 2}, {"a", math.NaN()}} {
		if err := e.Observe("c1", tc.act, tc.reward, monday); err == nil {
			t.Errorf("Observe(%q, %v) accepted", tc.act, tc.reward)
		}
	}
}

// The logged probability of the first slot matches how often the policy
// puts each action there, over decisions with distinct seeds.
func TestLoggedProbMatchesSelectionFrequency(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5, "aff_xsell": 1.0})
	e := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{-1, -1.3, -2}, learningSection), learnOpts), prof, nil, nil)
	for _, ch := range []string{"web", "email"} {
		t.Run(ch, func(t *testing.T) {
			const n = 4000
			count, logged := map[string]float64{}, map[string]float64{}
			var d Decision
			for i := range n {
				if err := e.Decide(&Request{Customer: "c", Channel: ch, Now: monday, Seed: uint64(i + 1)}, &d); err != nil {
					t.Fatal(err)
				}
				id := d.Actions[0].Action.ID
				count[id]++
				logged[id] += d.Actions[0].Prob
				if (ch == "web") != (d.Actions[0].Samples == 201) {
					t.Fatalf("Samples %d on %s", d.Actions[0].Samples, ch)
				}
			}
			// The mean logged probability of an action among the decisions
			// that chose it estimates P(chosen) (it is constant here, up to
			// Monte-Carlo noise); the frequency estimates it too.
			// Binomial sd ≤ 0.008 at n = 4000; the Monte-Carlo bias ≤ 0.005.
			for _, id := range []string{"a", "b", "c"} {
				freq := count[id] / n
				prob := 0.0
				if count[id] > 0 {
					prob = logged[id] / count[id]
				}
				if math.Abs(freq-prob) > 0.045 {
					t.Errorf("%s: chosen %.3f of the time, logged %.3f", id, freq, prob)
				}
				if count[id] == 0 {
					t.Errorf("%s never explored", id)
				}
			}
		})
	}
}

func TestExplorationDeterministicForSeed(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5})
	e := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, learningSection), learnOpts), prof, nil, nil)
	run := func() string {
		var b strings.Builder
		var d Decision
		for i := range 50 {
			_ = e.Decide(&Request{Customer: "c", Channel: "web", Limit: 2, Now: monday, Seed: uint64(i + 1)}, &d)
			fmt.Fprintf(&b, "%v %.4f %.4f;", chosenIDs(&d), d.Actions[0].Prob, d.Actions[1].Prob)
		}
		return b.String()
	}
	first, second := run(), run()
	if first != second {
		t.Fatalf("same seeds, different decisions:\n%s\n%s", first, second)
	}
	if !strings.Contains(first, "[a") || !strings.Contains(first, "[b") {
		t.Errorf("thompson over close scores never varied its first action: %s", first)
	}
}

// Posteriors follow actions by id across a catalog swap and a checkpoint.
func TestLearnerSurvivesSwapAndCheckpoint(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5})
	e := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{-1, -1, -1}, learningSection), learnOpts), prof, nil, nil)
	for i := range 30 {
		_ = e.Observe("c", "a", float64(i%2), monday)
	}
	for range 10 {
		_ = e.Observe("c", "c", 0, monday)
	}
	// The new catalog drops b, puts c first and adds d.
	next := `
defaults: {model: prop}
groups:
  - id: offers
actions:
  - id: c
    channels: [web]
    features: {pick: -1}
  - id: d
    group: offers
    channels: [web]
    features: {pick: -1}
  - id: a
    group: offers
    channels: [web]
    features: {pick: -1}
` + learningSection
	e.Swap(mustCatalog(t, next, learnOpts))
	want := map[string]float64{"c": 10, "d": 0, "a": 30}
	check := func(e *Engine) {
		t.Helper()
		st := e.LearnerStats()
		if len(st.Actions) != 3 {
			t.Fatalf("stats %+v", st)
		}
		for _, ae := range st.Actions {
			if ae.Evidence != want[ae.Action] {
				t.Errorf("%s: evidence %v, want %v", ae.Action, ae.Evidence, want[ae.Action])
			}
		}
	}
	check(e)
	ck, err := e.MarshalLearner()
	if err != nil {
		t.Fatal(err)
	}
	// Restore onto the first catalog layout: a keeps its 30, c its 10.
	e2 := mustEngine(t, mustCatalog(t, next, learnOpts), prof, nil, nil)
	if err := e2.UnmarshalLearner(ck); err != nil {
		t.Fatal(err)
	}
	check(e2)
	var d1, d2 Decision
	_ = e.Decide(&Request{Customer: "c", Channel: "app", Limit: 3, Now: monday}, &d1)
	_ = e2.Decide(&Request{Customer: "c", Channel: "app", Limit: 3, Now: monday}, &d2)
	for i := range d1.Actions {
		if d1.Actions[i].Propensity != d2.Actions[i].Propensity {
			t.Errorf("restored propensity %v, want %v", d2.Actions[i].Propensity, d1.Actions[i].Propensity)
		}
	}
	bad := append([]byte(nil), ck...)
	bad[len(bad)/2] ^= 1
	if err := e2.UnmarshalLearner(bad); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("corrupt checkpoint: %v", err)
	}
	check(e2) // unchanged
	other := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{}, "learning: {features: [clv]}"), learnOpts), prof, nil, nil)
	if err := other.UnmarshalLearner(ck); err == nil || !strings.Contains(err.Error(), "features") {
		t.Errorf("checkpoint with other features: %v", err)
	}
}

func TestDecideWithLearningDoesNotAllocate(t *testing.T) {
	if RaceEnabled {
		t.Skip("sync.Pool drops objects under the race detector")
	}
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5})
	e := mustEngine(t, mustCatalog(t, learnCatalog([3]float64{-1, -1.1, -1.2}, learningSection), learnOpts), prof, nil, nil)
	_ = e.Observe("c", "a", 1, monday)
	for _, ch := range []string{"web", "email", "app"} {
		t.Run(ch, func(t *testing.T) {
			var d Decision
			req := &Request{Customer: "c", Channel: ch, Limit: 2, Now: monday, Remember: 7}
			if err := e.Decide(req, &d); err != nil {
				t.Fatal(err)
			}
			if allocs := testing.AllocsPerRun(200, func() { _ = e.Decide(req, &d) }); allocs > 0 {
				t.Errorf("Decide allocates %.1f times per call, want 0", allocs)
			}
		})
	}
}

func FuzzUnmarshalLearner(f *testing.F) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5})
	cat, err := CompileCatalog("t.yaml", []byte(learnCatalog([3]float64{}, learningSection)), learnOpts)
	if err != nil {
		f.Fatal(err)
	}
	e, _ := NewEngine(Config{Catalog: cat, Profiles: prof})
	_ = e.Observe("c", "a", 1, monday)
	ck, _ := e.MarshalLearner()
	f.Add(ck)
	f.Add([]byte(learnerMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, _ := NewEngine(Config{Catalog: cat, Profiles: prof})
		if err := e.UnmarshalLearner(data); err != nil {
			return
		}
		// Whatever loads must checkpoint again to the same posteriors.
		again, err := e.MarshalLearner()
		if err != nil {
			t.Fatal(err)
		}
		e2, _ := NewEngine(Config{Catalog: cat, Profiles: prof})
		if err := e2.UnmarshalLearner(again); err != nil {
			t.Fatalf("re-checkpoint does not load: %v", err)
		}
		var d Decision
		if err := e.Decide(&Request{Customer: "c", Channel: "web", Seed: 1, Now: monday}, &d); err != nil {
			t.Fatal(err)
		}
	})
}

// Decide, Observe, Swap and checkpoints run concurrently (run with -race).
func TestConcurrentLearning(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5})
	cats := []*Catalog{
		mustCatalog(t, learnCatalog([3]float64{-1, -1, -1}, learningSection), learnOpts),
		mustCatalog(t, learnCatalog([3]float64{-2, -1, 0}, learningSection), learnOpts),
	}
	e := mustEngine(t, cats[0], prof, nil, nil)
	done := make(chan struct{})
	errc := make(chan error, 3)
	go func() {
		var d Decision
		for i := range 2000 {
			key := uint64(i%64 + 1) // reused keys: slots rewritten while read
			if err := e.Decide(&Request{Customer: "c", Channel: "web", Limit: 2, Now: monday, Remember: key}, &d); err != nil {
				errc <- err
				return
			}
			rec, _ := e.Recall(key, d.Actions[0].Action.ID) // nil after a swap: Observe's way
			if err := e.ObserveRecalled(rec, "c", d.Actions[0].Action.ID, float64(i%2), monday); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	go func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				errc <- nil
				return
			default:
			}
			e.Swap(cats[i%2])
			ck, err := e.MarshalLearner()
			if err == nil {
				err = e.UnmarshalLearner(ck)
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st := e.LearnerStats(); st.Observed != 2000 {
		t.Errorf("observed %d, want 2000", st.Observed)
	}
}

// BenchmarkLearnDecide measures one decision over 50 candidates (limit 3)
// without learning, with the posterior mean, epsilon, and thompson at
// several draw counts, in the same run. Thompson costs about
// (draws+1) × contenders normal draws.
func BenchmarkLearnDecide(b *testing.B) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 0.5, "age": 0.3, "aff_xsell": 0.2})
	var acts strings.Builder
	for i := range 50 {
		fmt.Fprintf(&acts, "  - {id: a%d, channels: [web], features: {pick: %v}}\n", i, -2-float64(i%7)/10)
	}
	base := "defaults: {model: prop}\nactions:\n" + acts.String()
	learning := "learning:\n  features: [age, clv, aff_birthday, aff_welcome, aff_xsell]\n"
	for _, v := range []struct{ name, section string }{
		{"off", ""},
		{"mean", learning},
		{"epsilon", learning + "  explore: {web: {method: epsilon, epsilon: 0.05}}\n"},
		{"thompson_16", learning + "  explore: {web: {method: thompson, draws: 16}}\n"},
		{"thompson_64", learning + "  explore: {web: {method: thompson, draws: 64}}\n"},
		{"thompson_256", learning + "  explore: {web: {method: thompson, draws: 256}}\n"},
	} {
		e := mustEngine(b, mustCatalog(b, base+v.section, learnOpts), prof, nil, nil)
		if v.section != "" {
			for i := range 50 { // some evidence for every action
				for j := range 20 {
					_ = e.Observe("c", fmt.Sprint("a", i), float64(j%9/8), monday)
				}
			}
		}
		b.Run(v.name, func(b *testing.B) {
			var d Decision
			req := &Request{Customer: "c", Channel: "web", Limit: 3, Now: monday}
			b.ReportAllocs()
			for b.Loop() {
				_ = e.Decide(req, &d)
			}
		})
	}
}
