package ringbuf

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"
)

// SPSC control block layout, in bytes from the start of the ring memory.
// Line 0 is written once by NewSPSC; line 1 only by the producer; line 2
// only by the consumer. The data region follows at ControlSize.
const (
	// ControlSize is the size of the control block in front of the data
	// region of an SPSC or MPSC ring: three cache lines.
	ControlSize = 3 * CacheLine
	// HeaderSize is the size of a record header. A record is a header and
	// its payload, padded to a multiple of RecordAlign.
	HeaderSize = 8
	// RecordAlign is the alignment of every record in an SPSC ring.
	RecordAlign = 8
	// MinCapacity and MaxCapacity bound the data region of an SPSC ring.
	MinCapacity = 64
	MaxCapacity = 1 << 30

	offMagic    = 0
	offCapacity = 8
	offTail     = CacheLine     // producer cursor: bytes ever published
	offHead     = 2 * CacheLine // consumer cursor: bytes ever consumed

	spscMagic uint64 = 0x3143_5350_5342_5243 // "CRBSPSC1" little-endian

	// Record kinds, the top 16 bits of a record header. Distinct non-zero
	// values, so stray bytes rarely pass for a header.
	kindData uint16 = 0x5244 // "DR"
	kindPad  uint16 = 0x5050 // "PP"
)

// SPSCSize returns the bytes of memory an SPSC ring with a data region of
// capacity bytes needs. Capacity must be a power of two between MinCapacity
// and MaxCapacity; SPSCSize panics otherwise, as that is a programming error.
func SPSCSize(capacity int) int {
	if capacity < MinCapacity || capacity > MaxCapacity || !isPow2(uint64(capacity)) {
		panic(fmt.Sprintf("ringbuf: SPSCSize(%d): capacity must be a power of two in [%d, %d]", capacity, MinCapacity, MaxCapacity))
	}
	return ControlSize + capacity
}

// MaxPayload returns the largest payload a ring with this data capacity
// accepts: one record may fill the whole data region.
func MaxPayload(capacity int) int { return capacity - HeaderSize }

// SPSC is a single-producer single-consumer ring of variable-length records
// over caller-given memory (heap or an mmap'd segment shared between
// processes). One goroutine (or process) produces with Claim/Commit,
// TryWrite or Write; one consumes with Read. Neither side locks or
// allocates.
//
// Record framing: an 8-byte little-endian header word holding the payload
// length (bits 0-31), the caller's type (bits 32-47) and a record kind (bits
// 48-63: data or padding), then the payload, padded to a multiple of 8. A
// record that does not fit before the end of the data region is preceded by
// a padding record that fills the rest, and starts again at offset 0.
//
// Cursors are monotonic byte counts (they never wrap in practice: 2^64
// bytes). The producer publishes by storing its cursor; the consumer frees
// space by storing its cursor. Each side caches the other's cursor and
// reloads it only when the cache says empty or full, so in steady state a
// batch costs one store and at most one load of a shared line per side.
//
// Everything read from the memory is validated: a cursor or header that no
// correct peer writes yields a *CorruptError, never a panic or an
// out-of-bounds access.
type SPSC struct {
	data []byte // the data region; len(data) == capacity, a power of two
	mask uint64
	tail *atomic.Uint64 // producer cursor in ring memory
	head *atomic.Uint64 // consumer cursor in ring memory
	bell *Doorbell      // the consumer's doorbell, rung after each publish

	_ [CacheLine]byte
	// Producer-local state.
	claimed   uint64 // end of the records claimed so far (>= published)
	published uint64 // last value stored to tail
	headCache uint64 // last consumer cursor read
	limit     uint64 // headCache + capacity: claims may run up to here

	_ [CacheLine]byte
	// Consumer-local state.
	consumed  uint64    // consumer cursor (last value stored to head, plus reads in progress)
	tailCache uint64    // last producer cursor read
	spaceBell *Doorbell // the producer's doorbell, rung after each Read that frees space
	touched   byte      // sink of touchNext's loads, so they are not optimised away
	_         [CacheLine]byte
}

