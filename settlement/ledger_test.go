package settlement

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

// Test accounts: alice and bob trade, carol is the fee account.
const (
	alice uint32 = 0
	bob   uint32 = 1
	carol uint32 = 2
	sym   uint32 = 0
)

func testConfig() Config {
	return Config{
		Accounts:    3,
		Symbols:     2,
		Cash:        []int64{1_000_000, 1_000_000, 0},
		Holdings:    []int64{1000, 1000, 1000, 1000, 0, 0},
		FeeAccount:  carol,
		MaxOrders:   8,
		MaxInFlight: 8,
	}
}

func newTestLedger(t testing.TB, cfg Config) *Ledger {
	t.Helper()
	l, err := New(cfg)
	require.NoError(t, err)
	return l
}

func requireAudit(t testing.TB, l *Ledger) {
	t.Helper()
	a := l.Audit()
	require.NoError(t, a.Err())
}

func newOrder(tx engine.TxID, acct uint32, side engine.Side, typ engine.OrderType, price, qty int64) *engine.Command {
	return &engine.Command{Kind: engine.NewOrder, Side: side, Type: typ, Symbol: sym, Account: acct, OrderID: uint64(tx), Price: price, Qty: qty}
}

func cancelOf(acct uint32, id uint64) *engine.Command {
	return &engine.Command{Kind: engine.Cancel, Symbol: sym, Account: acct, OrderID: id}
}

func replaceOf(acct uint32, id uint64, price, qty int64) *engine.Command {
	return &engine.Command{Kind: engine.Replace, Symbol: sym, Account: acct, OrderID: id, Price: price, Qty: qty}
}

// addFill appends a fill of taker order tx (account taker, side ts) against
// maker order mo of account maker.
func addFill(out *engine.Outcome, tx engine.TxID, taker uint32, ts engine.Side, mo uint64, maker uint32, price, qty int64) {
	out.Fills[out.NFills] = engine.Fill{
		TradeID: engine.TradeIDOf(tx, out.NFills), Symbol: sym, TakerSide: ts,
		MakerOrder: mo, TakerOrder: uint64(tx), Maker: maker, Taker: taker, Price: price, Qty: qty,
	}
	out.NFills++
}

