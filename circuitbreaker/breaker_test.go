package circuitbreaker

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
)

func newBreaker(t *testing.T, cfg Config) (*Breaker, *fakeTable) {
	t.Helper()
	ft := newFakeTable()
	b, err := New(cfg, ft)
	must.NoError(t, err)
	return b, ft
}

func TestConfigValidation(t *testing.T) {
	good := DefaultConfig(4)
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"no symbols", func(c *Config) { c.Symbols = 0 }, true},
		{"no levels", func(c *Config) { c.Levels = nil }, true},
		{"band disabled without halt", func(c *Config) { c.Band = Band{} }, true},
		{"band until resumed", func(c *Config) { c.Band.Halt = UntilResumed }, true},
		{"negative symbols", func(c *Config) { c.Symbols = -1 }, false},
		{"zero in flight", func(c *Config) { c.MaxInFlight = 0 }, false},
		{"negative band", func(c *Config) { c.Band.WidthBps = -1 }, false},
		{"band over 100 %", func(c *Config) { c.Band.WidthBps = MaxBandBps + 1 }, false},
		{"band without halt", func(c *Config) { c.Band.Halt = 0 }, false},
		{"negative halt", func(c *Config) { c.Band.Halt = -2 }, false},
		{"bad reference mode", func(c *Config) { c.Band.Reference = 7 }, false},
		{"override outside symbols", func(c *Config) { c.SymbolBands = map[uint32]Band{4: c.Band} }, false},
		{"bad override", func(c *Config) { c.SymbolBands = map[uint32]Band{1: {WidthBps: 5, Halt: 0}} }, false},
		{"levels not increasing", func(c *Config) { c.Levels = []Level{{1000, time.Minute}, {1000, time.Minute}} }, false},
		{"level zero", func(c *Config) { c.Levels = []Level{{0, time.Minute}} }, false},
		{"level without halt", func(c *Config) { c.Levels = []Level{{100, 0}} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			cfg.Levels = append([]Level(nil), good.Levels...)
			tt.edit(&cfg)
			_, err := New(cfg, newFakeTable())
			if tt.ok {
				must.NoError(t, err)
				return
			}
			must.ErrorIs(t, err, ErrInvalidConfig)
			t.Log(err)
		})
	}
	_, err := New(good, nil)
	must.ErrorIs(t, err, ErrInvalidConfig)
}

func TestBands(t *testing.T) {
	tests := []struct {
		name      string
		band      Band
		ref       int64 // 0: no reference set
		price     int64
		trip      bool
		low, high int64
	}{
		{"inside", Band{1000, time.Minute, ReferenceFixed}, 10_000, 10_500, false, 0, 0},
		{"upper bound inclusive", Band{1000, time.Minute, ReferenceFixed}, 10_000, 11_000, false, 0, 0},
		{"above", Band{1000, time.Minute, ReferenceFixed}, 10_000, 11_001, true, 9_000, 11_000},
		{"lower bound inclusive", Band{1000, time.Minute, ReferenceFixed}, 10_000, 9_000, false, 0, 0},
		{"below", Band{1000, time.Minute, ReferenceFixed}, 10_000, 8_999, true, 9_000, 11_000},
		{"width rounds down", Band{1000, time.Minute, ReferenceFixed}, 333, 367, true, 300, 366},
		{"width rounds down, inside", Band{1000, time.Minute, ReferenceFixed}, 333, 366, false, 0, 0},
		{"one bp", Band{1, time.Minute, ReferenceFixed}, 1_000_000, 1_000_101, true, 999_900, 1_000_100},
		{"narrow band on a cheap symbol", Band{1, time.Minute, ReferenceFixed}, 100, 101, true, 100, 100},
		{"zero price", Band{1000, time.Minute, ReferenceFixed}, 100, 0, true, 90, 110},
		{"negative price", Band{MaxBandBps, time.Minute, ReferenceFixed}, 100, math.MinInt64, true, 0, 200},
		{"100 % band at max price", Band{MaxBandBps, time.Minute, ReferenceFixed}, math.MaxInt64, 1, false, 0, 0},
		{"huge price", Band{1000, time.Minute, ReferenceFixed}, 1, math.MaxInt64, true, 1, 1},
		{"band disabled", Band{0, 0, ReferenceFixed}, 100, 1_000_000, false, 0, 0},
		{"no reference yet", Band{1000, time.Minute, ReferenceFixed}, 0, 1_000_000, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Symbols: 2, Band: tt.band, MaxInFlight: 8}
			b, ft := newBreaker(t, cfg)
			if tt.ref != 0 {
				must.NoError(t, b.SetReference(1, tt.ref))
			}
			const tx, now = 7, 1_000
			r, _ := b.Begin(tx, newOrder(1, tt.price), now)
			must.Equal(t, engine.ReasonNone, r)
			rep := b.CheckFills(tx, outcome(1, tt.price), now)
			if !tt.trip {
				must.Nil(t, rep)
				must.True(t, ft.commit(tx))
				return
			}
			must.NotNil(t, rep)
			check.Equal(t, SymbolScope(1), rep.Scope)
			check.Equal(t, CauseBand, rep.Cause)
			check.Equal(t, engine.TxID(tx), rep.Tx)
			check.Equal(t, tt.price, rep.Price)
			check.Equal(t, tt.ref, rep.Reference)
			check.Equal(t, tt.band.WidthBps, rep.BandBps)
			check.Equal(t, [2]int64{tt.low, tt.high}, [2]int64{rep.Low, rep.High})
			check.Equal(t, []engine.TxID{tx}, rep.Aborted, "the tripping transaction is aborted")
			check.Empty(t, rep.Completed)
			check.False(t, ft.commit(tx), "the coordinator's commit CAS must lose")
			check.Equal(t, engine.ReasonCircuitBreaker, ft.reasons[tx])
			halted, _ := b.Halted(SymbolScope(1), now)
			check.True(t, halted)
			halted, _ = b.Halted(SymbolScope(0), now)
			check.False(t, halted, "other symbols trade on")
		})
	}
}

