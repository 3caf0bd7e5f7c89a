package declog

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/klauspost/compress/s2"
)

// Codec is how a Logger compresses its files.
type Codec uint8

// Codecs.
const (
	// CodecZstd writes .jsonl.zst files: zstd frames at zstd's fastest
	// level (zstd -dc prints the JSON Lines). The default.
	CodecZstd Codec = iota
	// CodecSnappy writes .jsonl.sz files in the Snappy framing format,
	// compressed by S2 in its Snappy-compatible mode (snappy tools, e.g.
	// python -m snappy -d, print the JSON Lines). It compresses about five
	// times faster than zstd's fastest level into files about 1.8 times
	// larger (bench/RESULTS.md, "Load"): the choice when the log's CPU
	// matters more than its disk.
	CodecSnappy
)

// ParseCodec returns the codec named s: "zstd" or "snappy".
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "zstd":
		return CodecZstd, nil
	case "snappy":
		return CodecSnappy, nil
	}
	return 0, fmt.Errorf("unknown decision log codec %q (want zstd or snappy)", s)
}

// String returns the codec's name as ParseCodec reads it.
func (c Codec) String() string {
	if c == CodecSnappy {
		return "snappy"
	}
	return "zstd"
}

func (c Codec) suffix() string {
	if c == CodecSnappy {
		return snappySuffix
	}
	return fileSuffix
}

// The Snappy framing format
// (https://github.com/google/snappy/blob/main/framing_format.txt): a file
// starts with the stream identifier chunk; a batch is one chunk of a type
// the format reserves as skippable (snappy tools ignore it) holding the
// same 24 bytes of metadata as a zstd file's skippable frame, then the
// batch's data chunks, each at most 64 KiB of input with the masked CRC-32C
// of that input.
const (
	snappyStreamID   = "\xff\x06\x00\x00sNaPpY"
	snappyMetaChunk  = 0xfd
	snappyCompressed = 0x00
	snappyRaw        = 0x01
	snappyMaxBlock   = 64 << 10
	snappySuffix     = ".jsonl.sz"
)

// snappyCRC is the framing format's masked CRC-32C.
func snappyCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// putMeta writes a batch's metadata: tag, record count, uncompressed
// bytes, compressed bytes and their CRC-32C.
func putMeta(m []byte, count int, raw int, frame []byte) {
	m = m[:metaSize]
	binary.LittleEndian.PutUint32(m[0:], metaTag)
	binary.LittleEndian.PutUint32(m[4:], uint32(count))
	binary.LittleEndian.PutUint64(m[8:], uint64(raw))
	binary.LittleEndian.PutUint32(m[16:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(m[20:], crc32.Checksum(frame, castagnoli))
}

// meta is a batch's decoded metadata.
type meta struct {
	count int
	raw   uint64
	zLen  int64
	sum   uint32
}

// parseMeta decodes and bounds-checks metadata written by putMeta.
func parseMeta(m []byte) (meta, bool) {
	if binary.LittleEndian.Uint32(m[0:]) != metaTag {
		return meta{}, false
	}
	x := meta{count: int(binary.LittleEndian.Uint32(m[4:])), raw: binary.LittleEndian.Uint64(m[8:]),
		zLen: int64(binary.LittleEndian.Uint32(m[16:])), sum: binary.LittleEndian.Uint32(m[20:])}
	ok := x.raw <= maxBatchLimit && x.zLen <= maxBatchLimit+maxBatchLimit/8 && uint64(x.count) <= x.raw
	return x, ok
}

// appendSnappyBatch appends the metadata chunk and the data chunks of
// batch.
func appendSnappyBatch(dst, batch []byte, count int) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, 4+metaSize)...)
	data := len(dst)
	raw := len(batch)
	for len(batch) > 0 {
		piece := batch[:min(len(batch), snappyMaxBlock)]
		batch = batch[len(piece):]
		h := len(dst)
		max := s2.MaxEncodedLen(len(piece))
		dst = slices.Grow(dst, 8+max)[:h+8]
		typ := byte(snappyCompressed)
		if enc := s2.EncodeSnappy(dst[h+8:h+8+max], piece); len(enc) < len(piece) {
			dst = dst[:h+8+len(enc)]
		} else {
			typ = snappyRaw
			dst = append(dst, piece...)
		}
		putChunkHeader(dst[h:], typ, len(dst)-h-4)
		binary.LittleEndian.PutUint32(dst[h+4:], snappyCRC(piece))
	}
	putChunkHeader(dst[start:], snappyMetaChunk, metaSize)
	putMeta(dst[start+4:], count, raw, dst[data:])
	return dst
}

