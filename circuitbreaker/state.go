package circuitbreaker

import (
	"errors"
	"fmt"
	"math"
)

// ErrBadState is wrapped by every *StateError: a State that cannot be what
// a Breaker took, or an encoding of one that does not decode.
var ErrBadState = errors.New("circuitbreaker: bad state")

// ErrStateMismatch is returned by Restore for a State taken by a Breaker
// of another configuration: another symbol count, or more market-wide
// levels tripped than this one has.
var ErrStateMismatch = errors.New("circuitbreaker: state does not fit this breaker")

// StateError says what is wrong with a State or its encoding: Field names
// the part (for example "symbols[3].halt.cause" or "checksum") and Problem
// what is wrong with it. It wraps ErrBadState.
type StateError struct {
	Field   string
	Problem string
}

// Error says which field is wrong and how.
func (e *StateError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrBadState, e.Field, e.Problem)
}

// Unwrap returns ErrBadState.
func (e *StateError) Unwrap() error { return ErrBadState }

func stateErr(field, format string, args ...any) *StateError {
	return &StateError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// State is what a Breaker's successor needs to carry on where it left off:
// the active halts (when each ends and why it began), every symbol's band
// reference (re-anchored by trips and SetReference), its last trade and
// opening reference (the market index), and how many market-wide levels
// tripped today. In-flight transactions and trip reports are not part of
// it: a successor coordinator settles the in-flight ones from the decision
// table, and reports belong to the process that tripped.
//
// Every instant in a State is on one clock, the clock of At. Breaker.State
// takes it on the breaker's clock; Shift moves it to another one, for
// example a clock that the writing and the restoring processes share.
type State struct {
	// At is the instant the state was taken.
	At int64
	// Market is the market-wide halt.
	Market HaltState
	// LevelsTripped is the number of market-wide levels tripped today.
	LevelsTripped int
	// Symbols holds each configured symbol's state, by symbol id.
	Symbols []SymbolState
}

// HaltState is one scope's halt in a State. The zero value is no halt.
type HaltState struct {
	// Active is true for a halt in force at State.At.
	Active bool
	// ResumesAt is the instant the halt ends (after State.At), or Forever
	// for a halt that lasts until Resume or StartDay; zero when not Active.
	ResumesAt int64
	// Cause says why the halt began; zero when not Active.
	Cause Cause
}

// SymbolState is one symbol's part of a State. Prices are zero until known.
type SymbolState struct {
	// Reference is the band's reference price.
	Reference int64
	// Open is the day's opening reference in the market index.
	Open int64
	// Last is the last committed trade price (Open until one trades);
	// zero exactly when Open is.
	Last int64
	// Halt is the symbol's own halt (a market halt covers it too).
	Halt HaltState
}

// State returns the breaker's state at now, for a successor to Restore:
// a halt that has ended by now is not in it.
func (b *Breaker) State(now int64) State {
	var s State
	b.StateInto(&s, now)
	return s
}

// StateInto is State into s, reusing s.Symbols when it has the room: a
// coordinator that publishes its state as it trades does not allocate.
func (b *Breaker) StateInto(s *State, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	syms := s.Symbols[:0]
	for i := range b.syms {
		sy := &b.syms[i]
		syms = append(syms, SymbolState{Reference: sy.ref, Open: sy.open, Last: sy.last, Halt: sy.halt.state(now)})
	}
	*s = State{At: now, Market: b.market.state(now), LevelsTripped: b.tripped, Symbols: syms}
}

func (h *halt) state(now int64) HaltState {
	if !h.active(now) {
		return HaltState{}
	}
	return HaltState{Active: true, ResumesAt: h.resumesAt, Cause: h.cause}
}

// Restore replaces the breaker's halts, references, last prices and
// market-wide levels with s, which must be on the breaker's clock (see
// Shift), and returns the number of halts it restored as active. A halt of
// s that has ended by now is not restored. Call it before the breaker
// admits anything: transactions it tracks and reports it made are left as
// they are. A State that fails validation (a *StateError) or was taken by
// a breaker of another configuration (ErrStateMismatch) changes nothing.
func (b *Breaker) Restore(s *State, now int64) (halts int, err error) {
	if err := s.validate(); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(s.Symbols) != len(b.syms) {
		return 0, fmt.Errorf("restore: %w: the state has %d symbols, the breaker %d", ErrStateMismatch, len(s.Symbols), len(b.syms))
	}
	if s.LevelsTripped > len(b.levels) {
		return 0, fmt.Errorf("restore: %w: the state has %d market-wide levels tripped, the breaker %d levels",
			ErrStateMismatch, s.LevelsTripped, len(b.levels))
	}
	b.market = restoreHalt(s.Market, now, &halts)
	b.tripped = s.LevelsTripped
	b.sumMove, b.indexed = 0, 0
	for i := range b.syms {
		ss, sy := &s.Symbols[i], &b.syms[i]
		sy.setRef(ss.Reference)
		sy.open, sy.last, sy.move = ss.Open, ss.Last, 0
		if ss.Open > 0 {
			sy.move = moveBps(ss.Last, ss.Open)
			b.sumMove += sy.move
			b.indexed++
		}
		sy.halt = restoreHalt(ss.Halt, now, &halts)
	}
	return halts, nil
}

func restoreHalt(h HaltState, now int64, n *int) halt {
	if !h.Active || h.ResumesAt <= now {
		return halt{}
	}
	*n++
	return halt{on: true, resumesAt: h.ResumesAt, cause: h.Cause}
}

// Shift adds d to every instant in s (At and each halt's ResumesAt, which
// stays Forever if it is), saturating, so that a State taken on one clock
// reads on another: d is the second clock's reading minus the first's at
// one instant.
func (s *State) Shift(d int64) {
	s.At = satAdd(s.At, d)
	s.Market.shift(d)
	for i := range s.Symbols {
		s.Symbols[i].Halt.shift(d)
	}
}

func (h *HaltState) shift(d int64) {
	if h.Active && h.ResumesAt != Forever {
		h.ResumesAt = min(satAdd(h.ResumesAt, d), Forever-1)
	}
}

func satAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// validate checks that s could have been taken by a Breaker.
func (s *State) validate() error {
	if s.LevelsTripped < 0 || int64(s.LevelsTripped) > math.MaxUint32 {
		return stateErr("levels_tripped", "%d, want 0 to %d", s.LevelsTripped, uint32(math.MaxUint32))
	}
	if len(s.Symbols) > maxSymbols {
		return stateErr("symbols", "%d symbols, want at most %d", len(s.Symbols), maxSymbols)
	}
	if e := s.Market.validate(s.At, CauseLevel); e != nil {
		e.Field = "market" + e.Field
		return e
	}
	for i := range s.Symbols {
		if err := s.Symbols[i].validate(i, s.At); err != nil {
			return err
		}
	}
	return nil
}

// validate checks a halt of a scope whose trips have cause trip (besides
// an operator's halt). The error's Field is relative to the halt's own
// ("", ".cause", ".resumes_at"): the caller prefixes it, so that a valid
// state costs no field names (a coordinator validates every publish).
func (h *HaltState) validate(at int64, trip Cause) *StateError {
	if !h.Active {
		if h.ResumesAt != 0 || h.Cause != 0 {
			return stateErr("", "an inactive halt with resumes_at %d and cause %d, want both zero", h.ResumesAt, h.Cause)
		}
		return nil
	}
	if h.Cause != trip && h.Cause != CauseOperator {
		return stateErr(".cause", "%v, want %v or %v", h.Cause, trip, CauseOperator)
	}
	if h.ResumesAt <= at {
		return stateErr(".resumes_at", "%d, not after the state's instant %d (an ended halt is not active)", h.ResumesAt, at)
	}
	return nil
}

func (ss *SymbolState) validate(i int, at int64) error {
	field := func() string { return fmt.Sprintf("symbols[%d]", i) }
	switch {
	case ss.Reference < 0 || ss.Open < 0 || ss.Last < 0:
		return stateErr(field(), "a negative price (reference %d, open %d, last %d)", ss.Reference, ss.Open, ss.Last)
	case (ss.Open == 0) != (ss.Last == 0):
		return stateErr(field(), "open %d and last %d: want both zero or both positive", ss.Open, ss.Last)
	case ss.Open > 0 && ss.Reference == 0:
		return stateErr(field(), "an opening reference %d without a band reference", ss.Open)
	}
	if e := ss.Halt.validate(at, CauseBand); e != nil {
		e.Field = field() + ".halt" + e.Field
		return e
	}
	return nil
}