func TestSymbolBandsOverride(t *testing.T) {
	cfg := Config{Symbols: 2, Band: Band{500, time.Minute, ReferenceFixed}, MaxInFlight: 8,
		SymbolBands: map[uint32]Band{1: {2000, time.Hour, ReferenceFixed}}}
	b, _ := newBreaker(t, cfg)
	must.NoError(t, b.SetReference(0, 1000))
	must.NoError(t, b.SetReference(1, 1000))
	b.Begin(1, newOrder(0, 1100), 0)
	b.Begin(2, newOrder(1, 1100), 0)
	must.Nil(t, b.CheckFills(2, outcome(1, 1100), 0), "20 %% band on symbol 1")
	rep := b.CheckFills(1, outcome(0, 1100), 0)
	must.NotNil(t, rep, "5 %% band on symbol 0")
	check.Equal(t, time.Minute, rep.Halt)
	check.Equal(t, int64(time.Minute), rep.ResumesAt)
}

func TestMultipleFillsWorstPriceTrips(t *testing.T) {
	b, ft := newBreaker(t, Config{Symbols: 1, Band: Band{1000, time.Minute, ReferenceFixed}, MaxInFlight: 8})
	must.NoError(t, b.SetReference(0, 100))
	b.Begin(1, newOrder(0, 200), 0)
	rep := b.CheckFills(1, outcome(0, 100, 105, 110, 111, 120), 0)
	must.NotNil(t, rep)
	check.Equal(t, int64(111), rep.Price, "the first fill outside the band trips")
	check.False(t, ft.commit(1))
}

// levelConfig is three symbols at 1000 with 10/15/20 % levels and no bands.
func levelBreaker(t *testing.T) (*Breaker, *fakeTable) {
	cfg := DefaultConfig(3)
	cfg.Band = Band{}
	b, ft := newBreaker(t, cfg)
	for sym := range uint32(3) {
		must.NoError(t, b.SetReference(sym, 1000))
	}
	b.StartDay()
	return b, ft
}