// NewSPSC formats mem as an empty SPSC ring and returns it. The data region
// is the largest power of two that fits after the control block (see
// SPSCSize). mem must be 8-byte aligned (64 for full cache-line isolation).
// Any previous contents of the control block are overwritten; peers in
// other processes then use AttachSPSC.
func NewSPSC(mem []byte) (*SPSC, error) {
	if err := checkAligned("new spsc ring", mem); err != nil {
		return nil, err
	}
	if len(mem) < ControlSize+MinCapacity {
		return nil, fmt.Errorf("new spsc ring: %d bytes of memory, need at least %d (SPSCSize(%d)): %w", len(mem), ControlSize+MinCapacity, MinCapacity, ErrMemory)
	}
	capacity := min(floorPow2(uint64(len(mem)-ControlSize)), MaxCapacity)
	word64(mem, offMagic).Store(0) // a concurrent Attach must not see a half-formatted block
	clear(mem[8:ControlSize])
	word64(mem, offCapacity).Store(capacity)
	word64(mem, offMagic).Store(spscMagic)
	return newSPSC(mem, capacity, 0, 0), nil
}

// AttachSPSC returns a ring over mem that NewSPSC has already formatted,
// typically in another process. It validates the control block: magic,
// capacity (a power of two that fits in mem) and both cursors.
func AttachSPSC(mem []byte) (*SPSC, error) {
	if err := checkAligned("attach spsc ring", mem); err != nil {
		return nil, err
	}
	if len(mem) < ControlSize+MinCapacity {
		return nil, fmt.Errorf("attach spsc ring: %d bytes of memory, need at least %d: %w", len(mem), ControlSize+MinCapacity, ErrMemory)
	}
	if m := word64(mem, offMagic).Load(); m != spscMagic {
		return nil, corrupt("spsc", "magic", m, "want %#x: memory is not a formatted SPSC ring (format it with NewSPSC)", spscMagic)
	}
	capacity := word64(mem, offCapacity).Load()
	if capacity < MinCapacity || capacity > MaxCapacity || !isPow2(capacity) || capacity > uint64(len(mem)-ControlSize) {
		return nil, corrupt("spsc", "capacity", capacity, "want a power of two in [%d, %d] that fits in %d bytes of memory", MinCapacity, MaxCapacity, len(mem))
	}
	tail := word64(mem, offTail).Load()
	head := word64(mem, offHead).Load()
	if err := checkCursors(capacity, head, tail); err != nil {
		return nil, err
	}
	return newSPSC(mem, capacity, head, tail), nil
}

func newSPSC(mem []byte, capacity, head, tail uint64) *SPSC {
	return &SPSC{
		data:      mem[ControlSize : ControlSize+int(capacity) : ControlSize+int(capacity)],
		mask:      capacity - 1,
		tail:      word64(mem, offTail),
		head:      word64(mem, offHead),
		claimed:   tail,
		published: tail,
		headCache: head,
		limit:     head + capacity,
		consumed:  head,
		tailCache: tail,
	}
}

// maxCursor bounds the cursors AttachSPSC accepts: they count bytes and
// come nowhere near it in practice (2^62 bytes at 100 GB/s is over a
// thousand years), and below it the free-space arithmetic cannot overflow.
const maxCursor = 1 << 62

// checkCursors validates a (head, tail) pair read from ring memory.
func checkCursors(capacity, head, tail uint64) error {
	switch {
	case tail > maxCursor:
		return corrupt("spsc", "producer cursor", tail, "beyond 2^62: no ring has moved that many bytes")
	case tail%RecordAlign != 0:
		return corrupt("spsc", "producer cursor", tail, "not a multiple of %d", RecordAlign)
	case head%RecordAlign != 0:
		return corrupt("spsc", "consumer cursor", head, "not a multiple of %d", RecordAlign)
	case tail < head || tail-head > capacity:
		return corrupt("spsc", "producer cursor", tail, "consumer cursor is %d and capacity %d: want 0 <= producer-consumer <= capacity", head, capacity)
	}
	return nil
}

// Capacity returns the size of the data region in bytes.
func (r *SPSC) Capacity() int { return len(r.data) }

// SetDoorbell makes the producer ring d after every publish (Commit,
// TryWrite, Write). Ringing costs one load when nobody is parked on d. Give
// the ring its consumer's doorbell; several rings may share one. Call it
// before the producer starts; nil turns ringing off.
func (r *SPSC) SetDoorbell(d *Doorbell) { r.bell = d }

// SetSpaceDoorbell makes the consumer ring d after every Read that frees
// space, so that a producer waiting for room can park on d (SpinPark)
// instead of polling: it arms d, retries its write once more, and only then
// waits. Ringing costs one load when nobody is parked on d. Call it before
// the consumer starts; nil turns ringing off.
func (r *SPSC) SetSpaceDoorbell(d *Doorbell) { r.spaceBell = d }

