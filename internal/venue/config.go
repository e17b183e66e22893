package venue

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/matching"
	"github.com/commitcore/commitcore/risk"
	"github.com/commitcore/commitcore/settlement"
)

// Bounds on a Config, so that every participant's state fits in memory.
const (
	MaxSymbols  = 1 << 10
	MaxAccounts = 1 << 20
	// maxCells bounds (Accounts+1) × Symbols: risk and settlement keep
	// several int64 per account and symbol.
	maxCells = 1 << 24
	// maxBookLevels bounds Symbols × price levels: matching keeps 32 bytes
	// per level per book.
	maxBookLevels = 1 << 25
	maxDepth      = 1 << 16
	// minStartTicks is the least StartPrice in ticks: the flow prices
	// orders up to 60 ticks around a mid it keeps 100 ticks off the ends.
	minStartTicks = 200
	maxTable      = 1 << 24
)

// Config is the market's shape. Every process of a deployment builds its
// participant from the same Config and so starts from identical state.
// Start from DefaultConfig: a zero field is invalid, not a default.
//
// Symbols are named SYM0…SYM<n-1> with ids 0…n-1. Accounts 0…Accounts-1
// trade; account Accounts (FeeAccount) only collects fees. Prices are
// integers in minor currency units per lot, on a grid of Tick; quantities
// are integer lots.
type Config struct {
	// Symbols is the number of symbols, 1 to MaxSymbols.
	Symbols int
	// Accounts is the number of trading accounts, 1 to MaxAccounts. Each is
	// funded with Cash and Holding of every symbol, so it can buy and sell.
	Accounts int
	// Seed seeds the order flow (NewFlow).
	Seed int64

	// Tick is every symbol's price grid; books span [Tick, MaxPrice].
	Tick int64
	// StartPrice is every symbol's opening mid and risk reference price.
	StartPrice int64
	// MaxPrice is the top of every book's price range, at least twice
	// StartPrice so that drifts and shocks fit.
	MaxPrice int64
	// Cash and Holding are each trading account's cash and lots of every
	// symbol at genesis.
	Cash    int64
	Holding int64
	// MakerFeeBps and TakerFeeBps are settlement's fees in basis points of
	// each fill's notional, paid to FeeAccount; zero turns a fee off.
	MakerFeeBps int64
	TakerFeeBps int64
	// Limits are every account's risk limits (a zero field is no limit, as
	// in risk.Limits). The Flow's virtual clock gives each account 1,000
	// commands a second on average: an OrdersPerSecond near that rejects
	// many of them.
	Limits risk.Limits
	// STP is matching's self-trade prevention.
	STP matching.STPMode

	// Depth is the number of resting orders per symbol the flow keeps
	// around the mid (it lets books grow to about twice that).
	Depth int
	// MaxOrders is the number of resting orders each participant tracks
	// without allocating; beyond it risk and settlement vote NO with
	// engine.ReasonBackpressure.
	MaxOrders int
	// MaxInFlight is the number of transactions each participant can hold
	// prepared at once; set it to at least the Core's MaxInFlight.
	MaxInFlight int
}

// DefaultConfig returns the default market: 8 symbols and 1,000 accounts,
// prices around 10,000 on a tick of 1, accounts funded far beyond what the
// default flow trades, fees of 1 bp (maker) and 3 bp (taker), and risk
// limits that the default flow rarely meets: a 50 % fat-finger band (wider
// than a circuit breaker's 10 % so that a price shock reaches the breaker),
// and 2,000 orders per second per account in the flow's virtual time.
func DefaultConfig() Config {
	return Config{
		Symbols:     8,
		Accounts:    1000,
		Seed:        1,
		Tick:        1,
		StartPrice:  10_000,
		MaxPrice:    40_000,
		Cash:        10_000_000_000,
		Holding:     1_000_000,
		MakerFeeBps: 1,
		TakerFeeBps: 3,
		Limits: risk.Limits{
			MaxOrderQty:      10_000,
			MaxOrderNotional: 1_000_000_000,
			PriceBandBps:     5_000,
			MaxPosition:      1_000_000,
			CreditLimit:      5_000_000_000,
			OrdersPerSecond:  2_000,
			Burst:            100,
		},
		STP:         matching.CancelResting,
		Depth:       250,
		MaxOrders:   1 << 16,
		MaxInFlight: engine.DefaultSlots,
	}
}

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("venue: invalid config")

