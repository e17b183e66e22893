package matching

import (
	"bytes"
	"errors"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

const sym = 1

func newTest(t *testing.T, stp STPMode) *Matcher {
	t.Helper()
	m, err := New(Config{STP: stp, Symbols: []SymbolConfig{{ID: sym, Name: "SYM0", Tick: 5, MinPrice: 100, MaxPrice: 1000}}, Orders: 64})
	require.NoError(t, err)
	return m
}

// resting describes an order placed before a case runs.
type resting struct {
	id      uint64
	account uint32
	side    engine.Side
	price   int64
	qty     int64
}

func place(t *testing.T, m *Matcher, orders ...resting) {
	t.Helper()
	var out engine.Outcome
	for _, o := range orders {
		c := engine.Command{Kind: engine.NewOrder, Type: engine.Limit, Symbol: sym, Side: o.side, Account: o.account, OrderID: o.id, Price: o.price, Qty: o.qty}
		require.Equal(t, engine.ReasonNone, m.Execute(engine.TxID(o.id), &c, &out))
		require.Equal(t, o.qty, out.Resting, "order %d must rest", o.id)
	}
}

func snapshot(t *testing.T, m *Matcher) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, m.Snapshot(&b))
	return b.Bytes()
}

// fill is a compact expected fill: maker order, price, quantity.
type fill struct {
	maker      uint64
	price, qty int64
}

func fills(out *engine.Outcome) []fill {
	var f []fill
	for _, x := range out.FillSlice() {
		f = append(f, fill{x.MakerOrder, x.Price, x.Qty})
	}
	return f
}

func newOrder(id uint64, account uint32, side engine.Side, typ engine.OrderType, price, qty int64) engine.Command {
	return engine.Command{Kind: engine.NewOrder, Symbol: sym, Side: side, Type: typ, Account: account, OrderID: id, Price: price, Qty: qty}
}

// queue returns the order ids at one price level, front first.
func queue(m *Matcher, side engine.Side, price int64) []uint64 {
	b := &m.books[0]
	var ids []uint64
	for s := b.side(side).levels[b.levelOf(price)].head; s >= 0; s = m.orders[s].next {
		ids = append(ids, m.orders[s].id)
	}
	return ids
}

var asks = []resting{
	{10, 2, engine.Sell, 110, 5},
	{11, 3, engine.Sell, 110, 5},
	{12, 2, engine.Sell, 115, 10},
	{13, 4, engine.Buy, 100, 10},
}

