package risk

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

const (
	alice uint32 = 0
	bob   uint32 = 1
	carol uint32 = 2 // trades under an override: a credit limit only
	sym   uint32 = 0 // reference price 1000
	free  uint32 = 1 // no reference price
)

var defaults = Limits{
	MaxOrderQty:      100,
	MaxOrderNotional: 100_000,
	PriceBandBps:     1000, // 10 %
	MaxPosition:      150,
	CreditLimit:      200_000,
	OrdersPerSecond:  10,
	Burst:            3,
}

func testConfig() Config {
	return Config{
		Accounts:    3,
		Symbols:     2,
		Defaults:    defaults,
		Overrides:   map[uint32]Limits{carol: {CreditLimit: 150_000}},
		References:  []int64{1000, 0},
		MaxOrders:   8,
		MaxInFlight: 8,
	}
}

func newTestManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	require.NoError(t, err)
	return m
}

func requireAudit(t testing.TB, m *Manager) {
	t.Helper()
	require.NoError(t, m.Audit().Err())
}

// clock hands out command times 10 s apart, so the rate limit stays out of
// the way of tests about other rules.
var clock int64

func newOrder(tx engine.TxID, acct uint32, side engine.Side, typ engine.OrderType, price, qty int64) *engine.Command {
	clock += 10 * nanosPerSecond
	return &engine.Command{Kind: engine.NewOrder, Side: side, Type: typ, Symbol: sym, Account: acct, OrderID: uint64(tx), Price: price, Qty: qty, Time: clock}
}

func cancelOf(acct uint32, id uint64) *engine.Command {
	clock += 10 * nanosPerSecond
	return &engine.Command{Kind: engine.Cancel, Symbol: sym, Account: acct, OrderID: id, Time: clock}
}

func replaceOf(acct uint32, id uint64, price, qty int64) *engine.Command {
	clock += 10 * nanosPerSecond
	return &engine.Command{Kind: engine.Replace, Symbol: sym, Account: acct, OrderID: id, Price: price, Qty: qty, Time: clock}
}

func addFill(out *engine.Outcome, tx engine.TxID, taker uint32, ts engine.Side, mo uint64, maker uint32, price, qty int64) {
	out.Fills[out.NFills] = engine.Fill{
		TradeID: engine.TradeIDOf(tx, out.NFills), Symbol: sym, TakerSide: ts,
		MakerOrder: mo, TakerOrder: uint64(tx), Maker: maker, Taker: taker, Price: price, Qty: qty,
	}
	out.NFills++
}

// place commits a limit order that rests whole and returns its id.
func place(t testing.TB, m *Manager, tx engine.TxID, acct uint32, side engine.Side, price, qty int64) uint64 {
	t.Helper()
	require.Equal(t, engine.ReasonNone, m.Prepare(tx, newOrder(tx, acct, side, engine.Limit, price, qty), nil))
	m.Commit(tx, &engine.Outcome{Resting: qty, RestingPrice: price})
	return uint64(tx)
}

