package snapshot

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestParseDecimalMatchesStrconv checks the fast number path against
// strconv on shortest float32 forms, fixed-point forms and edge cases.
func TestParseDecimalMatchesStrconv(t *testing.T) {
	fast, total := 0, 0
	check := func(s string) {
		t.Helper()
		total++
		got, ok := parseDecimal([]byte(s))
		if !ok {
			return // strconv decides
		}
		fast++
		want, err := strconv.ParseFloat(s, 32)
		if err != nil {
			t.Fatalf("parseDecimal(%q) = %v, strconv fails: %v", s, got, err)
		}
		if got != float32(want) || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("parseDecimal(%q) = %v, want %v", s, got, float32(want))
		}
	}
	for _, s := range []string{"0", "-0", "+1", "1.", ".5", "0.1", "16777217", "3.4028235e38",
		"340282350000000000000000000000000000000", "0.000000000000000001", "999999999999999999",
		"9007199254740993", "1.00000005960464477539", "33554431", "0.30000001192092896"} {
		check(s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		f := float32(math.Float64frombits(rng.Uint64()))
		if f != f || math.IsInf(float64(f), 0) {
			continue
		}
		check(strconv.FormatFloat(float64(f), 'f', -1, 32))
		check(strconv.FormatFloat(rng.NormFloat64()*1e4, 'f', rng.IntN(8), 64))
		// Midpoints between neighbouring float32 values.
		g := math.Nextafter32(f, float32(math.Inf(1)))
		check(strconv.FormatFloat((float64(f)+float64(g))/2, 'f', -1, 64))
	}
	if fast < total/3 {
		t.Errorf("fast path taken for %d of %d values; want most plain decimals", fast, total)
	}
	if _, ok := parseDecimal([]byte("1e5")); ok {
		t.Error("parseDecimal accepted an exponent")
	}
	if _, ok := parseDecimal([]byte("1.2.3")); ok {
		t.Error("parseDecimal accepted two dots")
	}
	if _, ok := parseDecimal([]byte("-")); ok {
		t.Error("parseDecimal accepted a lone sign")
	}
}
