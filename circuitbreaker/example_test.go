package circuitbreaker_test

import (
	"fmt"
	"time"

	"github.com/commitcore/commitcore/circuitbreaker"
	"github.com/commitcore/commitcore/engine"
)

// A price outside the band trips a symbol halt at the last instant before
// the commit point: the coordinator's commit CAS loses.
func Example() {
	table, _ := engine.InitDecisionTable(make([]byte, engine.DecisionTableSize(64)), 64)
	_ = table.AdvanceEpoch(1)
	cfg := circuitbreaker.DefaultConfig(4) // 10 % bands, 5-minute halts
	br, _ := circuitbreaker.New(cfg, table)
	_ = br.SetReference(2, 10_000)

	cmd := engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit, Symbol: 2, Price: 11_500, Qty: 5}
	now := int64(time.Hour)
	if r, _ := br.Admit(&cmd, now); r != engine.ReasonNone {
		return
	}
	tx := engine.MakeTxID(1, 1)
	_ = table.Open(tx) // Coordinator.Propose does this
	br.Begin(tx, &cmd, now)

	// Matching votes YES with a tentative fill at 11 500.
	var out engine.Outcome
	out.NFills = 1
	out.Fills[0] = engine.Fill{Symbol: 2, TakerSide: engine.Buy, Price: 11_500, Qty: 5}
	if rep := br.CheckFills(tx, &out, now); rep != nil {
		fmt.Println(rep.Scope, rep.Cause, rep.Low, rep.High, rep.Aborted, time.Duration(rep.ResumesAt-now))
	}
	d, reason, _ := table.Commit(tx) // the coordinator's commit point
	fmt.Println(d, reason)
	r, resumes := br.Admit(&cmd, now+int64(time.Minute))
	fmt.Println(r, time.Duration(resumes-now))
	// Output:
	// symbol 2 band 9000 11000 [1099511627777] 5m0s
	// abort circuit_breaker
	// halted 5m0s
}

// fillAtLimit stands in for the matching engine: it fills every new order
// in full at the order's limit price.
type fillAtLimit struct{ engine.NopParticipant }

func (m *fillAtLimit) Prepare(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	if cmd.Kind == engine.NewOrder {
		out.Reset()
		out.NFills = 1
		out.Fills[0] = engine.Fill{TradeID: engine.TradeIDOf(tx, 0), Symbol: cmd.Symbol, TakerSide: cmd.Side,
			TakerOrder: cmd.OrderID, Taker: cmd.Account, Price: cmd.Price, Qty: cmd.Qty}
	}
	return m.NopParticipant.Prepare(tx, cmd, out)
}

// A Core with the breaker as its Gate. A trade outside symbol 2's band
// trips it before the commit point: the order aborts with circuit_breaker,
// later orders for the symbol come back at once with the time trading
// resumes, cancels still go through, and other symbols trade on.
func ExampleNewGate() {
	const slots = 1024
	table, err := engine.InitDecisionTable(make([]byte, engine.DecisionTableSize(slots)), slots)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := circuitbreaker.DefaultConfig(4) // 10 % bands, 5-minute halts, 10/15/20 % market levels
	cfg.MaxInFlight = slots
	br, err := circuitbreaker.New(cfg, table)
	if err != nil {
		fmt.Println(err)
		return
	}
	for sym := range uint32(4) {
		_ = br.SetReference(sym, 10_000) // the venue's start prices
	}
	br.StartDay()

	// Generous timeouts: an example must not abort on a busy machine.
	core, err := engine.New(engine.Config{Table: table, Gate: circuitbreaker.NewGate(br, nil),
		Timeouts: engine.Timeouts{Prepare: time.Second}, DecisionTimeout: time.Second, Grace: time.Second},
		&fillAtLimit{}, &engine.NopParticipant{}, &engine.NopParticipant{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer core.Close()
	submit := func(kind engine.CommandKind, sym uint32, price int64) engine.Result {
		cmd := engine.Command{Kind: kind, Side: engine.Buy, Type: engine.Limit, Symbol: sym, Account: 7, Price: price, Qty: 3}
		if kind == engine.Cancel {
			cmd = engine.Command{Kind: kind, Symbol: sym, Account: 7, OrderID: 1}
		}
		res, err := core.Submit(&cmd)
		if err != nil {
			fmt.Println(err)
		}
		return res
	}

	fmt.Println("in band:", submit(engine.NewOrder, 2, 10_500).Reason)
	fmt.Println("outside:", submit(engine.NewOrder, 2, 11_600).Reason)
	rep := br.Reports()[0]
	fmt.Println("report:", rep.Scope, rep.Cause, rep.Price, "outside", rep.Low, "to", rep.High)
	halted := submit(engine.NewOrder, 2, 10_500)
	fmt.Println("then:", halted.Reason, "for", time.Duration(halted.ResumesAt-rep.TriggeredAt))
	fmt.Println("cancel:", submit(engine.Cancel, 2, 0).Reason)
	fmt.Println("symbol 3:", submit(engine.NewOrder, 3, 10_000).Reason)
	t := br.Totals()
	fmt.Println("trips", t.Trips, "aborted", t.Aborted, "completed", t.Completed)
	// Output:
	// in band: none
	// outside: circuit_breaker
	// report: symbol 2 band 11600 outside 9450 to 11550
	// then: halted for 5m0s
	// cancel: none
	// symbol 3: none
	// trips 1 aborted 1 completed 0
}
