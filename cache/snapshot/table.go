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

// chunk is a run of whole lines parsed by one worker. A chunk's text is
// held only while its block is parsed; what it keeps (ids, masks,
// dictionaries) is what the text left in the table's side.
type chunk struct {
	data      []byte
	n         int // len(data), to check that a later pass sees the same text
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
	// segs, shift and stride are the snapshot's row-major values (see
	// Snapshot).
	segs   [][]uint32
	shift  uint
	stride int
	// skip is the number of lines at the start of the text that are not
	// rows (CSV: the header and blank lines before it).
	skip int
	// expect is the number of rows the file is expected to hold, from its
	// (decompressed) size and the first block, or 0 when unknown.
	expect int
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

// cutBlock splits a block of whole lines into about two chunks per worker
// at line boundaries and counts their lines and rows. firstLine and row0
// are the line number and the row of the block's first line.
func (b *builder) cutBlock(block []byte, firstLine, row0 int) (chunks []*chunk, lines, rows int, err error) {
	size := len(block)/(b.cfg.Workers*2) + 1
	for len(block) > 0 {
		end := min(size, len(block))
		if end < len(block) {
			if i := bytes.IndexByte(block[end:], '\n'); i >= 0 {
				end += i + 1
			} else {
				end = len(block)
			}
		}
		chunks = append(chunks, &chunk{data: block[:end], n: end})
		block = block[end:]
	}
	counts := make([]int, len(chunks))
	parallelChunks(chunks, b.cfg.Workers, func(c *chunk, i int) {
		data := c.data
		for len(data) > 0 {
			var line []byte
			line, data = nextLine(data)
			counts[i]++
			if !blank(line) {
				c.rows++
			}
		}
	})
	row, line := row0, firstLine
	for i, c := range chunks {
		c.row0, c.firstLine = row, line
		row += c.rows
		line += counts[i]
	}
	if row > math.MaxInt32-1 {
		return nil, 0, 0, fmt.Errorf("cannot load snapshot %q: more than %d rows", b.name, math.MaxInt32-1)
	}
	return chunks, line - firstLine, row - row0, nil
}

// pass parses the rows of src's text block by block. The first pass cuts
// the chunks, grows the table, collects ids and infers kinds; a later pass
// (inference found non-numeric columns) reads the text again, checks that
// it cuts into the same chunks, and parses the active columns only. It
// stops at the first block with an error, reporting its first line.
func (b *builder) pass(src *source, first bool) error {
	line, row, next := 1, 0, 0
	skip := b.skip
	version := src.version
	nc := len(b.cols)
	err := src.scan(func(block []byte) error {
		if line == 1 {
			block = bytes.TrimPrefix(block, []byte("\ufeff"))
		}
		for ; skip > 0 && len(block) > 0; skip-- {
			_, block = nextLine(block)
			line++
		}
		chunks, lines, rows, err := b.cutBlock(block, line, row)
		if err != nil {
			return err
		}
		if first {
			if row == 0 && rows > 0 && len(block) > 0 {
				if size := src.textSize(); size > 0 {
					b.expect = int(min(size/int64(len(block))*int64(rows)+int64(rows)/16, math.MaxInt32))
				}
			}
			b.grow(row + rows)
			for _, c := range chunks {
				c.masks = make([]uint8, nc)
				for i := range c.masks {
					c.masks[i] = maskAll
				}
				c.notNum = make([]bool, nc)
				c.dicts = make([]map[string]int32, nc)
				c.vals = make([][]string, nc)
			}
			b.chunks = append(b.chunks, chunks...)
		} else {
			for i, c := range chunks {
				if next+i >= len(b.chunks) || b.chunks[next+i].n != c.n || b.chunks[next+i].rows != c.rows {
					return fmt.Errorf("cannot load snapshot %q: the file changed while it was read", b.name)
				}
				b.chunks[next+i].data = c.data
			}
			chunks = b.chunks[next : next+len(chunks)]
		}
		next += len(chunks)
		line += lines
		row += rows
		parallelChunks(chunks, b.cfg.Workers, func(c *chunk, _ int) { b.parseChunk(c, first) })
		for _, c := range chunks {
			c.data = nil
		}
		return firstError(b.name, chunks)
	})
	if err != nil {
		return err
	}
	if first {
		b.rows = row
	} else if next != len(b.chunks) || (src.hash && src.version != version) {
		return fmt.Errorf("cannot load snapshot %q: the file changed while it was read", b.name)
	}
	return nil
}

// parallel runs fn on every chunk with cfg.Workers goroutines.
func (b *builder) parallel(fn func(c *chunk, i int)) {
	parallelChunks(b.chunks, b.cfg.Workers, fn)
}

// parallelChunks runs fn on every chunk with workers goroutines.
func parallelChunks(chunks []*chunk, workers int, fn func(c *chunk, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				fn(chunks[i], i)
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

// firstError returns the error at the smallest line of chunks, if any.
func firstError(name string, chunks []*chunk) error {
	var first *lineError
	for _, c := range chunks {
		if c.err != nil && (first == nil || c.err.line < first.line) {
			first = c.err
		}
	}
	if first == nil {
		return nil
	}
	return fmt.Errorf("cannot load snapshot %q: line %d: %s", name, first.line, first.msg)
}

// segWords is the size of a segment of the table in words (4 MiB); a
// variable for tests.
var segWords = 1 << 20

// segShift returns log2 of the rows of one segment of the table for rows
// of stride words: segments of about segWords, at least 64 rows.
func segShift(stride int) uint {
	shift := uint(20)
	for shift > 6 && stride<<shift > segWords {
		shift--
	}
	return shift
}

// row returns the words of row r.
func (b *builder) row(r int) []uint32 {
	seg := b.segs[r>>b.shift]
	i := (r & (1<<b.shift - 1)) * b.stride
	return seg[i : i+b.stride : i+b.stride]
}

// layoutRows lays out the columns by their current kinds and chooses the
// segment size; the table is empty until grow.
func (b *builder) layoutRows() {
	b.stride = layout(b.cols)
	b.shift = segShift(b.stride)
	b.segs = nil
}

// grow makes the table hold rows rows. Segments before the last are full.
// A segment is allocated at the size the expected rows give it (without an
// expectation: the first at what the first block needs, later ones full)
// and doubles when the file holds more. So growing copies at most part of
// one segment, and the table never needs a second copy of itself.
func (b *builder) grow(rows int) {
	if rows == 0 {
		return
	}
	full := b.stride << b.shift
	last := (rows - 1) >> b.shift
	for k := max(len(b.segs)-1, 0); k <= last; k++ {
		need := full
		if k == last {
			need = (rows - last<<b.shift) * b.stride
		}
		have := 0
		if k < len(b.segs) {
			have = len(b.segs[k])
		}
		if k < len(b.segs) && have >= need {
			continue
		}
		size := full
		if b.expect > 0 || k == 0 {
			size = min(full, max(need, 2*have, (b.expect-k<<b.shift)*b.stride))
		}
		seg := make([]uint32, size)
		if k < len(b.segs) {
			copy(seg, b.segs[k])
			b.segs[k] = seg
		} else {
			b.segs = append(b.segs, seg)
		}
	}
}

// trim gives the last segment its exact size (a copy of at most one
// segment).
func (b *builder) trim() {
	if len(b.segs) == 0 {
		return
	}
	k := len(b.segs) - 1
	if want := (b.rows - k<<b.shift) * b.stride; len(b.segs[k]) > want {
		seg := make([]uint32, want)
		copy(seg, b.segs[k])
		b.segs[k] = seg
	}
}

// relayout gives the columns the offsets of their final kinds before the
// second pass. The first pass took every inferred column for a number, one
// word per row; a column found to hold times takes two, which moves every
// column after it. Then the rows are copied into new segments, one segment
// at a time (the old one is dropped as soon as it is copied): only the
// columns kept from the first pass, since the second pass rewrites every
// word of the others.
func (b *builder) relayout() {
	offs := make([]int, len(b.cols))
	for i := range b.cols {
		offs[i] = b.cols[i].off
	}
	oldStride := b.stride
	if layout(b.cols) == oldStride {
		return // no width changed, so neither did any offset
	}
	b.stride = layout(b.cols)
	for k, old := range b.segs {
		n := len(old) / max(oldStride, 1)
		seg := make([]uint32, n*b.stride)
		for r := range n {
			src := old[r*oldStride : (r+1)*oldStride]
			dst := seg[r*b.stride : (r+1)*b.stride]
			for i := range b.cols {
				if !b.active[i] {
					copy(dst[b.cols[i].off:b.cols[i].off+width(b.cols[i].Kind)], src[offs[i]:])
				}
			}
		}
		b.segs[k] = seg
	}
}

// build parses every line of src's text into the columns and returns the
// snapshot. b.cols holds the columns with their kinds; b.infer marks those
// to infer.
func (b *builder) build(src *source) (*Snapshot, error) {
	nc := len(b.cols)
	b.active = make([]bool, nc)
	for i := range b.active {
		b.active[i] = true
		if b.infer[i] {
			b.cols[i].Kind = KindNumber
		}
	}
	b.layoutRows()
	if err := b.pass(src, true); err != nil {
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
		if err := b.pass(src, false); err != nil {
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
		words := b.row(row)
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
			words := b.row(r)
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
	b.trim()
	s := &Snapshot{
		rows:   b.rows,
		segs:   b.segs,
		shift:  b.shift,
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