func TestOrderTypes(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		cmd                       engine.Command
		fills                     []fill
		resting, restAt, canceled int64
	}{
		{"limit fills inside one level", newOrder(50, 1, engine.Buy, engine.Limit, 110, 7), []fill{{10, 110, 5}, {11, 110, 2}}, 0, 0, 0},
		{"limit rests its remainder", newOrder(50, 1, engine.Buy, engine.Limit, 110, 15), []fill{{10, 110, 5}, {11, 110, 5}}, 5, 110, 0},
		{"limit trades at the maker's price", newOrder(50, 1, engine.Buy, engine.Limit, 120, 12), []fill{{10, 110, 5}, {11, 110, 5}, {12, 115, 2}}, 0, 0, 0},
		{"limit below the ask rests", newOrder(50, 1, engine.Buy, engine.Limit, 105, 3), nil, 3, 105, 0},
		{"sell limit sweeps the bid", newOrder(50, 1, engine.Sell, engine.Limit, 100, 12), []fill{{13, 100, 10}}, 2, 100, 0},
		{"ioc cancels its remainder", newOrder(50, 1, engine.Buy, engine.IOC, 110, 15), []fill{{10, 110, 5}, {11, 110, 5}}, 0, 0, 5},
		{"ioc with nothing to take", newOrder(50, 1, engine.Buy, engine.IOC, 105, 15), nil, 0, 0, 15},
		{"fok fills completely", newOrder(50, 1, engine.Buy, engine.FOK, 115, 15), []fill{{10, 110, 5}, {11, 110, 5}, {12, 115, 5}}, 0, 0, 0},
		{"market stops at its protection price", newOrder(50, 1, engine.Buy, engine.Market, 110, 30), []fill{{10, 110, 5}, {11, 110, 5}}, 0, 0, 20},
		{"market sweeps to its protection price", newOrder(50, 1, engine.Buy, engine.Market, 115, 30), []fill{{10, 110, 5}, {11, 110, 5}, {12, 115, 10}}, 0, 0, 10},
		{"market sell", newOrder(50, 1, engine.Sell, engine.Market, 100, 4), []fill{{13, 100, 4}}, 0, 0, 0},
		{"cancel", engine.Command{Kind: engine.Cancel, Symbol: sym, Account: 3, OrderID: 11}, nil, 0, 0, 5},
		{"replace crossing trades as taker", engine.Command{Kind: engine.Replace, Symbol: sym, Account: 4, OrderID: 13, Price: 110, Qty: 12}, []fill{{10, 110, 5}, {11, 110, 5}}, 2, 110, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTest(t, CancelResting)
			place(t, m, asks...)
			var out engine.Outcome
			require.Equal(t, engine.ReasonNone, m.Prepare(99, &tc.cmd, &out))
			m.Commit(99, &out)
			require.Equal(t, tc.fills, fills(&out))
			require.Equal(t, tc.resting, out.Resting, "resting")
			require.Equal(t, tc.canceled, out.Canceled, "canceled")
			if tc.resting > 0 {
				require.Equal(t, tc.restAt, out.RestingPrice)
				o, ok := m.Order(tc.cmd.OrderID)
				require.True(t, ok)
				require.Equal(t, tc.resting, o.Open)
			}
			for i, f := range out.FillSlice() {
				require.Equal(t, engine.TradeIDOf(99, i), f.TradeID)
				require.Equal(t, tc.cmd.OrderID, f.TakerOrder)
			}
			checkInvariants(t, m)
		})
	}
}

func TestRejections(t *testing.T) {
	cancel := func(id uint64, account uint32) engine.Command {
		return engine.Command{Kind: engine.Cancel, Symbol: sym, Account: account, OrderID: id}
	}
	replace := func(id uint64, account uint32, price, qty int64) engine.Command {
		return engine.Command{Kind: engine.Replace, Symbol: sym, Account: account, OrderID: id, Price: price, Qty: qty}
	}
	unknownSym := newOrder(50, 1, engine.Buy, engine.Limit, 110, 1)
	unknownSym.Symbol = 2
	for _, tc := range []struct {
		name string
		cmd  engine.Command
		want engine.Reason
	}{
		{"unknown symbol", unknownSym, engine.ReasonUnknownSymbol},
		{"unknown kind", engine.Command{Kind: 9, Symbol: sym}, engine.ReasonMalformed},
		{"bad side", newOrder(50, 1, 3, engine.Limit, 110, 1), engine.ReasonMalformed},
		{"bad type", newOrder(50, 1, engine.Buy, 0, 110, 1), engine.ReasonMalformed},
		{"order id zero", newOrder(0, 1, engine.Buy, engine.Limit, 110, 1), engine.ReasonMalformed},
		{"order id live", newOrder(12, 1, engine.Buy, engine.Limit, 110, 1), engine.ReasonMalformed},
		{"zero quantity", newOrder(50, 1, engine.Buy, engine.Limit, 110, 0), engine.ReasonBadQuantity},
		{"negative quantity", newOrder(50, 1, engine.Buy, engine.IOC, 110, -3), engine.ReasonBadQuantity},
		{"zero price", newOrder(50, 1, engine.Buy, engine.Limit, 0, 1), engine.ReasonBadPrice},
		{"negative price", newOrder(50, 1, engine.Buy, engine.Limit, -5, 1), engine.ReasonBadPrice},
		{"below range", newOrder(50, 1, engine.Buy, engine.Limit, 95, 1), engine.ReasonBadPrice},
		{"above range", newOrder(50, 1, engine.Sell, engine.Limit, 1005, 1), engine.ReasonBadPrice},
		{"market protection out of range", newOrder(50, 1, engine.Buy, engine.Market, 1005, 1), engine.ReasonBadPrice},
		{"off tick", newOrder(50, 1, engine.Buy, engine.Limit, 111, 1), engine.ReasonOffTick},
		{"notional overflow", newOrder(50, 1, engine.Buy, engine.Limit, 1000, 1<<62), engine.ReasonOverflow},
		{"fok unfilled", newOrder(50, 1, engine.Buy, engine.FOK, 110, 11), engine.ReasonFOKUnfilled},
		{"cancel unknown order", cancel(77, 2), engine.ReasonUnknownOrder},
		{"cancel another account's order", cancel(10, 3), engine.ReasonNotOwner},
		{"cancel on another symbol", engine.Command{Kind: engine.Cancel, Symbol: 2, Account: 2, OrderID: 10}, engine.ReasonUnknownSymbol},
		{"replace unknown order", replace(77, 2, 110, 1), engine.ReasonUnknownOrder},
		{"replace another account's order", replace(10, 4, 110, 1), engine.ReasonNotOwner},
		{"replace to zero quantity", replace(10, 2, 110, 0), engine.ReasonBadQuantity},
		{"replace off tick", replace(10, 2, 112, 5), engine.ReasonOffTick},
		{"replace out of range", replace(10, 2, 2000, 5), engine.ReasonBadPrice},
		{"replace overflow", replace(10, 2, 1000, 1<<62), engine.ReasonOverflow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTest(t, CancelResting)
			place(t, m, asks...)
			before := snapshot(t, m)
			var out engine.Outcome
			out.NFills = 3
			require.Equal(t, tc.want, m.Prepare(99, &tc.cmd, &out))
			require.Zero(t, out.NFills+out.NRemoved)
			require.Zero(t, m.InFlight())
			m.Abort(99)
			require.Equal(t, before, snapshot(t, m), "a rejection changed the book")
			require.Equal(t, tc.want, m.Execute(99, &tc.cmd, &out))
			require.Equal(t, before, snapshot(t, m), "a rejection changed the book")
		})
	}
}

