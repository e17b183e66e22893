package risk

import (
	"math"
	"math/bits"
)

// bpsDenom is the denominator of values quoted in basis points.
const bpsDenom = 10000

// nanosPerSecond converts a per-second token rate into tokens per
// nanosecond, the unit of Command.Time; bucket levels are kept in
// billionths of a token so that refills stay integral.
const nanosPerSecond = 1_000_000_000

// mul returns a × b for non-negative a and b, and false if it overflows.
func mul(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// add returns a + b, and false if it overflows.
func add(a, b int64) (int64, bool) {
	s := a + b
	if (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0) {
		return 0, false
	}
	return s, true
}

// outsideBand reports whether price lies more than bps basis points from
// ref: |price − ref| × 10000 > ref × bps, computed in 128 bits. price and ref
// are positive.
func outsideBand(price, ref, bps int64) bool {
	d := price - ref
	if d < 0 {
		d = -d
	}
	dh, dl := bits.Mul64(uint64(d), bpsDenom)
	rh, rl := bits.Mul64(uint64(ref), uint64(bps))
	return dh > rh || (dh == rh && dl > rl)
}

// fits reports whether pos can move by q (q ≥ 0) either way without
// overflowing.
func fits(pos, q int64) bool {
	return pos <= math.MaxInt64-q && pos >= math.MinInt64+q
}
