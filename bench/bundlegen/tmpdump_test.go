package bundlegen

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"nba/model"
)

func TestTmpDump(t *testing.T) {
	b, _ := Generate(Config{Customers: 200, Trees: 200})
	os.WriteFile("/tmp/bg_model.json", b.Model, 0o644)
	m, err := model.Parse("m", b.Model)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	row := make([]float64, 40)
	out := make([]float64, 1)
	for i := 0; i < 200; i++ {
		for f := 0; f < 32; f++ {
			row[f] = b.Columns[f][i]
		}
		for f := 32; f < 40; f++ {
			row[f] = float64(float32(math.Mod(float64(i*(f+3))*0.137, 1)))
		}
		m.Predict(row, out)
		var cells []string
		for _, v := range row {
			cells = append(cells, fmt.Sprintf("%v", v))
		}
		fmt.Fprintf(&sb, "%s,%.9g\n", strings.Join(cells, ","), out[0])
	}
	os.WriteFile("/tmp/bg_rows.csv", []byte(sb.String()), 0o644)
}
