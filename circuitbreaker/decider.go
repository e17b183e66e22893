package circuitbreaker

import "github.com/commitcore/commitcore/engine"

// Decider settles a trip against the coordinator's commit point. The engine's
// decision table satisfies it (see NewTableDecider); tests substitute their
// own.
type Decider interface {
	// Abort moves tx's decision slot from UNDECIDED to ABORT with reason by
	// a single compare-and-swap, and reports whether the slot holds COMMIT
	// instead: the coordinator's commit CAS won, so tx completes. A slot
	// already ABORT reports false. Abort must not call back into the
	// Breaker: the Breaker holds its lock while it calls Abort.
	Abort(tx engine.TxID, reason engine.Reason) (committed bool)
}
