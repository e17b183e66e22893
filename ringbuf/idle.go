package ringbuf

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// IdleStrategy paces an agent's duty cycle: the agent does a unit of work
// (polls its rings), then calls Idle with how much work it did. Idle
// returns at once after work and backs off while there is none. Reset
// returns the strategy to its eager state (for instance before the agent
// sleeps on something else). Implementations are not safe for concurrent
// use: one per agent.
type IdleStrategy interface {
	Idle(workCount int)
	Reset()
}

// Defaults for the zero values of SpinYield and SpinPark fields.
const (
	DefaultSpins       = 100
	DefaultYields      = 20
	DefaultParkTimeout = time.Millisecond
)

// BusySpin never gives up the CPU: the lowest latency and a whole core
// burnt. Use it only on isolated cores with one spinning thread each; on
// shared cores (this project's 2-core default) a busy-spinning agent
// steals time from the peer it waits for. Go's asynchronous preemption
// still lets other goroutines run every 10ms, so it cannot deadlock a
// process, only slow it down.
type BusySpin struct{}

// Idle does nothing: the caller polls again at once.
func (BusySpin) Idle(int) {}

// Reset does nothing: BusySpin has no state.
func (BusySpin) Reset() {}

// SpinYield spins for Spins idle calls, then yields the processor on each
// idle call: runtime.Gosched for goroutines of this process and
// sched_yield(2) for threads of other processes. It bounds spinning but
// still polls continuously; prefer SpinPark when peers share cores.
type SpinYield struct {
	Spins int // idle calls that spin before yielding; 0 means DefaultSpins

	n int
}

// Idle spins or yields after an empty duty cycle, and resets after work.
func (s *SpinYield) Idle(workCount int) {
	if workCount > 0 {
		s.n = 0
		return
	}
	s.n++
	if s.n > orDefault(s.Spins, DefaultSpins) {
		yield()
	}
}

// Reset returns to spinning.
func (s *SpinYield) Reset() { s.n = 0 }

// SpinPark spins for Spins idle calls, yields for Yields more, then parks
// the thread on Bell until a producer rings it or ParkTimeout passes. Give
// each ring the agent reads this Bell (SPSC.SetDoorbell,
// MPSC.SetDoorbell), so a publish wakes it. Parking takes two idle calls:
// the first arms the doorbell and returns so that the caller's next duty
// cycle re-checks the rings, the second waits. That re-check is what makes
// a racing publish impossible to miss (see Doorbell), so call Idle after
// every duty cycle. The timeout bounds the cost of a wake-up missed for
// other reasons, such as a peer writing the ring without ringing.
type SpinPark struct {
	Bell        *Doorbell     // required
	Spins       int           // 0 means DefaultSpins
	Yields      int           // 0 means DefaultYields
	ParkTimeout time.Duration // 0 means DefaultParkTimeout

	n     int
	armed bool
	key   uint32
}

// Idle spins, yields, arms or parks after an empty duty cycle, and resets
// after work.
func (s *SpinPark) Idle(workCount int) {
	if workCount > 0 {
		s.Reset()
		return
	}
	if s.Bell == nil {
		panic("ringbuf: SpinPark.Idle: Bell is nil; give SpinPark the doorbell its rings ring")
	}
	s.n++
	switch spins := orDefault(s.Spins, DefaultSpins); {
	case s.n <= spins:
	case s.n <= spins+orDefault(s.Yields, DefaultYields):
		yield()
	case !s.armed:
		s.key = s.Bell.Arm()
		s.armed = true
	default:
		timeout := s.ParkTimeout
		if timeout <= 0 {
			timeout = DefaultParkTimeout
		}
		if err := s.Bell.Wait(s.key, timeout); err != nil {
			panic(fmt.Sprintf("ringbuf: SpinPark.Idle: %v", err)) // futex(2) refused a valid word: a broken invariant
		}
		s.Bell.Disarm()
		s.armed = false
	}
}

// Reset disarms the doorbell if armed and returns to spinning.
func (s *SpinPark) Reset() {
	if s.armed {
		s.Bell.Disarm()
		s.armed = false
	}
	s.n = 0
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// yield lets other goroutines of this process run, then other threads of
// the machine.
func yield() {
	runtime.Gosched()
	unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
}
