package snapshot

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unsafe"
)

// tokKind is what a raw value looked like in the file.
type tokKind uint8

const (
	tokText   tokKind = iota // CSV field or JSON string
	tokNumber                // JSON number literal
	tokBool                  // JSON true/false
	tokNull                  // JSON null or an absent key
)

// field is one raw value of a line, borrowed from the input or from the
// worker's scratch buffer.
type field struct {
	b     []byte
	tok   tokKind
	set   bool    // JSON: the key was present (catches duplicates)
	numOK bool    // CSV: b is a plain decimal, already parsed into num
	num   float32 // valid when numOK
}

// Inference mask bits: the kinds a column can still be. Category is always
// possible and has no bit.
const (
	maskNumber uint8 = 1 << iota
	maskBool
	maskTime
	maskAll = maskNumber | maskBool | maskTime
)

// kindOf picks the most specific kind a mask allows.
func kindOf(mask uint8) Kind {
	switch {
	case mask&maskNumber != 0:
		return KindNumber
	case mask&maskBool != 0:
		return KindBool
	case mask&maskTime != 0:
		return KindTime
	}
	return KindCategory
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// isMissing reports whether a text value means "missing": empty, NA, N/A,
// null or nan in any case.
func isMissing(b []byte) bool {
	switch len(b) {
	case 0:
		return true
	case 2:
		return lower(b[0]) == 'n' && lower(b[1]) == 'a'
	case 3:
		return (lower(b[0]) == 'n' && b[1] == '/' && lower(b[2]) == 'a') ||
			(lower(b[0]) == 'n' && lower(b[1]) == 'a' && lower(b[2]) == 'n')
	case 4:
		return lower(b[0]) == 'n' && lower(b[1]) == 'u' && lower(b[2]) == 'l' && lower(b[3]) == 'l'
	}
	return false
}

func lower(c byte) byte { return c | 0x20 }

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

var (
	errNotNumber = errors.New("not a number")
	errNotBool   = errors.New("not a boolean (want true, false, 1 or 0)")
	errNotTime   = errors.New("not a date or timestamp (want YYYY-MM-DD, RFC 3339 or unix seconds)")
)

// parseNumber parses b as a float32. It rejects values that overflow
// float32 and leading/trailing garbage.
func parseNumber(b []byte) (float32, error) {
	if v, ok := parseDecimal(b); ok {
		return v, nil
	}
	f, err := strconv.ParseFloat(unsafeString(b), 32)
	if err != nil {
		return 0, errNotNumber
	}
	if math.IsNaN(f) {
		return 0, errNotNumber // spelled-out nan is caught by isMissing; "+nan" is not accepted
	}
	return float32(f), nil
}

// parseBoolText parses true/false (any case) and, unless strict, 1/0.
func parseBoolText(b []byte, strict bool) (float32, error) {
	switch {
	case equalFold(b, "true"):
		return 1, nil
	case equalFold(b, "false"):
		return 0, nil
	case !strict && len(b) == 1 && b[0] == '1':
		return 1, nil
	case !strict && len(b) == 1 && b[0] == '0':
		return 0, nil
	}
	return 0, errNotBool
}

// parseTimeText parses a date or a timestamp into unix seconds (UTC unless
// the value carries an offset).
func parseTimeText(b []byte) (int64, error) {
	if len(b) == 10 && b[4] == '-' && b[7] == '-' {
		y, ok1 := digits(b[0:4])
		m, ok2 := digits(b[5:7])
		d, ok3 := digits(b[8:10])
		if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
			return 0, errNotTime
		}
		return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix(), nil
	}
	if len(b) < 19 || b[4] != '-' || b[7] != '-' {
		return 0, errNotTime
	}
	s := unsafeString(b)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.Unix(), nil
	}
	if t, err := time.Parse(time.DateTime, s); err == nil {
		return t.Unix(), nil
	}
	return 0, errNotTime
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// classify returns the mask of kinds a non-missing value is compatible with.
func classify(f field) uint8 {
	switch f.tok {
	case tokNumber:
		return maskNumber
	case tokBool:
		return maskBool
	}
	if _, err := parseNumber(f.b); err == nil {
		return maskNumber
	}
	if _, err := parseBoolText(f.b, true); err == nil {
		return maskBool
	}
	if _, err := parseTimeText(f.b); err == nil {
		return maskTime
	}
	return 0
}

// missing reports whether f is a missing value.
func (f field) missing() bool {
	return f.tok == tokNull || (f.tok == tokText && isMissing(f.b))
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseDecimal is the fast path of parseNumber for plain decimals such as
// "-12.375" (no exponent, at most 18 digits). It divides the exact integer
// mantissa by an exact power of ten, which float64 rounds correctly, then
// rounds to float32. That double rounding can differ from one correct
// rounding only when the float64 lands exactly on a float32 midpoint; then,
// and for anything unusual, it reports ok=false and strconv decides.
func parseDecimal(b []byte) (float32, bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, i = b[0] == '-', 1
	}
	var m uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	return finishDecimal(m, digits, frac, neg)
}

// finishDecimal turns the mantissa and the count of digits and of
// fraction digits of a plain decimal into a float32 (see parseDecimal).
func finishDecimal(m uint64, digits, frac int, neg bool) (float32, bool) {
	if digits == 0 || digits > 18 || m > 1<<53 {
		return 0, false
	}
	f := float64(m) / pow10[frac]
	if bits := math.Float64bits(f); bits&(1<<29-1) == 1<<28 || (f != 0 && f < 0x1p-126) || f > math.MaxFloat32 {
		return 0, false // float32 midpoint, subnormal or overflow
	}
	if neg {
		f = -f
	}
	return float32(f), true
}
