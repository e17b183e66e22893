package engine

import (
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// Transaction ids carry the epoch of the coordinator that assigned them in
// their high bits: bits 40–59 hold the epoch, bits 0–39 a sequence number
// starting at 1. Ids stay monotonic across takeovers (a backup's epoch is
// higher), and a backup can never assign an id that a stale coordinator of
// an older epoch might still be using.
const (
	seqBits = 40
	// MaxEpoch is the largest coordinator epoch.
	MaxEpoch Epoch = 1<<20 - 1
	// MaxSeq is the largest sequence number within one epoch: at 1M
	// transactions a second an epoch lasts 12 days; a coordinator that
	// exhausts it must be replaced by one with the next epoch.
	MaxSeq = 1<<seqBits - 1
)

// MakeTxID returns the id of the seq-th transaction of epoch e.
func MakeTxID(e Epoch, seq uint64) TxID {
	if e == 0 || e > MaxEpoch || seq == 0 || seq > MaxSeq {
		panic(fmt.Sprintf("engine: tx id of epoch %d seq %d out of range", e, seq))
	}
	return TxID(uint64(e)<<seqBits | seq)
}

// EpochOf returns the epoch of the coordinator that assigned tx.
func EpochOf(tx TxID) Epoch { return Epoch(uint64(tx) >> seqBits) }

// Decision is the state of a transaction's slot in the decision table.
type Decision uint8

// Decisions. A slot moves from Undecided to Commit or Abort exactly once.
const (
	Undecided Decision = 0
	Commit    Decision = 1
	Abort     Decision = 2
)

// String returns "undecided", "commit" or "abort".
func (d Decision) String() string {
	switch d {
	case Undecided:
		return "undecided"
	case Commit:
		return "commit"
	case Abort:
		return "abort"
	}
	return fmt.Sprintf("decision(%d)", uint8(d))
}

// Decision table layout. The table is a caller-given byte region (heap in
// tests, a shared-memory segment in production), 8-byte aligned:
//
//	off  size  field
//	  0     8  magic "CCDTBL01"
//	  8     4  layout version (1)
//	 12     4  log2 of the slot count (6 … 24)
//	 16     8  current coordinator epoch (atomic; a takeover raises it)
//	 24    40  zero
//	 64  8×N   slots, one 64-bit word each, updated only by CAS
//
// A slot holds the transaction tx with tx mod N == slot index:
//
//	bits   field
//	0–1    decision: 0 undecided, 1 commit, 2 abort (3 is corrupt)
//	2      done: every participant acknowledged; the slot may be reused
//	3–9    reason of an abort (< 128)
//	10–63  tag: tx / N
//
// A zero word is a never-used slot (no valid tx has tag 0: its epoch bits
// are non-zero). The tag makes a reused slot unmistakable: a reader asking
// about tx sees either tx's own word or a word with another tag. The epoch
// that fences a stale coordinator is not in the slot but in the tx id (its
// high bits) and in the header word: a coordinator re-reads the header epoch
// after opening a slot, and a backup raises the header epoch before it scans
// the slots, so every slot a stale coordinator opens is either seen by the
// backup's scan or aborted by the stale coordinator itself.
const (
	tableMagic       = 0x31304c4254444343 // "CCDTBL01" little-endian
	tableVersion     = 1
	tableHeaderSize  = 64
	minTableLog2     = 6
	maxTableLog2     = 24
	slotDecisionMask = 0x3
	slotDone         = 1 << 2
	slotReasonShift  = 3
	slotReasonMask   = 0x7f
	slotTagShift     = 10
)

// Decision table errors, for errors.Is.
var (
	// ErrTableLayout means the region is not a decision table of this
	// layout version, or is too small or misaligned.
	ErrTableLayout = errors.New("engine: bad decision table layout")
	// ErrSlotBusy means the slot for a new transaction still holds an
	// unfinished one: too many transactions are in flight.
	ErrSlotBusy = errors.New("engine: decision slot busy")
	// ErrNotInTable means the slot holds another transaction: tx was
	// never opened, or finished long ago and its slot was reused.
	ErrNotInTable = errors.New("engine: transaction not in decision table")
	// ErrCorruptSlot means a slot holds a value the protocol never writes.
	ErrCorruptSlot = errors.New("engine: corrupt decision slot")
	// ErrStaleEpoch means a newer coordinator epoch is already in place.
	ErrStaleEpoch = errors.New("engine: stale coordinator epoch")
)

// DecisionTable is the shared record of every in-flight transaction's
// decision. Its methods are safe for concurrent use by any number of
// goroutines and processes mapping the same memory. Everything read from it
// is validated: a corrupt word yields ErrCorruptSlot, never a panic.
type DecisionTable struct {
	hdr   *[tableHeaderSize / 8]uint64
	slots []uint64
	shift uint
	mask  uint64
}

// DecisionTableSize returns the bytes a table of n slots needs.
func DecisionTableSize(n int) int { return tableHeaderSize + 8*n }

// InitDecisionTable formats mem as an empty table of n slots (a power of two
// between 64 and 2^24) and returns it. The table's epoch starts at 0: the
// first coordinator raises it with AdvanceEpoch.
func InitDecisionTable(mem []byte, n int) (*DecisionTable, error) {
	if n <= 0 || n&(n-1) != 0 || n < 1<<minTableLog2 || n > 1<<maxTableLog2 {
		return nil, fmt.Errorf("%w: %d slots: want a power of two in [%d,%d]", ErrTableLayout, n, 1<<minTableLog2, 1<<maxTableLog2)
	}
	if err := checkRegion(mem, n); err != nil {
		return nil, err
	}
	clear(mem[:DecisionTableSize(n)])
	t := mapTable(mem, n)
	t.hdr[1] = tableVersion | uint64(bits.TrailingZeros(uint(n)))<<32
	atomic.StoreUint64(&t.hdr[0], tableMagic)
	return t, nil
}

// OpenDecisionTable validates the header of a table formatted by
// InitDecisionTable (possibly by another process) and returns it.
func OpenDecisionTable(mem []byte) (*DecisionTable, error) {
	if len(mem) < tableHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, header needs %d", ErrTableLayout, len(mem), tableHeaderSize)
	}
	if uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return nil, fmt.Errorf("%w: region not 8-byte aligned", ErrTableLayout)
	}
	hdr := (*[tableHeaderSize / 8]uint64)(unsafe.Pointer(&mem[0]))
	if m := atomic.LoadUint64(&hdr[0]); m != tableMagic {
		return nil, fmt.Errorf("%w: magic %#x", ErrTableLayout, m)
	}
	w := atomic.LoadUint64(&hdr[1])
	if v := uint32(w); v != tableVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrTableLayout, v, tableVersion)
	}
	lg := w >> 32
	if lg < minTableLog2 || lg > maxTableLog2 {
		return nil, fmt.Errorf("%w: log2 slot count %d outside [%d,%d]", ErrTableLayout, lg, minTableLog2, maxTableLog2)
	}
	n := 1 << lg
	if err := checkRegion(mem, n); err != nil {
		return nil, err
	}
	return mapTable(mem, n), nil
}

