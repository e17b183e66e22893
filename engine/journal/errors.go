package journal

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt marks damage that is not a torn tail: committed records
	// would be lost or garbage replayed if the journal were used as is.
	// Errors wrapping it are *CorruptError values.
	ErrCorrupt = errors.New("journal corrupt")

	// ErrNotJournal means the file is not a journal of this format (wrong
	// magic or version, or too short to hold the header).
	ErrNotJournal = errors.New("not a commitcore journal")

	// ErrLocked means another Journal (in this or another process) holds
	// the file open for writing. A journal has a single writer.
	ErrLocked = errors.New("journal locked by another writer")

	// ErrClosed is returned by operations on a closed Journal.
	ErrClosed = errors.New("journal closed")

	// ErrTooLarge is returned by Append for a payload over MaxPayload.
	ErrTooLarge = errors.New("journal record too large")

	// ErrNoSnapshot means a snapshot directory holds no valid snapshot:
	// replay starts at sequence 1.
	ErrNoSnapshot = errors.New("no snapshot")

	// ErrSnapshotAhead means a snapshot covers sequence numbers the journal
	// does not hold: the journal lost committed records, or the snapshot
	// belongs to another journal.
	ErrSnapshotAhead = errors.New("snapshot is beyond the end of the journal")

	// ErrGap means the journal does not hold the records between the
	// snapshot (or sequence 1, without one) and its first record.
	ErrGap = errors.New("journal does not cover the sequence range to replay")
)

// CorruptError describes damage found in a journal file. It matches
// ErrCorrupt with errors.Is.
type CorruptError struct {
	Path   string
	Offset int64  // byte offset of the damaged record (0: the file header)
	Seq    uint64 // sequence number expected at Offset (0: unknown)
	Reason string
	// NextOffset and NextSeq locate the first verified record after the
	// damage, when one exists: its presence is what makes the damage
	// corruption rather than a torn tail. NextOffset is 0 when there is none.
	NextOffset int64
	NextSeq    uint64
}

func (e *CorruptError) Error() string {
	what := fmt.Sprintf("journal %s: corrupt at offset %d", e.Path, e.Offset)
	if e.Seq != 0 {
		what += fmt.Sprintf(" (expected sequence %d)", e.Seq)
	}
	what += ": " + e.Reason
	if e.NextOffset != 0 {
		what += fmt.Sprintf("; a verified record (sequence %d) follows at offset %d, so this is not a torn tail", e.NextSeq, e.NextOffset)
	}
	return what + "; refusing to open: records up to the damage are intact, but replaying past it would lose or invent committed work. " +
		"Restore the file from a replica or backup, or move it aside and rebuild the participant from a snapshot and its peers"
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
