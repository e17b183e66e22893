package circuitbreaker

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// Errors of the operator calls; they are wrapped with the details.
var (
	// ErrAlreadyHalted: Halt of a scope that is halted.
	ErrAlreadyHalted = errors.New("circuitbreaker: already halted")
	// ErrNotHalted: Resume of a scope that is not halted.
	ErrNotHalted = errors.New("circuitbreaker: not halted")
	// ErrUnknownSymbol: a symbol outside 0 to Config.Symbols-1.
	ErrUnknownSymbol = errors.New("circuitbreaker: unknown symbol")
	// ErrBadPrice: a reference price that is not positive.
	ErrBadPrice = errors.New("circuitbreaker: bad price")
	// ErrBadDuration: a halt duration that is neither positive nor
	// UntilResumed.
	ErrBadDuration = errors.New("circuitbreaker: bad halt duration")
)

// halt is the halt state of one scope. A halt ends by itself at resumesAt,
// as each caller's clock reads it: active changes nothing, so a caller
// whose clock reads the end first cannot lift the halt for one whose clock
// reads earlier. cause says why it started, so that a successor restoring
// it (State) can tell.
type halt struct {
	on        bool
	resumesAt int64
	cause     Cause
}

func (h *halt) active(now int64) bool { return h.on && now < h.resumesAt }

// symbol is one symbol's band, index and halt state.
type symbol struct {
	band  Band
	ref   int64 // band reference; 0 until known (no band check)
	width int64 // floor(ref × band.WidthBps / 10 000)
	open  int64 // the day's opening reference; 0 until known (not in the index)
	last  int64 // last committed trade price (open until one trades)
	move  int64 // moveBps(last, open): this symbol's term in the index sum
	halt  halt
}

func (s *symbol) setRef(p int64) {
	s.ref = p
	s.width = bandWidth(p, s.band.WidthBps)
}

// Breaker halts the market or single symbols when prices run away, and
// settles the transactions in flight at the trip by CAS on the decision
// table. All methods are safe for concurrent use; the clock is the caller's
// (now, in nanoseconds, on any monotonic scale).
type Breaker struct {
	mu       sync.Mutex
	dec      Decider
	levels   []Level
	syms     []symbol
	market   halt
	tripped  int   // market levels tripped today
	sumMove  int64 // sum of move over indexed symbols
	indexed  int64 // symbols with an opening reference
	inflight tracker
	reports  []Report
}

// New returns a Breaker for cfg that aborts through dec.
func New(cfg Config, dec Decider) (*Breaker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if dec == nil {
		return nil, fmt.Errorf("%w: nil Decider", ErrInvalidConfig)
	}
	b := &Breaker{
		dec:      dec,
		levels:   slices.Clone(cfg.Levels),
		syms:     make([]symbol, cfg.Symbols),
		inflight: newTracker(cfg.MaxInFlight),
	}
	for i := range b.syms {
		b.syms[i].band = cfg.Band
		if band, ok := cfg.SymbolBands[uint32(i)]; ok {
			b.syms[i].band = band
		}
	}
	return b, nil
}