// state renders everything a NO vote must leave alone.
func state(m *Manager) string {
	return fmt.Sprint(m.pos, m.openBuy, m.openSel, m.credit, m.tokens, m.buckets, len(m.inflight), len(m.orders), m.restingSlots, m.orders)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"no accounts":            func(c *Config) { c.Accounts = 0 },
		"no symbols":             func(c *Config) { c.Symbols = 0 },
		"negative limit":         func(c *Config) { c.Defaults.MaxPosition = -1 },
		"rate without burst":     func(c *Config) { c.Defaults.Burst = 0 },
		"burst overflows":        func(c *Config) { c.Defaults.Burst = math.MaxInt64 / 2 },
		"rate too high":          func(c *Config) { c.Defaults.OrdersPerSecond = 2 * nanosPerSecond },
		"override of a stranger": func(c *Config) { c.Overrides = map[uint32]Limits{3: {}} },
		"bad override":           func(c *Config) { c.Overrides = map[uint32]Limits{1: {CreditLimit: -5}} },
		"references length":      func(c *Config) { c.References = []int64{1} },
		"negative reference":     func(c *Config) { c.References = []int64{-1, 0} },
		"negative table size":    func(c *Config) { c.MaxInFlight = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := testConfig()
			mod(&c)
			_, err := New(c)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
	m := newTestManager(t, testConfig())
	require.ErrorIs(t, m.SetLimits(3, Limits{}), ErrConfig)
	require.ErrorIs(t, m.SetLimits(0, Limits{OrdersPerSecond: 1}), ErrConfig)
	require.ErrorIs(t, m.SetReference(2, 1), ErrConfig)
	require.ErrorIs(t, m.SetReference(0, -1), ErrConfig)
}

func TestPrepareRejections(t *testing.T) {
	full := testConfig()
	full.MaxOrders = 1
	sellFree := func(tx engine.TxID, acct uint32, price, qty int64) *engine.Command {
		c := newOrder(tx, acct, engine.Sell, engine.Limit, price, qty)
		c.Symbol = free
		return c
	}
	tests := []struct {
		name  string
		cfg   *Config
		setup func(m *Manager)
		cmd   func() *engine.Command
		want  engine.Reason
	}{
		{name: "unknown account", cmd: func() *engine.Command { return newOrder(10, 3, engine.Buy, engine.Limit, 1000, 1) }, want: engine.ReasonUnknownAccount},
		{name: "unknown symbol", cmd: func() *engine.Command {
			c := newOrder(10, alice, engine.Buy, engine.Limit, 1000, 1)
			c.Symbol = 2
			return c
		}, want: engine.ReasonUnknownSymbol},
		{name: "bad side", cmd: func() *engine.Command { return newOrder(10, alice, 3, engine.Limit, 1000, 1) }, want: engine.ReasonMalformed},
		{name: "bad type", cmd: func() *engine.Command { return newOrder(10, alice, engine.Buy, 0, 1000, 1) }, want: engine.ReasonMalformed},
		{name: "bad kind", cmd: func() *engine.Command { return &engine.Command{Kind: 9} }, want: engine.ReasonMalformed},
		{name: "zero quantity", cmd: func() *engine.Command { return newOrder(10, alice, engine.Buy, engine.Limit, 1000, 0) }, want: engine.ReasonBadQuantity},
		{name: "negative price", cmd: func() *engine.Command { return newOrder(10, alice, engine.Buy, engine.Limit, -1000, 1) }, want: engine.ReasonBadPrice},
		{name: "notional overflow", cmd: func() *engine.Command { return newOrder(10, carol, engine.Buy, engine.Limit, math.MaxInt64/2, 3) }, want: engine.ReasonOverflow},
		{
			name:  "open quantity overflow",
			setup: func(m *Manager) { m.Prepare(1, newOrder(1, carol, engine.Sell, engine.IOC, 1, math.MaxInt64-1), nil) },
			cmd:   func() *engine.Command { return newOrder(10, carol, engine.Sell, engine.IOC, 1, 2) }, want: engine.ReasonOverflow,
		},
		{name: "max quantity", cmd: func() *engine.Command { return newOrder(10, alice, engine.Buy, engine.Limit, 900, 101) }, want: engine.ReasonMaxQty},
		{name: "max notional", cmd: func() *engine.Command { return newOrder(10, alice, engine.Buy, engine.Limit, 1050, 96) }, want: engine.ReasonMaxNotional},
		{name: "price band above", cmd: func() *engine.Command { return newOrder(10, alice, engine.Buy, engine.Limit, 1101, 1) }, want: engine.ReasonPriceBand},
		{name: "price band below", cmd: func() *engine.Command { return newOrder(10, alice, engine.Sell, engine.Limit, 899, 1) }, want: engine.ReasonPriceBand},
		{name: "price band on a market order's protection price", cmd: func() *engine.Command { return newOrder(10, alice, engine.Buy, engine.Market, 2000, 1) }, want: engine.ReasonPriceBand},
		{
			name:  "long position limit, counting open buys",
			setup: func(m *Manager) { place(t, m, 1, alice, engine.Buy, 1000, 60) },
			cmd:   func() *engine.Command { return newOrder(10, alice, engine.Buy, engine.Limit, 1000, 91) }, want: engine.ReasonPositionLimit,
		},
		{
			name:  "short position limit, counting in-flight sells",
			setup: func(m *Manager) { m.Prepare(1, sellFree(1, alice, 5, 100), nil) },
			cmd:   func() *engine.Command { return sellFree(10, alice, 5, 51) }, want: engine.ReasonPositionLimit,
		},
		{
			name: "position limit counting the position",
			setup: func(m *Manager) {
				ask := place(t, m, 1, bob, engine.Sell, 1000, 80)
				m.Prepare(2, newOrder(2, alice, engine.Buy, engine.IOC, 1000, 80), nil)
				var out engine.Outcome
				addFill(&out, 2, alice, engine.Buy, ask, bob, 1000, 80)
				m.Commit(2, &out)
			},
			cmd: func() *engine.Command { return newOrder(10, alice, engine.Buy, engine.IOC, 1000, 71) }, want: engine.ReasonPositionLimit,
		},
		{
			name:  "credit limit",
			setup: func(m *Manager) { place(t, m, 1, carol, engine.Buy, 1000, 60) },
			cmd:   func() *engine.Command { return newOrder(10, carol, engine.Buy, engine.Limit, 1000, 91) }, want: engine.ReasonCreditLimit,
		},
		{
			name: "rate limit",
			setup: func(m *Manager) {
				for tx := engine.TxID(1); tx <= 3; tx++ {
					m.Prepare(tx, &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Account: bob, OrderID: uint64(tx), Price: 1000, Qty: 1, Time: 5}, nil)
				}
			},
			cmd: func() *engine.Command {
				return &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Account: bob, OrderID: 10, Price: 1000, Qty: 1, Time: 5 + nanosPerSecond/10 - 1}
			},
			want: engine.ReasonRateLimit,
		},
		{name: "cancel of an unknown order", cmd: func() *engine.Command { return cancelOf(alice, 99) }, want: engine.ReasonUnknownOrder},
		{
			name:  "cancel of another account's order",
			setup: func(m *Manager) { place(t, m, 1, bob, engine.Buy, 1000, 1) },
			cmd:   func() *engine.Command { return cancelOf(alice, 1) }, want: engine.ReasonNotOwner,
		},
		{name: "replace of an unknown order", cmd: func() *engine.Command { return replaceOf(alice, 99, 1000, 1) }, want: engine.ReasonUnknownOrder},
		{
			name:  "replace of another account's order",
			setup: func(m *Manager) { place(t, m, 1, bob, engine.Buy, 1000, 1) },
			cmd:   func() *engine.Command { return replaceOf(alice, 1, 1000, 1) }, want: engine.ReasonNotOwner,
		},
		{
			name:  "replace to zero quantity",
			setup: func(m *Manager) { place(t, m, 1, alice, engine.Buy, 1000, 1) },
			cmd:   func() *engine.Command { return replaceOf(alice, 1, 1000, 0) }, want: engine.ReasonBadQuantity,
		},
		{
			name:  "replace to zero price",
			setup: func(m *Manager) { place(t, m, 1, alice, engine.Buy, 1000, 1) },
			cmd:   func() *engine.Command { return replaceOf(alice, 1, 0, 1) }, want: engine.ReasonBadPrice,
		},
		{
			name:  "replace beyond max quantity",
			setup: func(m *Manager) { place(t, m, 1, alice, engine.Buy, 900, 1) },
			cmd:   func() *engine.Command { return replaceOf(alice, 1, 900, 101) }, want: engine.ReasonMaxQty,
		},
		{
			name:  "replace outside the band",
			setup: func(m *Manager) { place(t, m, 1, alice, engine.Buy, 1000, 1) },
			cmd:   func() *engine.Command { return replaceOf(alice, 1, 1200, 1) }, want: engine.ReasonPriceBand,
		},
		{
			name: "replace beyond the position limit",
			setup: func(m *Manager) {
				place(t, m, 1, alice, engine.Buy, 1000, 60)
				place(t, m, 2, alice, engine.Buy, 1000, 60)
			},
			cmd: func() *engine.Command { return replaceOf(alice, 1, 1000, 91) }, want: engine.ReasonPositionLimit,
		},
		{
			name: "replace beyond the credit limit",
			setup: func(m *Manager) {
				place(t, m, 1, carol, engine.Buy, 1000, 60)
				place(t, m, 2, carol, engine.Buy, 1000, 60)
			},
			cmd: func() *engine.Command { return replaceOf(carol, 1, 1000, 91) }, want: engine.ReasonCreditLimit,
		},
		{
			name: "in-flight table full",
			setup: func(m *Manager) {
				for tx := engine.TxID(1); tx <= 8; tx++ {
					c := newOrder(tx, carol, engine.Buy, engine.IOC, 1, 1)
					m.Prepare(tx, c, nil)
				}
			},
			cmd: func() *engine.Command { return newOrder(10, carol, engine.Buy, engine.IOC, 1, 1) }, want: engine.ReasonBackpressure,
		},
		{
			name:  "order table full",
			cfg:   &full,
			setup: func(m *Manager) { m.Prepare(1, newOrder(1, carol, engine.Buy, engine.Limit, 1, 1), nil) },
			cmd:   func() *engine.Command { return newOrder(10, carol, engine.Buy, engine.Limit, 1, 1) }, want: engine.ReasonBackpressure,
		},
		{
			name:  "duplicate transaction",
			setup: func(m *Manager) { m.Prepare(10, newOrder(10, carol, engine.Buy, engine.IOC, 1, 1), nil) },
			cmd:   func() *engine.Command { return newOrder(10, carol, engine.Buy, engine.IOC, 1, 1) }, want: engine.ReasonMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			m := newTestManager(t, cfg)
			if tt.setup != nil {
				tt.setup(m)
			}
			requireAudit(t, m)
			before := state(m)
			require.Equal(t, tt.want, m.Prepare(10, tt.cmd(), nil))
			require.Equal(t, before, state(m), "a NO vote reserved something")
			requireAudit(t, m)
		})
	}
}

