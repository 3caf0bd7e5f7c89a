package metrics

import (
	"slices"
	"testing"
)

// TestHistogramCounts: AppendCounts gives each bucket's own count (not
// cumulative), the +Inf bucket last, beside the bounds Upper returns.
func TestHistogramCounts(t *testing.T) {
	s := NewSet()
	h, err := s.NewHistogram("t_seconds", "test", []float64{0.1, 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{0.05, 0.1, 0.5, 2, 3, 1} {
		h.Observe(v)
	}
	if got := h.AppendCounts([]uint64{7}); !slices.Equal(got, []uint64{7, 2, 2, 2}) {
		t.Errorf("AppendCounts = %v, want [7 2 2 2]", got)
	}
	if !slices.Equal(h.Upper(), []float64{0.1, 1}) {
		t.Errorf("Upper = %v", h.Upper())
	}
}
