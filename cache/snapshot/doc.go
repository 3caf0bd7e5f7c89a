// Package snapshot loads customer feature snapshots (one row of features per
// customer, exported by a batch job) into immutable, row-major, in-memory
// tables, and swaps them atomically while requests keep reading.
//
// Formats: CSV or TSV with a header whose first column is the customer id,
// JSON Lines (one flat object per line with an id field), and Parquet (flat
// schema of primitive columns). Each may be wrapped in zstd or gzip; format
// and compression are detected from the content, never from the file name.
//
// Column kinds: numbers (float32), categories (dictionary-encoded; codes are
// positions in the sorted dictionary, so they differ between snapshots and
// must be resolved with CategoryCode per snapshot), times (unix seconds;
// "YYYY-MM-DD" dates, RFC 3339 timestamps, "YYYY-MM-DD hh:mm:ss" in UTC) and
// booleans. Empty fields, NA, N/A, null and nan (any case) are missing values
// and stay missing: Number returns NaN, Time and Category return ok=false.
//
// Guarantees:
//   - A Snapshot is immutable after Load/Parse and safe for concurrent use.
//     Lookup and every accessor on the request path allocate nothing.
//   - Memory: all values in []uint32 segments of about 4 MiB, row after row
//     (4 bytes per number, bool or category code, 8 per time, no padding;
//     a row never straddles two segments), so reading every
//     feature of a customer touches a few adjacent cache lines rather than
//     one line per column; all ids in one []byte with uint32 offsets; and an
//     open-addressing table of 8-byte slots (row and a 32-bit hash tag) at
//     load factor <= 0.5. There is no per-customer heap object; 1M customers
//     x 32 numbers take about 1.15x the raw payload (4 bytes per value plus
//     the id bytes).
//   - Loading streams: the file is read through io.ReaderAt and
//     decompressed in blocks of whole lines (4 MiB); each block is split at
//     line boundaries and parsed on all cores, every worker writing straight
//     into the rows it owns in the final table, while the next block is
//     read. Without a declared schema, kinds are inferred in the same pass
//     (numbers first); only when a column is not numeric is the file read
//     (and decompressed) a second time, for those columns.
//   - A Store swaps snapshots with one atomic pointer store; readers never
//     block and never see half of one. A snapshot that fails to load or
//     validate (schema mismatch, duplicate id, unparsable value, shrink beyond
//     Config.MaxShrink) is rejected with an error naming the file, the line
//     or row, the column and the reason; the previous one keeps serving.
//
// Peak memory while loading is the new snapshot, two blocks of text, the
// decompressor's window (zstd: capped by Config.MaxDecoderMemory) and a
// copy of at most one segment, beside the snapshot still being served; the
// file is never held whole (bench/RESULTS.md, "Snapshot load memory"). A
// Parquet file is read in place; a compressed one is decompressed into
// memory once. When inference finds a time column in a CSV or JSON Lines
// file, the rows are laid out again before the second pass (a time takes
// two words where the first pass gave it one), one segment at a time.
//
// Limits (see Config for defaults): decompressed size, zstd decoder memory,
// id length, distinct values per category column, 2^31-1 rows and 4 GiB of
// id bytes per snapshot. A quoted CSV field may not contain a line break
// (lines are the unit of parallel parsing). JSON values must be scalars.
package snapshot
