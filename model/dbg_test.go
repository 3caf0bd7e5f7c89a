package model
import ("runtime";"testing";"fmt";"syscall";"time";"path/filepath")
func (e *Ensemble) leafOld(t int, row []float64) float64 {
	nodes, nf := e.nodes, len(e.features)
	i := e.roots[t]
	for {
		n := &nodes[i]
		meta := n.meta
		if meta&(flagLeaf|flagSpecial) != 0 {
			if meta&flagLeaf != 0 { return n.thr }
			i = e.slowStep(i, row[meta&featMask]); continue
		}
		col := int(meta & featMask)
		var right uint32
		if col >= nf { x := row[col-nf]; right = b2u(!(x < n.thr)) } else { x := row[col]; right = b2u(x >= n.thr) }
		i = n.left + int32(right)
	}
}
func cpu() time.Duration { var ru syscall.Rusage; syscall.Getrusage(1, &ru); return time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) }
func TestDbgAB(t *testing.T) {
	runtime.LockOSThread()
	for _, p := range []string{"/tmp/xgbc/d6x150.json", filepath.Join("testdata","xgboost","binary_logistic.json"), filepath.Join("testdata","xgboost","large_depth8.json")} {
		m, _ := Load(p); e := m.(*Ensemble)
		rp := "/tmp/xgbc/rows.tsv"; if e.info.Features == 7 { rp = filepath.Join("testdata","xgboost","rows.tsv") }
		rows := readTSV(t, rp); if len(rows) > 2000 { rows = rows[:2000] }
		var ta, tb time.Duration; s := 0.0
		for rep := 0; rep < 30; rep++ {
			c := cpu(); for _, r := range rows { for tr := range e.roots { s += e.leafOld(tr, r) } }; ta += cpu()-c
			c = cpu(); for _, r := range rows { for tr := range e.roots { s += e.leaf(tr, r) } }; tb += cpu()-c
		}
		n := float64(30*len(rows)*len(e.roots))
		fmt.Printf("%s old %.1f new %.1f ns/tree %v\n", p, float64(ta)/n, float64(tb)/n, s != 0)
	}
}
