package journal

import (
	"encoding/binary"
	"hash/crc32"
)

// On-disk layout. All integers are little-endian.
//
// File header (fileHeaderSize bytes, at offset 0):
//
//	0  magic     [8]byte "CCJOURNL"
//	8  version   uint32  (formatVersion)
//	12 hdrSize   uint32  (fileHeaderSize)
//	16 firstSeq  uint64  sequence number of the first record in the file
//	24 hdrCRC    uint32  CRC-32C of bytes [0:24)
//	28 reserved  uint32  written zero, ignored
//	32 durable   uint64  synced watermark: every byte below it was msync'd
//	40 limit     uint64  the writer writes no byte at or past it
//	48 limitNot  uint64  ^limit: the pair holds only when limitNot == ^limit
//	56 reserved  [8]byte written zero, ignored
//
// The durable word is rewritten in place by every flush, so it is outside
// hdrCRC; Open validates it by range instead. The limit pair is raised by
// the writer before it appends past it (limit first, then limitNot), in
// steps of limitStep. It bounds the search for stray records after the end
// of the log, which otherwise reads the whole preallocated tail of zeros
// (16 MB by default: a 6 ms page-fault walk on every Open). A pair that
// does not hold (a journal from before it existed, a write cut between its
// two words, damage) bounds nothing: the search reads to the end of the
// file, as it always did. The limit protects no data, so it needs no
// checksum: records below the synced watermark stay protected by it, and
// records the sequential scan reaches are found whatever the limit says.
//
// Record (recordHeaderSize bytes of header, the payload, zero padding to a
// multiple of recordAlign):
//
//	0  crc       uint32  CRC-32C of header bytes [4:24) followed by the payload
//	4  length    uint32  payload length in bytes (at most MaxPayload)
//	8  seq       uint64  sequence number: firstSeq, firstSeq+1, ... without gaps
//	16 type      uint16  caller-defined record type
//	18 reserved  uint16  zero
//	20 reserved  uint32  zero
//
// A record never has seq 0, so an all-zero header is never a record: it marks
// the end of data (the zero-filled preallocated space after the last record).
const (
	fileMagic        = "CCJOURNL"
	formatVersion    = 1
	fileHeaderSize   = 64
	recordHeaderSize = 24
	recordAlign      = 8

	offVersion  = 8
	offHdrSize  = 12
	offFirstSeq = 16
	offHdrCRC   = 24
	offDurable  = 32
	offLimit    = 40
	offLimitNot = 48

	// limitStep is how far the writer raises its limit at a time: two
	// stores per limitStep bytes appended, and at most this much zeroed
	// space read by Open's search for stray records.
	limitStep = 64 << 10

	// MaxPayload is the largest payload Append accepts (16 MiB). Open treats
	// a header claiming more as damage.
	MaxPayload = 1 << 24
)

// castagnoli is the CRC-32C table; hash/crc32 uses the SSE4.2/ARMv8 CRC
// instructions for it, so checksumming costs a few bytes per nanosecond.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordSize is the number of bytes a record with an n-byte payload occupies.
func recordSize(n int) int64 {
	return (recordHeaderSize + int64(n) + recordAlign - 1) &^ (recordAlign - 1)
}

// fault says why bytes at an offset are not a whole, verified record.
type fault uint8

const (
	faultNone     fault = iota
	faultZero           // all-zero header: the end of data
	faultShort          // fewer bytes than a header remain in the file
	faultReserved       // a reserved header field is not zero
	faultLength         // the length runs past the end of the file or MaxPayload
	faultChecksum       // the CRC does not match header and payload
	faultSequence       // a verified record with the wrong sequence number
)

func (f fault) String() string {
	switch f {
	case faultNone:
		return "valid record"
	case faultZero:
		return "all-zero header (end of data)"
	case faultShort:
		return "partial record header at end of file"
	case faultReserved:
		return "non-zero reserved header field"
	case faultLength:
		return "record length runs past the end of the file"
	case faultChecksum:
		return "checksum mismatch"
	case faultSequence:
		return "sequence number out of order"
	}
	return "unknown fault"
}

