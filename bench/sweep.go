package bench

import (
	"fmt"
	"strings"
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

// Check reports whether the run summarised by r saturated the core and,
// if so, why. A row whose Achieved is only a lower bound is judged by its
// deadline and median alone.
func (s Saturation) Check(r Row) (bool, string) {
	switch {
	case r.Truncated:
		return true, fmt.Sprintf("stopped at its deadline with %d of %d commands done", r.Done, r.Commands)
	case r.Achieved < s.MinRatio*r.Rate && !r.AchievedIsLowerBound:
		return true, fmt.Sprintf("achieved %.0f%% of the offered rate", 100*r.Achieved/r.Rate)
	case time.Duration(r.E2E.P50) > s.MaxMedian:
		return true, fmt.Sprintf("median %s > %s", FormatNanos(r.E2E.P50), FormatNanos(int64(s.MaxMedian)))
	}
	return false, ""
}

// Judge sets r's Saturated and Note by sat.
func (s Saturation) Judge(r *Row) {
	r.Saturated, r.Note = s.Check(*r)
}

// Sweep measures configurations at each rate in order, interleaved (at
// every rate each configuration still going runs in turn, so that the
// machine's drift hits them alike), and drops a configuration after the
// first rate that saturates it; that row stays, since its throughput is
// the configuration's capacity. A saturated run is tried again, up to
// tries runs in all, before the rate counts as saturated: on a shared
// machine one burst of another tenant's work can sink a run the core
// would otherwise keep up with. The row kept is the last run's, its Tries
// set and its Note saying so. Sweep returns one row slice per measure.
func Sweep(rates []float64, measures []func(rate float64) (Row, error), sat Saturation, tries int) ([][]Row, error) {
	tries = max(tries, 1)
	out := make([][]Row, len(measures))
	going := make([]bool, len(measures))
	for i := range going {
		going[i] = true
	}
	for _, rate := range rates {
		for i, measure := range measures {
			if !going[i] {
				continue
			}
			var row Row
			for t := 1; t <= tries; t++ {
				var err error
				if row, err = measure(rate); err != nil {
					return out, fmt.Errorf("sweep at %s/s: %w", FormatRate(rate), err)
				}
				row.Tries = t
				sat.Judge(&row)
				if t > 1 {
					row.Note = strings.TrimPrefix(row.Note+fmt.Sprintf("; try %d of %d", t, tries), "; ")
				}
				if !row.Saturated {
					break
				}
			}
			out[i] = append(out[i], row)
			going[i] = !row.Saturated
		}
	}
	return out, nil
}

// Capacity sums up one configuration's sweep: the highest offered rate it
// kept up with (0 if none) and the most commands per second it finished
// at any rate, which at the saturated rate is its capacity.
func Capacity(rows []Row) (sustained, peak float64) {
	for _, r := range rows {
		if !r.Saturated {
			sustained = max(sustained, r.Rate)
		}
		peak = max(peak, r.Achieved)
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
