package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// On-disk layout.
//
// A segment file starts with a 20-byte header:
//
//	magic "NBAWAL\x00" (7) | version (1) | segment sequence u64 LE | crc32c of the previous 16 bytes u32 LE
//
// followed by records, each framed as
//
//	length u32 LE | ^length u32 LE | crc32c(payload) u32 LE | payload
//
// The length is stored twice (the second copy bit-inverted) so that a damaged
// length in the middle of a log is reported as corruption instead of being
// mistaken for a record that runs past the end of the file (a torn tail).
const (
	segMagic       = "NBAWAL\x00"
	formatVersion  = 1
	segHeaderSize  = 20
	frameHeaderLen = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// appendFrame appends one framed record to dst.
func appendFrame(dst, payload []byte) []byte {
	n := uint32(len(payload))
	dst = binary.LittleEndian.AppendUint32(dst, n)
	dst = binary.LittleEndian.AppendUint32(dst, ^n)
	dst = binary.LittleEndian.AppendUint32(dst, crc(payload))
	return append(dst, payload...)
}

func appendSegHeader(dst []byte, seq uint64) []byte {
	start := len(dst)
	dst = append(dst, segMagic...)
	dst = append(dst, formatVersion)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	return binary.LittleEndian.AppendUint32(dst, crc(dst[start:]))
}

// parseSegHeader checks a segment header and returns its sequence number.
func parseSegHeader(b []byte) (uint64, error) {
	if len(b) < segHeaderSize {
		return 0, io.ErrUnexpectedEOF
	}
	if string(b[:7]) != segMagic {
		return 0, errors.New("bad magic")
	}
	if got := binary.LittleEndian.Uint32(b[16:20]); got != crc(b[:16]) {
		return 0, errors.New("header crc mismatch")
	}
	if b[7] != formatVersion {
		return 0, fmt.Errorf("unsupported version %d", b[7])
	}
	return binary.LittleEndian.Uint64(b[8:16]), nil
}

// scanResult says how a scan of a segment's records ended.
type scanResult struct {
	end     int64  // offset just after the last good record
	torn    bool   // the bytes from end to EOF are an incomplete final write
	corrupt int64  // offset of a corrupt record, or -1
	why     string // why the record at corrupt is bad
	next    int64  // with SkipCorrupt: where scanning resumed, or -1 if it could not
}

// frameAt classifies the record at off in data (data is the whole segment).
// It returns the payload and the offset after it, or a reason it is bad and
// whether that badness looks like a torn tail.
func frameAt(data []byte, off int64, maxRecord int) (payload []byte, next int64, why string, torn bool) {
	rest := data[off:]
	if len(rest) < frameHeaderLen {
		return nil, 0, "incomplete record header", true
	}
	n := binary.LittleEndian.Uint32(rest[0:4])
	if ^n != binary.LittleEndian.Uint32(rest[4:8]) {
		// A torn write can leave zeros (a file extended but not written
		// before a power loss); anything else is damage.
		return nil, 0, "bad record length", allZero(rest)
	}
	if int64(n) > int64(maxRecord) {
		return nil, 0, fmt.Sprintf("record length %d exceeds the limit of %d bytes", n, maxRecord), false
	}
	end := off + frameHeaderLen + int64(n)
	if end > int64(len(data)) {
		return nil, 0, "incomplete record", true
	}
	p := rest[frameHeaderLen : frameHeaderLen+int(n)]
	if crc(p) != binary.LittleEndian.Uint32(rest[8:12]) {
		// The last record of the file may have been partly persisted.
		return nil, 0, "crc mismatch", end == int64(len(data)) || allZero(data[end:])
	}
	return p, end, "", false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// scanRecords calls fn for every good record of a segment body starting at
// off. It stops at the first bad record unless skip is set, in which case it
// resynchronises on the next offset that holds a good record.
func scanRecords(data []byte, off int64, maxRecord int, skip bool, onCorrupt func(off int64, why string), fn func(rec []byte) error) (scanResult, error) {
	res := scanResult{corrupt: -1, next: -1}
	for off < int64(len(data)) {
		p, next, why, torn := frameAt(data, off, maxRecord)
		if why == "" {
			if err := fn(p); err != nil {
				res.end = off
				return res, fmt.Errorf("at offset %d: %w", off, err)
			}
			off = next
			continue
		}
		if torn {
			res.end, res.torn = off, true
			return res, nil
		}
		if res.corrupt < 0 {
			res.corrupt, res.why = off, why
		}
		if !skip {
			res.end = off
			return res, nil
		}
		onCorrupt(off, why)
		// Resynchronise: find the next offset that frames a good record.
		found := int64(-1)
		for o := off + 1; o+frameHeaderLen <= int64(len(data)); o++ {
			if _, _, w, _ := frameAt(data, o, maxRecord); w == "" {
				found = o
				break
			}
		}
		if found < 0 {
			res.end = off
			return res, nil
		}
		res.next = found
		off = found
	}
	res.end = off
	return res, nil
}
