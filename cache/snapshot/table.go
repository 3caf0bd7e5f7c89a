package snapshot

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// splitter turns one line into its id and its fields. fields has one slot
// per feature column and is reset to tokNull by the caller before each line.
// The returned id and field bytes may point into st.scratch.
type splitter interface {
	split(line []byte, fields []field, st *lineState) (id []byte, err error)
}

// lineState is a worker's scratch space for splitting lines.
type lineState struct {
	scratch []byte // unescaped strings of the current line
	guess   []int  // JSON: 1 + column of the i-th key of the previous line (0: none)
}

// lineError is a parse error at a known line of the file.
type lineError struct {
	line int // 1-based line in the decompressed file
	msg  string
}

// chunk is a run of whole lines parsed by one worker.
type chunk struct {
	data      []byte
	firstLine int // line number of the first line of data
	rows      int // non-blank lines
	row0      int // row index of the first of them

	ids  []byte
	offs []uint32 // rows offsets (start of each id) into ids

	masks  []uint8 // per column: kinds still possible (inference)
	notNum []bool  // per column: a value failed to parse as a number
	dicts  []map[string]int32
	vals   [][]string

	err *lineError
}

// builder assembles a Snapshot from chunks of lines.
type builder struct {
	name  string
	cfg   Config
	split splitter
	cols  []column
	idCol string
	// words and stride are the snapshot's row-major values (see Snapshot).
	words  []uint32
	stride int
	// infer marks columns whose kind is not yet known.
	infer []bool
	// active marks the columns parsed in the current pass.
	active []bool
	chunks []*chunk
	rows   int
	// unknownKey is set when a JSON line had a key that is not a column.
	unknownKey atomic.Bool
}

// nextLine returns the first line of data (without '\n' and a trailing
// '\r') and the rest.
func nextLine(data []byte) (line, rest []byte) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		line, rest = data, nil
	} else {
		line, rest = data[:i], data[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// blank reports whether a line holds nothing but spaces.
func blank(line []byte) bool {
	for _, c := range line {
		if c != ' ' {
			return false
		}
	}
	return true
}

// cut splits body into about n chunks at line boundaries and counts their
// rows. firstLine is the line number of the first line of body.
func (b *builder) cut(body []byte, firstLine int) error {
	n := b.cfg.Workers * 8
	size := len(body)/n + 1
	for len(body) > 0 {
		end := min(size, len(body))
		if end < len(body) {
			if i := bytes.IndexByte(body[end:], '\n'); i >= 0 {
				end += i + 1
			} else {
				end = len(body)
			}
		}
		b.chunks = append(b.chunks, &chunk{data: body[:end]})
		body = body[end:]
	}
	lines := make([]int, len(b.chunks))
	b.parallel(func(c *chunk, i int) {
		data := c.data
		for len(data) > 0 {
			var line []byte
			line, data = nextLine(data)
			lines[i]++
			if !blank(line) {
				c.rows++
			}
		}
	})
	row, line := 0, firstLine
	for i, c := range b.chunks {
		c.row0, c.firstLine = row, line
		row += c.rows
		line += lines[i]
	}
	if row > math.MaxInt32-1 {
		return fmt.Errorf("cannot load snapshot %q: %d rows exceed the limit of %d", b.name, row, math.MaxInt32-1)
	}
	b.rows = row
	return nil
}

// parallel runs fn on every chunk with cfg.Workers goroutines.
func (b *builder) parallel(fn func(c *chunk, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(b.cfg.Workers, len(b.chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(b.chunks) {
					return
				}
				fn(b.chunks[i], i)
			}
		}()
	}
	wg.Wait()
}

// parallelRows runs fn on ranges of rows [lo, hi) that cover 0..rows,
// about 8 per worker, with workers goroutines.
func parallelRows(rows, workers int, fn func(lo, hi int)) {
	size := rows/(workers*8) + 1
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, rows/size+1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(1)-1) * size
				if lo >= rows {
					return
				}
				fn(lo, min(lo+size, rows))
			}
		}()
	}
	wg.Wait()
}

