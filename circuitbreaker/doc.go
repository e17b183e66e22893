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
// the package never reads the wall clock):
//
//   - Begin(tx, cmd, now) before PREPARE: a new order or replace for a halted
//     scope is rejected with engine.ReasonHalted and the instant trading
//     resumes; cancels are always admitted. An admitted command is tracked as
//     in flight for its symbol (fixed-size storage, Config.MaxInFlight).
//   - CheckFills(tx, outcome, now) after matching's YES vote (the tentative
//     fills) and before the commit CAS: a fill price outside its band trips a
//     symbol halt; a fill that would move the index to a new level trips a
//     market halt.
//   - Committed(tx, outcome, now) or Aborted(tx) once tx is done.
//   - Halt and Resume are the operator's calls.
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
// # Overload breaker
//
// Overload is one participant's breaker: Closed, Open or HalfOpen on the
// rate of failures (timeouts, transport errors) over a sliding window of
// time buckets, with a minimum number of samples and a recovery timeout
// after which one probe at a time goes through. Open means the coordinator
// rejects new transactions before PREPARE with
// engine.ReasonParticipantUnavailable instead of burning timeouts.
// Overloads groups the breakers of all participants.
package circuitbreaker
