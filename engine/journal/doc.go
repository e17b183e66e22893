// Package journal is commitcore's write-ahead log: an append-only,
// checksummed, sequenced record log in a memory-mapped file, plus atomic
// snapshot files. It knows nothing of the protocol; the engine decides what
// the records hold (commands, outcomes, fills) and gives each a type.
//
// # Records
//
// Each record has a 24-byte header (CRC-32C, payload length, sequence number,
// type) and its payload, padded to 8 bytes. The CRC (Castagnoli) covers the
// header and the payload. Sequence numbers start at the journal's first
// sequence number (1, or Options.FirstSeq for a journal started after a
// snapshot) and rise by one per record. Append is a memcpy into the mapping:
// no syscall and no allocation; the file grows by Options.ChunkSize at a
// time (fallocate, then remap), so a full disk is an Append error, never a
// SIGBUS. Space after the last record is zero, and an all-zero header marks
// the end of data (no record has sequence number 0).
//
// A journal has one writer. Open takes an exclusive flock on the file; a
// second Open, in this process or another, fails with ErrLocked. The kernel
// drops the lock when its holder dies, so a restarted or backup process can
// open the journal after a kill -9.
//
// # Durability
//
// A record is in the page cache once Append returns, so it survives a crash
// of the process. For machine crashes the SyncPolicy chooses: SyncNone (the
// kernel writes back when it likes), SyncBatch (Sync, called at the end of
// every batch, msyncs before it returns) or SyncInterval (a background
// goroutine msyncs every Options.Interval; Close stops it). Every flush also
// advances a synced watermark in the file header.
//
// # Recovery
//
// Open verifies every record. The walk stops at the first offset that is
// not a whole, verified record with the next sequence number; then:
//
//   - nothing but zeros follows: the clean end of data;
//   - non-zero bytes follow but no verified record does, and the stop lies
//     at or above the synced watermark: a torn tail, the residue of a crash
//     mid-append. The file is truncated to the last whole record and
//     Recovery.TornBytes says how many bytes went;
//   - a verified record follows anywhere after the stop, or the stop lies
//     below the synced watermark, or a verified record carries the wrong
//     sequence number: corruption. Open refuses with a *CorruptError
//     (errors.Is(err, ErrCorrupt)) naming the offset and the sequence
//     number, and leaves the file untouched. It never replays garbage and
//     never silently drops a record that a later record, or a flush, proves
//     was committed.
//
// The policy for the last record follows from that. A bit flipped inside the
// last record looks exactly like a record torn by a crash: a CRC mismatch with
// nothing verified after it. It is treated as a torn tail and dropped unless
// a flush had covered it, in which case it is corruption. Refusing every bad
// last record would make every crash mid-append unrecoverable by hand; the
// watermark keeps the one case that would lose acknowledged-durable work.
// Under SyncNone nothing is ever acknowledged durable, so a bad last record is
// always a torn tail. One residual ambiguity errs on the safe side: a torn
// record whose payload happens to contain a complete, valid journal record
// reads as corruption and is refused rather than dropped.
//
// A file truncated to zero bytes opens as a new, empty journal; Recovery.Created
// says so, and ReplayStart refuses it if a snapshot claims records it lacks.
//
// # Snapshots
//
// WriteSnapshot stores a caller's opaque state as of a sequence number
// (temporary file, fsync, rename, fsync of the directory); LoadSnapshot
// returns the newest one that verifies (magic, version, lengths, CRC-32C of
// header and state). ReplayStart then checks that the snapshot and the journal
// together cover every sequence number and says where replay resumes.
// Deleting old snapshots and compacting the journal are out of scope: a
// caller can start a new journal with Options.FirstSeq after a snapshot.
//
// # Untrusted input
//
// Everything read from a file is untrusted: lengths are bounds-checked before
// use, and a damaged file yields an error, never a panic or an out-of-bounds
// read. FuzzOpen, FuzzVerify, FuzzDecodeRecord and FuzzDecodeSnapshot check
// it; run one with, for example,
//
//	go test -run=^$ -fuzz=^FuzzVerify$ -fuzztime=60s ./engine/journal
package journal
