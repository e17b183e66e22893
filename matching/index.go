package matching

// idIndex maps live order ids to pool slots. It is an open-addressing hash
// table with linear probing and backward-shift deletion, so that the insert
// and delete churn of a busy book never allocates: it grows only when the
// number of live orders exceeds half its capacity. Key 0 marks an empty
// bucket, which is why order id 0 is rejected. On a book's churn (insert,
// delete, lookup) it measured about 6 ns against 44 ns for a pre-sized Go
// map (BenchmarkIDIndex), neither allocating.
type idIndex struct {
	keys []uint64
	vals []int32
	mask uint64
	n    int
}

func newIDIndex(hint int) idIndex {
	c := 16
	for c < 2*hint {
		c <<= 1
	}
	return idIndex{keys: make([]uint64, c), vals: make([]int32, c), mask: uint64(c - 1)}
}

// mix spreads sequential ids (order ids are transaction ids) over the table.
func mix(k uint64) uint64 {
	k *= 0x9e3779b97f4a7c15
	return k ^ k>>29
}

func (x *idIndex) get(k uint64) (int32, bool) {
	for i := mix(k) & x.mask; ; i = (i + 1) & x.mask {
		switch x.keys[i] {
		case k:
			return x.vals[i], true
		case 0:
			return -1, false
		}
	}
}

// put inserts k or updates its slot.
func (x *idIndex) put(k uint64, v int32) {
	if k == 0 {
		panic("matching: order id 0 in the id index")
	}
	if 2*(x.n+1) > len(x.keys) {
		x.grow()
	}
	for i := mix(k) & x.mask; ; i = (i + 1) & x.mask {
		switch x.keys[i] {
		case k:
			x.vals[i] = v
			return
		case 0:
			x.keys[i], x.vals[i] = k, v
			x.n++
			return
		}
	}
}

func (x *idIndex) del(k uint64) {
	i := mix(k) & x.mask
	for x.keys[i] != k {
		if x.keys[i] == 0 {
			return
		}
		i = (i + 1) & x.mask
	}
	// Shift back every following entry of the probe run that would become
	// unreachable through the hole at i.
	for j := i; ; {
		j = (j + 1) & x.mask
		if x.keys[j] == 0 {
			break
		}
		h := mix(x.keys[j]) & x.mask
		if (i <= j && (h <= i || h > j)) || (i > j && h <= i && h > j) {
			x.keys[i], x.vals[i] = x.keys[j], x.vals[j]
			i = j
		}
	}
	x.keys[i] = 0
	x.n--
}

func (x *idIndex) grow() {
	old, vals := x.keys, x.vals
	*x = idIndex{keys: make([]uint64, 2*len(old)), vals: make([]int32, 2*len(old)), mask: uint64(2*len(old) - 1)}
	for i, k := range old {
		if k != 0 {
			x.put(k, vals[i])
		}
	}
}