// Record is one journal entry as read back. Payload aliases the journal's
// mapping: it is valid until the next Append or Close; copy it to keep it.
type Record struct {
	Seq     uint64
	Type    uint16
	Payload []byte
}

// putRecord writes a record for payload into dst, which must be exactly
// recordSize(len(payload)) bytes of zeroed (preallocated) space.
func putRecord(dst []byte, typ uint16, seq uint64, payload []byte) {
	copy(dst[recordHeaderSize:], payload)
	binary.LittleEndian.PutUint32(dst[4:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(dst[8:], seq)
	binary.LittleEndian.PutUint16(dst[16:], typ)
	binary.LittleEndian.PutUint16(dst[18:], 0)
	binary.LittleEndian.PutUint32(dst[20:], 0)
	c := crc32.Update(0, castagnoli, dst[4:recordHeaderSize])
	c = crc32.Update(c, castagnoli, payload)
	binary.LittleEndian.PutUint32(dst[0:], c)
}

// decodeRecord reads and verifies the record at off in buf. It trusts
// nothing in buf: every length is bounds-checked before use. On success it
// returns the record and the offset of the next one. It does not check the
// sequence number against its predecessor; callers do.
func decodeRecord(buf []byte, off int64) (Record, int64, fault) {
	if off < 0 || off > int64(len(buf)) {
		return Record{}, off, faultShort
	}
	rest := buf[off:]
	if len(rest) < recordHeaderSize {
		if allZero(rest) {
			return Record{}, off, faultZero
		}
		return Record{}, off, faultShort
	}
	h := rest[:recordHeaderSize]
	if allZero(h) {
		return Record{}, off, faultZero
	}
	if binary.LittleEndian.Uint16(h[18:]) != 0 || binary.LittleEndian.Uint32(h[20:]) != 0 {
		return Record{}, off, faultReserved
	}
	n := binary.LittleEndian.Uint32(h[4:])
	if n > MaxPayload || recordSize(int(n)) > int64(len(rest)) {
		return Record{}, off, faultLength
	}
	payload := rest[recordHeaderSize : recordHeaderSize+int(n)]
	c := crc32.Update(0, castagnoli, h[4:])
	c = crc32.Update(c, castagnoli, payload)
	if c != binary.LittleEndian.Uint32(h[0:]) {
		return Record{}, off, faultChecksum
	}
	rec := Record{
		Seq:     binary.LittleEndian.Uint64(h[8:]),
		Type:    binary.LittleEndian.Uint16(h[16:]),
		Payload: payload[:n:n],
	}
	return rec, off + recordSize(int(n)), faultNone
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// putFileHeader fills hdr (fileHeaderSize bytes) for a new journal.
func putFileHeader(hdr []byte, firstSeq uint64) {
	clear(hdr[:fileHeaderSize])
	copy(hdr, fileMagic)
	binary.LittleEndian.PutUint32(hdr[offVersion:], formatVersion)
	binary.LittleEndian.PutUint32(hdr[offHdrSize:], fileHeaderSize)
	binary.LittleEndian.PutUint64(hdr[offFirstSeq:], firstSeq)
	binary.LittleEndian.PutUint32(hdr[offHdrCRC:], crc32.Checksum(hdr[:offHdrCRC], castagnoli))
	binary.LittleEndian.PutUint64(hdr[offDurable:], fileHeaderSize)
}

// zeroFrom returns the offset from which the writer of buf (a journal image
// with a valid file header) has written nothing, or len(buf) when the limit
// pair does not hold. Bytes past it are zero unless something other than
// the writer changed them.
func zeroFrom(buf []byte) int64 {
	l := binary.LittleEndian.Uint64(buf[offLimit:])
	if binary.LittleEndian.Uint64(buf[offLimitNot:]) != ^l || l < fileHeaderSize || l > uint64(len(buf)) {
		return int64(len(buf))
	}
	return int64(l)
}

// putLimit raises the writer's limit in hdr to l: limit first, so that a
// write cut between the two words leaves a pair that does not hold.
func putLimit(hdr []byte, l int64) {
	binary.LittleEndian.PutUint64(hdr[offLimit:], uint64(l))
	binary.LittleEndian.PutUint64(hdr[offLimitNot:], ^uint64(l))
}
