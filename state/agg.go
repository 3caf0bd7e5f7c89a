package state

import "time"

// Precision of cap-window counts (see agg.count):
//   - Each aggregate keeps the exact times of its recentN latest events, so
//     a window that contains fewer than recentN of them is counted exactly.
//   - Otherwise windows of up to 24 hours are counted in whole UTC hours and
//     longer ones in whole UTC days, rounded out: the bucket holding the
//     window's start is counted in full. The error only ever over-counts, so
//     a cap is never exceeded because of it.
//   - Windows reaching further back than the day ring (Config.MaxWindow
//     before the customer's latest event of that key) are clamped to it.
//   - Buckets saturate at 65535 events.
const (
	recentN     = 8
	hourBuckets = 25 // a 24-hour window rounded out touches 25 hours
	hourNanos   = int64(time.Hour)
	dayNanos    = 24 * hourNanos
)

// agg counts one customer's contacts for one (kind, key, outcome).
// An agg is immutable once published in a custState; writers clone it.
type agg struct {
	kind    Kind
	outcome Outcome
	key     string
	seen    uint32         // events added, saturating
	recent  [recentN]int64 // latest event times, newest first; valid up to min(seen, recentN)
	hourTop int64          // hour index (unix hours) of the newest hour bucket
	dayTop  int64          // day index (unix days) of the newest day bucket
	hours   [hourBuckets]uint16
	days    []uint16 // ring of Config.MaxWindow days plus one
}

func (a *agg) clone() *agg {
	b := *a
	b.days = append([]uint16(nil), a.days...)
	return &b
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func mod(a int64, n int) int {
	m := int(a % int64(n))
	if m < 0 {
		m += n
	}
	return m
}

// add counts one event at t (unix nanoseconds). Events older than the rings
// only update the exact list, if they are among its latest.
func (a *agg) add(t int64) {
	// recent holds the recentN largest times seen, newest first.
	nOld := min(int(a.seen), recentN)
	if a.seen < ^uint32(0) {
		a.seen++
	}
	if nOld < recentN || t > a.recent[recentN-1] {
		p := 0
		for p < nOld && a.recent[p] >= t {
			p++
		}
		end := min(nOld, recentN-1)
		copy(a.recent[p+1:end+1], a.recent[p:end])
		a.recent[p] = t
	}
	advance(a.hours[:], &a.hourTop, floorDiv(t, hourNanos))
	advance(a.days, &a.dayTop, floorDiv(t, dayNanos))
}

// advance counts an event in bucket b of a ring whose newest bucket is *top.
func advance(ring []uint16, top *int64, b int64) {
	n := int64(len(ring))
	if b > *top {
		if b-*top >= n {
			clear(ring)
		} else {
			for x := *top + 1; x <= b; x++ {
				ring[mod(x, len(ring))] = 0
			}
		}
		*top = b
	}
	if b > *top-n {
		if i := mod(b, len(ring)); ring[i] < ^uint16(0) {
			ring[i]++
		}
	}
}

// sumRing sums buckets [from, to] of a ring, clamped to what it holds.
func sumRing(ring []uint16, top, from, to int64) int {
	from = max(from, top-int64(len(ring))+1)
	to = min(to, top)
	s := 0
	for b := from; b <= to; b++ {
		s += int(ring[mod(b, len(ring))])
	}
	return s
}

// count returns the events in (now-window, now].
func (a *agg) count(window time.Duration, now int64) int {
	start := now - int64(window)
	n := min(int(a.seen), recentN)
	if a.seen <= recentN || a.recent[recentN-1] <= start {
		// Every event in the window is in the exact list.
		c := 0
		for _, t := range a.recent[:n] {
			if t > start && t <= now {
				c++
			}
		}
		return c
	}
	if hs := floorDiv(start, hourNanos); window <= 24*time.Hour && hs > a.hourTop-hourBuckets {
		return sumRing(a.hours[:], a.hourTop, hs, floorDiv(now, hourNanos))
	}
	return sumRing(a.days, a.dayTop, floorDiv(start, dayNanos), floorDiv(now, dayNanos))
}
