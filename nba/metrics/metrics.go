// Package metrics is a small Prometheus text-exposition library: counters,
// gauges, histograms with fixed buckets, and labelled families of them.
//
// Guarantees:
//   - Updating a metric (Inc, Add, Set, Observe) never allocates and never
//     blocks: it is one or a few atomic operations.
//   - Looking up a series of a labelled family (With) does not allocate once
//     the series exists, and never takes a lock: families are copy-on-write.
//   - WritePrometheus appends the text exposition format (version 0.0.4) to a
//     caller's buffer and allocates nothing when the buffer is large enough.
//   - Names and label names are validated once, at registration.
//
// Limits:
//   - A labelled family holds at most the MaxSeries given at registration.
//     Label sets past the limit share one overflow series whose every label
//     value is OverflowLabel, and are counted in
//     metrics_series_overflow_total{family="<name>"}, written with each Set
//     that has a family.
//   - Counters are uint64 and wrap after 2^64 increments; histograms count
//     observations in uint64 and sum them in float64.
//   - Series are written in registration order, not sorted; Prometheus does
//     not require sorted input.
//
// All types are safe for concurrent use.
package metrics

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OverflowLabel is the value of every label of the series that collects the
// updates of label sets past a family's MaxSeries.
const OverflowLabel = "overflow"

// Must returns v, and panics if err is not nil. It is meant for start-up code
// that registers metrics with fixed, known-good names.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Set is a registry of metrics written together by WritePrometheus.
// A name may be registered once per Set, and metrics cannot be removed:
// register at start-up, and let a component rebuilt on reload keep the
// metrics of the one it replaces. The zero value is not usable; call NewSet.
type Set struct {
	mu      sync.Mutex
	names   map[string]bool
	entries atomic.Pointer[[]writer] // copy-on-write, in registration order
	vecs    atomic.Pointer[[]*family]
}

// NewSet returns an empty Set.
func NewSet() *Set {
	s := &Set{names: make(map[string]bool)}
	s.entries.Store(&[]writer{})
	s.vecs.Store(&[]*family{})
	return s
}

// writer is one registered metric or family.
type writer interface {
	appendTo(dst []byte) []byte
}

