// Package ringbuf provides lock-free rings over caller-given memory, the
// transport every commitcore component talks through.
//
//   - SPSC: one producer, one consumer, variable-length records; batch
//     Claim/Commit for the producer (ClaimBatch claims a run of same-size
//     records in one call) and batch Read for the consumer, one
//     shared-cursor store per batch on each side.
//   - MPSC: many producers, one consumer, fixed-size slots claimed with one
//     CAS; a producer that dies between Claim and Commit is skipped after a
//     bounded wait and counted (Skipped).
//   - Doorbell: a futex word (not process-private) that a consumer parks on
//     and that every one of its inbound rings rings after publishing; an
//     SPSC consumer can likewise ring its producer's doorbell after freeing
//     space (SetSpaceDoorbell), so a producer facing a full ring parks too.
//   - IdleStrategy: BusySpin, SpinYield and SpinPark, Agrona-style.
//
// The memory may be a heap slice (AlignedBytes) or an mmap'd segment shared
// between processes: the layouts hold no pointers, and another process
// attaches to a formatted ring (AttachSPSC, AttachMPSC) after its control
// block is validated. Every value read from ring memory is untrusted: an
// impossible cursor, length, kind or sequence yields a *CorruptError
// (errors.Is(err, ErrCorrupt)), never a panic or an out-of-bounds access.
//
// # Layouts
//
// All words are little-endian. Both rings start with a control block of
// ControlSize (192) bytes: line 0 holds a magic number and the geometry,
// line 1 the producers' cursor, line 2 the consumer's cursor, so the two
// sides never write the same cache line.
//
// SPSC (SPSCSize(capacity) bytes): magic at 0, capacity at 8, producer
// cursor at 64, consumer cursor at 128 (monotonic byte counts), then a data
// region of capacity bytes, a power of two. A record is an 8-byte header
// (payload length in bits 0-31, the caller's type in bits 32-47, a kind,
// data or padding, in bits 48-63) and the payload, padded to a multiple of
// 8. A record that does not fit before the end is preceded by a padding
// record that fills the rest.
//
// MPSC (MPSCSize(slots, slotSize) bytes): magic at 0, slot count at 8, slot
// size at 16, claim cursor at 64, consumer cursor at 128 and skipped count
// at 136, then the slots; each slot is a sequence word, a record header as
// above and up to slotSize-16 payload bytes.
//
// Doorbell (DoorbellSize, 64 bytes, placed anywhere): the futex word at 0
// and the count of armed waiters at 4.
//
// Nothing on the hot paths allocates or locks. unsafe is used only to view
// 8- and 4-byte words of the memory as atomics (alignment is checked) and
// to pass a word's address to futex(2).
//
// # Tests
//
// go test -race ./ringbuf takes seconds: the stress tests move 10 million
// SPSC records and a million MPSC records, and the lost-wake-up test makes
// 20,000 round trips that park. -short cuts them tenfold;
// -ringbuf.soak=N multiplies them by N for a long soak. The fuzz targets
// are FuzzSPSCRead and FuzzAttach.
package ringbuf