// firstError returns the error at the smallest line, if any.
func (b *builder) firstError() error {
	var first *lineError
	for _, c := range b.chunks {
		if c.err != nil && (first == nil || c.err.line < first.line) {
			first = c.err
		}
	}
	if first == nil {
		return nil
	}
	return fmt.Errorf("cannot load snapshot %q: line %d: %s", b.name, first.line, first.msg)
}

// allocWords lays out the columns by their current kinds and allocates
// the values of every row.
func (b *builder) allocWords() {
	b.stride = layout(b.cols)
	b.words = make([]uint32, b.rows*b.stride)
}

// relayout gives the columns the offsets of their final kinds before the
// second pass. The first pass took every inferred column for a number, one
// word per row; a column found to hold times takes two, which moves every
// column after it. Then the rows are copied into a new table: only the
// columns kept from the first pass, since the second pass rewrites every
// word of the others.
func (b *builder) relayout() {
	offs := make([]int, len(b.cols))
	for i := range b.cols {
		offs[i] = b.cols[i].off
	}
	old, oldStride := b.words, b.stride
	if layout(b.cols) == oldStride {
		return // no width changed, so neither did any offset
	}
	b.allocWords()
	b.parallel(func(c *chunk, _ int) {
		for r := c.row0; r < c.row0+c.rows; r++ {
			src := old[r*oldStride : (r+1)*oldStride]
			dst := b.words[r*b.stride : (r+1)*b.stride]
			for i := range b.cols {
				if !b.active[i] {
					copy(dst[b.cols[i].off:b.cols[i].off+width(b.cols[i].Kind)], src[offs[i]:])
				}
			}
		}
	})
}

// build parses every line of the chunks into the columns and returns the
// snapshot. b.cols holds the columns with their kinds; b.infer marks those
// to infer.
func (b *builder) build() (*Snapshot, error) {
	nc := len(b.cols)
	b.active = make([]bool, nc)
	for i := range b.active {
		b.active[i] = true
		if b.infer[i] {
			b.cols[i].Kind = KindNumber
		}
	}
	b.allocWords()
	for _, c := range b.chunks {
		c.masks = make([]uint8, nc)
		for i := range c.masks {
			c.masks[i] = maskAll
		}
		c.notNum = make([]bool, nc)
		c.dicts = make([]map[string]int32, nc)
		c.vals = make([][]string, nc)
	}
	b.parallel(func(c *chunk, _ int) { b.parseChunk(c, true) })
	if err := b.firstError(); err != nil {
		return nil, err
	}

	// Second pass for inferred columns that turned out not to be numbers.
	again := false
	for i := range b.cols {
		b.active[i] = false
		if !b.infer[i] {
			continue
		}
		mask := uint8(maskAll)
		failed := false
		for _, c := range b.chunks {
			mask &= c.masks[i]
			failed = failed || c.notNum[i]
		}
		if !failed {
			continue
		}
		b.cols[i].Kind = kindOf(mask)
		b.active[i] = true
		again = true
	}
	if again {
		b.relayout()
		b.parallel(func(c *chunk, _ int) { b.parseChunk(c, false) })
		if err := b.firstError(); err != nil {
			return nil, err
		}
	}
	if err := b.mergeDicts(); err != nil {
		return nil, err
	}
	return b.finish()
}

