package engine

import (
	"fmt"
	"iter"

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
		var r Record
		it := j.Iterate(j.FirstSeq())
		for it.Next() {
			rec := it.Record()
			if rec.Type != journalRecord {
				*err = fmt.Errorf("journal %s: record %d has type %d, want %d", j.Path(), rec.Seq, rec.Type, journalRecord)
				return
			}
			if _, e := r.Decode(rec.Payload); e != nil {
				*err = fmt.Errorf("journal %s: record %d: %w", j.Path(), rec.Seq, e)
				return
			}
			if !yield(&r) {
				return
			}
		}
		if e := it.Err(); e != nil {
			*err = e
		}
	}
}

// discardLog keeps nothing: a Core without a journal cannot recover, and
// says so in its documentation.
type discardLog struct{}

func (discardLog) Append(*Record) error { return nil }
