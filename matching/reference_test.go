package matching

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/commitcore/commitcore/engine"
)

// refBook is the differential test's oracle: a deliberately simple order
// book kept as two slices in priority order, matched by a plain loop. It
// has no holds, no pool and no index; it executes one command at a time.
type refBook struct {
	cfg        SymbolConfig
	bids, asks []refOrder // best first; FIFO within a price
}

type refOrder struct {
	id      uint64
	account uint32
	side    engine.Side
	price   int64
	open    int64
}

type reference struct {
	books []*refBook
	stp   STPMode
}

func newReference(cfg Config) *reference {
	r := &reference{stp: cfg.STP}
	for _, s := range cfg.Symbols {
		r.books = append(r.books, &refBook{cfg: s})
	}
	return r
}

func (r *reference) book(sym uint32) *refBook {
	for _, b := range r.books {
		if b.cfg.ID == sym {
			return b
		}
	}
	return nil
}

// find returns the book, side slice and index of order id, or nil.
func (r *reference) find(id uint64) (*refBook, *[]refOrder, int) {
	for _, b := range r.books {
		for _, side := range []*[]refOrder{&b.bids, &b.asks} {
			for i, o := range *side {
				if o.id == id {
					return b, side, i
				}
			}
		}
	}
	return nil, nil, -1
}

func (b *refBook) check(price, qty int64) engine.Reason {
	switch {
	case qty <= 0:
		return engine.ReasonBadQuantity
	case price < b.cfg.MinPrice || price > b.cfg.MaxPrice:
		return engine.ReasonBadPrice
	case price%b.cfg.Tick != 0:
		return engine.ReasonOffTick
	case qty > math.MaxInt64/price:
		return engine.ReasonOverflow
	}
	return engine.ReasonNone
}

// insert places o behind every order at a price as good as or better
// than its own.
func (b *refBook) insert(o refOrder) {
	side := &b.asks
	better := func(p int64) bool { return p <= o.price }
	if o.side == engine.Buy {
		side = &b.bids
		better = func(p int64) bool { return p >= o.price }
	}
	i := 0
	for i < len(*side) && better((*side)[i].price) {
		i++
	}
	*side = slices.Insert(*side, i, o)
}

func (b *refBook) remove(id uint64) {
	b.bids = slices.DeleteFunc(b.bids, func(o refOrder) bool { return o.id == id })
	b.asks = slices.DeleteFunc(b.asks, func(o refOrder) bool { return o.id == id })
}

// exec runs one command serially.
func (r *reference) exec(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	out.Reset()
	b := r.book(cmd.Symbol)
	if b == nil {
		return engine.ReasonUnknownSymbol
	}
	switch cmd.Kind {
	case engine.NewOrder:
		if (cmd.Side != engine.Buy && cmd.Side != engine.Sell) || cmd.Type < engine.Limit || cmd.Type > engine.Market || cmd.OrderID == 0 {
			return engine.ReasonMalformed
		}
		if reason := b.check(cmd.Price, cmd.Qty); reason != engine.ReasonNone {
			return reason
		}
		if ob, _, _ := r.find(cmd.OrderID); ob != nil {
			return engine.ReasonMalformed
		}
		return r.take(tx, b, refOrder{id: cmd.OrderID, account: cmd.Account, side: cmd.Side, price: cmd.Price, open: cmd.Qty}, cmd.Type, out, nil)
	case engine.Cancel, engine.Replace:
		ob, side, i := r.find(cmd.OrderID)
		if ob != b {
			return engine.ReasonUnknownOrder
		}
		o := (*side)[i]
		if o.account != cmd.Account {
			return engine.ReasonNotOwner
		}
		if cmd.Kind == engine.Cancel {
			b.remove(o.id)
			out.Canceled = o.open
			return engine.ReasonNone
		}
		if reason := b.check(cmd.Price, cmd.Qty); reason != engine.ReasonNone {
			return reason
		}
		if cmd.Price == o.price && cmd.Qty <= o.open {
			(*side)[i].open = cmd.Qty
			out.Resting, out.RestingPrice = cmd.Qty, cmd.Price
			return engine.ReasonNone
		}
		return r.take(tx, b, refOrder{id: o.id, account: o.account, side: o.side, price: cmd.Price, open: cmd.Qty}, engine.Limit, out, &o)
	}
	return engine.ReasonMalformed
}

