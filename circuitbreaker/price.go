package circuitbreaker

import "math/bits"

// bpsDenom is the number of basis points in one (100 %).
const bpsDenom = 10_000

// maxMoveBps caps one symbol's move in the index (±10 000 %), so that the
// index sum cannot overflow whatever prices arrive.
const maxMoveBps = 1_000_000

// bandWidth returns floor(ref × bps / 10 000) for ref > 0 and
// 0 <= bps <= MaxBandBps, exactly: the product is taken in 128 bits.
func bandWidth(ref, bps int64) int64 {
	hi, lo := bits.Mul64(uint64(ref), uint64(bps))
	q, _ := bits.Div64(hi, lo, bpsDenom) // hi < 2^13 < bpsDenom: no overflow
	return int64(q)
}

// inBand reports whether price p lies within width of ref (ref > 0).
// A non-positive price is never in a band.
func inBand(p, ref, width int64) bool {
	if p <= 0 {
		return false
	}
	d := p - ref // both positive: cannot overflow
	if d < 0 {
		d = -d
	}
	return d <= width
}

// moveBps returns (last - open) × 10 000 / open truncated toward zero and
// clamped to ±maxMoveBps, for last > 0 and open > 0.
func moveBps(last, open int64) int64 {
	d := last - open
	neg := d < 0
	if neg {
		d = -d
	}
	var m int64
	if d/open >= maxMoveBps/bpsDenom {
		m = maxMoveBps
	} else {
		hi, lo := bits.Mul64(uint64(d), bpsDenom)
		q, _ := bits.Div64(hi, lo, uint64(open)) // quotient < maxMoveBps: hi < open
		m = int64(q)
	}
	if neg {
		return -m
	}
	return m
}
