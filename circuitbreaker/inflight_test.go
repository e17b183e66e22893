package circuitbreaker

import (
	"math/rand/v2"
	"testing"

	"github.com/commitcore/commitcore/engine"
)

// checkTracker compares t with the model and checks the index's invariants:
// every item is found at a slot naming it, and no other slot is used.
func checkTracker(tb testing.TB, t *tracker, model map[engine.TxID]uint32) {
	tb.Helper()
	if t.len() != len(model) {
		tb.Fatalf("tracker holds %d, model %d", t.len(), len(model))
	}
	used := 0
	for _, p := range t.index {
		if p != emptySlot {
			used++
		}
	}
	if used != len(model) {
		tb.Fatalf("index uses %d slots for %d items", used, len(model))
	}
	for tx, sym := range model {
		i := t.find(tx)
		if i < 0 {
			tb.Fatalf("tx %d tracked but not found", tx)
		}
		if it := t.items[t.index[i]]; it.tx != tx || it.sym != sym {
			tb.Fatalf("tx %d found as %+v", tx, it)
		}
	}
}

// runTrackerOps applies ops (two bytes each: operation and id) to a tracker
// of capacity cap and to a map model.
func runTrackerOps(tb testing.TB, capacity int, ops []byte) {
	tb.Helper()
	t := newTracker(capacity)
	model := map[engine.TxID]uint32{}
	for i := 0; i+1 < len(ops); i += 2 {
		tx := engine.TxID(ops[i+1])
		if ops[i]&3 == 0 {
			_, in := model[tx]
			if got, want := t.remove(tx), in; got != want {
				tb.Fatalf("remove(%d) = %v, want %v", tx, got, want)
			}
			delete(model, tx)
		} else if _, in := model[tx]; !in {
			sym := uint32(ops[i] >> 2)
			if got, want := t.add(tx, sym), len(model) < capacity; got != want {
				tb.Fatalf("add(%d) = %v with %d of %d tracked", tx, got, len(model), capacity)
			} else if got {
				model[tx] = sym
			}
		}
		checkTracker(tb, &t, model)
	}
	t.clear()
	checkTracker(tb, &t, map[engine.TxID]uint32{})
}

func TestTrackerModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, capacity := range []int{1, 2, 3, 8, 64} {
		ops := make([]byte, 20_000)
		for i := range ops {
			ops[i] = byte(rng.UintN(256))
			if i%2 == 1 {
				ops[i] %= byte(3*capacity + 2) // ids collide and the tracker fills up
			}
		}
		runTrackerOps(t, capacity, ops)
	}
}

func TestTrackerPanicsOnDuplicate(t *testing.T) {
	tr := newTracker(4)
	tr.add(5, 1)
	check.Panics(t, func() { tr.add(5, 2) })
}

func FuzzTracker(f *testing.F) {
	f.Add(uint8(4), []byte{1, 1, 1, 2, 0, 1, 1, 3, 0, 2, 0, 3})
	f.Add(uint8(1), []byte{1, 0, 1, 1, 0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, capacity uint8, ops []byte) {
		runTrackerOps(t, int(capacity%32)+1, ops)
	})
}
