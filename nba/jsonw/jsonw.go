// Package jsonw appends JSON values to byte slices without reflection, for
// the encoders on the request path (HTTP responses, decision logs). Its
// functions never allocate beyond growing the slice they are given and are
// safe for concurrent use.
package jsonw

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// plain marks the bytes AppendString copies as they are: printable ASCII
// but the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// hexDigits are the lower-case hexadecimal digits.
const hexDigits = "0123456789abcdef"

// AppendString appends s to b as a JSON string. Invalid UTF-8 bytes become
// U+FFFD, so the output is always valid JSON; U+2028 and U+2029 are escaped
// so the output is also safe inside JavaScript.
func AppendString(b []byte, s string) []byte {
	// Most strings (ids, field names) need no escaping: one table lookup a
	// byte finds that out, and they are copied whole.
	i := 0
	for i < len(s) && plain[s[i]] {
		i++
	}
	b = append(b, '"')
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendFloat appends v in the shortest form that reads back exactly, or
// null when v is not finite (JSON has no NaN or infinities).
func AppendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