// place commits a limit order that rests whole and returns its id.
func place(t testing.TB, l *Ledger, tx engine.TxID, acct uint32, side engine.Side, price, qty int64) uint64 {
	t.Helper()
	require.Equal(t, engine.ReasonNone, l.Prepare(tx, newOrder(tx, acct, side, engine.Limit, price, qty), nil))
	l.Commit(tx, &engine.Outcome{Resting: qty, RestingPrice: price})
	return uint64(tx)
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := testConfig()
	for name, mod := range map[string]func(*Config){
		"no accounts":       func(c *Config) { c.Accounts = 0 },
		"no symbols":        func(c *Config) { c.Symbols = 0 },
		"cash length":       func(c *Config) { c.Cash = []int64{1} },
		"holdings length":   func(c *Config) { c.Holdings = []int64{1} },
		"negative cash":     func(c *Config) { c.Cash = []int64{-1, 0, 0} },
		"negative holding":  func(c *Config) { c.Holdings = []int64{0, -1, 0, 0, 0, 0} },
		"cash overflow":     func(c *Config) { c.Cash = []int64{math.MaxInt64, 1, 0} },
		"holding overflow":  func(c *Config) { c.Holdings = []int64{math.MaxInt64, 0, 1, 0, 0, 0} },
		"fee above 100 %":   func(c *Config) { c.TakerFeeBps = 10001 },
		"negative fee":      func(c *Config) { c.MakerFeeBps = -1 },
		"fee account":       func(c *Config) { c.FeeAccount = 3 },
		"negative capacity": func(c *Config) { c.MaxOrders = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			mod(&c)
			_, err := New(c)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
}

func TestPrepareRejections(t *testing.T) {
	full := testConfig()
	full.MaxOrders = 1
	tests := []struct {
		name  string
		cfg   *Config
		setup func(l *Ledger)
		cmd   *engine.Command
		want  engine.Reason
	}{
		{name: "unknown account", cmd: newOrder(10, 3, engine.Buy, engine.Limit, 100, 1), want: engine.ReasonUnknownAccount},
		{name: "unknown symbol", cmd: &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit, Symbol: 2, Account: alice, OrderID: 10, Price: 1, Qty: 1}, want: engine.ReasonUnknownSymbol},
		{name: "bad side", cmd: newOrder(10, alice, 0, engine.Limit, 100, 1), want: engine.ReasonMalformed},
		{name: "bad type", cmd: newOrder(10, alice, engine.Buy, 9, 100, 1), want: engine.ReasonMalformed},
		{name: "bad kind", cmd: &engine.Command{Kind: 7, Account: alice}, want: engine.ReasonMalformed},
		{name: "zero quantity", cmd: newOrder(10, alice, engine.Buy, engine.Limit, 100, 0), want: engine.ReasonBadQuantity},
		{name: "negative quantity", cmd: newOrder(10, alice, engine.Sell, engine.IOC, 100, -5), want: engine.ReasonBadQuantity},
		{name: "zero price", cmd: newOrder(10, alice, engine.Buy, engine.Limit, 0, 1), want: engine.ReasonBadPrice},
		{name: "notional overflow", cmd: newOrder(10, alice, engine.Buy, engine.Limit, math.MaxInt64/2, 3), want: engine.ReasonOverflow},
		{name: "insufficient cash", cmd: newOrder(10, alice, engine.Buy, engine.Limit, 1001, 1000), want: engine.ReasonInsufficientCash},
		{name: "insufficient cash for a market order's protection price", cmd: newOrder(10, alice, engine.Buy, engine.Market, 1_000_001, 1), want: engine.ReasonInsufficientCash},
		{name: "insufficient securities", cmd: newOrder(10, alice, engine.Sell, engine.Limit, 1, 1001), want: engine.ReasonInsufficientSecurities},
		{
			name:  "insufficient cash with another order resting",
			setup: func(l *Ledger) { place(t, l, 1, alice, engine.Buy, 1000, 600) },
			cmd:   newOrder(10, alice, engine.Buy, engine.Limit, 1000, 401), want: engine.ReasonInsufficientCash,
		},
		{
			name:  "insufficient securities with another sell in flight",
			setup: func(l *Ledger) { l.Prepare(1, newOrder(1, alice, engine.Sell, engine.IOC, 5, 999), nil) },
			cmd:   newOrder(10, alice, engine.Sell, engine.Limit, 5, 2), want: engine.ReasonInsufficientSecurities,
		},
		{
			name:  "duplicate order id",
			setup: func(l *Ledger) { place(t, l, 10, alice, engine.Buy, 1, 1) },
			cmd:   newOrder(10, alice, engine.Buy, engine.Limit, 1, 1), want: engine.ReasonMalformed,
		},
		{name: "cancel of an unknown order", cmd: cancelOf(alice, 99), want: engine.ReasonUnknownOrder},
		{
			name:  "cancel of an order placed but not committed",
			setup: func(l *Ledger) { l.Prepare(1, newOrder(1, alice, engine.Buy, engine.Limit, 1, 1), nil) },
			cmd:   cancelOf(alice, 1), want: engine.ReasonUnknownOrder,
		},
		{
			name:  "cancel of another account's order",
			setup: func(l *Ledger) { place(t, l, 1, bob, engine.Buy, 1, 1) },
			cmd:   cancelOf(alice, 1), want: engine.ReasonNotOwner,
		},
		{name: "replace of an unknown order", cmd: replaceOf(alice, 99, 1, 1), want: engine.ReasonUnknownOrder},
		{
			name:  "replace of another account's order",
			setup: func(l *Ledger) { place(t, l, 1, bob, engine.Buy, 1, 1) },
			cmd:   replaceOf(alice, 1, 1, 1), want: engine.ReasonNotOwner,
		},
		{
			name:  "replace to zero quantity",
			setup: func(l *Ledger) { place(t, l, 1, alice, engine.Buy, 1, 1) },
			cmd:   replaceOf(alice, 1, 1, 0), want: engine.ReasonBadQuantity,
		},
		{
			name:  "replace to a negative price",
			setup: func(l *Ledger) { place(t, l, 1, alice, engine.Buy, 1, 1) },
			cmd:   replaceOf(alice, 1, -1, 1), want: engine.ReasonBadPrice,
		},
		{
			name:  "replace that overflows",
			setup: func(l *Ledger) { place(t, l, 1, alice, engine.Buy, 1, 1) },
			cmd:   replaceOf(alice, 1, math.MaxInt64, 2), want: engine.ReasonOverflow,
		},
		{
			name:  "replace that needs more cash than is free",
			setup: func(l *Ledger) { place(t, l, 1, alice, engine.Buy, 1000, 500) },
			cmd:   replaceOf(alice, 1, 1000, 1001), want: engine.ReasonInsufficientCash,
		},
		{
			name:  "replace that needs more securities than are free",
			setup: func(l *Ledger) { place(t, l, 1, alice, engine.Sell, 10, 500) },
			cmd:   replaceOf(alice, 1, 10, 1001), want: engine.ReasonInsufficientSecurities,
		},
		{
			name:  "in-flight table full",
			setup: func(l *Ledger) { fillInFlight(t, l) },
			cmd:   newOrder(100, alice, engine.Buy, engine.IOC, 1, 1), want: engine.ReasonBackpressure,
		},
		{
			name:  "order table full",
			cfg:   &full,
			setup: func(l *Ledger) { l.Prepare(1, newOrder(1, alice, engine.Buy, engine.Limit, 1, 1), nil) },
			cmd:   newOrder(10, alice, engine.Buy, engine.Limit, 1, 1), want: engine.ReasonBackpressure,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			l := newTestLedger(t, cfg)
			if tt.setup != nil {
				tt.setup(l)
			}
			var before bytes.Buffer
			snapshotAll(l, &before)
			require.Equal(t, tt.want, l.Prepare(10, tt.cmd, nil))
			var after bytes.Buffer
			snapshotAll(l, &after)
			require.Equal(t, before.Bytes(), after.Bytes(), "a NO vote reserved something")
			requireAudit(t, l)
		})
	}
}

