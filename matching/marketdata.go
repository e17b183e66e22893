package matching

import (
	"math"

	"github.com/commitcore/commitcore/engine"
)

// Level is one price level of the public book: committed orders only,
// including quantity that transactions in flight hold (it is still on the
// book until they commit).
type Level struct {
	Price  int64
	Qty    int64 // total open quantity; saturates at math.MaxInt64
	Orders int
}

// OrderInfo describes a committed live order.
type OrderInfo struct {
	ID      uint64
	Symbol  uint32
	Account uint32
	Side    engine.Side
	Price   int64
	Open    int64
}

// BBO returns the best bid and offer of symbol. A side with no orders has
// a zero Level. ok is false for an unknown symbol.
func (m *Matcher) BBO(symbol uint32) (bid, ask Level, ok bool) {
	var buf [1]Level
	if m.Depth(symbol, engine.Buy, buf[:]) == 1 {
		bid = buf[0]
	}
	if m.Depth(symbol, engine.Sell, buf[:]) == 1 {
		ask = buf[0]
	}
	_, ok = m.bookOf(symbol)
	return bid, ask, ok
}

// Depth fills dst with the best len(dst) price levels of one side of
// symbol's book, best first, and returns how many it filled. It allocates
// nothing; an unknown symbol or side fills none.
func (m *Matcher) Depth(symbol uint32, side engine.Side, dst []Level) int {
	bi, ok := m.bookOf(symbol)
	if !ok || (side != engine.Buy && side != engine.Sell) {
		return 0
	}
	b := &m.books[bi]
	l := b.side(side)
	n := 0
	lv := b.bestAsk
	if side == engine.Buy {
		lv = b.bestBid
	}
	for lv >= 0 && n < len(dst) {
		x := Level{Price: b.priceOf(lv)}
		for s := l.levels[lv].head; s >= 0; s = m.orders[s].next {
			o := &m.orders[s]
			if o.pending {
				continue
			}
			x.Orders++
			if x.Qty > math.MaxInt64-o.open {
				x.Qty = math.MaxInt64
			} else {
				x.Qty += o.open
			}
		}
		if x.Orders > 0 {
			dst[n] = x
			n++
		}
		if side == engine.Buy {
			lv = l.down(lv - 1)
		} else {
			lv = l.up(lv + 1)
		}
	}
	return n
}

// Order returns the committed live order id, if there is one.
func (m *Matcher) Order(id uint64) (OrderInfo, bool) {
	s, ok := m.ids.get(id)
	if !ok || m.orders[s].pending {
		return OrderInfo{}, false
	}
	o := &m.orders[s]
	return OrderInfo{ID: o.id, Symbol: m.books[o.book].cfg.ID, Account: o.account, Side: o.side, Price: o.price, Open: o.open}, true
}