func putChunkHeader(b []byte, typ byte, n int) {
	b[0], b[1], b[2], b[3] = typ, byte(n), byte(n>>8), byte(n>>16)
}

// readSnappy is readFile for the Snappy framing format.
func readSnappy(r io.Reader, fn func(line []byte) error) (ReadStats, error) {
	fr := fileReader{r: r, fn: fn, st: ReadStats{Files: 1}}
	var hdr [4]byte
	var m [metaSize]byte
	var frame, buf []byte
	for {
		if more, err := fr.header(hdr[:]); !more {
			return fr.st, err
		}
		typ, ln := hdr[0], int64(hdr[1])|int64(hdr[2])<<8|int64(hdr[3])<<16
		switch {
		case typ == 0xff && ln == 6:
			var id [6]byte
			k, err := io.ReadFull(r, id[:])
			if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
				return fr.st, err
			}
			if k < len(id) || string(id[:]) != snappyStreamID[4:] {
				fr.lose(0, 4+int64(k), true)
				return fr.st, nil
			}
		case typ == snappyMetaChunk && ln == metaSize:
			k, err := io.ReadFull(r, m[:])
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				fr.lose(0, 4+int64(k), false)
				return fr.st, nil
			}
			if err != nil {
				return fr.st, err
			}
			x, ok := parseMeta(m[:])
			if !ok {
				fr.lose(0, 4+metaSize, true)
				return fr.st, nil
			}
			frame = grow(frame, int(x.zLen))
			k, err = io.ReadFull(r, frame)
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				fr.lose(x.count, 4+metaSize+int64(k), false)
				return fr.st, nil
			}
			if err != nil {
				return fr.st, err
			}
			ok = crc32.Checksum(frame, castagnoli) == x.sum
			if ok {
				buf, ok = decodeSnappyChunks(grow(buf, int(x.raw))[:0], frame)
			}
			if err := fr.emit(buf, ok, x, 4+metaSize+x.zLen); err != nil {
				return fr.st, err
			}
		case typ >= 0x80:
			// Skippable chunks (and padding) this writer never writes.
			k, err := io.CopyN(io.Discard, r, ln)
			if err != nil && err != io.EOF {
				return fr.st, err
			}
			fr.lose(0, 4+k, false)
		default:
			// Data outside a batch, or a chunk type a reader must not skip.
			fr.lose(0, 4, true)
			return fr.st, nil
		}
	}
}

// decodeSnappyChunks appends to dst the data of frame's chunks, checking
// each chunk's CRC; it never grows dst beyond its capacity (the batch's
// stated size).
func decodeSnappyChunks(dst, frame []byte) ([]byte, bool) {
	for len(frame) > 0 {
		if len(frame) < 8 {
			return dst, false
		}
		typ, ln := frame[0], int(frame[1])|int(frame[2])<<8|int(frame[3])<<16
		if ln < 4 || ln > len(frame)-4 {
			return dst, false
		}
		sum, payload := binary.LittleEndian.Uint32(frame[4:]), frame[8:4+ln]
		frame = frame[4+ln:]
		var piece []byte
		switch typ {
		case snappyCompressed:
			n, err := s2.DecodedLen(payload)
			if err != nil || n > snappyMaxBlock || n > cap(dst)-len(dst) {
				return dst, false
			}
			if piece, err = s2.Decode(dst[len(dst):len(dst)+n], payload); err != nil || len(piece) != n {
				return dst, false
			}
		case snappyRaw:
			if len(payload) > snappyMaxBlock || len(payload) > cap(dst)-len(dst) {
				return dst, false
			}
			piece = append(dst[len(dst):], payload...)
		default:
			return dst, false
		}
		if snappyCRC(piece) != sum {
			return dst, false
		}
		dst = dst[:len(dst)+len(piece)]
	}
	return dst, true
}

// isSnappy reports whether a file starts like the Snappy framing format.
func isSnappy(br *bufio.Reader) bool {
	b, _ := br.Peek(len(snappyStreamID))
	return string(b) == snappyStreamID
}
