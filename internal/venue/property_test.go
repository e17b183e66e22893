package venue

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/matching"
	"github.com/commitcore/commitcore/risk"
	"github.com/commitcore/commitcore/settlement"
	"github.com/stretchr/testify/require"
)

var (
	propSeeds = flag.Int("venue.seeds", 4, "seeds of the engine property test")
	propSeed  = flag.Int64("venue.seed", 1, "first seed of the engine property test")
	propSteps = flag.Int("venue.steps", 2500, "commands per seed in the engine property test")
)

// TestPropertyEngine drives random command streams through engine.New with
// the three participants, each wrapped to vote NO at random, over random
// market shapes, pipeline depths, runner counts and protocol modes. At
// checkpoints with nothing in flight, and at the end, every participant
// passes its audit and the three agree (CrossAudit); at the end every
// resting order is cancelled and every reservation drains to zero, and the
// three Recorders committed exactly the transactions the Core reported
// committed.
func TestPropertyEngine(t *testing.T) {
	for i := range *propSeeds {
		seed := *propSeed + int64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runProperty(t, seed, *propSteps) })
	}
}

// randomConfig is a small market whose shape and limits vary with rng:
// mostly few accounts (self-trades, conflicts), sometimes 1,000; tight
// limits or thin funding half the time (risk and settlement NOs).
func randomConfig(rng *rand.Rand, seed int64) Config {
	c := DefaultConfig()
	c.Seed = seed
	c.Symbols = 1 + rng.IntN(4)
	c.Accounts = 2 + rng.IntN(30)
	if rng.IntN(4) == 0 {
		c.Accounts = 1000
	}
	c.Depth = 4 + rng.IntN(40)
	c.Tick = []int64{1, 5}[rng.IntN(2)]
	c.MakerFeeBps, c.TakerFeeBps = rng.Int64N(5), rng.Int64N(10)
	c.STP = matching.STPMode(rng.IntN(2))
	c.MaxOrders, c.MaxInFlight = 2048, 128
	// The flow's virtual clock gives each account 1,000 commands a second.
	perAccount := int64(flowAccountRate)
	c.Limits.OrdersPerSecond = 2 * perAccount
	if rng.IntN(2) == 0 {
		c.Limits = risk.Limits{MaxOrderQty: 150, MaxOrderNotional: 1_500_000, PriceBandBps: 1500,
			MaxPosition: 3000, CreditLimit: 8_000_000, OrdersPerSecond: 4 * perAccount, Burst: 64}
	}
	if rng.IntN(2) == 0 {
		c.Cash, c.Holding = 3_000_000, 400
	}
	return c
}

// junk returns a command the participants must reject or treat specially:
// an unknown symbol, a bad quantity or price, an unknown order, another
// account's order, or a FOK or Market order.
func junk(rng *rand.Rand, c Config, f *Flow, tx uint64) engine.Command {
	sym := uint32(rng.IntN(c.Symbols))
	cmd := engine.Command{Kind: engine.NewOrder, Type: engine.Limit, Side: engine.Side(1 + rng.IntN(2)),
		Symbol: sym, Account: uint32(rng.IntN(c.Accounts)), ClientOrderID: tx, Price: f.Mid(sym), Qty: 1 + rng.Int64N(50)}
	switch rng.IntN(8) {
	case 0:
		cmd.Symbol = uint32(c.Symbols + rng.IntN(3))
	case 1:
		cmd.Qty = -rng.Int64N(2)
	case 2:
		cmd.Price += c.Tick / 2 // off the grid when the tick is above 1
		if c.Tick == 1 {
			cmd.Price = c.MaxPrice + c.Tick
		}
	case 3:
		cmd.Price = []int64{0, -c.Tick, c.MaxPrice + c.Tick}[rng.IntN(3)]
	case 4:
		cmd.Kind, cmd.OrderID = []engine.CommandKind{engine.Cancel, engine.Replace}[rng.IntN(2)], 1<<50+rng.Uint64N(1000)
	case 5:
		if s := &f.syms[sym]; len(s.orders) > 0 {
			o := s.orders[rng.IntN(len(s.orders))]
			cmd.Kind, cmd.OrderID, cmd.Account = engine.Replace, o.id, (o.account+1)%uint32(c.Accounts)
		}
	case 6:
		cmd.Type = engine.FOK
		cmd.Price += c.Tick * (rng.Int64N(21) - 10)
		cmd.Qty = 1 + rng.Int64N(300)
	case 7:
		cmd.Type = engine.Market
		cmd.Price += c.Tick * 30
		if cmd.Side == engine.Sell {
			cmd.Price -= c.Tick * 60
		}
	}
	return cmd
}

// propRun is one seed's run.
type propRun struct {
	t         *testing.T
	c         Config
	parts     []engine.Participant // the bare participants, in role order
	chaos     []*chaos
	recs      []*Recorder
	k         *engine.Core
	d         *driver
	f         *Flow
	committed []engine.TxID
	reasons   [engine.NumReasons]int
	fills     int
	removed   int
}

