package model

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
)

// MaxPlanLeaves is the largest number of leaves a tree may have for
// NewPlan: 256 (four 64-bit mask words, a full tree of depth 8). A
// candidate's exit-leaf search and a variant's memory grow with the leaves
// (a 200-tree model of depth-8 trees takes 6.4 KiB per variant) where a
// tree walk grows with the depth only, so deeper trees are left to the
// walk. NewPlan rejects larger trees; callers fall back to PredictRows.
const MaxPlanLeaves = 256

// planTableMaxWords bounds the mask tables a Plan reads for its shared
// masks: 2 MiB. Under load (bench/load, 1M customers), the 18 MiB table of
// a 200-tree depth-6 model over 40 features made the shared mask slower
// than the scan (11.8 against 7.3 µs of CPU per decision: every decision
// reads 32 rows of 1.6 KiB from memory that other requests have evicted),
// where a table that stays in the caches is several times faster.
const planTableMaxWords = 256 << 10

// Plan scores batches of rows that differ only in a few "varying" features
// whose values are fixed in advance per variant (the features of an action),
// while the other, "shared" features are the same for every row of a batch
// (a customer's profile and the request's context). It follows QuickScorer
// (Lucchese et al., "QuickScorer: a fast algorithm to rank documents with
// additive ensembles of regression trees", SIGIR 2015), split in two:
//
//   - Each tree's leaves are numbered left to right, and each split node has
//     a bitmask of the leaves still reachable when its test sends a row right
//     (the leaves of its left subtree cleared). The exit leaf of a row is the
//     lowest set bit of the AND of the masks of the nodes whose test goes
//     right.
//   - Variant ANDs, once, the masks of the nodes on varying features that go
//     right for the variant's values.
//   - ScoreRaw ANDs, once per batch, the masks of the nodes on shared
//     features that go right for the shared row: numeric nodes are kept per
//     feature sorted by threshold, so the scan stops at the first node whose
//     test goes left; categorical and other special nodes are tested one by
//     one.
//   - Per variant and tree the exit leaf is then the lowest set bit of
//     (shared mask AND variant mask): for a tree of up to 64 leaves an
//     AND, a trailing-zero count and a load, whatever its depth (larger
//     trees search up to four words). Four variants are summed together,
//     each in its own accumulator, so the additions do not wait on each
//     other.
//
// The shared scan grows with the number of splits where a walk grows with
// the depth: it costs less than walking one row through 200 trees of depth
// 6 and about as much as one row at depth 8 (bench/RESULTS.md, "Candidate
// scoring"); each further variant then costs a fraction of a walk (a
// seventh to a tenth at depth 6, less than half at depth 8).
//
// Every node is decided by the Ensemble's own test (float32 XGBoost
// thresholds, LightGBM "<=", missing-value rules, default directions,
// categorical bitsets), and leaf values are summed in tree order in the same
// precision as Predict, so results are bit-identical to Predict and
// PredictRaw on the full rows (the tests compare them on every fixture).
//
// A Plan and its Variants are immutable and safe for concurrent use; a
// PlanScratch is not. Limits: MaxPlanLeaves leaves per tree.
type Plan struct {
	e       *Ensemble
	nf      int
	no      int     // outputs per variant
	varying []int32 // feature indices, in the order given to NewPlan
	tw      int     // mask words per tree: those of the largest tree
	words   int     // mask words of all trees: tree t has [t*tw, (t+1)*tw)

	trees    []planTree
	leafBase []int32   // per tree: index of its leaf 0 in leafVal
	leafVal  []float64 // leaf values (weighted), trees in order, leaves left to right

	// table, when the model has a mask table and one word per tree, gives
	// the shared mask directly: the AND of one word per shared feature and
	// tree (tableFeats: the shared features' indices in table.feats),
	// where the scan below visits every node that goes right.
	table      *maskTable
	tableFeats []int32

	feats    []planFeat  // shared features tested by numeric nodes
	specials []planNode  // special nodes on shared features
	vnodes   []planNode  // nodes on varying features; f is the index in varying
	entries  []planEntry // the masks of all nodes, referenced by the lists above

	// With one word per tree (up to 64 leaves), the shared scan reads
	// entries in a compact form, index for index: thr holds the
	// thresholds, packed the word (top 16 bits) and the index of the mask
	// in dict (low 16 bits): 12 bytes an entry where planEntry takes 24.
	// The scan streams through a few thousand entries per decision, so
	// under load, with the caches shared with the HTTP stack, its cost
	// follows the bytes it reads. Masks repeat: a node's mask is the run
	// of its left subtree's leaves, and a depth-6 tree has 63 such runs.
	thr    []float64
	packed []uint32
	dict   []uint64

	// leaf32 holds leafVal as float32 for float32 models (the value
	// margins add), half the bytes for the candidates' leaf loads.
	leaf32 []float32
}

