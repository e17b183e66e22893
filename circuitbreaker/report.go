package circuitbreaker

import (
	"fmt"
	"strings"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// Scope is what a halt covers: the whole market or one symbol.
type Scope struct {
	// Market is true for a market-wide halt; Symbol is then ignored.
	Market bool
	Symbol uint32
}

// MarketScope returns the market-wide scope.
func MarketScope() Scope { return Scope{Market: true} }

// SymbolScope returns the scope of one symbol.
func SymbolScope(sym uint32) Scope { return Scope{Symbol: sym} }

// String returns "market" or "symbol N".
func (s Scope) String() string {
	if s.Market {
		return "market"
	}
	return fmt.Sprintf("symbol %d", s.Symbol)
}

// covers reports whether a transaction on symbol sym lies in s.
func (s Scope) covers(sym uint32) bool { return s.Market || s.Symbol == sym }

// Cause says why a halt started.
type Cause uint8

const (
	// CauseBand: a trade price fell outside the symbol's price band.
	CauseBand Cause = iota + 1
	// CauseLevel: the market index reached a market-wide level.
	CauseLevel
	// CauseOperator: an operator called Halt.
	CauseOperator
)

// String returns "band", "level" or "operator".
func (c Cause) String() string {
	switch c {
	case CauseBand:
		return "band"
	case CauseLevel:
		return "level"
	case CauseOperator:
		return "operator"
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// Report describes one trip: what halted, when and why, and what happened to
// every transaction in flight for the scope at the trip instant. Aborted and
// Completed are disjoint, sorted, and together are exactly the transactions
// that were in flight for the scope (plus the tripping transaction); a
// transaction whose slot was already released and reused had finished, and
// is in neither.
type Report struct {
	Scope Scope
	Cause Cause
	// TriggeredAt is the trip instant and ResumesAt the instant trading
	// resumes, in the caller's clock (nanoseconds); ResumesAt is Forever for
	// a halt that lasts until Resume or StartDay. Halt is the planned halt
	// duration (UntilResumed for those).
	TriggeredAt int64
	ResumesAt   int64
	Halt        time.Duration

	// Tx is the transaction whose price tripped the breaker (CauseBand and
	// CauseLevel); zero for an operator's halt.
	Tx engine.TxID
	// Price is that transaction's tentative fill price.
	Price int64
	// For CauseBand: the reference price, the band's width in basis points
	// and the band's inclusive bounds [Low, High].
	Reference int64
	BandBps   int64
	Low, High int64
	// For CauseLevel: the index move in basis points the price would have
	// caused, and the level (index into Config.Levels) and its threshold.
	IndexBps int64
	Level    int
	LevelBps int64

	// Aborted lists the transactions whose decision slot the trip found
	// UNDECIDED and aborted by CAS (or found already aborted).
	Aborted []engine.TxID
	// Completed lists the transactions already decided COMMIT at the trip:
	// past their commit point, they complete during the halt.
	Completed []engine.TxID
	// Unresolved lists the transactions whose slot could not be read
	// (engine.ErrCorruptSlot), and Err says why; both are empty unless the
	// decision table is corrupt.
	Unresolved []engine.TxID
	Err        error
}

// InFlight returns how many transactions were in flight for the scope.
func (r *Report) InFlight() int { return len(r.Aborted) + len(r.Completed) + len(r.Unresolved) }

// String renders the report on one line for logs and the simulator.
func (r *Report) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "halt %s at %d by %s", r.Scope, r.TriggeredAt, r.Cause)
	switch r.Cause {
	case CauseBand:
		fmt.Fprintf(&sb, " (tx %d price %d outside [%d, %d]: reference %d ± %d bps)",
			r.Tx, r.Price, r.Low, r.High, r.Reference, r.BandBps)
	case CauseLevel:
		fmt.Fprintf(&sb, " (tx %d price %d moves the index %d bps: level %d at %d bps)",
			r.Tx, r.Price, r.IndexBps, r.Level+1, r.LevelBps)
	}
	if r.ResumesAt == Forever {
		sb.WriteString(", until resumed")
	} else {
		fmt.Fprintf(&sb, ", resumes at %d (%v)", r.ResumesAt, r.Halt)
	}
	fmt.Fprintf(&sb, "; in flight %d: aborted %v, completed %v", r.InFlight(), r.Aborted, r.Completed)
	if len(r.Unresolved) > 0 {
		fmt.Fprintf(&sb, ", unresolved %v: %v", r.Unresolved, r.Err)
	}
	return sb.String()
}

// Totals sums the reports of a run.
type Totals struct {
	// Trips counts halts of every cause: bands, levels and operators.
	Trips int
	// Aborted, Completed and Unresolved are the sizes of the reports' sets
	// added up: transactions in flight at a trip that it aborted, that were
	// past their commit point and completed, and that a corrupt decision
	// table kept from being sorted.
	Aborted, Completed, Unresolved int
}

// Totals returns the sums over Reports.
func (b *Breaker) Totals() Totals {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := Totals{Trips: len(b.reports)}
	for i := range b.reports {
		r := &b.reports[i]
		t.Aborted += len(r.Aborted)
		t.Completed += len(r.Completed)
		t.Unresolved += len(r.Unresolved)
	}
	return t
}
