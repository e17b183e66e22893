// Package shm provides named shared-memory segments that are safe to open,
// liveness between the processes that share them, and duplex links (a pair
// of ringbuf SPSC rings with their doorbells) between two processes.
//
// # Segments
//
// A segment is a file named Prefix+name in a directory (DefaultDir,
// /dev/shm, unless Options.Dir says otherwise), mapped shared with mmap-go.
// Create makes it with O_CREAT|O_EXCL|O_NOFOLLOW at mode 0600, reserves its
// pages with fallocate, and writes the header; Open maps an existing one
// after checking the file (regular, not a symlink, owned by this user, not
// group- or world-writable, as long as its header says) and every header
// field. A refusal is an *Error wrapping a sentinel (ErrBadMagic,
// ErrVersion, ErrTruncated, ErrSizeMismatch, ErrForeignOwner,
// ErrPermissions, ErrSymlink, ErrBadRegion, ErrBadHeader, ErrChecksum, ...)
// whose message says what was found and what to do. Close unmaps; Unlink
// removes the file. CleanStale removes segments whose creator and attached
// processes are all dead.
//
// Everything in a segment is untrusted: another process may have written
// anything there. The header is validated once, at Open, and what the
// process needs of it (sizes, the region table) is copied then, so later
// writes to it change nothing; the live words (liveness slots, ring
// cursors, records) are bounds-checked on every read. A segment's owner
// (the same uid) can still truncate the file under a mapping, which would
// fault on access; mode 0600 keeps everyone else out.
//
// # Layout
//
// All integers are little-endian (the live words are accessed atomically in
// native order, so segments are for little-endian hosts: amd64, arm64). The
// header is one 4096-byte page at offset 0:
//
//	offset  size  field
//	     0     8  magic "CCSHMSEG" (0x4745534d48534343), stored last at creation
//	     8     4  layout version (1)
//	    12     4  header size (4096)
//	    16     8  total size of the file in bytes
//	    24     4  creator pid
//	    28     4  region count (≤ 16)
//	    32     8  creator start time, clock ticks after boot (/proc/<pid>/stat field 22)
//	    40     8  creation time, Unix nanoseconds
//	    48     4  liveness slot count (8)
//	    52     4  CRC-32C of bytes 8..52 and of the region table
//	    56     8  reserved, zero
//	    64   512  region table: 16 entries of 32 bytes
//	   576   448  reserved, zero
//	  1024   512  liveness slots: 8 slots of 64 bytes (one cache line each)
//	  1536  2560  reserved, zero
//
// A region table entry (unused entries are all zero):
//
//	offset  size  field
//	     0     4  kind, chosen by the segment's user (links use 1 to 3)
//	     4     4  reserved, zero
//	     8     8  offset in the file: ≥ 4096, 64-byte aligned, after the previous region
//	    16     8  length: > 0, 64-byte aligned, inside the file
//	    24     8  reserved, zero
//
// A liveness slot:
//
//	offset  size  field
//	     0     8  holder identity: start time << 22 | pid; 0 = free
//	     8     4  flags: 1 = parked (blocked on its doorbell; do not judge by heartbeat)
//	    12     4  reserved, zero
//	    16     8  heartbeat counter, bumped by the holder
//	    24     8  attach time, Unix nanoseconds
//	    32    32  reserved, zero
//
// # Liveness
//
// A process publishes itself in a slot with Attach (a CAS on the identity
// word, so two processes never hold one slot; a dead holder is taken over)
// and bumps the heartbeat with Slot.Beat. Before it blocks it sets the parked
// flag (Slot.SetParked), since a blocked process cannot beat. A Peer watches
// a slot: it holds a pidfd on the holder, so PeerDead is reported as soon
// as the process has exited, even while it is an unreaped zombie (which
// kill(pid, 0) would call alive), and the identity's start time guards
// against a reused pid. PeerStale means the process exists and is not
// parked but its heartbeat has not moved for Options.StaleAfter: stopped,
// hung, or starved of CPU; it is a suspicion, not a death.
//
// A SIGKILLed peer is reported dead by the first State call after its pidfd
// turns readable, which the kernel does once every thread of the process
// has exited: from then on the dead process cannot write to the segment,
// so acting on PeerDead is safe. A Link waiting for its peer makes that
// call every Options.CheckEvery (200 µs by default), while spinning and
// while parked (the park's futex timeout is CheckEvery), so death is
// noticed within CheckEvery of the kernel's teardown. Measured on the
// 2-core development VM from kill(2) to the report: 0.3 to 1.2 ms without
// the race detector, up to a few ms with it (the teardown of the child's
// address space dominates).
//
// # Links
//
// CreateLink makes a segment of three regions: the ring the creator writes
// (kind 1), the ring the opener writes (kind 2), both ringbuf.SPSC with the
// same capacity, and two ringbuf.Doorbells (kind 3, the creator's then the
// opener's). The creator holds liveness slot 0, the opener slot 1. Each
// side's Tx rings the other side's doorbell on Commit; Link.Idle, called
// after every duty cycle, beats the heartbeat, spins or spins-then-parks
// on the side's own doorbell with the parked flag published, and checks the
// peer, returning ErrPeerDead or ErrPeerClosed. After a peer's death the
// creator closes and unlinks the segment (or CleanStale does once both
// sides are gone) and creates the link again; a restarted opener may also
// reattach to the same segment, taking over the dead holder's slot.
//
// # Tests and benchmarks
//
// The multi-process tests re-execute the test binary as the child process
// (TestMain looks at SHM_TEST_CHILD_ROLE). TestLinkTransfer moves 1,000,000
// records each way with each idle strategy (200,000 under the race
// detector, where the full count takes several times longer; 100,000 with
// -short). FuzzOpen feeds arbitrary and patched segment files to Open;
// FuzzLinkRx feeds arbitrary ring memory to the reading side of a link.
//
//	go test -race ./shm
//	go test -run '^$' -bench 'PingPong' -count=5 ./shm
//
// BenchmarkShmPingPongCrossProcess (busy-spin and spin-park) and
// BenchmarkUDSPingPong (blocking and busy-poll) each time a 64-byte round
// trip to a child process and report its percentiles, sampling every 8th
// round trip; BenchmarkSpinFloorPingPong (a copy of ringbuf's, so that the
// same run has it) is the in-process floor to compare with.
// BenchmarkPeerState is the cost of one liveness check.
// Busy-spin figures need two otherwise idle cores: a busy-spinning side
// that gets preempted stalls its peer for a scheduler slice.
package shm