// andBelow applies the packed entries cs whose thresholds thr (ascending)
// are at most x. It is a function of its own so that its loop keeps its
// few variables in registers.
//
//go:noinline
func andBelow(m, dict []uint64, thr []float64, cs []uint32, x float64) {
	cs = cs[:len(thr)]
	for i, t := range thr {
		if !(x >= t) {
			return
		}
		c := cs[i]
		m[c>>16] &= dict[c&0xffff]
	}
}

// andPacked clears in m the leaves of packed entry c: its word in the top
// 16 bits, the index of its mask in dict in the low 16.
func andPacked(m, dict []uint64, c uint32) {
	m[c>>16] &= dict[c&0xffff]
}

type planTree struct {
	group int32
}

// planEntry clears, in one mask word, leaves of a node's left subtree; a
// node whose left subtree spans several words has one entry per word.
type planEntry struct {
	thr  float64 // the node's threshold (numeric shared nodes)
	mask uint64
	word int32
}

// planFeat lists the numeric nodes of one shared feature: entries[lo:mid]
// sorted by threshold (a non-NaN x goes right at those with x >= thr) and
// entries[mid:hi] those that send NaN right.
type planFeat struct {
	f           int32
	lo, mid, hi int32
}

// planNode is a node decided one at a time; its masks are entries[lo:hi].
type planNode struct {
	node, f int32
	lo, hi  int32
}

// Variant holds the masks of one set of varying values for one Plan. It is
// immutable and safe for concurrent use.
type Variant struct {
	p    *Plan
	mask []uint64
}

// PlanScratch is the working memory of ScoreRaw and Score. The zero value is
// ready; it grows to the largest plan it serves and then does not allocate.
// It is not safe for concurrent use; one may serve several plans in turn.
type PlanScratch struct {
	mask []uint64
	g    []float64
}

// nodeRight reports whether row value x of node i's feature sends a row
// right. It is the step of Ensemble.leaf, node for node: leaf's fast test
// for plain nodes, catStep and slowStep for special ones.
func (e *Ensemble) nodeRight(i int32, x float64) bool {
	n := &e.nodes[i]
	meta := n.meta
	if meta&flagSpecial != 0 {
		if meta&flagCat != 0 && x == x {
			return e.catStep(i, n, x) != n.left
		}
		return e.slowStep(i, x) != n.left
	}
	ndl := ^meta >> 24 & 1
	return b2u(x >= n.thr)|(b2u(x != x)&ndl) != 0
}

// nodeFeature returns the input feature of split node i (plain nodes whose
// missing values go right hold nf+f, see node).
func (e *Ensemble) nodeFeature(i int32) int {
	meta := e.nodes[i].meta
	f := int(meta & featMask)
	if meta&(flagSpecial|flagDefaultLeft) == 0 {
		f -= len(e.features)
	}
	return f
}