// fillInFlight prepares MaxInFlight small orders.
func fillInFlight(t testing.TB, l *Ledger) {
	for tx := engine.TxID(1); int(tx) <= l.maxFlight; tx++ {
		require.Equal(t, engine.ReasonNone, l.Prepare(tx, newOrder(tx, bob, engine.Buy, engine.IOC, 1, 1), nil))
	}
}

// snapshotAll writes the ledger's whole state, in-flight transactions
// included, for before/after comparisons.
func snapshotAll(l *Ledger, w *bytes.Buffer) {
	for a := range l.accounts {
		for s := range l.symbols {
			tot, res := l.Holding(uint32(a), uint32(s))
			w.WriteString(string(rune(tot)) + string(rune(res)))
		}
		tot, res := l.Cash(uint32(a))
		w.WriteString(string(rune(tot)) + string(rune(res)))
	}
	w.WriteString(string(rune(len(l.inflight))) + string(rune(len(l.orders))) + string(rune(l.restingSlots)))
	for _, o := range l.orders {
		w.WriteString(string(rune(o.replacing)))
	}
}

func TestBuyThatFillsBelowItsLimitReleasesTheExcess(t *testing.T) {
	l := newTestLedger(t, testConfig())
	ask := place(t, l, 1, bob, engine.Sell, 90, 10)
	require.Equal(t, engine.ReasonNone, l.Prepare(2, newOrder(2, alice, engine.Buy, engine.IOC, 100, 15), nil))
	tot, res := l.Cash(alice)
	require.Equal(t, []int64{1_000_000, 1500}, []int64{tot, res})
	var out engine.Outcome
	addFill(&out, 2, alice, engine.Buy, ask, bob, 90, 10)
	out.Canceled = 5
	l.PreCommit(2, &out)
	l.Commit(2, &out)
	requireAudit(t, l)
	tot, res = l.Cash(alice)
	require.Equal(t, []int64{1_000_000 - 900, 0}, []int64{tot, res})
	tot, res = l.Cash(bob)
	require.Equal(t, []int64{1_000_000 + 900, 0}, []int64{tot, res})
	h, hr := l.Holding(alice, sym)
	require.Equal(t, []int64{1010, 0}, []int64{h, hr})
	h, hr = l.Holding(bob, sym)
	require.Equal(t, []int64{990, 0}, []int64{h, hr})
	require.Zero(t, l.OpenOrders(), "the fully filled maker order is gone")
	require.Zero(t, l.InFlight())
}

