package engine

import "time"

// Clock is the runtime's time source: nanoseconds on a monotonic scale,
// used for the protocol's timers and the per-phase latencies. The accel
// package provides hardware-style implementations; the default is
// MonotonicClock.
type Clock interface {
	Now() int64
}

// MonotonicClock reads Go's monotonic clock as nanoseconds since the clock
// was made. Two MonotonicClocks do not share an origin, so its readings are
// compared only within one process.
type MonotonicClock struct{ base time.Time }

// NewMonotonicClock returns a clock whose origin is now.
func NewMonotonicClock() *MonotonicClock { return &MonotonicClock{base: time.Now()} }

// Now returns the nanoseconds since the clock was made.
func (c *MonotonicClock) Now() int64 { return int64(time.Since(c.base)) }
