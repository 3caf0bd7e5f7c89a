package snapshot_test

import (
	"fmt"
	"os"
	"path/filepath"

	"nba/cache/snapshot"
)

func ExampleStore() {
	dir, _ := os.MkdirTemp("", "snapshot-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "features.csv")
	os.WriteFile(path, []byte("id,spend_90d,segment,last_purchase\n"+
		"c1,120.5,gold,2024-03-01\n"+
		"c2,,silver,NA\n"), 0o644)

	st := snapshot.NewStore(snapshot.Config{Version: "2024-03-02"})
	if err := st.LoadFile(path); err != nil {
		fmt.Println(err)
		return
	}

	// Compile time (once per snapshot): resolve names to indices and codes.
	s := st.Current()
	spend, _ := s.ColumnIndex("spend_90d")
	seg, _ := s.ColumnIndex("segment")
	gold, _ := s.CategoryCode(seg, "gold")

	// Request time: no allocation.
	for _, id := range []string{"c1", "c2", "c3"} {
		row, ok := s.LookupString(id)
		if !ok {
			fmt.Println(id, "unknown")
			continue
		}
		code, _ := s.Category(seg, row)
		fmt.Println(id, s.Number(spend, row), code == gold)
	}
	fmt.Println(st.Status().Version, st.Status().Rows)
	// Output:
	// c1 120.5 true
	// c2 NaN false
	// c3 unknown
	// 2024-03-02 2
}
