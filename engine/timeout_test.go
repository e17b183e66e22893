package engine

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPhaseTimeout(t *testing.T) {
	cfg, err := Timeouts{}.withDefaults()
	must(t, err)
	eq(t, "default prepare", DefaultPrepareTimeout, cfg.Prepare)
	eq(t, "default pre-commit", DefaultPreCommitTimeout, cfg.PreCommit)

	fixed := NewPhaseTimeout(cfg.Prepare, cfg)
	fixed.Observe(1)
	eq(t, "fixed ignores observations", int64(DefaultPrepareTimeout), fixed.Get())

	cfg.Adaptive = true
	cases := []struct {
		name    string
		observe []int64
		want    int64
	}{
		{"no observation: the fixed value", nil, int64(100 * time.Microsecond)},
		{"first observation × factor", []int64{5_000}, 20_000},
		{"clamped to min", []int64{100}, int64(DefaultAdaptiveMin)},
		{"clamped to max", []int64{int64(time.Second)}, int64(DefaultAdaptiveMax)},
		{"moving average", []int64{8_000, 16_000}, (8_000 + 1_000) * 4},
		{"negative ignored", []int64{5_000, -3}, 20_000},
	}
	for _, c := range cases {
		p := NewPhaseTimeout(cfg.Prepare, cfg)
		for _, d := range c.observe {
			p.Observe(d)
		}
		eq(t, c.name, c.want, p.Get())
	}
	for _, bad := range []Timeouts{
		{Prepare: -1},
		{Factor: 0.5},
		{Min: 10, Max: 5},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestTimers drives timers against a map of armed deadlines: deadlines in
// order per class, with jitter that sends some to the heap, stops, and a
// clock that fires what is due. It runs long enough to compact every queue
// and the heap many times, and checks that nothing grew.
func TestTimers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, classes = 64, 3
	tm := newTimers(n, classes)
	want := map[int]int64{}
	var now int64
	var compactions, heapCompactions int
	set := func(slot, c int, at int64) {
		if q := &tm.q[c]; len(q.e) == cap(q.e) {
			compactions++
		}
		if len(tm.late.e) == cap(tm.late.e) {
			heapCompactions++
		}
		tm.set(slot, c, at)
		want[slot] = at
	}
	check := func() {
		t.Helper()
		at, slot, ok := tm.next()
		size := len(tm.late.e)
		for _, q := range tm.q {
			size += len(q.e) - q.head
		}
		eq(t, "entries counted", size, tm.n)
		if ok != (len(want) > 0) {
			t.Fatalf("next ok=%v with %d armed", ok, len(want))
		}
		if !ok {
			return
		}
		for s, w := range want {
			if w < at {
				t.Fatalf("next is slot %d at %d but slot %d is at %d", slot, at, s, w)
			}
		}
		eq(t, "deadline of the returned slot", want[slot], at)
	}
	for range 200_000 {
		slot := rng.IntN(n)
		switch rng.IntN(8) {
		case 0, 1, 2, 3:
			c := rng.IntN(classes)
			set(slot, c, now+int64(1000*(c+1))+rng.Int64N(8)) // jitter: some late
		case 4:
			set(slot, rng.IntN(classes), now+rng.Int64N(3000))
		case 5:
			tm.stop(slot)
			delete(want, slot)
		case 6, 7:
			now += rng.Int64N(20)
			for {
				at, s, ok := tm.next()
				if !ok || at > now {
					break
				}
				eq(t, "fired slot's deadline", want[s], at)
				if rng.IntN(2) == 0 {
					tm.stop(s)
					delete(want, s)
				} else {
					set(s, rng.IntN(classes), now+50)
				}
			}
		}
		check()
	}
	if compactions == 0 || heapCompactions == 0 {
		t.Fatalf("compacted queues %d times and the heap %d: the test misses a path", compactions, heapCompactions)
	}
	for i := range tm.q {
		eq(t, "queue capacity", 2*n, cap(tm.q[i].e))
	}
	eq(t, "heap capacity", 2*n, cap(tm.late.e))
}
