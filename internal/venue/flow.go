package venue

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// The flow's shape, in ticks and lots, after exchange-core's benchmark mix.
const (
	flowSpread    = 50  // passive GTC orders rest 1 to 50 ticks from the mid
	flowIOCReach  = 10  // IOC orders cross up to 10 ticks past the mid
	flowMoveBand  = 60  // moves stay within 60 ticks of the mid
	flowEdge      = 100 // the mid stays 100 ticks inside the price range
	flowMaxQty    = 100 // GTC quantity 1 to 100 lots
	flowDriftOdds = 64  // the mid moves a tick once in 64 commands of its symbol
	// shockQty is the size of a shock's aggressive orders: enough to sweep
	// engine.MaxFills resting orders of the normal flow.
	shockQty = engine.MaxFills * flowMaxQty
	// shockCap bounds the shock commands of one Shock.
	shockCap = 512
	// flowAccountRate is the rate at which the flow's virtual clock sends
	// each account commands: 1,000 a second on average.
	flowAccountRate = 1000
)

// liveOrder is a resting order the flow has seen committed.
type liveOrder struct {
	id      uint64
	price   int64
	open    int64
	account uint32
	side    engine.Side
	busy    bool // a cancel or replace of it is out, its result not yet seen
}

// symFlow is the flow's view of one symbol.
type symFlow struct {
	mid    int64
	orders []liveOrder
	// A shock in progress: its remaining commands, direction (+1 up, -1
	// down), new mid, and the shock commands sent so far.
	shockLeft int
	shockDir  int64
	shockMid  int64
	shockN    int
}

// orderLoc finds a live order: its symbol and index in that symbol's list.
type orderLoc struct {
	sym uint32
	i   int32
}

// Flow is a deterministic, seeded order flow in the style of
// exchange-core's benchmark mix: per command a symbol and an account are
// drawn uniformly, then 9 % GTC limit orders resting around the symbol's
// mid (one in ten priced through the spread, so it trades), 3 % IOC orders
// crossing the spread, 6 % cancels and 82 % replaces that move a resting
// order by up to four ticks. While a symbol has fewer than Config.Depth
// resting orders, cancels become GTC orders; above twice Depth, GTC orders
// become cancels. Each symbol's mid drifts a tick at a time.
//
// The flow learns which orders rest from the Results it is shown
// (Observe), so that cancels and replaces name live orders; one whose
// cancel or replace is out is not picked again until its result is seen.
// Given the same seed, the same Observe calls between the same Next calls,
// and the same Shocks, it produces the same commands.
//
// Command.Time is a virtual clock that gives each account 1,000 commands a
// second on average (1 µs per command with 1,000 accounts), so that risk's
// rate limit sees the same times in every run, whatever the wall clock
// does. A command from Next must be sent (again, after engine.ErrBusy):
// the order it cancels or replaces is not picked again until its result
// is seen. A Flow is not safe for concurrent use.
type Flow struct {
	c       Config
	rng     *rand.Rand
	n       uint64
	syms    []symFlow
	where   map[uint64]orderLoc
	shocked []uint32 // symbols with a shock in progress
	rr      int
	lo, hi  int64 // the mid's range
	tick    int64 // virtual nanoseconds per command
}

// NewFlow returns the flow of c, seeded with c.Seed. It panics if c is
// invalid: Validate it first.
func NewFlow(c Config) *Flow {
	if err := c.Validate(); err != nil {
		panic(fmt.Sprintf("venue: new flow: %v", err))
	}
	f := &Flow{
		c:     c,
		rng:   rand.New(rand.NewPCG(uint64(c.Seed), 0x9e3779b97f4a7c15)),
		syms:  make([]symFlow, c.Symbols),
		where: make(map[uint64]orderLoc, 2*c.Depth*c.Symbols),
		lo:    flowEdge * c.Tick,
		hi:    c.MaxPrice - flowEdge*c.Tick,
		tick:  max(1, int64(time.Second)/flowAccountRate/int64(c.Accounts)),
	}
	for i := range f.syms {
		f.syms[i] = symFlow{mid: c.StartPrice, orders: make([]liveOrder, 0, 2*c.Depth)}
	}
	return f
}

// Sent returns the number of commands generated so far, by Next or Skip:
// the ClientOrderID of the next one.
func (f *Flow) Sent() uint64 { return f.n }

// Mid returns symbol sym's current mid price. It panics if sym is not a
// symbol of the flow's Config.
func (f *Flow) Mid(sym uint32) int64 { return f.syms[sym].mid }

// Resting returns the number of resting orders the flow knows of.
func (f *Flow) Resting() int { return len(f.where) }

