package circuitbreaker

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig is wrapped by every error that New and NewOverload return
// for a bad configuration.
var ErrInvalidConfig = errors.New("circuitbreaker: invalid config")

// Forever is the resume instant of a halt that lasts until an explicit
// Resume or the next StartDay.
const Forever int64 = 1<<63 - 1

// UntilResumed as a halt duration makes a level, a band or an operator's
// halt last until an explicit Resume or the next StartDay.
const UntilResumed time.Duration = -1

// MaxBandBps is the widest price band: 100 % either side of the reference.
const MaxBandBps = 10_000

// ReferenceMode says where a symbol's band reference price comes from.
type ReferenceMode uint8

const (
	// ReferenceLastTrade makes the band dynamic: every committed trade
	// moves the reference to its price (while the symbol is not halted; the
	// first trade, or SetReference, sets it when there is none), and
	// a trip moves it to the price that tripped, so that trading resumes
	// around the level the market was reaching for.
	ReferenceLastTrade ReferenceMode = iota
	// ReferenceFixed keeps the reference where SetReference put it (a
	// static band, for example around the previous close) or, until one is
	// set, at the first committed trade.
	ReferenceFixed
)

// String returns "last_trade" or "fixed".
func (m ReferenceMode) String() string {
	switch m {
	case ReferenceLastTrade:
		return "last_trade"
	case ReferenceFixed:
		return "fixed"
	}
	return fmt.Sprintf("reference_mode(%d)", uint8(m))
}

// Band is one symbol's price band. A trade price p trips the symbol when
// |p - ref| > floor(ref × WidthBps / 10 000), ref being the reference price.
type Band struct {
	// WidthBps is the half-width of the band in basis points of the
	// reference (1 bp = 0.01 %), in [0, MaxBandBps]. Zero disables the band.
	WidthBps int64
	// Halt is how long a trip halts the symbol: positive, or UntilResumed.
	Halt time.Duration
	// Reference says how the reference price moves.
	Reference ReferenceMode
}

// Level is one market-wide halt level: when the market index (see the
// package documentation) has moved by at least MoveBps from the day's open,
// up or down, the whole market halts for Halt. Each level trips at most once
// a day.
type Level struct {
	MoveBps int64
	Halt    time.Duration
}

// Config configures a Breaker.
type Config struct {
	// Symbols is the number of symbols with bands and a place in the index:
	// ids 0 to Symbols-1. Commands for other ids are subject to market-wide
	// halts only.
	Symbols int
	// Band applies to every symbol without an entry in SymbolBands.
	Band Band
	// SymbolBands overrides Band for particular symbols.
	SymbolBands map[uint32]Band
	// Levels are the market-wide levels in strictly increasing MoveBps
	// order. None disables market-wide trips (operator halts still work).
	Levels []Level
	// MaxInFlight bounds the transactions tracked at once; Begin answers
	// engine.ReasonBackpressure beyond it. Size it to the coordinator's
	// window of in-flight transactions.
	MaxInFlight int
}

// DefaultConfig returns a configuration for symbols symbols: a dynamic band
// of 10 % around the last trade with a 5-minute halt, and index levels of
// 10 %, 15 % and 20 % halting for 45 minutes, 1 hour 45 minutes and the rest
// of the day, as index-based market-wide breakers commonly do.
func DefaultConfig(symbols int) Config {
	return Config{
		Symbols: symbols,
		Band:    Band{WidthBps: 1_000, Halt: 5 * time.Minute, Reference: ReferenceLastTrade},
		Levels: []Level{
			{MoveBps: 1_000, Halt: 45 * time.Minute},
			{MoveBps: 1_500, Halt: 105 * time.Minute},
			{MoveBps: 2_000, Halt: UntilResumed},
		},
		MaxInFlight: 4096,
	}
}

// maxSymbols bounds Config.Symbols so that per-symbol state stays sane.
const maxSymbols = 1 << 24

// maxInFlight bounds Config.MaxInFlight (the tracker's index is int32).
const maxInFlight = 1 << 24

func (c *Config) validate() error {
	if c.Symbols < 0 || c.Symbols > maxSymbols {
		return fmt.Errorf("%w: Symbols = %d, want 0 to %d", ErrInvalidConfig, c.Symbols, maxSymbols)
	}
	if c.MaxInFlight <= 0 || c.MaxInFlight > maxInFlight {
		return fmt.Errorf("%w: MaxInFlight = %d, want 1 to %d", ErrInvalidConfig, c.MaxInFlight, maxInFlight)
	}
	if err := c.Band.validate(); err != nil {
		return fmt.Errorf("%w: Band: %w", ErrInvalidConfig, err)
	}
	for sym, band := range c.SymbolBands {
		if int64(sym) >= int64(c.Symbols) {
			return fmt.Errorf("%w: SymbolBands has symbol %d, outside 0 to Symbols-1 = %d", ErrInvalidConfig, sym, c.Symbols-1)
		}
		if err := band.validate(); err != nil {
			return fmt.Errorf("%w: SymbolBands[%d]: %w", ErrInvalidConfig, sym, err)
		}
	}
	prev := int64(0)
	for i, l := range c.Levels {
		if l.MoveBps <= prev || l.MoveBps > maxMoveBps {
			return fmt.Errorf("%w: Levels[%d].MoveBps = %d, want more than the previous level (%d) and at most %d",
				ErrInvalidConfig, i, l.MoveBps, prev, maxMoveBps)
		}
		if err := validHalt(l.Halt); err != nil {
			return fmt.Errorf("%w: Levels[%d]: %w", ErrInvalidConfig, i, err)
		}
		prev = l.MoveBps
	}
	return nil
}

func (b Band) validate() error {
	if b.WidthBps < 0 || b.WidthBps > MaxBandBps {
		return fmt.Errorf("WidthBps = %d, want 0 (no band) to %d", b.WidthBps, MaxBandBps)
	}
	if b.Reference != ReferenceLastTrade && b.Reference != ReferenceFixed {
		return fmt.Errorf("Reference = %v, want ReferenceLastTrade or ReferenceFixed", b.Reference)
	}
	if b.WidthBps == 0 {
		return nil
	}
	return validHalt(b.Halt)
}

func validHalt(d time.Duration) error {
	if d <= 0 && d != UntilResumed {
		return fmt.Errorf("halt duration %v, want a positive duration or UntilResumed", d)
	}
	return nil
}

// resumeAt returns the instant a halt of duration d starting at now ends,
// saturating at Forever.
func resumeAt(now int64, d time.Duration) int64 {
	if d == UntilResumed || now > Forever-int64(d) {
		return Forever
	}
	return now + int64(d)
}
