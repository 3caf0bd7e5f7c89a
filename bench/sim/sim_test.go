package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

var tiny = Config{Customers: 1500, Days: 20, Seed: 7, Draws: 16, TrainRows: 3000, Parallel: 2}

// A tiny simulation orders the policies as it must: the oracle earns the
// most, the learner beats random. Rewards are compared in expectation (the
// sum of the true response probabilities of what each policy showed), so
// the margins do not depend on the response coin flips.
func TestTinySimulationOrdersPolicies(t *testing.T) {
	res, err := simulate(tiny, policies)
	if err != nil {
		t.Fatal(err)
	}
	last := func(p string) float64 { return find(res, p).CumExpected[tiny.Days-1] }
	oracle, learner, random, manual := last(polOracle), last(polLearner), last(polRandom), last(polManual)
	t.Logf("expected responses: oracle %.0f learner %.0f offline %.0f manual %.0f random %.0f",
		oracle, learner, last(polOffline), manual, random)
	if !(oracle >= learner) {
		t.Errorf("learner %.1f beats the oracle %.1f", learner, oracle)
	}
	if !(learner >= 1.2*random) {
		t.Errorf("learner %.1f not 20%% above random %.1f", learner, random)
	}
	if !(oracle >= 1.5*random) {
		t.Errorf("oracle %.1f not 50%% above random %.1f", oracle, random)
	}
	for _, r := range res {
		if r.Decisions == 0 || r.TreatedCustomers+r.ControlCustomers > tiny.Customers || r.ControlCustomers == 0 {
			t.Errorf("%s: implausible counts %+v", r.Policy, r)
		}
	}
	var out bytes.Buffer
	report(&out, tiny, res, time.Second)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if l := lines[len(lines)-1]; !strings.HasPrefix(l, "learner_vs_oracle=") || !strings.Contains(l, " learner_vs_manual_uplift=") {
		t.Errorf("last line %q is not machine-readable", l)
	}
}

func TestSimulationDeterministicForSeed(t *testing.T) {
	cfg := tiny
	cfg.Customers, cfg.Days = 400, 6
	pols := []string{polLearner, polRandom}
	a, err := simulate(cfg, pols)
	if err != nil {
		t.Fatal(err)
	}
	b, err := simulate(cfg, pols)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different results:\n%+v\n%+v", a, b)
	}
	cfg.Seed++
	c, _ := simulate(cfg, pols)
	if reflect.DeepEqual(a, c) {
		t.Errorf("another seed gives the same results")
	}
}

// The generated catalogs are valid for every policy, and the manual one
// ranks by tiers only.
func TestCatalogs(t *testing.T) {
	pop := newPopulation(10, 1)
	if n := len(pop.campaigns); n < 50 {
		t.Fatalf("%d campaigns, want at least 50", n)
	}
	for _, p := range policies {
		src := catalog(pop, p, 8)
		if p == polManual && (strings.Contains(src, "model") || !strings.Contains(src, "tier: 1\n")) {
			t.Errorf("manual catalog uses a model or lacks tier 1:\n%s", src)
		}
	}
}