// take matches the incoming order in against b and applies the result if
// the command is accepted; old is the order a Replace replaces.
func (r *reference) take(tx engine.TxID, b *refBook, in refOrder, typ engine.OrderType, out *engine.Outcome, old *refOrder) engine.Reason {
	opp := b.asks
	crosses := func(p int64) bool { return p <= in.price }
	if in.side == engine.Sell {
		opp = b.bids
		crosses = func(p int64) bool { return p >= in.price }
	}
	rem := in.open
	truncated, selfTrade := false, false
	for _, o := range opp {
		if rem == 0 || !crosses(o.price) {
			break
		}
		if o.account == in.account {
			if r.stp == CancelIncoming {
				selfTrade = true
				break
			}
			if out.NRemoved == engine.MaxRemoved {
				truncated = true
				break
			}
			out.Removed[out.NRemoved] = engine.Removal{OrderID: o.id, Account: o.account, Side: o.side, Price: o.price, Qty: o.open}
			out.NRemoved++
			continue
		}
		if out.NFills == engine.MaxFills {
			truncated = true
			break
		}
		q := min(rem, o.open)
		out.Fills[out.NFills] = engine.Fill{TradeID: engine.TradeIDOf(tx, out.NFills), Symbol: b.cfg.ID, TakerSide: in.side,
			MakerOrder: o.id, TakerOrder: in.id, Maker: o.account, Taker: in.account, Price: o.price, Qty: q}
		out.NFills++
		rem -= q
	}
	switch {
	case typ == engine.FOK && rem > 0 && selfTrade:
		return engine.ReasonSelfTrade
	case typ == engine.FOK && rem > 0:
		return engine.ReasonFOKUnfilled
	case selfTrade && out.NFills == 0:
		return engine.ReasonSelfTrade
	case rem == 0:
	case typ == engine.Limit && !truncated && !selfTrade:
		out.Resting, out.RestingPrice = rem, in.price
	default:
		out.Canceled = rem
	}
	// Accepted: apply.
	if old != nil {
		b.remove(old.id)
	}
	for _, x := range out.RemovedSlice() {
		b.remove(x.OrderID)
	}
	for _, f := range out.FillSlice() {
		for _, side := range []*[]refOrder{&b.bids, &b.asks} {
			for i := range *side {
				if (*side)[i].id == f.MakerOrder {
					(*side)[i].open -= f.Qty
				}
			}
			*side = slices.DeleteFunc(*side, func(o refOrder) bool { return o.open == 0 })
		}
	}
	if out.Resting > 0 {
		in.open = out.Resting
		b.insert(in)
	}
	return engine.ReasonNone
}

// snapshot encodes the reference books exactly as Matcher.Snapshot does.
func (r *reference) snapshot() []byte {
	buf := []byte(snapshotMagic)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.books)))
	for _, b := range r.books {
		buf = binary.LittleEndian.AppendUint32(buf, b.cfg.ID)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(b.cfg.Tick))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(b.cfg.MinPrice))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(b.cfg.MaxPrice))
		for _, side := range [][]refOrder{b.bids, b.asks} {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(len(side)))
			for _, o := range side {
				buf = binary.LittleEndian.AppendUint64(buf, o.id)
				buf = binary.LittleEndian.AppendUint32(buf, o.account)
				buf = binary.LittleEndian.AppendUint64(buf, uint64(o.price))
				buf = binary.LittleEndian.AppendUint64(buf, uint64(o.open))
			}
		}
	}
	return buf
}
