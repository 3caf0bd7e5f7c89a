package model

import (
	"encoding/json"
	"math"
	"testing"
)

// FuzzParseLinear checks that a model that loads scores as its JSON says:
// intercept + the sum of weight*x, in feature order, through the link.
func FuzzParseLinear(f *testing.F) {
	f.Add([]byte(linearDoc))
	f.Add([]byte(`{"format":"nba-linear","features":["a","b"],"weights":{"b":-1e308,"a":1e308},"link":"exp"}`))
	f.Add([]byte(`{"format":"nba-linear","features":[],"weights":{},"intercept":-3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseLinear("fuzz.json", data)
		if err != nil {
			return
		}
		var doc struct {
			Features  []string
			Weights   map[string]float64
			Intercept float64
			Link      string
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("the model loaded but its JSON does not decode: %v", err)
		}
		checkFuzzedModel(t, m)
		row := make([]float64, len(doc.Features))
		margin := doc.Intercept
		for j, name := range doc.Features {
			row[j] = float64(j+1) * 0.5
			margin += doc.Weights[name] * row[j]
		}
		want := margin
		switch doc.Link {
		case "logistic":
			want = 1 / (1 + math.Exp(-margin))
		case "exp":
			want = math.Exp(margin)
		}
		out := []float64{0}
		m.PredictRaw(row, out)
		if !sameFloat(out[0], margin) {
			t.Fatalf("PredictRaw = %v, want %v", out[0], margin)
		}
		m.Predict(row, out)
		if !sameFloat(out[0], want) {
			t.Fatalf("Predict = %v, want %v", out[0], want)
		}
	})
}
