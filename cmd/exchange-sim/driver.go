package main

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/venue"
)

// hooks connect a driver to what runs around it: the supervisor of a procs
// run, or the terminal of a threads run.
type hooks interface {
	// fault is called right after command f.At was sent and returns once
	// the fault is in place; s is flushed to the supervisor first, since a
	// killed coordinator takes its counts with it.
	fault(f fault, s *stats) error
	// progress reports the commands sent so far and the current p99.
	progress(sent uint64, p99 int64)
}

// driver feeds the order flow through a Core, closed loop with up to batch
// commands in flight, or open loop at rate, and counts the results.
type driver struct {
	core   *engine.Core
	flow   *venue.Flow
	clock  engine.Clock
	idle   engine.IdleKind
	batch  int
	rate   float64
	first  uint64 // the first command's index in the flow
	end    uint64 // one past the last command's index
	faults []fault
	shocks []shock
	hooks  hooks
	gate   *breakerGate // nil without a circuit breaker

	stats    *stats
	sent     []int64 // intended send time by command index & mask
	mask     uint64
	inflight int
}

func newDriver(core *engine.Core, flow *venue.Flow, h hooks, first, end uint64, batch int, rate float64, idle engine.IdleKind) *driver {
	n := uint64(1)
	for n < 2*uint64(batch) {
		n <<= 1
	}
	return &driver{
		core: core, flow: flow, clock: engine.NewMonotonicClock(), idle: idle, batch: batch, rate: rate,
		first: first, end: end, hooks: h, stats: newStats(), sent: make([]int64, n), mask: n - 1,
	}
}

// progressEvery is how often the driver reports progress.
const progressEvery = 200 * time.Millisecond

// run sends commands first…end-1 and waits for every result, including
// those of transactions a predecessor left in flight.
func (d *driver) run() error {
	slices.SortFunc(d.faults, func(a, b fault) int { return cmpU64(a.At, b.At) })
	d.shocks = sortedShocks(d.shocks)
	for len(d.faults) > 0 && d.faults[0].At < d.first {
		d.faults = d.faults[1:]
	}
	for len(d.shocks) > 0 && d.shocks[0].At < d.first {
		d.shocks = d.shocks[1:]
	}
	idle := engine.NewIdleStrategy(d.idle, nil)
	var period int64
	if d.rate > 0 {
		period = int64(float64(time.Second) / d.rate)
	}
	var cmd engine.Command
	have := false
	next, t0 := d.first, d.clock.Now()
	lastProgress := t0
	onResult := d.onResult
	for next < d.end || d.inflight > 0 || d.core.InFlight() > 0 {
		work := 0
		for d.inflight < d.batch && next < d.end {
			now := d.clock.Now()
			intended := now
			if period > 0 {
				intended = t0 + int64(next-d.first)*period
				if now < intended {
					break
				}
			}
			if !have {
				for len(d.shocks) > 0 && d.shocks[0].At == next {
					d.flow.Shock(d.shocks[0].Symbol, d.shocks[0].Pct)
					d.shocks = d.shocks[1:]
				}
				d.flow.Next(&cmd)
				if cmd.ClientOrderID != next {
					return fmt.Errorf("flow gave command %d as number %d", cmd.ClientOrderID, next)
				}
				have = true
			}
			if _, err := d.core.Send(&cmd); errors.Is(err, engine.ErrBusy) {
				break
			} else if err != nil {
				return fmt.Errorf("send command %d: %w", next, err)
			}
			have = false
			d.sent[next&d.mask] = intended
			d.inflight++
			d.stats.Commands++
			next++
			work++
			if len(d.faults) > 0 && d.faults[0].At == next-1 {
				if _, err := d.core.Poll(onResult); err != nil {
					return err
				}
				if d.gate != nil {
					// A killed coordinator's trips count too.
					d.stats.Breaker = d.gate.summary()
				}
				if err := d.hooks.fault(d.faults[0], d.stats); err != nil {
					return err
				}
				d.faults = d.faults[1:]
			}
		}
		n, err := d.core.Poll(onResult)
		if err != nil {
			return err
		}
		idle.Idle(work + n)
		if now := d.clock.Now(); now-lastProgress >= int64(progressEvery) {
			lastProgress = now
			d.hooks.progress(next, d.stats.E2E.ValueAtQuantile(99))
		}
	}
	if d.gate != nil {
		d.stats.Breaker = d.gate.summary()
	}
	return nil
}

func (d *driver) onResult(r *engine.Result) {
	lat := int64(-1)
	if !r.Recovered {
		d.inflight--
		lat = d.clock.Now() - d.sent[r.Cmd.ClientOrderID&d.mask]
	}
	d.stats.result(r, lat)
	d.flow.Observe(r)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedShocks(s []shock) []shock {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b shock) int { return cmpU64(a.At, b.At) })
	return s
}