func TestRestingRemainderKeepsItsReservation(t *testing.T) {
	l := newTestLedger(t, testConfig())
	ask := place(t, l, 1, bob, engine.Sell, 100, 4)
	require.Equal(t, engine.ReasonNone, l.Prepare(2, newOrder(2, alice, engine.Buy, engine.Limit, 100, 10), nil))
	var out engine.Outcome
	addFill(&out, 2, alice, engine.Buy, ask, bob, 100, 4)
	out.Resting, out.RestingPrice = 6, 100
	l.Commit(2, &out)
	requireAudit(t, l)
	_, res := l.Cash(alice)
	require.Equal(t, int64(600), res)
	require.Equal(t, 1, l.OpenOrders())

	// A later sell takes part of the resting buy as its maker.
	require.Equal(t, engine.ReasonNone, l.Prepare(3, newOrder(3, bob, engine.Sell, engine.Limit, 100, 2), nil))
	out.Reset()
	addFill(&out, 3, bob, engine.Sell, 2, alice, 100, 2)
	l.Commit(3, &out)
	requireAudit(t, l)
	tot, res := l.Cash(alice)
	require.Equal(t, []int64{1_000_000 - 600, 400}, []int64{tot, res})

	// Cancelling the rest releases it.
	require.Equal(t, engine.ReasonNone, l.Prepare(4, cancelOf(alice, 2), nil))
	l.Commit(4, &engine.Outcome{Canceled: 4})
	requireAudit(t, l)
	_, res = l.Cash(alice)
	require.Zero(t, res)
	require.Zero(t, l.OpenOrders())
}

func TestRemovedOrdersReleaseTheirReservation(t *testing.T) {
	l := newTestLedger(t, testConfig())
	own := place(t, l, 1, alice, engine.Sell, 100, 7)
	other := place(t, l, 2, bob, engine.Sell, 101, 5)
	require.Equal(t, engine.ReasonNone, l.Prepare(3, newOrder(3, alice, engine.Buy, engine.IOC, 101, 5), nil))
	var out engine.Outcome
	out.Removed[0] = engine.Removal{OrderID: own, Account: alice, Side: engine.Sell, Price: 100, Qty: 7}
	out.NRemoved = 1
	addFill(&out, 3, alice, engine.Buy, other, bob, 101, 5)
	l.Commit(3, &out)
	requireAudit(t, l)
	h, hr := l.Holding(alice, sym)
	require.Equal(t, []int64{1005, 0}, []int64{h, hr})
	require.Zero(t, l.OpenOrders())
}