// NewPlan prepares scoring with the features listed in varying (indices
// into Features(), no duplicates) fixed per Variant and all others shared.
// It fails when an index is out of range or repeated, or when a tree has
// more than MaxPlanLeaves leaves.
func (e *Ensemble) NewPlan(varying []int) (*Plan, error) {
	nf := len(e.features)
	pos := make([]int32, nf)
	for i := range pos {
		pos[i] = -1
	}
	p := &Plan{e: e, nf: nf, no: e.NumOutputs(), varying: make([]int32, len(varying)),
		trees: make([]planTree, len(e.roots)), leafBase: make([]int32, len(e.roots))}
	for j, f := range varying {
		if f < 0 || f >= nf {
			return nil, fmt.Errorf("cannot plan model: varying feature %d out of range [0,%d)", f, nf)
		}
		if pos[f] >= 0 {
			return nil, fmt.Errorf("cannot plan model: varying feature %d (%q) listed twice", f, e.features[f])
		}
		pos[f] = int32(j)
		p.varying[j] = int32(f)
	}

	// Number the leaves of each tree left to right and give every split
	// node the masks of its left subtree's leaves.
	type split struct {
		node, f int32
		lo, hi  int32 // entries (thr not yet set)
	}
	var splits []split
	var walk func(i int32) (lo, hi int32, ok bool)
	var leaves int32
	var word int32 // the tree's first mask word
	// Every tree gets as many words as the largest one, so that tree t's
	// words start at t*tw with no lookup; real ensembles grow all trees to
	// one size limit (max_depth, num_leaves), and leafIndex stops before
	// the padding.
	for t, root := range e.roots {
		// A tree of depth d has at least d+1 leaves; checking the depth
		// first also bounds the recursion of countLeaves and walk.
		n := int(e.depths[t]) + 1
		if n <= MaxPlanLeaves {
			n = e.countLeaves(root, MaxPlanLeaves+1)
		}
		if n > MaxPlanLeaves {
			return nil, fmt.Errorf("cannot plan model: tree %d has more than %d leaves", t, MaxPlanLeaves)
		}
		p.tw = max(p.tw, (n+63)/64)
	}
	walk = func(i int32) (int32, int32, bool) {
		n := &e.nodes[i]
		if n.meta&flagLeaf != 0 {
			if leaves == MaxPlanLeaves {
				return 0, 0, false
			}
			p.leafVal = append(p.leafVal, n.thr)
			leaves++
			return leaves - 1, leaves, true
		}
		llo, lhi, ok := walk(n.left)
		if !ok {
			return 0, 0, false
		}
		_, rhi, ok := walk(n.left + 1)
		if !ok {
			return 0, 0, false
		}
		s := split{node: i, f: int32(e.nodeFeature(i)), lo: int32(len(p.entries))}
		for w := llo / 64; w <= (lhi-1)/64; w++ {
			from, to := max(llo, 64*w)-64*w, min(lhi, 64*w+64)-64*w
			clearBits := (^uint64(0) >> (64 - (to - from))) << from
			p.entries = append(p.entries, planEntry{mask: ^clearBits, word: word + w})
		}
		s.hi = int32(len(p.entries))
		splits = append(splits, s)
		return llo, rhi, true
	}
	for t, root := range e.roots {
		leaves = 0
		word = int32(t * p.tw)
		p.leafBase[t] = int32(len(p.leafVal))
		if _, _, ok := walk(root); !ok {
			return nil, fmt.Errorf("cannot plan model: tree %d has more than %d leaves", t, MaxPlanLeaves)
		}
		p.trees[t] = planTree{group: e.tgroup[t]}
	}
	p.words = len(e.roots) * p.tw

	// Sort the splits into varying nodes, shared special nodes and, per
	// shared feature, numeric nodes by threshold; entries are rebuilt in
	// that order.
	old := p.entries
	p.entries = make([]planEntry, 0, len(old))
	add := func(s split) (lo, hi int32) {
		lo = int32(len(p.entries))
		for _, en := range old[s.lo:s.hi] {
			en.thr = e.nodes[s.node].thr
			p.entries = append(p.entries, en)
		}
		return lo, int32(len(p.entries))
	}
	byFeat := make([][]split, nf)
	for _, s := range splits {
		switch {
		case pos[s.f] >= 0:
			lo, hi := add(s)
			p.vnodes = append(p.vnodes, planNode{node: s.node, f: pos[s.f], lo: lo, hi: hi})
		case e.nodes[s.node].meta&flagSpecial != 0:
			lo, hi := add(s)
			p.specials = append(p.specials, planNode{node: s.node, f: s.f, lo: lo, hi: hi})
		default:
			byFeat[s.f] = append(byFeat[s.f], s)
		}
	}
	for f, ss := range byFeat {
		if len(ss) == 0 {
			continue
		}
		slices.SortStableFunc(ss, func(a, b split) int { return cmp.Compare(e.nodes[a.node].thr, e.nodes[b.node].thr) })
		pf := planFeat{f: int32(f), lo: int32(len(p.entries))}
		for _, s := range ss {
			add(s)
		}
		pf.mid = int32(len(p.entries))
		for _, s := range ss {
			if e.nodes[s.node].meta&flagDefaultLeft == 0 {
				add(s)
			}
		}
		pf.hi = int32(len(p.entries))
		p.feats = append(p.feats, pf)
	}
	if p.tw == 1 && p.words <= 1<<16 {
		p.thr = make([]float64, len(p.entries))
		p.packed = make([]uint32, len(p.entries))
		index := map[uint64]uint32{}
		for i, en := range p.entries {
			k, ok := index[en.mask]
			if !ok {
				if len(p.dict) == 1<<16 {
					p.thr, p.packed, p.dict = nil, nil, nil
					break
				}
				k = uint32(len(p.dict))
				index[en.mask] = k
				p.dict = append(p.dict, en.mask)
			}
			p.thr[i], p.packed[i] = en.thr, uint32(en.word)<<16|k
		}
	}
	if e.f32 {
		p.leaf32 = make([]float32, len(p.leafVal))
		for i, v := range p.leafVal {
			p.leaf32[i] = float32(v)
		}
	}
	if m := e.masks; m != nil && p.tw == 1 && len(m.leafOff) == len(e.roots) && len(m.tab) <= planTableMaxWords {
		// The table numbers leaves and builds masks as above.
		p.table = m
		p.tableFeats = []int32{}
		for j, f := range m.feats {
			if pos[f] < 0 {
				p.tableFeats = append(p.tableFeats, int32(j))
			}
		}
	}
	return p, nil
}

