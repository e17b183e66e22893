package circuitbreaker

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// ErrNoState is returned by StateStore.Load when no state was ever
// published.
var ErrNoState = errors.New("circuitbreaker: no state published")

// storeHeader is the generation word's cache line.
const storeHeader = 64

// storeTries bounds how often Load copies the slots again because a
// writer published meanwhile.
const storeTries = 4

// StateStore keeps a Breaker's latest State in memory that outlives the
// process writing it, typically a shared-memory region, so that a successor
// (a standby coordinator taking over from a killed one) finds the halts in
// force. The memory holds a generation word and two slots of StateSize
// bytes: Publish writes the slot the generation does not point at, then
// advances the generation, so a writer killed at any instant leaves the
// previous state whole. Load trusts nothing in the memory: it decodes both
// slots and takes the newest (greatest State.At) whose checksum and fields
// hold.
//
// One process publishes at a time, with States on one clock (one both
// processes share) and non-decreasing At. A StateStore is not safe for
// concurrent use; the memory may be read by other processes meanwhile.
type StateStore struct {
	gen     *uint64
	slots   [2][]byte
	symbols int
	buf     []byte // encoding scratch, one slot long
	copies  [2][]byte
	// keep is the slot Load took although the generation does not point
	// at it (its writer died before publishing), or -1. Publish first
	// publishes it, so its next write never overwrites the one state a
	// successor has.
	keep int
	last int64 // At of the newest state published or loaded
}

// StateStoreSize returns the memory a StateStore for symbols symbols needs.
func StateStoreSize(symbols int) int { return storeHeader + 2*slotLen(symbols) }

// slotLen is StateSize rounded up to a cache line.
func slotLen(symbols int) int { return (StateSize(symbols) + 63) &^ 63 }

// NewStateStore returns a StateStore over mem, which must be 8-byte aligned
// and at least StateStoreSize(symbols) long. Memory that is all zeros holds
// no state; NewStateStore writes nothing, so a successor attaches to what
// its predecessor left.
func NewStateStore(mem []byte, symbols int) (*StateStore, error) {
	if symbols < 0 || symbols > maxSymbols {
		return nil, fmt.Errorf("state store: %d symbols, want 0 to %d", symbols, maxSymbols)
	}
	size, n := StateStoreSize(symbols), StateSize(symbols)
	if len(mem) < size {
		return nil, fmt.Errorf("state store: %d bytes of memory, want %d for %d symbols", len(mem), size, symbols)
	}
	if uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return nil, errors.New("state store: memory is not 8-byte aligned")
	}
	sl := slotLen(symbols)
	return &StateStore{
		gen:     (*uint64)(unsafe.Pointer(&mem[0])),
		slots:   [2][]byte{mem[storeHeader : storeHeader+n], mem[storeHeader+sl : storeHeader+sl+n]},
		symbols: symbols,
		buf:     make([]byte, 0, n),
		copies:  [2][]byte{make([]byte, n), make([]byte, n)},
		keep:    -1,
	}, nil
}

// Publish stores s as the newest state. s must have the store's symbol
// count, and be taken no earlier than the last state published or loaded:
// Load takes the newest by State.At.
func (st *StateStore) Publish(s *State) error {
	if len(s.Symbols) != st.symbols {
		return fmt.Errorf("publish state: %w: %d symbols, the store holds %d", ErrStateMismatch, len(s.Symbols), st.symbols)
	}
	if s.At < st.last {
		return fmt.Errorf("publish state: taken at %d, before the last state published or loaded (%d): Load takes the newest, so publish in time order", s.At, st.last)
	}
	b, err := s.AppendBinary(st.buf[:0])
	if err != nil {
		return fmt.Errorf("publish state: %w", err)
	}
	g := atomic.LoadUint64(st.gen)
	if st.keep == int((g+1)&1) {
		g++
		atomic.StoreUint64(st.gen, g)
	}
	st.keep = -1
	copy(st.slots[(g+1)&1], b)
	atomic.StoreUint64(st.gen, g+1)
	st.last = s.At
	return nil
}

// Load returns the newest state whose encoding holds: the published slot's,
// or the other slot's when its writer finished the copy and died before
// publishing it (the next Publish then publishes that slot first, so its
// own write cannot destroy the state this Load found). It returns
// ErrNoState when nothing was ever published (a first write cut short
// included), and an error wrapping each slot's *StateError when neither
// slot of a published store decodes.
func (st *StateStore) Load() (State, error) {
	var g uint64
	for range storeTries {
		g = atomic.LoadUint64(st.gen)
		copy(st.copies[0], st.slots[0])
		copy(st.copies[1], st.slots[1])
		if atomic.LoadUint64(st.gen) == g {
			break
		}
	}
	var s [2]State
	var errs [2]error
	for i := range s {
		errs[i] = s[i].UnmarshalBinary(st.copies[i])
	}
	pub := int(g & 1)
	took := pub
	switch {
	case errs[0] != nil && errs[1] != nil:
		if g == 0 {
			// Nothing was published; a first write may have been
			// cut short.
			return State{}, ErrNoState
		}
		return State{}, fmt.Errorf("load state (generation %d): no slot holds a valid state: slot 0: %w; slot 1: %w", g, errs[0], errs[1])
	case errs[pub] != nil, s[1-pub].At > s[pub].At && errs[1-pub] == nil:
		// A write that finished but was not published: its writer
		// died between the two steps.
		took = 1 - pub
	}
	st.keep = -1
	if took != pub {
		st.keep = took
	}
	st.last = max(st.last, s[took].At)
	return s[took], nil
}
