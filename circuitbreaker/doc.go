// Package circuitbreaker halts trading when prices run away, without
// breaking a single trade in flight, and stops sending transactions to a
// participant that keeps failing.
//
// # Market and symbol halts
//
// A Breaker keeps, per symbol, a price band around a reference price
// (Band: a half-width in basis points, integers only), and market-wide
// levels (Level) in the style of 10 %, 15 % and 20 % index bands, each with
// its own halt duration. The market index is the mean, over the symbols that
// have an opening reference, of each symbol's last committed price's move
// from its opening reference, in basis points truncated toward zero:
//
//	index = Σ ((last_i − open_i) × 10 000 / open_i) / n
//
// The opening reference is the symbol's reference at StartDay (or its first
// reference or trade of the day). Each level trips at most once a day, up or
// down; StartDay re-arms them.
//
// The coordinator drives the Breaker with its own clock (now, nanoseconds;
// the package never reads the wall clock). NewGate turns a Breaker (and the
// overload breakers) into an engine.Gate: set it as engine.Config.Gate and
// the engine's coordinator makes every call below itself, on its own
// goroutine, at the right protocol point:
//
//	br, _ := circuitbreaker.New(circuitbreaker.DefaultConfig(symbols), table)
//	core, _ := engine.Dial(engine.Config{Gate: circuitbreaker.NewGate(br, nil)}, table, remotes...)
//
// The calls, for a runtime that drives an engine.Coordinator by hand:
//
//   - Admit(cmd, now) before Coordinator.Propose: a new order or replace for
//     a halted scope is rejected with engine.ReasonHalted and the instant
//     trading resumes, before any PREPARE (through a Gate: an aborted
//     Result at once, with Result.ResumesAt). Cancels always pass.
//   - Begin(tx, cmd, now) right after Propose, before the PREPAREs go out:
//     tx is tracked as in flight for its symbol (fixed-size storage,
//     Config.MaxInFlight). If a halt began since Admit, or the tracker is
//     full, Begin aborts tx by CAS (engine.ReasonHalted,
//     engine.ReasonBackpressure); the coordinator's commit CAS then loses
//     (behind a Gate, the coordinator releases tx at once, sending nothing).
//   - CheckFills(tx, &vote.Out, now) when matching's YES vote (its tentative
//     fills) arrives, before Coordinator.Step sees it, and so before the
//     commit CAS: a fill price outside its band trips a symbol halt; a fill
//     that would move the index to a new level trips a market halt (behind
//     a Gate, the coordinator then aborts tx at once).
//   - Committed(tx, &result.Out, now) or Aborted(tx) for each
//     Ready().Results entry.
//   - Halt and Resume are the operator's calls; SetReference and StartDay
//     set the references and open the day.
//
// At the trip instant every tracked transaction of the halted scope is
// settled by a compare-and-swap on the decision table (Decider): a slot
// still UNDECIDED becomes ABORT with engine.ReasonCircuitBreaker, and the
// coordinator's own commit CAS then loses; a slot already COMMIT — the
// coordinator won the race — completes. The CAS alone settles the race;
// no phase flag is read. The transaction whose price tripped is aborted
// too. Each trip yields a Report: scope, cause (the price and the band or
// level, or the operator), trigger and resume instants, and the aborted and
// completed transaction ids, which together are exactly what was in flight.
//
// After the halt's duration trading resumes by itself at the next call. A
// dynamic band (ReferenceLastTrade) resumes around the price that tripped
// it; an operator may SetReference during the halt. There is no reopening
// call auction: trading simply resumes in continuous matching.
//
// # Handing over to a successor
//
// A coordinator that dies takes its Breaker with it. State and Restore carry
// what its successor needs: the active halts (scope, resume instant,
// cause), every band reference, the index's opening and last prices, and the
// market-wide levels tripped today. A State encodes to a fixed-size,
// versioned, little-endian record with a CRC-32C (StateSize); the decoder
// checks every field and names what is wrong (*StateError). A StateStore
// keeps the latest State in memory that outlives the writer, two slots and a
// generation word, so that a writer killed mid-write leaves the previous
// state readable. Times in a State are on one clock; the processes agree on
// one (the simulator uses CLOCK_MONOTONIC) and Shift converts between it and
// each breaker's own. A halt that has ended by the time of Restore is not
// restored.
//
// # Overload breaker
//
// Overload is one participant's breaker: Closed, Open or HalfOpen on the
// rate of failures (timeouts, transport errors) over a sliding window of
// time buckets, with a minimum number of samples and a recovery timeout
// after which one probe at a time goes through. Open means the coordinator
// rejects new transactions before PREPARE with
// engine.ReasonParticipantUnavailable instead of burning timeouts.
// Overloads groups the breakers of all participants: Admit before Propose
// (no probe is spent on a transaction another participant's breaker
// rejects), Record per participant when its vote arrives (success) or the
// PREPARE timeout passes without it (failure). A NO vote is a success: the
// participant answered. NewGate makes these calls from the coordinator's
// engine.Gate hooks (Admit; the probe taken at Begin; Voted).
//
// # Tests
//
// TestSimTrips is a deterministic simulation over the engine's real
// Coordinator, Nodes and decision table, the Breaker wired in through
// NewGate as the coordinator's engine.Gate: a seeded scheduler reorders and
// duplicates messages, lets time pass and halts scopes at random instants,
// and prices trip bands and levels; every report is compared with the
// table's decisions snapshotted just before its trip, and agreement is
// audited at the end. It runs 10 000 seeds by default; -cb.seeds=N runs
// more, -cb.seed=S replays one. TestSimCatchesPhaseFlagBug runs it with a
// deliberately wrong Decider (sorting by participant phase instead of by the
// CAS) and requires a seed to catch it. TestConcurrentTrips races real
// goroutines' commit CASes against trips on the same table. TestCoreBandTrip
// and TestCoreOverload run the breakers inside an engine.Core over
// participant hosts the test pumps and a clock it moves: the phases at a
// trip and every overload transition are set by the test, not by timing.
// FuzzStateDecode and FuzzStateStoreLoad feed the state decoder and the
// store arbitrary bytes.
package circuitbreaker
