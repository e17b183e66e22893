package matching

import (
	"math/rand/v2"
	"testing"
)

// TestLadderSearch compares up and down with a linear scan on sparse and
// dense random bitmaps, including searches that cross summary words.
func TestLadderSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 63, 64, 65, 4096, 4097, 70_000} {
		l := newLadder(n)
		set := make([]bool, n)
		for _, inserts := range []int{n, n / 64, 3} {
			for i := range inserts {
				lv := int32(rng.IntN(n))
				if i%3 == 0 && set[lv] {
					l.clear(lv)
					set[lv] = false
				} else if i%3 != 0 {
					l.set(lv)
					set[lv] = true
				}
			}
			for range 500 {
				i := int32(rng.IntN(n+2)) - 1
				up, down := int32(-1), int32(-1)
				for j := max(i, 0); int(j) < n; j++ {
					if set[j] {
						up = j
						break
					}
				}
				for j := min(i, int32(n-1)); j >= 0; j-- {
					if set[j] {
						down = j
						break
					}
				}
				if l.up(i) != up || l.down(i) != down {
					t.Fatalf("n=%d i=%d: up %d down %d, want %d %d", n, i, l.up(i), l.down(i), up, down)
				}
			}
			for i := range set { // start the next, sparser round empty
				if set[i] {
					l.clear(int32(i))
					set[i] = false
				}
			}
		}
	}
}

// TestIDIndex runs random inserts, updates and deletes on the index and a
// Go map side by side; sequential keys with a small table force long probe
// runs and wrap-around, which backward-shift deletion must keep reachable.
func TestIDIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := newIDIndex(4)
	want := map[uint64]int32{}
	for i := range 200_000 {
		k := uint64(1 + rng.IntN(3000))
		switch rng.IntN(3) {
		case 0, 1:
			x.put(k, int32(i))
			want[k] = int32(i)
		default:
			x.del(k)
			delete(want, k)
		}
		if i%1000 == 0 {
			if x.n != len(want) {
				t.Fatalf("%d entries, want %d", x.n, len(want))
			}
			for k, v := range want {
				if got, ok := x.get(k); !ok || got != v {
					t.Fatalf("key %d: %d %v, want %d", k, got, ok, v)
				}
			}
		}
		if _, ok := x.get(k + 5000); ok {
			t.Fatalf("key %d found, never inserted", k+5000)
		}
	}
}

// BenchmarkIDIndex measures the churn a book puts on its id index (insert
// a new id, delete an old one, look one up, about 1,000 live) on the
// open-addressing table and, as its peer, on a pre-sized Go map.
func BenchmarkIDIndex(b *testing.B) {
	const live = 1024
	b.Run("open-addressing", func(b *testing.B) {
		x := newIDIndex(1 << 14)
		for k := uint64(1); k <= live; k++ {
			x.put(k, int32(k))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := uint64(i) + live + 1
			x.put(k, int32(i))
			x.del(k - live)
			if _, ok := x.get(k - live/2); !ok {
				b.Fatal("lost a key")
			}
		}
	})
	b.Run("go-map", func(b *testing.B) {
		x := make(map[uint64]int32, 1<<14)
		for k := uint64(1); k <= live; k++ {
			x[k] = int32(k)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := uint64(i) + live + 1
			x[k] = int32(i)
			delete(x, k-live)
			if _, ok := x[k-live/2]; !ok {
				b.Fatal("lost a key")
			}
		}
	})
}