func runProperty(t *testing.T, seed int64, steps int) {
	rng := rand.New(rand.NewPCG(uint64(seed), 42))
	r := &propRun{t: t, c: randomConfig(rng, seed)}
	var err error
	r.parts, err = NewAll(r.c)
	require.NoError(t, err)
	ps := make([]engine.Participant, len(r.parts))
	for i, p := range r.parts {
		r.chaos = append(r.chaos, newChaos(p, uint64(seed)*7+uint64(i), rng.IntN(40)))
		r.recs = append(r.recs, NewRecorder(r.chaos[i]))
		ps[i] = r.recs[i]
	}
	mode := []engine.Mode{engine.ThreePhase, engine.TwoPhase}[rng.IntN(2)]
	window := 1 + rng.IntN(64)
	runners := 1 + rng.IntN(3)
	early := rng.IntN(2) == 0
	r.k, err = engine.New(slackConfig(engine.Config{Mode: mode, Idle: engine.IdleYield, Runners: runners, MaxInFlight: window, ReplyOnCommitSent: early}), ps...)
	require.NoError(t, err)
	defer r.k.Close()
	r.f = NewFlow(r.c)
	r.d = newDriver(t, r.k, window, r.observe)
	t.Logf("%d symbols, %d accounts, depth %d, tick %d, fees %d/%d bps, %v, limits %+v, cash %d, holding %d; %v, window %d, %d runners, reply on commit sent %v; NO per mille %d/%d/%d",
		r.c.Symbols, r.c.Accounts, r.c.Depth, r.c.Tick, r.c.MakerFeeBps, r.c.TakerFeeBps, r.c.STP, r.c.Limits, r.c.Cash, r.c.Holding,
		mode, window, runners, early, r.chaos[0].perMille, r.chaos[1].perMille, r.chaos[2].perMille)

	var cmd engine.Command
	for step := range steps {
		if step > 0 && step%(steps/4+1) == 0 {
			r.d.drain()
			r.audit(fmt.Sprintf("checkpoint at step %d", step))
		}
		switch {
		case rng.IntN(2000) == 0:
			r.f.Shock(uint32(rng.IntN(r.c.Symbols)), []int{-25, -8, 8, 25}[rng.IntN(4)])
			r.f.Next(&cmd)
		case rng.IntN(20) == 0:
			cmd = junk(rng, r.c, r.f, uint64(step))
		default:
			r.f.Next(&cmd)
		}
		r.d.send(&cmd)
	}
	r.d.drain()
	r.audit("end of the flow")
	r.cancelAll()
	r.audit("after cancelling every order")
	r.drained()

	require.NoError(t, r.k.Close())
	r.audit("after close")
	require.Equal(t, uint64(len(r.committed)), r.k.Counters().Committed)
	// Participants may commit in different orders (a node in PRECOMMITTED
	// commits on its own after its commit timeout), never different sets.
	slices.Sort(r.committed)
	for i, rec := range r.recs {
		got := rec.Committed()
		slices.Sort(got)
		require.Equal(t, r.committed, got, "participant %d committed other transactions than the Core reported", i)
	}
	forced := r.chaos[0].forced.Load() + r.chaos[1].forced.Load() + r.chaos[2].forced.Load()
	t.Logf("%d commands, %d committed, %d fills, %d STP removals, %d forced NOs; NOs by reason: %s",
		r.f.Sent(), len(r.committed), r.fills, r.removed, forced, reasonCounts(r.reasons[:]))
	require.Positive(t, r.fills, "no trade happened")
}

func reasonCounts(counts []int) string {
	s := ""
	for i, n := range counts {
		if n > 0 && i != int(engine.ReasonNone) {
			s += fmt.Sprintf("%v %d, ", engine.Reason(i), n)
		}
	}
	return s
}

func (r *propRun) observe(res *engine.Result) {
	r.reasons[res.Reason]++
	if res.Reason == engine.ReasonNone {
		r.committed = append(r.committed, res.Tx)
		r.fills += res.Out.NFills
		r.removed += res.Out.NRemoved
	}
	r.f.Observe(res)
}

// audit requires every participant's audit and the cross audit to pass.
// Nothing may be in flight.
func (r *propRun) audit(when string) {
	r.t.Helper()
	for _, p := range r.recs {
		require.NoError(r.t, Err(Audit(p)), when)
	}
	require.NoError(r.t, Err(CrossAudit(r.c, r.recs[0], r.recs[1], r.recs[2])), when)
}

// cancelAll cancels every resting order, again until none is left (the
// chaos wrappers refuse some cancels).
func (r *propRun) cancelAll() {
	for round := 0; ; round++ {
		require.Less(r.t, round, 50, "orders still rest after 50 rounds of cancels")
		books, err := decodeBooks(r.parts[Matching].(*matching.Matcher))
		require.NoError(r.t, err)
		n := 0
		for _, b := range books {
			for _, o := range append(b.bids, b.asks...) {
				cmd := engine.Command{Kind: engine.Cancel, Symbol: b.id, Account: o.account, OrderID: o.id}
				r.d.send(&cmd)
				n++
			}
		}
		r.d.drain()
		if n == 0 {
			return
		}
	}
}

// drained requires that no order rests and nothing is reserved anywhere.
func (r *propRun) drained() {
	rm, l := r.parts[Risk].(*risk.Manager), r.parts[Settlement].(*settlement.Ledger)
	require.Zero(r.t, rm.OpenOrders())
	require.Zero(r.t, l.OpenOrders())
	for a := range r.c.Accounts + 1 {
		_, cash := l.Cash(uint32(a))
		require.Zero(r.t, cash, "cash reserved by account %d", a)
		require.Zero(r.t, rm.Credit(uint32(a)), "credit of account %d", a)
		for s := range r.c.Symbols {
			_, held := l.Holding(uint32(a), uint32(s))
			buy, sell := rm.Open(uint32(a), uint32(s))
			require.Zero(r.t, held, "lots reserved by account %d", a)
			require.Zero(r.t, buy+sell, "open quantity of account %d", a)
		}
	}
}