func TestLimitsAtTheirBoundsPass(t *testing.T) {
	m := newTestManager(t, testConfig())
	for i, c := range []*engine.Command{
		newOrder(1, alice, engine.Buy, engine.Limit, 1000, 100), // max qty, max notional
		newOrder(2, bob, engine.Buy, engine.Limit, 1100, 1),     // top of the band
		newOrder(3, bob, engine.Sell, engine.Limit, 900, 1),     // bottom of the band
		newOrder(4, alice, engine.Buy, engine.Limit, 1000, 50),  // position 150 in the worst case
		newOrder(5, carol, engine.Buy, engine.Limit, 50_000, 3), // credit 150,000; no band for carol
		newOrder(6, carol, engine.Sell, engine.Limit, 1, 1<<40), // carol has no position limit
		replaceOf(alice, 99, 1000, 1),                           // (rejected: no such order)
	} {
		want := engine.ReasonNone
		if i == 6 {
			want = engine.ReasonUnknownOrder
		}
		require.Equal(t, want, m.Prepare(engine.TxID(i+1), c, nil), "command", i)
	}
	requireAudit(t, m)
}

func TestCommitTurnsFillsIntoPositions(t *testing.T) {
	m := newTestManager(t, testConfig())
	ask := place(t, m, 1, bob, engine.Sell, 990, 10)
	_, sell := m.Open(bob, sym)
	require.Equal(t, int64(10), sell)

	require.Equal(t, engine.ReasonNone, m.Prepare(2, newOrder(2, alice, engine.Buy, engine.Limit, 1000, 15), nil))
	require.Equal(t, int64(15_000), m.Credit(alice))
	var out engine.Outcome
	addFill(&out, 2, alice, engine.Buy, ask, bob, 990, 10)
	out.Resting, out.RestingPrice = 5, 1000
	m.PreCommit(2, &out)
	m.Commit(2, &out)
	requireAudit(t, m)
	require.Equal(t, int64(10), m.Position(alice, sym))
	require.Equal(t, int64(-10), m.Position(bob, sym))
	buy, _ := m.Open(alice, sym)
	require.Equal(t, int64(5), buy)
	require.Equal(t, int64(5000), m.Credit(alice), "the resting 5 keep their exposure, the rest is released")
	_, sell = m.Open(bob, sym)
	require.Zero(t, sell)
	require.Equal(t, 1, m.OpenOrders())

	// The resting buy is then a maker: its fills reduce its exposure.
	require.Equal(t, engine.ReasonNone, m.Prepare(3, newOrder(3, bob, engine.Sell, engine.IOC, 1000, 7), nil))
	out.Reset()
	addFill(&out, 3, bob, engine.Sell, 2, alice, 1000, 5)
	out.Canceled = 2
	m.Commit(3, &out)
	requireAudit(t, m)
	require.Equal(t, int64(15), m.Position(alice, sym))
	require.Equal(t, int64(-15), m.Position(bob, sym))
	require.Zero(t, m.Credit(alice))
	require.Zero(t, m.OpenOrders())
	require.Zero(t, m.Reference(free))
	require.Equal(t, int64(1000), m.Reference(sym), "the reference stays put without FollowLastTrade")
}

