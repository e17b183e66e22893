package accel

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strings"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// Clock is a precise timestamp source for latency accounting and the
// protocol's timers: nanoseconds on a monotonic scale whose origin belongs
// to the clock, so readings compare only within one process. It is
// engine.Clock, so any Clock goes straight into engine.Config.Clock; a
// hardware timestamp source (a NIC's PTP clock, an FPGA counter)
// implements Now and nothing else changes.
type Clock interface {
	engine.Clock
}

// NewMonotonicClock returns the software default: Go's monotonic clock
// (clock_gettime through the vDSO).
func NewMonotonicClock() Clock { return engine.NewMonotonicClock() }

// ErrNoTSC means the time-stamp counter cannot serve as a clock here: the
// processor lacks RDTSCP or an invariant TSC, or the kernel has stopped
// trusting the TSC as a clock source.
var ErrNoTSC = errors.New("accel: no usable invariant TSC")

// clocksources lists the clock sources the kernel still trusts; it drops
// "tsc" from the list when it finds the counters of two cores apart.
const clocksources = "/sys/devices/system/clocksource/clocksource0/available_clocksource"

// TSCClock reads the processor's invariant time-stamp counter with RDTSCP
// and scales it to nanoseconds with a factor calibrated against the
// monotonic clock. It is cheaper to read than the monotonic clock (see
// BenchmarkClock) and, on an invariant TSC that the kernel trusts, the
// counters of all cores agree, so readings taken on different threads
// never run backwards (see TestTSCClockMonotonicAcrossThreads). Its rate
// differs from the monotonic clock's by the calibration error, a few parts
// per million: fine for timers and latencies, not for wall time.
type TSCClock struct {
	origin uint64 // counter value at Now() == 0
	mult   uint64 // nanoseconds per tick, as a 32.32 fixed-point number
}

// NewTSCClock calibrates a TSCClock over window (10 ms if zero or less)
// and returns it, or ErrNoTSC when the counter is not usable here.
func NewTSCClock(window time.Duration) (*TSCClock, error) {
	if !tscUsable() {
		return nil, fmt.Errorf("new tsc clock: %w: the processor lacks RDTSCP or an invariant TSC", ErrNoTSC)
	}
	b, err := os.ReadFile(clocksources)
	if err != nil {
		return nil, fmt.Errorf("new tsc clock: %w", err)
	}
	if !strings.Contains(" "+strings.TrimSpace(string(b))+" ", " tsc ") {
		return nil, fmt.Errorf("new tsc clock: %w: the kernel lists clock sources %q", ErrNoTSC, strings.TrimSpace(string(b)))
	}
	if window <= 0 {
		window = 10 * time.Millisecond
	}
	base := time.Now()
	m0, t0 := pairAt(base)
	time.Sleep(window)
	m1, t1 := pairAt(base)
	if t1 <= t0 || m1 <= m0 {
		return nil, fmt.Errorf("new tsc clock: %w: counter went from %d to %d over %v", ErrNoTSC, t0, t1, time.Duration(m1-m0))
	}
	// mult = (m1-m0) << 32 / (t1-t0); the high word is below the divisor
	// for any rate above one tick per 2^32 ns.
	dm, dt := uint64(m1-m0), t1-t0
	if dm>>32 >= dt {
		return nil, fmt.Errorf("new tsc clock: %w: %d ticks in %v", ErrNoTSC, dt, time.Duration(dm))
	}
	mult, _ := bits.Div64(dm>>32, dm<<32, dt)
	// Put the origin where the monotonic reading m0 would put it, so a
	// TSCClock and the calibration agree at t0.
	origin := t0 - uint64(float64(m0)*float64(dt)/float64(dm))
	return &TSCClock{origin: origin, mult: mult}, nil
}

// pairAt reads the monotonic clock (as nanoseconds since base) and the
// counter together, keeping the tightest of a few brackets of counter
// readings around the clock read.
func pairAt(base time.Time) (mono int64, tsc uint64) {
	best := ^uint64(0)
	for range 16 {
		a := rdtscp()
		m := int64(time.Since(base))
		b := rdtscp()
		if b-a < best {
			best, mono, tsc = b-a, m, a+(b-a)/2
		}
	}
	return mono, tsc
}

// Now returns nanoseconds since the clock's origin. A counter reading
// below the origin (a core whose counter lags the calibrating core's by
// a few ticks, right at the start) reads as 0.
func (c *TSCClock) Now() int64 {
	t := rdtscp()
	if t < c.origin {
		return 0
	}
	hi, lo := bits.Mul64(t-c.origin, c.mult)
	return int64(hi<<32 | lo>>32)
}

// NanosPerTick returns the calibrated length of one counter tick.
func (c *TSCClock) NanosPerTick() float64 { return float64(c.mult) / (1 << 32) }

// NewFastestClock returns a calibrated TSCClock where the counter is
// usable and the monotonic clock otherwise, with the reason it fell back.
func NewFastestClock() (Clock, error) {
	c, err := NewTSCClock(0)
	if err != nil {
		return NewMonotonicClock(), err
	}
	return c, nil
}
