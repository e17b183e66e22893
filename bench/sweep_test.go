package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRun is a run at rate that finished done commands per second with
// every latency equal to lat.
func fakeRun(rate, done float64, lat time.Duration) *Run {
	r := &Run{Load: Load{Rate: rate, Commands: int(done)}, Rec: NewRecorder(), Done: int(done), Sent: int(done), Elapsed: time.Second}
	clampRecord(r.Rec.E2E, int64(lat))
	return r
}

func TestSaturationCheck(t *testing.T) {
	sat := Saturation{MinRatio: 0.9, MaxMedian: time.Millisecond}
	ok, _ := sat.Check(fakeRun(1000, 950, 10*time.Microsecond))
	assert.False(t, ok, "95% done, fast median: keeping up")
	ok, why := sat.Check(fakeRun(1000, 850, 10*time.Microsecond))
	assert.True(t, ok)
	assert.Equal(t, "achieved 85% of the offered rate", why)
	ok, why = sat.Check(fakeRun(1000, 1000, 3*time.Millisecond))
	assert.True(t, ok)
	assert.Contains(t, why, "median 3 ms")
	r := fakeRun(1000, 1000, time.Microsecond)
	r.Truncated = true
	ok, why = sat.Check(r)
	assert.True(t, ok)
	assert.Contains(t, why, "deadline")
}

func TestSweepStopsAtSaturation(t *testing.T) {
	const capacity = 5000.0
	var asked []float64
	steps, err := Sweep([]float64{1000, 2000, 4000, 8000, 16000}, func(rate float64) (*Run, error) {
		asked = append(asked, rate)
		return fakeRun(rate, min(rate, capacity), 5*time.Microsecond), nil
	}, DefaultSaturation, 1)
	require.NoError(t, err)
	assert.Equal(t, []float64{1000, 2000, 4000, 8000}, asked, "no rate past the first saturated one")
	require.Len(t, steps, 4)
	assert.False(t, steps[2].Saturated)
	assert.True(t, steps[3].Saturated)
	sustained, peak := Capacity(steps)
	assert.Equal(t, 4000.0, sustained)
	assert.Equal(t, capacity, peak)
}

func TestSweepNothingKeptUp(t *testing.T) {
	steps, err := Sweep([]float64{1000, 2000}, func(rate float64) (*Run, error) {
		return fakeRun(rate, 10, time.Second), nil
	}, DefaultSaturation, 2)
	require.NoError(t, err)
	require.Len(t, steps, 1)
	assert.Equal(t, 2, steps[0].Tries)
	sustained, peak := Capacity(steps)
	assert.Zero(t, sustained)
	assert.Equal(t, 10.0, peak)
}

func TestSweepError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Sweep([]float64{1000}, func(float64) (*Run, error) { return nil, boom }, DefaultSaturation, 1)
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "1k/s")
}

// TestSweepRetriesASaturatedRun: a run sunk by noise is tried again, and
// the rate counts as kept up with when the retry keeps up.
func TestSweepRetriesASaturatedRun(t *testing.T) {
	calls := map[float64]int{}
	steps, err := Sweep([]float64{1000, 2000, 4000}, func(rate float64) (*Run, error) {
		calls[rate]++
		if rate == 2000 && calls[rate] == 1 {
			return fakeRun(rate, 100, time.Second), nil // a noisy first try
		}
		return fakeRun(rate, min(rate, 3000), 5*time.Microsecond), nil
	}, DefaultSaturation, 3)
	require.NoError(t, err)
	require.Len(t, steps, 3)
	assert.Equal(t, []int{1, 2, 3}, []int{steps[0].Tries, steps[1].Tries, steps[2].Tries})
	assert.False(t, steps[1].Saturated)
	assert.True(t, steps[2].Saturated, "every try at 4k/s saturates")
	assert.Equal(t, map[float64]int{1000: 1, 2000: 2, 4000: 3}, calls)
	sustained, peak := Capacity(steps)
	assert.Equal(t, 2000.0, sustained)
	assert.Equal(t, 3000.0, peak)
}

func TestRates(t *testing.T) {
	assert.Equal(t, []float64{25_000, 50_000, 100_000, 125_000, 250_000, 500_000, 1_000_000, 2_000_000}, Rates(2_000_000))
}
