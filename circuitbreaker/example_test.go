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
