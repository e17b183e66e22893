package circuitbreaker

import (
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

// These tests run the breakers inside a real engine.Core, wired through
// NewGate as a venue wires them. The participants' hosts are pumped by the
// test, one host per participant, and the clock is the test's, so every
// delivery and every timeout happens exactly when the test says: the
// transactions' phases at a trip, and the overload breaker's transitions,
// are deterministic.

// testClock is an engine.Clock the test moves.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() int64          { return c.ns.Load() }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// gatePart is a participant that records what happened to each transaction.
// The matching one fills every new order in full at the order's own price,
// so a test chooses the trade price by choosing the order's.
type gatePart struct {
	engine.NopParticipant
	matching bool
	state    map[engine.TxID]string
}

func (p *gatePart) Prepare(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	p.state[tx] = "prepared"
	if p.matching && cmd.Kind == engine.NewOrder {
		out.Reset()
		out.NFills = 1
		out.Fills[0] = engine.Fill{TradeID: engine.TradeIDOf(tx, 0), Symbol: cmd.Symbol, TakerSide: cmd.Side,
			MakerOrder: 1, TakerOrder: cmd.OrderID, Maker: 9, Taker: cmd.Account, Price: cmd.Price, Qty: cmd.Qty}
	}
	return p.NopParticipant.Prepare(tx, cmd, out)
}

func (p *gatePart) Commit(tx engine.TxID, out *engine.Outcome) {
	p.state[tx] = "committed"
	p.NopParticipant.Commit(tx, out)
}

func (p *gatePart) Abort(tx engine.TxID) {
	if _, ok := p.state[tx]; ok {
		p.state[tx] = "aborted"
	}
	p.NopParticipant.Abort(tx)
}

// rig is an engine.Core over three participants (0 is matching) on hosts
// the test pumps by hand.
type rig struct {
	t       *testing.T
	clock   *testClock
	table   *engine.DecisionTable
	core    *engine.Core
	hosts   []*engine.Host
	parts   []*gatePart
	down    []bool // a host the test does not pump
	results map[engine.TxID]engine.Result
	order   []engine.TxID // results in delivery order
}

const rigSlots = 64

// newRig builds the rig; gate makes the Core's Gate over its decision
// table (a Breaker's Decider).
func newRig(t *testing.T, gate func(*engine.DecisionTable) engine.Gate) *rig {
	r := &rig{t: t, clock: &testClock{}, results: map[engine.TxID]engine.Result{}}
	r.clock.ns.Store(int64(time.Hour)) // any origin will do
	var err error
	r.table, err = engine.InitDecisionTable(make([]byte, engine.DecisionTableSize(rigSlots)), rigSlots)
	require.NoError(t, err)
	var remotes []engine.Remote
	for i := range 3 {
		p := &gatePart{matching: i == 0, state: map[engine.TxID]string{}}
		// Nodes wait an hour of the test's clock before they terminate
		// anything themselves: the coordinator's decisions are under test.
		nd, err := engine.NewNode(engine.NodeConfig{ID: engine.NodeID(i), Matching: i == 0, Participant: p,
			Table: r.table, DecisionTimeout: time.Hour, CommitTimeout: time.Hour, Grace: time.Hour})
		require.NoError(t, err)
		coord, end, err := engine.NewPipe(1 << 16)
		require.NoError(t, err)
		h, err := engine.NewHost(end, r.clock, nd)
		require.NoError(t, err)
		r.hosts, r.parts, r.down = append(r.hosts, h), append(r.parts, p), append(r.down, false)
		remotes = append(remotes, engine.Remote{Conn: coord, Nodes: []engine.NodeID{engine.NodeID(i)}})
	}
	r.core, err = engine.Dial(engine.Config{
		Matching: 0, Clock: r.clock, Gate: gate(r.table),
		Timeouts: engine.Timeouts{Prepare: time.Millisecond, PreCommit: time.Millisecond},
	}, r.table, remotes...)
	require.NoError(t, err)
	return r
}

// send starts cmd and returns its transaction id.
func (r *rig) send(cmd engine.Command) engine.TxID {
	r.t.Helper()
	tx, err := r.core.Send(&cmd)
	require.NoError(r.t, err)
	return tx
}

// pump runs host i's duty cycle until it has nothing to do.
func (r *rig) pump(i int) int {
	r.t.Helper()
	total := 0
	for {
		n, err := r.hosts[i].DoWork()
		require.NoError(r.t, err)
		if n == 0 {
			return total
		}
		total += n
	}
}

// poll runs the coordinator's duty cycle once and files the Results.
func (r *rig) poll() int {
	r.t.Helper()
	n, err := r.core.Poll(func(res *engine.Result) {
		_, dup := r.results[res.Tx]
		require.False(r.t, dup, "tx %d reported twice", res.Tx)
		r.results[res.Tx] = *res
		r.order = append(r.order, res.Tx)
	})
	require.NoError(r.t, err)
	return n
}

// settle pumps the hosts that are up and polls until nothing moves.
func (r *rig) settle() {
	r.t.Helper()
	for quiet := 0; quiet < 2; {
		n := r.poll()
		for i := range r.hosts {
			if !r.down[i] {
				n += r.pump(i)
			}
		}
		n += r.poll()
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// reason returns tx's Result's reason; tx must have one.
func (r *rig) reason(tx engine.TxID) engine.Reason {
	r.t.Helper()
	res, ok := r.results[tx]
	require.True(r.t, ok, "tx %d has no Result", tx)
	return res.Reason
}

// agree checks that every participant that heard of a transaction with a
// Result ended it as the Result says.
func (r *rig) agree() {
	r.t.Helper()
	for tx, res := range r.results {
		for i, p := range r.parts {
			st, ok := p.state[tx]
			switch {
			case res.Reason == engine.ReasonNone:
				require.Equal(r.t, "committed", st, "tx %d committed, participant %d", tx, i)
			case ok:
				require.Equal(r.t, "aborted", st, "tx %d aborted (%v), participant %d", tx, res.Reason, i)
			}
		}
	}
}

func gateOrder(sym uint32, price int64) engine.Command {
	return engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit, Symbol: sym, Account: 2, Price: price, Qty: 5}
}

// A price outside the band trips the symbol with transactions in flight in
// every phase: the one past its commit point completes, the UNDECIDED ones
// of the symbol abort with circuit_breaker (the tripping one at once), the
// other symbol's goes on; then the symbol is halted until its resume time,
// cancels still pass, and trading resumes around the tripping price.
func TestCoreBandTrip(t *testing.T) {
	var br *Breaker
	r := newRig(t, func(tab *engine.DecisionTable) engine.Gate {
		var err error
		br, err = New(DefaultConfig(2), tab) // 10 % bands around the last trade, 5-minute halts
		require.NoError(t, err)
		require.NoError(t, br.SetReference(0, 10_000))
		require.NoError(t, br.SetReference(1, 10_000))
		br.StartDay()
		return NewGate(br, nil)
	})

	a := r.send(gateOrder(0, 10_100)) // past its commit point at the trip
	r.poll()                          // the PREPAREs go out
	for i := range r.hosts {
		r.pump(i)
	}
	r.poll()
	d, _, err := r.table.Lookup(a)
	require.NoError(t, err)
	require.Equal(t, engine.Commit, d, "a is in PRE-COMMIT")

	b := r.send(gateOrder(0, 10_050)) // UNDECIDED, matching has voted, the others not
	c := r.send(gateOrder(1, 10_000)) // another symbol
	dd := r.send(gateOrder(0, 11_500))
	require.Equal(t, 4, r.core.InFlight())
	require.Equal(t, 4, br.InFlight())
	r.poll()

	r.pump(0) // matching: A's PRE-COMMIT ack and its votes on B, C and D, D's fill outside [9 000, 11 000]
	trippedAt := r.clock.Now()
	r.poll()
	reps := br.Reports()
	require.Len(t, reps, 1)
	rep := reps[0]
	require.Equal(t, SymbolScope(0), rep.Scope)
	require.Equal(t, CauseBand, rep.Cause)
	require.Equal(t, [4]int64{11_500, 10_000, 9_000, 11_000}, [4]int64{rep.Price, rep.Reference, rep.Low, rep.High})
	require.Equal(t, dd, rep.Tx)
	require.Equal(t, []engine.TxID{b, dd}, rep.Aborted)
	require.Equal(t, []engine.TxID{a}, rep.Completed)
	require.Equal(t, trippedAt+int64(5*time.Minute), rep.ResumesAt)
	for _, tx := range []engine.TxID{b, dd} {
		d, why, err := r.table.Lookup(tx)
		require.NoError(t, err)
		require.Equal(t, [2]any{engine.Abort, engine.ReasonCircuitBreaker}, [2]any{d, why})
	}

	r.settle()
	require.Equal(t, engine.ReasonNone, r.reason(a))
	require.Equal(t, engine.ReasonCircuitBreaker, r.reason(b))
	require.Equal(t, engine.ReasonNone, r.reason(c))
	require.Equal(t, engine.ReasonCircuitBreaker, r.reason(dd))
	require.Zero(t, r.parts[1].state[dd], "risk never prepared the tripping order")
	require.Zero(t, br.InFlight())

	// The report's sets are exactly the Results: every circuit_breaker
	// abort is in Aborted, every Completed transaction committed.
	var cbAborted []engine.TxID
	for tx, res := range r.results {
		if res.Reason == engine.ReasonCircuitBreaker {
			cbAborted = append(cbAborted, tx)
		}
	}
	slices.Sort(cbAborted)
	require.Equal(t, rep.Aborted, cbAborted)
	for _, tx := range rep.Completed {
		require.Equal(t, engine.ReasonNone, r.reason(tx))
	}

	// Halted: a new order for symbol 0 comes back at once, with the resume
	// time; the other symbol trades; a cancel for symbol 0 passes.
	r.clock.add(time.Minute)
	prepared := r.parts[0].Prepared
	e := r.send(gateOrder(0, 10_000))
	r.poll()
	require.Equal(t, engine.ReasonHalted, r.reason(e))
	require.Equal(t, rep.ResumesAt, r.results[e].ResumesAt)
	require.Equal(t, uint64(e), r.results[e].Cmd.OrderID)
	r.settle()
	require.Equal(t, prepared, r.parts[0].Prepared, "no PREPARE for a halted symbol's order")
	_, _, err = r.table.Lookup(e)
	require.ErrorIs(t, err, engine.ErrNotInTable)
	f := r.send(gateOrder(1, 10_100))
	g := r.send(engine.Command{Kind: engine.Cancel, Symbol: 0, Account: 2, OrderID: uint64(a)})
	r.settle()
	require.Equal(t, engine.ReasonNone, r.reason(f))
	require.Equal(t, engine.ReasonNone, r.reason(g), "a halted symbol lets orders be cancelled")

	// Back after the halt, around the price that tripped.
	r.clock.ns.Store(rep.ResumesAt)
	h := r.send(gateOrder(0, 11_400))
	r.settle()
	require.Equal(t, engine.ReasonNone, r.reason(h))

	r.agree()
	k := r.core.Counters()
	require.Equal(t, uint64(2), k.Aborted[engine.ReasonCircuitBreaker])
	require.Equal(t, uint64(1), k.Aborted[engine.ReasonHalted])
	require.Equal(t, uint64(5), k.Committed)
	require.Equal(t, Totals{Trips: 1, Aborted: 2, Completed: 1}, br.Totals())
	require.NoError(t, r.core.Close())
}

// A participant that stops voting opens its overload breaker: its PREPARE
// timeouts are failures, and once the rate crosses the threshold new
// commands come back at once with participant_unavailable and the instant
// to retry, sending nothing. After the recovery timeout one probe goes
// through; a probe that times out opens the breaker again, one that is
// answered closes it.
func TestCoreOverload(t *testing.T) {
	const ms = time.Millisecond
	cfg := OverloadConfig{Window: 10 * ms, Buckets: 10, MinSamples: 4, FailurePercent: 50,
		RecoveryTimeout: 5 * ms, Probes: 1}
	ov, err := NewOverloads(3, cfg)
	require.NoError(t, err)
	var br *Breaker
	r := newRig(t, func(tab *engine.DecisionTable) engine.Gate {
		var err error
		br, err = New(DefaultConfig(2), tab)
		require.NoError(t, err)
		return NewGate(br, ov)
	})
	states := func() [3]OverloadState { return [3]OverloadState{ov.State(0), ov.State(1), ov.State(2)} }

	for range 2 {
		tx := r.send(gateOrder(0, 10_000))
		r.settle()
		require.Equal(t, engine.ReasonNone, r.reason(tx))
	}

	// Settlement (participant 2) goes silent: four orders time out.
	r.down[2] = true
	var lost []engine.TxID
	for range 4 {
		lost = append(lost, r.send(gateOrder(0, 10_000)))
	}
	r.settle()
	require.Equal(t, [3]OverloadState{Closed, Closed, Closed}, states(), "nothing has timed out yet")
	r.clock.add(ms) // the PREPARE timeout
	openedAt := r.clock.Now()
	r.settle()
	require.Equal(t, [3]OverloadState{Closed, Closed, Open}, states())
	require.Equal(t, uint64(4), r.core.Counters().Timeouts)
	require.Equal(t, 4, r.core.InFlight(), "their ABORTs wait for settlement's acks")

	// Open: rejected at once, orders and cancels alike, nothing sent.
	prepared := r.parts[0].Prepared
	o1 := r.send(gateOrder(0, 10_000))
	o2 := r.send(engine.Command{Kind: engine.Cancel, Symbol: 0, Account: 2, OrderID: 1})
	r.settle()
	for _, tx := range []engine.TxID{o1, o2} {
		require.Equal(t, engine.ReasonParticipantUnavailable, r.reason(tx))
		require.Equal(t, openedAt+int64(cfg.RecoveryTimeout), r.results[tx].ResumesAt)
	}
	require.Equal(t, prepared, r.parts[0].Prepared, "no PREPARE behind an open breaker")

	// Half-open: one probe; it times out and the breaker opens again.
	r.clock.ns.Store(openedAt + int64(cfg.RecoveryTimeout))
	probe := r.send(gateOrder(0, 10_000))
	probeAt := r.clock.Now()
	behind := r.send(gateOrder(0, 10_000))
	r.settle()
	require.Equal(t, [3]OverloadState{Closed, Closed, HalfOpen}, states())
	require.Equal(t, engine.ReasonParticipantUnavailable, r.reason(behind), "one probe at a time")
	require.Equal(t, probeAt+int64(cfg.RecoveryTimeout), r.results[behind].ResumesAt)
	r.clock.add(ms)
	reopenedAt := r.clock.Now()
	r.settle()
	require.Equal(t, [3]OverloadState{Closed, Closed, Open}, states())
	again := r.send(gateOrder(0, 10_000))
	r.settle()
	require.Equal(t, engine.ReasonParticipantUnavailable, r.reason(again))
	require.Equal(t, reopenedAt+int64(cfg.RecoveryTimeout), r.results[again].ResumesAt)

	// Settlement is back; the next probe is answered and closes the breaker.
	r.down[2] = false
	r.clock.ns.Store(reopenedAt + int64(cfg.RecoveryTimeout))
	probe2 := r.send(gateOrder(0, 10_000))
	r.settle()
	require.Equal(t, engine.ReasonNone, r.reason(probe2))
	require.Equal(t, [3]OverloadState{Closed, Closed, Closed}, states())
	for _, tx := range append(lost, probe) {
		require.Equal(t, engine.ReasonTimeout, r.reason(tx), "tx %d", tx)
	}
	tx := r.send(gateOrder(0, 10_000))
	r.settle()
	require.Equal(t, engine.ReasonNone, r.reason(tx))

	require.Zero(t, r.core.InFlight())
	require.Zero(t, br.InFlight())
	r.agree()
	k := r.core.Counters()
	require.Equal(t, uint64(4), k.Aborted[engine.ReasonParticipantUnavailable])
	require.Equal(t, uint64(5), k.Aborted[engine.ReasonTimeout])
	require.Equal(t, uint64(4), k.Committed)
	require.NoError(t, r.core.Close())
}

// Operators halt and resume symbols from their own goroutine while a Core
// with real participant runners trades, and now and then a price leaves
// its band: whatever the interleaving, the reports agree with the Results
// (every circuit_breaker abort is in a report's Aborted, every Completed
// transaction committed, every Aborted one did not), the participants
// agree with the Results, and nothing stays tracked. Safety only: the
// interleavings are the scheduler's.
func TestCoreConcurrentHalts(t *testing.T) {
	const slots, symbols, n = 64, 4, 2000
	table, err := engine.InitDecisionTable(make([]byte, engine.DecisionTableSize(slots)), slots)
	require.NoError(t, err)
	cfg := DefaultConfig(symbols)
	cfg.MaxInFlight = slots
	br, err := New(cfg, table)
	require.NoError(t, err)
	for sym := range uint32(symbols) {
		require.NoError(t, br.SetReference(sym, 10_000))
	}
	parts := []*gatePart{{matching: true, state: map[engine.TxID]string{}},
		{state: map[engine.TxID]string{}}, {state: map[engine.TxID]string{}}}
	clock := engine.NewMonotonicClock()
	core, err := engine.New(engine.Config{Table: table, Gate: NewGate(br, nil), Clock: clock, Idle: engine.IdleYield,
		MaxInFlight: 32, Timeouts: engine.Timeouts{Prepare: 5 * time.Second, PreCommit: 50 * time.Millisecond},
		DecisionTimeout: 10 * time.Second, Grace: 10 * time.Second},
		parts[0], parts[1], parts[2])
	require.NoError(t, err)

	stop, done := make(chan struct{}), make(chan struct{})
	halted := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			scope := SymbolScope(uint32(i % symbols))
			if i%7 == 6 {
				scope = MarketScope()
			}
			_, _ = br.Halt(scope, clock.Now(), UntilResumed) // ErrAlreadyHalted after a band trip
			if i == 0 {
				close(halted)
			}
			for range 20 {
				runtime.Gosched()
			}
			_ = br.Resume(scope, clock.Now())
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	<-halted

	results := map[engine.TxID]engine.Result{}
	cmds := map[engine.TxID]engine.Command{}
	collect := func() {
		_, err := core.Poll(func(r *engine.Result) { results[r.Tx] = *r })
		require.NoError(t, err)
	}
	for i := 0; i < n; {
		cmd := gateOrder(uint32(i%symbols), 10_000+int64(i%9)-4)
		switch {
		case i%150 == 149:
			cmd.Price = 12_000 // outside the band: a trip
		case i%10 == 9:
			cmd = engine.Command{Kind: engine.Cancel, Symbol: uint32(i % symbols), Account: 2, OrderID: uint64(i)}
		}
		tx, err := core.Send(&cmd)
		if errors.Is(err, engine.ErrBusy) {
			collect()
			continue
		}
		require.NoError(t, err)
		cmds[tx] = cmd
		i++
	}
	for core.InFlight() > 0 || len(results) < len(cmds) {
		collect()
	}
	close(stop)
	<-done
	require.NoError(t, core.Close())

	require.Len(t, results, n)
	inReports := map[engine.TxID]bool{}
	reps := br.Reports()
	require.NotEmpty(t, reps)
	for _, rep := range reps {
		require.Empty(t, rep.Unresolved, "%v", &rep)
		for _, tx := range rep.Aborted {
			require.NotEqual(t, engine.ReasonNone, results[tx].Reason, "tx %d reported aborted by %v", tx, &rep)
			inReports[tx] = true
		}
		for _, tx := range rep.Completed {
			require.Equal(t, engine.ReasonNone, results[tx].Reason, "tx %d reported completed by %v", tx, &rep)
		}
	}
	reasons := map[engine.Reason]int{}
	for tx, res := range results {
		reasons[res.Reason]++
		if res.Reason == engine.ReasonCircuitBreaker {
			require.True(t, inReports[tx], "tx %d aborted by the breaker, in no report", tx)
		}
		if res.Reason == engine.ReasonHalted {
			require.NotEqual(t, engine.Cancel, cmds[tx].Kind, "a cancel was halted")
		}
		for i, p := range parts {
			st, ok := p.state[tx]
			switch {
			case res.Reason == engine.ReasonNone:
				require.Equal(t, "committed", st, "tx %d participant %d", tx, i)
			case ok:
				require.Equal(t, "aborted", st, "tx %d (%v) participant %d", tx, res.Reason, i)
			}
		}
	}
	require.Zero(t, br.InFlight())
	t.Logf("%d reports, results by reason: %v", len(reps), reasons)
}
