package accel

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

// pingSize is the record size of the ping-pong benchmarks.
const pingSize = 64

// sampleEvery: the benchmarks time every 8th round trip for percentiles,
// as ringbuf's and shm's do, so clock reads barely weigh on ns/op.
const sampleEvery = 8

func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Second), 3)
}

func reportLatency(b *testing.B, h *hdrhistogram.Histogram) {
	for _, q := range []struct {
		unit string
		pct  float64
	}{{"p50-ns", 50}, {"p99-ns", 99}, {"p99.9-ns", 99.9}} {
		b.ReportMetric(float64(h.ValueAtPercentile(q.pct)), q.unit)
	}
	b.ReportMetric(float64(h.Max()), "max-ns")
}

// echo serves ep until stop: every record read from Rx goes back on Tx.
// It runs on a locked thread and parks like a participant host.
func echo(ep Endpoint, stop <-chan struct{}) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := ep.Conn()
	var werr error
	back := func(typ uint16, p []byte) {
		if werr == nil {
			werr = c.Tx.Write(typ, p, time.Time{})
		}
	}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		n, err := c.Rx.Read(0, back)
		if err = errors.Join(err, werr); err != nil {
			return err
		}
		if err := ep.Idle(n); err != nil {
			return err
		}
	}
}

// BenchmarkFabricShmPingPong is a 64-byte round trip through a ShmFabric
// pair to an echoing goroutine; BenchmarkFabricTCPPingPong is the same
// over a TCPFabric pair on loopback. Run them together: the TCP figure is
// meant as a ratio to this one.
func BenchmarkFabricShmPingPong(b *testing.B) { benchPingPong(b, shmCase(1<<16)) }

// BenchmarkFabricTCPPingPong: see BenchmarkFabricShmPingPong.
func BenchmarkFabricTCPPingPong(b *testing.B) {
	benchPingPong(b, tcpCase(TCPOptions{RingCapacity: 1 << 16}))
}

func benchPingPong(b *testing.B, fc fabricCase) {
	p, a := fc.pair(b)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- echo(p, stop) }()
	c := a.Conn()
	idle := engine.NewIdleStrategy(engine.IdlePark, c.Bell)
	var msg [pingSize]byte
	var got byte
	read := func(_ uint16, p []byte) { got = p[0] }
	h := newLatencyHistogram()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		msg[0] = byte(i)
		var t0 time.Time
		if i%sampleEvery == 0 {
			t0 = time.Now()
		}
		if err := c.Tx.TryWrite(1, msg[:]); err != nil {
			b.Fatal(err)
		}
		idle.Reset()
		for {
			n, err := c.Rx.Read(1, read)
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				break
			}
			idle.Idle(0)
		}
		if i%sampleEvery == 0 {
			h.RecordValue(int64(time.Since(t0)))
		}
		if got != byte(i) {
			b.Fatalf("echo %d, want %d", got, byte(i))
		}
	}
	b.StopTimer()
	reportLatency(b, h)
	close(stop)
	require.NoError(b, <-done)
}
