// Package risk is commitcore's pre-trade risk check, and a participant in
// the engine's three-phase commit.
//
// Each account (a dense id 0..Accounts-1) trades under Limits, the
// configured defaults or its own override:
//   - MaxOrderQty and MaxOrderNotional bound one order;
//   - PriceBandBps rejects an order priced further than that from the
//     symbol's reference price (a fat-finger check); the reference is set by
//     SetReference and, with Config.FollowLastTrade, follows the last
//     committed trade;
//   - MaxPosition bounds the worst-case position per symbol: the current
//     position plus every open and in-flight order on the same side plus
//     this one;
//   - CreditLimit bounds the notional of the account's open buy exposure,
//     resting and in flight;
//   - OrdersPerSecond and Burst throttle new orders and replaces with a
//     token bucket refilled by Command.Time, never the wall clock, so that
//     replay is deterministic. Cancels are never throttled: nothing may stop
//     an account from reducing its risk.
//
// A zero limit is no limit. Every NO vote carries the engine.Reason of the
// first rule that failed, in the order above after validation.
//
// As a participant, Manager reserves the order's exposure at PREPARE (its
// quantity on its side, and its notional for a buy); COMMIT turns the fills
// into positions, keeps the resting remainder's exposure on the order and
// releases the rest; ABORT releases it all. All arithmetic is integer and
// overflow-checked (ReasonOverflow).
//
// Manager trusts matching's engine.Outcome as settlement does (see the
// settlement package): fills name committed resting orders, Canceled and
// Removed.Qty come off an order's open quantity, and a Replace sets its
// order's whole open quantity to Resting. Commit panics on an outcome that
// breaks this; Apply returns an error instead.
//
// The committed state does not depend on the order in which transactions
// in flight together commit (a node in PRECOMMITTED may commit on its own
// after its commit timeout): committed tokens reach the buckets in TxID
// order, and a reference moves only for a later transaction's trade. So a
// replay of the journal, in TxID order, from a snapshot or from genesis,
// reproduces the live state exactly.
//
// # Tests
//
// The property test drives the participant with the real matching engine
// (internal/testbook), pipelined, for 20,000 random commands per seed; -sim.steps sets a longer run, e.g.
// go test ./risk -run Property -args -sim.steps=200000.
package risk
