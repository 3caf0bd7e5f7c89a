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

// alloc allocates storage for the active columns according to their kind.
func (b *builder) alloc() {
	for i := range b.cols {
		if !b.active[i] {
			continue
		}
		c := &b.cols[i]
		switch c.Kind {
		case KindNumber, KindBool:
			if len(c.f32) != b.rows {
				c.f32 = make([]float32, b.rows)
			}
		case KindTime:
			c.i64 = make([]int64, b.rows)
		case KindCategory:
			c.cat = make([]int32, b.rows)
		}
	}
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
	b.alloc()
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
		b.alloc()
		b.parallel(func(c *chunk, _ int) { b.parseChunk(c, false) })
		if err := b.firstError(); err != nil {
			return nil, err
		}
	}
	for i := range b.cols {
		if b.cols[i].Kind != KindNumber && b.cols[i].Kind != KindBool {
			b.cols[i].f32 = nil
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
				b.cols[i].f32[row] = f.num
				c.masks[i] &= maskNumber
				continue
			}
			if err := b.store(c, i, row, fields[i], first && b.infer[i]); err != nil {
				c.err = &lineError{line, fmt.Sprintf("column %q: cannot parse %q as %s: %s", b.cols[i].Name, fields[i].b, b.cols[i].Kind, err)}
				return
			}
		}
		row++
	}
}

// store parses f into column i at row. When infer is set the column is
// assumed numeric until a value says otherwise, and its mask is updated.
func (b *builder) store(c *chunk, i, row int, f field, infer bool) error {
	col := &b.cols[i]
	// Fast paths: a plain decimal in a (presumed) number column.
	if col.Kind == KindNumber && f.numOK {
		col.f32[row] = f.num
		if infer {
			c.masks[i] &= maskNumber
		}
		return nil
	}
	if col.Kind == KindNumber && f.tok != tokBool && len(f.b) > 0 && !(infer && c.notNum[i]) {
		if v, ok := parseDecimal(f.b); ok {
			col.f32[row] = v
			if infer {
				c.masks[i] &= maskNumber
			}
			return nil
		}
	}
	if infer {
		if f.missing() {
			col.f32[row] = float32(math.NaN())
			return nil
		}
		if !c.notNum[i] && f.tok != tokBool {
			if v, err := parseNumber(f.b); err == nil {
				col.f32[row] = v
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
			col.f32[row] = float32(math.NaN())
			return nil
		}
		if f.tok == tokBool {
			return errNotNumber
		}
		v, err := parseNumber(f.b)
		if err != nil {
			return err
		}
		col.f32[row] = v
	case KindBool:
		if missing {
			col.f32[row] = float32(math.NaN())
			return nil
		}
		v, err := parseBoolText(f.b, false)
		if err != nil {
			return err
		}
		col.f32[row] = v
	case KindTime:
		if missing {
			col.i64[row] = missingTime
			return nil
		}
		if f.tok == tokNumber || (len(f.b) > 0 && len(f.b) < 19 && f.b[0] >= '0' && f.b[0] <= '9' && bytes.IndexByte(f.b, '-') < 0) {
			v, err := parseUnix(f.b)
			if err != nil {
				return err
			}
			col.i64[row] = v
			return nil
		}
		v, err := parseTimeText(f.b)
		if err != nil {
			return err
		}
		col.i64[row] = v
	case KindCategory:
		if missing {
			col.cat[row] = -1
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
		col.cat[row] = code
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
		b.parallel(func(c *chunk, _ int) {
			if len(c.vals[i]) == 0 {
				return
			}
			remap := make([]int32, len(c.vals[i]))
			for local, v := range c.vals[i] {
				remap[local] = set[v]
			}
			for r := c.row0; r < c.row0+c.rows; r++ {
				if v := col.cat[r]; v >= 0 {
					col.cat[r] = remap[v]
				}
			}
		})
	}
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