// Next fills cmd with the next command. Its ClientOrderID is its index in
// the flow, from 0; a NewOrder's OrderID is left for the coordinator.
func (f *Flow) Next(cmd *engine.Command) {
	*cmd = engine.Command{ClientOrderID: f.n, Time: int64(f.n+1) * f.tick}
	f.n++
	if len(f.shocked) > 0 && f.n%2 == 0 {
		f.shockCommand(cmd)
		return
	}
	r := f.rng
	sym := uint32(r.IntN(f.c.Symbols))
	s := &f.syms[sym]
	if r.IntN(flowDriftOdds) == 0 {
		s.mid = min(max(s.mid+f.c.Tick*int64(2*r.IntN(2)-1), f.lo), f.hi)
	}
	cmd.Symbol, cmd.Account = sym, uint32(r.IntN(f.c.Accounts))
	k := r.IntN(100)
	switch {
	case k < 9 && len(s.orders) > 2*f.c.Depth:
		f.cancel(cmd, s)
	case k < 9 || (k < 18 && len(s.orders) < f.c.Depth):
		f.gtc(cmd, s)
	case k < 12:
		cmd.Kind, cmd.Type, cmd.Side = engine.NewOrder, engine.IOC, engine.Side(1+r.IntN(2))
		cmd.Qty = 1 + r.Int64N(2*flowMaxQty)
		cmd.Price = f.price(s.mid, cmd.Side, -flowIOCReach)
	case k < 18:
		f.cancel(cmd, s)
	default:
		o := f.take(cmd, s)
		if o == nil {
			return
		}
		cmd.Kind, cmd.OrderID, cmd.Account, cmd.Qty = engine.Replace, o.id, o.account, o.open
		p := o.price + f.c.Tick*(r.Int64N(9)-4)
		cmd.Price = min(max(p, s.mid-flowMoveBand*f.c.Tick), s.mid+flowMoveBand*f.c.Tick)
	}
}

// gtc makes cmd a GTC limit order resting 1 to flowSpread ticks from the
// mid, or one time in ten up to 4 ticks through it.
func (f *Flow) gtc(cmd *engine.Command, s *symFlow) {
	r := f.rng
	cmd.Kind, cmd.Type, cmd.Side = engine.NewOrder, engine.Limit, engine.Side(1+r.IntN(2))
	cmd.Qty = 1 + r.Int64N(flowMaxQty)
	off := 1 + r.Int64N(flowSpread)
	if r.IntN(10) == 0 {
		off = -r.Int64N(5)
	}
	cmd.Price = f.price(s.mid, cmd.Side, off)
}

// cancel makes cmd a cancel of a live order of s, or a GTC order if none
// can be picked.
func (f *Flow) cancel(cmd *engine.Command, s *symFlow) {
	if o := f.take(cmd, s); o != nil {
		cmd.Kind, cmd.OrderID, cmd.Account = engine.Cancel, o.id, o.account
	}
}

// take picks a live order of s for a cancel or a replace and marks it busy;
// with none to pick it makes cmd a GTC order instead and returns nil.
func (f *Flow) take(cmd *engine.Command, s *symFlow) *liveOrder {
	i := f.pick(s)
	if i < 0 {
		f.gtc(cmd, s)
		return nil
	}
	o := &s.orders[i]
	o.busy = true
	return o
}

// price returns the price off ticks away from mid on the passive side of
// side (negative off is aggressive), within the book's range.
func (f *Flow) price(mid int64, side engine.Side, off int64) int64 {
	p := mid - off*f.c.Tick
	if side == engine.Sell {
		p = mid + off*f.c.Tick
	}
	return min(max(p, f.c.Tick), f.c.MaxPrice)
}

// pick returns the index of a live order of s with no cancel or replace
// out, trying a few at random, or -1.
func (f *Flow) pick(s *symFlow) int {
	if len(s.orders) == 0 {
		return -1
	}
	for range 4 {
		if i := f.rng.IntN(len(s.orders)); !s.orders[i].busy {
			return i
		}
	}
	return -1
}

// Skip advances the flow past n commands as if they were sent and their
// results never seen, for a coordinator that resumes a run mid-way. Orders
// that the skipped commands cancel or replace become pickable again.
func (f *Flow) Skip(n uint64) {
	var cmd engine.Command
	for range n {
		f.Next(&cmd)
	}
	for i := range f.syms {
		for j := range f.syms[i].orders {
			f.syms[i].orders[j].busy = false
		}
	}
}

// Shock moves symbol sym's mid by pct percent (say +25 or -25) from the
// next command on, within the book's range, and sends aggressive orders
// at the new level until a trade there is seen, or the symbol is halted by
// a circuit breaker, or 512 such commands are out: every other command is
// one, by turns a resting order on the far side of the new mid and an IOC
// order of 1,600 lots that sweeps the old book up to 10 ticks past it. A
// trade at the new level is what trips a price-band circuit breaker. It
// panics if sym is not a symbol of the flow's Config.
func (f *Flow) Shock(sym uint32, pct int) {
	if int(sym) >= f.c.Symbols {
		panic(fmt.Sprintf("venue: shock of symbol %d: the flow has %d symbols", sym, f.c.Symbols))
	}
	if pct == 0 {
		return
	}
	s := &f.syms[sym]
	mid := s.mid + s.mid*int64(pct)/100
	mid -= mid % f.c.Tick
	s.mid = min(max(mid, f.lo), f.hi)
	s.shockMid, s.shockDir, s.shockLeft, s.shockN = s.mid, 1, shockCap, 0
	if pct < 0 {
		s.shockDir = -1
	}
	for _, x := range f.shocked {
		if x == sym {
			return
		}
	}
	f.shocked = append(f.shocked, sym)
}

