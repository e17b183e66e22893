package bench

import (
	"fmt"
	"time"
)

// Saturation decides when an offered rate is more than the core can take.
type Saturation struct {
	// MinRatio is the smallest share of the offered rate the core must
	// finish: below it the queue grows without bound.
	MinRatio float64
	// MaxMedian is the largest median latency of a rate the core keeps
	// up with: past it the median is queueing, not service.
	MaxMedian time.Duration
}

// DefaultSaturation calls a rate saturated when under 90 % of it gets
// done, or the median latency passes 1 ms, or the run hit its deadline.
var DefaultSaturation = Saturation{MinRatio: 0.9, MaxMedian: time.Millisecond}

// Check reports whether run saturated the core and, if so, why.
func (s Saturation) Check(run *Run) (bool, string) {
	switch {
	case run.Truncated:
		return true, fmt.Sprintf("stopped at its deadline with %d of %d commands done", run.Done, run.Load.Commands)
	case run.Throughput() < s.MinRatio*run.Load.Rate:
		return true, fmt.Sprintf("achieved %.0f%% of the offered rate", 100*run.Throughput()/run.Load.Rate)
	case time.Duration(run.Rec.E2E.ValueAtQuantile(50)) > s.MaxMedian:
		return true, fmt.Sprintf("median %s > %s", FormatNanos(run.Rec.E2E.ValueAtQuantile(50)), FormatNanos(int64(s.MaxMedian)))
	}
	return false, ""
}

// Step is one rate of a sweep.
type Step struct {
	Run       *Run
	Saturated bool
	// Why says what saturated it.
	Why string
	// Tries is how many runs the rate took: more than one when a run
	// saturated and the rate was tried again.
	Tries int
}

// Sweep runs measure at each rate in order and stops after the first
// rate that saturates the core (which it keeps: its throughput is the
// core's capacity). A saturated run is tried again, up to tries runs in
// all, before the rate counts as saturated: on a shared machine one burst
// of another tenant's work can sink a run the core would otherwise keep
// up with. The Step keeps the last run and says how many it took.
func Sweep(rates []float64, measure func(rate float64) (*Run, error), sat Saturation, tries int) ([]Step, error) {
	var steps []Step
	for _, rate := range rates {
		st := Step{}
		for st.Tries < max(tries, 1) {
			run, err := measure(rate)
			if err != nil {
				return steps, fmt.Errorf("sweep at %s/s: %w", FormatRate(rate), err)
			}
			st.Tries++
			st.Run = run
			if st.Saturated, st.Why = sat.Check(run); !st.Saturated {
				break
			}
		}
		steps = append(steps, st)
		if st.Saturated {
			break
		}
	}
	return steps, nil
}

// Capacity sums up a sweep: the highest offered rate the core kept up
// with (0 if none) and the most commands per second it finished at any
// step, which at the saturated step is its capacity.
func Capacity(steps []Step) (sustained, peak float64) {
	for _, s := range steps {
		if !s.Saturated {
			sustained = max(sustained, s.Run.Load.Rate)
		}
		peak = max(peak, s.Run.Throughput())
	}
	return sustained, peak
}

// Rates returns the sweep's offered rates: 25k/s and 50k/s (for a shared
// machine that cannot keep up with more), 100k/s (the design's latency
// target), then exchange-core's 125k/s doubling up to limit.
func Rates(limit float64) []float64 {
	rates := []float64{25_000, 50_000, 100_000}
	for r := 125_000.0; r <= limit; r *= 2 {
		rates = append(rates, r)
	}
	return rates
}
