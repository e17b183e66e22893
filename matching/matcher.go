package matching

import (
	"errors"
	"fmt"
	"math"

	"github.com/commitcore/commitcore/engine"
)

// Trade is one committed trade as published on the trade feed.
type Trade struct {
	ID        uint64 // engine.TradeIDOf(transaction, fill index)
	Symbol    uint32
	Price     int64
	Qty       int64
	Aggressor engine.Side // the taker's side
	BuyOrder  uint64
	SellOrder uint64
	Time      int64 // the command's sequencer timestamp
}

// ErrReplayMismatch is wrapped by Apply when the journaled outcome is not
// what the book computes for the command.
var ErrReplayMismatch = errors.New("matching: journaled outcome disagrees with the book")

// ErrInFlight is returned by Snapshot and Restore while transactions are
// prepared and not yet committed or aborted.
var ErrInFlight = errors.New("matching: transactions in flight")

// Matcher holds one limit order book per configured symbol and implements
// engine.Participant. It is not safe for concurrent use: the engine calls
// it from one goroutine.
type Matcher struct {
	cfg      Config
	books    []book
	bookIdx  map[uint32]int32
	lastSym  uint32
	lastBook int32
	orders   []order // the pool; free slots are chained through next
	free     int32
	ids      idIndex
	txs      txRing
	scratch  txRec
	replay   engine.Outcome
}

var _ engine.Participant = (*Matcher)(nil)

// New returns a Matcher with empty books for cfg's symbols.
func New(cfg Config) (*Matcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Orders == 0 {
		cfg.Orders = 1 << 16
	}
	cfg.Symbols = append([]SymbolConfig(nil), cfg.Symbols...)
	m := &Matcher{cfg: cfg, bookIdx: make(map[uint32]int32, len(cfg.Symbols)), lastBook: -1}
	for i, s := range cfg.Symbols {
		m.books = append(m.books, newBook(s))
		m.bookIdx[s.ID] = int32(i)
	}
	m.reset()
	return m, nil
}

// reset empties every book.
func (m *Matcher) reset() {
	for i := range m.books {
		m.books[i] = newBook(m.cfg.Symbols[i])
	}
	m.orders = make([]order, 0, m.cfg.Orders)
	m.free = -1
	m.ids = newIDIndex(m.cfg.Orders)
	m.txs = txRing{recs: make([]txRec, 64)}
}

func (m *Matcher) bookOf(sym uint32) (int32, bool) {
	if sym == m.lastSym && m.lastBook >= 0 {
		return m.lastBook, true
	}
	i, ok := m.bookIdx[sym]
	if ok {
		m.lastSym, m.lastBook = sym, i
	}
	return i, ok
}

// Prepare computes cmd's outcome into out and, on a YES vote, holds the
// resting quantity the fills take, the orders the command removes or
// replaces, and inserts the order's resting remainder as pending, so that a
// transaction prepared next sees the book as if this one committed or
// aborted, whichever happens (see the package documentation).
func (m *Matcher) Prepare(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	if m.txs.find(tx) != nil {
		panic(fmt.Sprintf("matching: transaction %d prepared twice", tx))
	}
	r := m.txs.next()
	if reason := m.plan(tx, cmd, out, r); reason != engine.ReasonNone {
		out.Reset()
		return reason
	}
	m.hold(r)
	m.txs.push()
	return engine.ReasonNone
}

// PreCommit does nothing but check that tx is prepared: matching's holds
// are pinned from Prepare on, and only Abort releases them.
func (m *Matcher) PreCommit(tx engine.TxID, _ *engine.Outcome) {
	if m.txs.find(tx) == nil {
		panic(fmt.Sprintf("matching: pre-commit of transaction %d, which is not prepared here", tx))
	}
}

// Commit applies tx's prepared outcome to the book and publishes its
// trades. out must be the outcome Prepare produced for tx.
func (m *Matcher) Commit(tx engine.TxID, out *engine.Outcome) {
	r := m.txs.find(tx)
	if r == nil {
		panic(fmt.Sprintf("matching: commit of transaction %d, which is not prepared here", tx))
	}
	if out != nil && (out.NFills != r.nFills || out.NRemoved != r.nRem || out.Resting != r.rest+r.newQty) {
		panic(fmt.Sprintf("matching: commit of transaction %d with an outcome that is not the one prepared", tx))
	}
	m.commit(r)
	m.txs.retire(r)
}

// Abort releases what Prepare held for tx and removes its pending order,
// leaving the book exactly as it was. Unknown transactions are ignored.
func (m *Matcher) Abort(tx engine.TxID) {
	if r := m.txs.find(tx); r != nil {
		m.abort(r)
		m.txs.retire(r)
	}
}

