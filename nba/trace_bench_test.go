package nba_test

import (
	"testing"

	"nba/nba"
)

// BenchmarkDecideTrace measures the cost of Request.Trace (what the sidecar
// sets when its decision log is on) on the synthetic bundle, beside the
// same decisions untraced.
func BenchmarkDecideTrace(b *testing.B) {
	s := setup(b)
	for _, trace := range []bool{false, true} {
		name := "off"
		if trace {
			name = "on"
		}
		reqs := make([]nba.Request, len(s.reqs))
		copy(reqs, s.reqs)
		for i := range reqs {
			reqs[i].Trace = trace
		}
		b.Run(name, func(b *testing.B) {
			var d nba.Decision
			for i := range reqs {
				_ = s.e.Decide(&reqs[i], &d)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := s.e.Decide(&reqs[i%len(reqs)], &d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
