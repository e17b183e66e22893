package engine_test

import (
	"fmt"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// A Core with three in-process participants commits a new order. Real
// deployments pass matching, risk and settlement; NopParticipant votes YES
// on everything.
func Example() {
	// Generous timeouts: an example must not abort on a busy machine.
	cfg := engine.Config{Matching: -1, Timeouts: engine.Timeouts{Prepare: time.Second},
		DecisionTimeout: time.Second, Grace: time.Second}
	core, err := engine.New(cfg,
		&engine.NopParticipant{}, &engine.NopParticipant{}, &engine.NopParticipant{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer core.Close()
	cmd := engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit,
		Symbol: 0, Account: 7, Price: 10_000, Qty: 3}
	res, err := core.Submit(&cmd)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("outcome:", res.Reason, "order id = tx id:", res.Cmd.OrderID == uint64(res.Tx))
	// Output: outcome: none order id = tx id: true
}
