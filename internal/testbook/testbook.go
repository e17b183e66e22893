// Package testbook drives a real matching.Matcher for the property tests
// of the participants that depend on matching's outcomes (risk and
// settlement), so that they are fed exactly the outcomes matching
// produces: pipelined transactions, fills held against later ones, partial
// fills, self-trade removals and truncation at engine.MaxFills. It keeps
// what a test needs besides the Matcher: each transaction in flight with
// its command and outcome, and the live orders to aim cancels and
// replaces at.
package testbook

import (
	"fmt"
	"slices"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/matching"
)

// MaxPrice is the top of every book's price range; prices run from 1 on a
// tick of 1.
const MaxPrice = 100_000

// Tx is a transaction in flight: its command and matching's outcome.
type Tx struct {
	Cmd engine.Command
	Out engine.Outcome
}

// Book is a Matcher with symbols 0…n-1 and the transactions in flight at
// it. It is not safe for concurrent use.
type Book struct {
	m        *matching.Matcher
	inflight map[engine.TxID]*Tx
	// placed holds the ids of orders that may rest: every committed
	// NewOrder that left a resting remainder, until it is seen gone.
	placed map[uint64]bool
}

// New returns a Book of symbols empty books with self-trade prevention
// stp.
func New(symbols int, stp matching.STPMode) (*Book, error) {
	cfg := matching.Config{STP: stp, Orders: 1 << 12}
	for s := range symbols {
		cfg.Symbols = append(cfg.Symbols, matching.SymbolConfig{ID: uint32(s), Name: fmt.Sprintf("SYM%d", s), Tick: 1, MinPrice: 1, MaxPrice: MaxPrice})
	}
	m, err := matching.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("testbook: %w", err)
	}
	return &Book{m: m, inflight: map[engine.TxID]*Tx{}, placed: map[uint64]bool{}}, nil
}

// Matcher returns the Matcher the Book drives.
func (b *Book) Matcher() *matching.Matcher { return b.m }

// Prepare prepares cmd as transaction tx at the Matcher. On a YES vote
// (engine.ReasonNone) the transaction is in flight until Commit or Abort;
// a NO vote leaves nothing behind.
func (b *Book) Prepare(tx engine.TxID, cmd *engine.Command) engine.Reason {
	t := &Tx{Cmd: *cmd}
	if r := b.m.Prepare(tx, cmd, &t.Out); r != engine.ReasonNone {
		return r
	}
	b.inflight[tx] = t
	return engine.ReasonNone
}

// Tx returns transaction tx in flight, or nil.
func (b *Book) Tx(tx engine.TxID) *Tx { return b.inflight[tx] }

// InFlight returns the ids of the transactions in flight, in order.
func (b *Book) InFlight() []engine.TxID {
	txs := make([]engine.TxID, 0, len(b.inflight))
	for tx := range b.inflight {
		txs = append(txs, tx)
	}
	slices.Sort(txs)
	return txs
}

// Len returns the number of transactions in flight.
func (b *Book) Len() int { return len(b.inflight) }

// Commit commits transaction tx in flight and returns it. It panics if tx
// is not in flight.
func (b *Book) Commit(tx engine.TxID) *Tx {
	t, ok := b.inflight[tx]
	if !ok {
		panic(fmt.Sprintf("testbook: commit of transaction %d, which is not in flight", tx))
	}
	delete(b.inflight, tx)
	b.m.Commit(tx, &t.Out)
	if t.Cmd.Kind == engine.NewOrder && t.Out.Resting > 0 {
		b.placed[t.Cmd.OrderID] = true
	}
	return t
}

// Abort aborts transaction tx in flight. It panics if tx is not in
// flight.
func (b *Book) Abort(tx engine.TxID) {
	if _, ok := b.inflight[tx]; !ok {
		panic(fmt.Sprintf("testbook: abort of transaction %d, which is not in flight", tx))
	}
	delete(b.inflight, tx)
	b.m.Abort(tx)
}

// Orders returns the committed live orders, in id order.
func (b *Book) Orders() []matching.OrderInfo {
	ids := make([]uint64, 0, len(b.placed))
	for id := range b.placed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	orders := make([]matching.OrderInfo, 0, len(ids))
	for _, id := range ids {
		o, ok := b.m.Order(id)
		if !ok {
			if !b.pendingOn(id) {
				delete(b.placed, id)
			}
			continue
		}
		orders = append(orders, o)
	}
	return orders
}

// pendingOn reports whether a transaction in flight acts on order id: a
// Replace of it may leave it off the committed book for now and still
// live.
func (b *Book) pendingOn(id uint64) bool {
	for _, t := range b.inflight {
		if t.Cmd.Kind == engine.Replace && t.Cmd.OrderID == id {
			return true
		}
	}
	return false
}
