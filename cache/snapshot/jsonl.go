package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonSplitter splits JSON Lines: one flat object per line.
type jsonSplitter struct {
	idKey string
	colOf map[string]int // key -> feature column, -1 for the id
	names []string       // feature column -> key
}

// parseJSONL parses a JSON Lines text. Without a schema it first assumes
// that the first object names every key, which saves a pass over the file;
// if a later line has another key it collects the keys of every line and
// parses again.
func parseJSONL(src *source) (*Snapshot, error) {
	if src.cfg.Schema != nil {
		return parseJSONLWith(src, false)
	}
	s, err := parseJSONLWith(src, true)
	if errors.Is(err, errRetryAllKeys) {
		return parseJSONLWith(src, false)
	}
	return s, err
}

// errRetryAllKeys reports that the keys of the first line were not enough.
var errRetryAllKeys = errors.New("a line has a key the first line lacks")

// unknownKeyError is a key that is not a column.
type unknownKeyError struct{ key []byte }

func (e *unknownKeyError) Error() string { return fmt.Sprintf("key %q is not in the schema", e.key) }

func parseJSONLWith(src *source, firstLineKeys bool) (*Snapshot, error) {
	cfg := src.cfg
	idKey := cfg.IDColumn
	if cfg.Schema != nil && cfg.Schema.ID != "" {
		idKey = cfg.Schema.ID
	}
	sp := &jsonSplitter{idKey: idKey, colOf: map[string]int{idKey: -1}}
	b := &builder{name: src.name, cfg: cfg, split: sp, idCol: idKey}
	switch {
	case cfg.Schema != nil:
		for _, c := range cfg.Schema.Columns {
			sp.colOf[c.Name] = len(b.cols)
			b.cols = append(b.cols, column{Column: c})
		}
		b.infer = make([]bool, len(b.cols))
	default:
		if firstLineKeys {
			if err := b.firstLineKeys(src, sp); err != nil {
				return nil, err
			}
		} else if err := b.collectKeys(src, sp); err != nil {
			return nil, err
		}
		b.infer = make([]bool, len(b.cols))
		for i := range b.infer {
			b.infer[i] = true
		}
	}
	sp.names = make([]string, len(b.cols))
	for i := range b.cols {
		sp.names[i] = b.cols[i].Name
	}
	s, err := b.build(src)
	if err != nil && firstLineKeys && b.unknownKey.Load() {
		return nil, errRetryAllKeys
	}
	return s, err
}

// firstLineKeys makes a column of every key of the first object. Errors are
// left for the parsing pass to report with their line.
func (b *builder) firstLineKeys(src *source, sp *jsonSplitter) error {
	err := src.scan(func(body []byte) error {
		body = bytes.TrimPrefix(body, []byte("\ufeff"))
		for len(body) > 0 {
			var l []byte
			l, body = nextLine(body)
			if blank(l) {
				continue
			}
			sc := jsonScanner{line: l}
			if sc.open() != nil {
				return errStopScan
			}
			for {
				k, _, ok, err := sc.next()
				if err != nil || !ok {
					return errStopScan
				}
				if _, dup := sp.colOf[string(k)]; !dup {
					sp.colOf[string(k)] = len(b.cols)
					b.cols = append(b.cols, column{Column: Column{Name: string(k)}})
				}
			}
		}
		return nil
	})
	if err == errStopScan {
		return nil
	}
	return err
}

