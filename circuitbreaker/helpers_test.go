package circuitbreaker

import (
	"testing"

	"github.com/commitcore/commitcore/engine"
)

// fakeTable is a single-threaded decision table for the pure-logic tests;
// unknown transactions are UNDECIDED.
type fakeTable struct {
	slots   map[engine.TxID]engine.Decision
	reasons map[engine.TxID]engine.Reason
}

func newFakeTable() *fakeTable {
	return &fakeTable{slots: map[engine.TxID]engine.Decision{}, reasons: map[engine.TxID]engine.Reason{}}
}

func (t *fakeTable) Abort(tx engine.TxID, r engine.Reason) (engine.Decision, engine.Reason, error) {
	if t.slots[tx] == engine.Undecided {
		t.slots[tx], t.reasons[tx] = engine.Abort, r
	}
	return t.slots[tx], t.reasons[tx], nil
}

// commit is the coordinator's CAS: it wins only on an undecided slot.
func (t *fakeTable) commit(tx engine.TxID) bool {
	if t.slots[tx] != engine.Undecided {
		return false
	}
	t.slots[tx] = engine.Commit
	return true
}

func newOrder(sym uint32, price int64) *engine.Command {
	return &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit, Symbol: sym, Price: price, Qty: 1}
}

func outcome(sym uint32, prices ...int64) *engine.Outcome {
	var o engine.Outcome
	for i, p := range prices {
		o.Fills[i] = engine.Fill{Symbol: sym, Price: p, Qty: 1}
	}
	o.NFills = len(prices)
	return &o
}

// trade runs one whole committed transaction at price through b.
func trade(t *testing.T, b *Breaker, ft *fakeTable, tx engine.TxID, sym uint32, price, now int64) {
	t.Helper()
	r, _ := b.Begin(tx, newOrder(sym, price), now)
	must.Equal(t, engine.ReasonNone, r, "begin tx %d", tx)
	out := outcome(sym, price)
	must.Nil(t, b.CheckFills(tx, out, now), "tx %d at %d tripped", tx, price)
	must.True(t, ft.commit(tx))
	b.Committed(tx, out, now)
}
