// Package metricscmp benchmarks nba/metrics, the sidecar's hand-written
// Prometheus exposition, against github.com/VictoriaMetrics/metrics on the
// operations of the decide path: Inc on a counter resolved once, a labelled
// counter looked up per request, and writing /metrics. It is a module of its
// own so that the library it is compared with does not become a dependency
// of nba.
//
//	cd bench/metricscmp && go test -run '^$' -bench . -count 5
package metricscmp
