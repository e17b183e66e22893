package ringbuf

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// MPSC layout constants. The control block is ControlSize bytes: line 0
// holds magic, slot count and slot size (written once by NewMPSC); line 1
// the claim cursor that producers CAS; line 2 the consumer cursor and the
// skipped-record count, written only by the consumer. Slots follow.
const (
	// SlotHeaderSize is the bytes of each MPSC slot before its payload: the
	// slot's sequence word and the record header (length, type, kind).
	SlotHeaderSize = 16
	// MinSlotSize and MaxSlotSize bound an MPSC slot (a power of two).
	MinSlotSize = 32
	MaxSlotSize = 1 << 16
	// MinSlots and MaxSlots bound the slot count (a power of two).
	MinSlots = 2
	MaxSlots = 1 << 24
	// DefaultSkipTimeout is how long the MPSC consumer waits for a claimed
	// slot's commit before it skips the record as abandoned. It is long
	// because a live producer preempted on an overloaded machine can stall
	// for tens of milliseconds, and skipping a live producer costs it its
	// record (ErrSkipped) and risks the hazard described on MPSC.
	DefaultSkipTimeout = 100 * time.Millisecond

	offSlots    = 8
	offSlotSize = 16
	offSkipped  = offHead + 8

	mpscMagic uint64 = 0x3143_5350_4d42_5243 // "CRBMPSC1" little-endian
)

// MPSCSize returns the bytes of memory an MPSC ring of slots slots of
// slotSize bytes needs. Both must be powers of two within MinSlots..MaxSlots
// and MinSlotSize..MaxSlotSize; MPSCSize panics otherwise, as that is a
// programming error. A slot carries up to slotSize-SlotHeaderSize payload
// bytes.
func MPSCSize(slots, slotSize int) int {
	if slots < MinSlots || slots > MaxSlots || !isPow2(uint64(slots)) {
		panic(fmt.Sprintf("ringbuf: MPSCSize(%d, %d): slots must be a power of two in [%d, %d]", slots, slotSize, MinSlots, MaxSlots))
	}
	if slotSize < MinSlotSize || slotSize > MaxSlotSize || !isPow2(uint64(slotSize)) {
		panic(fmt.Sprintf("ringbuf: MPSCSize(%d, %d): slot size must be a power of two in [%d, %d]", slots, slotSize, MinSlotSize, MaxSlotSize))
	}
	return ControlSize + slots*slotSize
}

// MPSC is a many-producer single-consumer ring of fixed-size slots over
// caller-given memory, for order entry from many sessions (goroutines or
// processes). It is the bounded queue of D. Vyukov: each slot has a
// sequence word; a producer claims the slot at the claim cursor with one
// CAS on that cursor, fills it and commits with a CAS on the slot's
// sequence; the consumer reads slots in order and frees each by advancing
// its sequence a lap. The consumer never sees a half-written record, as it
// reads a slot only after its commit.
//
// A producer that dies between Claim and Commit (a killed process) leaves
// its slot claimed forever. The consumer waits for it at most the skip
// timeout (SetSkipTimeout), then turns the slot into a skipped record with
// a CAS on its sequence, counts it (Skipped) and moves on. A producer that
// was only slow finds out: its commit CAS expects the claimed sequence,
// which can never recur, so Commit returns ErrSkipped and writes nothing
// more.
//
// Residual hazard: a slow producer still writing its payload when the
// consumer skips it writes into a slot that a later producer may already
// have claimed, and can corrupt that later record's payload. Claim/Commit
// leaves the window open for as long as the caller fills the payload;
// TryWrite narrows it to one copy of the payload. Choose a skip timeout
// well above the longest stall a live producer can suffer (GC pause,
// preemption on a busy machine).
//
// The consumer notices an abandoned slot only while it keeps calling Read:
// an agent parked with SpinPark wakes at its park timeout to do so.
//
// Producer methods are safe for concurrent use; Read, SetSkipTimeout and
// SetDoorbell belong to the one consumer.
type MPSC struct {
	slots    []byte // slot memory, nslots*slotSize bytes
	nslots   uint64
	mask     uint64
	slotSize uint64
	tail     *atomic.Uint64 // claim cursor: slots ever claimed
	head     *atomic.Uint64 // consumer cursor: slots ever consumed or skipped
	skipped  *atomic.Uint64 // records skipped as abandoned
	bell     *Doorbell

	_ [CacheLine]byte
	// Consumer-local state.
	consumed    uint64
	skipTimeout time.Duration
	stalled     bool // the slot at consumed is claimed and uncommitted since stallStart
	stallStart  time.Time
}