func (s *Set) register(name, help, typ string, w writer, f *family) error {
	if err := checkMetricName(name); err != nil {
		return fmt.Errorf("cannot register metric %q: %w", name, err)
	}
	if strings.ContainsAny(help, "\n") {
		return fmt.Errorf("cannot register metric %q: help text contains a newline", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names[name] {
		return fmt.Errorf("cannot register metric %q: already registered", name)
	}
	s.names[name] = true
	old := *s.entries.Load()
	next := make([]writer, len(old), len(old)+1)
	copy(next, old)
	next = append(next, &header{text: "# HELP " + name + " " + escapeHelp(help) + "\n# TYPE " + name + " " + typ + "\n", w: w})
	s.entries.Store(&next)
	if f != nil {
		oldv := *s.vecs.Load()
		nv := make([]*family, len(oldv), len(oldv)+1)
		copy(nv, oldv)
		nv = append(nv, f)
		s.vecs.Store(&nv)
	}
	return nil
}

// header writes the HELP and TYPE lines before a metric's samples.
type header struct {
	text string
	w    writer
}

func (h *header) appendTo(dst []byte) []byte {
	dst = append(dst, h.text...)
	return h.w.appendTo(dst)
}

// WritePrometheus appends every registered metric in the Prometheus text
// exposition format to dst and returns the extended buffer.
func (s *Set) WritePrometheus(dst []byte) []byte {
	for _, w := range *s.entries.Load() {
		dst = w.appendTo(dst)
	}
	vecs := *s.vecs.Load()
	if len(vecs) == 0 {
		return dst
	}
	dst = append(dst, "# HELP metrics_series_overflow_total Updates to label sets refused because their family was at its series limit.\n# TYPE metrics_series_overflow_total counter\n"...)
	for _, f := range vecs {
		dst = append(dst, `metrics_series_overflow_total{family="`...)
		dst = append(dst, f.name...)
		dst = append(dst, `"} `...)
		dst = strconv.AppendUint(dst, f.overflows.Load(), 10)
		dst = append(dst, '\n')
	}
	return dst
}

// Counter is a monotonically increasing count.
type Counter struct {
	n      atomic.Uint64
	prefix string // `name{labels} `
}

// Inc adds one to c.
func (c *Counter) Inc() { c.n.Add(1) }

// Add adds n to c.
func (c *Counter) Add(n uint64) { c.n.Add(n) }

// Value returns the current count.
func (c *Counter) Value() uint64 { return c.n.Load() }

func (c *Counter) appendTo(dst []byte) []byte {
	dst = append(dst, c.prefix...)
	dst = strconv.AppendUint(dst, c.n.Load(), 10)
	return append(dst, '\n')
}

// NewCounter registers and returns a counter without labels.
func (s *Set) NewCounter(name, help string) (*Counter, error) {
	c := &Counter{prefix: name + " "}
	if err := s.register(name, help, "counter", c, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// Gauge is a value that can go up and down.
type Gauge struct {
	bits   atomic.Uint64
	prefix string
}

// Set sets g to v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Add adds d (which may be negative) to g.
func (g *Gauge) Add(d float64) { addFloat(&g.bits, d) }

// Value returns the current value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

func (g *Gauge) appendTo(dst []byte) []byte {
	dst = append(dst, g.prefix...)
	dst = appendFloat(dst, g.Value())
	return append(dst, '\n')
}

// NewGauge registers and returns a gauge without labels.
func (s *Set) NewGauge(name, help string) (*Gauge, error) {
	g := &Gauge{prefix: name + " "}
	if err := s.register(name, help, "gauge", g, nil); err != nil {
		return nil, err
	}
	return g, nil
}

type gaugeFunc struct {
	prefix string
	f      func() float64
}

func (g *gaugeFunc) appendTo(dst []byte) []byte {
	dst = append(dst, g.prefix...)
	dst = appendFloat(dst, g.f())
	return append(dst, '\n')
}

// NewGaugeFunc registers a gauge whose value is f(), called at each write.
// f must be safe for concurrent use, fast, and must not call WritePrometheus.
// It suits values owned elsewhere: a snapshot's age, a queue's length.
func (s *Set) NewGaugeFunc(name, help string, f func() float64) error {
	if f == nil {
		return fmt.Errorf("cannot register metric %q: nil function", name)
	}
	return s.register(name, help, "gauge", &gaugeFunc{prefix: name + " ", f: f}, nil)
}

type counterFunc struct {
	prefix string
	f      func() uint64
}

func (c *counterFunc) appendTo(dst []byte) []byte {
	dst = append(dst, c.prefix...)
	dst = strconv.AppendUint(dst, c.f(), 10)
	return append(dst, '\n')
}

// NewCounterFunc registers a counter whose value is f(), called at each
// write; f must never decrease and must be safe for concurrent use. It suits
// counts kept elsewhere, such as a cache's hits.
func (s *Set) NewCounterFunc(name, help string, f func() uint64) error {
	if f == nil {
		return fmt.Errorf("cannot register metric %q: nil function", name)
	}
	return s.register(name, help, "counter", &counterFunc{prefix: name + " ", f: f}, nil)
}

// Histogram counts observations in fixed buckets chosen at registration.
type Histogram struct {
	upper   []float64       // sorted upper bounds, without +Inf
	counts  []atomic.Uint64 // len(upper)+1; the last is the +Inf bucket
	sumBits atomic.Uint64
	// Pre-rendered text: bucketPrefix[i] is `name_bucket{labels,le="x"} `.
	bucketPrefix []string
	sumPrefix    string
	countPrefix  string
}

// Observe records v. NaN is recorded in the +Inf bucket and poisons the sum,
// as in the reference client.
func (h *Histogram) Observe(v float64) {
	// Linear search: bucket lists are short (≤ 30) and this beats binary
	// search on them.
	i := 0
	for i < len(h.upper) && !(v <= h.upper[i]) {
		i++
	}
	h.counts[i].Add(1)
	addFloat(&h.sumBits, v)
}

// ObserveDuration records d in seconds, the Prometheus base unit.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Sum returns the sum of observations.
func (h *Histogram) Sum() float64 { return math.Float64frombits(h.sumBits.Load()) }

// Upper returns the buckets' upper bounds, sorted, without +Inf. The slice
// is shared: do not modify it.
func (h *Histogram) Upper() []float64 { return h.upper }

// AppendCounts appends the count of each bucket (not cumulative; the last
// is the +Inf bucket, so len(Upper())+1 of them) to dst, for callers that
// take their own samples of the distribution (the studio's dashboard).
func (h *Histogram) AppendCounts(dst []uint64) []uint64 {
	for i := range h.counts {
		dst = append(dst, h.counts[i].Load())
	}
	return dst
}

func (h *Histogram) appendTo(dst []byte) []byte {
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		dst = append(dst, h.bucketPrefix[i]...)
		dst = strconv.AppendUint(dst, cum, 10)
		dst = append(dst, '\n')
	}
	dst = append(dst, h.sumPrefix...)
	dst = appendFloat(dst, h.Sum())
	dst = append(dst, '\n')
	dst = append(dst, h.countPrefix...)
	dst = strconv.AppendUint(dst, cum, 10)
	return append(dst, '\n')
}

func newHistogram(name, labels string, upper []float64) *Histogram {
	h := &Histogram{upper: upper, counts: make([]atomic.Uint64, len(upper)+1)}
	sep := ""
	if labels != "" {
		sep = ","
	}
	for _, u := range upper {
		h.bucketPrefix = append(h.bucketPrefix, name+"_bucket{"+labels+sep+`le="`+string(appendFloat(nil, u))+`"} `)
	}
	h.bucketPrefix = append(h.bucketPrefix, name+"_bucket{"+labels+sep+`le="+Inf"} `)
	if labels == "" {
		h.sumPrefix, h.countPrefix = name+"_sum ", name+"_count "
	} else {
		h.sumPrefix, h.countPrefix = name+"_sum{"+labels+"} ", name+"_count{"+labels+"} "
	}
	return h
}

func checkBuckets(buckets []float64) ([]float64, error) {
	if len(buckets) == 0 {
		return nil, fmt.Errorf("no buckets")
	}
	for i, b := range buckets {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Errorf("bucket %d is %v; buckets must be finite (+Inf is implicit)", i, b)
		}
		if i > 0 && b <= buckets[i-1] {
			return nil, fmt.Errorf("bucket %d (%v) is not above bucket %d (%v)", i, b, i-1, buckets[i-1])
		}
	}
	return append([]float64(nil), buckets...), nil
}

// NewHistogram registers and returns a histogram without labels. buckets are
// the finite upper bounds in increasing order; a +Inf bucket is added.
func (s *Set) NewHistogram(name, help string, buckets []float64) (*Histogram, error) {
	upper, err := checkBuckets(buckets)
	if err != nil {
		return nil, fmt.Errorf("cannot register metric %q: %w", name, err)
	}
	h := newHistogram(name, "", upper)
	if err := s.register(name, help, "histogram", h, nil); err != nil {
		return nil, err
	}
	return h, nil
}

// ExponentialBuckets returns n bounds: start, start*factor, start*factor², ...
// It returns nil if start <= 0, factor <= 1 or n < 1.
func ExponentialBuckets(start, factor float64, n int) []float64 {
	if start <= 0 || factor <= 1 || n < 1 {
		return nil
	}
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// LatencyBuckets are histogram bounds in seconds from 5µs to about 2.6s,
// doubling: they suit a request path measured in microseconds.
var LatencyBuckets = ExponentialBuckets(5e-6, 2, 20)

func addFloat(bits *atomic.Uint64, d float64) {
	for {
		old := bits.Load()
		if bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// appendFloat writes v as Prometheus expects: shortest round-trip form,
// with +Inf, -Inf and NaN spelled out.
func appendFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

func checkMetricName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return fmt.Errorf("invalid character %q at %d; names match [a-zA-Z_:][a-zA-Z0-9_:]*", c, i)
	}
	return nil
}

func checkLabelName(name string) error {
	if name == "" {
		return fmt.Errorf("empty label name")
	}
	if strings.HasPrefix(name, "__") {
		return fmt.Errorf("label name %q is reserved (starts with __)", name)
	}
	if name == "le" || name == "quantile" {
		return fmt.Errorf("label name %q is reserved", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return fmt.Errorf("label name %q: invalid character %q at %d", name, c, i)
	}
	return nil
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func escapeLabelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}
