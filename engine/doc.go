// Package engine is commitcore's protocol core: the three-phase commit
// (3PC) that makes matching, risk and settlement agree on every trade, its
// 2PC baseline, the shared decision table, and the message and journal
// record codec.
//
// # State machines
//
// Coordinator and Node (the participant side) are pure state machines in
// the style of go.etcd.io/raft: they do no I/O and read no clock. The
// runtime feeds them commands (Coordinator.Propose), decoded messages
// (Step) and the time (Tick, at Ready().Deadline), then acts on Ready():
// it sends Ready.Msgs, delivers Ready.Results, and calls Advance. Times are
// int64 nanoseconds of whatever monotonic clock the runtime uses. Nothing
// allocates in steady state: Ready's slices, the transaction windows and
// the timer heaps are preallocated and reused.
//
//	c, _ := engine.NewCoordinator(engine.CoordinatorConfig{Epoch: 1, Participants: 3, Table: t, Log: wal})
//	c.Start(now, records)              // fences older epochs, finishes their transactions
//	tx, err := c.Propose(now, &cmd)    // PREPAREs go to Ready
//	c.Step(now, &vote)                 // votes and acks
//	c.Tick(now)                        // timeouts and retransmits
//	rd := c.Ready(); send(rd.Msgs); deliver(rd.Results); c.Advance()
//
// Node is driven the same way and calls its Participant (types.go) at most
// once per step of a transaction, however often a message is duplicated.
// SetCoordinatorAlive feeds it the runtime's liveness verdict on the
// coordinator; a restarted node calls Recover before its first Step.
//
// Batching: Propose several commands (or Step several messages) before one
// Ready and the messages come out together; every message carries its own
// length, so the runtime may concatenate them into one ring record or ring
// one doorbell for all of them. Outcomes stay per transaction, and any
// number of transactions (up to the table's length) may be in flight.
//
// # Protocol
//
// PREPARE goes to every participant; each validates, reserves, and votes.
// Any NO or the PREPARE timeout (default 100 µs) aborts. All YES: the
// coordinator appends a RecCommit (command and Outcome) to its Log, then
// CASes the transaction's decision-table slot from UNDECIDED to COMMIT:
// that CAS is the commit point. If it loses (a circuit breaker or a
// terminating participant aborted first) the coordinator logs a RecAbort
// and aborts. After the commit point PRE-COMMIT carries matching's Outcome
// (the participant named by CoordinatorConfig.Matching; its Node has
// NodeConfig.Matching set) and the ack cannot be refused: an ack timeout
// (default 50 µs) retransmits, never aborts, and each retransmission of a
// phase doubles the wait for the next (up to 8 ack timeouts, at most
// 10 ms), so a slow participant is not flooded. Then COMMIT, whose acks
// release the slot. In TwoPhase mode COMMIT follows the commit point
// directly and carries the Outcome. Timeouts may be adaptive (Timeouts).
//
// A Node that times out in PREPARED reads the slot: decided, it follows;
// UNDECIDED, with the coordinator dead or past the grace period, it CASes
// ABORT. In PRECOMMITTED it commits on its own. A coordinator that stalls
// and wakes loses its CAS and follows the table.
//
// # Epochs, takeover and recovery
//
// Transaction ids carry the assigning coordinator's epoch in their high
// bits (MakeTxID, EpochOf). A backup (or restarted) coordinator is created
// with the table's epoch plus one; Start raises the table's epoch, which
// fences the old coordinator (participants accept only messages of the
// table's epoch, and the old coordinator sees the change on its next step),
// then aborts every UNDECIDED slot and re-drives every decided one from the
// log, before Propose accepts new commands.
//
// The log holds RecCommit and RecAbort records (Record, with its own
// Encode/Decode). A transaction committed if the log has its RecCommit, no
// RecAbort, and the table does not hold it as UNDECIDED or ABORT. A
// restarted Node rebuilds its Participant with Apply over those, after
// aborting every UNDECIDED slot, since it may have voted YES on one and
// lost the reservation.
//
// # Decision table
//
// DecisionTable lays a header and one 64-bit word per slot over a
// caller-given byte region (see the layout table in decision.go); slot
// words pack the transaction's tag, decision, done bit and abort reason and
// change only by CAS. A circuit breaker lists in-flight transactions with
// InFlight and aborts UNDECIDED ones with Abort, which returns the final
// decision. Everything read from the table is validated.
//
// # Runtime
//
// Core is the public API around the state machines: New runs the
// participants in this process over heap-memory rings (the threads
// deployment), Dial reaches hosts of participant Nodes in other processes
// over Conns (shared-memory links, or accel's fabrics). Submit runs one
// command; Send and Poll pipeline many, and Send answers ErrBusy — poll,
// then send again — when the window is full, when results wait for Poll,
// or when the rings to the participants are (or are about to be) full.
// Each ring record another process could write (a shared-memory link, an
// accel fabric) is one message followed by its CRC-32C, checked on a
// private copy before decoding, so bytes scribbled over shared memory are
// refused rather than acted on; the heap rings of New, which only this
// process's engine writes, carry the message alone. Config.Gate lets a
// circuit breaker take part in the coordinator's decisions (see Gate and
// package circuitbreaker).
//
// # Wire format
//
// Msg and Record share one little-endian framing: a 24-byte header and the
// payload the type needs (layout in msg.go). A PREPARE is 80 bytes, a vote
// 24, a PRE-COMMIT with one fill 104. Decode validates every field. A Host
// sends the identical acks and outcome-less votes of the nodes it serves as
// one message whose Senders lists them (8 bytes more), so that each phase
// costs one or two messages per host, not one per participant; the
// coordinator counts it once per sender. A state machine's Ready folds the
// same message for consecutive transactions into one with a Run (8 bytes
// more): a batch's COMMITs, ABORTs, acks and outcome-less votes each cost
// one message per batch, not one per transaction, and a run is stepped as
// the messages it stands for, in order.
//
// # Tests
//
// The deterministic simulation in sim_test.go drives the real state
// machines through a simulated network and clock with delays, reordering,
// duplication, loss, crashes and restarts, stalls (false suspicion),
// coordinator kill with backup takeover, crashes inside a step (between a
// commit record and the commit CAS, after the CAS before anything is sent,
// after a Participant call before its reply), and breaker trips, checking
// agreement, validity, non-triviality, termination, idempotence and a
// conservation check of the test participants' balances and reservations.
//
//	go test -race ./engine/                                      # 10,000 seeds (-short: 1,000)
//	go test ./engine/ -run 'TestSim$' -sim.seeds=1000000 -timeout 60m # long mode
//	go test ./engine/ -run 'TestSim$' -sim.first=N -sim.seeds=M     # seeds N … N+M-1
//	go test ./engine/ -run 'TestSim$' -sim.seed=N -sim.trace        # replay seed N, print its trace
//
// A failing seed prints the replay command; the replay is exact, since a
// seed fixes every random choice and the state machines read no clock.
package engine