func TestSelfTradeSettles(t *testing.T) {
	l := newTestLedger(t, testConfig())
	ask := place(t, l, 1, alice, engine.Sell, 100, 5)
	require.Equal(t, engine.ReasonNone, l.Prepare(2, newOrder(2, alice, engine.Buy, engine.IOC, 100, 5), nil))
	var out engine.Outcome
	addFill(&out, 2, alice, engine.Buy, ask, alice, 100, 5)
	l.Commit(2, &out)
	requireAudit(t, l)
	tot, res := l.Cash(alice)
	require.Equal(t, []int64{1_000_000, 0}, []int64{tot, res})
	h, hr := l.Holding(alice, sym)
	require.Equal(t, []int64{1000, 0}, []int64{h, hr})
}

func TestFeesGoToTheFeeAccount(t *testing.T) {
	cfg := testConfig()
	cfg.MakerFeeBps, cfg.TakerFeeBps = 10, 25 // 0.10 % and 0.25 %
	l := newTestLedger(t, cfg)
	bid := place(t, l, 1, alice, engine.Buy, 1000, 10)
	_, res := l.Cash(alice)
	require.Equal(t, int64(10_000+10), res, "a resting buy reserves the maker fee")

	require.Equal(t, engine.ReasonNone, l.Prepare(2, newOrder(2, bob, engine.Sell, engine.IOC, 999, 7), nil))
	var out engine.Outcome
	addFill(&out, 2, bob, engine.Sell, bid, alice, 1000, 7)
	l.Commit(2, &out)
	requireAudit(t, l)
	tot, res := l.Cash(alice)
	require.Equal(t, int64(1_000_000-7000-7), tot, "maker buyer pays 7000 + floor(7000 × 10 / 10000)")
	require.Equal(t, int64(3000+3), res, "3 lots left, with their maker fee")
	tot, _ = l.Cash(bob)
	require.Equal(t, int64(1_000_000+7000-17), tot, "taker seller receives 7000 − floor(7000 × 25 / 10000)")
	tot, _ = l.Cash(carol)
	require.Equal(t, int64(7+17), tot)

	// A taker buy reserves at the larger fee.
	require.Equal(t, engine.ReasonNone, l.Prepare(3, newOrder(3, bob, engine.Buy, engine.IOC, 1000, 4), nil))
	_, res = l.Cash(bob)
	require.Equal(t, int64(4000+10), res)
	l.Abort(3)
	_, res = l.Cash(bob)
	require.Zero(t, res)
	requireAudit(t, l)
}

func TestAbortReleasesEverything(t *testing.T) {
	l := newTestLedger(t, testConfig())
	bid := place(t, l, 1, alice, engine.Buy, 100, 10)
	before := l.Audit()
	require.True(t, before.OK())
	cmds := []*engine.Command{
		newOrder(2, alice, engine.Buy, engine.Limit, 100, 10),
		newOrder(3, alice, engine.Sell, engine.FOK, 100, 10),
		cancelOf(alice, bid),
		replaceOf(alice, bid, 200, 30),
	}
	for i, c := range cmds {
		require.Equal(t, engine.ReasonNone, l.Prepare(engine.TxID(2+i), c, nil), "command", i)
	}
	requireAudit(t, l)
	for i := range cmds {
		l.Abort(engine.TxID(2 + i))
		l.Abort(engine.TxID(2 + i)) // idempotent
	}
	l.Abort(77) // never prepared
	requireAudit(t, l)
	_, res := l.Cash(alice)
	require.Equal(t, int64(1000), res)
	_, hr := l.Holding(alice, sym)
	require.Zero(t, hr)
	require.Zero(t, l.InFlight())
}