// Apply replays a committed transaction: it prepares cmd, checks that the
// computed outcome equals the journaled one, and commits it. On a mismatch
// it changes nothing and returns an error wrapping ErrReplayMismatch.
func (m *Matcher) Apply(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) error {
	got := &m.replay
	if reason := m.Prepare(tx, cmd, got); reason != engine.ReasonNone {
		return fmt.Errorf("apply transaction %d: %w: the book rejects the command (%v)", tx, ErrReplayMismatch, reason)
	}
	if d := diffOutcome(got, out); d != "" {
		m.Abort(tx)
		return fmt.Errorf("apply transaction %d: %w: %s", tx, ErrReplayMismatch, d)
	}
	m.Commit(tx, got)
	return nil
}

// Execute prepares and commits cmd at once, for callers that run matching
// alone: the same outcome as Prepare followed by Commit, without keeping a
// record of the transaction. Transactions in flight hold against it as
// against Prepare.
func (m *Matcher) Execute(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	r := &m.scratch
	if reason := m.plan(tx, cmd, out, r); reason != engine.ReasonNone {
		out.Reset()
		return reason
	}
	m.hold(r)
	m.commit(r)
	return engine.ReasonNone
}

// InFlight returns the number of transactions prepared and not yet
// committed or aborted.
func (m *Matcher) InFlight() int { return m.txs.inFlight() }

func diffOutcome(got, want *engine.Outcome) string {
	switch {
	case got.NFills != want.NFills:
		return fmt.Sprintf("%d fills, journal has %d", got.NFills, want.NFills)
	case got.NRemoved != want.NRemoved:
		return fmt.Sprintf("%d removals, journal has %d", got.NRemoved, want.NRemoved)
	case got.Resting != want.Resting || got.RestingPrice != want.RestingPrice:
		return fmt.Sprintf("resting %d at %d, journal has %d at %d", got.Resting, got.RestingPrice, want.Resting, want.RestingPrice)
	case got.Canceled != want.Canceled:
		return fmt.Sprintf("canceled %d, journal has %d", got.Canceled, want.Canceled)
	}
	for i, f := range got.FillSlice() {
		if f != want.Fills[i] {
			return fmt.Sprintf("fill %d is %+v, journal has %+v", i, f, want.Fills[i])
		}
	}
	for i, x := range got.RemovedSlice() {
		if x != want.Removed[i] {
			return fmt.Sprintf("removal %d is %+v, journal has %+v", i, x, want.Removed[i])
		}
	}
	return ""
}

// plan validates cmd and computes its outcome without changing the book.
func (m *Matcher) plan(tx engine.TxID, cmd *engine.Command, out *engine.Outcome, r *txRec) engine.Reason {
	out.Reset()
	bi, ok := m.bookOf(cmd.Symbol)
	if !ok {
		return engine.ReasonUnknownSymbol
	}
	*r = txRec{tx: tx, book: bi, kind: cmd.Kind, account: cmd.Account, taker: cmd.OrderID,
		time: cmd.Time, target: -1, slot: -1, price: cmd.Price}
	b := &m.books[bi]
	switch cmd.Kind {
	case engine.NewOrder:
		if (cmd.Side != engine.Buy && cmd.Side != engine.Sell) || cmd.Type < engine.Limit || cmd.Type > engine.Market || cmd.OrderID == 0 {
			return engine.ReasonMalformed
		}
		if reason := b.check(cmd.Price, cmd.Qty); reason != engine.ReasonNone {
			return reason
		}
		if _, ok := m.ids.get(cmd.OrderID); ok {
			return engine.ReasonMalformed
		}
		r.side = cmd.Side
		rem, st := m.match(b, r, cmd.Qty, out)
		return m.finish(b, r, cmd.Type, rem, st, out)
	case engine.Cancel:
		s, reason := m.target(bi, cmd)
		if reason != engine.ReasonNone {
			return reason
		}
		r.target = s
		out.Canceled = m.orders[s].open
		return engine.ReasonNone
	case engine.Replace:
		s, reason := m.target(bi, cmd)
		if reason != engine.ReasonNone {
			return reason
		}
		if reason := b.check(cmd.Price, cmd.Qty); reason != engine.ReasonNone {
			return reason
		}
		o := &m.orders[s]
		r.target, r.side = s, o.side
		if cmd.Price == o.price && cmd.Qty <= o.open {
			r.inPlace, r.newQty = true, cmd.Qty
			out.Resting, out.RestingPrice = cmd.Qty, cmd.Price
			return engine.ReasonNone
		}
		rem, st := m.match(b, r, cmd.Qty, out)
		return m.finish(b, r, engine.Limit, rem, st, out)
	}
	return engine.ReasonMalformed
}

