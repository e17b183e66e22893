package circuitbreaker

import "github.com/commitcore/commitcore/engine"

// Decider settles a trip against the coordinator's commit point.
// *engine.DecisionTable satisfies it; tests substitute their own.
type Decider interface {
	// Abort moves tx's decision slot from UNDECIDED to ABORT with reason r
	// by compare-and-swap and returns the slot's final decision: Abort (the
	// CAS won, or someone aborted first, with that abort's reason) or
	// Commit (the coordinator's commit CAS won: tx completes). It fails
	// with engine.ErrNotInTable when the slot holds another transaction,
	// and with engine.ErrCorruptSlot on a word the protocol never writes.
	// Abort must not call back into the Breaker, which holds its lock.
	Abort(tx engine.TxID, r engine.Reason) (engine.Decision, engine.Reason, error)
}

var _ Decider = (*engine.DecisionTable)(nil)