// collectKeys finds every key used in the file, in order of first
// appearance, and makes each (but the id) a column.
func (b *builder) collectKeys(src *source, sp *jsonSplitter) error {
	line := 1
	err := src.scan(func(block []byte) error {
		if line == 1 {
			block = bytes.TrimPrefix(block, []byte("\ufeff"))
		}
		chunks, lines, _, err := b.cutBlock(block, line, 0)
		if err != nil {
			return err
		}
		line += lines
		keys := make([][]string, len(chunks))
		parallelChunks(chunks, b.cfg.Workers, func(c *chunk, i int) {
			seen := map[string]bool{}
			var scratch []byte
			data, line := c.data, c.firstLine-1
			for len(data) > 0 {
				var l []byte
				l, data = nextLine(data)
				line++
				if blank(l) {
					continue
				}
				sc := jsonScanner{line: l, scratch: scratch[:0]}
				if err := sc.open(); err != nil {
					c.err = &lineError{line, err.Error()}
					return
				}
				for {
					k, _, ok, err := sc.next()
					if err != nil {
						c.err = &lineError{line, err.Error()}
						return
					}
					if !ok {
						break
					}
					if !seen[string(k)] {
						seen[string(k)] = true
						keys[i] = append(keys[i], string(k))
					}
				}
				scratch = sc.scratch
			}
		})
		if err := firstError(b.name, chunks); err != nil {
			return err
		}
		for _, ks := range keys {
			for _, k := range ks {
				if _, ok := sp.colOf[k]; !ok {
					sp.colOf[k] = len(b.cols)
					b.cols = append(b.cols, column{Column: Column{Name: k}})
				}
			}
		}
		return nil
	})
	return err
}

func (sp *jsonSplitter) split(line []byte, fields []field, st *lineState) (id []byte, err error) {
	// Unescaped strings are never longer than the line: reserve the
	// capacity so earlier values stay valid while scratch grows.
	if cap(st.scratch) < len(line) {
		st.scratch = make([]byte, 0, len(line))
	}
	sc := jsonScanner{line: line, scratch: st.scratch[:0]}
	if err := sc.open(); err != nil {
		return nil, err
	}
	haveID := false
	for n := 0; ; n++ {
		k, f, ok, err := sc.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		// Lines of one export list their keys in the same order: try the
		// column the n-th key had on the previous line before the map.
		c, known := -2, true
		if n < len(st.guess) {
			if g := st.guess[n] - 1; g >= -1 && string(k) == sp.keyOf(g) {
				c = g
			}
		}
		if c == -2 {
			c, known = sp.colOf[string(k)]
			if known {
				for len(st.guess) <= n {
					st.guess = append(st.guess, 0)
				}
				st.guess[n] = c + 1
			}
		}
		switch {
		case !known:
			return nil, &unknownKeyError{k}
		case c < 0:
			if haveID {
				return nil, fmt.Errorf("key %q appears twice", k)
			}
			if f.tok == tokNull || f.tok == tokBool {
				return nil, fmt.Errorf("key %q: id must be a string or a number", k)
			}
			haveID, id = true, f.b
		default:
			if fields[c].set {
				return nil, fmt.Errorf("key %q appears twice", k)
			}
			f.set = true
			fields[c] = f
		}
	}
	if !haveID {
		return nil, fmt.Errorf("no id key %q", sp.idKey)
	}
	return id, nil
}

// keyOf returns the key of feature column c, or the id key for -1.
func (sp *jsonSplitter) keyOf(c int) string {
	if c < 0 {
		return sp.idKey
	}
	return sp.names[c]
}