// Validate reports the first thing wrong with c, naming the field, its
// value and what is allowed.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Symbols < 1 || c.Symbols > MaxSymbols:
		return bad("symbols %d: want 1 to %d", c.Symbols, MaxSymbols)
	case c.Accounts < 1 || c.Accounts > MaxAccounts:
		return bad("accounts %d: want 1 to %d", c.Accounts, MaxAccounts)
	case (c.Accounts+1)*c.Symbols > maxCells:
		return bad("accounts %d × symbols %d: want at most %d account-symbol pairs", c.Accounts, c.Symbols, maxCells)
	case c.Tick < 1:
		return bad("tick %d: want at least 1", c.Tick)
	case c.StartPrice/c.Tick < minStartTicks || c.StartPrice%c.Tick != 0:
		return bad("start price %d: want a multiple of the tick %d, at least %d ticks", c.StartPrice, c.Tick, minStartTicks)
	case c.MaxPrice%c.Tick != 0 || c.MaxPrice/2 < c.StartPrice:
		return bad("max price %d: want a multiple of the tick %d, at least twice the start price %d", c.MaxPrice, c.Tick, c.StartPrice)
	case c.MaxPrice/c.Tick > matching.MaxLevels:
		return bad("max price %d on tick %d: %d price levels, want at most %d", c.MaxPrice, c.Tick, c.MaxPrice/c.Tick, matching.MaxLevels)
	case int64(c.Symbols)*(c.MaxPrice/c.Tick) > maxBookLevels:
		return bad("symbols %d × %d price levels: want at most %d levels in all", c.Symbols, c.MaxPrice/c.Tick, maxBookLevels)
	case c.Cash < 0 || c.Cash > math.MaxInt64/int64(c.Accounts+1):
		return bad("cash %d: want 0 to %d for %d accounts", c.Cash, math.MaxInt64/int64(c.Accounts+1), c.Accounts)
	case c.Holding < 0 || c.Holding > math.MaxInt64/int64(c.Accounts+1):
		return bad("holding %d: want 0 to %d for %d accounts", c.Holding, math.MaxInt64/int64(c.Accounts+1), c.Accounts)
	case c.MakerFeeBps < 0 || c.MakerFeeBps > 10_000:
		return bad("maker fee %d bps: want 0 to 10000", c.MakerFeeBps)
	case c.TakerFeeBps < 0 || c.TakerFeeBps > 10_000:
		return bad("taker fee %d bps: want 0 to 10000", c.TakerFeeBps)
	case c.STP > matching.CancelIncoming:
		return bad("STP mode %d: want %v or %v", c.STP, matching.CancelResting, matching.CancelIncoming)
	case c.Depth < 1 || c.Depth > maxDepth:
		return bad("depth %d: want 1 to %d", c.Depth, maxDepth)
	case c.MaxOrders < 1 || c.MaxOrders > maxTable:
		return bad("max orders %d: want 1 to %d", c.MaxOrders, maxTable)
	case c.MaxInFlight < 1 || c.MaxInFlight > maxTable:
		return bad("max in flight %d: want 1 to %d", c.MaxInFlight, maxTable)
	}
	if _, err := risk.New(risk.Config{Accounts: 1, Symbols: 1, Defaults: c.Limits, MaxOrders: 1, MaxInFlight: 1}); err != nil {
		return bad("limits: %v", err)
	}
	return nil
}

// FeeAccount returns the id of the account that collects fees: the one
// after the trading accounts.
func (c Config) FeeAccount() uint32 { return uint32(c.Accounts) }

// SymbolName returns the name of symbol id: "SYM" and the id.
func (c Config) SymbolName(id uint32) string { return "SYM" + strconv.FormatUint(uint64(id), 10) }

// SymbolID returns the id of the symbol named name ("SYM3" is 3), or an
// error if c has no such symbol.
func (c Config) SymbolID(name string) (uint32, error) {
	digits, ok := strings.CutPrefix(name, "SYM")
	id, err := strconv.ParseUint(digits, 10, 32)
	if !ok || err != nil || digits != strconv.FormatUint(id, 10) || id >= uint64(c.Symbols) {
		return 0, fmt.Errorf("venue: unknown symbol %q: want SYM0 to SYM%d", name, c.Symbols-1)
	}
	return uint32(id), nil
}

// matchingConfig is matching's configuration for c.
func (c Config) matchingConfig() matching.Config {
	syms := make([]matching.SymbolConfig, c.Symbols)
	for i := range syms {
		syms[i] = matching.SymbolConfig{ID: uint32(i), Name: c.SymbolName(uint32(i)), Tick: c.Tick, MinPrice: c.Tick, MaxPrice: c.MaxPrice}
	}
	return matching.Config{Symbols: syms, STP: c.STP, Orders: c.MaxOrders + c.MaxInFlight}
}

// riskConfig is risk's configuration for c: one reference price per
// symbol at StartPrice, following the last trade.
func (c Config) riskConfig() risk.Config {
	refs := make([]int64, c.Symbols)
	for i := range refs {
		refs[i] = c.StartPrice
	}
	return risk.Config{
		Accounts: c.Accounts + 1, Symbols: c.Symbols, Defaults: c.Limits,
		References: refs, FollowLastTrade: true,
		MaxOrders: c.MaxOrders, MaxInFlight: c.MaxInFlight,
	}
}

// settlementConfig is settlement's configuration for c: trading accounts
// funded, the fee account empty.
func (c Config) settlementConfig() settlement.Config {
	n := c.Accounts + 1
	cash := make([]int64, n)
	hold := make([]int64, n*c.Symbols)
	for a := range c.Accounts {
		cash[a] = c.Cash
		for s := range c.Symbols {
			hold[a*c.Symbols+s] = c.Holding
		}
	}
	return settlement.Config{
		Accounts: n, Symbols: c.Symbols, Cash: cash, Holdings: hold,
		MakerFeeBps: c.MakerFeeBps, TakerFeeBps: c.TakerFeeBps, FeeAccount: c.FeeAccount(),
		MaxOrders: c.MaxOrders, MaxInFlight: c.MaxInFlight,
	}
}
