package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"testing"

	"nba/model"
)

// TestHTTPMatchesDirectScoring decides 500 customers of the evaluation half
// through the sidecar's HTTP API (batches and single requests) and checks
// that every served arm and propensity is what scoring visit.json directly
// gives: the bundle binds the arm features and snapshot columns right and
// the engine ranks by predicted visit alone.
func TestHTTPMatchesDirectScoring(t *testing.T) {
	cs, _ := loadFixtures(t)
	m, err := model.Load("visit.json")
	if err != nil {
		t.Fatal(err)
	}
	eval := EvalHalf(cs)[:500]
	s, cleanup, err := ServeBundle(t.TempDir(), eval, "visit.json")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()

	// Direct scoring: every arm's predicted visit, best arm with ties to the
	// lower arm (the catalog order).
	type direct struct {
		arm Arm
		p   [NumArms]float64
	}
	want := make([]direct, len(eval))
	out := make([]float64, 1)
	var x []float64
	for i := range eval {
		best := Arm(-1)
		for a := range NumArms {
			x = eval[i].Features(a, x)
			m.Predict(x, out)
			want[i].p[a] = out[0]
			if best < 0 || out[0] > want[i].p[best] {
				best = a
			}
		}
		want[i].arm = best
	}

	for _, tc := range []struct {
		name string
		cfg  ClientConfig
		n    int
	}{
		{"batch", ClientConfig{Workers: 3, Batch: 64}, len(eval)},
		{"single", ClientConfig{Workers: 2, Batch: 1}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecideHTTP(context.Background(), s.URL, eval[:tc.n], tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var counts [NumArms]int
			for i, d := range got {
				w := want[i]
				counts[d.Arm]++
				if d.Arm != w.arm {
					t.Errorf("customer %s: served %s (p=%v), direct %s (p=%v)", CustomerID(&eval[i]), d.Arm, d.Propensity, w.arm, w.p)
					continue
				}
				if p := w.p[w.arm]; math.Abs(d.Propensity-p) > 1e-12*math.Max(1, p) {
					t.Errorf("customer %s: served propensity %v, direct %v", CustomerID(&eval[i]), d.Propensity, p)
				}
			}
			// The test means something only if the policy personalises.
			if n := counts[MensEmail] + counts[WomensEmail] + counts[NoEmail]; n != tc.n || counts[MensEmail] == n || counts[WomensEmail] == n {
				t.Errorf("arms chosen %v over %d customers: want a mix", counts, tc.n)
			}
		})
	}
}

// TestExplainScoresEveryArm asks the sidecar to explain decisions and checks
// that every arm, no_email included, is a candidate scored with the model's
// prediction for that arm (no_email with both arm flags 0), so no arm is
// left out by a rule, cap or binding.
func TestExplainScoresEveryArm(t *testing.T) {
	cs, _ := loadFixtures(t)
	m, err := model.Load("visit.json")
	if err != nil {
		t.Fatal(err)
	}
	eval := EvalHalf(cs)[:20]
	s, cleanup, err := ServeBundle(t.TempDir(), eval, "visit.json")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	out := make([]float64, 1)
	var x []float64
	for i := range eval {
		c := &eval[i]
		body := `{"customer_id":"` + CustomerID(c) + `","channel":"email","limit":1,"explain":true}`
		resp, err := post(context.Background(), http.DefaultClient, s.URL+"/v1/decide", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Candidates []struct {
				ID       string
				Score    float64
				Selected bool
			}
		}
		if err := json.Unmarshal(resp, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Candidates) != int(NumArms) {
			t.Fatalf("customer %s: %d candidates, want %d: %s", CustomerID(c), len(d.Candidates), NumArms, resp)
		}
		for _, cand := range d.Candidates {
			a, ok := armOf(cand.ID)
			if !ok {
				t.Fatalf("customer %s: unknown candidate %q", CustomerID(c), cand.ID)
			}
			x = c.Features(a, x)
			m.Predict(x, out)
			if math.Abs(cand.Score-out[0]) > 1e-12 {
				t.Errorf("customer %s: %s scored %v, model %v", CustomerID(c), cand.ID, cand.Score, out[0])
			}
		}
	}
}
