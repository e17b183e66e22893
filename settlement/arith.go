package settlement

import (
	"math"
	"math/bits"
)

// bpsDenom is the denominator of fees quoted in basis points.
const bpsDenom = 10000

// mul returns a × b for non-negative a and b, and false if it overflows.
func mul(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// add returns a + b for non-negative a and b, and false if it overflows.
func add(a, b int64) (int64, bool) {
	s := a + b
	return s, s >= a
}

// fee returns floor(notional × bps / 10000) for a non-negative notional and
// 0 ≤ bps ≤ 10000. It cannot overflow: the result is at most notional.
func fee(notional, bps int64) int64 {
	hi, lo := bits.Mul64(uint64(notional), uint64(bps))
	q, _ := bits.Div64(hi, lo, bpsDenom)
	return int64(q)
}

// cost returns what buying qty at price costs with a fee of bps:
// price × qty + fee. ok is false if it overflows.
func cost(price, qty, bps int64) (int64, bool) {
	n, ok := mul(price, qty)
	if !ok {
		return 0, false
	}
	return add(n, fee(n, bps))
}
