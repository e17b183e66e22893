package venue

import (
	"testing"

	"github.com/commitcore/commitcore/circuitbreaker"
	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

// TestShockTripsBreaker runs the flow through the engine with a
// circuitbreaker Gate (10 % dynamic bands, 5-minute halts): the normal
// flow trades for thousands of commands without a trip, and a Shock of one
// symbol trips that symbol's band within the shock's commands, aborting the
// tripping transaction and halting the symbol while the others trade on;
// the books, ledgers and exposures stay consistent.
func TestShockTripsBreaker(t *testing.T) {
	c := DefaultConfig()
	c.Symbols, c.Accounts, c.Depth = 4, 100, 30
	const slots = 256
	table, err := engine.InitDecisionTable(make([]byte, engine.DecisionTableSize(slots)), slots)
	require.NoError(t, err)
	bc := circuitbreaker.DefaultConfig(c.Symbols)
	bc.MaxInFlight = slots
	br, err := circuitbreaker.New(bc, table)
	require.NoError(t, err)
	for sym := range uint32(c.Symbols) {
		require.NoError(t, br.SetReference(sym, c.StartPrice))
	}
	br.StartDay()
	ps, err := NewAll(c)
	require.NoError(t, err)
	k, err := engine.New(slackConfig(engine.Config{Table: table, Gate: circuitbreaker.NewGate(br, nil), Idle: engine.IdleYield, MaxInFlight: 32}), ps...)
	require.NoError(t, err)
	defer k.Close()

	const shocked = 2
	f := NewFlow(c)
	var reasons [engine.NumReasons]int
	var otherCommits, otherAfter int
	after := false
	d := newDriver(t, k, 32, func(r *engine.Result) {
		reasons[r.Reason]++
		if r.Cmd.Symbol != shocked && r.Reason == engine.ReasonNone {
			otherCommits++
			if after {
				otherAfter++
			}
		}
		f.Observe(r)
	})
	var cmd engine.Command
	for range 4000 {
		f.Next(&cmd)
		d.send(&cmd)
	}
	d.drain()
	require.Empty(t, br.Reports(), "the normal flow tripped a band")
	require.Positive(t, reasons[engine.ReasonNone])

	f.Shock(shocked, 25)
	after = true
	for i := 0; i < 2000 && (f.syms[shocked].shockLeft > 0 || i < 500); i++ {
		f.Next(&cmd)
		d.send(&cmd)
	}
	d.drain()
	require.NoError(t, k.Close())

	reps := br.Reports()
	require.NotEmpty(t, reps, "the shock tripped nothing")
	rep := reps[0]
	require.Equal(t, circuitbreaker.SymbolScope(shocked), rep.Scope)
	require.Equal(t, circuitbreaker.CauseBand, rep.Cause)
	require.Greater(t, rep.Price, rep.High, "the trip was a trade above the band")
	require.Contains(t, rep.Aborted, rep.Tx, "the tripping transaction aborted")
	require.Positive(t, reasons[engine.ReasonCircuitBreaker])
	require.Positive(t, reasons[engine.ReasonHalted], "orders for the halted symbol are turned away")
	require.Zero(t, f.syms[shocked].shockLeft, "the halt ended the shock")
	require.Positive(t, otherAfter, "the other symbols trade on")
	for _, p := range ps {
		require.NoError(t, Err(Audit(p)))
	}
	require.NoError(t, Err(CrossAudit(c, ps...)))
	t.Logf("%v; reasons: %s", &rep, reasonCounts(reasons[:]))
}
