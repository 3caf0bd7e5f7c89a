package main

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"nba/cache/snapshot"
)

func TestDeterministic(t *testing.T) {
	write := func(sp snapshotSpec) []byte {
		t.Helper()
		var buf bytes.Buffer
		if err := writeSnapshot(&buf, sp); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, format := range []string{"csv", "jsonl", "parquet"} {
		sp := snapshotSpec{Customers: 300, Features: 5, Seed: 7, Format: format, Compress: "zstd", Mixed: true, Missing: 0.05}
		a, b := write(sp), write(sp)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two runs with seed 7 differ", format)
		}
		sp.Seed = 8
		if bytes.Equal(a, write(sp)) {
			t.Errorf("%s: seeds 7 and 8 give the same bytes", format)
		}
	}
}

// TestRoundTrip generates snapshots in every format and compression, parses
// them with package snapshot, and compares every value with the generator's.
func TestRoundTrip(t *testing.T) {
	for _, format := range []string{"csv", "tsv", "jsonl", "parquet"} {
		for _, comp := range []string{"none", "zstd", "gzip"} {
			t.Run(format+"/"+comp, func(t *testing.T) {
				sp := snapshotSpec{Customers: 2000, Features: 8, Seed: 3, Format: format, Compress: comp, Mixed: true, Missing: 0.05}
				var buf bytes.Buffer
				if err := writeSnapshot(&buf, sp); err != nil {
					t.Fatal(err)
				}
				s, err := snapshot.Parse(sp.fileName(), buf.Bytes(), snapshot.Config{})
				if err != nil {
					t.Fatal(err)
				}
				checkAgainstSpec(t, s, sp)
			})
		}
	}
}

func checkAgainstSpec(t *testing.T, s *snapshot.Snapshot, sp snapshotSpec) {
	t.Helper()
	if s.Len() != sp.Customers {
		t.Fatalf("Len() = %d, want %d", s.Len(), sp.Customers)
	}
	names := sp.columnNames()
	idx := make([]int, len(names))
	for j, n := range names {
		i, ok := s.ColumnIndex(n)
		if !ok {
			t.Fatalf("no column %q", n)
		}
		idx[j] = i
	}
	kinds := map[string]snapshot.Kind{"segment": snapshot.KindCategory, "last_purchase": snapshot.KindTime, "opted_in": snapshot.KindBool}
	for j, n := range names {
		want, ok := kinds[n]
		if !ok {
			want = snapshot.KindNumber
		}
		if got := s.Columns()[idx[j]].Kind; got != want {
			t.Fatalf("column %q is %s, want %s", n, got, want)
		}
	}
	checked := 0
	err := sp.rows(func(r *row) error {
		row, ok := s.LookupString(r.ID)
		if !ok {
			return fmt.Errorf("%s not found", r.ID)
		}
		for j, v := range r.Values {
			if got := s.Number(idx[j], row); got != v && !(v != v && got != got) {
				return fmt.Errorf("%s %s: %v, want %v", r.ID, names[j], got, v)
			}
		}
		if sp.Mixed {
			k := sp.Features
			code, ok := s.Category(idx[k], row)
			if ok != (r.Segment >= 0) || (ok && s.Dict(idx[k])[code] != segments[r.Segment]) {
				return fmt.Errorf("%s segment: %d %v, want %d", r.ID, code, ok, r.Segment)
			}
			ts, ok := s.Time(idx[k+1], row)
			if want := epoch.AddDate(0, 0, int(r.Days)).Unix(); ok != (r.Days >= 0) || (ok && ts != want) {
				return fmt.Errorf("%s last_purchase: %v %v, want %v", r.ID, time.Unix(ts, 0).UTC(), ok, r.Days)
			}
			b := s.Number(idx[k+2], row)
			if want := float32(r.OptIn); (r.OptIn < 0) != math.IsNaN(float64(b)) || (r.OptIn >= 0 && b != want) {
				return fmt.Errorf("%s opted_in: %v, want %d", r.ID, b, r.OptIn)
			}
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked != sp.Customers {
		t.Fatalf("checked %d rows", checked)
	}
}