func TestReplace(t *testing.T) {
	l := newTestLedger(t, testConfig())
	bid := place(t, l, 1, alice, engine.Buy, 1000, 900) // 900,000 of 1,000,000 reserved
	// Growing it needs only the difference.
	require.Equal(t, engine.ReasonNone, l.Prepare(2, replaceOf(alice, bid, 1000, 1000), nil))
	_, res := l.Cash(alice)
	require.Equal(t, int64(1_000_000), res)
	l.Commit(2, &engine.Outcome{Resting: 1000, RestingPrice: 1000})
	requireAudit(t, l)

	// Shrinking it releases the difference; it can trade as the taker.
	ask := place(t, l, 3, bob, engine.Sell, 500, 100)
	require.Equal(t, engine.ReasonNone, l.Prepare(4, replaceOf(alice, bid, 600, 300), nil))
	var out engine.Outcome
	addFill(&out, engine.TxID(bid), alice, engine.Buy, ask, bob, 500, 100)
	out.Fills[0].TradeID = engine.TradeIDOf(4, 0)
	out.Resting, out.RestingPrice = 200, 600
	l.Commit(4, &out)
	requireAudit(t, l)
	tot, res := l.Cash(alice)
	require.Equal(t, []int64{1_000_000 - 50_000, 120_000}, []int64{tot, res})

	// Two replaces of the same order in flight: the second cannot count on
	// the order's reservation.
	require.Equal(t, engine.ReasonNone, l.Prepare(5, replaceOf(alice, bid, 600, 250), nil))
	require.Equal(t, engine.ReasonInsufficientCash, l.Prepare(6, replaceOf(alice, bid, 600, 1400), nil))
	require.Equal(t, engine.ReasonNone, l.Prepare(6, replaceOf(alice, bid, 600, 100), nil))
	requireAudit(t, l)
	l.Commit(6, &engine.Outcome{Resting: 100, RestingPrice: 600})
	l.Commit(5, &engine.Outcome{Resting: 250, RestingPrice: 600})
	requireAudit(t, l)
	_, res = l.Cash(alice)
	require.Equal(t, int64(150_000), res)

	// Replacing to a quantity that fills entirely ends the order.
	ask = place(t, l, 7, bob, engine.Sell, 600, 50)
	require.Equal(t, engine.ReasonNone, l.Prepare(8, replaceOf(alice, bid, 600, 50), nil))
	out.Reset()
	addFill(&out, engine.TxID(bid), alice, engine.Buy, ask, bob, 600, 50)
	l.Commit(8, &out)
	requireAudit(t, l)
	_, res = l.Cash(alice)
	require.Zero(t, res)
	require.Zero(t, l.OpenOrders())
}

func TestCancelWhileFillInFlight(t *testing.T) {
	l := newTestLedger(t, testConfig())
	ask := place(t, l, 1, bob, engine.Sell, 100, 10)
	// tx 2 takes 4 of the ask; tx 3 cancels the 6 that are not held.
	require.Equal(t, engine.ReasonNone, l.Prepare(2, newOrder(2, alice, engine.Buy, engine.IOC, 100, 4), nil))
	require.Equal(t, engine.ReasonNone, l.Prepare(3, cancelOf(bob, ask), nil))
	l.Commit(3, &engine.Outcome{Canceled: 6})
	requireAudit(t, l)
	_, hr := l.Holding(bob, sym)
	require.Equal(t, int64(4), hr)
	var out engine.Outcome
	addFill(&out, 2, alice, engine.Buy, ask, bob, 100, 4)
	l.Commit(2, &out)
	requireAudit(t, l)
	_, hr = l.Holding(bob, sym)
	require.Zero(t, hr)
	require.Zero(t, l.OpenOrders())
}

