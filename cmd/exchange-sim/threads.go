package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/engine/journal"
	"github.com/commitcore/commitcore/internal/venue"
	"github.com/commitcore/commitcore/ringbuf"
)

// localHooks serve a threads run: no processes to fault, progress straight
// to the terminal.
type localHooks struct {
	ui    *progress
	total uint64
	start time.Time
}

func (h *localHooks) fault(f fault, _ *stats) error {
	return fmt.Errorf("-%s %s@%d needs -mode procs", f.Kind, f.Role, f.At)
}

func (h *localHooks) progress(sent uint64, p99 int64) {
	h.ui.show(sent, h.total, time.Since(h.start), p99)
}

// runThreads runs the whole exchange in this process: the same Core and
// participants, over heap-memory rings.
func runThreads(o *options, base spec, ui *progress) (*stats, []liveState, time.Duration, error) {
	j, err := journal.Open(base.Journal, journal.Options{Sync: syncPolicy(base.Sync)})
	if err != nil {
		return nil, nil, 0, err
	}
	defer j.Close()
	var recs []*venue.Recorder
	var parts []engine.Participant
	for _, r := range venue.Roles {
		p, err := venue.New(base.Market, r)
		if err != nil {
			return nil, nil, 0, err
		}
		rec := venue.NewRecorder(p)
		recs = append(recs, rec)
		parts = append(parts, rec)
	}
	cfg := base.coreConfig(engine.NewJournalLog(j))
	// The table is made here, not by engine.New, so that the circuit
	// breaker can abort in it.
	if cfg.Table, err = engine.InitDecisionTable(ringbuf.AlignedBytes(engine.DecisionTableSize(base.Slots)), base.Slots); err != nil {
		return nil, nil, 0, err
	}
	gate, err := newBreakerGate(base.Market, base.Halt, cfg.Table)
	if err != nil {
		return nil, nil, 0, err
	}
	gate.configure(&cfg)
	core, err := engine.New(cfg, parts...)
	if err != nil {
		return nil, nil, 0, err
	}
	h := &localHooks{ui: ui, total: o.orders, start: time.Now()}
	d := newDriver(core, venue.NewFlow(base.Market), h, 0, o.orders, base.Batch, base.Rate, base.Idle)
	d.shocks, d.gate = base.Shocks, gate
	runErr := d.run()
	elapsed := time.Since(h.start)
	inFlight := core.InFlight()
	if err := errors.Join(runErr, core.Close(), j.Flush()); err != nil {
		return nil, nil, 0, err
	}
	var lives []liveState
	for i, r := range venue.Roles {
		dg, err := venue.Digest(recs[i])
		if err != nil {
			return nil, nil, 0, fmt.Errorf("%s: digest: %w", r, err)
		}
		lives = append(lives, liveState{role: r, committed: recs[i].Committed(), digest: dg,
			checks: venue.Audit(recs[i]), inFlight: inFlight})
	}
	return d.stats, lives, elapsed, nil
}
