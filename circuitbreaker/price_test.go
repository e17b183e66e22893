package circuitbreaker

import (
	"math"
	"math/big"
	"testing"
)

// bigMove is moveBps computed with big integers.
func bigMove(last, open int64) int64 {
	d := new(big.Int).Sub(big.NewInt(last), big.NewInt(open))
	d.Mul(d, big.NewInt(bpsDenom))
	d.Quo(d, big.NewInt(open)) // truncates toward zero
	if d.Cmp(big.NewInt(maxMoveBps)) > 0 {
		return maxMoveBps
	}
	if d.Cmp(big.NewInt(-maxMoveBps)) < 0 {
		return -maxMoveBps
	}
	return d.Int64()
}

// bigWidth is bandWidth computed with big integers.
func bigWidth(ref, bps int64) int64 {
	w := new(big.Int).Mul(big.NewInt(ref), big.NewInt(bps))
	return w.Quo(w, big.NewInt(bpsDenom)).Int64()
}

func TestPriceMath(t *testing.T) {
	tests := []struct {
		last, open, move int64
	}{
		{1100, 1000, 1000},
		{900, 1000, -1000},
		{1000, 1000, 0},
		{1, 3, -6666},
		{5, 3, 6666},
		{math.MaxInt64, 1, maxMoveBps},
		{1, math.MaxInt64, -9999},
		{math.MaxInt64, math.MaxInt64 - 1, 0},
		{101, 1, maxMoveBps},
		{100, 1, 990_000},
	}
	for _, tt := range tests {
		check.Equal(t, tt.move, moveBps(tt.last, tt.open), "moveBps(%d, %d)", tt.last, tt.open)
		check.Equal(t, bigMove(tt.last, tt.open), moveBps(tt.last, tt.open), "moveBps(%d, %d) vs big", tt.last, tt.open)
	}
	check.Equal(t, int64(math.MaxInt64), bandWidth(math.MaxInt64, MaxBandBps))
	check.Equal(t, int64(922337203685477580), bandWidth(math.MaxInt64, 1000))
	check.Equal(t, int64(0), bandWidth(9999, 1))
	check.Equal(t, int64(1), bandWidth(10000, 1))
}

func FuzzPriceMath(f *testing.F) {
	f.Add(int64(1100), int64(1000), int64(1000))
	f.Add(int64(math.MaxInt64), int64(1), int64(MaxBandBps))
	f.Fuzz(func(t *testing.T, a, b, bps int64) {
		if a <= 0 || b <= 0 {
			return
		}
		if got, want := moveBps(a, b), bigMove(a, b); got != want {
			t.Fatalf("moveBps(%d, %d) = %d, want %d", a, b, got, want)
		}
		bps = min(max(bps, 0), MaxBandBps)
		w := bandWidth(b, bps)
		if want := bigWidth(b, bps); w != want {
			t.Fatalf("bandWidth(%d, %d) = %d, want %d", b, bps, w, want)
		}
		// inBand agrees with the exact rule |a-b| × 10 000 <= b × bps.
		lhs := new(big.Int).Sub(big.NewInt(a), big.NewInt(b))
		lhs.Abs(lhs).Mul(lhs, big.NewInt(bpsDenom))
		rhs := new(big.Int).Mul(big.NewInt(b), big.NewInt(bps))
		if got, want := inBand(a, b, w), lhs.Cmp(rhs) <= 0; got != want {
			t.Fatalf("inBand(%d, ref %d, %d bps) = %v, want %v", a, b, bps, got, want)
		}
	})
}
