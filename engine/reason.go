package engine

import "fmt"

// Reason says why a transaction was not committed, or why a participant
// voted NO. ReasonNone means committed (or YES). Callers branch on it, so
// the values are stable: new reasons are only ever appended.
type Reason uint16

// Reasons. The groups are: protocol, validation, matching, risk, settlement.
const (
	ReasonNone Reason = iota

	// Protocol.
	ReasonTimeout                // a participant did not vote within the PREPARE timeout
	ReasonCircuitBreaker         // a circuit breaker aborted the transaction in PREPARE
	ReasonParticipantUnavailable // the overload breaker rejected it before PREPARE
	ReasonTerminated             // aborted by termination or takeover after a coordinator failure
	ReasonHalted                 // the market or symbol is halted
	ReasonBackpressure           // a ring or queue was full; retry later
	ReasonMalformed              // the command's fields are inconsistent

	// Validation.
	ReasonUnknownSymbol
	ReasonUnknownAccount
	ReasonUnknownOrder
	ReasonBadQuantity // zero or negative quantity
	ReasonBadPrice    // zero, negative or out-of-range price
	ReasonOffTick     // price not on the symbol's tick grid
	ReasonOverflow    // a quantity or notional would overflow
	ReasonDuplicateClientOrderID
	ReasonNotOwner // cancel or replace of another account's order

	// Matching.
	ReasonFOKUnfilled // a fill-or-kill order could not fill completely
	ReasonSelfTrade   // self-trade prevention cancelled the incoming order

	// Risk.
	ReasonMaxQty
	ReasonMaxNotional
	ReasonPriceBand
	ReasonPositionLimit
	ReasonCreditLimit
	ReasonRateLimit

	// Settlement.
	ReasonInsufficientCash
	ReasonInsufficientSecurities

	numReasons // keep last
)

// NumReasons is the number of defined reasons, for tables indexed by Reason.
const NumReasons = int(numReasons)

var reasonNames = [...]string{
	ReasonNone:                   "none",
	ReasonTimeout:                "timeout",
	ReasonCircuitBreaker:         "circuit_breaker",
	ReasonParticipantUnavailable: "participant_unavailable",
	ReasonTerminated:             "terminated",
	ReasonHalted:                 "halted",
	ReasonBackpressure:           "backpressure",
	ReasonMalformed:              "malformed",
	ReasonUnknownSymbol:          "unknown_symbol",
	ReasonUnknownAccount:         "unknown_account",
	ReasonUnknownOrder:           "unknown_order",
	ReasonBadQuantity:            "bad_quantity",
	ReasonBadPrice:               "bad_price",
	ReasonOffTick:                "off_tick",
	ReasonOverflow:               "overflow",
	ReasonDuplicateClientOrderID: "duplicate_client_order_id",
	ReasonNotOwner:               "not_owner",
	ReasonFOKUnfilled:            "fok_unfilled",
	ReasonSelfTrade:              "self_trade",
	ReasonMaxQty:                 "max_qty",
	ReasonMaxNotional:            "max_notional",
	ReasonPriceBand:              "price_band",
	ReasonPositionLimit:          "position_limit",
	ReasonCreditLimit:            "credit_limit",
	ReasonRateLimit:              "rate_limit",
	ReasonInsufficientCash:       "insufficient_cash",
	ReasonInsufficientSecurities: "insufficient_securities",
}

// String returns the reason's snake_case name, as used in reports and JSON.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint16(r))
}

// Valid reports whether r is a defined reason. Decoders use it to reject
// values read from untrusted memory.
func (r Reason) Valid() bool { return r < numReasons }