// parseChunk parses the active columns of every line of c. In the first
// pass it also collects the ids and, for inferred columns, their masks.
func (b *builder) parseChunk(c *chunk, first bool) {
	nc := len(b.cols)
	fields := make([]field, nc)
	var st lineState
	if first {
		c.ids = make([]byte, 0, len(c.data)/(nc+1)+16)
		c.offs = make([]uint32, 0, c.rows)
	}
	data := c.data
	line := c.firstLine - 1
	row := c.row0
	for len(data) > 0 {
		var l []byte
		l, data = nextLine(data)
		line++
		if blank(l) {
			continue
		}
		words := b.words[row*b.stride : (row+1)*b.stride]
		for i := range fields {
			fields[i] = field{tok: tokNull}
		}
		id, err := b.split.split(l, fields, &st)
		if err != nil {
			if _, ok := err.(*unknownKeyError); ok {
				b.unknownKey.Store(true)
			}
			c.err = &lineError{line, err.Error()}
			return
		}
		if first {
			switch {
			case len(id) == 0:
				c.err = &lineError{line, fmt.Sprintf("column %q: empty id", b.idCol)}
				return
			case len(id) > b.cfg.MaxIDLen:
				c.err = &lineError{line, fmt.Sprintf("column %q: id of %d bytes exceeds the limit of %d", b.idCol, len(id), b.cfg.MaxIDLen)}
				return
			}
			c.offs = append(c.offs, uint32(len(c.ids)))
			c.ids = append(c.ids, id...)
		}
		for i := range fields {
			if !b.active[i] {
				continue
			}
			if f := &fields[i]; f.numOK && b.cols[i].Kind == KindNumber {
				// store's first fast path, inlined: most values take it.
				words[b.cols[i].off] = math.Float32bits(f.num)
				c.masks[i] &= maskNumber
				continue
			}
			if err := b.store(c, i, words, fields[i], first && b.infer[i]); err != nil {
				// The value is left out: errors go to logs, which carry
				// no customer data; the line and column find it.
				c.err = &lineError{line, fmt.Sprintf("column %q: cannot parse the value as %s: %s", b.cols[i].Name, b.cols[i].Kind, err)}
				return
			}
		}
		row++
	}
}

// store parses f into column i of the row whose values are words. When
// infer is set the column is assumed numeric until a value says otherwise,
// and its mask is updated.
func (b *builder) store(c *chunk, i int, words []uint32, f field, infer bool) error {
	col := &b.cols[i]
	w := words[col.off : col.off+width(col.Kind)]
	// Fast paths: a plain decimal in a (presumed) number column.
	if col.Kind == KindNumber && f.numOK {
		w[0] = math.Float32bits(f.num)
		if infer {
			c.masks[i] &= maskNumber
		}
		return nil
	}
	if col.Kind == KindNumber && f.tok != tokBool && len(f.b) > 0 && !(infer && c.notNum[i]) {
		if v, ok := parseDecimal(f.b); ok {
			w[0] = math.Float32bits(v)
			if infer {
				c.masks[i] &= maskNumber
			}
			return nil
		}
	}
	if infer {
		if f.missing() {
			w[0] = nanWord
			return nil
		}
		if !c.notNum[i] && f.tok != tokBool {
			if v, err := parseNumber(f.b); err == nil {
				w[0] = math.Float32bits(v)
				c.masks[i] &= maskNumber
				return nil
			}
		}
		c.notNum[i] = true
		c.masks[i] &= classify(f)
		return nil
	}
	missing := f.missing()
	switch col.Kind {
	case KindNumber:
		if missing {
			w[0] = nanWord
			return nil
		}
		if f.tok == tokBool {
			return errNotNumber
		}
		v, err := parseNumber(f.b)
		if err != nil {
			return err
		}
		w[0] = math.Float32bits(v)
	case KindBool:
		if missing {
			w[0] = nanWord
			return nil
		}
		v, err := parseBoolText(f.b, false)
		if err != nil {
			return err
		}
		w[0] = math.Float32bits(v)
	case KindTime:
		if missing {
			putTime(w, missingTime)
			return nil
		}
		if f.tok == tokNumber || (len(f.b) > 0 && len(f.b) < 19 && f.b[0] >= '0' && f.b[0] <= '9' && bytes.IndexByte(f.b, '-') < 0) {
			v, err := parseUnix(f.b)
			if err != nil {
				return err
			}
			putTime(w, v)
			return nil
		}
		v, err := parseTimeText(f.b)
		if err != nil {
			return err
		}
		putTime(w, v)
	case KindCategory:
		if missing {
			w[0] = missingCode
			return nil
		}
		d := c.dicts[i]
		if d == nil {
			d = make(map[string]int32)
			c.dicts[i] = d
		}
		code, ok := d[string(f.b)]
		if !ok {
			if len(d) >= b.cfg.MaxCategories {
				return fmt.Errorf("more than %d distinct values", b.cfg.MaxCategories)
			}
			code = int32(len(d))
			s := string(f.b)
			d[s] = code
			c.vals[i] = append(c.vals[i], s)
		}
		w[0] = uint32(code)
	}
	return nil
}

