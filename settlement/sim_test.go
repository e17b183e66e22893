package settlement

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/testbook"
	"github.com/commitcore/commitcore/matching"
	"github.com/stretchr/testify/require"
)

var simSteps = flag.Int("sim.steps", 20000, "commands per seed in the settlement property test")

// committed is a transaction as a journal would hold it.
type committed struct {
	tx  engine.TxID
	cmd engine.Command
	out engine.Outcome
}

// simRun drives a ledger and the real matching engine (through testbook)
// with random commands, pipelined up to depth deep, committing and aborting
// in random order.
type simRun struct {
	t      *testing.T
	rng    *rand.Rand
	l      *Ledger
	book   *testbook.Book
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
	orders := r.book.Orders()
	k := r.rng.IntN(100)
	if k < 25 && len(orders) > 0 {
		o := orders[r.rng.IntN(len(orders))]
		if r.rng.IntN(10) > 0 {
			acct = o.Account
		}
		if k < 10 {
			return engine.Command{Kind: engine.Cancel, Symbol: o.Symbol, Account: acct, OrderID: o.ID}
		}
		return engine.Command{Kind: engine.Replace, Symbol: o.Symbol, Account: acct, OrderID: o.ID, Price: 90 + r.rng.Int64N(21), Qty: 1 + r.rng.Int64N(60)}
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
	if reason := r.book.Prepare(tx, &cmd); reason != engine.ReasonNone {
		r.matchNo++
		r.l.Abort(tx)
	}
}

func (r *simRun) resolve(tx engine.TxID, commit bool) {
	if !commit {
		r.aborts++
		r.book.Abort(tx)
		r.l.Abort(tx)
		return
	}
	st := r.book.Commit(tx)
	out, cmd := st.Out, st.Cmd
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
	txs := r.book.InFlight()
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
	for r.book.Len() > 0 {
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
			stp := matching.STPMode(seed / 2 % 2) // removals need CancelResting
			book, err := testbook.New(cfg.Symbols, stp)
			require.NoError(t, err)
			r := &simRun{t: t, rng: rng, l: l, book: book, cfg: cfg,
				cash: slices.Clone(cfg.Cash), hold: slices.Clone(cfg.Holdings)}
			depth := 1 + int(seed)*5
			var snap bytes.Buffer
			for step := range *simSteps {
				if step == *simSteps/2 {
					r.drain()
					require.NoError(t, l.Snapshot(&snap))
					r.record = true
				}
				if r.book.Len() < depth && r.rng.IntN(3) > 0 {
					r.submit(r.randomCommand(r.tx + 1))
				} else if r.book.Len() > 0 {
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
			// The journal holds commits in decision order, which is TxID
			// order; they committed live in random order.
			slices.SortFunc(r.log, func(a, b committed) int { return int(a.tx) - int(b.tx) })
			for _, c := range r.log {
				require.NoError(t, rl.Apply(c.tx, &c.cmd, &c.out))
			}
			require.NoError(t, rl.Snapshot(&replayed))
			require.True(t, bytes.Equal(live.Bytes(), replayed.Bytes()), "replayed ledger differs from the live one")

			// Cancelling every resting order drains every reservation.
			require.True(t, l.OpenOrders() > 0, "the run left no resting orders to cancel")
			for _, o := range r.book.Orders() {
				r.submit(engine.Command{Kind: engine.Cancel, Symbol: o.Symbol, Account: o.Account, OrderID: o.ID})
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
			require.True(t, r.fills > 0 && (r.removed > 0 || stp != matching.CancelResting) && r.aborts > 0 && r.no[engine.ReasonInsufficientCash] > 0, "the run missed a path")
		})
	}
}
