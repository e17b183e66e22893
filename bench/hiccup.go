package bench

import (
	"math"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Hiccups are the idle system's own pauses: what the scheduler, the Go
// runtime and the machine's other tenants take from a thread that asks
// for nothing but time. Every latency tail is bounded below by them.
type Hiccups struct {
	// Sleep are the hiccups of a goroutine sleeping Interval at a time,
	// measured as jHiccup does (time past the expected wake-up, with
	// coordinated omission corrected at Interval).
	Sleep    *hdrhistogram.Histogram
	Interval time.Duration
	// Spin are the gaps a thread busy-reading the clock saw between two
	// consecutive readings: preemptions and stolen time, at nanosecond
	// resolution.
	Spin *hdrhistogram.Histogram
	// SpinFor is how long the spinning thread ran.
	SpinFor time.Duration
}

// MeasureHiccups samples the idle system: sleep hiccups for sleepFor at
// interval, then a locked thread reading the clock for spinFor (bounded:
// this machine's cores are shared).
func MeasureHiccups(sleepFor, interval, spinFor time.Duration) *Hiccups {
	h := &Hiccups{Sleep: NewHistogram(), Interval: interval, Spin: NewHistogram(), SpinFor: spinFor}
	for end := time.Now().Add(sleepFor); time.Now().Before(end); {
		t0 := time.Now()
		time.Sleep(interval)
		late := time.Since(t0) - interval
		// Out of range only past 100 s.
		_ = h.Sleep.RecordCorrectedValue(max(int64(late), histLowest), int64(interval))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	prev := time.Duration(0)
	for prev < spinFor {
		now := time.Since(start)
		clampRecord(h.Spin, int64(now-prev))
		prev = now
	}
	return h
}

// GCPauses returns the number of stop-the-world GC pauses this process
// has had and an upper bound on the longest (the top of its bucket in
// runtime/metrics' /sched/pauses/total/gc:seconds histogram).
func GCPauses() (count uint64, longest time.Duration) {
	s := []metrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0, 0
	}
	hist := s[0].Value.Float64Histogram()
	for i, c := range hist.Counts {
		if c == 0 {
			continue
		}
		count += c
		top := hist.Buckets[i+1]
		if math.IsInf(top, 1) {
			top = hist.Buckets[i]
		}
		longest = time.Duration(top * float64(time.Second))
	}
	return count, longest
}