// NewMPSC formats mem as an empty MPSC ring of slotSize-byte slots and
// returns it. The slot count is the largest power of two that fits (see
// MPSCSize). mem must be 8-byte aligned (64 for full cache-line isolation).
func NewMPSC(mem []byte, slotSize int) (*MPSC, error) {
	if err := checkAligned("new mpsc ring", mem); err != nil {
		return nil, err
	}
	if slotSize < MinSlotSize || slotSize > MaxSlotSize || !isPow2(uint64(slotSize)) {
		return nil, fmt.Errorf("new mpsc ring: slot size %d: want a power of two in [%d, %d]: %w", slotSize, MinSlotSize, MaxSlotSize, ErrMemory)
	}
	if len(mem) < ControlSize+MinSlots*slotSize {
		return nil, fmt.Errorf("new mpsc ring: %d bytes of memory, need at least %d (MPSCSize(%d, %d)): %w", len(mem), ControlSize+MinSlots*slotSize, MinSlots, slotSize, ErrMemory)
	}
	nslots := min(floorPow2(uint64((len(mem)-ControlSize)/slotSize)), MaxSlots)
	word64(mem, offMagic).Store(0) // a concurrent Attach must not see a half-formatted block
	clear(mem[8:ControlSize])
	word64(mem, offSlots).Store(nslots)
	word64(mem, offSlotSize).Store(uint64(slotSize))
	r := newMPSC(mem, nslots, uint64(slotSize), 0)
	for i := range nslots {
		r.seq(i).Store(i)
	}
	word64(mem, offMagic).Store(mpscMagic)
	return r, nil
}

// AttachMPSC returns a ring over mem that NewMPSC has already formatted,
// typically in another process, after validating its control block.
func AttachMPSC(mem []byte) (*MPSC, error) {
	if err := checkAligned("attach mpsc ring", mem); err != nil {
		return nil, err
	}
	if len(mem) < ControlSize+MinSlots*MinSlotSize {
		return nil, fmt.Errorf("attach mpsc ring: %d bytes of memory, need at least %d: %w", len(mem), ControlSize+MinSlots*MinSlotSize, ErrMemory)
	}
	if m := word64(mem, offMagic).Load(); m != mpscMagic {
		return nil, corrupt("mpsc", "magic", m, "want %#x: memory is not a formatted MPSC ring (format it with NewMPSC)", mpscMagic)
	}
	slotSize := word64(mem, offSlotSize).Load()
	if slotSize < MinSlotSize || slotSize > MaxSlotSize || !isPow2(slotSize) {
		return nil, corrupt("mpsc", "slot size", slotSize, "want a power of two in [%d, %d]", MinSlotSize, MaxSlotSize)
	}
	nslots := word64(mem, offSlots).Load()
	if nslots < MinSlots || nslots > MaxSlots || !isPow2(nslots) || nslots > uint64(len(mem)-ControlSize)/slotSize {
		return nil, corrupt("mpsc", "slot count", nslots, "want a power of two in [%d, %d] whose slots fit in %d bytes of memory", MinSlots, MaxSlots, len(mem))
	}
	head, tail := word64(mem, offHead).Load(), word64(mem, offTail).Load()
	if tail < head || tail-head > nslots {
		return nil, corrupt("mpsc", "claim cursor", tail, "consumer cursor is %d and slot count %d: want 0 <= claim-consumer <= slots", head, nslots)
	}
	return newMPSC(mem, nslots, slotSize, head), nil
}

