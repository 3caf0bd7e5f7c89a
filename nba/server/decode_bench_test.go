package server

import (
	"testing"

	gojson "github.com/goccy/go-json"
)

var benchDecideBody = []byte(`{"customer_id":"cust-123456","channel":"web","placement":"home","limit":3,` +
	`"context":{"device":"ios","basket":42.5,"vip":true,"page":"/loans/mortgage","segment":"young-urban"},"explain":false,"dry_run":false}`)

// goccyDecide is the shape goccy/go-json would decode a decide request into.
type goccyDecide struct {
	CustomerID string         `json:"customer_id"`
	Channel    string         `json:"channel"`
	Placement  string         `json:"placement"`
	Limit      int            `json:"limit"`
	Context    map[string]any `json:"context"`
	Explain    bool           `json:"explain"`
	DryRun     bool           `json:"dry_run"`
}

// BenchmarkDecodeDecide justifies the hand-written decoder against the
// reference library the project already uses, on the same body.
func BenchmarkDecodeDecide(b *testing.B) {
	b.Run("handwritten", func(b *testing.B) {
		var req DecideRequest
		var arena []byte
		b.ReportAllocs()
		b.SetBytes(int64(len(benchDecideBody)))
		for b.Loop() {
			var err error
			if arena, err = decodeDecide(benchDecideBody, arena, &req, &testLimits); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goccy-go-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchDecideBody)))
		for b.Loop() {
			var req goccyDecide
			if err := gojson.Unmarshal(benchDecideBody, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
