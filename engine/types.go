package engine

import (
	"fmt"
	"io"
)

// TxID identifies one transaction. The coordinator assigns them monotonically
// and never reuses one, so a TxID also orders transactions.
type TxID uint64

// Epoch numbers coordinator incarnations. A backup that takes over bumps it;
// messages stamped with an older epoch are ignored.
type Epoch uint32

// Side is the side of an order.
type Side uint8

// Order sides.
const (
	Buy  Side = 1
	Sell Side = 2
)

// String returns "buy" or "sell".
func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return fmt.Sprintf("side(%d)", uint8(s))
}

// OrderType is the time-in-force and pricing rule of a new order.
type OrderType uint8

// Order types.
const (
	// Limit is a good-till-cancelled limit order: what does not fill rests.
	Limit OrderType = 1
	// IOC fills what it can at once and cancels the rest.
	IOC OrderType = 2
	// FOK fills completely at once or not at all.
	FOK OrderType = 3
	// Market fills at any price up to its protection limit (Command.Price)
	// and cancels the rest; it never rests.
	Market OrderType = 4
)

// String returns the order type's conventional name.
func (t OrderType) String() string {
	switch t {
	case Limit:
		return "limit"
	case IOC:
		return "ioc"
	case FOK:
		return "fok"
	case Market:
		return "market"
	}
	return fmt.Sprintf("ordertype(%d)", uint8(t))
}

// CommandKind says what a Command asks for.
type CommandKind uint8

// Command kinds. Each inbound command is one transaction.
const (
	NewOrder CommandKind = 1
	Cancel   CommandKind = 2
	Replace  CommandKind = 3
)

// String returns the command kind's name.
func (k CommandKind) String() string {
	switch k {
	case NewOrder:
		return "new"
	case Cancel:
		return "cancel"
	case Replace:
		return "replace"
	}
	return fmt.Sprintf("command(%d)", uint8(k))
}

// Command is one inbound instruction. It holds no pointers and has a fixed
// size so that it can be copied into a ring record or a journal entry as is.
//
// Prices are integers in minor currency units per lot and must lie on the
// symbol's tick grid; quantities are integers in lots. Notional value is
// Price × Qty, computed with overflow checks by whoever needs it.
type Command struct {
	Kind    CommandKind
	Side    Side      // NewOrder only
	Type    OrderType // NewOrder only
	Symbol  uint32
	Account uint32
	// OrderID names the order. For NewOrder the coordinator sets it to the
	// transaction id, so order ids are unique and never reused; for Cancel
	// and Replace it names the live order to act on.
	OrderID uint64
	// ClientOrderID is the submitter's own reference, echoed back.
	ClientOrderID uint64
	// Price is the limit price; for Market it is the protection price, the
	// worst price the order may trade at; for Replace the new price.
	Price int64
	// Qty is the order quantity; for Replace the new open (unfilled) quantity.
	Qty int64
	// Time is the sequencer's timestamp in nanoseconds. Participants use it,
	// never the wall clock, so that replay is deterministic.
	Time int64
}

// MaxFills bounds the fills one command may produce. Matching never produces
// more: what it cannot fill within MaxFills fills is treated as the order
// type treats an unfillable remainder (see matching's documentation).
const MaxFills = 16

// MaxRemoved bounds the resting orders one command may remove without a
// fill (self-trade prevention cancelling resting orders).
const MaxRemoved = 4

// Fill is one trade between a resting (maker) order and the incoming (taker)
// order.
type Fill struct {
	TradeID    uint64
	Symbol     uint32
	TakerSide  Side
	MakerOrder uint64
	TakerOrder uint64
	Maker      uint32 // maker's account
	Taker      uint32 // taker's account
	Price      int64
	Qty        int64
}

// TradeIDOf returns the trade id of the i-th fill of transaction tx. Deriving
// it from the transaction keeps trade ids unique and deterministic under
// replay without any counter state.
func TradeIDOf(tx TxID, i int) uint64 {
	if i < 0 || i >= MaxFills {
		panic(fmt.Sprintf("engine: fill index %d outside [0,%d)", i, MaxFills))
	}
	return uint64(tx)*MaxFills + uint64(i)
}

// Removal is a resting order taken off the book without trading, for
// example by self-trade prevention. Participants release what it held.
type Removal struct {
	OrderID uint64
	Account uint32
	Side    Side
	Price   int64
	Qty     int64 // open quantity removed
}

// Outcome is what matching decided a command does, computed at PREPARE and
// carried to every participant in PRE-COMMIT and COMMIT. Risk and settlement
// reserve for the worst case at PREPARE and settle from the Outcome.
//
// The counts and quantities come first and the arrays last: most outcomes
// have few fills, and copying or clearing one then touches a single cache
// line at the head rather than lines a kilobyte apart.
type Outcome struct {
	NFills   int
	NRemoved int
	// Resting is the open quantity of the command's own order left on the
	// book once the command is applied: the unfilled part of a Limit order,
	// the new quantity of a Replace, zero for IOC, FOK, Market and Cancel.
	Resting int64
	// RestingPrice is the price the order rests at (for Replace, the new one).
	RestingPrice int64
	// Canceled is the open quantity of the command's own order cancelled by
	// this command: the target of a Cancel, or the unfilled part of an IOC or
	// Market order.
	Canceled int64
	Fills    [MaxFills]Fill
	Removed  [MaxRemoved]Removal
}

// Reset empties o for reuse without allocating.
func (o *Outcome) Reset() {
	o.NFills, o.NRemoved = 0, 0
	o.Resting, o.RestingPrice, o.Canceled = 0, 0, 0
}

// FillSlice returns the valid fills.
func (o *Outcome) FillSlice() []Fill { return o.Fills[:o.NFills] }

// RemovedSlice returns the valid removals.
func (o *Outcome) RemovedSlice() []Removal { return o.Removed[:o.NRemoved] }

// Participant is one party to every transaction: matching, risk and
// settlement implement it, and so can a user's own component.
//
// The engine calls a participant from one goroutine at a time, in
// transaction order for Prepare. For each transaction it calls Prepare at
// most once, then at most one of Commit or Abort (Commit optionally preceded
// by PreCommit). Duplicated protocol messages never reach a Participant
// twice; after a crash, state is rebuilt with Restore and Apply.
type Participant interface {
	// Prepare validates cmd and reserves everything needed to commit it,
	// then votes: ReasonNone is YES, anything else is NO with that reason.
	// A NO vote must reserve nothing. Matching fills out with the tentative
	// outcome; other participants leave out untouched.
	Prepare(tx TxID, cmd *Command, out *Outcome) Reason
	// PreCommit pins the reservations of a YES vote: the transaction will
	// commit. It cannot fail.
	PreCommit(tx TxID, out *Outcome)
	// Commit applies the transaction's effects using matching's outcome and
	// frees what was reserved beyond them.
	Commit(tx TxID, out *Outcome)
	// Abort releases whatever Prepare reserved for tx. Calling it for a
	// transaction the participant never prepared, or voted NO on, does
	// nothing.
	Abort(tx TxID)
	// Apply replays a committed transaction during recovery: it has the
	// effect of Prepare followed by Commit with the journaled outcome, and
	// never votes. It returns an error if the journal and state disagree.
	Apply(tx TxID, cmd *Command, out *Outcome) error
	// Snapshot writes the participant's committed state. It is called only
	// when no transaction is in flight at the participant.
	Snapshot(w io.Writer) error
	// Restore replaces the state with one written by Snapshot.
	Restore(r io.Reader) error
}