func TestLevels(t *testing.T) {
	const m = int64(time.Minute)
	tests := []struct {
		name      string
		committed [3]int64 // last prices committed first (0: no trade)
		check     int64    // then a fill of symbol 0 at this price
		level     int      // -1: no trip
		index     int64
		resumes   int64
	}{
		{"quiet", [3]int64{1010, 990, 0}, 1050, -1, 0, 0},
		{"just below 10 %", [3]int64{0, 1100, 1100}, 1099, -1, 0, 0},
		{"10 % down", [3]int64{0, 900, 900}, 900, 0, -1000, 45 * m},
		{"10 % up", [3]int64{0, 1100, 1100}, 1100, 0, 1000, 45 * m},
		{"one symbol carries it", [3]int64{}, 1300, 0, 1000, 45 * m},
		{"straight to 15 %", [3]int64{0, 850, 850}, 850, 1, -1500, 105 * m},
		{"straight to 20 %", [3]int64{0, 800, 800}, 700, 2, -2333, Forever},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ft := levelBreaker(t)
			tx := engine.TxID(1)
			for sym, p := range tt.committed {
				if p != 0 {
					b.Committed(tx, outcome(uint32(sym), p), 0) // set the scene without checks
					tx++
				}
			}
			b.Begin(tx, newOrder(0, tt.check), 0)
			b.Begin(tx+1, newOrder(2, 1000), 0) // in flight on another symbol
			rep := b.CheckFills(tx, outcome(0, tt.check), 0)
			if tt.level < 0 {
				must.Nil(t, rep)
				return
			}
			must.NotNil(t, rep)
			check.Equal(t, MarketScope(), rep.Scope)
			check.Equal(t, CauseLevel, rep.Cause)
			check.Equal(t, tt.level, rep.Level)
			check.Equal(t, tt.index, rep.IndexBps)
			check.Equal(t, tt.resumes, rep.ResumesAt)
			check.Equal(t, []engine.TxID{tx, tx + 1}, rep.Aborted, "a market halt aborts every symbol's transactions")
			check.False(t, ft.commit(tx+1), "its commit CAS loses")
			r, until := b.Begin(tx+2, newOrder(1, 1000), 1)
			check.Equal(t, engine.ReasonHalted, r)
			check.Equal(t, tt.resumes, until)
		})
	}
}

func TestLevelsTripOnceADay(t *testing.T) {
	const m = int64(time.Minute)
	b, ft := levelBreaker(t)
	trade(t, b, ft, 1, 1, 900, 0)
	trade(t, b, ft, 2, 2, 900, 0)
	b.Begin(3, newOrder(0, 900), 0)
	rep := b.CheckFills(3, outcome(0, 900), 0)
	must.NotNil(t, rep)
	must.Equal(t, 0, rep.Level)
	// After the 45-minute halt, the index is still down 10 %: level 1 does
	// not trip again.
	now := 45 * m
	trade(t, b, ft, 4, 0, 890, now)
	check.Equal(t, int64(-1033), b.Index(), "(-1100 - 1000 - 1000) / 3")
	// Down 15 %: level 2.
	b.Begin(5, newOrder(0, 650), now)
	rep = b.CheckFills(5, outcome(0, 650), now)
	must.NotNil(t, rep)
	check.Equal(t, 1, rep.Level)
	check.Equal(t, now+105*m, rep.ResumesAt)
	// A new day re-arms every level and resets the index.
	b.StartDay()
	check.Zero(t, b.Index())
	halted, _ := b.Halted(MarketScope(), now+1)
	check.False(t, halted, "StartDay ends the market halt")
	b.Begin(6, newOrder(0, 600), now+1)
	rep = b.CheckFills(6, outcome(0, 600), now+1)
	must.NotNil(t, rep, "opening 890, 900, 900: symbol 0 at 600 moves the index")
	check.Equal(t, 0, rep.Level)
	check.Equal(t, int64(-3258/3), rep.IndexBps)
}

func TestHaltDurationsAndResume(t *testing.T) {
	const m = int64(time.Minute)
	cfg := Config{Symbols: 2, Band: Band{1000, 5 * time.Minute, ReferenceFixed}, MaxInFlight: 8}
	b, _ := newBreaker(t, cfg)
	must.NoError(t, b.SetReference(0, 100))
	t0 := 10 * m
	b.Begin(1, newOrder(0, 120), t0)
	must.NotNil(t, b.CheckFills(1, outcome(0, 120), t0))
	tests := []struct {
		name  string
		cmd   *engine.Command
		now   int64
		want  engine.Reason
		until int64
	}{
		{"new order at the trip", newOrder(0, 100), t0, engine.ReasonHalted, t0 + 5*m},
		{"new order one ns before resume", newOrder(0, 100), t0 + 5*m - 1, engine.ReasonHalted, t0 + 5*m},
		{"replace during halt", &engine.Command{Kind: engine.Replace, Symbol: 0, Price: 100, Qty: 1}, t0 + m, engine.ReasonHalted, t0 + 5*m},
		{"cancel during halt", &engine.Command{Kind: engine.Cancel, Symbol: 0, OrderID: 1}, t0 + m, engine.ReasonNone, 0},
		{"other symbol during halt", newOrder(1, 100), t0 + m, engine.ReasonNone, 0},
		{"new order at resume", newOrder(0, 100), t0 + 5*m, engine.ReasonNone, 0},
	}
	tx := engine.TxID(10)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx++
			r, until := b.Begin(tx, tt.cmd, tt.now)
			check.Equal(t, tt.want, r)
			check.Equal(t, tt.until, until)
			b.Aborted(tx)
		})
	}
}