func TestReplacePriority(t *testing.T) {
	bids := []resting{{1, 1, engine.Buy, 100, 10}, {2, 2, engine.Buy, 100, 10}, {3, 3, engine.Buy, 100, 10}}
	for _, tc := range []struct {
		name  string
		price int64
		qty   int64
		at100 []uint64
	}{
		{"quantity decrease keeps priority", 100, 4, []uint64{1, 2, 3}},
		{"same quantity keeps priority", 100, 10, []uint64{1, 2, 3}},
		{"quantity increase loses priority", 100, 11, []uint64{2, 3, 1}},
		{"price change moves the order", 105, 10, []uint64{2, 3}},
		{"price change and back loses priority", 95 + 5, 12, []uint64{2, 3, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTest(t, CancelResting)
			place(t, m, bids...)
			var out engine.Outcome
			c := engine.Command{Kind: engine.Replace, Symbol: sym, Account: 1, OrderID: 1, Price: tc.price, Qty: tc.qty}
			require.Equal(t, engine.ReasonNone, m.Execute(9, &c, &out))
			require.Equal(t, tc.qty, out.Resting)
			require.Equal(t, tc.price, out.RestingPrice)
			require.Equal(t, tc.at100, queue(m, engine.Buy, 100))
			o, ok := m.Order(1)
			require.True(t, ok)
			require.Equal(t, OrderInfo{ID: 1, Symbol: sym, Account: 1, Side: engine.Buy, Price: tc.price, Open: tc.qty}, o)
			checkInvariants(t, m)
		})
	}
}

