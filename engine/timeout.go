package engine

import (
	"fmt"
	"time"
)

// Default timeouts: the NSE's published phase budgets.
const (
	DefaultPrepareTimeout   = 100 * time.Microsecond
	DefaultPreCommitTimeout = 50 * time.Microsecond
	DefaultAdaptiveFactor   = 4
	DefaultAdaptiveMin      = 10 * time.Microsecond
	DefaultAdaptiveMax      = 10 * time.Millisecond
)

// Timeouts configures the coordinator's per-phase timeouts. The zero value
// means the defaults.
type Timeouts struct {
	// Prepare bounds the wait for every vote; past it the transaction
	// aborts with ReasonTimeout. Default 100 µs.
	Prepare time.Duration
	// PreCommit bounds the wait for PRE-COMMIT acks, and for COMMIT and
	// ABORT acks; past it the coordinator retransmits to the silent
	// participants. It never aborts. Default 50 µs.
	PreCommit time.Duration
	// Adaptive replaces the fixed values with a moving estimate of the
	// observed phase latency times Factor, clamped to [Min, Max]. Until a
	// phase has been observed the fixed value applies.
	Adaptive bool
	Factor   float64       // default 4
	Min      time.Duration // default 10 µs
	Max      time.Duration // default 10 ms
}

func (t Timeouts) withDefaults() (Timeouts, error) {
	if t.Prepare == 0 {
		t.Prepare = DefaultPrepareTimeout
	}
	if t.PreCommit == 0 {
		t.PreCommit = DefaultPreCommitTimeout
	}
	if t.Factor == 0 {
		t.Factor = DefaultAdaptiveFactor
	}
	if t.Min == 0 {
		t.Min = DefaultAdaptiveMin
	}
	if t.Max == 0 {
		t.Max = DefaultAdaptiveMax
	}
	switch {
	case t.Prepare < 0 || t.PreCommit < 0:
		return t, fmt.Errorf("timeouts: negative prepare %v or pre-commit %v", t.Prepare, t.PreCommit)
	case t.Factor < 1 || t.Factor > 1000:
		return t, fmt.Errorf("timeouts: adaptive factor %v outside [1,1000]", t.Factor)
	case t.Min < 0 || t.Max < t.Min:
		return t, fmt.Errorf("timeouts: adaptive bounds [%v,%v] empty or negative", t.Min, t.Max)
	}
	return t, nil
}

// PhaseTimeout is one phase's timeout: fixed, or adaptive over observed
// latencies. The estimate is an exponentially weighted moving average with
// weight 1/8, kept in integer nanoseconds so that it is deterministic.
type PhaseTimeout struct {
	fixed    int64
	adaptive bool
	factor   int64 // ×1/16
	min, max int64
	est      int64 // 0 until the first observation
}

// NewPhaseTimeout returns a timeout of fixed nanoseconds, adaptive if the
// configuration says so.
func NewPhaseTimeout(fixed time.Duration, cfg Timeouts) PhaseTimeout {
	return PhaseTimeout{
		fixed:    int64(fixed),
		adaptive: cfg.Adaptive,
		factor:   int64(cfg.Factor * 16),
		min:      int64(cfg.Min),
		max:      int64(cfg.Max),
	}
}

// Observe feeds one measured phase latency in nanoseconds.
func (p *PhaseTimeout) Observe(d int64) {
	if !p.adaptive || d < 0 {
		return
	}
	if p.est == 0 {
		p.est = max(d, 1)
		return
	}
	p.est += (d - p.est) / 8
	p.est = max(p.est, 1)
}

// Get returns the current timeout in nanoseconds.
func (p *PhaseTimeout) Get() int64 {
	if !p.adaptive || p.est == 0 {
		return p.fixed
	}
	v := p.est
	if v > p.max { // keeps est × factor from overflowing
		v = p.max
	}
	return min(max(v*p.factor/16, p.min), p.max)
}

// timers is an indexed min-heap of deadlines, one per slot of a state
// machine's transaction window: set and stop are O(log n) and nothing is
// allocated after construction.
type timers struct {
	h   []timer
	pos []int32 // slot → index in h, or -1
}

type timer struct {
	at   int64
	slot int32
}

func newTimers(n int) timers {
	t := timers{h: make([]timer, 0, n), pos: make([]int32, n)}
	for i := range t.pos {
		t.pos[i] = -1
	}
	return t
}

// set arms slot's timer for at, replacing any earlier setting.
func (t *timers) set(slot int, at int64) {
	if i := t.pos[slot]; i >= 0 {
		old := t.h[i].at
		t.h[i].at = at
		if at < old {
			t.up(int(i))
		} else {
			t.down(int(i))
		}
		return
	}
	t.h = append(t.h, timer{at: at, slot: int32(slot)})
	t.pos[slot] = int32(len(t.h) - 1)
	t.up(len(t.h) - 1)
}

// stop disarms slot's timer, if any.
func (t *timers) stop(slot int) {
	i := int(t.pos[slot])
	if i < 0 {
		return
	}
	last := len(t.h) - 1
	t.swap(i, last)
	t.h = t.h[:last]
	t.pos[slot] = -1
	if i < last {
		t.down(i)
		t.up(i)
	}
}

// next returns the earliest deadline and its slot.
func (t *timers) next() (at int64, slot int, ok bool) {
	if len(t.h) == 0 {
		return 0, 0, false
	}
	return t.h[0].at, int(t.h[0].slot), true
}

func (t *timers) swap(i, j int) {
	t.h[i], t.h[j] = t.h[j], t.h[i]
	t.pos[t.h[i].slot] = int32(i)
	t.pos[t.h[j].slot] = int32(j)
}

func (t *timers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if t.h[p].at <= t.h[i].at {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *timers) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(t.h) {
			return
		}
		m := l
		if r := l + 1; r < len(t.h) && t.h[r].at < t.h[l].at {
			m = r
		}
		if t.h[i].at <= t.h[m].at {
			return
		}
		t.swap(i, m)
		i = m
	}
}
