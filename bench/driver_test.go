package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/commitcore/commitcore/engine"
)

// fakeClock is a clock that moves only when the fake target polls.
type fakeClock struct{ t int64 }

func (c *fakeClock) Now() int64 { return c.t }

// fakeTarget is a single server with a fixed service time on a fake
// clock: each Poll advances the clock by step, once (at stallAt) by stall
// more, and hands over the commands served by then. Every abortEvery-th
// command aborts.
type fakeTarget struct {
	clock      *fakeClock
	svc, step  int64
	stallAt    int64
	stall      int64
	abortEvery uint64
	free       int64 // when the server is next idle
	tx         engine.TxID
	queue      []engine.Result
	due        []int64
}

func (f *fakeTarget) Send(cmd *engine.Command) (engine.TxID, error) {
	f.tx++
	start := max(f.clock.t, f.free)
	f.free = start + f.svc
	r := engine.Result{Tx: f.tx, Cmd: *cmd, Prepare: f.svc / 2, PreCommit: f.svc / 4, Commit: f.svc / 4, Total: f.svc}
	if f.abortEvery > 0 && cmd.ClientOrderID%f.abortEvery == f.abortEvery-1 {
		r.Reason = engine.ReasonRateLimit
	}
	f.queue = append(f.queue, r)
	f.due = append(f.due, f.free)
	return f.tx, nil
}

func (f *fakeTarget) Poll(fn func(*engine.Result)) (int, error) {
	f.clock.t += f.step
	if f.stall > 0 && f.clock.t >= f.stallAt {
		f.clock.t += f.stall
		f.stall = 0
	}
	n := 0
	for len(f.queue) > 0 && f.due[0] <= f.clock.t {
		fn(&f.queue[0])
		f.queue, f.due = f.queue[1:], f.due[1:]
		n++
	}
	return n, nil
}

// countSource numbers its commands and counts what it observes.
type countSource struct{ n, observed uint64 }

func (s *countSource) Next(cmd *engine.Command) {
	*cmd = engine.Command{Kind: engine.NewOrder, ClientOrderID: s.n}
	s.n++
}

func (s *countSource) Observe(*engine.Result) { s.observed++ }

const (
	us = int64(time.Microsecond)
	ms = int64(time.Millisecond)
)

// TestDriverCorrectsCoordinatedOmission stalls a target for 100 ms under
// a 1,000/s open loop: every command due during the stall is charged
// its wait, not just the one that was in flight.
func TestDriverCorrectsCoordinatedOmission(t *testing.T) {
	clk := &fakeClock{}
	tg := &fakeTarget{clock: clk, svc: 10 * us, step: us, stallAt: 500 * ms, stall: 100 * ms, abortEvery: 10}
	src := &countSource{}
	d := &Driver{Clock: clk, Alloc: func() (uint64, uint64) { return 0, 0 }}
	run, err := d.Run(tg, src, Load{Rate: 1000, Commands: 1000, Batch: 1})
	require.NoError(t, err)
	rec := run.Rec
	assert.Equal(t, 1000, run.Done)
	assert.Equal(t, 1000, run.Sent)
	assert.False(t, run.Truncated)
	assert.Equal(t, uint64(1000), src.observed)
	assert.Equal(t, int64(1000), rec.E2E.TotalCount())
	assert.Equal(t, uint64(100), rec.Aborted)
	assert.Equal(t, uint64(900), rec.Committed)
	assert.Equal(t, int64(900), rec.Prepare.TotalCount())
	assert.True(t, rec.Prepare.ValuesAreEquivalent(5*us, rec.Prepare.Max()))

	// Undisturbed commands take the service time exactly.
	assert.True(t, rec.E2E.ValuesAreEquivalent(10*us, rec.E2E.ValueAtQuantile(50)), "p50 %d", rec.E2E.ValueAtQuantile(50))
	// The stall starts at 500 ms, just before command 500 is due: that
	// command waits it out (100 ms + 10 µs), and so do the ones due after
	// it, each sent the moment the one before finished: command 500+j
	// takes 100.01 ms - 0.99 ms × j, 51 of them 50 ms or more. A recorder
	// that measured from the actual send would show none.
	assert.True(t, rec.E2E.ValuesAreEquivalent(100*ms+10*us, rec.E2E.Max()), "max %d", rec.E2E.Max())
	var slow int64
	for _, bar := range rec.E2E.Distribution() {
		if bar.From >= 50*ms {
			slow += bar.Count
		}
	}
	assert.Equal(t, int64(51), slow)
	// From the first command due (0) to the last result (999 ms + 10 µs).
	assert.Equal(t, time.Duration(999*ms+10*us), run.Elapsed)
}

func TestDriverWarmupIsNotRecorded(t *testing.T) {
	clk := &fakeClock{}
	tg := &fakeTarget{clock: clk, svc: 10 * us, step: us}
	allocs := uint64(0)
	d := &Driver{Clock: clk, Alloc: func() (uint64, uint64) { allocs += 7; return allocs, 1 }}
	run, err := d.Run(tg, &countSource{}, Load{Rate: 10_000, Commands: 300, Warmup: 200, Batch: 4})
	require.NoError(t, err)
	assert.Equal(t, 300, run.Done)
	assert.Equal(t, int64(300), run.Rec.E2E.TotalCount())
	assert.Equal(t, uint64(7), run.Mallocs, "allocations counted across the measured window only")
	// The measured window starts at the first measured command's due time.
	assert.Equal(t, time.Duration(299*100*us+10*us), run.Elapsed)
}

func TestDriverDeadlineTruncates(t *testing.T) {
	clk := &fakeClock{}
	tg := &fakeTarget{clock: clk, svc: 2 * ms, step: 10 * us}
	d := &Driver{Clock: clk, Alloc: func() (uint64, uint64) { return 0, 0 }}
	run, err := d.Run(tg, &countSource{}, Load{Rate: 1000, Commands: 1000, Batch: 1, Deadline: 100 * time.Millisecond})
	require.NoError(t, err)
	assert.True(t, run.Truncated)
	assert.Less(t, run.Done, 100)
	sat, why := DefaultSaturation.Check(RowOf("cut", run))
	assert.True(t, sat)
	assert.Contains(t, why, "deadline")
}

func TestDriverRejectsMisnumberedSource(t *testing.T) {
	clk := &fakeClock{}
	tg := &fakeTarget{clock: clk, svc: us, step: us}
	src := &countSource{n: 5}
	_, err := (&Driver{Clock: clk}).Run(tg, src, Load{Rate: 1000, Commands: 10, Batch: 1})
	require.ErrorIs(t, err, ErrSource)
	_, err = (&Driver{Clock: clk}).Run(tg, src, Load{Rate: 0, Commands: 10, Batch: 1})
	require.Error(t, err)
}
