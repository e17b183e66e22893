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

// timers holds at most one deadline per slot of a state machine's
// transaction window and finds the earliest. A deadline goes into the queue
// of its class, the kind of timer the caller sets: within a class each
// deadline is now plus a timeout that changes slowly, so deadlines arrive in
// order and an append keeps the queue sorted. One that arrives earlier than
// its queue's tail goes into a heap instead. Stopping or re-arming a slot
// only bumps its generation; the entry left behind is skipped when it
// reaches a head, or dropped when a full queue or heap is compacted. So set,
// stop and next are O(1) on the protocol's common paths, where a heap alone
// pays O(log n) for each, and O(log n) at worst. Nothing is allocated after
// construction.
//
// A stale entry lives no longer than the live deadlines ahead of it, far
// too short for a slot's 32-bit generation to wrap back to it.
type timers struct {
	gen  []uint32   // slot → generation of its one live entry
	q    []timerRun // one per class
	late timerRun   // a min-heap in e[head:], head always 0
	n    int        // entries, live or stale, in q and late: next is cheap at 0
}

type timer struct {
	at   int64
	slot int32
	gen  uint32
}

// timerRun is a sorted run e[head:] of entries. Its capacity, twice the
// slots, holds every slot's live entry with as many stale ones, so a
// compaction frees at least half of it.
type timerRun struct {
	e    []timer
	head int
}

func newTimers(slots, classes int) timers {
	t := timers{gen: make([]uint32, slots), q: make([]timerRun, classes)}
	for i := range t.q {
		t.q[i].e = make([]timer, 0, 2*slots)
	}
	t.late.e = make([]timer, 0, 2*slots)
	return t
}

// set arms slot's timer for at, in class's queue, replacing any earlier
// setting in any class.
func (t *timers) set(slot, class int, at int64) {
	t.gen[slot]++
	e := timer{at: at, slot: int32(slot), gen: t.gen[slot]}
	t.n++
	q := &t.q[class]
	if n := len(q.e); n > q.head && q.e[n-1].at > at {
		t.push(e)
		return
	}
	if len(q.e) == cap(q.e) {
		t.compact(q)
	}
	q.e = append(q.e, e)
}

// stop disarms slot's timer, if any.
func (t *timers) stop(slot int) { t.gen[slot]++ }

// next returns the earliest deadline and its slot.
func (t *timers) next() (at int64, slot int, ok bool) {
	if t.n == 0 {
		return 0, 0, false
	}
	for i := range t.q {
		q := &t.q[i]
		for q.head < len(q.e) && !t.live(q.e[q.head]) {
			q.head++
			t.n--
		}
		if q.head == len(q.e) {
			q.e, q.head = q.e[:0], 0
			continue
		}
		if h := q.e[q.head]; !ok || h.at < at {
			at, slot, ok = h.at, int(h.slot), true
		}
	}
	h := &t.late
	for len(h.e) > 0 && !t.live(h.e[0]) {
		last := len(h.e) - 1
		h.e[0] = h.e[last]
		h.e = h.e[:last]
		t.n--
		t.down(0)
	}
	if len(h.e) > 0 && (!ok || h.e[0].at < at) {
		at, slot, ok = h.e[0].at, int(h.e[0].slot), true
	}
	return at, slot, ok
}

func (t *timers) live(e timer) bool { return e.gen == t.gen[e.slot] }

// compact drops r's stale entries and moves the rest to the front, in
// order.
func (t *timers) compact(r *timerRun) {
	n := 0
	for _, e := range r.e[r.head:] {
		if t.live(e) {
			r.e[n] = e
			n++
		}
	}
	if n > len(t.gen) {
		panic(fmt.Sprintf("engine: %d live timers for %d slots", n, len(t.gen)))
	}
	t.n -= len(r.e) - r.head - n
	r.e, r.head = r.e[:n], 0
}

// push adds e to the heap of late entries.
func (t *timers) push(e timer) {
	h := &t.late
	if len(h.e) == cap(h.e) {
		t.compact(h)
		for i := len(h.e)/2 - 1; i >= 0; i-- {
			t.down(i)
		}
	}
	h.e = append(h.e, e)
	for i := len(h.e) - 1; i > 0; {
		p := (i - 1) / 2
		if h.e[p].at <= h.e[i].at {
			break
		}
		h.e[p], h.e[i] = h.e[i], h.e[p]
		i = p
	}
}

// down restores the heap of late entries below i.
func (t *timers) down(i int) {
	h := t.late.e
	for {
		m := 2*i + 1
		if m >= len(h) {
			return
		}
		if r := m + 1; r < len(h) && h[r].at < h[m].at {
			m = r
		}
		if h[i].at <= h[m].at {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