func TestSelfTradePrevention(t *testing.T) {
	book := []resting{{10, 1, engine.Sell, 110, 5}, {11, 2, engine.Sell, 110, 5}, {12, 1, engine.Sell, 115, 5}}
	for _, tc := range []struct {
		name     string
		stp      STPMode
		cmd      engine.Command
		want     engine.Reason
		fills    []fill
		removed  []uint64
		resting  int64
		canceled int64
	}{
		{"resting: own order removed, trading goes on", CancelResting, newOrder(50, 1, engine.Buy, engine.Limit, 115, 8), engine.ReasonNone, []fill{{11, 110, 5}}, []uint64{10, 12}, 3, 0},
		{"resting: removal without a trade", CancelResting, newOrder(50, 1, engine.Buy, engine.IOC, 110, 0+1), engine.ReasonNone, []fill{{11, 110, 1}}, []uint64{10}, 0, 0},
		{"incoming: rejected before any trade", CancelIncoming, newOrder(50, 1, engine.Buy, engine.Limit, 115, 8), engine.ReasonSelfTrade, nil, nil, 0, 0},
		{"incoming: fok rejected", CancelIncoming, newOrder(50, 2, engine.Buy, engine.FOK, 115, 8), engine.ReasonSelfTrade, nil, nil, 0, 0},
		{"incoming: remainder cancelled after a trade", CancelIncoming, newOrder(50, 2, engine.Buy, engine.Limit, 115, 8), engine.ReasonNone, []fill{{10, 110, 5}}, nil, 0, 3},
		{"other accounts trade normally", CancelIncoming, newOrder(50, 3, engine.Buy, engine.Limit, 115, 8), engine.ReasonNone, []fill{{10, 110, 5}, {11, 110, 3}}, nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTest(t, tc.stp)
			place(t, m, book...)
			before := snapshot(t, m)
			var out engine.Outcome
			require.Equal(t, tc.want, m.Execute(99, &tc.cmd, &out))
			if tc.want != engine.ReasonNone {
				require.Equal(t, before, snapshot(t, m))
				return
			}
			require.Equal(t, tc.fills, fills(&out))
			var removed []uint64
			for _, r := range out.RemovedSlice() {
				removed = append(removed, r.OrderID)
				_, live := m.Order(r.OrderID)
				require.False(t, live)
			}
			require.Equal(t, tc.removed, removed)
			require.Equal(t, tc.resting, out.Resting)
			require.Equal(t, tc.canceled, out.Canceled)
			checkInvariants(t, m)
		})
	}
}

func TestBounds(t *testing.T) {
	many := func(n int, account func(i int) uint32) []resting {
		var r []resting
		for i := range n {
			r = append(r, resting{uint64(100 + i), account(i), engine.Sell, 110 + 5*int64(i%3), 1})
		}
		return r
	}
	other := func(int) uint32 { return 2 }
	for _, tc := range []struct {
		name     string
		book     []resting
		cmd      engine.Command
		want     engine.Reason
		nFills   int
		resting  int64
		canceled int64
	}{
		{"limit stops at MaxFills and cancels the rest", many(20, other), newOrder(50, 1, engine.Buy, engine.Limit, 120, 25), engine.ReasonNone, engine.MaxFills, 0, 25 - engine.MaxFills},
		{"limit that empties the crossing side at MaxFills rests", many(engine.MaxFills, other), newOrder(50, 1, engine.Buy, engine.Limit, 120, 20), engine.ReasonNone, engine.MaxFills, 20 - engine.MaxFills, 0},
		{"ioc stops at MaxFills", many(20, other), newOrder(50, 1, engine.Buy, engine.IOC, 120, 25), engine.ReasonNone, engine.MaxFills, 0, 25 - engine.MaxFills},
		{"fok needing more than MaxFills is rejected", many(20, other), newOrder(50, 1, engine.Buy, engine.FOK, 120, 17), engine.ReasonFOKUnfilled, 0, 0, 0},
		{"fok within MaxFills fills", many(20, other), newOrder(50, 1, engine.Buy, engine.FOK, 120, 16), engine.ReasonNone, engine.MaxFills, 0, 0},
		{"MaxRemoved stops the order", many(10, func(i int) uint32 { return uint32(1 + i%2) }), newOrder(50, 1, engine.Buy, engine.Limit, 120, 8), engine.ReasonNone, 5, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTest(t, CancelResting)
			place(t, m, tc.book...)
			var out engine.Outcome
			require.Equal(t, tc.want, m.Execute(99, &tc.cmd, &out))
			require.Equal(t, tc.nFills, out.NFills)
			require.Equal(t, tc.resting, out.Resting)
			require.Equal(t, tc.canceled, out.Canceled)
			checkInvariants(t, m)
		})
	}
}

