package matching

import "math/bits"

// level is the FIFO queue of orders at one price: an intrusive doubly
// linked list through the order pool.
type level struct {
	head, tail int32
}

// ladder is one side of a book: a level per tick between the symbol's
// minimum and maximum price, and a two-level bitmap of the non-empty levels
// so that the next level is found in a few word scans however sparse the
// book is.
type ladder struct {
	levels []level
	bits   []uint64 // bit i: levels[i] is not empty
	sum    []uint64 // bit w: bits[w] != 0
}

func newLadder(n int) ladder {
	l := ladder{
		levels: make([]level, n),
		bits:   make([]uint64, (n+63)/64),
	}
	l.sum = make([]uint64, (len(l.bits)+63)/64)
	for i := range l.levels {
		l.levels[i] = level{head: -1, tail: -1}
	}
	return l
}

func (l *ladder) set(i int32) {
	w := i >> 6
	l.bits[w] |= 1 << (uint(i) & 63)
	l.sum[w>>6] |= 1 << (uint(w) & 63)
}

func (l *ladder) clear(i int32) {
	w := i >> 6
	l.bits[w] &^= 1 << (uint(i) & 63)
	if l.bits[w] == 0 {
		l.sum[w>>6] &^= 1 << (uint(w) & 63)
	}
}

// up returns the lowest non-empty level at or above i, or -1.
func (l *ladder) up(i int32) int32 {
	if i < 0 {
		i = 0
	}
	if int(i) >= len(l.levels) {
		return -1
	}
	w := int(i >> 6)
	if m := l.bits[w] & (^uint64(0) << (uint(i) & 63)); m != 0 {
		return int32(w<<6 + bits.TrailingZeros64(m))
	}
	w++
	for s := w >> 6; s < len(l.sum); s++ {
		m := l.sum[s]
		if s == w>>6 {
			m &= ^uint64(0) << (uint(w) & 63)
		}
		if m != 0 {
			ww := s<<6 + bits.TrailingZeros64(m)
			return int32(ww<<6 + bits.TrailingZeros64(l.bits[ww]))
		}
	}
	return -1
}

// down returns the highest non-empty level at or below i, or -1.
func (l *ladder) down(i int32) int32 {
	if i < 0 {
		return -1
	}
	if int(i) >= len(l.levels) {
		i = int32(len(l.levels) - 1)
	}
	w := int(i >> 6)
	if m := l.bits[w] & (^uint64(0) >> (63 - uint(i)&63)); m != 0 {
		return int32(w<<6 + 63 - bits.LeadingZeros64(m))
	}
	w--
	if w < 0 {
		return -1
	}
	for s := w >> 6; s >= 0; s-- {
		m := l.sum[s]
		if s == w>>6 {
			m &= ^uint64(0) >> (63 - uint(w)&63)
		}
		if m != 0 {
			ww := s<<6 + 63 - bits.LeadingZeros64(m)
			return int32(ww<<6 + 63 - bits.LeadingZeros64(l.bits[ww]))
		}
	}
	return -1
}