func TestSelfTradeAndRemovals(t *testing.T) {
	m := newTestManager(t, testConfig())
	own := place(t, m, 1, alice, engine.Sell, 1000, 7)
	mine := place(t, m, 2, alice, engine.Sell, 1001, 3)
	require.Equal(t, engine.ReasonNone, m.Prepare(3, newOrder(3, alice, engine.Buy, engine.IOC, 1001, 5), nil))
	var out engine.Outcome
	out.Removed[0] = engine.Removal{OrderID: own, Account: alice, Side: engine.Sell, Price: 1000, Qty: 7}
	out.NRemoved = 1
	addFill(&out, 3, alice, engine.Buy, mine, alice, 1001, 3)
	out.Canceled = 2
	m.Commit(3, &out)
	requireAudit(t, m)
	require.Zero(t, m.Position(alice, sym), "a self-trade leaves the position unchanged")
	b, s := m.Open(alice, sym)
	require.Equal(t, []int64{0, 0}, []int64{b, s})
	require.Zero(t, m.OpenOrders())
}

func TestReferenceFollowsLastTrade(t *testing.T) {
	cfg := testConfig()
	cfg.FollowLastTrade = true
	m := newTestManager(t, cfg)
	ask := place(t, m, 1, bob, engine.Sell, 1080, 10)
	require.Equal(t, engine.ReasonNone, m.Prepare(2, newOrder(2, alice, engine.Buy, engine.IOC, 1080, 4), nil))
	var out engine.Outcome
	addFill(&out, 2, alice, engine.Buy, ask, bob, 1080, 4)
	m.Commit(2, &out)
	require.Equal(t, int64(1080), m.Reference(sym))
	// 1150 was outside the band around 1000 and is inside the one around 1080.
	require.Equal(t, engine.ReasonNone, m.Prepare(3, newOrder(3, alice, engine.Buy, engine.IOC, 1150, 1), nil))
	m.Abort(3)
	require.NoError(t, m.SetReference(sym, 500))
	require.Equal(t, engine.ReasonPriceBand, m.Prepare(4, newOrder(4, alice, engine.Buy, engine.IOC, 1150, 1), nil))
	require.NoError(t, m.SetReference(sym, 0))
	require.Equal(t, engine.ReasonNone, m.Prepare(5, newOrder(5, alice, engine.Buy, engine.IOC, 1150, 1), nil), "no reference, no band")
}

