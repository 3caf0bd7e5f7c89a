package model

import (
	"math"
	"strings"
	"testing"
)

const linearDoc = `{
  "format": "nba-linear",
  "objective": "accept-logit",
  "features": ["age", "tenure", "spend"],
  "weights": {"age": 0.5, "spend": -2},
  "intercept": 1,
  "link": "logistic"
}`

func TestLinearPredict(t *testing.T) {
	m, err := Parse("accept.json", []byte(linearDoc))
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info()
	if info.Format != "linear-json" || info.Objective != "accept-logit" || info.Features != 3 || info.Outputs != 1 || info.Trees != 0 || len(info.Version) != 16 {
		t.Errorf("Info() = %+v", info)
	}
	if got := strings.Join(m.Features(), ","); got != "age,tenure,spend" {
		t.Errorf("Features() = %s", got)
	}
	f := func(row []float64, margin float64) {
		t.Helper()
		out := []float64{0}
		m.PredictRaw(row, out)
		if math.Abs(out[0]-margin) > 1e-12 {
			t.Errorf("PredictRaw(%v) = %v, want %v", row, out[0], margin)
		}
		m.Predict(row, out)
		if want := 1 / (1 + math.Exp(-margin)); math.Abs(out[0]-want) > 1e-12 {
			t.Errorf("Predict(%v) = %v, want %v", row, out[0], want)
		}
	}
	f([]float64{0, 0, 0}, 1)
	f([]float64{2, 100, 0.25}, 1+1-0.5) // tenure has no weight
	f([]float64{math.NaN(), 7, 1}, 1-2) // a missing input contributes nothing
}

func TestLinearLinks(t *testing.T) {
	for _, tc := range []struct {
		link string
		want float64 // prediction at margin 0.5
	}{
		{"", 0.5}, {"identity", 0.5}, {"exp", math.Exp(0.5)}, {"logistic", 1 / (1 + math.Exp(-0.5))},
	} {
		doc := `{"format":"nba-linear","features":["a"],"weights":{"a":1},"link":"` + tc.link + `"}`
		if tc.link == "" {
			doc = `{"format":"nba-linear","features":["a"],"weights":{"a":1}}`
		}
		m, err := Parse("m.json", []byte(doc))
		if err != nil {
			t.Fatalf("link %q: %v", tc.link, err)
		}
		out := []float64{0}
		m.Predict([]float64{0.5}, out)
		if math.Abs(out[0]-tc.want) > 1e-15 {
			t.Errorf("link %q: Predict = %v, want %v", tc.link, out[0], tc.want)
		}
	}
}

func TestLinearErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown member", `{"format":"nba-linear","features":["a"],"weights":{},"bias":1}`, `unknown field "bias"`},
		{"weight not a feature", `{"format":"nba-linear","features":["a"],"weights":{"b":1}}`, `field "weights": "b" is not one of the features`},
		{"null weight", `{"format":"nba-linear","features":["a"],"weights":{"a":null}}`, `"a": null weight`},
		{"no features", `{"format":"nba-linear","weights":{}}`, `missing field "features"`},
		{"no weights", `{"format":"nba-linear","features":["a"]}`, `missing field "weights"`},
		{"duplicate feature", `{"format":"nba-linear","features":["a","a"],"weights":{}}`, `name "a" already used`},
		{"empty feature", `{"format":"nba-linear","features":[""],"weights":{}}`, `empty name`},
		{"bad link", `{"format":"nba-linear","features":["a"],"weights":{},"link":"probit"}`, `field "link": "probit"`},
		{"weight type", `{"format":"nba-linear","features":["a"],"weights":{"a":"1"}}`, `field "weights": string where float64 was expected`},
		{"truncated", `{"format":"nba-linear","features":["a"],"weig`, `invalid JSON`},
		{"trailing data", `{"format":"nba-linear","features":["a"],"weights":{}} {}`, `data after the model object`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("m.json", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `cannot load model "m.json": `) {
				t.Fatalf("Parse: %v, want an error naming the file and containing %q", err, tc.want)
			}
		})
	}
}