func checkRegion(mem []byte, n int) error {
	if need := DecisionTableSize(n); len(mem) < need {
		return fmt.Errorf("%w: %d bytes, %d slots need %d", ErrTableLayout, len(mem), n, need)
	}
	if uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return fmt.Errorf("%w: region not 8-byte aligned", ErrTableLayout)
	}
	return nil
}

func mapTable(mem []byte, n int) *DecisionTable {
	return &DecisionTable{
		hdr:   (*[tableHeaderSize / 8]uint64)(unsafe.Pointer(&mem[0])),
		slots: unsafe.Slice((*uint64)(unsafe.Pointer(&mem[tableHeaderSize])), n),
		shift: uint(bits.TrailingZeros(uint(n))),
		mask:  uint64(n - 1),
	}
}

// Len returns the number of slots: the most transactions in flight at once.
func (t *DecisionTable) Len() int { return len(t.slots) }

// Epoch returns the current coordinator epoch. Participants accept messages
// of this epoch only. A corrupt value (above MaxEpoch) reads as 0, which no
// message carries: participants then ignore everything rather than guess.
func (t *DecisionTable) Epoch() Epoch {
	e := atomic.LoadUint64(&t.hdr[2])
	if e > uint64(MaxEpoch) {
		return 0
	}
	return Epoch(e)
}

