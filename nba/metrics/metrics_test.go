package metrics

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// sample is one parsed exposition line.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseExposition parses the text format strictly enough to catch what
// Prometheus would reject: unknown line shapes, samples before their TYPE,
// bad escapes, unparsable values, repeated series.
func parseExposition(t *testing.T, text string) (types map[string]string, samples []sample) {
	t.Helper()
	types = map[string]string{}
	seen := map[string]bool{}
	if text != "" && !strings.HasSuffix(text, "\n") {
		t.Fatalf("exposition does not end in a newline")
	}
	for ln, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("line %d %q: %s", ln+1, line, fmt.Sprintf(format, args...))
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, ok := strings.Cut(rest, " ")
			if !ok || checkMetricName(name) != nil {
				fail("bad TYPE line")
			}
			if _, dup := types[name]; dup {
				fail("second TYPE for %s", name)
			}
			switch typ {
			case "counter", "gauge", "histogram":
			default:
				fail("unknown type %q", typ)
			}
			types[name] = typ
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			fail("unexpected line")
		}
		s := sample{labels: map[string]string{}}
		i := strings.IndexAny(line, "{ ")
		if i < 0 {
			fail("no value")
		}
		s.name = line[:i]
		rest := line[i:]
		if rest[0] == '{' {
			rest = rest[1:]
			for rest[0] != '}' {
				eq := strings.Index(rest, `="`)
				if eq < 0 {
					fail("bad label")
				}
				lname := rest[:eq]
				rest = rest[eq+2:]
				var val strings.Builder
				for {
					if rest == "" {
						fail("unterminated label value")
					}
					c := rest[0]
					rest = rest[1:]
					if c == '"' {
						break
					}
					if c == '\\' {
						switch rest[0] {
						case '\\':
							val.WriteByte('\\')
						case '"':
							val.WriteByte('"')
						case 'n':
							val.WriteByte('\n')
						default:
							fail("bad escape")
						}
						rest = rest[1:]
						continue
					}
					val.WriteByte(c)
				}
				if _, dup := s.labels[lname]; dup {
					fail("label %s repeated", lname)
				}
				s.labels[lname] = val.String()
				if rest[0] == ',' {
					rest = rest[1:]
				}
			}
			rest = rest[1:]
		}
		if !strings.HasPrefix(rest, " ") {
			fail("no space before value")
		}
		v, err := strconv.ParseFloat(rest[1:], 64)
		if err != nil {
			fail("value: %v", err)
		}
		s.value = v
		base := s.name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(s.name, suf); ok && types[b] == "histogram" {
				base = b
			}
		}
		if _, ok := types[base]; !ok {
			fail("sample before its TYPE")
		}
		key := line[:len(line)-len(rest)]
		if seen[key] {
			fail("series repeated")
		}
		seen[key] = true
		samples = append(samples, s)
	}
	return types, samples
}

