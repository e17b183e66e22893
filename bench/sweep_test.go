package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRow is a run at rate that finished done commands per second with a
// median latency of p50.
func fakeRow(rate, done float64, p50 time.Duration) Row {
	return Row{Rate: rate, Achieved: done, Commands: int(rate), Done: uint64(done), E2E: Percentiles{P50: int64(p50)}}
}

func TestSaturationCheck(t *testing.T) {
	sat := Saturation{MinRatio: 0.9, MaxMedian: time.Millisecond}
	ok, _ := sat.Check(fakeRow(1000, 950, 10*time.Microsecond))
	assert.False(t, ok, "95% done, fast median: keeping up")
	ok, why := sat.Check(fakeRow(1000, 850, 10*time.Microsecond))
	assert.True(t, ok)
	assert.Equal(t, "achieved 85% of the offered rate", why)
	ok, why = sat.Check(fakeRow(1000, 1000, 3*time.Millisecond))
	assert.True(t, ok)
	assert.Equal(t, "median 3 ms > 1 ms", why)
	r := fakeRow(1000, 600, 10*time.Microsecond)
	r.AchievedIsLowerBound = true
	ok, _ = sat.Check(r)
	assert.False(t, ok, "a lower bound on throughput is judged by latency alone")
	r = fakeRow(1000, 1000, time.Microsecond)
	r.Truncated, r.Done = true, 400
	ok, why = sat.Check(r)
	assert.True(t, ok)
	assert.Equal(t, "stopped at its deadline with 400 of 1000 commands done", why)
}

// TestSaturationOfADriverRun: a 2 ms server offered 1,000/s one at a time
// finishes about 500/s, and the rule says so.
func TestSaturationOfADriverRun(t *testing.T) {
	clk := &fakeClock{}
	tg := &fakeTarget{clock: clk, svc: 2 * ms, step: 10 * us}
	run, err := (&Driver{Clock: clk, Alloc: func() (uint64, uint64) { return 0, 0 }}).Run(tg, &countSource{}, Load{Rate: 1000, Commands: 200, Batch: 1})
	require.NoError(t, err)
	row := RowOf("slow", run)
	assert.InDelta(t, 500, row.Achieved, 5)
	DefaultSaturation.Judge(&row)
	assert.True(t, row.Saturated)
	assert.Equal(t, "achieved 50% of the offered rate", row.Note)
}

// capped measures a configuration that finishes at most capacity per
// second, counting its calls.
func capped(capacity float64, calls map[float64]int) func(float64) (Row, error) {
	return func(rate float64) (Row, error) {
		calls[rate]++
		return fakeRow(rate, min(rate, capacity), 5*time.Microsecond), nil
	}
}

func TestSweepStopsEachConfigurationAtItsSaturation(t *testing.T) {
	fast, slow := map[float64]int{}, map[float64]int{}
	var order []float64
	logged := func(m func(float64) (Row, error)) func(float64) (Row, error) {
		return func(rate float64) (Row, error) { order = append(order, rate); return m(rate) }
	}
	rows, err := Sweep([]float64{1000, 2000, 4000, 8000, 16000},
		[]func(float64) (Row, error){logged(capped(5000, fast)), logged(capped(1500, slow))}, DefaultSaturation, 1)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	assert.Equal(t, map[float64]int{1000: 1, 2000: 1, 4000: 1, 8000: 1}, fast, "no rate past the first saturated one")
	assert.Equal(t, map[float64]int{1000: 1, 2000: 1}, slow)
	assert.Equal(t, []float64{1000, 1000, 2000, 2000, 4000, 8000}, order, "interleaved rate by rate")
	require.Len(t, rows[0], 4)
	assert.False(t, rows[0][2].Saturated)
	assert.True(t, rows[0][3].Saturated)
	sustained, peak := Capacity(rows[0])
	assert.Equal(t, 4000.0, sustained)
	assert.Equal(t, 5000.0, peak)
	sustained, peak = Capacity(rows[1])
	assert.Equal(t, 1000.0, sustained)
	assert.Equal(t, 1500.0, peak)
}

func TestSweepNothingKeptUp(t *testing.T) {
	rows, err := Sweep([]float64{1000, 2000}, []func(float64) (Row, error){func(rate float64) (Row, error) {
		return fakeRow(rate, 10, time.Second), nil
	}}, DefaultSaturation, 2)
	require.NoError(t, err)
	require.Len(t, rows[0], 1)
	assert.Equal(t, 2, rows[0][0].Tries)
	assert.Contains(t, rows[0][0].Note, "try 2 of 2")
	sustained, peak := Capacity(rows[0])
	assert.Zero(t, sustained)
	assert.Equal(t, 10.0, peak)
}

// TestSweepRetriesASaturatedRun: a run sunk by noise is tried again, and
// the rate counts as kept up with when the retry keeps up.
func TestSweepRetriesASaturatedRun(t *testing.T) {
	calls := map[float64]int{}
	rows, err := Sweep([]float64{1000, 2000, 4000}, []func(float64) (Row, error){func(rate float64) (Row, error) {
		calls[rate]++
		if rate == 2000 && calls[rate] == 1 {
			return fakeRow(rate, 100, time.Second), nil // a noisy first try
		}
		return fakeRow(rate, min(rate, 3000), 5*time.Microsecond), nil
	}}, DefaultSaturation, 3)
	require.NoError(t, err)
	r := rows[0]
	require.Len(t, r, 3)
	assert.Equal(t, []int{1, 2, 3}, []int{r[0].Tries, r[1].Tries, r[2].Tries})
	assert.False(t, r[1].Saturated)
	assert.Equal(t, "try 2 of 3", r[1].Note)
	assert.True(t, r[2].Saturated, "every try at 4k/s saturates")
	assert.Equal(t, map[float64]int{1000: 1, 2000: 2, 4000: 3}, calls)
	sustained, peak := Capacity(r)
	assert.Equal(t, 2000.0, sustained)
	assert.Equal(t, 3000.0, peak)
}

func TestSweepError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Sweep([]float64{1000}, []func(float64) (Row, error){func(float64) (Row, error) { return Row{}, boom }}, DefaultSaturation, 1)
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "1k/s")
}

func TestRates(t *testing.T) {
	assert.Equal(t, []float64{25_000, 50_000, 100_000, 125_000, 250_000, 500_000, 1_000_000, 2_000_000}, Rates(2_000_000))
}