// target finds the live order a Cancel or Replace acts on.
func (m *Matcher) target(bi int32, cmd *engine.Command) (int32, engine.Reason) {
	s, ok := m.ids.get(cmd.OrderID)
	switch {
	case !ok || m.orders[s].book != bi:
		return -1, engine.ReasonUnknownOrder
	case m.orders[s].account != cmd.Account:
		return -1, engine.ReasonNotOwner
	case m.orders[s].held > 0:
		// The order is being traded, cancelled or replaced by a
		// transaction in flight: what this command would do depends
		// on how that one ends.
		return -1, engine.ReasonBackpressure
	}
	return s, engine.ReasonNone
}

// stop says why matching an incoming order ended.
type stop uint8

const (
	exhausted stop = iota // filled, or no more crossing liquidity
	truncated             // MaxFills or MaxRemoved reached with crossing liquidity left
	selfTrade             // CancelIncoming met a resting order of the same account
	conflict              // the order needs quantity held by a transaction in flight
)

// match walks the opposite side of b in price-time priority from the best
// price to r.price and records the fills and removals in out and r. It
// returns the unfilled quantity and why it stopped.
func (m *Matcher) match(b *book, r *txRec, qty int64, out *engine.Outcome) (int64, stop) {
	limit := b.levelOf(r.price)
	rem := qty
	if r.side == engine.Buy {
		for lv := b.bestAsk; rem > 0 && lv >= 0 && lv <= limit; lv = b.asks.up(lv + 1) {
			var st stop
			if rem, st = m.matchLevel(b, &b.asks.levels[lv], r, rem, out); st != exhausted {
				return rem, st
			}
		}
		return rem, exhausted
	}
	for lv := b.bestBid; rem > 0 && lv >= limit; lv = b.bids.down(lv - 1) {
		var st stop
		if rem, st = m.matchLevel(b, &b.bids.levels[lv], r, rem, out); st != exhausted {
			return rem, st
		}
	}
	return rem, exhausted
}

func (m *Matcher) matchLevel(b *book, lv *level, r *txRec, rem int64, out *engine.Outcome) (int64, stop) {
	for s := lv.head; s >= 0 && rem > 0; s = m.orders[s].next {
		o := &m.orders[s]
		if o.held > 0 {
			// Taking part of the free quantity is safe whatever the
			// holder does; going past the order is not.
			if o.account != r.account && o.held < o.open && out.NFills < engine.MaxFills {
				rem -= m.fill(b, r, s, min(rem, o.open-o.held), out)
			}
			if rem > 0 {
				return rem, conflict
			}
			return 0, exhausted
		}
		if o.account == r.account {
			if m.cfg.STP == CancelIncoming {
				return rem, selfTrade
			}
			if out.NRemoved == engine.MaxRemoved {
				return rem, truncated
			}
			out.Removed[out.NRemoved] = engine.Removal{OrderID: o.id, Account: o.account, Side: o.side, Price: o.price, Qty: o.open}
			r.removed[out.NRemoved] = s
			out.NRemoved++
			r.nRem = out.NRemoved
			continue
		}
		if out.NFills == engine.MaxFills {
			return rem, truncated
		}
		rem -= m.fill(b, r, s, min(rem, o.open), out)
	}
	return rem, exhausted
}

func (m *Matcher) fill(b *book, r *txRec, s int32, q int64, out *engine.Outcome) int64 {
	o := &m.orders[s]
	i := out.NFills
	out.Fills[i] = engine.Fill{
		TradeID: engine.TradeIDOf(r.tx, i), Symbol: b.cfg.ID, TakerSide: r.side,
		MakerOrder: o.id, TakerOrder: r.taker, Maker: o.account, Taker: r.account,
		Price: o.price, Qty: q,
	}
	r.maker[i], r.qty[i] = s, q
	out.NFills++
	r.nFills = out.NFills
	return q
}

// finish decides what becomes of an incoming order's unfilled quantity.
func (m *Matcher) finish(b *book, r *txRec, typ engine.OrderType, rem int64, st stop, out *engine.Outcome) engine.Reason {
	switch {
	case st == conflict:
		return engine.ReasonBackpressure
	case typ == engine.FOK && rem > 0:
		if st == selfTrade {
			return engine.ReasonSelfTrade
		}
		return engine.ReasonFOKUnfilled
	case st == selfTrade && out.NFills == 0:
		return engine.ReasonSelfTrade
	case rem == 0:
	case typ == engine.Limit && st == exhausted:
		r.rest, r.restLvl = rem, b.levelOf(r.price)
		out.Resting, out.RestingPrice = rem, r.price
	default:
		out.Canceled = rem
	}
	return engine.ReasonNone
}

