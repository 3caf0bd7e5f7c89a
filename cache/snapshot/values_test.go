package snapshot

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
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

// TestCSVNumberFastPath: numbers parsed while splitting a CSV line must
// equal strconv's, and anything that is not a plain decimal must take the
// general path (and parse or fail as it would there).
func TestCSVNumberFastPath(t *testing.T) {
	values := []string{"1.", ".5", "-0", "+7", "00012", "1e5", "-1.5E-3", "12345678901234567890",
		"0.1000000000000000055511151231257827", " 3 ", "4 ", "16777217", "-.25", "inf", "+Inf", "0x1p4"}
	var b []byte
	b = append(b, "id,x,y\n"...)
	for i, v := range values {
		b = append(b, fmt.Sprintf("r%d,%s,%s\n", i, v, v)...)
	}
	s, err := Parse("fast", b, Config{Schema: &Schema{Columns: []Column{{"x", KindNumber}, {"y", KindNumber}}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		want, err := strconv.ParseFloat(strings.TrimSpace(v), 32)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		r, _ := s.LookupString(fmt.Sprintf("r%d", i))
		for c := range 2 {
			if got := s.Number(c, r); got != float32(want) {
				t.Errorf("%q (column %d): %v, want %v", v, c, got, float32(want))
			}
		}
	}
	for _, bad := range []string{"-", ".", "+.", "1.2.3", "1-2", "--1", "1,5", "0x10"} {
		_, err := Parse("bad", []byte("id,x\nr,"+bad+"\n"), Config{Schema: &Schema{Columns: []Column{{"x", KindNumber}}}})
		if err == nil {
			t.Errorf("%q parsed as a number", bad)
		}
	}
}