// Claim reserves room for a record of n payload bytes with type typ and
// returns the payload to fill in. The record becomes visible to the
// consumer at the next Commit, together with every record claimed since the
// previous Commit: claim a batch, fill it, commit once. The returned slice
// aliases ring memory and is valid until that Commit; do not keep it.
//
// Claim returns ErrFull at once when the ring has no room (commit what is
// claimed, or wait for the consumer), and ErrTooLarge when n exceeds
// MaxPayload. Producer side only.
func (r *SPSC) Claim(typ uint16, n int) ([]byte, error) {
	// Fast path, small enough to inline: the record fits before the end of
	// the data region and within the free space last seen. A negative n
	// wraps to a huge uint64 and takes the slow path, which rejects it.
	frame := (HeaderSize + RecordAlign - 1 + uint64(n)) &^ (RecordAlign - 1)
	idx := r.claimed & r.mask
	if uint64(n) > uint64(len(r.data))-HeaderSize || idx+frame > uint64(len(r.data)) || r.claimed+frame > r.limit {
		return r.claimSlow(typ, n)
	}
	rec := r.data[idx : idx+frame : idx+frame]
	binary.LittleEndian.PutUint64(rec, header(uint64(n), typ, kindData))
	r.claimed += frame
	return rec[HeaderSize:][:n:n], nil
}

// claimSlow is Claim when the record is too large, needs the wrap, or
// does not fit in the free space last seen (it then reloads the consumer
// cursor).
func (r *SPSC) claimSlow(typ uint16, n int) ([]byte, error) {
	capacity := uint64(len(r.data))
	if n < 0 || uint64(n) > capacity-HeaderSize {
		return nil, fmt.Errorf("claim %d-byte record in a %d-byte ring (max payload %d): %w", n, capacity, capacity-HeaderSize, ErrTooLarge)
	}
	frame := align8(HeaderSize + uint64(n))
	idx := r.claimed & r.mask
	var pad uint64
	if idx+frame > capacity {
		pad = capacity - idx
	}
	if r.claimed+pad+frame > r.limit {
		if err := r.refreshHead(); err != nil {
			return nil, err
		}
		if r.claimed+pad+frame > r.limit {
			r.padWhenIdle(pad)
			return nil, ErrFull
		}
	}
	if pad > 0 {
		binary.LittleEndian.PutUint64(r.data[idx:], header(pad-HeaderSize, 0, kindPad))
		r.claimed += pad
		idx = 0
	}
	binary.LittleEndian.PutUint64(r.data[idx:], header(uint64(n), typ, kindData))
	r.claimed += frame
	p := idx + HeaderSize
	return r.data[p : p+uint64(n) : p+uint64(n)], nil
}

// Batch is a run of records of one type and payload size, claimed together
// by ClaimBatch and laid out back to back in ring memory. Fill each
// payload in place; the batch becomes visible at the producer's next
// Commit. A Batch aliases ring memory: do not keep it past that Commit.
//
// A Batch is kept to 32 bytes in three fields (MaxCapacity fits in a
// uint32), the most the compiler keeps in registers: a larger one lives on
// the stack and is copied whole on every Payload call of a fill loop.
type Batch struct {
	frames []byte // the records, headers written, back to back
	size   uint32 // payload bytes of each record
	n      uint32 // records
}

// Len returns the number of records in the batch.
func (b Batch) Len() int { return int(b.n) }

// Payload returns the payload of record i to fill in. It panics unless
// 0 <= i < Len, like an index out of range.
func (b Batch) Payload(i int) []byte {
	size := int(b.size)
	p := i*((HeaderSize+RecordAlign-1+size)&^(RecordAlign-1)) + HeaderSize
	return b.frames[p : p+size : p+size]
}

// ClaimBatch reserves up to count records of n payload bytes each, all of
// type typ, with one call: the per-record work of Claim (bounds, free
// space, the cursor) is done once for the run, which is what makes a
// stream of small fixed-size records cheap. On success it claims at least
// one record: as many as fit in the free space before the end of the data
// region or, when the next record needs the wrap, that record alone after
// the padding. Len may therefore be less than count: fill and commit them,
// then claim the rest. Like Claim, it returns ErrFull at once when not
// even one record fits and ErrTooLarge when n exceeds MaxPayload; a count
// below 1 is a programming error and returns an error. Producer side only.
func (r *SPSC) ClaimBatch(typ uint16, n, count int) (Batch, error) {
	frame := (HeaderSize + RecordAlign - 1 + uint64(n)) &^ (RecordAlign - 1)
	idx := r.claimed & r.mask
	if count < 1 || uint64(n) > uint64(len(r.data))-HeaderSize || idx+frame > uint64(len(r.data)) {
		return r.claimOne(typ, n, count)
	}
	room := min(uint64(len(r.data))-idx, r.limit-r.claimed)
	if room/frame < uint64(count) && r.limit-r.claimed < uint64(len(r.data))-idx {
		// The free space last seen is what binds: look again.
		if err := r.refreshHead(); err != nil {
			return Batch{}, err
		}
		room = min(uint64(len(r.data))-idx, r.limit-r.claimed)
	}
	k := min(uint64(count), room/frame)
	if k == 0 {
		// The record fits before the end, so the free space binds and
		// was just looked at again: the ring is full.
		return Batch{}, ErrFull
	}
	frames := r.data[idx : idx+k*frame : idx+k*frame]
	h := header(uint64(n), typ, kindData)
	for i := uint64(0); i < k; i++ {
		binary.LittleEndian.PutUint64(frames[i*frame:], h)
	}
	r.claimed += k * frame
	return Batch{frames: frames, size: uint32(n), n: uint32(k)}, nil
}