func TestRateLimitRefillsFromCommandTime(t *testing.T) {
	m := newTestManager(t, testConfig()) // 10 orders/s, burst 3
	at := func(tx engine.TxID, ns int64) *engine.Command {
		return &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Account: bob, OrderID: uint64(tx), Price: 1000, Qty: 1, Time: ns}
	}
	ioc := &engine.Outcome{Canceled: 1}
	const t0 = 1_000_000_000_000
	for tx := engine.TxID(1); tx <= 3; tx++ {
		require.Equal(t, engine.ReasonNone, m.Prepare(tx, at(tx, t0), nil))
	}
	require.Equal(t, engine.ReasonRateLimit, m.Prepare(4, at(4, t0), nil))
	m.Abort(3) // an aborted order gives its token back
	require.Equal(t, engine.ReasonNone, m.Prepare(4, at(4, t0), nil))
	m.Commit(1, ioc)
	m.Commit(2, ioc)
	m.Commit(4, ioc)
	require.Equal(t, engine.ReasonRateLimit, m.Prepare(5, at(5, t0+nanosPerSecond/10-1), nil))
	require.Equal(t, engine.ReasonNone, m.Prepare(5, at(5, t0+nanosPerSecond/10), nil), "one token after 100 ms")
	m.Commit(5, ioc)
	require.Equal(t, engine.ReasonRateLimit, m.Prepare(6, at(6, t0+nanosPerSecond/10), nil))
	// Cancels are never throttled.
	id := place(t, m, 7, carol, engine.Buy, 1, 1)
	require.NoError(t, m.SetLimits(carol, Limits{OrdersPerSecond: 1, Burst: 1}))
	require.Equal(t, engine.ReasonNone, m.Prepare(8, &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Account: carol, OrderID: 8, Price: 1, Qty: 1, Time: 1}, nil))
	require.Equal(t, engine.ReasonRateLimit, m.Prepare(9, &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Account: carol, OrderID: 9, Price: 1, Qty: 1, Time: 1}, nil))
	require.Equal(t, engine.ReasonNone, m.Prepare(10, &engine.Command{Kind: engine.Cancel, Account: carol, OrderID: id, Time: 1}, nil))
	// A long silence refills to the burst, not beyond.
	m.Commit(8, ioc)
	require.Equal(t, engine.ReasonNone, m.Prepare(11, &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Account: carol, OrderID: 11, Price: 1, Qty: 1, Time: math.MaxInt64}, nil))
	require.Equal(t, engine.ReasonRateLimit, m.Prepare(12, &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Account: carol, OrderID: 12, Price: 1, Qty: 1, Time: math.MaxInt64}, nil))
	requireAudit(t, m)
}

