package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// pqColumn describes how one Parquet leaf column is read.
type pqColumn struct {
	leaf    int // leaf index in the file
	name    string
	feature int // feature column index, -1 for the id
	kind    Kind
	// timeMul and timeDiv convert a time value to seconds: dates are
	// multiplied by 86400, timestamps divided by 1e3/1e6/1e9.
	timeMul, timeDiv int64
	isByte           bool // BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY
}

// parseParquet parses the Parquet file of size bytes read through ra. Column chunks are decoded
// in parallel, one column per task, straight into the final table (each
// task writes its column's words in every row).
func parseParquet(name string, ra io.ReaderAt, size int64, cfg Config) (s *Snapshot, err error) {
	// A corrupt file can make the decoder panic; report it as an error.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("cannot load snapshot %q: corrupt parquet file: %v", name, r)
		}
	}()
	if err := checkParquetFrame(ra, size); err != nil {
		return nil, fmt.Errorf("cannot load snapshot %q: %w", name, err)
	}
	f, err := parquet.OpenFile(ra, size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return nil, fmt.Errorf("cannot load snapshot %q: cannot open parquet file: %w", name, err)
	}
	idName := cfg.IDColumn
	if cfg.Schema != nil && cfg.Schema.ID != "" {
		idName = cfg.Schema.ID
	}
	var pcs []pqColumn
	var cols []column
	idLeaf := -1
	for i, fl := range f.Schema().Fields() {
		if !fl.Leaf() || fl.Repeated() {
			return nil, fmt.Errorf("cannot load snapshot %q: column %q: only flat schemas of scalar columns are supported", name, fl.Name())
		}
		pc, err := pqKind(fl)
		if err != nil {
			return nil, fmt.Errorf("cannot load snapshot %q: column %q: %w", name, fl.Name(), err)
		}
		pc.leaf, pc.name = i, fl.Name()
		if pc.name == idName && idLeaf < 0 {
			if k := fl.Type().Kind(); !pc.isByte && k != parquet.Int32 && k != parquet.Int64 || pc.kind == KindTime {
				return nil, fmt.Errorf("cannot load snapshot %q: id column %q must be a string or an integer", name, idName)
			}
			idLeaf, pc.feature = i, -1
		} else {
			pc.feature = len(cols)
			cols = append(cols, column{Column: Column{Name: pc.name, Kind: pc.kind}})
		}
		pcs = append(pcs, pc)
	}
	if idLeaf < 0 {
		return nil, fmt.Errorf("cannot load snapshot %q: no id column %q", name, idName)
	}
	b := &builder{name: name, cfg: cfg, cols: cols, idCol: idName}
	if err := b.applySchema(); err != nil {
		return nil, fmt.Errorf("cannot load snapshot %q: %w", name, err)
	}
	for i := range pcs {
		if c := pcs[i].feature; c >= 0 && cols[c].Kind != pcs[i].kind {
			return nil, fmt.Errorf("cannot load snapshot %q: column %q: declared %s, the file holds %s", name, pcs[i].name, cols[c].Kind, pcs[i].kind)
		}
	}

	groups := f.RowGroups()
	starts := make([]int, len(groups)+1)
	for g, rg := range groups {
		n := rg.NumRows()
		if n < 0 || int64(starts[g])+n > math.MaxInt32-1 {
			return nil, fmt.Errorf("cannot load snapshot %q: row group %d: too many rows", name, g)
		}
		starts[g+1] = starts[g] + int(n)
	}
	rows := starts[len(groups)]
	if int64(rows) > size*8+64 {
		// Every row holds at least one id value; a footer claiming far more
		// rows than the file can hold is corrupt (and would allocate a lot).
		return nil, fmt.Errorf("cannot load snapshot %q: footer claims %d rows in %d bytes", name, rows, size)
	}
	b.rows = rows
	b.layoutRows()
	b.grow(rows)
	s = &Snapshot{rows: rows, segs: b.segs, shift: b.shift, stride: b.stride, cols: b.cols}

	errs := make([]error, len(pcs))
	remaps := make([][]int32, len(cols))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(cfg.Workers, len(pcs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t := int(next.Add(1) - 1)
				if t >= len(pcs) {
					return
				}
				pc := &pcs[t]
				remap, err := b.readParquetColumn(s, pc, groups, starts)
				if pc.feature >= 0 {
					remaps[pc.feature] = remap
				}
				errs[t] = err
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("cannot load snapshot %q: %w", name, err)
		}
	}
	remapCategories(s, remaps, cfg.Workers)
	finishColumns(s)
	if err := s.buildIndex(); err != nil {
		return nil, fmt.Errorf("cannot load snapshot %q: column %q: %w", name, idName, err)
	}
	return s, nil
}