func find(samples []sample, name string, labels map[string]string) (float64, bool) {
	for _, s := range samples {
		if s.name != name || len(s.labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

func TestWritePrometheusParsesBack(t *testing.T) {
	s := NewSet()
	c := Must(s.NewCounter("nba_requests_total", "Requests served."))
	g := Must(s.NewGauge("nba_queue_length", "Items queued."))
	h := Must(s.NewHistogram("nba_latency_seconds", "Latency.", []float64{0.001, 0.01, 0.1}))
	cv := Must(s.NewCounterVec("nba_decisions_total", "Decisions by action and channel.", []string{"action", "channel"}, 10))
	hv := Must(s.NewHistogramVec("nba_http_seconds", "Latency by endpoint.", []string{"endpoint"}, LatencyBuckets, 4))
	gv := Must(s.NewGaugeVec("nba_age_seconds", "Age by part.", []string{"part"}, 2))
	if err := s.NewGaugeFunc("nba_snapshot_age_seconds", "Snapshot age.", func() float64 { return 42.5 }); err != nil {
		t.Fatal(err)
	}
	if err := s.NewCounterFunc("nba_cache_hits_total", "Hits.", func() uint64 { return 7 }); err != nil {
		t.Fatal(err)
	}

	c.Add(3)
	c.Inc()
	g.Set(-2.5)
	g.Add(1)
	for _, v := range []float64{0.0005, 0.005, 0.005, 0.05, 5} {
		h.Observe(v)
	}
	cv.With("offer-1", "web").Add(2)
	cv.With(`we"ird\va`+"\nl", "app").Inc()
	hv.With("/v1/decide").Observe(20e-6)
	gv.With("model").Set(math.Inf(1))

	types, samples := parseExposition(t, string(s.WritePrometheus(nil)))
	want := map[string]string{
		"nba_requests_total": "counter", "nba_queue_length": "gauge", "nba_latency_seconds": "histogram",
		"nba_decisions_total": "counter", "nba_http_seconds": "histogram", "nba_age_seconds": "gauge",
		"nba_snapshot_age_seconds": "gauge", "nba_cache_hits_total": "counter", "metrics_series_overflow_total": "counter",
	}
	for n, typ := range want {
		if types[n] != typ {
			t.Errorf("type of %s = %q, want %q", n, types[n], typ)
		}
	}
	check := func(name string, labels map[string]string, want float64) {
		t.Helper()
		got, ok := find(samples, name, labels)
		if !ok {
			t.Errorf("%s%v missing", name, labels)
		} else if got != want && !(math.IsInf(want, 1) && math.IsInf(got, 1)) {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	check("nba_requests_total", nil, 4)
	check("nba_queue_length", nil, -1.5)
	check("nba_latency_seconds_bucket", map[string]string{"le": "0.001"}, 1)
	check("nba_latency_seconds_bucket", map[string]string{"le": "0.01"}, 3)
	check("nba_latency_seconds_bucket", map[string]string{"le": "0.1"}, 4)
	check("nba_latency_seconds_bucket", map[string]string{"le": "+Inf"}, 5)
	check("nba_latency_seconds_count", nil, 5)
	check("nba_latency_seconds_sum", nil, h.Sum())
	check("nba_decisions_total", map[string]string{"action": "offer-1", "channel": "web"}, 2)
	check("nba_decisions_total", map[string]string{"action": `we"ird\va` + "\nl", "channel": "app"}, 1)
	check("nba_http_seconds_count", map[string]string{"endpoint": "/v1/decide"}, 1)
	check("nba_http_seconds_bucket", map[string]string{"endpoint": "/v1/decide", "le": "+Inf"}, 1)
	check("nba_age_seconds", map[string]string{"part": "model"}, math.Inf(1))
	check("nba_snapshot_age_seconds", nil, 42.5)
	check("nba_cache_hits_total", nil, 7)
	check("metrics_series_overflow_total", map[string]string{"family": "nba_decisions_total"}, 0)

	// Histogram buckets are cumulative and end at the count.
	var prev float64
	for _, smp := range samples {
		if smp.name == "nba_http_seconds_bucket" {
			if smp.value < prev {
				t.Errorf("bucket le=%s = %v below previous %v", smp.labels["le"], smp.value, prev)
			}
			prev = smp.value
		}
	}
}

func TestFamilyOverflow(t *testing.T) {
	s := NewSet()
	cv := Must(s.NewCounterVec("x_total", "x", []string{"k"}, 2))
	cv.With("a").Inc()
	cv.With("b").Inc()
	cv.With("c").Inc() // over the limit
	cv.With("d").Add(2)
	cv.With("a").Inc() // existing series still served
	if got := cv.Overflows(); got != 2 {
		t.Errorf("Overflows = %d, want 2", got)
	}
	_, samples := parseExposition(t, string(s.WritePrometheus(nil)))
	for _, tc := range []struct {
		name string
		l    map[string]string
		want float64
	}{
		{"x_total", map[string]string{"k": "a"}, 2},
		{"x_total", map[string]string{"k": "b"}, 1},
		{"x_total", map[string]string{"k": OverflowLabel}, 3},
		{"metrics_series_overflow_total", map[string]string{"family": "x_total"}, 2},
	} {
		if got, ok := find(samples, tc.name, tc.l); !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.l, got, ok, tc.want)
		}
	}
	if _, ok := find(samples, "x_total", map[string]string{"k": "c"}); ok {
		t.Errorf("series past the limit was written")
	}
}

func TestRegistrationErrors(t *testing.T) {
	s := NewSet()
	Must(s.NewCounter("dup_total", "d"))
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"duplicate", func() error { _, err := s.NewGauge("dup_total", ""); return err }()},
		{"empty name", func() error { _, err := s.NewCounter("", ""); return err }()},
		{"bad char", func() error { _, err := s.NewCounter("a-b", ""); return err }()},
		{"leading digit", func() error { _, err := s.NewCounter("1a", ""); return err }()},
		{"help newline", func() error { _, err := s.NewCounter("h", "a\nb"); return err }()},
		{"no labels", func() error { _, err := s.NewCounterVec("v1", "", nil, 1); return err }()},
		{"reserved label", func() error { _, err := s.NewCounterVec("v2", "", []string{"__x"}, 1); return err }()},
		{"le label", func() error { _, err := s.NewHistogramVec("v3", "", []string{"le"}, []float64{1}, 1); return err }()},
		{"repeated label", func() error { _, err := s.NewGaugeVec("v4", "", []string{"a", "a"}, 1); return err }()},
		{"zero max series", func() error { _, err := s.NewCounterVec("v5", "", []string{"a"}, 0); return err }()},
		{"no buckets", func() error { _, err := s.NewHistogram("h1", "", nil); return err }()},
		{"unsorted buckets", func() error { _, err := s.NewHistogram("h2", "", []float64{1, 1}); return err }()},
		{"inf bucket", func() error { _, err := s.NewHistogram("h3", "", []float64{1, math.Inf(1)}); return err }()},
		{"nil func", s.NewGaugeFunc("g1", "", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("registration succeeded, want an error")
			}
			if !strings.HasPrefix(tc.err.Error(), "cannot register metric") {
				t.Errorf("error %q does not name the operation", tc.err)
			}
		})
	}
	// Failed registrations leave nothing behind.
	_, samples := parseExposition(t, string(s.WritePrometheus(nil)))
	if len(samples) != 1 {
		t.Errorf("got %d samples, want only dup_total", len(samples))
	}
}

