package circuitbreaker

import (
	"fmt"
	"math/bits"

	"github.com/commitcore/commitcore/engine"
)

// tracked is one in-flight transaction and the symbol it trades.
type tracked struct {
	tx  engine.TxID
	sym uint32
}

// tracker is a fixed-capacity set of in-flight transactions: a dense array
// (iterated at a trip, swap-removed on delete) indexed by an open-addressed
// hash of the transaction id with linear probing and backward-shift
// deletion. It allocates only when built.
type tracker struct {
	items []tracked // len = number tracked, cap = capacity
	index []int32   // position in items, or empty; len is a power of two ≥ 2 × capacity
	shift uint      // 64 - log2(len(index))
}

const emptySlot int32 = -1

func newTracker(capacity int) tracker {
	n := 2 * capacity
	if n < 2 {
		n = 2
	}
	log := bits.Len(uint(n - 1))
	index := make([]int32, 1<<log)
	for i := range index {
		index[i] = emptySlot
	}
	return tracker{
		items: make([]tracked, 0, capacity),
		index: index,
		shift: uint(64 - log),
	}
}

// home is tx's preferred slot (Fibonacci hashing: consecutive ids spread).
func (t *tracker) home(tx engine.TxID) int {
	if t.shift == 64 {
		return 0
	}
	return int((uint64(tx) * 0x9E3779B97F4A7C15) >> t.shift)
}

// find returns tx's slot in index, or -1.
func (t *tracker) find(tx engine.TxID) int {
	mask := len(t.index) - 1
	for i := t.home(tx); ; i = (i + 1) & mask {
		p := t.index[i]
		if p == emptySlot {
			return -1
		}
		if t.items[p].tx == tx {
			return i
		}
	}
}

// add tracks tx for symbol sym. It returns false when the tracker is full.
// Tracking a transaction twice is a caller bug and panics: ids are never
// reused, so a second Begin for one id means two transactions were mixed up.
func (t *tracker) add(tx engine.TxID, sym uint32) bool {
	if t.find(tx) >= 0 {
		panic(fmt.Sprintf("circuitbreaker: transaction %d tracked twice", tx))
	}
	if len(t.items) == cap(t.items) {
		return false
	}
	mask := len(t.index) - 1
	i := t.home(tx)
	for t.index[i] != emptySlot {
		i = (i + 1) & mask
	}
	t.index[i] = int32(len(t.items))
	t.items = append(t.items, tracked{tx: tx, sym: sym})
	return true
}

// remove stops tracking tx and reports whether it was tracked.
func (t *tracker) remove(tx engine.TxID) bool {
	i := t.find(tx)
	if i < 0 {
		return false
	}
	p := t.index[i]
	last := int32(len(t.items) - 1)
	if p != last {
		moved := t.items[last]
		j := t.find(moved.tx) // before items[p] changes: slot i still names tx
		t.items[p] = moved
		t.index[j] = p
	}
	t.items = t.items[:last]
	t.deleteSlot(i)
	return true
}

// deleteSlot empties slot i and shifts later members of its probe run back
// so that every key stays reachable from its home without tombstones.
func (t *tracker) deleteSlot(i int) {
	mask := len(t.index) - 1
	for j := (i + 1) & mask; t.index[j] != emptySlot; j = (j + 1) & mask {
		h := t.home(t.items[t.index[j]].tx)
		// Move j to i unless h lies cyclically in (i, j].
		if (j > i && (h <= i || h > j)) || (j < i && h <= i && h > j) {
			t.index[i] = t.index[j]
			i = j
		}
	}
	t.index[i] = emptySlot
}

func (t *tracker) len() int { return len(t.items) }

func (t *tracker) clear() {
	t.items = t.items[:0]
	for i := range t.index {
		t.index[i] = emptySlot
	}
}