func newMPSC(mem []byte, nslots, slotSize, head uint64) *MPSC {
	end := ControlSize + int(nslots*slotSize)
	return &MPSC{
		slots:       mem[ControlSize:end:end],
		nslots:      nslots,
		mask:        nslots - 1,
		slotSize:    slotSize,
		tail:        word64(mem, offTail),
		head:        word64(mem, offHead),
		skipped:     word64(mem, offSkipped),
		consumed:    head,
		skipTimeout: DefaultSkipTimeout,
	}
}

// seq returns the sequence word of the slot for cursor pos. A slot's
// sequence is pos when free for the producer of pos, pos+1 once that
// producer committed, and pos+slots once consumed or skipped.
func (r *MPSC) seq(pos uint64) *atomic.Uint64 {
	return word64(r.slots, int((pos&r.mask)*r.slotSize))
}

// Slots returns the number of slots.
func (r *MPSC) Slots() int { return int(r.nslots) }

// MaxPayload returns the most payload bytes a slot holds.
func (r *MPSC) MaxPayload() int { return int(r.slotSize) - SlotHeaderSize }

// SetDoorbell makes producers ring d after each commit. Give the ring its
// consumer's doorbell before producers start; nil turns ringing off.
func (r *MPSC) SetDoorbell(d *Doorbell) { r.bell = d }

// SetSkipTimeout sets how long the consumer waits for a claimed record's
// commit before skipping it as abandoned (default DefaultSkipTimeout). Set
// it before the consumer starts.
func (r *MPSC) SetSkipTimeout(d time.Duration) { r.skipTimeout = d }

// Skipped returns how many records the consumer has skipped because their
// producer claimed a slot and did not commit within the skip timeout.
func (r *MPSC) Skipped() uint64 { return r.skipped.Load() }

// Reservation is a claimed MPSC slot. Fill Payload, then Commit. It is a
// small value: passing it around does not allocate.
type Reservation struct {
	// Payload aliases the slot's memory; it is valid until Commit.
	Payload []byte

	r   *MPSC
	pos uint64
}

// Claim reserves the next slot for a record of n payload bytes and type
// typ. It returns ErrFull at once when every slot holds an unconsumed
// record, and ErrTooLarge when n exceeds MaxPayload.
func (r *MPSC) Claim(typ uint16, n int) (Reservation, error) {
	if n < 0 || n > r.MaxPayload() {
		return Reservation{}, fmt.Errorf("claim %d-byte record in an mpsc ring of %d-byte slots (max payload %d): %w", n, r.slotSize, r.MaxPayload(), ErrTooLarge)
	}
	for {
		pos := r.tail.Load()
		seq := r.seq(pos).Load()
		switch d := int64(seq - pos); {
		case d == 0:
			if !r.tail.CompareAndSwap(pos, pos+1) {
				continue // another producer took pos
			}
			off := (pos & r.mask) * r.slotSize
			binary.LittleEndian.PutUint64(r.slots[off+8:], header(uint64(n), typ, kindData))
			p := off + SlotHeaderSize
			return Reservation{Payload: r.slots[p : p+uint64(n) : p+uint64(n)], r: r, pos: pos}, nil
		case d == 1-int64(r.nslots) || d == -int64(r.nslots):
			// The slot still holds the previous lap's record, committed
			// or still being written.
			if r.tail.Load() == pos {
				return Reservation{}, ErrFull
			}
		case d > 0:
			// Another producer claimed pos and its slot moved on.
			if r.tail.Load() == pos {
				return Reservation{}, corrupt("mpsc", "slot sequence", seq, "slot for cursor %d is ahead of the claim cursor", pos)
			}
		default:
			if r.tail.Load() == pos {
				return Reservation{}, corrupt("mpsc", "slot sequence", seq, "slot for cursor %d is more than a lap behind", pos)
			}
		}
	}
}

