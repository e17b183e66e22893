package matching

import (
	"math"

	"github.com/commitcore/commitcore/engine"
)

// order is one slot of the order pool. Slots are linked into their price
// level's FIFO, or into the free list through next.
type order struct {
	id      uint64
	open    int64 // open (unfilled) quantity
	held    int64 // part of open taken by transactions in flight
	price   int64
	account uint32
	book    int32
	level   int32
	prev    int32
	next    int32
	side    engine.Side
	// pending marks the new version of an order inserted by a transaction
	// still in flight; it is fully held and not yet on the public book.
	pending bool
}

// book is the order book of one symbol.
type book struct {
	cfg        SymbolConfig
	bids, asks ladder
	bestBid    int32 // highest non-empty bid level, -1 if none
	bestAsk    int32 // lowest non-empty ask level, -1 if none
}

func newBook(cfg SymbolConfig) book {
	n := int(cfg.Levels())
	return book{cfg: cfg, bids: newLadder(n), asks: newLadder(n), bestBid: -1, bestAsk: -1}
}

func (b *book) side(s engine.Side) *ladder {
	if s == engine.Buy {
		return &b.bids
	}
	return &b.asks
}

func (b *book) levelOf(price int64) int32 { return int32((price - b.cfg.MinPrice) / b.cfg.Tick) }

func (b *book) priceOf(lv int32) int64 { return b.cfg.MinPrice + int64(lv)*b.cfg.Tick }

// check validates an order's price and quantity for this book.
func (b *book) check(price, qty int64) engine.Reason {
	switch {
	case qty <= 0:
		return engine.ReasonBadQuantity
	case price < b.cfg.MinPrice || price > b.cfg.MaxPrice: // MinPrice > 0
		return engine.ReasonBadPrice
	case price%b.cfg.Tick != 0:
		return engine.ReasonOffTick
	case qty > math.MaxInt64/price:
		return engine.ReasonOverflow
	}
	return engine.ReasonNone
}