// hold applies a YES vote's reservations.
func (m *Matcher) hold(r *txRec) {
	for i := 0; i < r.nFills; i++ {
		m.orders[r.maker[i]].held += r.qty[i]
	}
	for _, s := range r.removed[:r.nRem] {
		m.orders[s].held = m.orders[s].open
	}
	if r.target >= 0 {
		m.orders[r.target].held = m.orders[r.target].open
	}
	if r.rest > 0 {
		s := m.alloc()
		m.orders[s] = order{
			id: r.taker, open: r.rest, held: r.rest, price: r.price, account: r.account,
			book: r.book, level: r.restLvl, side: r.side, pending: true,
		}
		m.link(&m.books[r.book], s)
		r.slot = s
		if r.kind == engine.NewOrder {
			m.ids.put(r.taker, s)
		}
	}
}

// commit applies a held transaction to the book.
func (m *Matcher) commit(r *txRec) {
	b := &m.books[r.book]
	for i := 0; i < r.nFills; i++ {
		s := r.maker[i]
		o := &m.orders[s]
		if m.cfg.OnTrade != nil {
			t := Trade{ID: engine.TradeIDOf(r.tx, i), Symbol: b.cfg.ID, Price: o.price, Qty: r.qty[i],
				Aggressor: r.side, BuyOrder: r.taker, SellOrder: o.id, Time: r.time}
			if r.side == engine.Sell {
				t.BuyOrder, t.SellOrder = o.id, r.taker
			}
			m.cfg.OnTrade(t)
		}
		o.open -= r.qty[i]
		o.held -= r.qty[i]
		if o.held < 0 || o.open < o.held {
			panic(fmt.Sprintf("matching: order %d has open %d and held %d after transaction %d", o.id, o.open, o.held, r.tx))
		}
		if o.open == 0 {
			m.drop(b, s, true)
		}
	}
	for _, s := range r.removed[:r.nRem] {
		m.drop(b, s, true)
	}
	if r.target >= 0 {
		switch {
		case r.kind == engine.Cancel:
			m.drop(b, r.target, true)
		case r.inPlace:
			o := &m.orders[r.target]
			o.open, o.held = r.newQty, 0
		default:
			m.drop(b, r.target, r.slot < 0)
		}
	}
	if r.slot >= 0 {
		o := &m.orders[r.slot]
		o.held, o.pending = 0, false
		if r.kind == engine.Replace {
			m.ids.put(o.id, r.slot)
		}
	}
}

// abort releases a held transaction.
func (m *Matcher) abort(r *txRec) {
	for i := 0; i < r.nFills; i++ {
		m.orders[r.maker[i]].held -= r.qty[i]
	}
	for _, s := range r.removed[:r.nRem] {
		m.orders[s].held = 0
	}
	if r.target >= 0 {
		m.orders[r.target].held = 0
	}
	if r.slot >= 0 {
		if r.kind == engine.NewOrder {
			m.ids.del(r.taker)
		}
		m.unlink(&m.books[r.book], r.slot)
		m.release(r.slot)
	}
}

func (m *Matcher) alloc() int32 {
	if m.free >= 0 {
		s := m.free
		m.free = m.orders[s].next
		return s
	}
	if len(m.orders) == math.MaxInt32 {
		panic("matching: order pool exhausted")
	}
	m.orders = append(m.orders, order{})
	return int32(len(m.orders) - 1)
}

func (m *Matcher) release(s int32) {
	m.orders[s] = order{next: m.free}
	m.free = s
}

// drop takes order s off the book and frees its slot.
func (m *Matcher) drop(b *book, s int32, unindex bool) {
	if unindex {
		m.ids.del(m.orders[s].id)
	}
	m.unlink(b, s)
	m.release(s)
}

// link appends order s to the tail of its level.
func (m *Matcher) link(b *book, s int32) {
	o := &m.orders[s]
	l := b.side(o.side)
	lv := &l.levels[o.level]
	o.prev, o.next = lv.tail, -1
	if lv.tail < 0 {
		lv.head = s
		l.set(o.level)
	} else {
		m.orders[lv.tail].next = s
	}
	lv.tail = s
	if o.side == engine.Buy {
		b.bestBid = max(b.bestBid, o.level)
	} else if b.bestAsk < 0 || o.level < b.bestAsk {
		b.bestAsk = o.level
	}
}

// unlink takes order s out of its level.
func (m *Matcher) unlink(b *book, s int32) {
	o := &m.orders[s]
	l := b.side(o.side)
	lv := &l.levels[o.level]
	if o.prev < 0 {
		lv.head = o.next
	} else {
		m.orders[o.prev].next = o.next
	}
	if o.next < 0 {
		lv.tail = o.prev
	} else {
		m.orders[o.next].prev = o.prev
	}
	if lv.head >= 0 {
		return
	}
	l.clear(o.level)
	if o.side == engine.Buy {
		if o.level == b.bestBid {
			b.bestBid = l.down(o.level - 1)
		}
	} else if o.level == b.bestAsk {
		b.bestAsk = l.up(o.level + 1)
	}
}
