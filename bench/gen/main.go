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
//
// With -bundle it writes a whole benchmark bundle instead (bench/bundlegen):
// bundle.yaml, a catalog of -actions actions over 4 channels with rules on
// profile and context, caps and contact history for 10% of customers, an
// XGBoost JSON model of -trees trees of depth -depth over 32 customer and 8
// action features, and the customer snapshot:
//
//	go run ./bench/gen -bundle -out DIR -customers 1000000 -actions 200
//	go run ./cmd/nba serve -bundle DIR
package main

import (
	"flag"
	"fmt"
	"os"

	"nba/bench/bundlegen"
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
	bundle := flag.Bool("bundle", false, "write a whole benchmark bundle (catalog, model, snapshot, contacts) instead of a snapshot")
	actions := flag.Int("actions", 200, "with -bundle: number of actions")
	trees := flag.Int("trees", 200, "with -bundle: model trees")
	depth := flag.Int("depth", 6, "with -bundle: depth of every tree")
	flag.Parse()
	if *bundle {
		b, err := bundlegen.Generate(bundlegen.Config{Customers: spec.Customers, Actions: *actions, Trees: *trees, Depth: *depth, Seed: spec.Seed})
		if err == nil {
			err = b.Write(*out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		fmt.Println(*out)
		return
	}
	path, err := writeSnapshotFile(*out, spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}
