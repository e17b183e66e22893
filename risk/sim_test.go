package risk

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

var simSteps = flag.Int("sim.steps", 20000, "commands per seed in the risk property test")

type committed struct {
	tx  engine.TxID
	cmd engine.Command
	out engine.Outcome
}

// simRun drives a Manager and the real matching engine (through testbook)
// with random commands, pipelined up to depth deep, committing and aborting
// in random order.
type simRun struct {
	t      *testing.T
	rng    *rand.Rand
	m      *Manager
	book   *testbook.Book
	cfg    Config
	tx     engine.TxID
	now    int64
	pos    []int64 // the test's own account of each position
	log    []committed
	record bool

	fills, aborts, matchNo int
	no                     [engine.NumReasons]int
}

func (r *simRun) randomCommand(tx engine.TxID) engine.Command {
	r.now += r.rng.Int64N(3_000_000)
	acct := uint32(r.rng.IntN(r.cfg.Accounts))
	orders := r.book.Orders()
	k := r.rng.IntN(100)
	price := func() int64 { return 80 + r.rng.Int64N(41) }
	if k < 25 && len(orders) > 0 {
		o := orders[r.rng.IntN(len(orders))]
		if r.rng.IntN(10) > 0 {
			acct = o.Account
		}
		if k < 10 {
			return engine.Command{Kind: engine.Cancel, Symbol: o.Symbol, Account: acct, OrderID: o.ID, Time: r.now}
		}
		return engine.Command{Kind: engine.Replace, Symbol: o.Symbol, Account: acct, OrderID: o.ID, Price: price(), Qty: 1 + r.rng.Int64N(70), Time: r.now}
	}
	types := []engine.OrderType{engine.Limit, engine.Limit, engine.Limit, engine.IOC, engine.FOK, engine.Market}
	return engine.Command{
		Kind: engine.NewOrder, Side: engine.Side(1 + r.rng.IntN(2)), Type: types[r.rng.IntN(len(types))],
		Symbol: uint32(r.rng.IntN(r.cfg.Symbols)), Account: acct, OrderID: uint64(tx),
		Price: price(), Qty: 1 + r.rng.Int64N(70), Time: r.now,
	}
}

func (r *simRun) submit(cmd engine.Command) {
	r.tx++
	tx := r.tx
	if reason := r.m.Prepare(tx, &cmd, nil); reason != engine.ReasonNone {
		r.no[reason]++
		return
	}
	if reason := r.book.Prepare(tx, &cmd); reason != engine.ReasonNone {
		r.matchNo++
		r.m.Abort(tx)
	}
}

func (r *simRun) resolve(tx engine.TxID, commit bool) {
	if !commit {
		r.aborts++
		r.book.Abort(tx)
		r.m.Abort(tx)
		return
	}
	st := r.book.Commit(tx)
	out, cmd := st.Out, st.Cmd
	r.m.PreCommit(tx, &out)
	r.m.Commit(tx, &out)
	if r.record {
		r.log = append(r.log, committed{tx, cmd, out})
	}
	r.fills += out.NFills
	for _, f := range out.FillSlice() {
		buyer, seller := f.Taker, f.Maker
		if f.TakerSide == engine.Sell {
			buyer, seller = seller, buyer
		}
		r.pos[int(buyer)*r.cfg.Symbols+int(f.Symbol)] += f.Qty
		r.pos[int(seller)*r.cfg.Symbols+int(f.Symbol)] -= f.Qty
	}
}

func (r *simRun) resolveRandom() {
	txs := r.book.InFlight()
	r.resolve(txs[r.rng.IntN(len(txs))], r.rng.IntN(8) > 0)
}

