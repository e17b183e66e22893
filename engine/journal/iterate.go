package journal

import "fmt"

// Iterator walks the records of a Journal in sequence order, verifying each
// one again as it reads it. Use it as
//
//	it := j.Iterate(from)
//	for it.Next() {
//		rec := it.Record()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//
// It sees the records appended before each call to Next. It belongs to the
// journal's single writer goroutine, and Record().Payload aliases the mapping:
// an Append that grows the file, or Close, invalidates it.
type Iterator struct {
	j    *Journal
	off  int64
	seq  uint64
	from uint64
	rec  Record
	err  error
}

// Iterate returns an iterator over the records with sequence number from
// and up. from below FirstSeq is an error wrapping ErrGap (those records are
// not in this journal); use FirstSeq() to start at the beginning.
func (j *Journal) Iterate(from uint64) *Iterator {
	it := &Iterator{j: j, off: fileHeaderSize, seq: j.firstSeq, from: from}
	if from < j.firstSeq {
		it.err = fmt.Errorf("journal %s: iterate from sequence %d, but the journal starts at %d: %w", j.path, from, j.firstSeq, ErrGap)
		return it
	}
	if len(j.marks) > 0 {
		i := min((from-j.firstSeq)/markEvery, uint64(len(j.marks)-1))
		it.off, it.seq = j.marks[i], j.firstSeq+i*markEvery
	}
	return it
}

// markEvery is how many records apart a Journal remembers offsets: Iterate
// then reads at most markEvery-1 records before its first, where it would
// otherwise read the whole journal (a takeover reads the newest records
// first, chunk by chunk, and paid a full walk per chunk).
const markEvery = 64

// newMarks returns an empty mark list with room for a file of size bytes
// of the smallest records, so that appends rarely grow it.
func newMarks(size int) []int64 {
	return make([]int64, 0, size/(markEvery*recordHeaderSize)+1)
}

// Next advances to the next record and reports whether there is one. It
// returns false at the end of the journal or on an error (see Err).
func (it *Iterator) Next() bool {
	for it.err == nil {
		j := it.j
		if j.mm == nil {
			it.err = ErrClosed
			return false
		}
		if it.off >= j.end {
			return false
		}
		rec, next, f := decodeRecord(j.mm[:j.end], it.off)
		if f == faultNone && rec.Seq != it.seq {
			f = faultSequence
		}
		if f != faultNone {
			// Open verified these bytes: they changed under us.
			it.err = &CorruptError{Path: j.path, Offset: it.off, Seq: it.seq, Reason: f.String() + " (changed after open)"}
			return false
		}
		it.off, it.seq = next, it.seq+1
		if rec.Seq >= it.from {
			it.rec = rec
			return true
		}
	}
	return false
}

// Record returns the current record.
func (it *Iterator) Record() Record { return it.rec }

// Err returns the error that stopped the iteration, or nil at a clean end.
func (it *Iterator) Err() error { return it.err }