// TestAbortRestores prepares each kind of command and aborts it: the
// snapshot, and so every queue position, must be byte-identical.
func TestAbortRestores(t *testing.T) {
	book := append([]resting{{14, 5, engine.Sell, 110, 5}}, asks...)
	for _, cmd := range []engine.Command{
		newOrder(50, 1, engine.Buy, engine.Limit, 115, 12),
		newOrder(50, 1, engine.Buy, engine.Limit, 105, 12),
		newOrder(50, 2, engine.Buy, engine.IOC, 115, 30),
		newOrder(50, 1, engine.Sell, engine.Market, 100, 3),
		{Kind: engine.Cancel, Symbol: sym, Account: 2, OrderID: 10},
		{Kind: engine.Replace, Symbol: sym, Account: 2, OrderID: 10, Price: 110, Qty: 2},
		{Kind: engine.Replace, Symbol: sym, Account: 2, OrderID: 10, Price: 120, Qty: 2},
		{Kind: engine.Replace, Symbol: sym, Account: 4, OrderID: 13, Price: 115, Qty: 20},
	} {
		m := newTest(t, CancelResting)
		place(t, m, book...)
		before := snapshot(t, m)
		var out engine.Outcome
		require.Equal(t, engine.ReasonNone, m.Prepare(99, &cmd, &out), "%+v", cmd)
		require.Equal(t, 1, m.InFlight())
		err := m.Snapshot(&bytes.Buffer{})
		require.True(t, errors.Is(err, ErrInFlight), "%v", err)
		checkInvariants(t, m)
		m.Abort(99)
		m.Abort(99) // idempotent
		require.Zero(t, m.InFlight())
		require.Equal(t, before, snapshot(t, m), "abort of %+v", cmd)
		checkInvariants(t, m)
	}
}

// TestPipelinedHolds checks that a transaction in flight keeps what it
// took from the next ones, in every order of commit and abort.
func TestPipelinedHolds(t *testing.T) {
	var trades []Trade
	m, err := New(Config{Symbols: []SymbolConfig{{ID: sym, Tick: 5, MinPrice: 100, MaxPrice: 1000}},
		OnTrade: func(tr Trade) { trades = append(trades, tr) }})
	require.NoError(t, err)
	place(t, m, resting{10, 2, engine.Sell, 110, 5}, resting{11, 3, engine.Sell, 110, 5})

	var o1, o2, o3, o4 engine.Outcome
	c1 := newOrder(51, 1, engine.Buy, engine.IOC, 110, 3)
	require.Equal(t, engine.ReasonNone, m.Prepare(51, &c1, &o1))
	require.Equal(t, []fill{{10, 110, 3}}, fills(&o1))
	// The free part of order 10 can still be taken...
	c2 := newOrder(52, 4, engine.Buy, engine.IOC, 110, 2)
	require.Equal(t, engine.ReasonNone, m.Prepare(52, &c2, &o2))
	require.Equal(t, []fill{{10, 110, 2}}, fills(&o2))
	// ...but nothing past the held quantity,
	c3 := newOrder(53, 4, engine.Buy, engine.IOC, 110, 1)
	require.Equal(t, engine.ReasonBackpressure, m.Prepare(53, &c3, &o3))
	// nor the held order itself.
	c4 := engine.Command{Kind: engine.Cancel, Symbol: sym, Account: 2, OrderID: 10}
	require.Equal(t, engine.ReasonBackpressure, m.Prepare(54, &c4, &o4))
	// A resting order in flight is on the book for priority, not for trading.
	c5 := newOrder(55, 6, engine.Sell, engine.Limit, 110, 4)
	var o5 engine.Outcome
	require.Equal(t, engine.ReasonNone, m.Prepare(55, &c5, &o5))
	require.Equal(t, []uint64{10, 11, 55}, queue(m, engine.Sell, 110))
	ask := [2]Level{}
	require.Equal(t, 1, m.Depth(sym, engine.Sell, ask[:]))
	require.Equal(t, Level{Price: 110, Qty: 10, Orders: 2}, ask[0])
	require.Equal(t, 3, m.InFlight())
	require.Empty(t, trades, "nothing trades before commit")

	m.Commit(52, &o2)
	require.Equal(t, []Trade{{ID: engine.TradeIDOf(52, 0), Symbol: sym, Price: 110, Qty: 2, Aggressor: engine.Buy, BuyOrder: 52, SellOrder: 10}}, trades)
	m.Abort(51)
	m.Commit(55, &o5)
	require.Zero(t, m.InFlight())
	require.Equal(t, []uint64{10, 11, 55}, queue(m, engine.Sell, 110), "the abort kept order 10 first")
	o, _ := m.Order(10)
	require.Equal(t, int64(3), o.Open)
	bid, best, ok := m.BBO(sym)
	require.True(t, ok)
	require.Equal(t, Level{}, bid)
	require.Equal(t, Level{Price: 110, Qty: 12, Orders: 3}, best)
	checkInvariants(t, m)

	// A sell taker is reported with the resting buyer.
	place(t, m, resting{60, 7, engine.Buy, 105, 1})
	c6 := newOrder(61, 8, engine.Sell, engine.IOC, 105, 1)
	require.Equal(t, engine.ReasonNone, m.Execute(61, &c6, &o1))
	require.Equal(t, Trade{ID: engine.TradeIDOf(61, 0), Symbol: sym, Price: 105, Qty: 1, Aggressor: engine.Sell, BuyOrder: 60, SellOrder: 61}, trades[len(trades)-1])
}