// TestHaltEndsOnEachCallersClock: goroutines read their clocks before they
// call, so calls reach the breaker out of clock order. One whose clock has
// passed the resume instant must not lift the halt for a later call whose
// clock has not (the concurrent test caught a commit begun during a halt
// that way, under load).
func TestHaltEndsOnEachCallersClock(t *testing.T) {
	b, _ := newBreaker(t, Config{Symbols: 1, MaxInFlight: 2})
	_, err := b.Halt(MarketScope(), 100, 50)
	must.NoError(t, err)
	r, _ := b.Admit(newOrder(0, 100), 150)
	check.Equal(t, engine.ReasonNone, r, "at the resume instant")
	r, until := b.Admit(newOrder(0, 100), 149)
	check.Equal(t, engine.ReasonHalted, r, "one ns before it, called after a caller at the resume instant")
	check.Equal(t, int64(150), until)
	halted, _ := b.Halted(MarketScope(), 149)
	check.True(t, halted)
}

func TestCancelsDuringHaltAreNotTrackedNorAborted(t *testing.T) {
	b, ft := newBreaker(t, Config{Symbols: 1, MaxInFlight: 2})
	b.Begin(1, newOrder(0, 100), 0)
	cancel := &engine.Command{Kind: engine.Cancel, Symbol: 0, OrderID: 99}
	for tx := engine.TxID(2); tx < 10; tx++ {
		r, _ := b.Begin(tx, cancel, 0) // more cancels than MaxInFlight: none tracked
		must.Equal(t, engine.ReasonNone, r)
	}
	rep, err := b.Halt(MarketScope(), 0, time.Minute)
	must.NoError(t, err)
	check.Equal(t, []engine.TxID{1}, rep.Aborted)
	r, _ := b.Begin(20, cancel, 1)
	check.Equal(t, engine.ReasonNone, r, "cancels go through a halted market")
	check.True(t, ft.commit(20), "and a trip never aborted them")
}

func TestTripReportSets(t *testing.T) {
	b, ft := newBreaker(t, Config{Symbols: 3, Band: Band{1000, time.Minute, ReferenceFixed}, MaxInFlight: 16})
	must.NoError(t, b.SetReference(1, 1000))
	for tx := engine.TxID(1); tx <= 9; tx++ {
		r, _ := b.Begin(tx, newOrder(uint32(tx%3), 1000), 0)
		must.Equal(t, engine.ReasonNone, r)
	}
	// Symbol 1 holds 1, 4, 7; 4 is past its commit point; 7 voted NO and is
	// already aborting.
	must.True(t, ft.commit(4))
	ft.Abort(7, engine.ReasonInsufficientCash)
	b.Committed(9, outcome(0), 0) // done before the trip: not in flight
	rep := b.CheckFills(1, outcome(1, 2000), 5)
	must.NotNil(t, rep)
	check.Equal(t, []engine.TxID{1, 7}, rep.Aborted)
	check.Equal(t, []engine.TxID{4}, rep.Completed)
	check.Equal(t, 3, rep.InFlight())
	check.Equal(t, engine.ReasonInsufficientCash, ft.reasons[7], "an earlier abort keeps its reason")
	check.True(t, ft.commit(3), "symbol 0 is untouched")
	check.Equal(t, 8, b.InFlight(), "the trip does not untrack: the coordinator finishes them")

	rep, err := b.Halt(MarketScope(), 6, UntilResumed)
	must.NoError(t, err)
	check.Equal(t, []engine.TxID{1, 2, 5, 6, 7, 8}, rep.Aborted)
	check.Equal(t, []engine.TxID{3, 4}, rep.Completed)
	check.Equal(t, Forever, rep.ResumesAt)
	check.Len(t, b.Reports(), 2)
	t.Log(rep)
}

