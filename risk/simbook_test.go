package risk

import (
	"slices"

	"github.com/commitcore/commitcore/engine"
)

// This file is a copy of settlement's test matcher: the packages share no
// test code.

// simOrder is a resting order in simBook.
type simOrder struct {
	id        uint64
	acct, sym uint32
	side      engine.Side
	price     int64
	open      int64
	held      int64 // open quantity held by in-flight transactions
	busy      bool  // a Replace of it is in flight
}

// hold is quantity of a resting order held by one in-flight transaction.
type hold struct {
	id  uint64
	qty int64
}

type simTx struct {
	cmd   engine.Command
	out   engine.Outcome
	holds []hold
}

// simBook is a deliberately simple price-time matcher that holds what its
// in-flight transactions take, as matching does: orders join the book when
// their transaction commits, and a Replace takes its order whole.
type simBook struct {
	orders   map[uint64]*simOrder
	inflight map[engine.TxID]*simTx
}

func newSimBook() *simBook {
	return &simBook{orders: map[uint64]*simOrder{}, inflight: map[engine.TxID]*simTx{}}
}

// ids returns the resting order ids in order, for deterministic choices.
func (b *simBook) ids() []uint64 {
	ids := make([]uint64, 0, len(b.orders))
	for id := range b.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// prepare computes cmd's outcome and holds what it takes; false is a NO vote.
func (b *simBook) prepare(tx engine.TxID, cmd *engine.Command) (*engine.Outcome, bool) {
	st := &simTx{cmd: *cmd}
	out := &st.out
	side, sym, price, qty, id := cmd.Side, cmd.Symbol, cmd.Price, cmd.Qty, cmd.OrderID
	switch cmd.Kind {
	case engine.Cancel, engine.Replace:
		o, ok := b.orders[cmd.OrderID]
		if !ok || o.busy || o.acct != cmd.Account {
			return nil, false
		}
		if cmd.Kind == engine.Cancel {
			out.Canceled = o.open - o.held
			o.held += out.Canceled
			st.holds = append(st.holds, hold{o.id, out.Canceled})
			b.inflight[tx] = st
			return out, true
		}
		if o.held != 0 {
			return nil, false
		}
		o.busy, o.held = true, o.open
		side, sym = o.side, o.sym
	}
	var cands []*simOrder
	for _, o := range b.orders {
		crosses := (side == engine.Buy && o.price <= price) || (side == engine.Sell && o.price >= price)
		if o.sym == sym && o.side != side && crosses && o.open > o.held {
			cands = append(cands, o)
		}
	}
	slices.SortFunc(cands, func(x, y *simOrder) int {
		if x.price != y.price {
			if side == engine.Buy {
				return int(x.price - y.price)
			}
			return int(y.price - x.price)
		}
		return int(x.id - y.id)
	})
	rem := qty
	for _, o := range cands {
		if rem == 0 || out.NFills == engine.MaxFills {
			break
		}
		avail := o.open - o.held
		if o.acct == cmd.Account {
			// Self-trade prevention: cancel the resting order.
			if out.NRemoved == engine.MaxRemoved {
				break
			}
			out.Removed[out.NRemoved] = engine.Removal{OrderID: o.id, Account: o.acct, Side: o.side, Price: o.price, Qty: avail}
			out.NRemoved++
			o.held += avail
			st.holds = append(st.holds, hold{o.id, avail})
			continue
		}
		q := min(rem, avail)
		out.Fills[out.NFills] = engine.Fill{
			TradeID: engine.TradeIDOf(tx, out.NFills), Symbol: sym, TakerSide: side,
			MakerOrder: o.id, TakerOrder: id, Maker: o.acct, Taker: cmd.Account, Price: o.price, Qty: q,
		}
		out.NFills++
		o.held += q
		st.holds = append(st.holds, hold{o.id, q})
		rem -= q
	}
	switch {
	case cmd.Kind == engine.Replace || cmd.Type == engine.Limit:
		if rem > 0 {
			out.Resting, out.RestingPrice = rem, price
		}
	case cmd.Type == engine.FOK && rem > 0:
		b.inflight[tx] = st
		b.abort(tx)
		return nil, false
	default:
		out.Canceled = rem
	}
	b.inflight[tx] = st
	return out, true
}

func (b *simBook) take(id uint64, qty int64) {
	if qty == 0 {
		return
	}
	o := b.orders[id]
	o.open -= qty
	o.held -= qty
	if o.open == 0 && !o.busy {
		delete(b.orders, id)
	}
}

func (b *simBook) commit(tx engine.TxID) {
	st := b.inflight[tx]
	delete(b.inflight, tx)
	out, cmd := &st.out, &st.cmd
	for _, f := range out.FillSlice() {
		b.take(f.MakerOrder, f.Qty)
	}
	for _, r := range out.RemovedSlice() {
		b.take(r.OrderID, r.Qty)
	}
	switch cmd.Kind {
	case engine.NewOrder:
		if out.Resting > 0 {
			b.orders[cmd.OrderID] = &simOrder{id: cmd.OrderID, acct: cmd.Account, sym: cmd.Symbol, side: cmd.Side, price: out.RestingPrice, open: out.Resting}
		}
	case engine.Cancel:
		b.take(cmd.OrderID, out.Canceled)
	case engine.Replace:
		o := b.orders[cmd.OrderID]
		o.busy, o.held, o.price, o.open = false, 0, out.RestingPrice, out.Resting
		if o.open == 0 {
			delete(b.orders, o.id)
		}
	}
}

func (b *simBook) abort(tx engine.TxID) {
	st := b.inflight[tx]
	delete(b.inflight, tx)
	for _, h := range st.holds {
		if h.qty == 0 {
			continue
		}
		b.orders[h.id].held -= h.qty
	}
	if st.cmd.Kind == engine.Replace {
		o := b.orders[st.cmd.OrderID]
		o.busy, o.held = false, 0
	}
}
