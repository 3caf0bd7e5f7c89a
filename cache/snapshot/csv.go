package snapshot

import (
	"bytes"
	"errors"
	"fmt"
)

// csvSplitter splits CSV/TSV lines by position.
type csvSplitter struct {
	delim byte
	idPos int   // file column of the id
	colOf []int // file column -> feature column, -1 for the id
}

// parseCSV parses a CSV or TSV text with a header line; head is the start
// of the text.
func parseCSV(src *source, head []byte) (*Snapshot, error) {
	name, cfg := src.name, src.cfg
	// The header is the first line that is not blank: in head, unless it
	// does not end there.
	var headerLine []byte
	line := 0
	if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
		head = bytes.TrimPrefix(head[:i+1], []byte("\ufeff"))
		for len(head) > 0 && headerLine == nil {
			var l []byte
			l, head = nextLine(head)
			line++
			if !blank(l) {
				headerLine = l
			}
		}
	}
	if headerLine == nil {
		line = 0
		err := src.scan(func(block []byte) error {
			if line == 0 {
				block = bytes.TrimPrefix(block, []byte("\ufeff"))
			}
			for len(block) > 0 {
				var l []byte
				l, block = nextLine(block)
				line++
				if !blank(l) {
					headerLine = bytes.Clone(l)
					return errStopScan
				}
			}
			return nil
		})
		if err != nil && err != errStopScan {
			return nil, err
		}
	}
	if headerLine == nil {
		return nil, fmt.Errorf("cannot load snapshot %q: no header line", name)
	}
	delim := byte(',')
	if bytes.IndexByte(headerLine, '\t') >= 0 {
		delim = '\t'
	}
	sp := &csvSplitter{delim: delim}
	names, err := splitAll(headerLine, delim)
	if err != nil {
		return nil, fmt.Errorf("cannot load snapshot %q: line %d: header: %w", name, line, err)
	}
	b := &builder{name: name, cfg: cfg, split: sp}
	idName := names[0]
	if cfg.Schema != nil && cfg.Schema.ID != "" {
		idName = cfg.Schema.ID
	}
	sp.idPos = -1
	seen := make(map[string]bool, len(names))
	for pos, n := range names {
		if seen[n] {
			return nil, fmt.Errorf("cannot load snapshot %q: line %d: header: column %q appears twice", name, line, n)
		}
		seen[n] = true
		if n == idName && sp.idPos < 0 {
			sp.idPos = pos
			sp.colOf = append(sp.colOf, -1)
			continue
		}
		sp.colOf = append(sp.colOf, len(b.cols))
		b.cols = append(b.cols, column{Column: Column{Name: n}})
	}
	if sp.idPos < 0 {
		return nil, fmt.Errorf("cannot load snapshot %q: line %d: header: no id column %q", name, line, idName)
	}
	b.idCol = idName
	if err := b.applySchema(); err != nil {
		return nil, fmt.Errorf("cannot load snapshot %q: line %d: header: %w", name, line, err)
	}
	b.skip = line
	return b.build(src)
}

// applySchema checks the file's columns against cfg.Schema and sets their
// kinds, or marks every column for inference when there is no schema.
func (b *builder) applySchema() error {
	b.infer = make([]bool, len(b.cols))
	sc := b.cfg.Schema
	if sc == nil {
		for i := range b.infer {
			b.infer[i] = true
		}
		return nil
	}
	declared := make(map[string]Kind, len(sc.Columns))
	for _, c := range sc.Columns {
		declared[c.Name] = c.Kind
	}
	for i := range b.cols {
		k, ok := declared[b.cols[i].Name]
		if !ok {
			return fmt.Errorf("column %q is not in the schema", b.cols[i].Name)
		}
		b.cols[i].Kind = k
		delete(declared, b.cols[i].Name)
	}
	for _, c := range sc.Columns {
		if _, missing := declared[c.Name]; missing {
			return fmt.Errorf("schema column %q is missing", c.Name)
		}
	}
	return nil
}

var errQuote = errors.New("unterminated quoted field (quoted fields may not span lines)")

// splitAll splits a header line into its fields.
func splitAll(line []byte, delim byte) ([]string, error) {
	var out []string
	var scratch []byte
	for {
		f, rest, sc, err := nextField(line, delim, scratch[:0])
		if err != nil {
			return nil, err
		}
		scratch = sc
		out = append(out, string(f))
		if rest == nil {
			return out, nil
		}
		line = rest
	}
}

