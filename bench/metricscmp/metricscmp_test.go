package metricscmp

import (
	"bytes"
	"strconv"
	"testing"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"nba/nba/metrics"
)

// The decide path's shape: 200 actions x 1 channel of labelled counters
// (served, suppressed, ... per action), a few plain counters, 16 endpoints
// of latency histograms.
const actions = 200

func actionName(i int) string { return "act_" + strconv.Itoa(i) }

// BenchmarkInc: a counter resolved at start-up, incremented per request.
func BenchmarkInc(b *testing.B) {
	b.Run("nba", func(b *testing.B) {
		c := metrics.Must(metrics.NewSet().NewCounter("nba_decisions_total", "Decisions."))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Inc()
			}
		})
	})
	b.Run("victoriametrics", func(b *testing.B) {
		c := vm.NewSet().NewCounter("nba_decisions_total")
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Inc()
			}
		})
	})
	b.Run("client_golang", func(b *testing.B) {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "nba_decisions_total", Help: "Decisions."})
		prometheus.NewRegistry().MustRegister(c)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Inc()
			}
		})
	})
}

// BenchmarkLabelLookup: the counter of one action and channel, found per
// request by its label values.
func BenchmarkLabelLookup(b *testing.B) {
	b.Run("nba", func(b *testing.B) {
		cv := metrics.Must(metrics.NewSet().NewCounterVec("nba_served_total", "Served.", []string{"action", "channel"}, 1000))
		for i := range actions {
			cv.With(actionName(i), "web")
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				cv.With("act_117", "web").Inc()
			}
		})
	})
	b.Run("victoriametrics", func(b *testing.B) {
		s := vm.NewSet()
		for i := range actions {
			s.GetOrCreateCounter(`nba_served_total{action="` + actionName(i) + `",channel="web"}`)
		}
		// The name is built per request, as labels from a request would be.
		action, channel := "act_117", "web"
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var buf []byte
			for pb.Next() {
				buf = append(buf[:0], `nba_served_total{action="`...)
				buf = append(buf, action...)
				buf = append(buf, `",channel="`...)
				buf = append(buf, channel...)
				buf = append(buf, `"}`...)
				s.GetOrCreateCounter(string(buf)).Inc()
			}
		})
	})
	b.Run("client_golang", func(b *testing.B) {
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nba_served_total", Help: "Served."}, []string{"action", "channel"})
		prometheus.NewRegistry().MustRegister(cv)
		for i := range actions {
			cv.WithLabelValues(actionName(i), "web")
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				cv.WithLabelValues("act_117", "web").Inc()
			}
		})
	})
}

// BenchmarkExposition: writing every series, as a scrape does.
func BenchmarkExposition(b *testing.B) {
	b.Run("nba", func(b *testing.B) {
		s := metrics.NewSet()
		cv := metrics.Must(s.NewCounterVec("nba_served_total", "Served.", []string{"action", "channel"}, 1000))
		hv := metrics.Must(s.NewHistogramVec("nba_http_request_duration_seconds", "Latency.", []string{"endpoint"}, metrics.LatencyBuckets, 16))
		for i := range actions {
			cv.With(actionName(i), "web").Inc()
		}
		for i := range 16 {
			hv.With("/e" + strconv.Itoa(i)).Observe(0.001)
		}
		buf := s.WritePrometheus(nil)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf = s.WritePrometheus(buf[:0])
		}
	})
	b.Run("victoriametrics", func(b *testing.B) {
		s := vm.NewSet()
		for i := range actions {
			s.GetOrCreateCounter(`nba_served_total{action="` + actionName(i) + `",channel="web"}`).Inc()
		}
		for i := range 16 {
			s.GetOrCreatePrometheusHistogramExt(`nba_http_request_duration_seconds{endpoint="/e`+strconv.Itoa(i)+`"}`, metrics.LatencyBuckets).Update(0.001)
		}
		var buf bytes.Buffer
		s.WritePrometheus(&buf)
		b.SetBytes(int64(buf.Len()))
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			s.WritePrometheus(&buf)
		}
	})
	b.Run("client_golang", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nba_served_total", Help: "Served."}, []string{"action", "channel"})
		hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "nba_http_request_duration_seconds", Help: "Latency.", Buckets: metrics.LatencyBuckets}, []string{"endpoint"})
		reg.MustRegister(cv, hv)
		for i := range actions {
			cv.WithLabelValues(actionName(i), "web").Inc()
		}
		for i := range 16 {
			hv.WithLabelValues("/e" + strconv.Itoa(i)).Observe(0.001)
		}
		var buf bytes.Buffer
		write := func() {
			mfs, err := reg.Gather()
			if err != nil {
				b.Fatal(err)
			}
			enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					b.Fatal(err)
				}
			}
		}
		write()
		b.SetBytes(int64(buf.Len()))
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			write()
		}
	})
}