// NumVarying returns the number of varying features, the length Variant
// expects.
func (p *Plan) NumVarying() int { return len(p.varying) }

// VariantBytes returns the size of one Variant's masks, to bound the memory
// of many variants.
func (p *Plan) VariantBytes() int { return 8 * p.words }

// Variant prepares one set of values of the varying features, in the order
// given to NewPlan (NaN means missing, as in a row).
func (p *Plan) Variant(values []float64) (*Variant, error) {
	if len(values) != len(p.varying) {
		return nil, fmt.Errorf("cannot build plan variant: %d values for %d varying features", len(values), len(p.varying))
	}
	v := &Variant{p: p, mask: make([]uint64, p.words)}
	for i := range v.mask {
		v.mask[i] = ^uint64(0)
	}
	for _, vn := range p.vnodes {
		if p.e.nodeRight(vn.node, values[vn.f]) {
			for _, en := range p.entries[vn.lo:vn.hi] {
				v.mask[en.word] &= en.mask
			}
		}
	}
	return v, nil
}

// sharedMask writes into s the AND of the masks of the shared nodes that
// send row right.
func (p *Plan) sharedMask(row []float64, s *PlanScratch) []uint64 {
	row = row[:p.nf]
	if cap(s.mask) < p.words {
		s.mask = make([]uint64, p.words)
	}
	m := s.mask[:p.words]
	if p.table != nil {
		var bb [maskMaxFeatures]int
		p.table.and(m, p.table.bases(&bb, row, p.tableFeats), 0)
		return m
	}
	for i := range m {
		m[i] = ^uint64(0)
	}
	entries := p.entries
	if p.packed != nil {
		p.sharedPacked(m, row)
		return m
	}
	for _, pf := range p.feats {
		x := row[pf.f]
		if x != x {
			for _, en := range entries[pf.mid:pf.hi] {
				m[en.word] &= en.mask
			}
			continue
		}
		// Thresholds ascend: once x < thr, every later node goes left.
		for _, en := range entries[pf.lo:pf.mid] {
			if !(x >= en.thr) {
				break
			}
			m[en.word] &= en.mask
		}
	}
	for _, sp := range p.specials {
		if p.e.nodeRight(sp.node, row[sp.f]) {
			for _, en := range entries[sp.lo:sp.hi] {
				m[en.word] &= en.mask
			}
		}
	}
	return m
}

// sharedPacked is sharedMask's scan over the packed entries.
func (p *Plan) sharedPacked(m []uint64, row []float64) {
	packed, thr, dict := p.packed, p.thr, p.dict
	for _, pf := range p.feats {
		x := row[pf.f]
		if x != x {
			for _, c := range packed[pf.mid:pf.hi] {
				andPacked(m, dict, c)
			}
			continue
		}
		andBelow(m, dict, thr[pf.lo:pf.mid], packed[pf.lo:pf.mid], x)
	}
	for _, sp := range p.specials {
		if p.e.nodeRight(sp.node, row[sp.f]) {
			for _, c := range packed[sp.lo:sp.hi] {
				andPacked(m, dict, c)
			}
		}
	}
}