func TestCommitRejectsOutcomesThatBreakTheContract(t *testing.T) {
	tests := []struct {
		name string
		cmd  *engine.Command
		out  func(o *engine.Outcome)
	}{
		{"maker order not resting", newOrder(5, alice, engine.Buy, engine.IOC, 100, 5), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Buy, 99, bob, 100, 5)
		}},
		{"fill above the buy limit", newOrder(5, alice, engine.Buy, engine.IOC, 100, 5), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Buy, 1, bob, 101, 5)
		}},
		{"fill larger than the maker order", newOrder(5, alice, engine.Buy, engine.IOC, 100, 20), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Buy, 1, bob, 100, 11)
			o.Canceled = 9
		}},
		{"fill of another account's order", newOrder(5, alice, engine.Buy, engine.IOC, 100, 5), func(o *engine.Outcome) {
			addFill(o, 5, carol, engine.Buy, 1, bob, 100, 5)
		}},
		{"fill against the wrong maker account", newOrder(5, alice, engine.Buy, engine.IOC, 100, 5), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Buy, 1, carol, 100, 5)
		}},
		{"fill against the same side", newOrder(5, alice, engine.Sell, engine.IOC, 100, 5), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Sell, 1, bob, 100, 5)
		}},
		{"zero-quantity fill", newOrder(5, alice, engine.Buy, engine.IOC, 100, 5), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Buy, 1, bob, 100, 0)
			o.Canceled = 5
		}},
		{"quantities do not add up", newOrder(5, alice, engine.Buy, engine.Limit, 100, 5), func(o *engine.Outcome) {
			o.Resting, o.RestingPrice = 4, 100
		}},
		{"IOC rests", newOrder(5, alice, engine.Buy, engine.IOC, 100, 5), func(o *engine.Outcome) {
			o.Resting, o.RestingPrice = 5, 100
		}},
		{"rests at another price", newOrder(5, alice, engine.Buy, engine.Limit, 100, 5), func(o *engine.Outcome) {
			o.Resting, o.RestingPrice = 5, 101
		}},
		{"cancel takes more than is open", cancelOf(bob, 1), func(o *engine.Outcome) { o.Canceled = 11 }},
		{"removal of an unknown order", newOrder(5, alice, engine.Buy, engine.IOC, 100, 5), func(o *engine.Outcome) {
			o.Removed[0] = engine.Removal{OrderID: 42, Account: alice, Side: engine.Sell, Qty: 1}
			o.NRemoved, o.Canceled = 1, 5
		}},
		{"too many fills", newOrder(5, alice, engine.Buy, engine.IOC, 100, 5), func(o *engine.Outcome) { o.NFills = engine.MaxFills + 1 }},
		{"negative resting", newOrder(5, alice, engine.Buy, engine.Limit, 100, 5), func(o *engine.Outcome) { o.Resting = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLedger(t, testConfig())
			place(t, l, 1, bob, engine.Sell, 100, 10)
			var out engine.Outcome
			tt.out(&out)
			require.Equal(t, engine.ReasonNone, l.Prepare(5, tt.cmd, nil))
			require.Panics(t, func() { l.Commit(5, &out) })
			requireAudit(t, l)

			// Apply reports the same outcome as an error and changes nothing.
			r := newTestLedger(t, testConfig())
			place(t, r, 1, bob, engine.Sell, 100, 10)
			var before, after bytes.Buffer
			require.NoError(t, r.Snapshot(&before))
			err := r.Apply(5, tt.cmd, &out)
			var ae *ApplyError
			require.True(t, errors.As(err, &ae), err)
			require.Equal(t, engine.TxID(5), ae.Tx)
			require.NoError(t, r.Snapshot(&after))
			require.Equal(t, before.Bytes(), after.Bytes())
		})
	}
	l := newTestLedger(t, testConfig())
	require.Panics(t, func() { l.Commit(9, &engine.Outcome{}) }, "commit of a transaction never prepared")
}

func TestApplyRejectsWhatPrepareWould(t *testing.T) {
	l := newTestLedger(t, testConfig())
	err := l.Apply(1, newOrder(1, alice, engine.Buy, engine.IOC, 2000, 1000), &engine.Outcome{Canceled: 1000})
	var ae *ApplyError
	require.True(t, errors.As(err, &ae), err)
	require.Equal(t, engine.ReasonInsufficientCash, ae.Reason)
	requireAudit(t, l)
}