// pqKind maps a Parquet leaf type to a column kind.
func pqKind(fl parquet.Field) (pqColumn, error) {
	t := fl.Type()
	lt := t.LogicalType()
	var pc pqColumn
	switch t.Kind() {
	case parquet.Boolean:
		pc.kind = KindBool
	case parquet.Int32:
		pc.kind = KindNumber
		if lt != nil {
			if _, ok := lt.Value.(*format.DateType); ok {
				pc.kind, pc.timeMul, pc.timeDiv = KindTime, 86400, 1
			}
		}
	case parquet.Int64:
		pc.kind = KindNumber
		if lt != nil {
			if ts, ok := lt.Value.(*format.TimestampType); ok {
				pc.kind, pc.timeMul = KindTime, 1
				switch ts.Unit.Value.(type) {
				case *format.MilliSeconds:
					pc.timeDiv = 1e3
				case *format.MicroSeconds:
					pc.timeDiv = 1e6
				case *format.NanoSeconds:
					pc.timeDiv = 1e9
				default:
					return pc, errors.New("timestamp without a unit")
				}
			}
		}
	case parquet.Float, parquet.Double:
		pc.kind = KindNumber
	case parquet.ByteArray, parquet.FixedLenByteArray:
		pc.kind, pc.isByte = KindCategory, true
	default:
		return pc, fmt.Errorf("unsupported parquet type %s", t)
	}
	return pc, nil
}

// remapCategories rewrites the codes of every category column, which
// readParquetColumn left in order of first appearance, to their positions
// in the sorted dictionaries: remaps[c] maps the codes of column c. One
// pass over the rows serves every column.
func remapCategories(s *Snapshot, remaps [][]int32, workers int) {
	var offs []int
	var maps [][]int32
	for c, remap := range remaps {
		if s.cols[c].Kind == KindCategory && len(remap) > 0 {
			offs = append(offs, s.cols[c].off)
			maps = append(maps, remap)
		}
	}
	if len(offs) == 0 {
		return
	}
	parallelRows(s.rows, workers, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			words := s.row(r)
			for k, off := range offs {
				if v := int32(words[off]); v >= 0 {
					words[off] = uint32(maps[k][v])
				}
			}
		}
	})
}

// readParquetColumn decodes one leaf column across all row groups. For a
// category column it returns the map from the codes it stored (in order of
// first appearance) to those of the sorted dictionary; see remapCategories.
func (b *builder) readParquetColumn(s *Snapshot, pc *pqColumn, groups []parquet.RowGroup, starts []int) (remap []int32, err error) {
	defer func() {
		if r := recover(); r != nil {
			remap, err = nil, fmt.Errorf("column %q: corrupt parquet data: %v", pc.name, r)
		}
	}()
	var col *column
	var dict map[string]int32
	var vals []string
	if pc.feature >= 0 {
		col = &b.cols[pc.feature]
		if col.Kind == KindCategory {
			dict = make(map[string]int32)
		}
	} else {
		s.idOffs = make([]uint32, 0, starts[len(starts)-1]+1)
	}
	var num [24]byte
	buf := make([]parquet.Value, 1024)
	for g, rg := range groups {
		chunks := rg.ColumnChunks()
		if pc.leaf >= len(chunks) {
			return nil, fmt.Errorf("row group %d: column %q: missing column chunk", g, pc.name)
		}
		row, end := starts[g], starts[g+1]
		pages := chunks[pc.leaf].Pages()
		for {
			page, err := pages.ReadPage()
			if err == io.EOF {
				break
			}
			if err != nil {
				pages.Close()
				return nil, fmt.Errorf("row group %d: column %q: %w", g, pc.name, err)
			}
			vr := page.Values()
			for {
				n, err := vr.ReadValues(buf)
				for _, v := range buf[:n] {
					if row >= end {
						parquet.Release(page)
						pages.Close()
						return nil, fmt.Errorf("row group %d: column %q: more values than the %d rows of the group", g, pc.name, end-starts[g])
					}
					if pc.feature < 0 {
						var id []byte
						switch {
						case v.IsNull():
						case pc.isByte:
							id = v.ByteArray()
						case v.Kind() == parquet.Int32:
							id = strconv.AppendInt(num[:0], int64(v.Int32()), 10)
						default:
							id = strconv.AppendInt(num[:0], v.Int64(), 10)
						}
						if len(id) == 0 || len(id) > b.cfg.MaxIDLen {
							parquet.Release(page)
							pages.Close()
							return nil, fmt.Errorf("row group %d: row %d: column %q: empty id or id longer than %d bytes", g, row-starts[g]+1, pc.name, b.cfg.MaxIDLen)
						}
						if len(s.ids)+len(id) > math.MaxUint32 {
							parquet.Release(page)
							pages.Close()
							return nil, errors.New("ids exceed the limit of 4 GiB")
						}
						s.idOffs = append(s.idOffs, uint32(len(s.ids)))
						s.ids = append(s.ids, id...)
					} else if err := pqStore(s.row(row), col, pc, dict, &vals, v, b.cfg.MaxCategories); err != nil {
						parquet.Release(page)
						pages.Close()
						return nil, fmt.Errorf("row group %d: row %d: column %q: %w", g, row-starts[g]+1, pc.name, err)
					}
					row++
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					parquet.Release(page)
					pages.Close()
					return nil, fmt.Errorf("row group %d: column %q: %w", g, pc.name, err)
				}
			}
			parquet.Release(page)
		}
		pages.Close()
		if row != end {
			return nil, fmt.Errorf("row group %d: column %q: %d values for %d rows", g, pc.name, row-starts[g], end-starts[g])
		}
	}
	if pc.feature < 0 {
		s.idOffs = append(s.idOffs, uint32(len(s.ids)))
		return nil, nil
	}
	if col.Kind == KindCategory {
		sorted := slices.Clone(vals)
		slices.Sort(sorted)
		for code, v := range sorted {
			dict[v] = int32(code)
		}
		remap = make([]int32, len(vals))
		for local, v := range vals {
			remap[local] = dict[v]
		}
		col.dict, col.codes = sorted, dict
	}
	return remap, nil
}

