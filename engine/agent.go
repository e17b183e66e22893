package engine

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commitcore/commitcore/ringbuf"
)

// Agent is a component's duty cycle: DoWork polls its inputs once, does
// what they ask, and returns how much work it found (0 lets the idle
// strategy back off). An error stops the agent's runner: an agent that
// reads corrupt memory fails safe rather than guess.
type Agent interface {
	DoWork() (int, error)
}

// IdleKind selects how a runner waits when its agents find no work.
type IdleKind uint8

// Idle kinds.
const (
	// IdlePark spins briefly, yields, then parks on the runner's doorbell
	// until a peer publishes: the default, safe when more threads spin than
	// there are cores.
	IdlePark IdleKind = iota
	// IdleYield spins briefly, then yields the processor on every empty
	// duty cycle; it never sleeps.
	IdleYield
	// IdleSpin never gives up the processor: the lowest latency, for
	// isolated cores only.
	IdleSpin
)

// String returns "park", "yield" or "spin".
func (k IdleKind) String() string {
	switch k {
	case IdlePark:
		return "park"
	case IdleYield:
		return "yield"
	case IdleSpin:
		return "spin"
	}
	return fmt.Sprintf("idle(%d)", uint8(k))
}

// ParseIdleKind parses "park", "yield" or "spin".
func ParseIdleKind(s string) (IdleKind, error) {
	for k := IdlePark; k <= IdleSpin; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("idle strategy %q: want park, yield or spin", s)
}

// NewIdleStrategy returns the strategy of kind k. IdlePark parks on bell,
// which every ring the agents read must ring; with a nil bell it yields
// instead of parking.
func NewIdleStrategy(k IdleKind, bell *ringbuf.Doorbell) ringbuf.IdleStrategy {
	switch {
	case k == IdleSpin:
		return ringbuf.BusySpin{}
	case k == IdlePark && bell != nil:
		return &ringbuf.SpinPark{Bell: bell, ParkTimeout: 100 * time.Microsecond}
	}
	return &ringbuf.SpinYield{}
}

// ErrStopped is what Runner.Err reports after a clean Stop.
var ErrStopped = errors.New("engine: runner stopped")

// Runner runs agents round-robin on one locked OS thread, pacing them with
// an idle strategy. One runner may run several agents, which is how several
// components share a core.
type Runner struct {
	agents []Agent
	idle   ringbuf.IdleStrategy
	bell   *ringbuf.Doorbell
	stop   atomic.Bool
	done   chan struct{}
	once   sync.Once
	err    error
}

// Run starts a runner for agents. bell, if not nil, is the doorbell the
// idle strategy parks on; Stop rings it.
func Run(idle ringbuf.IdleStrategy, bell *ringbuf.Doorbell, agents ...Agent) *Runner {
	r := &Runner{agents: agents, idle: idle, bell: bell, done: make(chan struct{})}
	go r.loop()
	return r
}

func (r *Runner) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(r.done)
	for !r.stop.Load() {
		work := 0
		for _, a := range r.agents {
			n, err := a.DoWork()
			if err != nil {
				r.err = err
				return
			}
			work += n
		}
		r.idle.Idle(work)
	}
	r.idle.Reset()
	r.err = ErrStopped
}

// Done is closed when the runner has stopped, by Stop or by an agent's error.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Err returns why the runner stopped: ErrStopped after Stop, the agent's
// error otherwise. Call it after Done is closed.
func (r *Runner) Err() error { return r.err }

// Stop asks the runner to stop, waits for it, and returns the agent error
// that stopped it earlier, if any.
func (r *Runner) Stop() error {
	r.once.Do(func() {
		r.stop.Store(true)
		if r.bell != nil {
			r.bell.Ring()
		}
	})
	<-r.done
	if errors.Is(r.err, ErrStopped) {
		return nil
	}
	return r.err
}