// AdvanceEpoch raises the table's epoch to e, fencing every coordinator of a
// lower epoch. It fails with ErrStaleEpoch if the epoch is already e or
// higher: another coordinator took over first.
func (t *DecisionTable) AdvanceEpoch(e Epoch) error {
	if e == 0 || e > MaxEpoch {
		return fmt.Errorf("advance epoch to %d: outside [1,%d]", e, MaxEpoch)
	}
	for {
		cur := atomic.LoadUint64(&t.hdr[2])
		if cur >= uint64(e) {
			return fmt.Errorf("advance epoch to %d: table is at %d: %w", e, cur, ErrStaleEpoch)
		}
		if atomic.CompareAndSwapUint64(&t.hdr[2], cur, uint64(e)) {
			return nil
		}
	}
}

func (t *DecisionTable) locate(tx TxID) (*uint64, uint64) {
	return &t.slots[uint64(tx)&t.mask], uint64(tx) >> t.shift
}

func unpack(w uint64) (tag uint64, d Decision, done bool, r Reason, err error) {
	d = Decision(w & slotDecisionMask)
	r = Reason(w >> slotReasonShift & slotReasonMask)
	done = w&slotDone != 0
	tag = w >> slotTagShift
	switch {
	case w == 0:
	case tag == 0, d > Abort, d == Undecided && (done || r != ReasonNone),
		d == Commit && r != ReasonNone, d == Abort && (r == ReasonNone || !r.Valid()):
		err = ErrCorruptSlot
	}
	return
}

func pack(tag uint64, d Decision, done bool, r Reason) uint64 {
	w := tag<<slotTagShift | uint64(r)<<slotReasonShift | uint64(d)
	if done {
		w |= slotDone
	}
	return w
}

// Open claims tx's slot as UNDECIDED. It fails with ErrSlotBusy while the
// slot holds an unfinished transaction, and with ErrStaleEpoch if tx's epoch
// is not the table's: the caller has been replaced (after such a failure
// the slot may hold tx as ABORT). Only a coordinator opens slots.
func (t *DecisionTable) Open(tx TxID) error {
	e := EpochOf(tx)
	if e == 0 || e > MaxEpoch {
		return fmt.Errorf("open tx %d: epoch %d outside [1,%d]", tx, e, MaxEpoch)
	}
	p, tag := t.locate(tx)
	for {
		w := atomic.LoadUint64(p)
		old, _, done, _, err := unpack(w)
		switch {
		case err != nil:
			return fmt.Errorf("open tx %d: slot %#x: %w", tx, w, err)
		case old == tag || w != 0 && !done:
			return ErrSlotBusy // unwrapped: a hot path under backpressure
		case old > tag:
			return fmt.Errorf("open tx %d: slot already reused by tx %d: %w", tx, old<<t.shift|uint64(tx)&t.mask, ErrStaleEpoch)
		}
		if atomic.CompareAndSwapUint64(p, w, pack(tag, Undecided, false, ReasonNone)) {
			break
		}
	}
	// Seen after our CAS, a raised epoch means a backup may have scanned
	// this slot before we wrote it: abort rather than commit behind its back.
	if cur := t.Epoch(); cur != e {
		t.decide(tx, Abort, ReasonTerminated)
		return fmt.Errorf("open tx %d: table epoch is %d: %w", tx, cur, ErrStaleEpoch)
	}
	return nil
}

// Lookup returns tx's decision and, for an abort, its reason. It returns
// ErrNotInTable when the slot holds another transaction.
func (t *DecisionTable) Lookup(tx TxID) (Decision, Reason, error) {
	p, tag := t.locate(tx)
	w := atomic.LoadUint64(p)
	old, d, _, r, err := unpack(w)
	if err != nil {
		return Undecided, ReasonNone, fmt.Errorf("lookup tx %d: slot %#x: %w", tx, w, err)
	}
	if old != tag || w == 0 {
		return Undecided, ReasonNone, ErrNotInTable
	}
	return d, r, nil
}

