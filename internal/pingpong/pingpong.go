// Package pingpong holds what the round-trip benchmarks of ringbuf, shm
// and accel share: the cache-line ping-pong floor they measure themselves
// against (each benchmark binary runs the very same peer in the same run)
// and their percentile reporting. It imports nothing of commitcore, so
// ringbuf's own tests can use it.
package pingpong

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
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

// SampleEvery is how often the round-trip benchmarks time a round trip for
// their percentiles: every 8th, so the clock reads barely weigh on ns/op.
const SampleEvery = 8

// NewHistogram returns the histogram the benchmarks record round trips
// in: 1 ns to 10 s at three significant digits.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Second), 3)
}

// Report reports h's percentiles (p50 to p99.99) and maximum as b's custom
// metrics, in nanoseconds; nothing if h is empty.
func Report(b *testing.B, h *hdrhistogram.Histogram) {
	if h.TotalCount() == 0 {
		return
	}
	for _, q := range []struct {
		unit string
		pct  float64
	}{{"p50-ns", 50}, {"p99-ns", 99}, {"p99.9-ns", 99.9}, {"p99.99-ns", 99.99}} {
		b.ReportMetric(float64(h.ValueAtQuantile(q.pct)), q.unit)
	}
	b.ReportMetric(float64(h.Max()), "max-ns")
}

// Echo is the loop of a ping-pong over a byte stream (a socket) to a peer
// that echoes: b.Loop round trips of msg, each written whole with write
// and read back whole with read, every SampleEvery-th one timed into h.
// The first byte numbers the round trip, and an echo carrying another
// number fails b.
func Echo(b *testing.B, h *hdrhistogram.Histogram, msg []byte, write, read func([]byte) error) {
	for i := 0; b.Loop(); i++ {
		msg[0] = byte(i)
		var t0 time.Time
		if i%SampleEvery == 0 {
			t0 = time.Now()
		}
		if err := write(msg); err != nil {
			b.Fatal(err)
		}
		if err := read(msg); err != nil {
			b.Fatal(err)
		}
		if i%SampleEvery == 0 {
			h.RecordValue(int64(time.Since(t0)))
		}
		if msg[0] != byte(i) {
			b.Fatalf("echo %d, want %d", msg[0], byte(i))
		}
	}
}
