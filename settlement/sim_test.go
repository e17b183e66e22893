package settlement

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

var simSteps = flag.Int("sim.steps", 20000, "commands per seed in the settlement property test")

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

// committed is a transaction as a journal would hold it.
type committed struct {
	tx  engine.TxID
	cmd engine.Command
	out engine.Outcome
}

// simRun drives a ledger and simBook with random commands, pipelined up to
// depth deep, committing and aborting in random order.
type simRun struct {
	t      *testing.T
	rng    *rand.Rand
	l      *Ledger
	book   *simBook
	cfg    Config
	tx     engine.TxID
	cash   []int64 // the test's own account of each balance
	hold   []int64
	log    []committed
	record bool
	// What happened, so the test can show it exercised every path.
	fills, removed, aborts, matchNo int
	no                              [engine.NumReasons]int
}

func (r *simRun) randomCommand(tx engine.TxID) engine.Command {
	acct := uint32(r.rng.IntN(r.cfg.Accounts))
	ids := r.book.ids()
	k := r.rng.IntN(100)
	if k < 25 && len(ids) > 0 {
		o := r.book.orders[ids[r.rng.IntN(len(ids))]]
		if r.rng.IntN(10) > 0 {
			acct = o.acct
		}
		if k < 10 {
			return engine.Command{Kind: engine.Cancel, Symbol: o.sym, Account: acct, OrderID: o.id}
		}
		return engine.Command{Kind: engine.Replace, Symbol: o.sym, Account: acct, OrderID: o.id, Price: 90 + r.rng.Int64N(21), Qty: 1 + r.rng.Int64N(60)}
	}
	if k < 27 {
		return engine.Command{Kind: engine.Cancel, Account: acct, OrderID: 1 << 60}
	}
	types := []engine.OrderType{engine.Limit, engine.Limit, engine.Limit, engine.IOC, engine.FOK, engine.Market}
	return engine.Command{
		Kind: engine.NewOrder, Side: engine.Side(1 + r.rng.IntN(2)), Type: types[r.rng.IntN(len(types))],
		Symbol: uint32(r.rng.IntN(r.cfg.Symbols)), Account: acct, OrderID: uint64(tx),
		Price: 90 + r.rng.Int64N(21), Qty: 1 + r.rng.Int64N(60),
	}
}

// submit prepares one command at both participants; it stays in flight only
// if both vote YES.
func (r *simRun) submit(cmd engine.Command) {
	r.tx++
	tx := r.tx
	if reason := r.l.Prepare(tx, &cmd, nil); reason != engine.ReasonNone {
		r.no[reason]++
		return
	}
	if _, ok := r.book.prepare(tx, &cmd); !ok {
		r.matchNo++
		r.l.Abort(tx)
	}
}

func (r *simRun) resolve(tx engine.TxID, commit bool) {
	if !commit {
		r.aborts++
		r.book.abort(tx)
		r.l.Abort(tx)
		return
	}
	st := r.book.inflight[tx]
	out, cmd := st.out, st.cmd
	r.book.commit(tx)
	r.l.PreCommit(tx, &out)
	r.l.Commit(tx, &out)
	if r.record {
		r.log = append(r.log, committed{tx, cmd, out})
	}
	r.fills += out.NFills
	r.removed += out.NRemoved
	for _, f := range out.FillSlice() {
		n := f.Price * f.Qty
		buyer, seller := f.Taker, f.Maker
		bf, sf := n*r.cfg.TakerFeeBps/10000, n*r.cfg.MakerFeeBps/10000
		if f.TakerSide == engine.Sell {
			buyer, seller, bf, sf = seller, buyer, sf, bf
		}
		r.cash[buyer] -= n + bf
		r.cash[seller] += n - sf
		r.cash[r.cfg.FeeAccount] += bf + sf
		r.hold[int(buyer)*r.cfg.Symbols+int(f.Symbol)] += f.Qty
		r.hold[int(seller)*r.cfg.Symbols+int(f.Symbol)] -= f.Qty
	}
}

func (r *simRun) resolveRandom() {
	var txs []engine.TxID
	for tx := range r.book.inflight {
		txs = append(txs, tx)
	}
	slices.Sort(txs)
	r.resolve(txs[r.rng.IntN(len(txs))], r.rng.IntN(8) > 0)
}

