package snapshot

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// want is the expected content of the sample snapshot used by the format
// tests: three customers, a number, a category, a time and a bool column.
type wantRow struct {
	id    string
	score float32
	seg   string // "" missing
	seen  int64  // missingTime when missing
	vip   float32
}

var sampleRows = []wantRow{
	{"c1", 1.5, "gold", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Unix(), 1},
	{"c2", nan, "silver", missingTime, 0},
	{"c3", -2, "", time.Date(2024, 3, 2, 10, 30, 0, 0, time.UTC).Unix(), nan},
}

const sampleCSV = "id,score,segment,last_seen,vip\n" +
	"c1,1.5,gold,2024-03-01,true\n" +
	"c2,NA,silver,,false\n" +
	"\n" +
	"c3,-2,,2024-03-02T10:30:00Z,null\n"

const sampleTSV = "id\tscore\tsegment\tlast_seen\tvip\r\n" +
	"c1\t1.5\tgold\t2024-03-01\tTRUE\r\n" +
	"c2\tnan\tsilver\tNA\tfalse\r\n" +
	"c3\t-2\tN/A\t2024-03-02 10:30:00\t\r\n"

const sampleJSONL = `{"id":"c1","score":1.5,"segment":"gold","last_seen":"2024-03-01","vip":true}
{"id":"c2","score":null,"segment":"silver","vip":false}

{"vip":null,"id":"c3","score":-2,"segment":null,"last_seen":"2024-03-02T10:30:00Z"}
`