func TestReplace(t *testing.T) {
	m := newTestManager(t, testConfig())
	bid := place(t, m, 1, alice, engine.Buy, 1000, 100)
	// The replaced order's own quantity does not count against the new one.
	require.Equal(t, engine.ReasonNone, m.Prepare(2, replaceOf(alice, bid, 990, 90), nil))
	require.Equal(t, int64(189_100), m.Credit(alice), "both held while in flight")
	// A second replace in flight cannot count on it.
	require.Equal(t, engine.ReasonPositionLimit, m.Prepare(3, replaceOf(alice, bid, 1000, 60), nil))
	m.Commit(2, &engine.Outcome{Resting: 90, RestingPrice: 990})
	requireAudit(t, m)
	require.Equal(t, int64(89_100), m.Credit(alice))

	ask := place(t, m, 4, bob, engine.Sell, 1010, 30)
	require.Equal(t, engine.ReasonNone, m.Prepare(5, replaceOf(alice, bid, 1010, 50), nil))
	var out engine.Outcome
	addFill(&out, 5, alice, engine.Buy, ask, bob, 1010, 30)
	out.Fills[0].TakerOrder = bid
	out.Resting, out.RestingPrice = 20, 1010
	m.Commit(5, &out)
	requireAudit(t, m)
	require.Equal(t, int64(30), m.Position(alice, sym))
	require.Equal(t, int64(20_200), m.Credit(alice))
	buy, _ := m.Open(alice, sym)
	require.Equal(t, int64(20), buy)

	// Replace then cancel: the cancel finds the order whole again.
	require.Equal(t, engine.ReasonNone, m.Prepare(6, replaceOf(alice, bid, 1000, 40), nil))
	m.Abort(6)
	require.Equal(t, engine.ReasonNone, m.Prepare(7, cancelOf(alice, bid), nil))
	m.Commit(7, &engine.Outcome{Canceled: 20})
	requireAudit(t, m)
	require.Zero(t, m.Credit(alice))
	require.Zero(t, m.OpenOrders())
}

