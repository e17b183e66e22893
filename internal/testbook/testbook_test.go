package testbook

import (
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/matching"
	"github.com/stretchr/testify/require"
)

func limit(tx engine.TxID, acct uint32, side engine.Side, price, qty int64) *engine.Command {
	return &engine.Command{Kind: engine.NewOrder, Type: engine.Limit, Side: side, Symbol: 1, Account: acct, OrderID: uint64(tx), Price: price, Qty: qty}
}

func TestBookTracksTransactionsAndOrders(t *testing.T) {
	b, err := New(2, matching.CancelResting)
	require.NoError(t, err)
	require.Equal(t, engine.ReasonNone, b.Prepare(1, limit(1, 7, engine.Sell, 100, 10)))
	require.Equal(t, engine.ReasonNone, b.Prepare(2, limit(2, 8, engine.Sell, 101, 5)))
	require.Empty(t, b.Orders(), "orders rest once committed")
	require.Equal(t, []engine.TxID{1, 2}, b.InFlight())
	b.Commit(2)
	b.Commit(1)
	require.Equal(t, []uint64{1, 2}, []uint64{b.Orders()[0].ID, b.Orders()[1].ID})

	// A buy takes 2 lots of order 1; a pipelined buy may take its free
	// part, but a cancel of it must wait for the first to end.
	require.Equal(t, engine.ReasonNone, b.Prepare(3, limit(3, 9, engine.Buy, 100, 2)))
	tx := b.Tx(3)
	require.Equal(t, 1, tx.Out.NFills)
	require.Equal(t, int64(2), tx.Out.Fills[0].Qty)
	require.Equal(t, engine.ReasonNone, b.Prepare(4, limit(4, 9, engine.Buy, 100, 3)))
	require.Equal(t, int64(3), b.Tx(4).Out.Fills[0].Qty)
	cancel := &engine.Command{Kind: engine.Cancel, Symbol: 1, Account: 7, OrderID: 1}
	require.Equal(t, engine.ReasonBackpressure, b.Prepare(5, cancel))
	require.Nil(t, b.Tx(5))
	b.Abort(4)
	require.Equal(t, 1, b.Len())
	got := b.Commit(3)
	require.Equal(t, tx, got)
	require.Equal(t, []matching.OrderInfo{
		{ID: 1, Symbol: 1, Account: 7, Side: engine.Sell, Price: 100, Open: 8},
		{ID: 2, Symbol: 1, Account: 8, Side: engine.Sell, Price: 101, Open: 5},
	}, b.Orders())
	require.Equal(t, engine.ReasonNone, b.Prepare(6, cancel))
	b.Commit(6)
	require.Len(t, b.Orders(), 1, "a cancelled order is gone")
	require.Panics(t, func() { b.Commit(6) })
	require.Panics(t, func() { b.Abort(6) })
}
