package engine

// Gate lets a component above the engine — a circuit breaker — take part in
// the coordinator's decisions without the engine knowing it: the package
// circuitbreaker adapts its breakers to a Gate, and the dependency points
// from it to the engine, never back. Set it in Config.Gate (or
// CoordinatorConfig.Gate); without one the coordinator pays a nil check at
// each point and nothing else.
//
// The coordinator calls a Gate on its own goroutine, inside Propose, Step
// and Tick (for a Core: inside Submit, Send and Poll, under the Core's
// lock), at these points of a transaction's life:
//
//  1. Admit, before the command becomes a transaction;
//  2. Begin, once its decision slot is open and before any PREPARE is sent;
//  3. Fills, when matching's YES vote brings the tentative Outcome, before
//     the commit point;
//  4. Voted, when the votes are in: the decision (commit point, NO vote,
//     PREPARE timeout, trip) is being taken;
//  5. Done, with the transaction's Result.
//
// A rejection at Admit or Begin produces a normal aborted Result at once,
// with no PREPARE sent and no journal record written: the command gets a
// transaction id (ids stay unique; the rejected one is a gap in the
// decision table and the journal, which only ever hold transactions that
// reached PREPARE), Result.ResumesAt tells when to retry, and
// Counters.Aborted counts it under its reason. Done is called for it too.
//
// The methods must not block and must not call back into the Coordinator
// or the Core; the pointers they get are valid only during the call.
type Gate interface {
	// Admit decides whether cmd may become a transaction at now.
	// ReasonNone admits it; any other reason (ReasonHalted for a halted
	// market or symbol, ReasonParticipantUnavailable for an open overload
	// breaker) rejects it before PREPARE, and resumesAt is the instant, on
	// the coordinator's clock, when it is worth retrying (math.MaxInt64:
	// not before an operator acts; 0: unknown). Admit runs before the
	// coordinator's own busy checks, so that a rejection stays fast when
	// the window is full; it must not commit to anything (take a probe,
	// say) that Begin does not confirm, since ErrBusy may follow it.
	Admit(cmd *Command, now int64) (reason Reason, resumesAt int64)
	// Begin tells the gate that tx, for cmd, is proposed: its decision slot
	// is open and UNDECIDED and nothing has been sent. A reason other than
	// ReasonNone rejects tx after all (the halt began since Admit, the
	// gate's tracking is full): the coordinator aborts tx's slot by CAS
	// with that reason, unless the gate has already, releases it and
	// reports the Result at once, without sending anything.
	Begin(tx TxID, cmd *Command, now int64) (reason Reason, resumesAt int64)
	// Fills sees matching's YES vote for tx with its tentative Outcome,
	// before the coordinator's commit CAS, and reports whether the gate
	// tripped on it. A trip aborts, by CAS on the decision table, every
	// UNDECIDED transaction it covers (tx too); true makes the coordinator
	// abort tx at once, by the same CAS (ReasonCircuitBreaker unless
	// something aborted it first), rather than wait for the other votes
	// and lose its commit CAS. Other transactions the trip aborted lose
	// their commit CAS, or get NO votes, in the ordinary way.
	Fills(tx TxID, out *Outcome, now int64) (tripped bool)
	// Voted reports how tx's PREPARE phase ended, for the participants'
	// health: voted has a bit per participant whose vote (YES or NO)
	// arrived; missing a bit per participant still silent when the PREPARE
	// timeout fired (zero unless it did). Participants in neither had not
	// voted when a NO vote, a trip or a malformed vote ended the phase
	// early, and nothing is known of them. A coordinator that is fenced
	// reports nothing for its transactions still in PREPARE.
	Voted(tx TxID, voted, missing uint32, now int64)
	// Done sees every Result the coordinator reports, rejected commands and
	// recovered transactions included, as it is reported: once every
	// participant acked the decision, or when COMMIT is sent with
	// ReplyOnCommitSent.
	Done(res *Result, now int64)
}