// nextField returns the first field of line, trimmed of spaces and unquoted,
// and the rest after the delimiter (nil when this was the last field). A
// quoted field with doubled quotes is unescaped into scratch.
func nextField(line []byte, delim byte, scratch []byte) (f, rest, scratchOut []byte, err error) {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	if i < len(line) && line[i] == '"' {
		i++
		start := len(scratch)
		plain := true
		j := i
		for {
			k := bytes.IndexByte(line[j:], '"')
			if k < 0 {
				return nil, nil, scratch, errQuote
			}
			j += k
			if j+1 < len(line) && line[j+1] == '"' {
				// A doubled quote: keep one, unescaping into scratch.
				scratch = append(scratch, line[i:j+1]...)
				plain = false
				j += 2
				i = j
				continue
			}
			break
		}
		if plain {
			f = line[i:j]
		} else {
			scratch = append(scratch, line[i:j]...)
			f = scratch[start:]
		}
		j++ // closing quote
		for j < len(line) && line[j] == ' ' {
			j++
		}
		if j == len(line) {
			return f, nil, scratch, nil
		}
		if line[j] != delim {
			return nil, nil, scratch, errors.New("unexpected character after quoted field")
		}
		return f, line[j+1:], scratch, nil
	}
	f, rest = cutField(line[i:], delim)
	for len(f) > 0 && f[len(f)-1] == ' ' {
		f = f[:len(f)-1]
	}
	return f, rest, scratch, nil
}

// cutField splits an unquoted field from the rest of the line (nil when it
// was the last field).
func cutField(line []byte, delim byte) (f, rest []byte) {
	k := bytes.IndexByte(line, delim)
	if k < 0 {
		return line, nil
	}
	return line[:k], line[k+1:]
}

// numberField scans an unquoted field that starts with a digit, a sign or
// a dot, parsing it as a plain decimal on the way (numbers are most of a
// feature export, and this saves a second pass over their bytes). ok is
// false when the field is anything else; f and rest are as for cutField.
func numberField(line []byte, delim byte) (f, rest []byte, v float32, ok bool) {
	j, neg := 0, false
	if line[0] == '-' || line[0] == '+' {
		neg, j = line[0] == '-', 1
	}
	var m uint64
	digits, frac, dot := 0, 0, false
	for ; j < len(line); j++ {
		c := line[j]
		switch {
		case c-'0' < 10:
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == delim:
			v, ok = finishDecimal(m, digits, frac, neg)
			return line[:j], line[j+1:], v, ok
		case c == '.' && !dot:
			dot = true
		default:
			f, rest = cutField(line, delim)
			return f, rest, 0, false
		}
	}
	v, ok = finishDecimal(m, digits, frac, neg)
	return line, nil, v, ok
}

func (sp *csvSplitter) split(line []byte, fields []field, st *lineState) (id []byte, err error) {
	// Quoted fields may be unescaped into scratch; reserve its capacity so
	// earlier fields stay valid while it grows.
	if cap(st.scratch) < len(line) {
		st.scratch = make([]byte, 0, len(line))
	}
	scratch := st.scratch[:0]
	rest := line
	for pos := 0; ; pos++ {
		if pos >= len(sp.colOf) {
			return nil, fmt.Errorf("has more than %d fields", len(sp.colOf))
		}
		c := sp.colOf[pos]
		if c >= 0 && len(rest) > 0 && (rest[0]-'0' < 10 || rest[0] == '-' || rest[0] == '+' || rest[0] == '.') {
			// The fast path for numbers; anything unusual takes nextField.
			if f, r, v, ok := numberField(rest, sp.delim); ok {
				fields[c] = field{b: f, tok: tokText, numOK: true, num: v}
				rest = r
				if rest == nil {
					if pos+1 != len(sp.colOf) {
						return nil, fmt.Errorf("has %d fields, the header has %d", pos+1, len(sp.colOf))
					}
					return id, nil
				}
				continue
			}
		}
		var f []byte
		f, rest, scratch, err = nextField(rest, sp.delim, scratch)
		if err != nil {
			return nil, fmt.Errorf("field %d: %w", pos+1, err)
		}
		if c < 0 {
			id = f
		} else {
			fields[c] = field{b: f, tok: tokText}
		}
		if rest == nil {
			if pos+1 != len(sp.colOf) {
				return nil, fmt.Errorf("has %d fields, the header has %d", pos+1, len(sp.colOf))
			}
			return id, nil
		}
	}
}
