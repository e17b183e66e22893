package main

import (
	"fmt"
	"time"

	"github.com/commitcore/commitcore/circuitbreaker"
	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/venue"
)

// Simulated halts are short: a run lasts seconds, not a trading day.
const (
	bandHalt   = 20 * time.Millisecond
	bandBps    = 1000 // ±10 % around the last trade
	maxReports = 8    // trip causes kept for the report
)

// breakerGate is the coordinator's circuit breaker: per-symbol price bands
// and market-wide levels (circuitbreaker.Breaker) plus an overload breaker
// per participant, wired into the Core as its engine.Gate.
type breakerGate struct {
	b    *circuitbreaker.Breaker
	gate *circuitbreaker.Gate
	seen int // trip reports already handled
}

// newBreakerGate builds the breaker over the decision table it aborts in.
// Every symbol's band starts around the market's opening price.
func newBreakerGate(market venue.Config, table *engine.DecisionTable) (*breakerGate, error) {
	cfg := circuitbreaker.DefaultConfig(market.Symbols)
	cfg.Band.WidthBps, cfg.Band.Halt = bandBps, bandHalt
	for i := range cfg.Levels {
		cfg.Levels[i].Halt = time.Duration(i+2) * bandHalt
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
	oc.Window, oc.MinSamples, oc.RecoveryTimeout = 10*bandHalt, 4, bandHalt
	o, err := circuitbreaker.NewOverloads(len(venue.Roles), oc)
	if err != nil {
		return nil, fmt.Errorf("overload breaker: %w", err)
	}
	return &breakerGate{b: b, gate: circuitbreaker.NewGate(b, o)}, nil
}

func (g *breakerGate) configure(cfg *engine.Config) { cfg.Gate = g.gate }

// result looks at each Result after the gate has: when a trip halted a
// symbol, the operator re-anchors its band at the price that tripped it, as
// a reopening auction would, so trading resumes at the new level instead of
// tripping again on its first trade.
func (g *breakerGate) result(r *engine.Result) {
	if r.Reason != engine.ReasonCircuitBreaker {
		return
	}
	reps := g.b.Reports()
	for _, rep := range reps[g.seen:] {
		if rep.Cause == circuitbreaker.CauseBand {
			g.b.SetReference(rep.Scope.Symbol, rep.Price)
		}
	}
	g.seen = len(reps)
}

// summary sums up the trips for the run report.
func (g *breakerGate) summary() breakerStats {
	t := g.b.Totals()
	s := breakerStats{Trips: t.Trips, Aborted: t.Aborted, Completed: t.Completed}
	for _, rep := range g.b.Reports() {
		if len(s.Causes) == maxReports {
			break
		}
		s.Causes = append(s.Causes, rep.String())
	}
	return s
}