func TestAbortReleasesEverything(t *testing.T) {
	m := newTestManager(t, testConfig())
	bid := place(t, m, 1, alice, engine.Buy, 1000, 10)
	before := state(m)
	for i, c := range []*engine.Command{
		newOrder(2, alice, engine.Buy, engine.Limit, 1000, 10),
		newOrder(3, alice, engine.Sell, engine.FOK, 1000, 10),
		cancelOf(alice, bid),
		replaceOf(alice, bid, 1000, 30),
	} {
		require.Equal(t, engine.ReasonNone, m.Prepare(engine.TxID(2+i), c, nil), "command", i)
	}
	requireAudit(t, m)
	for tx := engine.TxID(2); tx <= 5; tx++ {
		m.Abort(tx)
		m.Abort(tx)
	}
	m.Abort(99)
	requireAudit(t, m)
	require.Equal(t, before, state(m))
}

func TestCommitRejectsOutcomesThatBreakTheContract(t *testing.T) {
	tests := []struct {
		name string
		cmd  *engine.Command
		out  func(o *engine.Outcome)
	}{
		{"maker order not resting", newOrder(5, alice, engine.Buy, engine.IOC, 1000, 5), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Buy, 99, bob, 1000, 5)
		}},
		{"fill larger than the maker order", newOrder(5, alice, engine.Buy, engine.IOC, 1000, 20), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Buy, 1, bob, 1000, 11)
			o.Canceled = 9
		}},
		{"fill of another order", newOrder(5, alice, engine.Buy, engine.IOC, 1000, 5), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Buy, 1, bob, 1000, 5)
			o.Fills[0].TakerOrder = 6
		}},
		{"fill on the wrong side", newOrder(5, alice, engine.Sell, engine.IOC, 1000, 5), func(o *engine.Outcome) {
			addFill(o, 5, alice, engine.Sell, 1, bob, 1000, 5)
		}},
		{"quantities do not add up", newOrder(5, alice, engine.Buy, engine.IOC, 1000, 5), func(o *engine.Outcome) { o.Canceled = 4 }},
		{"market order rests", newOrder(5, alice, engine.Buy, engine.Market, 1000, 5), func(o *engine.Outcome) {
			o.Resting, o.RestingPrice = 5, 1000
		}},
		{"cancel takes more than is open", cancelOf(bob, 1), func(o *engine.Outcome) { o.Canceled = 11 }},
		{"removal of an unknown order", newOrder(5, alice, engine.Buy, engine.IOC, 1000, 5), func(o *engine.Outcome) {
			o.Removed[0] = engine.Removal{OrderID: 42, Account: alice, Side: engine.Sell, Qty: 1}
			o.NRemoved, o.Canceled = 1, 5
		}},
		{"negative count", newOrder(5, alice, engine.Buy, engine.IOC, 1000, 5), func(o *engine.Outcome) { o.NRemoved = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestManager(t, testConfig())
			place(t, m, 1, bob, engine.Sell, 1000, 10)
			var out engine.Outcome
			tt.out(&out)
			require.Equal(t, engine.ReasonNone, m.Prepare(5, tt.cmd, nil))
			require.Panics(t, func() { m.Commit(5, &out) })
			requireAudit(t, m)

			r := newTestManager(t, testConfig())
			place(t, r, 1, bob, engine.Sell, 1000, 10)
			before := state(r)
			var ae *ApplyError
			require.True(t, errors.As(r.Apply(5, tt.cmd, &out), &ae))
			require.Equal(t, engine.TxID(5), ae.Tx)
			require.Equal(t, before, state(r))
		})
	}
	m := newTestManager(t, testConfig())
	require.Panics(t, func() { m.Commit(1, &engine.Outcome{}) })
	var ae *ApplyError
	require.True(t, errors.As(m.Apply(1, newOrder(1, 7, engine.Buy, engine.IOC, 1, 1), &engine.Outcome{Canceled: 1}), &ae))
	require.Equal(t, engine.ReasonUnknownAccount, ae.Reason)
}

