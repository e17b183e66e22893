package ringbuf

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the rings return for one of these reasons
// wraps the sentinel, so callers branch with errors.Is.
var (
	// ErrFull: the ring has no room for the record now. TryWrite and Claim
	// return it at once; retry after the consumer has made room, or use
	// Write with a deadline.
	ErrFull = errors.New("ringbuf: ring full")
	// ErrTimeout: a blocking Write reached its deadline with the ring still
	// full. Nothing was written.
	ErrTimeout = errors.New("ringbuf: deadline exceeded while the ring was full")
	// ErrTooLarge: the record can never fit in this ring; use a bigger ring
	// or split the payload.
	ErrTooLarge = errors.New("ringbuf: record larger than the ring allows")
	// ErrMemory: the memory handed to a constructor is too small or
	// misaligned for the layout asked for.
	ErrMemory = errors.New("ringbuf: unusable ring memory")
	// ErrCorrupt: the ring memory holds a value no correct peer writes (a
	// bad magic, capacity, cursor, record length or record kind). The
	// error is a *CorruptError saying which field and value.
	ErrCorrupt = errors.New("ringbuf: corrupt ring memory")
	// ErrSkipped: an MPSC producer committed a record that the consumer had
	// already given up on and skipped (the producer stalled between Claim
	// and Commit for longer than the consumer's skip timeout). The record
	// was not delivered; the producer may write it again.
	ErrSkipped = errors.New("ringbuf: record was skipped by the consumer before its commit")
)

// CorruptError reports a value read from ring memory that no correct peer
// writes. It matches ErrCorrupt with errors.Is. The ring is left where it
// was: records before the corrupt one have been delivered and consumed.
type CorruptError struct {
	Ring   string // "spsc", "mpsc" or "doorbell"
	Field  string // which field was wrong, e.g. "record length"
	Value  uint64 // the value read from memory
	Detail string // why the value is impossible
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("ringbuf: corrupt %s memory: %s = %d: %s", e.Ring, e.Field, e.Value, e.Detail)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(ring, field string, value uint64, format string, args ...any) error {
	return &CorruptError{Ring: ring, Field: field, Value: value, Detail: fmt.Sprintf(format, args...)}
}