// claimOne is ClaimBatch when the next record needs the wrap or the
// arguments are wrong: Claim's slow path, as a batch of one.
func (r *SPSC) claimOne(typ uint16, n, count int) (Batch, error) {
	if count < 1 {
		return Batch{}, fmt.Errorf("claim a batch of %d records: want at least 1", count)
	}
	if _, err := r.claimSlow(typ, n); err != nil {
		return Batch{}, err
	}
	frame := align8(HeaderSize + uint64(n))
	idx := (r.claimed - frame) & r.mask
	return Batch{frames: r.data[idx : idx+frame : idx+frame], size: uint32(n), n: 1}, nil
}

// padWhenIdle handles a record that needs the wrap but does not fit behind
// the padding yet. With nothing claimed and unpublished, it publishes the
// padding on its own, so the consumer frees the tail of the data region and
// the record can start at offset 0 once the ring drains; otherwise the
// record could never fit when it is as large as the ring.
func (r *SPSC) padWhenIdle(pad uint64) {
	if pad == 0 || r.claimed != r.published || r.claimed+pad > r.limit {
		return
	}
	binary.LittleEndian.PutUint64(r.data[r.claimed&r.mask:], header(pad-HeaderSize, 0, kindPad))
	r.claimed += pad
	r.Commit()
}

// refreshHead reloads the consumer cursor and validates it against what
// the producer knows.
func (r *SPSC) refreshHead() error {
	h := r.head.Load()
	if h%RecordAlign != 0 || h < r.headCache || h > r.published {
		return corrupt("spsc", "consumer cursor", h, "want a multiple of %d in [%d, %d] (last seen, published)", RecordAlign, r.headCache, r.published)
	}
	r.headCache = h
	r.limit = h + uint64(len(r.data))
	return nil
}

// Commit publishes every record claimed since the previous Commit with one
// store of the producer cursor, then rings the doorbell if one is set.
// Producer side only.
func (r *SPSC) Commit() {
	if r.claimed == r.published {
		return
	}
	r.published = r.claimed
	r.tail.Store(r.claimed)
	if r.bell != nil {
		r.bell.Ring()
	}
}

// TryWrite writes one record and publishes it (with any records claimed
// and not yet committed). It returns ErrFull at once when there is no room.
func (r *SPSC) TryWrite(typ uint16, payload []byte) error {
	p, err := r.Claim(typ, len(payload))
	if err != nil {
		return err
	}
	copy(p, payload)
	r.Commit()
	return nil
}

// Write is TryWrite that waits for room until deadline (the zero Time
// waits without limit). It spins briefly, then yields the processor, then
// sleeps in growing steps of at most 100µs, so a stuck consumer costs little
// CPU. It returns an error wrapping ErrTimeout if the deadline passes first.
func (r *SPSC) Write(typ uint16, payload []byte, deadline time.Time) error {
	var b backoff
	for {
		err := r.TryWrite(typ, payload)
		if err != ErrFull {
			return err
		}
		if !b.wait(deadline) {
			return fmt.Errorf("write %d-byte record to spsc ring: %w", len(payload), ErrTimeout)
		}
	}
}

