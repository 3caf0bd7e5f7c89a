package model

import (
	"math"
	"math/bits"
	"slices"
	"sort"
)

// maskTable is a third layout of the compiled trees, after QuickScorer
// (Lucchese et al., SIGIR 2015) taken one step further: nothing is walked.
//
// Leaves are numbered left to right within each tree (at most 64 per tree),
// and a node that sends a row right rules out the leaves of its left subtree;
// the leaf the row reaches is the leftmost one no node rules out, i.e. the
// lowest set bit of the AND of the masks "all but my left subtree" of every
// node the row goes right at, whether or not the node is on the row's path.
//
// Every node's decision is a step function of one feature's value: constant
// between the breakpoints of that feature (the thresholds of its numeric
// splits, the integers of its categorical bitsets, the edges of "missing =
// zero"), and for NaN. So the AND over one feature's nodes depends only on
// which interval ("bin") the value falls in, and is precomputed per feature,
// per bin, per tree. Scoring a row is then: bin each feature (a branchless
// binary search over its breakpoints), AND one precomputed word per feature
// per tree, take the lowest set bit, read the leaf. The cost is about
// features × trees simple ANDs over contiguous memory, with no dependent
// loads and no branches a predictor must learn, where walking costs one
// dependent load per node on the path.
//
// The table is built by deciding every node at one value of every bin of its
// feature with the node-by-node step (slowStep and the numeric test of
// leaf), so it is exact by construction; the tests compare it with the
// reference scorer on random ensembles. Its size is bins × trees words per
// feature, bounded by maskMaxWords and maskWordsPerNode; models beyond use
// binTrees or marginsLanes.
type maskTable struct {
	feats  []int32     // the features some node reads
	bounds [][]float64 // per listed feature: sorted distinct breakpoints
	// off[j] is the index in tab of bin 0 of feats[j]; bin k's words, one
	// per tree, start at off[j]+k*trees. Bin len(bounds[j])+1 is NaN.
	off     []int
	tab     []uint64
	leafOff []int32 // per tree: index of its leftmost leaf in leaves
	leaves  []float64
}

// Limits of maskTable.
const (
	// maskMaxLeaves is the most leaves a tree may have (one mask word).
	maskMaxLeaves = 64
	// maskMaxFeatures bounds the features the nodes read (their bins'
	// offsets are on the stack).
	maskMaxFeatures = 256
	// maskMaxWords bounds the table: 32 MiB. Below that it may take up to
	// maskWordsPerNode words (64 times the 16 bytes of a node) per node of
	// the model, or maskMinWords whatever the model's size: measured, the
	// table of the genlin Poisson fixture is 3.2 times its nodes, that of
	// XGBoost d6x150 (20 numeric features, 3,670 distinct thresholds) 15
	// times, that of bench/gen's 200 trees of depth 6 over 40 features
	// (11,375 distinct thresholds) 46 times (18 MiB).
	maskMaxWords     = 4 << 20
	maskWordsPerNode = 128
	maskMinWords     = 128 << 10
	// maskChunk is how many trees are ANDed at a time (their words on the
	// stack).
	maskChunk = 128
)

// breakpoints appends the values at which node i's decision may change: it
// is constant on every interval [b_k, b_k+1) between consecutive breakpoints,
// below the first and from the last on.
func (e *Ensemble) breakpoints(dst []float64, i int32) []float64 {
	n := &e.nodes[i]
	if n.meta&flagSpecial == 0 {
		return append(dst, n.thr)
	}
	s := &e.specs[e.special[i]]
	switch s.kind {
	case specialCat:
		// catCode truncates: every integer up to the bitset's end, where
		// all values become non-members, and for LightGBM the first value
		// above -1 (category 0 from there).
		for c := range 32*s.catLen + 1 {
			dst = append(dst, float64(c))
		}
		if s.catSetLeft {
			dst = append(dst, math.Nextafter(-1, 0))
		}
	case specialZero:
		dst = append(dst, -ZeroThreshold, math.Nextafter(ZeroThreshold, math.Inf(1)), n.thr)
	case specialAllLeft:
	default: // specialNumeric
		dst = append(dst, n.thr)
	}
	return dst
}

