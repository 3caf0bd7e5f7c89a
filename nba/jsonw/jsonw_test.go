package jsonw

import (
	"encoding/json"
	"testing"
)

func TestAppendString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(AppendString(nil, in)); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
	}
	f("", `""`)
	f("plain", `"plain"`)
	f("a\"b\\c", `"a\"b\\c"`)
	f("\n\r\t\x01", `"\n\r\t\u0001"`)
	f("caf\xc3\xa9", `"café"`)
	f("bad\xffbyte", `"bad\ufffdbyte"`)
	f("line\u2028sep", `"line\u2028sep"`)
}

// FuzzAppendString checks that the output is always valid JSON that reads
// back as the input (invalid UTF-8 replaced by U+FFFD).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "x", "\"\\", "\x00\x1f", "\xff", "\u2028\u2029", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s: not JSON: %v", s, out, err)
		}
		// Converting to runes turns each invalid byte into U+FFFD, as the
		// encoder does.
		if back != string([]rune(s)) {
			t.Fatalf("AppendString(%q) reads back as %q", s, back)
		}
	})
}

// BenchmarkAppendString appends the short identifiers decision logs and
// responses are made of (action ids, field names), and one string that
// needs escaping.
func BenchmarkAppendString(b *testing.B) {
	for name, s := range map[string]string{"id": "act_073", "key": "birth_date", "escaped": "loan \"quoted\"\n"} {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			for b.Loop() {
				buf = AppendString(buf[:0], s)
			}
		})
	}
}