// Read delivers up to limit records (all that are published when limit <=
// 0) to fn, in order, and then frees their space with one store of the
// consumer cursor. payload aliases ring memory and is valid only during the
// call to fn: copy what must outlive it. Read returns the number of records
// delivered; 0 means none were (the ring was empty, or the call only
// skipped padding), so poll again. On corrupt memory it returns the
// records delivered before the bad one and a *CorruptError; the ring stays
// at the bad record. Consumer side only.
func (r *SPSC) Read(limit int, fn func(typ uint16, payload []byte)) (int, error) {
	if r.consumed == r.tailCache {
		t := r.tail.Load()
		if t%RecordAlign != 0 || t < r.consumed || t-r.consumed > uint64(len(r.data)) {
			return 0, corrupt("spsc", "producer cursor", t, "consumer cursor is %d and capacity %d: want a multiple of %d in [consumer, consumer+capacity]", r.consumed, len(r.data), RecordAlign)
		}
		r.tailCache = t
		if t == r.consumed {
			r.touchNext()
			return 0, nil
		}
	}
	if limit <= 0 {
		limit = math.MaxInt
	}
	var (
		count int
		err   error
		pos   = r.consumed
		data  = r.data
		tail  = r.tailCache
	)
	for pos < tail && count < limit {
		// rec runs from the record to the end of the data region; idx is
		// a multiple of 8 below the capacity, so rec holds the header.
		rec := data[pos&r.mask:]
		h := binary.LittleEndian.Uint64(rec)
		n := uint64(uint32(h))
		frame := (HeaderSize + RecordAlign - 1 + n) &^ (RecordAlign - 1)
		if uint16(h>>48) != kindData || frame > tail-pos || frame > uint64(len(rec)) {
			// Padding, or corrupt memory.
			if err = checkSkip(h, frame, pos, tail, uint64(len(rec)), uint64(len(data))); err != nil {
				break
			}
			pos += frame
			continue
		}
		fn(uint16(h>>32), rec[HeaderSize:][:n:n])
		count++
		pos += frame
	}
	if pos != r.consumed {
		r.consumed = pos
		r.head.Store(pos)
		if r.spaceBell != nil {
			r.spaceBell.Ring()
		}
	}
	return count, err
}

// checkSkip validates a record that Read does not deliver: padding must
// lie within the published data and end exactly at the end of the data
// region (room is the bytes from the record to that end); anything else
// is corrupt.
func checkSkip(h, frame, pos, tail, room, capacity uint64) error {
	n, kind := uint64(uint32(h)), uint16(h>>48)
	switch {
	case frame > tail-pos || frame > room:
		return corrupt("spsc", "record length", n, "record at cursor %d would end past the published data (%d) or the data region (%d)", pos, tail, capacity)
	case kind != kindPad:
		return corrupt("spsc", "record kind", uint64(kind), "record at cursor %d: want %#x (data) or %#x (padding)", pos, kindData, kindPad)
	case frame != room:
		return corrupt("spsc", "padding length", n, "padding at offset %d must end at the data region's end (%d)", capacity-room, capacity)
	}
	return nil
}

// touchNext loads a byte from each of the two cache lines where the next
// record will start (a record of up to 64-HeaderSize bytes spans at most
// these two), so an empty poll keeps them in this core's cache. When the
// producer writes them, its stores invalidate this core's copies and the
// next poll fetches the new lines while the producer is still publishing
// its cursor: the two cross-core fetches a hand-off needs (cursor, then
// record) overlap instead of running one after the other, which halves a
// ping-pong's round trip. The bytes are discarded: they may be half
// written, and nothing is read from them until the cursor says so. The
// indices are masked into the data region. Race builds skip it, as the
// race detector cannot tell these discarded reads from real ones.
func (r *SPSC) touchNext() {
	if raceEnabled {
		return
	}
	i := r.consumed & r.mask
	r.touched = r.data[i] ^ r.data[(i+CacheLine)&r.mask]
}

// Len returns the bytes published and not yet consumed, as read from ring
// memory (0 if the cursors are inconsistent). For monitoring only.
func (r *SPSC) Len() int {
	h, t := r.head.Load(), r.tail.Load()
	if t < h || t-h > uint64(len(r.data)) {
		return 0
	}
	return int(t - h)
}

func header(n uint64, typ, kind uint16) uint64 {
	return n | uint64(typ)<<32 | uint64(kind)<<48
}

// backoff paces a blocking wait: a bounded spin, then yields, then short
// sleeps growing to 100µs, checking the deadline as it goes.
type backoff struct {
	n     int
	sleep time.Duration
}

// wait idles once and reports whether the caller may try again (false
// once deadline, if not zero, has passed).
func (b *backoff) wait(deadline time.Time) bool {
	b.n++
	switch {
	case b.n <= 64:
		// spin: the consumer is usually a few hundred nanoseconds away.
	case b.n <= 128:
		runtime.Gosched()
	default:
		b.sleep = min(max(2*b.sleep, time.Microsecond), 100*time.Microsecond)
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return false
			}
			b.sleep = min(b.sleep, left)
		}
		time.Sleep(b.sleep)
	}
	return deadline.IsZero() || b.n%16 != 0 || time.Now().Before(deadline)
}