// Commit decides tx COMMIT if it is still UNDECIDED: the coordinator's
// commit point. It returns the final decision and reason, which are Abort
// and the aborter's reason when someone aborted first.
func (t *DecisionTable) Commit(tx TxID) (Decision, Reason, error) {
	return t.decide(tx, Commit, ReasonNone)
}

// Abort decides tx ABORT with reason r if it is still UNDECIDED. A circuit
// breaker, a terminating participant or a coordinator calls it; it returns
// the final decision (Commit if the commit point was passed first) and its
// reason. r must be a valid reason below 128 and not ReasonNone.
func (t *DecisionTable) Abort(tx TxID, r Reason) (Decision, Reason, error) {
	if r == ReasonNone || !r.Valid() || r > slotReasonMask {
		return Undecided, ReasonNone, fmt.Errorf("abort tx %d: reason %d cannot be stored", tx, r)
	}
	return t.decide(tx, Abort, r)
}

func (t *DecisionTable) decide(tx TxID, d Decision, r Reason) (Decision, Reason, error) {
	p, tag := t.locate(tx)
	for {
		w := atomic.LoadUint64(p)
		old, cur, _, cr, err := unpack(w)
		if err != nil {
			return Undecided, ReasonNone, fmt.Errorf("decide tx %d: slot %#x: %w", tx, w, err)
		}
		if old != tag || w == 0 {
			return Undecided, ReasonNone, fmt.Errorf("decide tx %d: %w", tx, ErrNotInTable)
		}
		if cur != Undecided {
			return cur, cr, nil
		}
		if atomic.CompareAndSwapUint64(p, w, pack(tag, d, false, r)) {
			return d, r, nil
		}
	}
}

// Release marks tx's decided slot done so that it can be reused. The
// coordinator calls it once every participant acknowledged the decision and
// the decision is in the log.
func (t *DecisionTable) Release(tx TxID) error {
	p, tag := t.locate(tx)
	for {
		w := atomic.LoadUint64(p)
		old, d, done, r, err := unpack(w)
		switch {
		case err != nil:
			return fmt.Errorf("release tx %d: slot %#x: %w", tx, w, err)
		case old != tag || w == 0:
			return fmt.Errorf("release tx %d: %w", tx, ErrNotInTable)
		case d == Undecided:
			return fmt.Errorf("release tx %d: still undecided", tx)
		case done:
			return nil
		}
		if atomic.CompareAndSwapUint64(p, w, pack(tag, d, true, r)) {
			return nil
		}
	}
}

// Slot describes one in-flight transaction of the table.
type Slot struct {
	Tx       TxID
	Decision Decision
	Reason   Reason
	// Err is ErrCorruptSlot when the word is invalid; Tx and Decision are
	// then meaningless.
	Err error
}

// InFlight yields every slot that holds a transaction not yet released, in
// slot order: UNDECIDED ones (PREPARE phase) and decided ones whose
// participants have not all acknowledged. A circuit breaker aborts the
// former and lets the latter complete. The view is a snapshot per slot, not
// of the whole table.
func (t *DecisionTable) InFlight() iter.Seq[Slot] {
	return func(yield func(Slot) bool) {
		for i := range t.slots {
			w := atomic.LoadUint64(&t.slots[i])
			if w == 0 {
				continue
			}
			tag, d, done, r, err := unpack(w)
			if err == nil && tag>>(64-t.shift) != 0 {
				err = ErrCorruptSlot // the tx id would overflow
			}
			if err != nil {
				if !yield(Slot{Err: fmt.Errorf("slot %d = %#x: %w", i, w, err)}) {
					return
				}
				continue
			}
			if done {
				continue
			}
			if !yield(Slot{Tx: TxID(tag<<t.shift | uint64(i)), Decision: d, Reason: r}) {
				return
			}
		}
	}
}
