package main

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"nba/model"
)

const dataPath = "testdata/hillstrom.csv"

type meta struct {
	Split struct {
		Rows, Train, Eval int
		EvalIndexSum      int `json:"eval_index_sum"`
	}
	Features    []string
	ModelPolicy struct {
		Choices          []int
		VisitIPS         float64     `json:"visit_ips"`
		FirstPredictions [][]float64 `json:"first_predictions"`
	} `json:"model_policy"`
}

func loadFixtures(t *testing.T) ([]Customer, meta) {
	t.Helper()
	cs, err := Load(dataPath)
	if err != nil {
		t.Fatalf("cannot load the data set: %v", err)
	}
	var m meta
	b, err := os.ReadFile("meta.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return cs, m
}

// TestSplitMatchesTrainer checks that Go and train.py put the same rows in
// the evaluation half.
func TestSplitMatchesTrainer(t *testing.T) {
	cs, m := loadFixtures(t)
	eval, sum := 0, 0
	for _, c := range cs {
		if InEval(c.Row) {
			eval++
			sum += c.Row
		}
	}
	if len(cs) != m.Split.Rows || eval != m.Split.Eval || sum != m.Split.EvalIndexSum {
		t.Fatalf("rows %d, eval %d, index sum %d; train.py: %+v", len(cs), eval, sum, m.Split)
	}
	if strings.Join(m.Features, ",") != strings.Join(FeatureNames, ",") {
		t.Fatalf("features %v, train.py %v", FeatureNames, m.Features)
	}
}

func TestBaselines(t *testing.T) {
	cs, _ := loadFixtures(t)
	eval := EvalHalf(cs)
	visit := Outcomes[0]
	// Arm rates on the evaluation half, computed directly.
	var n [NumArms]float64
	var visits [NumArms]float64
	total := 0.0
	for _, c := range eval {
		n[c.Arm]++
		visits[c.Arm] += b2f(c.Visit)
		total += b2f(c.Visit)
	}
	byName := map[string]Value{}
	for _, p := range Baselines() {
		byName[p.Name] = Evaluate(eval, p.Policy, visit, 200, 1)
	}
	// Sending one arm to all: IPS is 3·(visits in that arm)/N.
	for name, a := range map[string]Arm{"no e-mail": NoEmail, "men's e-mail to all": MensEmail, "women's e-mail to all": WomensEmail} {
		v := byName[name]
		if want := visits[a] / Propensity / float64(len(eval)); math.Abs(v.Value-want) > 1e-12 {
			t.Errorf("%s: %g, want %g", name, v.Value, want)
		}
		// The interval covers the arm's own visit rate (the same quantity
		// estimated with the realised instead of the design propensity).
		if r := visits[a] / n[a]; r < v.Lower || r > v.Upper || r < v.BootLower || r > v.BootUpper {
			t.Errorf("%s: rate %g outside [%g, %g] / boot [%g, %g]", name, r, v.Lower, v.Upper, v.BootLower, v.BootUpper)
		}
	}
	if v := byName["random arm"]; math.Abs(v.Value-total/float64(len(eval))) > 1e-12 {
		t.Errorf("random policy %g, want the mean visit rate %g", v.Value, total/float64(len(eval)))
	}
	// E-mail beats no e-mail by far more than the intervals (the published
	// result of the experiment).
	if m, no := byName["men's e-mail to all"], byName["no e-mail"]; m.Lower <= no.Upper {
		t.Errorf("men's e-mail %+v does not beat no e-mail %+v", m, no)
	}
}

// TestModelPolicyMatchesTrainer checks that the Go model loader and the
// policy reproduce train.py's predictions, choices and policy value.
func TestModelPolicyMatchesTrainer(t *testing.T) {
	cs, want := loadFixtures(t)
	m, err := model.Load("visit.json")
	if err != nil {
		t.Fatalf("cannot load the visit model: %v", err)
	}
	eval := EvalHalf(cs)
	names := m.Features()
	out := make([]float64, 1)
	for i := range want.ModelPolicy.FirstPredictions {
		for a := range NumArms {
			x := eval[i].Features(a, nil)
			if len(names) != len(x) {
				t.Fatalf("model has %d features, want %d", len(names), len(x))
			}
			m.Predict(x, out)
			if p := want.ModelPolicy.FirstPredictions[i][a]; math.Abs(out[0]-p) > 1e-6 {
				t.Errorf("customer %d arm %s: predicted %g, XGBoost %g", i, a, out[0], p)
			}
		}
	}
	p, err := ModelPolicy(m)
	if err != nil {
		t.Fatal(err)
	}
	var choices [NumArms]int
	for i := range eval {
		pr := p(&eval[i])
		for a := range NumArms {
			if pr[a] == 1 {
				choices[a]++
			}
		}
	}
	v := Evaluate(eval, p, Outcomes[0], 0, 0)
	// float32 predictions may break near-ties differently: allow a few.
	for a := range NumArms {
		if d := choices[a] - want.ModelPolicy.Choices[a]; d < -5 || d > 5 {
			t.Errorf("arm %s chosen %d times, XGBoost %d", Arm(a), choices[a], want.ModelPolicy.Choices[a])
		}
	}
	if math.Abs(v.Value-want.ModelPolicy.VisitIPS) > 5e-4 {
		t.Errorf("model policy value %g, XGBoost %g", v.Value, want.ModelPolicy.VisitIPS)
	}
}

func TestParseErrors(t *testing.T) {
	head := strings.Join(header, ",") + "\n"
	good := "10,2) $100 - $200,142.44,1,0,Surburban,0,Phone,Womens E-Mail,0,0,0.0\n"
	f := func(name, in string, ok bool) {
		t.Helper()
		cs, err := parse(strings.NewReader(in))
		if (err == nil) != ok {
			t.Errorf("%s: err = %v", name, err)
		}
		if ok && (len(cs) != 1 || cs[0].Arm != WomensEmail || cs[0].Zip != "Surburban" || !cs[0].Mens || cs[0].History != 142.44) {
			t.Errorf("%s: parsed %+v", name, cs)
		}
	}
	f("good", head+good, true)
	f("header", strings.Replace(head, "visit", "visits", 1)+good, false)
	f("flag", head+strings.Replace(good, ",1,0,", ",2,0,", 1), false)
	f("number", head+strings.Replace(good, "142.44", "x", 1), false)
	f("arm", head+strings.Replace(good, "Womens E-Mail", "Kids E-Mail", 1), false)
	f("columns", head+"1,2\n", false)
}