// shockCommand makes cmd the next command of a shock in progress.
func (f *Flow) shockCommand(cmd *engine.Command) {
	f.rr = (f.rr + 1) % len(f.shocked)
	sym := f.shocked[f.rr]
	s := &f.syms[sym]
	r := f.rng
	cmd.Symbol, cmd.Account = sym, uint32(r.IntN(f.c.Accounts))
	up, down := engine.Buy, engine.Sell
	if s.shockDir < 0 {
		up, down = down, up
	}
	if s.shockN%4 == 0 {
		cmd.Kind, cmd.Type, cmd.Side = engine.NewOrder, engine.Limit, down
		cmd.Qty = 1 + r.Int64N(flowMaxQty)
		cmd.Price = f.price(s.mid, down, 1+r.Int64N(5))
	} else {
		cmd.Kind, cmd.Type, cmd.Side = engine.NewOrder, engine.IOC, up
		cmd.Price = f.price(s.mid, up, -flowIOCReach)
		cmd.Qty = shockQty
		if l := f.c.Limits.MaxOrderQty; l > 0 {
			cmd.Qty = min(cmd.Qty, l)
		}
		if l := f.c.Limits.MaxOrderNotional; l > 0 {
			cmd.Qty = max(min(cmd.Qty, l/cmd.Price), 1)
		}
	}
	s.shockN++
	if s.shockLeft--; s.shockLeft == 0 {
		f.endShock(sym)
	}
}

func (f *Flow) endShock(sym uint32) {
	f.syms[sym].shockLeft = 0
	for i, x := range f.shocked {
		if x == sym {
			f.shocked = append(f.shocked[:i], f.shocked[i+1:]...)
			return
		}
	}
}

// Observe shows the flow a finished transaction's Result, so that it
// knows which orders rest: a committed NewOrder's resting remainder (its
// OrderID is the transaction id) joins, fills and removals take from
// resting orders, cancels and replaces apply. It ends a shock of the
// result's symbol once a trade lands near the new mid or the symbol is
// halted.
func (f *Flow) Observe(res *engine.Result) {
	cmd, out := &res.Cmd, &res.Out
	if int(cmd.Symbol) < f.c.Symbols && f.syms[cmd.Symbol].shockLeft > 0 {
		s := &f.syms[cmd.Symbol]
		if res.Reason == engine.ReasonCircuitBreaker || res.Reason == engine.ReasonHalted {
			f.endShock(cmd.Symbol)
		}
		for _, fl := range out.FillSlice() {
			if d := fl.Price - s.shockMid; res.Reason == engine.ReasonNone && 100*max(d, -d) <= s.shockMid {
				f.endShock(cmd.Symbol)
				break
			}
		}
	}
	if res.Reason != engine.ReasonNone {
		if cmd.Kind == engine.Cancel || cmd.Kind == engine.Replace {
			if res.Reason == engine.ReasonUnknownOrder || res.Reason == engine.ReasonNotOwner {
				f.remove(cmd.OrderID)
			} else if o := f.order(cmd.OrderID); o != nil {
				o.busy = false
			}
		}
		return
	}
	for _, fl := range out.FillSlice() {
		if o := f.order(fl.MakerOrder); o != nil {
			if o.open -= fl.Qty; o.open <= 0 {
				f.remove(fl.MakerOrder)
			}
		}
	}
	for _, rm := range out.RemovedSlice() {
		f.remove(rm.OrderID)
	}
	switch cmd.Kind {
	case engine.NewOrder:
		if out.Resting > 0 && int(cmd.Symbol) < f.c.Symbols {
			f.add(cmd.Symbol, liveOrder{id: cmd.OrderID, price: out.RestingPrice, open: out.Resting, account: cmd.Account, side: cmd.Side})
		}
	case engine.Cancel:
		f.remove(cmd.OrderID)
	case engine.Replace:
		o := f.order(cmd.OrderID)
		switch {
		case o == nil:
		case out.Resting > 0:
			o.price, o.open, o.busy = out.RestingPrice, out.Resting, false
		default:
			f.remove(cmd.OrderID)
		}
	}
}

func (f *Flow) order(id uint64) *liveOrder {
	l, ok := f.where[id]
	if !ok {
		return nil
	}
	return &f.syms[l.sym].orders[l.i]
}

func (f *Flow) add(sym uint32, o liveOrder) {
	if _, ok := f.where[o.id]; ok {
		return
	}
	s := &f.syms[sym]
	f.where[o.id] = orderLoc{sym: sym, i: int32(len(s.orders))}
	s.orders = append(s.orders, o)
}

func (f *Flow) remove(id uint64) {
	l, ok := f.where[id]
	if !ok {
		return
	}
	delete(f.where, id)
	s := &f.syms[l.sym]
	last := len(s.orders) - 1
	if int(l.i) != last {
		s.orders[l.i] = s.orders[last]
		f.where[s.orders[l.i].id] = l
	}
	s.orders = s.orders[:last]
}
