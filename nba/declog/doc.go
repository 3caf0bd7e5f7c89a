// Package declog writes every decision and every feedback to rotating,
// compressed JSON Lines files in the background (zstd by default, or the
// Snappy framing format: Config.Codec), and reads them back.
//
// Guarantees and limits:
//
//   - Logging never blocks the caller. LogDecision and LogFeedback encode the
//     record into a pooled buffer and hand it to one writer goroutine through
//     a queue of Config.QueueSize records; when the queue is full the record is
//     dropped and counted (Stats.Dropped). Records larger than
//     Config.MaxRecordBytes are dropped and counted (Stats.TooLarge).
//   - Customer ids never reach the disk: the writer replaces them by a keyed
//     pseudonym, the first 16 bytes of HMAC-SHA256(Config.Secret, id) in hex.
//     The same secret gives the same pseudonym, so logs can be joined with
//     each other (and with Pseudonym offline) but not reversed without it.
//   - The writer collects records into a batch and writes the batch as one
//     zstd frame every Config.FlushInterval, when the batch reaches
//     Config.MaxBatchBytes, on Flush and on Close; the file is fsynced after
//     each batch unless Config.NoSync. A crash loses at most the records of
//     the batch being collected (and, for a machine crash with NoSync, what
//     the OS had not written). The reader recovers every complete batch and
//     says how many records and bytes of an incomplete one were lost.
//   - Files rotate when the next batch would take them past
//     Config.MaxFileBytes (compressed) or when they are older than
//     Config.MaxFileAge; the oldest files beyond Config.MaxFiles are deleted.
//
// # File format
//
// A file is named <prefix>-<UTC time 20060102T150405.000000000Z>-<seq>.jsonl.zst,
// so names sort in the order they were written. It is a valid zstd stream
// (zstd -dc prints the JSON Lines): a sequence of batches, each two frames:
//
//   - a zstd skippable frame (magic 0x184D2A5E, 24-byte payload, ignored by
//     zstd tools) holding, little-endian: u32 "NBDL" tag, u32 record count,
//     u64 uncompressed bytes, u32 compressed bytes of the next frame, u32
//     CRC-32C of those compressed bytes;
//   - one zstd frame of exactly that many compressed bytes, decoding to that
//     many bytes: the batch's records, one JSON object per line ("\n").
//
// With CodecSnappy a file is named <prefix>-<time>-<seq>.jsonl.sz and is a
// valid Snappy framed stream (snappy tools print the JSON Lines): the stream
// identifier chunk, then per batch one skippable chunk of type 0xfd holding
// the same 24 bytes of metadata (the CRC-32C covers the batch's chunks),
// then the batch's data chunks, each of at most 64 KiB of input with its
// masked CRC-32C. The reader tells the formats apart by their first bytes.
//
// # Record schema
//
// Every line is one JSON object with a "type". Absent optional fields are
// omitted; non-finite numbers are written as null.
//
// type "decision":
//
//	customer   string  pseudonym of the customer id
//	id         string  decision id
//	time       string  RFC 3339 UTC with nanoseconds
//	channel    string
//	placement  string  the requested placement (omitted when "")
//	limit      number  the requested number of actions (omitted when 0)
//	context_digest string  digest of the request context (caller-defined; omitted when "")
//	context    object  the request context: key → string, number or bool
//	                   (records written before it was logged hold the digest
//	                   here as a string; ParseRecord reads both)
//	seed       number  exploration seed of the decision (omitted when 0: no exploration)
//	inputs     object  what the decision read besides the request (omitted when not traced):
//	    known     bool    the profile was found
//	    anonymous bool    no customer id (omitted when false)
//	    profile   object  non-missing profile fields by name: number, time (unix
//	                      seconds) and bool (1/0) fields as numbers, category
//	                      fields as {"s": value, "n": code}
//	    history   array   contact-history counts read: scope, key, outcome,
//	                      window_ns (window in nanoseconds), count
//	    journeys  array   journey states read: journey, step, status,
//	                      entered_at, last_step_at (omitted before the first step)
//	    contacts  array   contact lists read by suppressions (omitted when none):
//	                      scope, key, at_ns (unix nanoseconds), outcomes, as listed
//	control    bool    the customer was in the control group (nothing or a default shown)
//	versions   object  name → version of everything the decision used (catalog, model, ...)
//	candidates array   every candidate that reached scoring, in evaluation order:
//	    action string
//	    p      number  predicted response probability
//	    value  number  value of a response
//	    score  number  ranking score, e.g. p·value
//	removed    object  every other candidate, grouped by the stage that removed it
//	                   (e.g. "eligibility", "contact_policy", "journey"): stage → [action ids]
//	                   (records written before this field listed removed candidates in
//	                   "candidates" with a "stage"; ParseRecord reads both)
//	chosen     array   the shown actions in slot order:
//	    action  string
//	    slot    number  0-based
//	    prob    number  probability that the policy shows this action in this slot
//	    samples number  0 if prob is exact, else its Monte-Carlo sample count
//
// type "feedback":
//
//	customer string  pseudonym
//	decision string  id of the decision it answers (may be empty)
//	time     string  RFC 3339 UTC with nanoseconds
//	action   string
//	event    string  e.g. "impression", "click", "conversion"
//	reward   number
//
// Logger is safe for concurrent use. The reader functions are safe for
// concurrent use on different files.
package declog