// countLeaves returns the number of leaves under node i, or a number >=
// limit when there are that many.
func (e *Ensemble) countLeaves(i int32, limit int) int {
	n := &e.nodes[i]
	if n.meta&flagLeaf != 0 {
		return 1
	}
	l := e.countLeaves(n.left, limit)
	if l >= limit {
		return l
	}
	return l + e.countLeaves(n.left+1, limit-l)
}

// leafIndex returns the index of the lowest set bit of the AND of sm and vm
// over their len(sm) words (len(vm) >= len(sm)): the exit leaf of a tree
// whose words they are. It stops at the first word with a bit: a
// branch-free search through every word was slower on depth-8 trees (1.2×
// against 1.55× faster than PredictRows for 15 candidates, measured
// alternately), the early exit saving more than its mispredictions cost.
func leafIndex(sm, vm []uint64) int {
	vm = vm[:len(sm)]
	for w, m := range sm {
		if m &= vm[w]; m != 0 {
			return 64*w + bits.TrailingZeros64(m)
		}
	}
	return 0
}

// leaf returns the value of tree t's exit leaf given the shared and variant
// masks.
func (p *Plan) leaf(t int, sm, vm []uint64) float64 {
	o := t * p.tw
	return p.leafVal[int(p.leafBase[t])+leafIndex(sm[o:o+p.tw], vm[o:o+p.tw])]
}

// margins writes the margins of all groups of one variant into g, summed as
// Ensemble.margins does: from the base margin, tree by tree in order, in
// float32 for Float32 models, divided by the divisor last.
func (p *Plan) margins(sm, vm []uint64, g []float64) {
	e := p.e
	copy(g, e.base)
	if len(g) == 1 && p.tw == 1 {
		// The common case without a group lookup or a word search.
		sm, vm := sm[:len(p.trees)], vm[:len(p.trees)]
		base, vals := p.leafBase[:len(sm)], p.leafVal
		if e.f32 {
			s := float32(g[0])
			for t, m := range sm {
				s += float32(vals[int(base[t])+bits.TrailingZeros64(m&vm[t])])
			}
			g[0] = float64(s)
		} else {
			s := g[0]
			for t, m := range sm {
				s += vals[int(base[t])+bits.TrailingZeros64(m&vm[t])]
			}
			g[0] = s
		}
	} else {
		for t := range p.trees {
			k := p.trees[t].group
			if e.f32 {
				g[k] = float64(float32(g[k]) + float32(p.leaf(t, sm, vm)))
			} else {
				g[k] += p.leaf(t, sm, vm)
			}
		}
	}
	if e.divisor != 0 {
		for k := range g {
			g[k] /= e.divisor
		}
	}
}

// margins4 is margins for four variants of a single-output plan. Each
// variant keeps its own sum, in the same order as margins; four sums are
// four independent chains of additions, where one variant at a time waits
// on each addition in turn.
func (p *Plan) margins4(sm []uint64, vs []*Variant, o []float64) {
	e := p.e
	o = o[:4]
	if p.tw > 1 {
		p.margins4Wide(sm, vs, o)
		return
	}
	n := len(p.trees)
	sm = sm[:n]
	m0, m1, m2, m3 := vs[0].mask[:n], vs[1].mask[:n], vs[2].mask[:n], vs[3].mask[:n]
	base, vals := p.leafBase[:n], p.leafVal
	if e.f32 {
		b := float32(e.base[0])
		s0, s1, s2, s3 := b, b, b, b
		v32 := p.leaf32
		for t, m := range sm {
			lb := int(base[t])
			s0 += v32[lb+bits.TrailingZeros64(m&m0[t])]
			s1 += v32[lb+bits.TrailingZeros64(m&m1[t])]
			s2 += v32[lb+bits.TrailingZeros64(m&m2[t])]
			s3 += v32[lb+bits.TrailingZeros64(m&m3[t])]
		}
		o[0], o[1], o[2], o[3] = float64(s0), float64(s1), float64(s2), float64(s3)
	} else {
		b := e.base[0]
		s0, s1, s2, s3 := b, b, b, b
		for t, m := range sm {
			lb := int(base[t])
			s0 += vals[lb+bits.TrailingZeros64(m&m0[t])]
			s1 += vals[lb+bits.TrailingZeros64(m&m1[t])]
			s2 += vals[lb+bits.TrailingZeros64(m&m2[t])]
			s3 += vals[lb+bits.TrailingZeros64(m&m3[t])]
		}
		o[0], o[1], o[2], o[3] = s0, s1, s2, s3
	}
	if e.divisor != 0 {
		for k := range o {
			o[k] /= e.divisor
		}
	}
}