func TestSnapshotRestore(t *testing.T) {
	m := newTest(t, CancelResting)
	place(t, m, asks...)
	place(t, m, resting{20, 1, engine.Buy, 105, 7}, resting{21, 1, engine.Buy, 100, 3})
	snap := snapshot(t, m)

	r := newTest(t, CancelResting)
	require.NoError(t, r.Restore(bytes.NewReader(snap)))
	require.Equal(t, snap, snapshot(t, r))
	checkInvariants(t, r)
	require.Equal(t, []uint64{13, 21}, queue(r, engine.Buy, 100))

	corrupt := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), snap...)) }
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", corrupt(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"truncated", snap[:len(snap)-3]},
		{"trailing bytes", append(append([]byte(nil), snap...), 0)},
		{"wrong symbol", corrupt(func(b []byte) []byte { b[12] = 9; return b })},
		{"huge order count", corrupt(func(b []byte) []byte { b[40], b[41], b[42] = 0xff, 0xff, 0xff; return b })},
		{"zero quantity", corrupt(func(b []byte) []byte { clear(b[40+4+20 : 40+4+28]); return b })},
		{"duplicate id", corrupt(func(b []byte) []byte { copy(b[40+4+28:], b[40+4:40+12]); return b })},
		{"out of priority order", corrupt(func(b []byte) []byte { b[40+4+12] = 95; return b })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.True(t, errors.Is(r.Restore(bytes.NewReader(tc.data)), ErrSnapshot))
			require.Equal(t, snap, snapshot(t, r), "a failed restore changed the book")
		})
	}
}

func TestConfigErrors(t *testing.T) {
	ok := SymbolConfig{ID: 1, Tick: 5, MinPrice: 100, MaxPrice: 1000}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no symbols", Config{}},
		{"duplicate symbol", Config{Symbols: []SymbolConfig{ok, ok}}},
		{"zero tick", Config{Symbols: []SymbolConfig{{ID: 1, MinPrice: 100, MaxPrice: 1000}}}},
		{"empty range", Config{Symbols: []SymbolConfig{{ID: 1, Tick: 5, MinPrice: 100, MaxPrice: 95}}}},
		{"off-grid range", Config{Symbols: []SymbolConfig{{ID: 1, Tick: 5, MinPrice: 101, MaxPrice: 1000}}}},
		{"too many levels", Config{Symbols: []SymbolConfig{{ID: 1, Tick: 1, MinPrice: 1, MaxPrice: MaxLevels + 1}}}},
		{"bad stp", Config{Symbols: []SymbolConfig{ok}, STP: 7}},
		{"negative pool", Config{Symbols: []SymbolConfig{ok}, Orders: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.True(t, errors.Is(err, ErrConfig), "%v", err)
		})
	}
}
