package metrics

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// family is the label bookkeeping shared by CounterVec, GaugeVec and
// HistogramVec: a copy-on-write index from joined label values to series.
type family struct {
	name      string
	labels    []string
	maxSeries int
	overflows atomic.Uint64

	mu    sync.Mutex // serialises creation; lookups read idx without it
	idx   atomic.Pointer[familyIndex]
	make  func(labels string) writer // builds a series given its rendered labels
	over  writer                     // the overflow series, made at registration
	nmade int
}

type familyIndex struct {
	byKey  map[string]writer
	series []writer // registration order, for writing
}

// keySep separates label values in an index key. 0xff never occurs in UTF-8,
// so distinct value lists have distinct keys when values are valid UTF-8;
// invalid UTF-8 values still work, with a negligible chance of sharing a series.
const keySep = 0xff

func newFamily(name string, labels []string, maxSeries int, mk func(string) writer) (*family, error) {
	if len(labels) == 0 {
		return nil, fmt.Errorf("cannot register metric %q: a family needs at least one label", name)
	}
	if maxSeries < 1 {
		return nil, fmt.Errorf("cannot register metric %q: maxSeries is %d, want at least 1", name, maxSeries)
	}
	seen := map[string]bool{}
	for _, l := range labels {
		if err := checkLabelName(l); err != nil {
			return nil, fmt.Errorf("cannot register metric %q: %w", name, err)
		}
		if seen[l] {
			return nil, fmt.Errorf("cannot register metric %q: label %q repeated", name, l)
		}
		seen[l] = true
	}
	f := &family{name: name, labels: append([]string(nil), labels...), maxSeries: maxSeries, make: mk}
	f.idx.Store(&familyIndex{byKey: map[string]writer{}})
	over := make([]string, len(labels))
	for i := range over {
		over[i] = OverflowLabel
	}
	f.over = mk(f.render(over))
	return f, nil
}

func (f *family) render(values []string) string {
	var b strings.Builder
	for i, l := range f.labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l)
		b.WriteString(`="`)
		b.WriteString(escapeLabelValue(values[i]))
		b.WriteByte('"')
	}
	return b.String()
}

// get returns the series for values, creating it if the family has room.
// It panics if len(values) differs from the label count: that is a
// programming error, found by the first test that reaches the call.
func (f *family) get(values []string) writer {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s: got %d label values, want %d", f.name, len(values), len(f.labels)))
	}
	var stack [256]byte
	key := stack[:0]
	for i, v := range values {
		if i > 0 {
			key = append(key, keySep)
		}
		key = append(key, v...)
	}
	if w, ok := f.idx.Load().byKey[string(key)]; ok { // no allocation: map index by string(bytes)
		return w
	}
	return f.create(string(key), values)
}

func (f *family) create(key string, values []string) writer {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.idx.Load()
	if w, ok := old.byKey[key]; ok {
		return w
	}
	if f.nmade >= f.maxSeries {
		f.overflows.Add(1)
		return f.over
	}
	w := f.make(f.render(values))
	next := &familyIndex{byKey: make(map[string]writer, len(old.byKey)+1), series: make([]writer, len(old.series), len(old.series)+1)}
	for k, v := range old.byKey {
		next.byKey[k] = v
	}
	copy(next.series, old.series)
	next.byKey[key] = w
	next.series = append(next.series, w)
	f.idx.Store(next)
	f.nmade++
	return w
}

func (f *family) appendTo(dst []byte) []byte {
	for _, w := range f.idx.Load().series {
		dst = w.appendTo(dst)
	}
	if f.overflows.Load() > 0 {
		dst = f.over.appendTo(dst)
	}
	return dst
}

// Overflows returns how many lookups were refused a series of their own
// because the family was full; they were counted in the overflow series.
func (f *family) Overflows() uint64 { return f.overflows.Load() }

// CounterVec is a family of counters told apart by label values.
type CounterVec struct{ f *family }

// NewCounterVec registers a counter family with the given label names,
// holding at most maxSeries label sets (see the package limits).
func (s *Set) NewCounterVec(name, help string, labels []string, maxSeries int) (*CounterVec, error) {
	f, err := newFamily(name, labels, maxSeries, func(l string) writer { return &Counter{prefix: name + "{" + l + "} "} })
	if err != nil {
		return nil, err
	}
	if err := s.register(name, help, "counter", f, f); err != nil {
		return nil, err
	}
	return &CounterVec{f}, nil
}

// With returns the counter for the label values, given in the order of the
// family's label names. Keep the result where the values are fixed: the
// lookup is cheap but not free. Values are copied; the caller may reuse them.
func (v *CounterVec) With(values ...string) *Counter { return v.f.get(values).(*Counter) }

// Overflows returns how many lookups the series limit sent to the overflow series.
func (v *CounterVec) Overflows() uint64 { return v.f.Overflows() }

// GaugeVec is a family of gauges told apart by label values.
type GaugeVec struct{ f *family }

// NewGaugeVec registers a gauge family with the given label names, holding
// at most maxSeries label sets.
func (s *Set) NewGaugeVec(name, help string, labels []string, maxSeries int) (*GaugeVec, error) {
	f, err := newFamily(name, labels, maxSeries, func(l string) writer { return &Gauge{prefix: name + "{" + l + "} "} })
	if err != nil {
		return nil, err
	}
	if err := s.register(name, help, "gauge", f, f); err != nil {
		return nil, err
	}
	return &GaugeVec{f}, nil
}

// With returns the gauge for the label values, as CounterVec.With does.
func (v *GaugeVec) With(values ...string) *Gauge { return v.f.get(values).(*Gauge) }

// Overflows returns how many lookups the series limit sent to the overflow series.
func (v *GaugeVec) Overflows() uint64 { return v.f.Overflows() }

// HistogramVec is a family of histograms with the same buckets told apart
// by label values.
type HistogramVec struct{ f *family }

// NewHistogramVec registers a histogram family with the given label names
// and buckets (as NewHistogram), holding at most maxSeries label sets.
func (s *Set) NewHistogramVec(name, help string, labels []string, buckets []float64, maxSeries int) (*HistogramVec, error) {
	upper, err := checkBuckets(buckets)
	if err != nil {
		return nil, fmt.Errorf("cannot register metric %q: %w", name, err)
	}
	f, err := newFamily(name, labels, maxSeries, func(l string) writer { return newHistogram(name, l, upper) })
	if err != nil {
		return nil, err
	}
	if err := s.register(name, help, "histogram", f, f); err != nil {
		return nil, err
	}
	return &HistogramVec{f}, nil
}

// With returns the histogram for the label values, as CounterVec.With does.
func (v *HistogramVec) With(values ...string) *Histogram { return v.f.get(values).(*Histogram) }

// Overflows returns how many lookups the series limit sent to the overflow series.
func (v *HistogramVec) Overflows() uint64 { return v.f.Overflows() }