// margins4Wide is margins4 for trees of several words.
func (p *Plan) margins4Wide(sm []uint64, vs []*Variant, o []float64) {
	e := p.e
	tw := p.tw
	m0, m1, m2, m3 := vs[0].mask, vs[1].mask, vs[2].mask, vs[3].mask
	vals := p.leafVal
	var s [4]float64
	var s32 [4]float32
	for k := range s {
		s[k], s32[k] = e.base[0], float32(e.base[0])
	}
	for t, lb := range p.leafBase {
		w := t * tw
		sw := sm[w : w+tw]
		v0 := vals[int(lb)+leafIndex(sw, m0[w:])]
		v1 := vals[int(lb)+leafIndex(sw, m1[w:])]
		v2 := vals[int(lb)+leafIndex(sw, m2[w:])]
		v3 := vals[int(lb)+leafIndex(sw, m3[w:])]
		if e.f32 {
			s32[0] += float32(v0)
			s32[1] += float32(v1)
			s32[2] += float32(v2)
			s32[3] += float32(v3)
		} else {
			s[0] += v0
			s[1] += v1
			s[2] += v2
			s[3] += v3
		}
	}
	for k := range o {
		if e.f32 {
			o[k] = float64(s32[k])
		} else {
			o[k] = s[k]
		}
		if e.divisor != 0 {
			o[k] /= e.divisor
		}
	}
}

// ScoreRaw writes, for each variant vs[i], the margins of the row made of
// shared (a full row of len(Features()) values whose varying positions are
// ignored) and the variant's values into out[i*n:(i+1)*n], n =
// NumOutputs(): the same values as PredictRaw on that row. It panics when
// a variant belongs to another plan. It does not allocate once s has
// served this plan.
func (p *Plan) ScoreRaw(shared []float64, vs []*Variant, out []float64, s *PlanScratch) {
	p.score(shared, vs, out, s, true)
}

// Score is ScoreRaw with the model's link applied: the same values as
// Predict.
func (p *Plan) Score(shared []float64, vs []*Variant, out []float64, s *PlanScratch) {
	p.score(shared, vs, out, s, false)
}

func (p *Plan) score(shared []float64, vs []*Variant, out []float64, s *PlanScratch, raw bool) {
	e := p.e
	no := p.no
	out = out[:len(vs)*no]
	if len(vs) == 0 {
		return
	}
	sm := p.sharedMask(shared, s)
	if cap(s.g) < e.groups {
		s.g = make([]float64, e.groups)
	}
	g := s.g[:e.groups]
	for _, v := range vs {
		if v.p != p {
			panic("model: Plan.Score: variant of another plan")
		}
	}
	i := 0
	if e.groups == 1 && e.link != LinkArgmax {
		for ; i < len(vs); i += 4 {
			o := out[i:min(i+4, len(vs))]
			if len(o) == 4 {
				p.margins4(sm, vs[i:i+4], o)
			} else {
				// The last one to three: padded with repeats, four sums
				// side by side still beat one at a time (each waits on its
				// own chain of additions).
				var quad [4]*Variant
				var q [4]float64
				for k := range quad {
					quad[k] = vs[min(i+k, len(vs)-1)]
				}
				p.margins4(sm, quad[:], q[:])
				copy(o, q[:])
			}
			if !raw {
				for k := range o {
					e.link32(o[k : k+1])
				}
			}
		}
	}
	for ; i < len(vs); i++ {
		v := vs[i]
		o := out[i*no : (i+1)*no]
		if e.link != LinkArgmax {
			p.margins(sm, v.mask, o)
			if !raw {
				e.link32(o)
			}
			continue
		}
		// As Ensemble.argmax: the first of equal margins wins.
		p.margins(sm, v.mask, g)
		best, bm := 0, g[0]
		for k := 1; k < len(g); k++ {
			if g[k] > bm {
				best, bm = k, g[k]
			}
		}
		if raw {
			o[0] = bm
		} else {
			o[0] = float64(best)
		}
	}
}
