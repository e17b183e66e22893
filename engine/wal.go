package engine

import (
	"fmt"
	"io"
	"iter"
	"math"

	"github.com/commitcore/commitcore/engine/journal"
)

// journalRecord is the journal record type of an encoded Record.
const journalRecord uint16 = 1

// JournalLog is the coordinator's write-ahead Log backed by an mmap'd
// journal: each Record is encoded into one journal record. Append is a
// memcpy into the mapping, so a record survives a process crash as soon as
// Append returns; the journal's sync policy decides machine crashes.
type JournalLog struct {
	j   *journal.Journal
	buf [MaxMsgSize]byte
}

// NewJournalLog returns a Log over j, which it does not own.
func NewJournalLog(j *journal.Journal) *JournalLog { return &JournalLog{j: j} }

// Append encodes r and appends it to the journal.
func (l *JournalLog) Append(r *Record) error {
	n, err := r.Encode(l.buf[:])
	if err != nil {
		return fmt.Errorf("journal log: %w", err)
	}
	if _, err := l.j.Append(journalRecord, l.buf[:n]); err != nil {
		return fmt.Errorf("journal log: append %v tx %d: %w", r.Kind, r.Tx, err)
	}
	return nil
}

// Sync forces appended records to stable storage as the journal's policy
// says (a no-op unless the policy is per batch).
func (l *JournalLog) Sync() error { return l.j.Sync() }

// Records returns the journal's records decoded, in order, for Coordinator.Start
// and Node.Recover. The sequence stops at the first record that does not
// decode and reports it through *err: a journal that passed its checksums
// but holds no valid Record was written by something else.
func (l *JournalLog) Records(err *error) iter.Seq[*Record] {
	return JournalRecords(l.j, err)
}

// JournalRecords is Records for a journal opened by someone else.
func JournalRecords(j *journal.Journal, err *error) iter.Seq[*Record] {
	return func(yield func(*Record) bool) {
		decodeRecords(j.Path(), j.Iterate(j.FirstSeq()), math.MaxUint64, err, yield)
	}
}

// JournalRecordsNewestFirst yields the journal's records newest first, in
// chunks that are each read forward (the last 64 records, then the 128
// before them, and so on). Coordinator.Start takes its log in any order
// and stops once it has every commit record it needs, and those are the
// newest, so a takeover then reads the journal's tail, not all of it.
// Node.Recover needs log order: give it JournalRecords.
func JournalRecordsNewestFirst(j *journal.Journal, err *error) iter.Seq[*Record] {
	return func(yield func(*Record) bool) {
		first, hi := j.FirstSeq(), j.NextSeq()
		for n := uint64(64); hi > first; n *= 2 {
			lo := first
			if hi-first > n {
				lo = hi - n
			}
			if _, ok := decodeRecords(j.Path(), j.Iterate(lo), hi-1, err, yield); !ok {
				return
			}
			hi = lo
		}
	}
}

// JournalReader reads a coordinator's journal without being its writer:
// from a restarted participant process (for Node.Recover) or an auditor,
// while the coordinator runs and appends. It takes no lock, and never
// writes or truncates the file (see journal.Reader).
type JournalReader struct {
	r *journal.Reader
}

// OpenJournalReader opens the journal at path for reading.
func OpenJournalReader(path string) (*JournalReader, error) {
	r, err := journal.OpenReader(path)
	if err != nil {
		return nil, err
	}
	return &JournalReader{r: r}, nil
}

// Records returns the journal's records decoded, in order, up to the tail
// as the writer has left it, for Node.Recover or an audit. A record still
// being written ends the sequence without an error; a record that does not
// decode, or damage in the middle of the journal (a *journal.CorruptError),
// ends it and is reported through *err.
//
// The first complete pass fixes the tail: later passes over the same
// sequence stop where it stopped, so a caller that ranges twice (as
// Node.Recover does) sees the same records both times even while the
// coordinator appends. Call Records again for a fresh tail.
func (r *JournalReader) Records(err *error) iter.Seq[*Record] {
	upTo, pinned := uint64(math.MaxUint64), false
	return func(yield func(*Record) bool) {
		last, done := decodeRecords(r.r.Path(), r.r.Iterate(r.r.FirstSeq()), upTo, err, yield)
		if done && !pinned {
			upTo, pinned = last, true
		}
	}
}

// Close closes the underlying reader.
func (r *JournalReader) Close() error { return r.r.Close() }

// ReadJournal opens the journal at path with OpenJournalReader and returns
// its records (see JournalReader.Records), a function that reports the
// error that ended an iteration (nil at the tail), and the Closer to call
// when done with both. It is the one-call form for Node.Recover in a
// restarted participant and for audits:
//
//	recs, errf, c, err := engine.ReadJournal(path)
//	if err != nil { ... }
//	defer c.Close()
//	if err := node.Recover(now, recs); err != nil { ... }
//	if err := errf(); err != nil { ... }
func ReadJournal(path string) (iter.Seq[*Record], func() error, io.Closer, error) {
	r, err := OpenJournalReader(path)
	if err != nil {
		return nil, nil, nil, err
	}
	var rerr error
	return r.Records(&rerr), func() error { return rerr }, r, nil
}

// recordIterator is what journal.Iterator and journal.ReaderIterator share.
type recordIterator interface {
	Next() bool
	Record() journal.Record
	Err() error
}

// decodeRecords decodes the records of it up to sequence number upTo and
// yields them. It returns the sequence number of the last record it read
// (0 if none) and whether it reached the end (upTo or the tail) without
// an error and without yield stopping it; errors go to *err.
func decodeRecords(path string, it recordIterator, upTo uint64, err *error, yield func(*Record) bool) (uint64, bool) {
	var r Record
	last := uint64(0)
	for it.Next() {
		rec := it.Record()
		if rec.Seq > upTo {
			return last, true
		}
		if rec.Type != journalRecord {
			*err = fmt.Errorf("journal %s: record %d has type %d, want %d", path, rec.Seq, rec.Type, journalRecord)
			return last, false
		}
		r = Record{} // Decode leaves the fields an abort lacks as they were
		if _, e := r.Decode(rec.Payload); e != nil {
			*err = fmt.Errorf("journal %s: record %d: %w", path, rec.Seq, e)
			return last, false
		}
		last = rec.Seq
		if !yield(&r) {
			return last, false
		}
		if last == upTo {
			// Done without reading on to the tail, whose check for damage
			// beyond it scans the rest of the file.
			return last, true
		}
	}
	if e := it.Err(); e != nil {
		*err = e
		return last, false
	}
	return last, true
}

// discardLog keeps nothing: a Core without a journal cannot recover, and
// says so in its documentation.
type discardLog struct{}

func (discardLog) Append(*Record) error { return nil }
