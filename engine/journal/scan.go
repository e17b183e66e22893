package journal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// scanResult is what scan found in a journal image.
type scanResult struct {
	end     int64  // offset just past the last whole verified record
	records uint64 // verified records kept
	nextSeq uint64 // sequence number the next Append gets
	torn    int64  // bytes of incomplete tail from end to the last non-zero byte
	marks   []int64
}

// parseFileHeader validates the file header of buf and returns the first
// sequence number and the synced watermark.
func parseFileHeader(buf []byte) (firstSeq uint64, durable int64, err error) {
	if len(buf) < fileHeaderSize {
		return 0, 0, fmt.Errorf("file is %d bytes, shorter than the %d-byte header: %w", len(buf), fileHeaderSize, ErrNotJournal)
	}
	if string(buf[:len(fileMagic)]) != fileMagic {
		return 0, 0, fmt.Errorf("bad magic %q: %w", buf[:len(fileMagic)], ErrNotJournal)
	}
	if v := binary.LittleEndian.Uint32(buf[offVersion:]); v != formatVersion {
		return 0, 0, fmt.Errorf("format version %d, this build reads %d: %w", v, formatVersion, ErrNotJournal)
	}
	if crc32.Checksum(buf[:offHdrCRC], castagnoli) != binary.LittleEndian.Uint32(buf[offHdrCRC:]) {
		return 0, 0, &CorruptError{Reason: "file header checksum mismatch"}
	}
	if s := binary.LittleEndian.Uint32(buf[offHdrSize:]); s != fileHeaderSize {
		return 0, 0, &CorruptError{Reason: fmt.Sprintf("file header size %d, want %d", s, fileHeaderSize)}
	}
	firstSeq = binary.LittleEndian.Uint64(buf[offFirstSeq:])
	if firstSeq == 0 {
		return 0, 0, &CorruptError{Reason: "file header first sequence is 0"}
	}
	d := binary.LittleEndian.Uint64(buf[offDurable:])
	if d < fileHeaderSize || d%recordAlign != 0 || d > uint64(len(buf)) {
		return 0, 0, &CorruptError{Reason: fmt.Sprintf(
			"synced watermark %d is not an aligned offset within the %d-byte file (synced records were cut off)", d, len(buf))}
	}
	return firstSeq, int64(d), nil
}

// scan walks the records of a journal image after its header and decides
// where the valid prefix ends.
//
// The walk stops at the first offset that is not a whole verified record
// with the next sequence number. What lies beyond decides the verdict:
//   - only zero bytes: the clean end of data;
//   - a verified record anywhere later, at any aligned offset: corruption in
//     the middle of the log (refused);
//   - a verified record with the wrong sequence number at the stop itself:
//     corruption (a torn write cannot produce a record whose CRC matches);
//   - a stop below the synced watermark: corruption (those bytes were
//     made durable, so their loss is damage, not a crash mid-append);
//   - otherwise, non-zero garbage with nothing verified after it: a torn
//     tail, reported in torn and dropped by the caller.
func scan(buf []byte, firstSeq uint64, durable int64) (scanResult, *CorruptError) {
	off := int64(fileHeaderSize)
	seq := firstSeq
	marks := newMarks(len(buf))
	var f fault
	for {
		var rec Record
		var next int64
		rec, next, f = decodeRecord(buf, off)
		if f == faultNone && rec.Seq != seq {
			f = faultSequence
		}
		if f != faultNone {
			break
		}
		if (seq-firstSeq)%markEvery == 0 {
			marks = append(marks, off)
		}
		off, seq = next, seq+1
	}
	res := scanResult{end: off, records: seq - firstSeq, nextSeq: seq, marks: marks}
	bad := func(reason string) *CorruptError {
		return &CorruptError{Offset: off, Seq: seq, Reason: reason}
	}
	if f == faultSequence {
		rec, _, _ := decodeRecord(buf, off)
		return res, bad(fmt.Sprintf("verified record carries sequence %d", rec.Seq))
	}
	if next, nextSeq, ok := findVerified(buf, off, seq, zeroFrom(buf)); ok {
		e := bad(f.String())
		e.NextOffset, e.NextSeq = next, nextSeq
		return res, e
	}
	if off < durable {
		return res, bad(fmt.Sprintf("%s below the synced watermark %d: those records were made durable, so this is damage, not a torn tail", f, durable))
	}
	res.torn = lastNonZero(buf[:max(zeroFrom(buf), off)], off) - off
	return res, nil
}

// findVerified looks for a verified record after the stop at off, at any
// aligned offset, whose sequence number could follow the damage: at least
// minSeq, and no more than one per header's worth of bytes beyond it. The
// sequence check runs before the CRC, so garbage rarely costs a checksum.
// The search ends at the last non-zero byte before zeros, where the writer
// has written nothing (zeroFrom): a record's header holds its non-zero
// sequence number, so none starts in the zeros after it.
func findVerified(buf []byte, off int64, minSeq uint64, zeros int64) (int64, uint64, bool) {
	end := lastNonZero(buf[:max(min(zeros, int64(len(buf))), off)], off)
	for o := off + recordAlign; o+recordHeaderSize <= int64(len(buf)) && o < end; o += recordAlign {
		seq := binary.LittleEndian.Uint64(buf[o+8:])
		if seq < minSeq || seq-minSeq > uint64(o-off)/recordHeaderSize {
			continue
		}
		rec, _, f := decodeRecord(buf, o)
		if f == faultNone {
			return o, rec.Seq, true
		}
	}
	return 0, 0, false
}

// lastNonZero returns one past the index of the last non-zero byte of buf at
// or after from, or from when there is none. It skips zeros a word at a
// time: a journal's preallocated tail is megabytes of them.
func lastNonZero(buf []byte, from int64) int64 {
	i := int64(len(buf))
	for i-8 >= from && binary.LittleEndian.Uint64(buf[i-8:i]) == 0 {
		i -= 8
	}
	for i > from && buf[i-1] == 0 {
		i--
	}
	return i
}
