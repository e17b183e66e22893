package accel

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/require"
)

func newTSC(tb testing.TB) *TSCClock {
	tb.Helper()
	c, err := NewTSCClock(0)
	if errors.Is(err, ErrNoTSC) {
		tb.Skip(err)
	}
	require.NoError(tb, err)
	return c
}

// TestTSCClockRate checks the calibration against the monotonic clock: over
// 50 ms the two agree to within 1 %, a bound loose enough for a loaded
// machine and tight enough to catch a wrong scale.
func TestTSCClockRate(t *testing.T) {
	c := newTSC(t)
	m := NewMonotonicClock()
	t0, m0 := c.Now(), m.Now()
	time.Sleep(50 * time.Millisecond)
	t1, m1 := c.Now(), m.Now()
	ratio := float64(t1-t0) / float64(m1-m0)
	t.Logf("tsc %d ns, monotonic %d ns, ratio %.6f, %.4f ns per tick", t1-t0, m1-m0, ratio, c.NanosPerTick())
	require.InDelta(t, 1, ratio, 0.01)
}

// TestTSCClockMonotonicAcrossThreads runs readers on locked OS threads (as
// many as there are CPUs, at least two) that publish every reading to a
// shared high-water mark and check that each reading is at least the mark
// they loaded just before it: a reading that happens after another on any
// thread must not be smaller.
func TestTSCClockMonotonicAcrossThreads(t *testing.T) {
	c := newTSC(t)
	testMonotonic(t, c)
}

// TestMonotonicClockAcrossThreads holds the software clock to the same test.
func TestMonotonicClockAcrossThreads(t *testing.T) {
	testMonotonic(t, NewMonotonicClock())
}

func testMonotonic(t *testing.T, c Clock) {
	var mark atomic.Int64
	var backwards atomic.Int64
	var wg sync.WaitGroup
	n := max(runtime.NumCPU(), 2)
	const reads = 200000
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for i := range reads {
				before := mark.Load()
				now := c.Now()
				if now < before {
					backwards.Add(1)
				}
				for now > before && !mark.CompareAndSwap(before, now) {
					before = mark.Load()
				}
				if i%1024 == 0 {
					runtime.Gosched() // let the threads migrate and interleave
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, backwards.Load(), "readings ran backwards across threads")
}

// BenchmarkClock compares the cost of one reading of each clock in one
// loop: blocks of 256 readings of the monotonic clock and of the TSC clock
// alternate, each block timed, so the load of a shared machine falls on
// both alike; the median block gives each clock's cost per reading (the
// ns-per-read metrics), and ns/op is one block of each. The TSC clock is
// worth keeping only while it is the cheaper.
func BenchmarkClock(b *testing.B) {
	const block = 256
	clocks := []Clock{NewMonotonicClock(), newTSC(b)}
	hs := []*hdrhistogram.Histogram{hdrhistogram.New(1, int64(time.Second), 3), hdrhistogram.New(1, int64(time.Second), 3)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for k := range clocks {
			k = (k + i) % len(clocks) // alternate which goes first
			c := clocks[k]
			t0 := time.Now()
			for range block {
				clockSink += c.Now()
			}
			hs[k].RecordValue(int64(time.Since(t0)))
		}
	}
	mono, tsc := float64(hs[0].ValueAtPercentile(50))/block, float64(hs[1].ValueAtPercentile(50))/block
	b.ReportMetric(mono, "monotonic-ns/read")
	b.ReportMetric(tsc, "tsc-ns/read")
	b.ReportMetric(tsc/mono, "tsc/monotonic")
}

// clockSink keeps BenchmarkClock's readings alive.
var clockSink int64