// check asserts Audit, the test's positions, and that no account's
// committed worst case breaks its limits.
func (r *simRun) check() {
	r.t.Helper()
	if err := r.m.Audit().Err(); err != nil {
		r.t.Fatalf("after tx %d: %v", r.tx, err)
	}
	for a := range r.cfg.Accounts {
		l := r.m.Limits(uint32(a))
		if c := r.m.Credit(uint32(a)); l.CreditLimit > 0 && c > l.CreditLimit+2*70*120 {
			r.t.Fatalf("after tx %d: account %d has credit %d, limit %d", r.tx, a, c, l.CreditLimit)
		}
		for s := range r.cfg.Symbols {
			p := r.m.Position(uint32(a), uint32(s))
			if p != r.pos[a*r.cfg.Symbols+s] {
				r.t.Fatalf("after tx %d: account %d has position %d in symbol %d, want %d", r.tx, a, p, s, r.pos[a*r.cfg.Symbols+s])
			}
			if l.MaxPosition > 0 && (p > l.MaxPosition || -p > l.MaxPosition) {
				r.t.Fatalf("after tx %d: account %d has position %d in symbol %d beyond its limit %d", r.tx, a, p, s, l.MaxPosition)
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

func TestPropertyExposure(t *testing.T) {
	for seed := range uint64(4) {
		t.Run("", func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			cfg := Config{
				Accounts: 12, Symbols: 3,
				Defaults:        Limits{MaxOrderQty: 60, MaxOrderNotional: 6000, PriceBandBps: 1500, MaxPosition: 300, CreditLimit: 15_000, OrdersPerSecond: 100, Burst: 4},
				Overrides:       map[uint32]Limits{0: {}, 1: {MaxPosition: 80}, 2: {CreditLimit: 3000}},
				References:      []int64{100, 100, 0},
				FollowLastTrade: seed%2 == 1,
				MaxOrders:       4096, MaxInFlight: 16,
			}
			m := newTestManager(t, cfg)
			book, err := testbook.New(cfg.Symbols, matching.STPMode(seed%2))
			require.NoError(t, err)
			r := &simRun{t: t, rng: rng, m: m, book: book, cfg: cfg, pos: make([]int64, cfg.Accounts*cfg.Symbols)}
			depth := 1 + int(seed)*5
			var snap bytes.Buffer
			for step := range *simSteps {
				if step == *simSteps/2 {
					r.drain()
					require.NoError(t, m.Snapshot(&snap))
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

			var live, replayed bytes.Buffer
			require.NoError(t, m.Snapshot(&live))
			rm := newTestManager(t, cfg)
			require.NoError(t, rm.Restore(&snap))
			// The journal holds commits in decision order, which is TxID
			// order; they committed live in random order.
			slices.SortFunc(r.log, func(a, b committed) int { return int(a.tx) - int(b.tx) })
			for _, c := range r.log {
				require.NoError(t, rm.Apply(c.tx, &c.cmd, &c.out))
			}
			require.NoError(t, rm.Snapshot(&replayed))
			require.True(t, bytes.Equal(live.Bytes(), replayed.Bytes()), "replayed manager differs from the live one")

			require.True(t, m.OpenOrders() > 0, "the run left no resting orders to cancel")
			for _, o := range r.book.Orders() {
				r.submit(engine.Command{Kind: engine.Cancel, Symbol: o.Symbol, Account: o.Account, OrderID: o.ID, Time: r.now})
				r.resolve(r.tx, true)
			}
			r.check()
			require.Zero(t, m.OpenOrders())
			for a := range cfg.Accounts {
				require.Zero(t, m.Credit(uint32(a)), "credit of account", a)
				for s := range cfg.Symbols {
					b, sl := m.Open(uint32(a), uint32(s))
					require.Zero(t, b+sl, "open quantity of account", a)
				}
			}
			t.Logf("seed %d: %d transactions, %d fills, %d forced aborts, %d matching NOs; risk NOs: qty %d, notional %d, band %d, position %d, credit %d, rate %d, unknown order %d, not owner %d; %d replayed",
				seed, r.tx, r.fills, r.aborts, r.matchNo, r.no[engine.ReasonMaxQty], r.no[engine.ReasonMaxNotional], r.no[engine.ReasonPriceBand],
				r.no[engine.ReasonPositionLimit], r.no[engine.ReasonCreditLimit], r.no[engine.ReasonRateLimit],
				r.no[engine.ReasonUnknownOrder], r.no[engine.ReasonNotOwner], len(r.log))
			for _, reason := range []engine.Reason{engine.ReasonMaxQty, engine.ReasonMaxNotional, engine.ReasonPriceBand, engine.ReasonPositionLimit, engine.ReasonCreditLimit, engine.ReasonRateLimit} {
				require.True(t, r.no[reason] > 0, "the run never hit", reason)
			}
			require.True(t, r.fills > 0 && r.aborts > 0, "the run missed a path")
		})
	}
}