func TestWithWrongArityPanics(t *testing.T) {
	s := NewSet()
	cv := Must(s.NewCounterVec("a_total", "", []string{"x", "y"}, 4))
	defer func() {
		if recover() == nil {
			t.Error("With with one value for two labels did not panic")
		}
	}()
	cv.With("only-one")
}

func TestNoAllocs(t *testing.T) {
	s := NewSet()
	c := Must(s.NewCounter("c_total", ""))
	h := Must(s.NewHistogram("h_seconds", "", LatencyBuckets))
	cv := Must(s.NewCounterVec("cv_total", "", []string{"action", "channel"}, 100))
	hv := Must(s.NewHistogramVec("hv_seconds", "", []string{"endpoint"}, LatencyBuckets, 10))
	cv.With("a", "web").Inc()
	hv.With("/v1/decide").Observe(1)
	buf := s.WritePrometheus(nil)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"counter", func() { c.Inc() }},
		{"histogram", func() { h.Observe(0.0002) }},
		{"counter vec lookup", func() { cv.With("a", "web").Inc() }},
		{"histogram vec lookup", func() { hv.With("/v1/decide").Observe(0.1) }},
		{"write", func() { buf = s.WritePrometheus(buf[:0]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tc.f); n > 0 {
				t.Errorf("%v allocs per run, want 0", n)
			}
		})
	}
}

func TestConcurrentUpdates(t *testing.T) {
	s := NewSet()
	cv := Must(s.NewCounterVec("n_total", "", []string{"k"}, 8))
	h := Must(s.NewHistogram("h", "", []float64{1}))
	var wg sync.WaitGroup
	const workers, per = 4, 1000
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := 0; i < per; i++ {
				cv.With(strconv.Itoa(i % 5)).Inc()
				h.Observe(0.5)
				if i%100 == 0 {
					buf = s.WritePrometheus(buf[:0])
				}
			}
		}()
	}
	wg.Wait()
	var total uint64
	for i := 0; i < 5; i++ {
		total += cv.With(strconv.Itoa(i)).Value()
	}
	if total != workers*per || h.Count() != workers*per || h.Sum() != workers*per*0.5 {
		t.Errorf("total %d, histogram count %d sum %v; want %d", total, h.Count(), h.Sum(), workers*per)
	}
}

func BenchmarkCounterVecWith(b *testing.B) {
	s := NewSet()
	cv := Must(s.NewCounterVec("cv_total", "", []string{"action", "channel"}, 1000))
	for i := 0; i < 200; i++ {
		cv.With("action-"+strconv.Itoa(i), "web")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cv.With("action-117", "web").Inc()
		}
	})
}

func BenchmarkWritePrometheus(b *testing.B) {
	s := NewSet()
	cv := Must(s.NewCounterVec("cv_total", "", []string{"action", "channel"}, 1000))
	hv := Must(s.NewHistogramVec("hv_seconds", "", []string{"endpoint"}, LatencyBuckets, 16))
	for i := 0; i < 200; i++ {
		cv.With("action-"+strconv.Itoa(i), "web").Inc()
	}
	for i := 0; i < 10; i++ {
		hv.With("/e" + strconv.Itoa(i)).Observe(0.001)
	}
	buf := s.WritePrometheus(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf = s.WritePrometheus(buf[:0])
	}
}

func ExampleSet() {
	s := NewSet()
	served := Must(s.NewCounterVec("nba_decisions_total", "Decisions by channel.", []string{"channel"}, 16))
	web := served.With("web") // resolve once, update on the hot path
	web.Inc()
	fmt.Print(string(s.WritePrometheus(nil)))
	// Output:
	// # HELP nba_decisions_total Decisions by channel.
	// # TYPE nba_decisions_total counter
	// nba_decisions_total{channel="web"} 1
	// # HELP metrics_series_overflow_total Updates to label sets refused because their family was at its series limit.
	// # TYPE metrics_series_overflow_total counter
	// metrics_series_overflow_total{family="nba_decisions_total"} 0
}