func TestApplySkipsLimits(t *testing.T) {
	m := newTestManager(t, testConfig())
	// Limits may have changed since the journal was written: replay keeps
	// what was committed.
	require.NoError(t, m.Apply(1, newOrder(1, alice, engine.Buy, engine.Limit, 5000, 1000), &engine.Outcome{Resting: 1000, RestingPrice: 5000}))
	require.Equal(t, int64(5_000_000), m.Credit(alice))
	requireAudit(t, m)
}

func TestSnapshotRoundTrip(t *testing.T) {
	cfg := testConfig()
	cfg.FollowLastTrade = true
	m := newTestManager(t, cfg)
	bid := place(t, m, 1, alice, engine.Buy, 1000, 10)
	place(t, m, 2, bob, engine.Sell, 1010, 3)
	var out engine.Outcome
	addFill(&out, 3, bob, engine.Sell, bid, alice, 1000, 4)
	require.NoError(t, m.Apply(3, newOrder(3, bob, engine.Sell, engine.IOC, 995, 4), &out))
	require.NoError(t, m.SetLimits(carol, Limits{MaxOrderQty: 7}))

	var a bytes.Buffer
	require.NoError(t, m.Snapshot(&a))
	r := newTestManager(t, testConfig())
	require.NoError(t, r.Restore(bytes.NewReader(a.Bytes())))
	var b bytes.Buffer
	require.NoError(t, r.Snapshot(&b))
	require.True(t, bytes.Equal(a.Bytes(), b.Bytes()), "restore then snapshot changed the bytes")
	require.Equal(t, state(m), state(r))
	require.Equal(t, Limits{MaxOrderQty: 7}, r.Limits(carol))
	require.Equal(t, int64(1000), r.Reference(sym))
	require.Equal(t, engine.ReasonMaxQty, r.Prepare(9, newOrder(9, carol, engine.Buy, engine.IOC, 1, 8), nil))

	require.Equal(t, engine.ReasonNone, m.Prepare(5, cancelOf(alice, bid), nil))
	require.ErrorIs(t, m.Snapshot(&b), ErrInFlight)
	m.Abort(5)

	o, err := New(Config{Accounts: 4, Symbols: 2})
	require.NoError(t, err)
	require.ErrorIs(t, o.Restore(bytes.NewReader(a.Bytes())), ErrSnapshot)
	for _, n := range []int{0, 7, headerSize, a.Len() - 1} {
		require.True(t, r.Restore(bytes.NewReader(a.Bytes()[:n])) != nil, "truncated at", n)
	}
	bad := bytes.Clone(a.Bytes())
	bad[headerSize+8*cfg.Symbols+accountSize*cfg.Accounts] ^= 1 // alice's position
	err = r.Restore(bytes.NewReader(bad))
	require.ErrorIs(t, err, ErrSnapshot)
	require.ErrorIs(t, err, ErrAudit)
	require.Equal(t, state(m), state(r), "a refused snapshot changes nothing")
}

func TestAuditCatchesBrokenState(t *testing.T) {
	tests := map[string]struct {
		breakIt func(m *Manager)
		check   string
	}{
		"position created": {func(m *Manager) { m.pos[0]++ }, CheckPositionsNet},
		"order notional":   {func(m *Manager) { o := m.orders[1]; o.notional++; m.orders[1] = o; m.credit[alice]++ }, CheckOrders},
		"leaked quantity":  {func(m *Manager) { m.openSel[m.idx(bob, sym)]++ }, CheckOpenQuantity},
		"leaked credit":    {func(m *Manager) { m.credit[alice]-- }, CheckCredit},
		"token count":      {func(m *Manager) { m.tokens[bob]++ }, CheckInFlightCounts},
		"reference":        {func(m *Manager) { m.refs[free] = -1 }, CheckReferencePrices},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m := newTestManager(t, testConfig())
			place(t, m, 1, alice, engine.Buy, 1000, 10)
			place(t, m, 2, bob, engine.Sell, 1001, 10)
			tt.breakIt(m)
			a := m.Audit()
			require.True(t, !a.OK())
			for _, c := range a.Checks {
				require.True(t, c.OK == (c.Name != tt.check), c.Name, c.Detail)
			}
			require.ErrorIs(t, a.Err(), ErrAudit)
		})
	}
}
