// Command gen writes synthetic, deterministic customer feature snapshots for
// benchmarks and tests:
//
//	go run ./bench/gen -out DIR -customers N -features F -seed S \
//	    [-format csv|tsv|jsonl|parquet] [-compress zstd|gzip|none] [-mixed]
//
// Numeric features follow plausible shapes (counts, log-normal amounts,
// rates in [0, 1), standard scores), about 2% of values are missing, and
// -mixed adds a category, a date and a bool column. The same flags and seed
// always produce the same bytes. The file is written to
// DIR/snapshot.<format>[.zst|.gz] and its path printed.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	var spec snapshotSpec
	out := flag.String("out", ".", "directory to write the snapshot into")
	flag.IntVar(&spec.Customers, "customers", 100_000, "number of customers (rows)")
	flag.IntVar(&spec.Features, "features", 32, "number of numeric feature columns")
	flag.Uint64Var(&spec.Seed, "seed", 1, "random seed; the output is a function of the flags and the seed")
	flag.StringVar(&spec.Format, "format", "csv", "file format: csv, tsv, jsonl or parquet")
	flag.StringVar(&spec.Compress, "compress", "zstd", "compression: zstd, gzip or none")
	flag.BoolVar(&spec.Mixed, "mixed", false, "add a category, a date and a bool column")
	flag.Float64Var(&spec.Missing, "missing", 0.02, "fraction of missing values")
	flag.Parse()
	path, err := writeSnapshotFile(*out, spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}
