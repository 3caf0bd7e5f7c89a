#!/bin/sh
# Measures the memory of a snapshot load and reload in `nba serve`:
# VmHWM (peak RSS) and VmRSS (steady) from /proc/PID/status after the first
# load and after a reload of the same file (touched, then SIGHUP), so the
# reload holds the served snapshot and the new one at once. live_heap_MB is
# HeapAlloc right after a forced GC (admin /debug/pprof/heap?gc=1),
# snapshot_MB the nba_snapshot_bytes metric.
#
# usage: bench/snapmem/run.sh NBA_BINARY BUNDLE_DIR [ROUNDS]
# Bundles: go run ./bench/gen -bundle -out DIR -customers N -actions 200
set -eu
bin=$1 dir=$2 rounds=${3:-1}
port=${SNAPMEM_PORT:-18480}
kb() { awk -v k="$1" '$1 == k":" {print $2}' /proc/"$pid"/status; }
mb() { echo "$1" | awk '{printf "%.0f", $1/1024}'; }
snapfile=$(awk '/^snapshot:/ {s=1} s && $1 == "file:" {print $2; exit}' "$dir/bundle.yaml")
for r in $(seq "$rounds"); do
	state=$(mktemp -d)
	t0=$(date +%s.%N)
	"$bin" serve -bundle "$dir" -state "$state" -http.addr 127.0.0.1:$port -admin.addr 127.0.0.1:$((port + 1)) \
		-reload.interval 0 -log.level warn 2>"$state/log" &
	pid=$!
	until curl -sf -o /dev/null http://127.0.0.1:$port/readyz; do
		kill -0 $pid 2>/dev/null || { cat "$state/log"; exit 1; }
		sleep 0.05
	done
	t1=$(date +%s.%N)
	sleep 3
	hwm1=$(kb VmHWM) rss1=$(kb VmRSS)
	heap=$(curl -sf "http://127.0.0.1:$((port + 1))/debug/pprof/heap?gc=1&debug=1" | awk '$2 == "HeapAlloc" {printf "%.0f", $4/1048576}')
	snap=$(curl -sf http://127.0.0.1:$port/metrics | awk '$1 == "nba_snapshot_bytes" {printf "%.0f", $2/1048576}')
	touch "$dir/$snapfile"
	kill -HUP $pid
	until curl -sf http://127.0.0.1:$((port + 1))/admin/status | grep -q '"reloads":{"failed":0,"ok":1}'; do sleep 0.05; done
	t2=$(date +%s.%N)
	sleep 3
	hwm2=$(kb VmHWM) rss2=$(kb VmRSS)
	kill $pid
	wait $pid || true
	rm -rf "$state"
	echo "$(basename "$bin") load_s=$(echo "$t1 - $t0" | bc) load_peak_MB=$(mb $hwm1) steady_MB=$(mb $rss1) live_heap_MB=$heap snapshot_MB=$snap reload_s=$(echo "$t2 - $t1 - 3" | bc) reload_peak_MB=$(mb $hwm2) steady_after_reload_MB=$(mb $rss2)"
done