// parseUnix parses an integer number of unix seconds.
func parseUnix(b []byte) (int64, error) {
	v, ok := digits(b)
	if !ok || len(b) > 12 {
		return 0, errNotTime
	}
	return int64(v), nil
}

// mergeDicts gives every category column one sorted dictionary and rewrites
// the chunk-local codes.
func (b *builder) mergeDicts() error {
	var cats []int
	for i := range b.cols {
		col := &b.cols[i]
		if col.Kind != KindCategory {
			continue
		}
		set := make(map[string]int32)
		for _, c := range b.chunks {
			for _, v := range c.vals[i] {
				set[v] = 0
			}
		}
		if len(set) > b.cfg.MaxCategories {
			return fmt.Errorf("cannot load snapshot %q: column %q: more than %d distinct values", b.name, col.Name, b.cfg.MaxCategories)
		}
		dict := make([]string, 0, len(set))
		for v := range set {
			dict = append(dict, v)
		}
		slices.Sort(dict)
		for code, v := range dict {
			set[v] = int32(code)
		}
		col.dict, col.codes = dict, set
		cats = append(cats, i)
	}
	if len(cats) == 0 {
		return nil
	}
	// One pass over the rows rewrites the codes of every category column.
	b.parallel(func(c *chunk, _ int) {
		remaps := make([][]int32, len(cats))
		offs := make([]int, len(cats))
		for k, i := range cats {
			col := &b.cols[i]
			remaps[k] = make([]int32, len(c.vals[i]))
			for local, v := range c.vals[i] {
				remaps[k][local] = col.codes[v]
			}
			offs[k] = col.off
		}
		for r := c.row0; r < c.row0+c.rows; r++ {
			words := b.words[r*b.stride : (r+1)*b.stride]
			for k, off := range offs {
				if v := int32(words[off]); v >= 0 {
					words[off] = uint32(remaps[k][v])
				}
			}
		}
	})
	return nil
}

// finish joins the ids, builds the index and the public column list.
func (b *builder) finish() (*Snapshot, error) {
	total := 0
	for _, c := range b.chunks {
		total += len(c.ids)
	}
	if total > math.MaxUint32 {
		return nil, fmt.Errorf("cannot load snapshot %q: %d bytes of ids exceed the limit of 4 GiB", b.name, total)
	}
	s := &Snapshot{
		rows:   b.rows,
		words:  b.words,
		stride: b.stride,
		cols:   b.cols,
		ids:    make([]byte, 0, total),
		idOffs: make([]uint32, 0, b.rows+1),
		byName: make(map[string]int, len(b.cols)),
	}
	for _, c := range b.chunks {
		base := uint32(len(s.ids))
		s.ids = append(s.ids, c.ids...)
		for _, o := range c.offs {
			s.idOffs = append(s.idOffs, base+o)
		}
		c.ids, c.offs = nil, nil
	}
	s.idOffs = append(s.idOffs, uint32(len(s.ids)))
	b.chunks = nil
	finishColumns(s)
	if err := s.buildIndex(); err != nil {
		return nil, fmt.Errorf("cannot load snapshot %q: column %q: %w", b.name, b.idCol, err)
	}
	return s, nil
}

// finishColumns fills the public column list and the name index.
func finishColumns(s *Snapshot) {
	s.columns = make([]Column, len(s.cols))
	s.byName = make(map[string]int, len(s.cols))
	for i := range s.cols {
		s.columns[i] = s.cols[i].Column
		s.byName[s.cols[i].Name] = i
	}
}