// Admit is the fast check before the coordinator proposes cmd: a new
// order or a replace for a halted market or symbol is rejected with
// engine.ReasonHalted and the instant trading resumes (Forever: until an
// operator resumes it), without becoming a transaction. Cancels are always
// admitted: a halted market must let people pull their orders.
func (b *Breaker) Admit(cmd *engine.Command, now int64) (reason engine.Reason, resumesAt int64) {
	if cmd.Kind == engine.Cancel {
		return engine.ReasonNone, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if halted, until := b.haltedLocked(cmd.Symbol, now); halted {
		return engine.ReasonHalted, until
	}
	return engine.ReasonNone, 0
}

// Begin tracks transaction tx, just proposed for cmd (its decision slot is
// open), as in flight for cmd's symbol until Committed or Aborted. Call it
// right after the coordinator's Propose, before the PREPAREs are sent.
//
// If the scope was halted since Admit, or MaxInFlight transactions are
// tracked already, Begin aborts tx by CAS with engine.ReasonHalted or
// engine.ReasonBackpressure and returns that reason (and for a halt the
// instant trading resumes): the coordinator's commit CAS will lose, and its
// Result carries the reason. Tracking and the halt check happen under the
// lock that a trip holds, so every transaction of a halted scope is either
// settled by the trip or aborted here. Cancels are not tracked: a cancel
// cannot trade, so a trip neither rejects nor aborts one.
func (b *Breaker) Begin(tx engine.TxID, cmd *engine.Command, now int64) (reason engine.Reason, resumesAt int64) {
	if cmd.Kind == engine.Cancel {
		return engine.ReasonNone, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	halted, until := b.haltedLocked(cmd.Symbol, now)
	switch {
	case halted:
		reason, resumesAt = engine.ReasonHalted, until
	case !b.inflight.add(tx, cmd.Symbol):
		reason = engine.ReasonBackpressure
	default:
		return engine.ReasonNone, 0
	}
	// The coordinator has not sent the PREPAREs, so nothing can have
	// decided tx: an error or a COMMIT means the table is corrupt, and
	// the coordinator meets it at its own CAS.
	_, _, _ = b.dec.Abort(tx, reason)
	return reason, resumesAt
}

// haltedLocked reports whether trading symbol sym is halted and until when.
func (b *Breaker) haltedLocked(sym uint32, now int64) (bool, int64) {
	until, halted := int64(0), false
	if b.market.active(now) {
		until, halted = b.market.resumesAt, true
	}
	if int64(sym) < int64(len(b.syms)) {
		if h := &b.syms[sym].halt; h.active(now) {
			until, halted = max(until, h.resumesAt), true
		}
	}
	return halted, until
}

// CheckFills checks transaction tx's tentative fills (matching's YES vote)
// against the bands and the market-wide levels. The coordinator calls it
// after the last YES and before its commit CAS. A fill outside its symbol's
// band trips a symbol halt; a fill that would move the market index to a
// new level trips a market halt. The trip aborts tx and every other
// UNDECIDED transaction in the scope, so the coordinator's commit CAS then
// loses and it aborts; CheckFills returns the trip's report, or nil when
// nothing tripped.
func (b *Breaker) CheckFills(tx engine.TxID, out *engine.Outcome, now int64) *Report {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.market.active(now) {
		return nil // tx was in flight at the market's trip and is aborted
	}
	for i := range out.FillSlice() {
		f := &out.Fills[i]
		if int64(f.Symbol) >= int64(len(b.syms)) {
			continue
		}
		s := &b.syms[f.Symbol]
		if s.halt.active(now) {
			continue
		}
		if s.ref > 0 && s.band.WidthBps > 0 && !inBand(f.Price, s.ref, s.width) {
			return b.tripBand(tx, f.Symbol, f.Price, now)
		}
		if r := b.checkLevel(tx, s, f.Price, now); r != nil {
			return r
		}
	}
	return nil
}

// checkLevel trips the market if trading s at price p would move the index
// to a level not yet tripped today.
func (b *Breaker) checkLevel(tx engine.TxID, s *symbol, p int64, now int64) *Report {
	if len(b.levels) == b.tripped || s.open == 0 || p <= 0 {
		return nil
	}
	idx := (b.sumMove - s.move + moveBps(p, s.open)) / b.indexed
	mag := idx
	if mag < 0 {
		mag = -mag
	}
	lvl := -1
	for i := b.tripped; i < len(b.levels) && mag >= b.levels[i].MoveBps; i++ {
		lvl = i
	}
	if lvl < 0 {
		return nil
	}
	b.tripped = lvl + 1
	l := b.levels[lvl]
	b.market = halt{on: true, resumesAt: resumeAt(now, l.Halt), cause: CauseLevel}
	r := &Report{
		Scope: MarketScope(), Cause: CauseLevel,
		TriggeredAt: now, ResumesAt: b.market.resumesAt, Halt: l.Halt,
		Tx: tx, Price: p, IndexBps: idx, Level: lvl, LevelBps: l.MoveBps,
	}
	return b.settle(r, true)
}

// tripBand halts symbol sym because tx would trade it at price p.
func (b *Breaker) tripBand(tx engine.TxID, sym uint32, p int64, now int64) *Report {
	s := &b.syms[sym]
	s.halt = halt{on: true, resumesAt: resumeAt(now, s.band.Halt), cause: CauseBand}
	r := &Report{
		Scope: SymbolScope(sym), Cause: CauseBand,
		TriggeredAt: now, ResumesAt: s.halt.resumesAt, Halt: s.band.Halt,
		Tx: tx, Price: p, Reference: s.ref, BandBps: s.band.WidthBps,
		Low: s.ref - s.width, High: s.ref + s.width,
	}
	if s.band.Reference == ReferenceLastTrade && p > 0 {
		s.setRef(p)
	}
	return b.settle(r, true)
}

// settle aborts, by CAS through the Decider, every tracked transaction in
// r's scope (and r.Tx when withTx), sorting each into r.Aborted,
// r.Completed or r.Unresolved by what the CAS found. The halt is already in
// place, so no transaction joins the scope meanwhile. It records r and
// returns it.
func (b *Breaker) settle(r *Report, withTx bool) *Report {
	n := 0
	for _, it := range b.inflight.items {
		if r.Scope.covers(it.sym) {
			n++
		}
	}
	r.Aborted = make([]engine.TxID, 0, n+1)
	r.Completed = make([]engine.TxID, 0, n)
	found := false
	for _, it := range b.inflight.items {
		isTx := withTx && it.tx == r.Tx
		found = found || isTx
		// r.Tx may be tracked under another symbol than the one it trades.
		if r.Scope.covers(it.sym) || isTx {
			b.resolve(r, it.tx)
		}
	}
	if withTx && !found {
		b.resolve(r, r.Tx) // never tracked: abort it all the same
	}
	slices.Sort(r.Aborted)
	slices.Sort(r.Completed)
	slices.Sort(r.Unresolved)
	b.reports = append(b.reports, *r)
	return r
}

// resolve aborts tx by CAS and files it in r by the slot's final decision.
func (b *Breaker) resolve(r *Report, tx engine.TxID) {
	d, _, err := b.dec.Abort(tx, engine.ReasonCircuitBreaker)
	switch {
	case errors.Is(err, engine.ErrNotInTable):
		// The slot was released and reused: tx finished before the trip
		// and its Committed or Aborted call is on its way.
	case err == nil && d == engine.Commit:
		r.Completed = append(r.Completed, tx)
	case err == nil && d == engine.Abort:
		r.Aborted = append(r.Aborted, tx)
	default:
		if err == nil {
			err = fmt.Errorf("tx %d: decision %v after an abort CAS: %w", tx, d, engine.ErrCorruptSlot)
		}
		r.Unresolved = append(r.Unresolved, tx)
		r.Err = errors.Join(r.Err, err)
	}
}

// Committed tells the breaker that tx, decided COMMIT, is done, with its
// outcome; call it once every participant has committed. It stops tracking
// tx and feeds its fill prices to the index and, for dynamic bands of
// symbols not halted, to the reference.
func (b *Breaker) Committed(tx engine.TxID, out *engine.Outcome, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight.remove(tx)
	for i := range out.FillSlice() {
		f := &out.Fills[i]
		if f.Price <= 0 || int64(f.Symbol) >= int64(len(b.syms)) {
			continue
		}
		s := &b.syms[f.Symbol]
		b.setLast(s, f.Price)
		if s.ref == 0 || (s.band.Reference == ReferenceLastTrade && !s.halt.active(now)) {
			s.setRef(f.Price)
		}
	}
}

// setLast records a trade of s at p > 0 in the index; the first price of a
// symbol with no opening reference becomes its opening reference.
func (b *Breaker) setLast(s *symbol, p int64) {
	if s.open == 0 {
		s.open = p
		b.indexed++
	}
	m := moveBps(p, s.open)
	b.sumMove += m - s.move
	s.move, s.last = m, p
}

// Aborted tells the breaker that tx, decided ABORT, is done, and stops
// tracking it. Committed and Aborted are no-ops for untracked transactions
// (cancels, rejected commands), so the coordinator may call one for every
// transaction.
func (b *Breaker) Aborted(tx engine.TxID) {
	b.mu.Lock()
	b.inflight.remove(tx)
	b.mu.Unlock()
}

// Halt is an operator's halt of scope at now for d (positive, or
// UntilResumed). It settles the in-flight transactions of the scope like any
// trip and returns the report. Halting a halted scope fails with
// ErrAlreadyHalted and changes nothing.
func (b *Breaker) Halt(scope Scope, now int64, d time.Duration) (*Report, error) {
	if err := validHalt(d); err != nil {
		return nil, fmt.Errorf("halt %s: %w: %w", scope, ErrBadDuration, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	h, err := b.scopeHalt(scope)
	if err != nil {
		return nil, fmt.Errorf("halt %s: %w", scope, err)
	}
	if h.active(now) {
		return nil, fmt.Errorf("halt %s: %w until %d", scope, ErrAlreadyHalted, h.resumesAt)
	}
	*h = halt{on: true, resumesAt: resumeAt(now, d), cause: CauseOperator}
	r := &Report{Scope: scope, Cause: CauseOperator, TriggeredAt: now, ResumesAt: h.resumesAt, Halt: d}
	return b.settle(r, false), nil
}

// Resume ends scope's halt at now, before its time. Resuming a scope that is
// not halted fails with ErrNotHalted.
func (b *Breaker) Resume(scope Scope, now int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, err := b.scopeHalt(scope)
	if err != nil {
		return fmt.Errorf("resume %s: %w", scope, err)
	}
	if !h.active(now) {
		return fmt.Errorf("resume %s: %w", scope, ErrNotHalted)
	}
	h.on = false
	return nil
}

func (b *Breaker) scopeHalt(scope Scope) (*halt, error) {
	if scope.Market {
		return &b.market, nil
	}
	if int64(scope.Symbol) >= int64(len(b.syms)) {
		return nil, fmt.Errorf("%w %d: configured symbols are 0 to %d", ErrUnknownSymbol, scope.Symbol, len(b.syms)-1)
	}
	return &b.syms[scope.Symbol].halt, nil
}

// Halted reports whether scope is halted at now and the instant it resumes.
// A symbol is reported halted only for its own halt: a market halt covers it
// too, which Begin takes into account.
func (b *Breaker) Halted(scope Scope, now int64) (halted bool, resumesAt int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, err := b.scopeHalt(scope)
	if err != nil || !h.active(now) {
		return false, 0
	}
	return true, h.resumesAt
}

// SetReference sets symbol sym's band reference to price (for example the
// previous close, or a price an operator sets during a halt). The first
// reference of the day is also the symbol's opening reference in the index.
func (b *Breaker) SetReference(sym uint32, price int64) error {
	if price <= 0 {
		return fmt.Errorf("set reference of symbol %d: %w %d, want a positive price", sym, ErrBadPrice, price)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(sym) >= int64(len(b.syms)) {
		return fmt.Errorf("set reference: %w %d: configured symbols are 0 to %d", ErrUnknownSymbol, sym, len(b.syms)-1)
	}
	s := &b.syms[sym]
	s.setRef(price)
	if s.open == 0 {
		b.setLast(s, price)
	}
	return nil
}

// StartDay opens a new trading day: every symbol's current reference becomes
// its opening reference for the index, the index returns to zero, the
// market-wide levels re-arm and a market halt ends. Symbol halts continue
// (a suspension may span days).
func (b *Breaker) StartDay() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.market, b.tripped = halt{}, 0
	b.sumMove, b.indexed = 0, 0
	for i := range b.syms {
		s := &b.syms[i]
		s.open, s.last, s.move = s.ref, s.ref, 0
		if s.ref > 0 {
			b.indexed++
		}
	}
}

// Index returns the market index: the mean over symbols with an opening
// reference of their last price's move from it, in basis points.
func (b *Breaker) Index() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.indexed == 0 {
		return 0
	}
	return b.sumMove / b.indexed
}

// InFlight returns the number of transactions tracked.
func (b *Breaker) InFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inflight.len()
}

// Reports returns the reports of every trip so far, oldest first.
func (b *Breaker) Reports() []Report {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.reports)
}