func TestTripAbortsUntrackedTrippingTx(t *testing.T) {
	b, ft := newBreaker(t, Config{Symbols: 2, Band: Band{1000, time.Minute, ReferenceFixed}, MaxInFlight: 4})
	must.NoError(t, b.SetReference(1, 100))
	b.Begin(2, newOrder(0, 100), 0) // tracked under symbol 0, yet trades symbol 1
	rep := b.CheckFills(2, outcome(1, 200), 0)
	must.NotNil(t, rep)
	check.Equal(t, []engine.TxID{2}, rep.Aborted)
	rep = b.CheckFills(3, outcome(0, 200), 0) // symbol 0 has no reference: no band
	check.Nil(t, rep)
	must.NoError(t, b.SetReference(0, 100))
	rep = b.CheckFills(3, outcome(0, 200), 0) // never begun
	must.NotNil(t, rep)
	check.Equal(t, []engine.TxID{2, 3}, rep.Aborted)
	check.False(t, ft.commit(3))
}

func TestReferenceModes(t *testing.T) {
	for _, mode := range []ReferenceMode{ReferenceLastTrade, ReferenceFixed} {
		t.Run(mode.String(), func(t *testing.T) {
			b, ft := newBreaker(t, Config{Symbols: 1, Band: Band{1000, time.Minute, mode}, MaxInFlight: 8})
			trade(t, b, ft, 1, 0, 100, 0) // the first trade sets the reference
			trade(t, b, ft, 2, 0, 110, 0)
			// Dynamic: 121 is within 10 % of 110. Fixed: outside 10 % of 100.
			b.Begin(3, newOrder(0, 121), 0)
			b.Begin(4, newOrder(0, 98), 0)
			rep := b.CheckFills(3, outcome(0, 121), 0)
			if mode == ReferenceFixed {
				must.NotNil(t, rep)
				check.Equal(t, int64(100), rep.Reference)
				return
			}
			must.Nil(t, rep)
			must.True(t, ft.commit(3))
			rep = b.CheckFills(4, outcome(0, 98), 0) // 98 is outside 10 % of 110 (bounds 99 to 121)
			must.NotNil(t, rep)
			check.Equal(t, int64(110), rep.Reference)
			check.Equal(t, []engine.TxID{4}, rep.Aborted)
			check.Equal(t, []engine.TxID{3}, rep.Completed)
			b.Committed(3, outcome(0, 121), 1) // completes during the halt: reference stays at the trip price
			b.Aborted(4)
			b.Begin(5, newOrder(0, 90), int64(time.Minute))
			check.Nil(t, b.CheckFills(5, outcome(0, 90), int64(time.Minute)), "resumes around the trip price 98, not 121")
		})
	}
}

func TestOperatorCalls(t *testing.T) {
	b, _ := newBreaker(t, Config{Symbols: 2, MaxInFlight: 4})
	_, err := b.Halt(SymbolScope(2), 0, time.Minute)
	check.ErrorIs(t, err, ErrUnknownSymbol)
	_, err = b.Halt(SymbolScope(1), 0, 0)
	check.ErrorIs(t, err, ErrBadDuration)
	check.ErrorIs(t, b.Resume(SymbolScope(1), 0), ErrNotHalted)
	check.ErrorIs(t, b.SetReference(1, 0), ErrBadPrice)
	check.ErrorIs(t, b.SetReference(5, 10), ErrUnknownSymbol)

	rep, err := b.Halt(SymbolScope(1), 0, UntilResumed)
	must.NoError(t, err)
	check.Equal(t, CauseOperator, rep.Cause)
	_, err = b.Halt(SymbolScope(1), 1, time.Minute)
	check.ErrorIs(t, err, ErrAlreadyHalted)
	r, until := b.Begin(1, newOrder(1, 10), math.MaxInt64-1)
	check.Equal(t, engine.ReasonHalted, r)
	check.Equal(t, Forever, until)
	must.NoError(t, b.Resume(SymbolScope(1), 2))
	r, _ = b.Begin(1, newOrder(1, 10), 2)
	check.Equal(t, engine.ReasonNone, r)

	// A market halt near the end of time saturates instead of wrapping.
	rep, err = b.Halt(MarketScope(), math.MaxInt64-5, time.Hour)
	must.NoError(t, err)
	check.Equal(t, Forever, rep.ResumesAt)
	var e error = err
	check.False(t, errors.Is(e, ErrAlreadyHalted))
}

