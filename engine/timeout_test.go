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

func TestTimersHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 64
	tm := newTimers(n)
	want := map[int]int64{}
	for range 10_000 {
		slot := rng.IntN(n)
		switch rng.IntN(3) {
		case 0, 1:
			at := rng.Int64N(1000)
			tm.set(slot, at)
			want[slot] = at
		case 2:
			tm.stop(slot)
			delete(want, slot)
		}
		at, slot, ok := tm.next()
		if ok != (len(want) > 0) {
			t.Fatalf("next ok=%v with %d armed", ok, len(want))
		}
		if !ok {
			continue
		}
		for s, w := range want {
			if w < at {
				t.Fatalf("next is slot %d at %d but slot %d is at %d", slot, at, s, w)
			}
		}
		eq(t, "deadline of the returned slot", want[slot], at)
	}
}
