package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/commitcore/commitcore/circuitbreaker"
	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/venue"
	"github.com/commitcore/commitcore/ringbuf"
)

// TestTripPublishesReanchoredBand: the publish at a trip carries the band
// re-anchored at the tripping price, so a coordinator killed before the
// tripping transaction's result comes back (the abort's round trip) leaves
// its successor the halt and the new reference together. Otherwise the
// successor would trip again on the first trade after the halt.
func TestTripPublishesReanchoredBand(t *testing.T) {
	market := venue.DefaultConfig()
	table, err := engine.InitDecisionTable(ringbuf.AlignedBytes(engine.DecisionTableSize(64)), 64)
	require.NoError(t, err)
	require.NoError(t, table.AdvanceEpoch(1))
	g, err := newBreakerGate(market, time.Minute, table)
	require.NoError(t, err)
	mem := ringbuf.AlignedBytes(circuitbreaker.StateStoreSize(market.Symbols))
	store, err := circuitbreaker.NewStateStore(mem, market.Symbols)
	require.NoError(t, err)
	require.NoError(t, g.handOver(store))

	tx := engine.MakeTxID(1, 1)
	require.NoError(t, table.Open(tx))
	cmd := engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit, Symbol: 0, Account: 1, Price: 2 * market.StartPrice, Qty: 1}
	now := g.clock.Now()
	r, _ := g.Begin(tx, &cmd, now)
	require.Equal(t, engine.ReasonNone, r)
	tripPrice := market.StartPrice * 5 / 4
	out := engine.Outcome{NFills: 1}
	out.Fills[0] = engine.Fill{TradeID: 1, Symbol: 0, TakerSide: engine.Buy, MakerOrder: 7, TakerOrder: uint64(tx), Maker: 2, Taker: 1, Price: tripPrice, Qty: 1}
	require.True(t, g.Fills(tx, &out, now), "a fill 25%% away from the reference did not trip a ±10%% band")

	s, err := store.Load()
	require.NoError(t, err)
	require.True(t, s.Symbols[0].Halt.Active, "the trip's publish has no halt")
	require.Equal(t, tripPrice, s.Symbols[0].Reference, "the trip's publish has the old band reference")
}

// TestSkipFlowInTwoSteps: a standby gets its flow to the scheduled takeover
// while it waits and the rest of the way at the takeover; that must be the
// flow a single skip gives, shocks on either side of the split included.
func TestSkipFlowInTwoSteps(t *testing.T) {
	market := venue.DefaultConfig()
	shocks := []shock{{Symbol: 0, At: 100, Pct: 25}, {Symbol: 1, At: 500, Pct: -20}, {Symbol: 0, At: 700, Pct: -10}}
	whole, split := venue.NewFlow(market), venue.NewFlow(market)
	skipFlow(whole, 0, 900, shocks)
	skipFlow(split, 0, 500, shocks)
	skipFlow(split, 500, 900, shocks)
	for i := range 200 {
		var a, b engine.Command
		whole.Next(&a)
		split.Next(&b)
		require.Equal(t, a, b, "command %d after the skips", 900+i)
	}
	require.Equal(t, whole.Mid(0), split.Mid(0))
	require.Equal(t, whole.Mid(1), split.Mid(1))
}