// jsonScanner walks the members of one flat JSON object.
type jsonScanner struct {
	line    []byte
	pos     int
	scratch []byte
	n       int // members read
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.line) {
		switch s.line[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

func (s *jsonScanner) open() error {
	s.skipSpace()
	if s.pos >= len(s.line) || s.line[s.pos] != '{' {
		return errors.New("line is not a JSON object")
	}
	s.pos++
	return nil
}

// next returns the next key and value; ok is false after the closing brace.
func (s *jsonScanner) next() (key []byte, f field, ok bool, err error) {
	s.skipSpace()
	if s.pos >= len(s.line) {
		return nil, f, false, errors.New("unexpected end of object")
	}
	if s.line[s.pos] == '}' {
		s.pos++
		s.skipSpace()
		if s.pos != len(s.line) {
			return nil, f, false, errors.New("unexpected data after object")
		}
		return nil, f, false, nil
	}
	if s.n > 0 {
		if s.line[s.pos] != ',' {
			return nil, f, false, fmt.Errorf("expected ',' or '}' at offset %d", s.pos)
		}
		s.pos++
		s.skipSpace()
	}
	s.n++
	if s.pos >= len(s.line) || s.line[s.pos] != '"' {
		return nil, f, false, fmt.Errorf("expected a key at offset %d", s.pos)
	}
	key, err = s.str()
	if err != nil {
		return nil, f, false, err
	}
	s.skipSpace()
	if s.pos >= len(s.line) || s.line[s.pos] != ':' {
		return nil, f, false, fmt.Errorf("expected ':' after key %q", key)
	}
	s.pos++
	s.skipSpace()
	if s.pos >= len(s.line) {
		return nil, f, false, errors.New("unexpected end of object")
	}
	switch c := s.line[s.pos]; {
	case c == '"':
		v, err := s.str()
		if err != nil {
			return nil, f, false, err
		}
		return key, field{b: v, tok: tokText}, true, nil
	case c == '{' || c == '[':
		return nil, f, false, fmt.Errorf("key %q: nested values are not supported", key)
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.pos
		for s.pos < len(s.line) {
			c := s.line[s.pos]
			if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
				break
			}
			s.pos++
		}
		return key, field{b: s.line[start:s.pos], tok: tokNumber}, true, nil
	case bytes.HasPrefix(s.line[s.pos:], []byte("true")):
		s.pos += 4
		return key, field{b: s.line[s.pos-4 : s.pos], tok: tokBool}, true, nil
	case bytes.HasPrefix(s.line[s.pos:], []byte("false")):
		s.pos += 5
		return key, field{b: s.line[s.pos-5 : s.pos], tok: tokBool}, true, nil
	case bytes.HasPrefix(s.line[s.pos:], []byte("null")):
		s.pos += 4
		return key, field{tok: tokNull}, true, nil
	}
	return nil, f, false, fmt.Errorf("key %q: invalid value at offset %d", key, s.pos)
}

// str reads a JSON string at s.pos. Strings without escapes are returned in
// place; others are unescaped into s.scratch.
func (s *jsonScanner) str() ([]byte, error) {
	s.pos++ // opening quote
	start := s.pos
	for s.pos < len(s.line) {
		c := s.line[s.pos]
		if c == '"' {
			s.pos++
			return s.line[start : s.pos-1], nil
		}
		if c == '\\' {
			return s.unescape(start)
		}
		if c < 0x20 {
			return nil, fmt.Errorf("control character in string at offset %d", s.pos)
		}
		s.pos++
	}
	return nil, errors.New("unterminated string")
}

func (s *jsonScanner) unescape(start int) ([]byte, error) {
	out := len(s.scratch)
	s.scratch = append(s.scratch, s.line[start:s.pos]...)
	for s.pos < len(s.line) {
		c := s.line[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.scratch[out:], nil
		case c < 0x20:
			return nil, fmt.Errorf("control character in string at offset %d", s.pos)
		case c != '\\':
			s.scratch = append(s.scratch, c)
			s.pos++
			continue
		}
		if s.pos+1 >= len(s.line) {
			return nil, errors.New("unterminated string")
		}
		e := s.line[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			s.scratch = append(s.scratch, e)
		case 'b':
			s.scratch = append(s.scratch, '\b')
		case 'f':
			s.scratch = append(s.scratch, '\f')
		case 'n':
			s.scratch = append(s.scratch, '\n')
		case 'r':
			s.scratch = append(s.scratch, '\r')
		case 't':
			s.scratch = append(s.scratch, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, fmt.Errorf("invalid \\u escape at offset %d", s.pos)
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if s.pos+1 < len(s.line) && s.line[s.pos] == '\\' && s.line[s.pos+1] == 'u' {
					s.pos += 2
					if x, ok := s.hex4(); ok {
						r2 = x
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			s.scratch = utf8.AppendRune(s.scratch, r)
		default:
			return nil, fmt.Errorf("invalid escape \\%c at offset %d", e, s.pos-1)
		}
	}
	return nil, errors.New("unterminated string")
}

func (s *jsonScanner) hex4() (rune, bool) {
	if s.pos+4 > len(s.line) {
		return 0, false
	}
	var r rune
	for _, c := range s.line[s.pos : s.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.pos += 4
	return r, true
}
