// Package pingpong is the cache-line ping-pong floor that the ring and
// shared-memory round-trip benchmarks measure themselves against. It lives
// apart so that each benchmark binary runs the very same peer in the same
// run, and it imports nothing of commitcore, so ringbuf's own tests can use
// it.
package pingpong

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Idler is how a side waits between polls: a bounded spin that then
// yields (ringbuf.SpinYield), so that the benchmark cannot livelock two
// shared cores.
type Idler interface {
	Idle(work int)
	Reset()
}

// word is one atomic word alone on its cache line.
type word struct {
	_ [64]byte
	v atomic.Uint64
	_ [56]byte
}

// Floor bounces one padded atomic word n times between the calling
// goroutine and a second one, both locked to OS threads: odd values one
// way, even values back, the least any cross-core round trip can cost.
// Each side idles with its own Idler from newIdle. Every every-th round
// trip is timed and handed to record, in nanoseconds.
func Floor(n uint64, newIdle func() Idler, every uint64, record func(ns int64)) {
	var w word
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		idle := newIdle()
		for i := range n {
			for w.v.Load() != 2*i+1 {
				idle.Idle(0)
			}
			idle.Reset()
			w.v.Store(2*i + 2)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	idle := newIdle()
	for i := range n {
		var start time.Time
		if i%every == 0 {
			start = time.Now()
		}
		w.v.Store(2*i + 1)
		for w.v.Load() != 2*i+2 {
			idle.Idle(0)
		}
		idle.Reset()
		if i%every == 0 {
			record(time.Since(start).Nanoseconds())
		}
	}
	wg.Wait()
}
