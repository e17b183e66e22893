// Package settlement is commitcore's double-entry ledger of cash and
// securities, and a participant in the engine's three-phase commit.
//
// Every account (a dense id 0..Accounts-1) holds cash in minor currency units
// and a quantity of each symbol (a dense id 0..Symbols-1), all fixed at
// genesis. Nothing is ever created or destroyed afterwards: a trade moves the
// buyer's cash to the seller and the seller's securities to the buyer, and an
// optional maker or taker fee moves cash to the fee account. Audit proves it.
//
// As a participant, Ledger reserves at PREPARE what the command could cost in
// the worst case: a buy reserves Price × Qty at its limit (or a market
// order's protection price) plus the larger of the maker and taker fee; a sell
// reserves Qty of the symbol. COMMIT settles each fill from the reservation,
// keeps what the resting remainder needs attached to the resting order, and
// releases the rest; ABORT releases everything. A maker's fills consume its
// resting order's reservation; a cancel, or a resting order removed by
// self-trade prevention, releases it; a replace re-sizes it.
//
// Fees are floor(notional × bps / 10000), charged per fill; flooring keeps
// the fees of the parts of an order within the fee of the whole, so a
// reservation always covers the order however it fills.
//
// # What matching must honour
//
// Ledger settles exactly what the engine.Outcome says, and asserts (panics)
// where an outcome would break conservation: that is a bug in the producer of
// the outcome, not a state to carry on from. It assumes:
//   - a fill's MakerOrder names a resting order whose placing transaction has
//     committed here, with the fill's Maker account and the opposite side, and
//     a maker buy never fills above its resting price;
//   - the taker of every fill is the command's own order and account, on the
//     command's side, and a taker buy never fills above its limit;
//   - Resting and RestingPrice describe the command's own order only for a
//     Limit NewOrder or a Replace, and a resting buy's price is at most its
//     limit;
//   - Canceled (Cancel) and Removed.Qty are quantities taken off the order's
//     open quantity, so they add up with fills of the same order committed in
//     any order;
//   - a Replace sets the order's whole open quantity to Resting: no other
//     in-flight transaction may still hold quantity of the replaced order when
//     the Replace commits. If one does and its fill makes the replaced order
//     cost more than its reservation, Commit takes the difference from the
//     account's free cash, and panics if there is none.
//
// Cancel and Replace must name an order placed by a committed NewOrder of the
// same account (ReasonUnknownOrder, ReasonNotOwner otherwise).
//
// # Tests
//
// The property test drives the participant with the real matching engine
// (internal/testbook), pipelined, for 20,000 random commands per seed; -sim.steps sets a longer run, e.g.
// go test ./settlement -run Property -args -sim.steps=200000.
package settlement