func TestBackpressureWhenTrackerFull(t *testing.T) {
	b, ft := newBreaker(t, Config{Symbols: 1, MaxInFlight: 2})
	for tx := engine.TxID(1); tx <= 2; tx++ {
		r, _ := b.Begin(tx, newOrder(0, 1), 0)
		must.Equal(t, engine.ReasonNone, r)
	}
	r, _ := b.Begin(3, newOrder(0, 1), 0)
	check.Equal(t, engine.ReasonBackpressure, r)
	check.Equal(t, engine.ReasonBackpressure, ft.reasons[3], "an untrackable transaction is aborted, not let loose")
	b.Aborted(1)
	r, _ = b.Begin(4, newOrder(0, 1), 0)
	check.Equal(t, engine.ReasonNone, r)
	check.Panics(t, func() { b.Begin(4, newOrder(0, 1), 0) }, "a transaction id begun twice is a coordinator bug")
}

func TestAdmitThenBegin(t *testing.T) {
	b, ft := newBreaker(t, Config{Symbols: 2, MaxInFlight: 4})
	cmd := newOrder(1, 100)
	r, _ := b.Admit(cmd, 0)
	must.Equal(t, engine.ReasonNone, r)
	// The halt lands between Admit and Begin (the coordinator's Propose).
	rep, err := b.Halt(SymbolScope(1), 1, time.Minute)
	must.NoError(t, err)
	check.Empty(t, rep.Aborted, "tx 5 was not tracked yet")
	r, until := b.Begin(5, cmd, 2)
	check.Equal(t, engine.ReasonHalted, r)
	check.Equal(t, 1+int64(time.Minute), until)
	check.Equal(t, engine.Abort, ft.slots[5], "Begin aborts it by CAS")
	check.Equal(t, engine.ReasonHalted, ft.reasons[5])
	check.Equal(t, 0, b.InFlight())
	r, until = b.Admit(cmd, 3)
	check.Equal(t, engine.ReasonHalted, r)
	check.Equal(t, 1+int64(time.Minute), until)
	r, _ = b.Admit(&engine.Command{Kind: engine.Cancel, Symbol: 1}, 3)
	check.Equal(t, engine.ReasonNone, r)
	r, _ = b.Admit(newOrder(0, 100), 3)
	check.Equal(t, engine.ReasonNone, r)
}

// scriptedDecider answers Abort from a table of canned answers.
type scriptedDecider map[engine.TxID]struct {
	d   engine.Decision
	err error
}

func (s scriptedDecider) Abort(tx engine.TxID, r engine.Reason) (engine.Decision, engine.Reason, error) {
	a := s[tx]
	return a.d, r, a.err
}

func TestTripDeciderErrors(t *testing.T) {
	dec := scriptedDecider{
		1: {engine.Abort, nil},
		2: {engine.Commit, nil},
		3: {engine.Undecided, engine.ErrNotInTable}, // finished; slot reused
		4: {engine.Undecided, engine.ErrCorruptSlot},
		5: {engine.Undecided, nil}, // a decider that breaks its contract
	}
	b, err := New(Config{Symbols: 1, MaxInFlight: 8}, dec)
	must.NoError(t, err)
	for tx := engine.TxID(1); tx <= 5; tx++ {
		b.Begin(tx, newOrder(0, 1), 0)
	}
	rep, err := b.Halt(MarketScope(), 0, time.Minute)
	must.NoError(t, err)
	check.Equal(t, []engine.TxID{1}, rep.Aborted)
	check.Equal(t, []engine.TxID{2}, rep.Completed)
	check.Equal(t, []engine.TxID{4, 5}, rep.Unresolved)
	check.ErrorIs(t, rep.Err, engine.ErrCorruptSlot)
	check.Equal(t, 4, rep.InFlight())
	t.Log(rep)
}

func TestReportString(t *testing.T) {
	r := Report{Scope: SymbolScope(3), Cause: CauseBand, TriggeredAt: 5, ResumesAt: 65, Halt: 60,
		Tx: 9, Price: 120, Reference: 100, BandBps: 1000, Low: 90, High: 110,
		Aborted: []engine.TxID{9}, Completed: []engine.TxID{8}}
	check.Equal(t, "halt symbol 3 at 5 by band (tx 9 price 120 outside [90, 110]: reference 100 ± 1000 bps), "+
		"resumes at 65 (60ns); in flight 2: aborted [9], completed [8]", r.String())
}
