#!/bin/sh
# Model scoring benchmark: nba against XGBoost's own CPU predictor, single
# threaded, same model and rows, measured alternately in the same run.
#
#   bench/xgbcompare/run.sh [DIR] [ROUNDS] [SECONDS]
#
# DIR (default /tmp/xgbcompare) receives the generated models and rows on the
# first run (xgbcompare.py gen; several minutes on a busy machine). Each of
# ROUNDS (default 5) rounds runs, for each model, "nba score -bench" and then
# xgbcompare.py time for SECONDS (default 2) each, so that both see the same
# machine load; the script prints every measurement, then the medians and
# the ratio XGBoost/nba (above 1: nba is faster).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-/tmp/xgbcompare}
rounds=${2:-5}
secs=${3:-2}
py=/usr/bin/python3 # Debian's python3 has python3-xgboost; the one on PATH may not

if [ ! -f "$dir/rows.tsv" ]; then
	"$py" "$here/xgbcompare.py" gen "$dir"
fi
(cd "$root" && go build -o "$dir/nba" ./cmd/nba)

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc: $(nproc)"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "xgboost: $("$py" -c 'import xgboost; print(xgboost.__version__)')"
echo "go: $(go version)"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for m in d8x300 d6x150; do
	: >"$dir/$m.nba" && : >"$dir/$m.xgb"
	i=0
	while [ $i -lt "$rounds" ]; do
		"$dir/nba" score -model "$dir/$m.json" -input "$dir/rows.tsv" -bench "${secs}s" |
			sed -n 's/^ns\/row=\([0-9.]*\).*/\1/p' >>"$dir/$m.nba"
		"$py" "$here/xgbcompare.py" time "$dir/$m.json" "$dir/rows.tsv" "$secs" 1 |
			sed -n 's/^ns\/row=\([0-9.]*\).*/\1/p' >>"$dir/$m.xgb"
		i=$((i + 1))
	done
	trees=${m#*x}
	nba=$(median <"$dir/$m.nba")
	xgb=$(median <"$dir/$m.xgb")
	echo "$m nba ns/row: $(tr '\n' ' ' <"$dir/$m.nba")"
	echo "$m xgboost ns/row: $(tr '\n' ' ' <"$dir/$m.xgb")"
	awk -v m="$m" -v n="$nba" -v x="$xgb" -v t="$trees" 'BEGIN {
		printf "%s median: nba %.0f ns/row (%.1f ns/tree), xgboost %.0f ns/row (%.1f ns/tree), xgboost/nba %.2fx\n",
			m, n, n/t, x, x/t, x/n }'
done
