// Package ringbuf provides lock-free rings over caller-given memory, the
// transport every commitcore component talks through.
//
//   - SPSC: one producer, one consumer, variable-length records framed by an
//     8-byte header (payload length, 16-bit type, kind) and aligned to 8;
//     batch Claim/Commit for the producer and batch Read for the consumer,
//     one shared-cursor store per batch on each side.
//   - MPSC: many producers, one consumer, fixed-size slots claimed with one
//     CAS; a producer that dies between Claim and Commit is skipped after a
//     bounded wait and counted.
//   - Doorbell: a futex word (not process-private) that a consumer parks on
//     and that every one of its inbound rings rings after publishing.
//   - IdleStrategy: BusySpin, SpinYield and SpinPark, Agrona-style.
//
// The memory may be a heap slice (AlignedBytes) or an mmap'd segment shared
// between processes: the layouts hold no pointers, and the control block
// of each ring lets another process attach (AttachSPSC, AttachMPSC) and
// validates what it finds. Every value read from ring memory is treated as
// untrusted: an impossible cursor, length or kind yields a *CorruptError
// (errors.Is(err, ErrCorrupt)), never a panic or an out-of-bounds access.
//
// Nothing on the hot paths allocates or locks. unsafe is used only to view
// 8- and 4-byte words of the memory as atomics (alignment is checked) and
// to pass a word's address to futex(2).
//
// Tests: go test -race ./ringbuf runs in well under a minute. The stress
// tests move 10 million records by default; -ringbuf.soak=N multiplies
// that for a long soak.
package ringbuf