// pqStore writes one Parquet value into a column of the row whose values
// are words.
func pqStore(words []uint32, col *column, pc *pqColumn, dict map[string]int32, vals *[]string, v parquet.Value, maxCat int) error {
	w := words[col.off : col.off+width(col.Kind)]
	null := v.IsNull()
	switch col.Kind {
	case KindNumber:
		var f float32
		switch {
		case null:
			f = float32(math.NaN())
		case v.Kind() == parquet.Float:
			f = v.Float()
		case v.Kind() == parquet.Double:
			f = float32(v.Double())
		case v.Kind() == parquet.Int32:
			f = float32(v.Int32())
		case v.Kind() == parquet.Int64:
			f = float32(v.Int64())
		default:
			return fmt.Errorf("unexpected %s value", v.Kind())
		}
		w[0] = math.Float32bits(f)
	case KindBool:
		switch {
		case null:
			w[0] = nanWord
		case v.Boolean():
			w[0] = math.Float32bits(1)
		default:
			w[0] = math.Float32bits(0)
		}
	case KindTime:
		switch {
		case null:
			putTime(w, missingTime)
		case v.Kind() == parquet.Int32:
			putTime(w, int64(v.Int32())*pc.timeMul)
		default:
			putTime(w, v.Int64()/pc.timeDiv)
		}
	case KindCategory:
		if null {
			w[0] = missingCode
			return nil
		}
		bs := v.ByteArray()
		code, ok := dict[string(bs)]
		if !ok {
			if len(dict) >= maxCat {
				return fmt.Errorf("more than %d distinct values", maxCat)
			}
			code = int32(len(dict))
			str := string(bs)
			dict[str] = code
			*vals = append(*vals, str)
		}
		w[0] = uint32(code)
	}
	return nil
}

// checkParquetFrame validates the magic bytes and the footer length before
// the file reaches the Parquet decoder, which would otherwise allocate
// whatever length a corrupt footer claims.
func checkParquetFrame(ra io.ReaderAt, size int64) error {
	var head, tail [8]byte
	if size < 12 {
		return errors.New("not a parquet file: too short or no header magic")
	}
	if _, err := ra.ReadAt(head[:4], 0); err != nil || !bytes.HasPrefix(head[:4], magicParquet) {
		return errors.New("not a parquet file: too short or no header magic")
	}
	if _, err := ra.ReadAt(tail[:], size-8); err != nil {
		return fmt.Errorf("cannot read parquet footer: %w", err)
	}
	if string(tail[4:]) != "PAR1" {
		return fmt.Errorf("not a plain parquet file: footer magic %q (encrypted files are not supported)", tail[4:])
	}
	footer := int64(tail[0]) | int64(tail[1])<<8 | int64(tail[2])<<16 | int64(tail[3])<<24
	if footer > size-12 {
		return fmt.Errorf("corrupt parquet file: footer of %d bytes in a file of %d", footer, size)
	}
	return nil
}