func sampleParquet(t testing.TB) []byte {
	day := func(y, m, d int) int32 {
		return int32(time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	}
	return writeParquet(t, []pqCol{
		{"id", parquet.String(), []any{"c1", "c2", "c3"}},
		{"score", parquet.Leaf(parquet.FloatType), []any{float32(1.5), nil, float32(-2)}},
		{"segment", parquet.String(), []any{"gold", "silver", nil}},
		{"last_seen", parquet.Timestamp(parquet.Millisecond), []any{
			int64(day(2024, 3, 1)) * 86400 * 1000, nil,
			time.Date(2024, 3, 2, 10, 30, 0, 0, time.UTC).UnixMilli()}},
		{"vip", parquet.Leaf(parquet.BooleanType), []any{true, false, nil}},
	})
}

var sampleSchema = &Schema{ID: "id", Columns: []Column{
	{"vip", KindBool}, {"score", KindNumber}, {"segment", KindCategory}, {"last_seen", KindTime},
}}

// checkSample verifies that s holds sampleRows.
func checkSample(t *testing.T, s *Snapshot) {
	t.Helper()
	if s.Len() != len(sampleRows) {
		t.Fatalf("Len() = %d, want %d", s.Len(), len(sampleRows))
	}
	col := func(name string, kind Kind) int {
		t.Helper()
		i, ok := s.ColumnIndex(name)
		if !ok {
			t.Fatalf("no column %q in %v", name, s.Columns())
		}
		if k := s.Columns()[i].Kind; k != kind {
			t.Fatalf("column %q is %s, want %s", name, k, kind)
		}
		return i
	}
	score, seg, seen, vip := col("score", KindNumber), col("segment", KindCategory), col("last_seen", KindTime), col("vip", KindBool)
	for _, w := range sampleRows {
		r, ok := s.LookupString(w.id)
		if !ok {
			t.Fatalf("Lookup(%q) not found", w.id)
		}
		if got := s.ID(r); got != w.id {
			t.Errorf("ID(%d) = %q, want %q", r, got, w.id)
		}
		if got := s.Number(score, r); !sameFloat(got, w.score) {
			t.Errorf("%s: score = %v, want %v", w.id, got, w.score)
		}
		code, ok := s.Category(seg, r)
		switch {
		case w.seg == "" && ok:
			t.Errorf("%s: segment = %d, want missing", w.id, code)
		case w.seg != "" && (!ok || s.Dict(seg)[code] != w.seg):
			t.Errorf("%s: segment = %d (ok=%v), want %q", w.id, code, ok, w.seg)
		case w.seg != "":
			if c2, ok := s.CategoryCode(seg, w.seg); !ok || c2 != code {
				t.Errorf("CategoryCode(%q) = %d, %v; want %d", w.seg, c2, ok, code)
			}
		}
		ts, ok := s.Time(seen, r)
		if (w.seen == missingTime) == ok || (ok && ts != w.seen) {
			t.Errorf("%s: last_seen = %d, %v; want %d", w.id, ts, ok, w.seen)
		}
		if got := s.Number(vip, r); !sameFloat(got, w.vip) {
			t.Errorf("%s: vip = %v, want %v", w.id, got, w.vip)
		}
	}
	if _, ok := s.LookupString("c4"); ok {
		t.Errorf("Lookup(c4) found a row")
	}
}

func TestParseFormats(t *testing.T) {
	formats := []struct {
		name string
		data func(t testing.TB) []byte
	}{
		{"csv", func(testing.TB) []byte { return []byte(sampleCSV) }},
		{"tsv", func(testing.TB) []byte { return []byte(sampleTSV) }},
		{"jsonl", func(testing.TB) []byte { return []byte(sampleJSONL) }},
		{"parquet", sampleParquet},
	}
	for _, f := range formats {
		for _, comp := range []string{"none", "zstd", "gzip"} {
			for _, schema := range []*Schema{nil, sampleSchema} {
				name := fmt.Sprintf("%s/%s/schema=%v", f.name, comp, schema != nil)
				t.Run(name, func(t *testing.T) {
					data := compress(t, f.data(t), comp)
					s, err := Parse("sample", data, Config{Schema: schema, Workers: 3})
					if err != nil {
						t.Fatal(err)
					}
					checkSample(t, s)
					if len(s.Version()) != 16 {
						t.Errorf("Version() = %q, want 16 hex digits", s.Version())
					}
				})
			}
		}
	}
}

func TestInferKinds(t *testing.T) {
	f := func(values []string, want Kind) {
		t.Helper()
		var b strings.Builder
		b.WriteString("id,x\n")
		for i, v := range values {
			fmt.Fprintf(&b, "r%d,%s\n", i, v)
		}
		s, err := Parse("infer", []byte(b.String()), Config{})
		if err != nil {
			t.Fatalf("%q: %v", values, err)
		}
		if got := s.Columns()[0].Kind; got != want {
			t.Errorf("%q: kind %s, want %s", values, got, want)
		}
	}
	f([]string{"1", "2.5", "-3e2"}, KindNumber)
	f([]string{"", "NA", "null"}, KindNumber) // all missing
	f([]string{"1", "", "x"}, KindCategory)
	f([]string{"true", "FALSE", ""}, KindBool)
	f([]string{"true", "1"}, KindCategory)
	f([]string{"2024-01-31", "2024-02-01T00:00:00+02:00", "NA"}, KindTime)
	f([]string{"2024-02-30"}, KindCategory)
	f([]string{"2024-01-31", "soon"}, KindCategory)
	f([]string{"\"a,b\"", "\"say \"\"hi\"\"\""}, KindCategory)
}

// TestInferAcrossChunks checks that a column numeric in most chunks but not
// in one is re-read whole with the inferred kind.
func TestInferAcrossChunks(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,x,y\n")
	const n = 5000
	for i := range n {
		x := fmt.Sprint(i % 7)
		if i == n-3 {
			x = "seven"
		}
		fmt.Fprintf(&b, "r%d,%s,%d\n", i, x, i)
	}
	s, err := Parse("chunks", []byte(b.String()), Config{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if k := s.Columns()[0].Kind; k != KindCategory {
		t.Fatalf("x is %s, want category", k)
	}
	for _, i := range []int{0, 1, 2500, n - 3, n - 1} {
		r, ok := s.LookupString(fmt.Sprintf("r%d", i))
		if !ok {
			t.Fatalf("r%d not found", i)
		}
		code, _ := s.Category(0, r)
		want := fmt.Sprint(i % 7)
		if i == n-3 {
			want = "seven"
		}
		if got := s.Dict(0)[code]; got != want {
			t.Errorf("r%d: x = %q, want %q", i, got, want)
		}
		if got := s.Number(1, r); got != float32(i) {
			t.Errorf("r%d: y = %v, want %d", i, got, i)
		}
	}
}

func TestParseErrors(t *testing.T) {
	schema := &Schema{Columns: []Column{{"a", KindNumber}, {"b", KindCategory}}}
	tests := []struct {
		name   string
		data   string
		schema *Schema
		want   []string // substrings of the error
	}{
		{"duplicate id", "id,a,b\nx,1,p\ny,2,q\nx,3,r\n", nil, []string{`"t"`, `column "id"`, `duplicate id`, "rows 1 and 3"}},
		{"unparsable number", "id,a,b\nx,1,p\ny,zz,q\n", schema, []string{"line 3", `column "a"`, "number"}},
		{"extra column", "id,a,b,c\nx,1,p,2\n", schema, []string{"line 1", `column "c" is not in the schema`}},
		{"missing column", "id,a\nx,1\n", schema, []string{`schema column "b" is missing`}},
		{"short line", "id,a,b\nx,1,p\ny,2\n", nil, []string{"line 3", "has 2 fields, the header has 3"}},
		{"long line", "id,a,b\nx,1,p,4\n", nil, []string{"line 2", "more than 3 fields"}},
		{"empty id", "id,a,b\n,1,p\n", nil, []string{"line 2", "empty id"}},
		{"open quote", "id,a,b\nx,\"1,p\n", nil, []string{"line 2", "unterminated quoted field"}},
		{"no header", "\n\n", nil, []string{"no header"}},
		{"duplicate header", "id,a,a\n", nil, []string{`column "a" appears twice`}},
		{"bad bool", "id,a,b\nx,1,p\n", &Schema{Columns: []Column{{"a", KindNumber}, {"b", KindBool}}}, []string{"line 2", `column "b"`, "boolean"}},
		{"bad time", "id,a,b\nx,1,p\n", &Schema{Columns: []Column{{"a", KindNumber}, {"b", KindTime}}}, []string{"line 2", `column "b"`, "date"}},
		{"jsonl no id", "{\"a\":1}\n", nil, []string{"line 1", `no id key "id"`}},
		{"jsonl unknown key", "{\"id\":\"x\",\"a\":1,\"b\":\"p\",\"z\":1}\n", schema, []string{"line 1", `key "z" is not in the schema`}},
		{"jsonl nested", "{\"id\":\"x\",\"a\":[1]}\n", nil, []string{"line 1", "nested"}},
		{"jsonl twice", "{\"id\":\"x\",\"a\":1,\"a\":2}\n", nil, []string{"line 1", `key "a" appears twice`}},
		{"jsonl string number", "{\"id\":\"x\",\"a\":\"1\",\"b\":\"p\"}\n{\"id\":\"y\",\"a\":\"q\",\"b\":\"p\"}\n", schema, []string{"line 2", `column "a"`}},
		{"jsonl bad", "{\"id\":\"x\",\"a\":tru}\n", nil, []string{"line 1", "invalid value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t", []byte(tc.data), Config{Schema: tc.schema})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParquetSchemaMismatch(t *testing.T) {
	data := sampleParquet(t)
	_, err := Parse("p.parquet", data, Config{Schema: &Schema{Columns: []Column{
		{"vip", KindBool}, {"score", KindCategory}, {"segment", KindCategory}, {"last_seen", KindTime}}}})
	if err == nil || !strings.Contains(err.Error(), `column "score": declared category, the file holds number`) {
		t.Fatalf("err = %v", err)
	}
}

func TestLimits(t *testing.T) {
	data := compress(t, []byte(strings.Repeat("id,a\n", 1)+strings.Repeat("x,1\n", 1000)), "zstd")
	_, err := Parse("big", data, Config{MaxDecompressedBytes: 100})
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit of 100 bytes") {
		t.Errorf("decompressed limit: err = %v", err)
	}
	_, err = Parse("cats", []byte("id,a\nx,p\ny,q\nz,r\n"), Config{MaxCategories: 2})
	if err == nil || !strings.Contains(err.Error(), "more than 2 distinct values") {
		t.Errorf("category limit: err = %v", err)
	}
	_, err = Parse("ids", []byte("id,a\nxxxxx,1\n"), Config{MaxIDLen: 4})
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit of 4") {
		t.Errorf("id limit: err = %v", err)
	}
}

func TestLoadAsOf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.csv")
	if err := os.WriteFile(path, []byte(sampleCSV), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.AsOf().Equal(mtime) {
		t.Errorf("AsOf() = %v, want the mtime %v", s.AsOf(), mtime)
	}
	sidecar := time.Date(2024, 4, 30, 23, 0, 0, 0, time.UTC)
	os.WriteFile(path+".asof", []byte(sidecar.Format(time.RFC3339)+"\n"), 0o644)
	if s, err = Load(path, Config{}); err != nil || !s.AsOf().Equal(sidecar) {
		t.Errorf("AsOf() = %v, %v; want the sidecar's %v", s.AsOf(), err, sidecar)
	}
	given := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if s, err = Load(path, Config{AsOf: given, Version: "v7"}); err != nil || !s.AsOf().Equal(given) || s.Version() != "v7" {
		t.Errorf("AsOf() = %v, Version() = %q, %v; want %v, v7", s.AsOf(), s.Version(), err, given)
	}
}

func TestLookupAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s, err := Parse("sample", []byte(sampleCSV), Config{})
	if err != nil {
		t.Fatal(err)
	}
	idb, ids := []byte("c2"), "c3"
	cols, row := []int{0, 1, 3}, make([]float64, 3)
	var sink float32
	allocs := testing.AllocsPerRun(1000, func() {
		r, _ := s.Lookup(idb)
		r2, _ := s.LookupString(ids)
		_, _ = s.LookupString("missing")
		sink += s.Number(0, r) + s.Number(0, r2)
		s.Time(2, r)
		s.Category(1, r)
		s.CategoryCode(1, "gold")
		s.Numbers(row, r, cols)
	})
	if allocs != 0 {
		t.Errorf("lookup and accessors allocate %v times per run, want 0", allocs)
	}
	_ = math.IsNaN(float64(sink))
}

// TestParquetHugeFooterLength is the regression test for a 16-byte file
// whose footer length (3 GB) made the decoder allocate it (found by
// FuzzParseParquet).
func TestParquetHugeFooterLength(t *testing.T) {
	data := []byte("PAR1\x15\x06\x154\x154\x15\xb6PAR1")
	_, err := Parse("tiny.parquet", data, Config{})
	if err == nil || !strings.Contains(err.Error(), "footer of 3054842901 bytes in a file of 16") {
		t.Fatalf("err = %v", err)
	}
}

// TestJSONLKeysAfterFirstLine: a key missing from the first object still
// becomes a column (the parser retries with the keys of every line).
func TestJSONLKeysAfterFirstLine(t *testing.T) {
	data := "{\"id\":\"a\",\"x\":1}\n{\"id\":\"b\",\"x\":2,\"late\":\"p\"}\n"
	s, err := Parse("late", []byte(data), Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := s.ColumnIndex("late")
	if !ok || s.Columns()[c].Kind != KindCategory {
		t.Fatalf("columns %v", s.Columns())
	}
	r, _ := s.LookupString("a")
	if _, ok := s.Category(c, r); ok {
		t.Error("a.late is not missing")
	}
	r, _ = s.LookupString("b")
	if code, ok := s.Category(c, r); !ok || s.Dict(c)[code] != "p" {
		t.Errorf("b.late = %d, %v", code, ok)
	}
}

// TestJSONLKeyOrderChanges: the parser guesses each key's column from the
// previous line; lines in other orders must still land in the right columns.
func TestJSONLKeyOrderChanges(t *testing.T) {
	data := `{"id":"a","x":1,"y":2}
{"y":4,"id":"b","x":3}
{"x":5,"y":6,"id":"c"}
{"id":"d","y":8}
`
	s, err := Parse("order", []byte(data), Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := s.ColumnIndex("x")
	y, _ := s.ColumnIndex("y")
	for i, id := range []string{"a", "b", "c", "d"} {
		r, ok := s.LookupString(id)
		if !ok {
			t.Fatalf("%s not found", id)
		}
		wantX, wantY := float32(2*i+1), float32(2*i+2)
		if id == "d" {
			wantX = nan
		}
		if gx, gy := s.Number(x, r), s.Number(y, r); !sameFloat(gx, wantX) || gy != wantY {
			t.Errorf("%s: x=%v y=%v, want %v %v", id, gx, gy, wantX, wantY)
		}
	}
}

func TestNumbers(t *testing.T) {
	s := mustParse(t, []byte(sampleCSV), Config{})
	score, _ := s.ColumnIndex("score")
	vip, _ := s.ColumnIndex("vip")
	seg, _ := s.ColumnIndex("segment")
	r, _ := s.LookupString("c2")
	dst := make([]float64, 3)
	s.Numbers(dst, r, []int{score, vip, seg})
	silver, _ := s.CategoryCode(seg, "silver")
	if !math.IsNaN(dst[0]) || dst[1] != 0 || dst[2] != float64(silver) {
		t.Errorf("Numbers = %v, want [NaN 0 %d]", dst, silver)
	}
}

// TestSchemaIDNotFirst: a declared id column may sit anywhere in a CSV.
func TestSchemaIDNotFirst(t *testing.T) {
	data := "a,cust,b\n1,x,2\n3,y,4\n"
	s, err := Parse("idcol", []byte(data), Config{Schema: &Schema{ID: "cust", Columns: []Column{{"a", KindNumber}, {"b", KindNumber}}}})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := s.LookupString("y")
	b, _ := s.ColumnIndex("b")
	if !ok || s.Number(b, r) != 4 {
		t.Fatalf("y: row %d %v, b=%v", r, ok, s.Number(b, r))
	}
	if _, err := Parse("idcol", []byte(data), Config{Schema: &Schema{ID: "customer", Columns: []Column{{"a", KindNumber}}}}); err == nil ||
		!strings.Contains(err.Error(), `no id column "customer"`) {
		t.Errorf("missing id column: %v", err)
	}
}

func TestSizeBytes(t *testing.T) {
	s := mustParse(t, genCSV(1000, 1), Config{})
	// 2 number columns of 1000 float32, ids "c0".."c999" (3890 bytes),
	// 1001 offsets and 2048 slots of the id table.
	want := int64(2*4*1000 + 3890 + 4*1001 + 8*2048)
	if got := s.SizeBytes(); got != want {
		t.Errorf("SizeBytes() = %d, want %d", got, want)
	}
}

// TestInferredTimeMovesRows: an inferred column first read as a number and
// then found to hold times takes two words instead of one, so every row is
// laid out again; the numbers already parsed after it must move with it.
// Times before 1970 and after 2106 check both halves of the stored value.
func TestInferredTimeMovesRows(t *testing.T) {
	const n = 5000
	day := func(i int) int64 {
		return time.Date(1900+i%400, 1, 1+i%28, 0, 0, 0, 0, time.UTC).Unix()
	}
	var b strings.Builder
	b.WriteString("id,a,t,b,c,d\n")
	for i := range n {
		ts := time.Unix(day(i), 0).UTC().Format(time.DateOnly)
		if i%11 == 0 {
			ts = ""
		}
		fmt.Fprintf(&b, "r%d,%d,%s,%d,k%d,%d\n", i, i, ts, -i, i%5, i%3)
	}
	s, err := Parse("relayout", []byte(b.String()), Config{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []Kind{KindNumber, KindTime, KindNumber, KindCategory, KindNumber}
	for c, k := range kinds {
		if got := s.Columns()[c].Kind; got != k {
			t.Fatalf("column %d is %s, want %s", c, got, k)
		}
	}
	words := 0
	for _, seg := range s.segs {
		words += len(seg)
	}
	if s.stride != 6 || words != 6*n {
		t.Fatalf("%d words of %d per row, want %d of 6", words, s.stride, 6*n)
	}
	dst := make([]float64, 5)
	for i := range n {
		r, ok := s.LookupString(fmt.Sprintf("r%d", i))
		if !ok {
			t.Fatalf("r%d not found", i)
		}
		ts, ok := s.Time(1, r)
		if missing := i%11 == 0; ok == missing || (ok && ts != day(i)) {
			t.Fatalf("r%d: t = %d, %v; want %d", i, ts, ok, day(i))
		}
		code, ok := s.Category(3, r)
		if !ok || s.Dict(3)[code] != fmt.Sprintf("k%d", i%5) {
			t.Fatalf("r%d: c = %d, %v", i, code, ok)
		}
		s.Numbers(dst, r, []int{0, 1, 2, 3, 4})
		if dst[0] != float64(i) || !math.IsNaN(dst[1]) || dst[2] != float64(-i) || dst[3] != float64(code) || dst[4] != float64(i%3) {
			t.Fatalf("r%d: Numbers = %v", i, dst)
		}
	}
}

// TestParquetCategoryRemap: Parquet category codes are stored in order of
// first appearance and rewritten to dictionary order in one pass over the
// rows after every column is decoded; the columns around them must not move.
func TestParquetCategoryRemap(t *testing.T) {
	const n = 3000
	cols := []pqCol{
		{"id", parquet.String(), nil},
		{"a", parquet.String(), nil},
		{"b", parquet.Timestamp(parquet.Millisecond), nil},
		{"c", parquet.String(), nil},
		{"d", parquet.Leaf(parquet.DoubleType), nil},
	}
	letters := []string{"z", "m", "a", "q"}
	for i := range n {
		cols[0].vals = append(cols[0].vals, fmt.Sprintf("r%d", i))
		var a any = letters[i%4]
		if i%7 == 0 {
			a = nil
		}
		cols[1].vals = append(cols[1].vals, a)
		cols[2].vals = append(cols[2].vals, int64(-i)*1e9)
		cols[3].vals = append(cols[3].vals, letters[(i/3)%4]+"x")
		cols[4].vals = append(cols[4].vals, float64(i))
	}
	s := mustParse(t, writeParquet(t, cols), Config{Workers: 2})
	idx := func(name string) int {
		i, ok := s.ColumnIndex(name)
		if !ok {
			t.Fatalf("no column %q", name)
		}
		return i
	}
	a, b, c, d := idx("a"), idx("b"), idx("c"), idx("d")
	for i := range n {
		r, ok := s.LookupString(fmt.Sprintf("r%d", i))
		if !ok {
			t.Fatalf("r%d not found", i)
		}
		code, ok := s.Category(a, r)
		if missing := i%7 == 0; ok == missing || (ok && s.Dict(a)[code] != letters[i%4]) {
			t.Fatalf("r%d: a = %d, %v", i, code, ok)
		}
		if ts, ok := s.Time(b, r); !ok || ts != int64(-i)*1e6 {
			t.Fatalf("r%d: b = %d, %v", i, ts, ok)
		}
		if code, ok := s.Category(c, r); !ok || s.Dict(c)[code] != letters[(i/3)%4]+"x" {
			t.Fatalf("r%d: c = %d, %v", i, code, ok)
		}
		if got := s.Number(d, r); got != float32(i) {
			t.Fatalf("r%d: d = %v", i, got)
		}
	}
	if got := s.Dict(a); !slices.Equal(got, []string{"a", "m", "q", "z"}) {
		t.Errorf("Dict(a) = %q", got)
	}
}

// Regression: load errors, which the sidecar logs on a failed reload,
// carried customer ids (duplicate id "<id>") and cell values. They name
// lines, rows and columns only.
func TestErrorsCarryNoValues(t *testing.T) {
	schema := &Schema{Columns: []Column{{"a", KindNumber}, {"b", KindBool}, {"c", KindTime}}}
	for _, tc := range []struct{ name, data string }{
		{"duplicate id", "id,a,b,c\nsecret1,1,true,2026-01-01\nx,1,true,2026-01-01\nsecret1,1,true,2026-01-01\n"},
		{"number", "id,a,b,c\nx,secret2,true,2026-01-01\n"},
		{"bool", "id,a,b,c\nx,1,secret3,2026-01-01\n"},
		{"time", "id,a,b,c\nx,1,true,secret4\n"},
		{"after a quote", "id,a,b,c\nx,\"1\"secret5,true,2026-01-01\n"},
		{"jsonl number", "{\"id\":\"x\",\"a\":\"secret6\",\"b\":true,\"c\":\"2026-01-01\"}\n"},
		{"jsonl duplicate id", "{\"id\":\"secret7\",\"a\":1,\"b\":true,\"c\":\"2026-01-01\"}\n{\"id\":\"secret7\",\"a\":1,\"b\":true,\"c\":\"2026-01-01\"}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t", []byte(tc.data), Config{Schema: schema})
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "secret") || !strings.ContainsAny(err.Error(), "0123456789") {
				t.Errorf("error %q: want a line or row, and no value", err)
			}
		})
	}
}
