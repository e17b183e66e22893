package ringbuf

import (
	"fmt"
	"sync/atomic"
	"time"
)

// DoorbellSize is the memory one Doorbell occupies: a whole cache line, so
// ringing it never disturbs a ring's cursors.
const DoorbellSize = CacheLine

// Doorbell wakes a consumer parked waiting for any of its inbound rings.
// It lives in caller-given memory, apart from the rings, so that one agent
// reading several rings parks on a single doorbell that all of them ring.
// In shared memory it works across processes: the futex is not
// process-private.
//
// Layout: a 32-bit sequence word (the futex word) at offset 0 and a 32-bit
// count of armed waiters at offset 4; the rest of the line is unused.
// Zeroed memory is a valid, idle doorbell; every process passes the same
// memory to NewDoorbell.
//
// The protocol never loses a wake-up. A waiter calls Arm (count++ and read
// the sequence), then checks its rings once more, and only if they are
// still empty calls Wait with the sequence Arm returned; then Disarm. A
// producer publishes (an atomic store) and then calls Ring, which reads the
// count and, only when it is not zero, bumps the sequence and wakes. All
// four are sequentially consistent atomics, so either the waiter's last
// check sees the record or the producer sees the count and bumps the
// sequence, in which case Wait returns at once because the word no longer
// holds the armed value. Ring costs one load and no syscall while nobody is
// armed.
type Doorbell struct {
	seq     *atomic.Uint32 // futex word
	waiters *atomic.Uint32
}

// NewDoorbell returns a doorbell over mem, which must hold DoorbellSize
// bytes, 8-byte aligned. It does not write mem, so any number of processes
// may attach to the same memory; fresh memory must be zeroed.
func NewDoorbell(mem []byte) (*Doorbell, error) {
	if err := checkAligned("new doorbell", mem); err != nil {
		return nil, err
	}
	if len(mem) < DoorbellSize {
		return nil, fmt.Errorf("new doorbell: %d bytes of memory, need %d: %w", len(mem), DoorbellSize, ErrMemory)
	}
	return &Doorbell{seq: word32(mem, 0), waiters: word32(mem, 4)}, nil
}

// Ring wakes every waiter armed on the doorbell. With none armed it is a
// single atomic load. Call it after publishing.
func (d *Doorbell) Ring() {
	if d.waiters.Load() == 0 {
		return
	}
	d.seq.Add(1)
	futexWakeAll(d.seq)
}

// Arm registers the caller as a waiter and returns the key to pass to
// Wait. After Arm the caller must check its rings once more before it
// waits, and must call Disarm once it stops waiting.
func (d *Doorbell) Arm() uint32 {
	d.waiters.Add(1)
	return d.seq.Load()
}

// Disarm undoes one Arm. A count already at zero (corrupt memory, or a
// peer's unbalanced Disarm) stays at zero.
func (d *Doorbell) Disarm() {
	for {
		n := d.waiters.Load()
		if n == 0 || d.waiters.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// Wait parks the calling thread until the doorbell is rung after the Arm
// that returned key, or timeout passes, or a spurious wake-up; it returns
// at once if the doorbell was already rung. The caller checks its rings
// either way. Wait blocks the OS thread in futex(2); the Go runtime hands
// its processor to other goroutines meanwhile.
func (d *Doorbell) Wait(key uint32, timeout time.Duration) error {
	if err := futexWaitOn(d.seq, key, timeout); err != nil {
		return fmt.Errorf("doorbell wait: %w", err)
	}
	return nil
}

// Waiters returns the number of armed waiters, for monitoring. A waiter
// that died while armed stays counted; Ring then makes a futex syscall per
// publish, which is slower but still correct.
func (d *Doorbell) Waiters() uint32 { return d.waiters.Load() }