// compileMasks builds the maskTable, or returns nil when the model is
// outside its limits.
func (e *Ensemble) compileMasks() *maskTable {
	nf, nt := len(e.features), len(e.roots)
	if nf == 0 || nt == 0 {
		return nil
	}
	// Leaves in order and, per internal node, the mask of its left subtree.
	type split struct {
		tree int32
		node int32
		left uint64 // leaves of the left subtree
	}
	byFeat := make([][]split, nf)
	m := &maskTable{leafOff: make([]int32, nt)}
	for t, root := range e.roots {
		m.leafOff[t] = int32(len(m.leaves))
		first := len(m.leaves)
		var walk func(i int32) uint64 // returns the leaves of i's subtree
		tooMany := false
		walk = func(i int32) uint64 {
			n := &e.nodes[i]
			if n.meta&flagLeaf != 0 {
				k := len(m.leaves) - first
				m.leaves = append(m.leaves, n.thr)
				if k >= maskMaxLeaves {
					tooMany = true
					return 0
				}
				return 1 << k
			}
			l := walk(n.left)
			r := walk(n.left + 1)
			f := e.nodeFeature(i)
			byFeat[f] = append(byFeat[f], split{int32(t), i, l})
			return l | r
		}
		walk(root)
		if tooMany {
			return nil
		}
	}
	budget := min(maskMaxWords, max(maskMinWords, maskWordsPerNode*len(e.nodes)))
	words := 0
	var bps []float64
	for f, splits := range byFeat {
		if len(splits) == 0 {
			continue
		}
		bps = bps[:0]
		for _, s := range splits {
			bps = e.breakpoints(bps, s.node)
		}
		slices.Sort(bps)
		b := slices.Clone(slices.Compact(bps))
		m.feats = append(m.feats, int32(f))
		m.bounds = append(m.bounds, b)
		m.off = append(m.off, words)
		words += (len(b) + 2) * nt
		if words > budget || len(m.feats) > maskMaxFeatures {
			return nil
		}
	}
	m.tab = make([]uint64, words)
	run := make([]uint64, nt)
	for j, f := range m.feats {
		b := m.bounds[j]
		// One value of bin k: -Inf below the first breakpoint, the
		// breakpoint itself above; bin len(b)+1 is NaN.
		rep := func(k int) float64 {
			switch {
			case k == len(b)+1:
				return math.NaN()
			case k > 0:
				return b[k-1]
			}
			return math.Inf(-1)
		}
		// Numeric splits go right from some bin on, for good: their masks
		// join a running AND at that bin. Others (categorical, missing =
		// zero) are decided at every bin.
		type from struct {
			split
			k int
		}
		var mono []from
		var others []split
		for _, s := range byFeat[f] {
			if !e.monotone(s.node) {
				others = append(others, s)
				continue
			}
			k := sort.Search(len(b)+1, func(k int) bool { return e.nodeRight(s.node, rep(k)) })
			mono = append(mono, from{s, k})
		}
		slices.SortFunc(mono, func(a, b from) int { return a.k - b.k })
		for t := range run {
			run[t] = ^uint64(0)
		}
		p := 0
		for k := range len(b) + 2 {
			row := m.tab[m.off[j]+k*nt:][:nt]
			if k == len(b)+1 { // NaN: every split decided on its own
				for t := range row {
					row[t] = ^uint64(0)
				}
				for _, s := range byFeat[f] {
					if e.nodeRight(s.node, math.NaN()) {
						row[s.tree] &^= s.left
					}
				}
				break
			}
			for ; p < len(mono) && mono[p].k <= k; p++ {
				run[mono[p].tree] &^= mono[p].left
			}
			copy(row, run)
			x := rep(k)
			for _, s := range others {
				if e.nodeRight(s.node, x) {
					row[s.tree] &^= s.left
				}
			}
		}
	}
	return m
}

// monotone reports whether node i's decision for values that are not NaN
// is "right from some value on": plain numeric splits and the special
// numeric ones.
func (e *Ensemble) monotone(i int32) bool {
	if e.nodes[i].meta&flagSpecial == 0 {
		return true
	}
	k := e.specs[e.special[i]].kind
	return k == specialNumeric || k == specialAllLeft
}

// bases writes into base, for each listed feature feats[js[i]] (all of
// them when js is nil), the index in tab of its words for row's value, and
// returns base[:n].
func (m *maskTable) bases(base *[maskMaxFeatures]int, row []float64, js []int32) []int {
	nt := len(m.leafOff)
	n := 0
	add := func(j int) {
		x := row[m.feats[j]]
		b := m.bounds[j]
		k := len(b) + 1
		if x == x {
			k = binOf(b, x)
		}
		base[n] = m.off[j] + k*nt
		n++
	}
	if js == nil {
		for j := range m.feats {
			add(j)
		}
	} else {
		for _, j := range js {
			add(int(j))
		}
	}
	return base[:n]
}

// and writes into w the AND of the words of trees t0 to t0+len(w)-1 at the
// given bases (all ones for no bases).
func (m *maskTable) and(w []uint64, base []int, t0 int) {
	if len(base) == 0 {
		for t := range w {
			w[t] = ^uint64(0)
		}
		return
	}
	copy(w, m.tab[base[0]+t0:])
	// Four features a pass: one load and store of w per four words.
	j := 1
	for ; j+4 <= len(base); j += 4 {
		s0 := m.tab[base[j]+t0:][:len(w)]
		s1 := m.tab[base[j+1]+t0:][:len(w)]
		s2 := m.tab[base[j+2]+t0:][:len(w)]
		s3 := m.tab[base[j+3]+t0:][:len(w)]
		for t := range w {
			w[t] &= s0[t] & s1[t] & s2[t] & s3[t]
		}
	}
	for ; j < len(base); j++ {
		s0 := m.tab[base[j]+t0:][:len(w)]
		for t := range w {
			w[t] &= s0[t]
		}
	}
}

// marginsMasks is margins over the maskTable.
func (e *Ensemble) marginsMasks(row []float64, out []float64) {
	m := e.masks
	nt := len(e.roots)
	var bb [maskMaxFeatures]int
	base := m.bases(&bb, row, nil)
	var v [maskChunk]uint64
	for t0 := 0; t0 < nt; t0 += maskChunk {
		n := min(maskChunk, nt-t0)
		w := v[:n]
		m.and(w, base, t0)
		offs := m.leafOff[t0 : t0+n]
		if e.groups == 1 && !e.f32 {
			// The common case without the copy through vals: the sum
			// stays in a register, in tree order.
			s := out[0]
			for t, x := range w {
				s += m.leaves[int(offs[t])+bits.TrailingZeros64(x)]
			}
			out[0] = s
			continue
		}
		var vals [maskChunk]float64
		for t, x := range w {
			vals[t] = m.leaves[int(offs[t])+bits.TrailingZeros64(x)]
		}
		e.addLeaves(vals[:n], e.tgroup[t0:t0+n], out)
	}
	if e.divisor != 0 {
		for k := range out {
			out[k] /= e.divisor
		}
	}
}
