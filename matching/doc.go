// Package matching is commitcore's matching engine: one price-time
// priority limit order book per symbol, run as an engine.Participant.
//
// # Books
//
// A Matcher is built with New from a Config listing each symbol's id, name,
// tick and price range. Each side of a book is a ladder with one FIFO level
// per tick (at most MaxLevels) and a bitmap of the non-empty levels; orders
// live in a pool of fixed-size slots linked into their level and are found
// by id through an open-addressing table. Nothing allocates per order or
// per command once the pool (Config.Orders) is large enough.
//
// Commands are engine.Commands. A NewOrder is Limit (good till
// cancelled), IOC, FOK or Market (Command.Price is its protection price: it
// trades at that price or better and never rests). Cancel removes an order.
// Replace sets a new price and open quantity: the same price with a lower
// or equal quantity keeps the order's place in the queue; a new price or a
// larger quantity sends it to the back of its new level, and a price that
// crosses the book trades first, as a taker.
//
// Rejections are votes with an engine.Reason and change nothing:
// ReasonUnknownSymbol, ReasonMalformed (bad side or type, order id zero or
// already live), ReasonBadQuantity (zero or negative), ReasonBadPrice
// (outside the symbol's range), ReasonOffTick, ReasonOverflow (price ×
// quantity overflows int64), ReasonUnknownOrder and ReasonNotOwner (cancel
// or replace), ReasonFOKUnfilled, ReasonSelfTrade, and ReasonBackpressure
// for a conflict with a transaction in flight (below).
//
// # Bounds and self-trade prevention
//
// One command produces at most engine.MaxFills fills and removes at most
// engine.MaxRemoved resting orders. An order that reaches either bound with
// crossing liquidity left stops there: its fills stand and its remainder
// is cancelled (Outcome.Canceled), whatever its type, so a Limit order or
// Replace never rests across the book; a FOK order is rejected with
// ReasonFOKUnfilled instead. Self-trade prevention is Config.STP: with
// CancelResting the incoming order removes the resting orders of its own
// account it meets (Outcome.Removed) and goes on; with CancelIncoming it
// stops at the first one, rejected with ReasonSelfTrade if it has not
// traded yet, else with its remainder cancelled.
//
// # Outcome
//
// Fills are in execution order at the maker's price; Fill.TradeID is
// engine.TradeIDOf(tx, i). Resting and RestingPrice are what rests of the
// command's own order: the Limit remainder, or for a Replace the order's
// whole new open quantity at its new price (the old version is gone).
// Canceled is the open quantity cancelled of the command's own order: a
// Cancel's target, or the unfilled remainder of IOC, Market, or a Limit or
// Replace stopped by a bound or by CancelIncoming.
//
// # Transactions in flight
//
// Prepare computes the outcome and holds what it needs: the quantity its
// fills take from each maker, the whole of every order it removes, cancels
// or replaces, and it links the order's resting remainder into its level as
// a pending order, itself fully held. Commit turns holds into effects and
// Abort releases them, so the book is left exactly as before. Several
// transactions may be prepared at once and end in any order.
//
// A later command may take the free part of an order that is partly held,
// but if it would need to go past held quantity (or act on a held order,
// or cross a pending one) its outcome would depend on how the earlier
// transaction ends, so it votes NO with ReasonBackpressure: retry once the
// transactions in flight are done. This keeps every committed outcome
// equal to what serial execution of the committed commands in transaction
// order computes, which is what Apply checks during replay. A pending
// order may cross an order its own transaction removes; the committed book
// (the one market data shows) never crosses.
//
// # Market data
//
// BBO and Depth report committed price levels (held quantity is still on
// the book; pending orders are not). Config.OnTrade receives a Trade by
// value for every fill when its transaction commits; Order looks up a live
// order. Snapshot writes the books in a deterministic binary form and
// Restore validates and loads one.
//
// # Tests
//
// The differential test runs 200,000 random commands against a sorted-slice
// reference book by default; -matching.n=1000000 runs the full million.
package matching