// Commit publishes the record and rings the consumer's doorbell. It
// returns an error wrapping ErrSkipped if the consumer gave up on the
// record first; then nothing was delivered and the slot is no longer the
// caller's.
func (c Reservation) Commit() error {
	if !c.r.seq(c.pos).CompareAndSwap(c.pos, c.pos+1) {
		return fmt.Errorf("commit mpsc record at cursor %d: %w", c.pos, ErrSkipped)
	}
	if c.r.bell != nil {
		c.r.bell.Ring()
	}
	return nil
}

// TryWrite claims a slot, copies payload into it and commits it. It
// returns ErrFull at once when the ring is full.
func (r *MPSC) TryWrite(typ uint16, payload []byte) error {
	c, err := r.Claim(typ, len(payload))
	if err != nil {
		return err
	}
	copy(c.Payload, payload)
	return c.Commit()
}

// Write is TryWrite that waits for room until deadline (the zero Time
// waits without limit), pacing itself as SPSC.Write does. It returns an
// error wrapping ErrTimeout if the deadline passes first.
func (r *MPSC) Write(typ uint16, payload []byte, deadline time.Time) error {
	var b backoff
	for {
		err := r.TryWrite(typ, payload)
		if err != ErrFull {
			return err
		}
		if !b.wait(deadline) {
			return fmt.Errorf("write %d-byte record to mpsc ring: %w", len(payload), ErrTimeout)
		}
	}
}

// Read delivers up to limit committed records (all available when limit
// <= 0) to fn in claim order, frees their slots, and stores the consumer
// cursor once. payload aliases ring memory and is valid only during fn.
// A slot claimed but not committed stops the batch; once it has stayed so
// for the skip timeout, a later Read skips it and counts it in Skipped.
// On corrupt memory Read returns the records delivered before and a
// *CorruptError, and stays at the bad slot. Consumer only.
func (r *MPSC) Read(limit int, fn func(typ uint16, payload []byte)) (int, error) {
	if limit <= 0 {
		limit = math.MaxInt
	}
	var (
		count int
		err   error
		start = r.consumed
	)
	for count < limit {
		pos := r.consumed
		s := r.seq(pos)
		seq := s.Load()
		if seq == pos+1 {
			off := (pos & r.mask) * r.slotSize
			h := binary.LittleEndian.Uint64(r.slots[off+8:])
			n, typ, kind := uint64(uint32(h)), uint16(h>>32), uint16(h>>48)
			if kind != kindData {
				err = corrupt("mpsc", "record kind", uint64(kind), "slot for cursor %d: want %#x", pos, kindData)
				break
			}
			if n > r.slotSize-SlotHeaderSize {
				err = corrupt("mpsc", "record length", n, "slot for cursor %d holds at most %d payload bytes", pos, r.slotSize-SlotHeaderSize)
				break
			}
			p := off + SlotHeaderSize
			fn(typ, r.slots[p:p+n:p+n])
			s.Store(pos + r.nslots)
			r.consumed++
			r.stalled = false
			count++
			continue
		}
		if seq != pos {
			err = corrupt("mpsc", "slot sequence", seq, "slot for consumer cursor %d: want %d (free or claimed) or %d (committed)", pos, pos, pos+1)
			break
		}
		t := r.tail.Load()
		if t == pos {
			break // empty
		}
		if t < pos || t-pos > r.nslots {
			err = corrupt("mpsc", "claim cursor", t, "consumer cursor is %d and slot count %d", pos, r.nslots)
			break
		}
		// Claimed and not committed yet.
		if !r.stalled {
			r.stalled, r.stallStart = true, time.Now()
			break
		}
		if time.Since(r.stallStart) < r.skipTimeout {
			break
		}
		if s.CompareAndSwap(pos, pos+r.nslots) {
			r.skipped.Add(1)
			r.consumed++
			r.stalled = false
		}
		// else the producer committed just now: read it on the next turn.
	}
	if r.consumed != start {
		r.head.Store(r.consumed)
	}
	return count, err
}