func TestSnapshotRoundTrip(t *testing.T) {
	cfg := testConfig()
	cfg.MakerFeeBps, cfg.TakerFeeBps = 5, 7
	l := newTestLedger(t, cfg)
	bid := place(t, l, 1, alice, engine.Buy, 1000, 10)
	place(t, l, 2, bob, engine.Sell, 1010, 3)
	require.NoError(t, l.Apply(3, newOrder(3, bob, engine.Sell, engine.IOC, 900, 4), func() *engine.Outcome {
		var o engine.Outcome
		addFill(&o, 3, bob, engine.Sell, bid, alice, 1000, 4)
		return &o
	}()))

	var a bytes.Buffer
	require.NoError(t, l.Snapshot(&a))
	r := newTestLedger(t, cfg)
	require.NoError(t, r.Restore(bytes.NewReader(a.Bytes())))
	var b bytes.Buffer
	require.NoError(t, r.Snapshot(&b))
	require.Equal(t, a.Bytes(), b.Bytes())
	require.Equal(t, l.Audit(), r.Audit())
	require.Equal(t, 2, r.OpenOrders())

	// The restored ledger goes on where the original left off.
	require.Equal(t, engine.ReasonNone, r.Prepare(4, cancelOf(alice, bid), nil))
	r.Commit(4, &engine.Outcome{Canceled: 6})
	requireAudit(t, r)

	// Snapshot refuses while transactions are in flight.
	require.Equal(t, engine.ReasonNone, l.Prepare(5, cancelOf(alice, bid), nil))
	require.ErrorIs(t, l.Snapshot(&b), ErrInFlight)

	// Restore refuses a snapshot of another configuration, a truncated or
	// corrupt one, and leaves the ledger as it was.
	other := cfg
	other.TakerFeeBps = 8
	o := newTestLedger(t, other)
	require.ErrorIs(t, o.Restore(bytes.NewReader(a.Bytes())), ErrSnapshot)
	for _, n := range []int{0, 5, headerSize, len(a.Bytes()) - 1} {
		require.True(t, o.Restore(bytes.NewReader(a.Bytes()[:n])) != nil, "truncated at", n)
	}
	bad := bytes.Clone(a.Bytes())
	bad[headerSize+8*cfg.Symbols] ^= 1 // alice's cash
	err := r.Restore(bytes.NewReader(bad))
	require.ErrorIs(t, err, ErrSnapshot)
	require.ErrorIs(t, err, ErrAudit)
	requireAudit(t, r)
}

func TestAuditCatchesBrokenState(t *testing.T) {
	tests := map[string]struct {
		breakIt func(l *Ledger)
		check   string
	}{
		"cash created":                {func(l *Ledger) { l.cash[alice]++ }, CheckCashConserved},
		"security destroyed":          {func(l *Ledger) { l.hold[l.idx(bob, 1)]-- }, CheckSecuritiesConserved},
		"negative cash":               {func(l *Ledger) { l.cash[alice], l.cash[bob] = -1, l.cash[bob]+l.cash[alice]+1 }, CheckNoNegativeBalance},
		"over-reserved":               {func(l *Ledger) { l.cashRes[carol] = 1 }, CheckReservationsCovered},
		"leaked cash reservation":     {func(l *Ledger) { l.cashRes[alice]++ }, CheckCashReservations},
		"leaked security reservation": {func(l *Ledger) { l.holdRes[l.idx(bob, sym)]-- }, CheckSecurityReservations},
		"order under-reserved": {func(l *Ledger) {
			o := l.orders[1]
			o.res--
			l.orders[1] = o
			l.cashRes[alice]--
		}, CheckOrdersCovered},
		"slot count": {func(l *Ledger) { l.restingSlots++ }, CheckInFlightCounts},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			l := newTestLedger(t, testConfig())
			place(t, l, 1, alice, engine.Buy, 100, 10)
			place(t, l, 2, bob, engine.Sell, 100, 10)
			tt.breakIt(l)
			a := l.Audit()
			require.True(t, !a.OK())
			for _, c := range a.Checks {
				if c.Name == tt.check {
					require.True(t, !c.OK, "%s should fail", tt.check)
				}
			}
			require.True(t, errors.Is(a.Err(), ErrAudit))
		})
	}
}
