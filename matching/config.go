package matching

import (
	"errors"
	"fmt"
)

// MaxLevels bounds the number of price levels (ticks between a symbol's
// minimum and maximum price, inclusive) of one book. Each level costs 16
// bytes per side up front, which is what makes a price step O(1); a symbol
// that needs a wider range needs a coarser tick.
const MaxLevels = 1 << 20

// STPMode is the self-trade prevention policy: what happens when an incoming
// order would trade with a resting order of the same account.
type STPMode uint8

// Self-trade prevention modes.
const (
	// CancelResting removes the resting order (reported in
	// Outcome.Removed) and lets the incoming order go on matching. At most
	// engine.MaxRemoved resting orders are removed per command; an order
	// that would need more is treated like one that reached MaxFills.
	CancelResting STPMode = iota
	// CancelIncoming stops the incoming order at the first resting order
	// of its own account. If it has not traded yet the command is rejected
	// with engine.ReasonSelfTrade (nothing changes); if it has, its fills
	// stand and its remainder is cancelled (Outcome.Canceled). A FOK order
	// is always rejected.
	CancelIncoming
)

// String returns the mode's name.
func (m STPMode) String() string {
	switch m {
	case CancelResting:
		return "cancel_resting"
	case CancelIncoming:
		return "cancel_incoming"
	}
	return fmt.Sprintf("stpmode(%d)", uint8(m))
}

// SymbolConfig describes one instrument. Prices are integers in minor
// currency units per lot and must be multiples of Tick within
// [MinPrice, MaxPrice].
type SymbolConfig struct {
	ID       uint32
	Name     string // e.g. "SYM0"; for reports only
	Tick     int64
	MinPrice int64
	MaxPrice int64
}

// Levels returns the number of price levels of the symbol's book.
func (s SymbolConfig) Levels() int64 { return (s.MaxPrice-s.MinPrice)/s.Tick + 1 }

// Config configures a Matcher.
type Config struct {
	Symbols []SymbolConfig
	STP     STPMode
	// OnTrade, if set, is called once per trade when its transaction
	// commits (or is applied in replay), in fill order, on the goroutine
	// that calls Commit. It must not call back into the Matcher.
	OnTrade func(Trade)
	// Orders pre-sizes the order pool and id index: the number of live
	// orders (resting plus in flight) the Matcher holds without allocating.
	// Zero means 1<<16.
	Orders int
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("matching: bad config")

func (c *Config) validate() error {
	if len(c.Symbols) == 0 {
		return fmt.Errorf("%w: no symbols", ErrConfig)
	}
	if c.STP > CancelIncoming {
		return fmt.Errorf("%w: unknown STP mode %d", ErrConfig, c.STP)
	}
	if c.Orders < 0 || c.Orders > 1<<30 {
		return fmt.Errorf("%w: Orders %d outside [0, 2^30]", ErrConfig, c.Orders)
	}
	seen := make(map[uint32]bool, len(c.Symbols))
	for _, s := range c.Symbols {
		if seen[s.ID] {
			return fmt.Errorf("%w: symbol id %d (%q) appears twice", ErrConfig, s.ID, s.Name)
		}
		seen[s.ID] = true
		switch {
		case s.Tick <= 0:
			return fmt.Errorf("%w: symbol %d (%q): tick %d must be positive", ErrConfig, s.ID, s.Name, s.Tick)
		case s.MinPrice <= 0 || s.MaxPrice < s.MinPrice:
			return fmt.Errorf("%w: symbol %d (%q): price range [%d, %d] must be positive and not empty",
				ErrConfig, s.ID, s.Name, s.MinPrice, s.MaxPrice)
		case s.MinPrice%s.Tick != 0 || s.MaxPrice%s.Tick != 0:
			return fmt.Errorf("%w: symbol %d (%q): price range [%d, %d] must lie on the tick grid %d",
				ErrConfig, s.ID, s.Name, s.MinPrice, s.MaxPrice, s.Tick)
		case s.Levels() > MaxLevels:
			return fmt.Errorf("%w: symbol %d (%q): %d price levels exceed %d; use a coarser tick or a narrower range",
				ErrConfig, s.ID, s.Name, s.Levels(), MaxLevels)
		}
	}
	return nil
}