func (r *simRun) check() {
	r.t.Helper()
	a := r.l.Audit()
	if err := a.Err(); err != nil {
		r.t.Fatalf("after tx %d: %v", r.tx, err)
	}
	for acct := range r.cfg.Accounts {
		if c, _ := r.l.Cash(uint32(acct)); c != r.cash[acct] {
			r.t.Fatalf("after tx %d: account %d has cash %d, want %d", r.tx, acct, c, r.cash[acct])
		}
		for s := range r.cfg.Symbols {
			if h, _ := r.l.Holding(uint32(acct), uint32(s)); h != r.hold[acct*r.cfg.Symbols+s] {
				r.t.Fatalf("after tx %d: account %d has %d of symbol %d, want %d", r.tx, acct, h, s, r.hold[acct*r.cfg.Symbols+s])
			}
		}
	}
}

func (r *simRun) drain() {
	for len(r.book.inflight) > 0 {
		r.resolveRandom()
		r.check()
	}
}

func TestPropertyConservation(t *testing.T) {
	for seed := range uint64(4) {
		t.Run("", func(t *testing.T) {
			cfg := Config{Accounts: 12, Symbols: 3, FeeAccount: 11, MaxOrders: 4096, MaxInFlight: 16}
			if seed%2 == 1 {
				cfg.MakerFeeBps, cfg.TakerFeeBps = 7, 30
			}
			rng := rand.New(rand.NewPCG(seed, 99))
			cfg.Cash = make([]int64, cfg.Accounts)
			cfg.Holdings = make([]int64, cfg.Accounts*cfg.Symbols)
			for i := range cfg.Cash {
				cfg.Cash[i] = rng.Int64N(200_000)
			}
			for i := range cfg.Holdings {
				cfg.Holdings[i] = rng.Int64N(2000)
			}
			l := newTestLedger(t, cfg)
			r := &simRun{t: t, rng: rng, l: l, book: newSimBook(), cfg: cfg,
				cash: slices.Clone(cfg.Cash), hold: slices.Clone(cfg.Holdings)}
			depth := 1 + int(seed)*5
			var snap bytes.Buffer
			for step := range *simSteps {
				if step == *simSteps/2 {
					r.drain()
					require.NoError(t, l.Snapshot(&snap))
					r.record = true
				}
				if len(r.book.inflight) < depth && r.rng.IntN(3) > 0 {
					r.submit(r.randomCommand(r.tx + 1))
				} else if len(r.book.inflight) > 0 {
					r.resolveRandom()
				}
				r.check()
			}
			r.drain()

			// Replaying the committed transactions onto the mid-run
			// snapshot gives the same ledger, byte for byte.
			var live, replayed bytes.Buffer
			require.NoError(t, l.Snapshot(&live))
			rl := newTestLedger(t, cfg)
			require.NoError(t, rl.Restore(&snap))
			for _, c := range r.log {
				require.NoError(t, rl.Apply(c.tx, &c.cmd, &c.out))
			}
			require.NoError(t, rl.Snapshot(&replayed))
			require.True(t, bytes.Equal(live.Bytes(), replayed.Bytes()), "replayed ledger differs from the live one")

			// Cancelling every resting order drains every reservation.
			require.True(t, l.OpenOrders() > 0, "the run left no resting orders to cancel")
			for _, id := range r.book.ids() {
				o := r.book.orders[id]
				r.submit(engine.Command{Kind: engine.Cancel, Symbol: o.sym, Account: o.acct, OrderID: id})
				r.resolve(r.tx, true)
			}
			r.check()
			require.Zero(t, l.OpenOrders())
			for a := range cfg.Accounts {
				_, res := l.Cash(uint32(a))
				require.Zero(t, res, "cash reserved by account", a)
				for s := range cfg.Symbols {
					_, res := l.Holding(uint32(a), uint32(s))
					require.Zero(t, res, "securities reserved by account", a)
				}
			}
			t.Logf("seed %d: %d transactions, %d fills, %d STP removals, %d forced aborts, %d matching NOs; settlement NOs: cash %d, securities %d, unknown order %d, not owner %d; %d replayed",
				seed, r.tx, r.fills, r.removed, r.aborts, r.matchNo, r.no[engine.ReasonInsufficientCash], r.no[engine.ReasonInsufficientSecurities],
				r.no[engine.ReasonUnknownOrder], r.no[engine.ReasonNotOwner], len(r.log))
			require.True(t, r.fills > 0 && r.removed > 0 && r.aborts > 0 && r.no[engine.ReasonInsufficientCash] > 0, "the run missed a path")
		})
	}
}
