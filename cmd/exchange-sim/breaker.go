package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/commitcore/commitcore/circuitbreaker"
	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/venue"
)

// Simulated halts are short: a run lasts seconds, not a trading day.
const (
	defaultHalt = 20 * time.Millisecond
	bandBps     = 1000 // ±10 % around the last trade
	maxReports  = 8    // trip causes kept for the report
	// publishEvery bounds how stale the handed-over last-trade references
	// may be; halts and re-anchored references are published at once.
	publishEvery = 5 * time.Millisecond
)

// breakerGate is the coordinator's circuit breaker: per-symbol price bands
// and market-wide levels (circuitbreaker.Breaker) plus an overload breaker
// per participant, wired into the Core as its engine.Gate. In a procs run
// it hands its state over to a successor coordinator through a
// circuitbreaker.StateStore in shared memory: it publishes after every
// trip (which re-anchors the band), and at most every publishEvery after
// commits move the references; a standby restores from it before it takes
// over.
type breakerGate struct {
	b     *circuitbreaker.Breaker
	gate  *circuitbreaker.Gate
	clock engine.Clock // the Core's clock, on which the breaker runs

	// store is nil without a successor to hand over to (threads mode).
	// shared is CLOCK_MONOTONIC minus clock: the store's times are on
	// CLOCK_MONOTONIC, the one clock every process on the host shares.
	store     *circuitbreaker.StateStore
	shared    int64
	published int64                // clock instant of the last publish
	moved     bool                 // a commit moved prices since
	restored  int                  // halts restored at takeover
	err       error                // the first failed publish
	state     circuitbreaker.State // publish's, kept to reuse its Symbols
}

var _ engine.Gate = (*breakerGate)(nil)

// newBreakerGate builds the breaker over the decision table it aborts in,
// with band trips halting a symbol for halt. Every symbol's band starts
// around the market's opening price.
func newBreakerGate(market venue.Config, halt time.Duration, table *engine.DecisionTable) (*breakerGate, error) {
	cfg := circuitbreaker.DefaultConfig(market.Symbols)
	cfg.Band.WidthBps, cfg.Band.Halt = bandBps, halt
	for i := range cfg.Levels {
		cfg.Levels[i].Halt = time.Duration(i+2) * halt
	}
	cfg.MaxInFlight = engine.DefaultSlots
	b, err := circuitbreaker.New(cfg, table)
	if err != nil {
		return nil, fmt.Errorf("circuit breaker: %w", err)
	}
	for s := range market.Symbols {
		if err := b.SetReference(uint32(s), market.StartPrice); err != nil {
			return nil, fmt.Errorf("circuit breaker: %w", err)
		}
	}
	oc := circuitbreaker.DefaultOverloadConfig()
	oc.Window, oc.MinSamples, oc.RecoveryTimeout = 10*halt, 4, halt
	o, err := circuitbreaker.NewOverloads(len(venue.Roles), oc)
	if err != nil {
		return nil, fmt.Errorf("overload breaker: %w", err)
	}
	return &breakerGate{b: b, gate: circuitbreaker.NewGate(b, o), clock: engine.NewMonotonicClock()}, nil
}

func (g *breakerGate) configure(cfg *engine.Config) { cfg.Gate, cfg.Clock = g, g.clock }

// handOver makes g publish its state to store for a successor, and
// measures the offset from g's clock to CLOCK_MONOTONIC.
func (g *breakerGate) handOver(store *circuitbreaker.StateStore) error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("circuit breaker: read CLOCK_MONOTONIC: %w", err)
	}
	g.store, g.shared = store, ts.Nano()-g.clock.Now()
	return nil
}

// restore takes over the halts, references and index of the predecessor
// that published to the store last, if any did.
func (g *breakerGate) restore() error {
	s, err := g.store.Load()
	if errors.Is(err, circuitbreaker.ErrNoState) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("circuit breaker: predecessor's state: %w", err)
	}
	s.Shift(-g.shared)
	if g.restored, err = g.b.Restore(&s, g.clock.Now()); err != nil {
		return fmt.Errorf("circuit breaker: predecessor's state: %w", err)
	}
	return nil
}

// publish hands the breaker's state at now to the store.
func (g *breakerGate) publish(now int64) {
	if g.store == nil {
		return
	}
	g.b.StateInto(&g.state, now)
	g.state.Shift(g.shared)
	if err := g.store.Publish(&g.state); err != nil && g.err == nil {
		g.err = fmt.Errorf("circuit breaker: publish state: %w", err)
	}
	g.published, g.moved = now, false
}

// Admit implements engine.Gate.
func (g *breakerGate) Admit(cmd *engine.Command, now int64) (engine.Reason, int64) {
	return g.gate.Admit(cmd, now)
}

// Begin implements engine.Gate.
func (g *breakerGate) Begin(tx engine.TxID, cmd *engine.Command, now int64) (engine.Reason, int64) {
	return g.gate.Begin(tx, cmd, now)
}

// Fills implements engine.Gate. A trip is published at once: the halt,
// and the band the trip re-anchored at its price (bands follow the last
// trade, circuitbreaker.ReferenceLastTrade), so that a coordinator killed
// right after it leaves both to its successor, which would otherwise trip
// again on the first trade after the halt.
func (g *breakerGate) Fills(tx engine.TxID, out *engine.Outcome, now int64) bool {
	tripped := g.gate.Fills(tx, out, now)
	if tripped {
		g.publish(now)
	}
	return tripped
}

// Voted implements engine.Gate.
func (g *breakerGate) Voted(tx engine.TxID, voted, missing uint32, now int64) {
	g.gate.Voted(tx, voted, missing, now)
}

// Done implements engine.Gate.
func (g *breakerGate) Done(res *engine.Result, now int64) {
	g.gate.Done(res, now)
	g.moved = g.moved || (res.Reason == engine.ReasonNone && res.Out.NFills > 0)
	if g.moved && now-g.published >= int64(publishEvery) {
		g.publish(now)
	}
}

// summary sums up the trips for the run report.
func (g *breakerGate) summary() breakerStats {
	t := g.b.Totals()
	s := breakerStats{Trips: t.Trips, Aborted: t.Aborted, Completed: t.Completed, Restored: g.restored}
	for _, rep := range g.b.Reports() {
		if len(s.Causes) == maxReports {
			break
		}
		s.Causes = append(s.Causes, rep.String())
	}
	return s
}
