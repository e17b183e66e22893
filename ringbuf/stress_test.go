package ringbuf

import (
	"encoding/binary"
	"flag"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var soak = flag.Int("ringbuf.soak", 1, "multiply the stress tests' record counts by this for a long soak run")

// stressPayload fills p with bytes derived from the record number, so the
// consumer can check every byte.
func stressPayload(p []byte, seq uint64) {
	binary.LittleEndian.PutUint64(p, seq)
	for i := 8; i < len(p); i++ {
		p[i] = byte(seq) ^ byte(i)
	}
}

func checkStressPayload(t testing.TB, p []byte, want uint64) {
	if got := binary.LittleEndian.Uint64(p); got != want {
		t.Fatalf("record %d arrived as record %d: lost, duplicated or reordered", want, got)
	}
	for i := 8; i < len(p); i++ {
		if p[i] != byte(want)^byte(i) {
			t.Fatalf("record %d byte %d = %#x, want %#x", want, i, p[i], byte(want)^byte(i))
		}
	}
}

// TestSPSCStress moves 10 million records (times -ringbuf.soak) through a
// small ring between two goroutines, in batches of varying size and with
// lengths that move the wrap point around, and checks every record's
// order, type, length and content. Records come in runs of seven of one
// type and size; the producer claims alternate batches record by record
// (Claim) and run by run (ClaimBatch), so the two claim paths interleave
// across every wrap.
func TestSPSCStress(t *testing.T) {
	total := uint64(10_000_000 * *soak)
	if testing.Short() {
		total = 1_000_000
	}
	r, _ := newTestSPSC(t, 4096)
	const run = 7
	typ := func(seq uint64) uint16 { return uint16(seq / run) }
	size := func(seq uint64) int { return 8 + int(seq/run%3)*4 } // 8, 12, 16: frames of 16 and 24

	var (
		wg   sync.WaitGroup
		stop atomic.Bool // one side gave up: the other stops waiting for it
	)
	defer func() { stop.Store(true); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		// claim claims and fills up to count records from seq, one by one
		// or as one batch, and returns how many it claimed.
		claim := func(batched bool, seq, count uint64) (uint64, error) {
			if !batched {
				p, err := r.Claim(typ(seq), size(seq))
				if err != nil {
					return 0, err
				}
				stressPayload(p, seq)
				return 1, nil
			}
			b, err := r.ClaimBatch(typ(seq), size(seq), int(count))
			if err != nil {
				return 0, err
			}
			for j := range b.Len() {
				stressPayload(b.Payload(j), seq+uint64(j))
			}
			return uint64(b.Len()), nil
		}
		var seq uint64
		for round := 0; seq < total && !stop.Load(); round++ {
			batch := 1 + seq%61
			for i := uint64(0); i < batch && seq < total; {
				n, err := claim(round%2 == 1, seq, min(run-seq%run, batch-i, total-seq))
				if err == ErrFull {
					break
				}
				if err != nil {
					t.Errorf("claim at %d: %v", seq, err)
					stop.Store(true)
					return
				}
				seq += n
				i += n
			}
			r.Commit()
			if r.Len() > r.Capacity()/2 {
				runtime.Gosched()
			}
		}
	}()

	var next uint64
	for next < total && !stop.Load() {
		n, err := r.Read(1+int(next%97), func(ty uint16, p []byte) {
			if ty != typ(next) || len(p) != size(next) {
				t.Fatalf("record %d: type %d, %d bytes; want type %d, %d bytes", next, ty, len(p), typ(next), size(next))
			}
			checkStressPayload(t, p, next)
			next++
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			runtime.Gosched()
		}
	}
	wg.Wait()
	if stop.Load() {
		return
	}
	if n, _ := r.Read(0, func(uint16, []byte) {}); n != 0 {
		t.Fatalf("%d records after the last one", n)
	}
}

// TestNoLostWakeUp bounces a record back and forth between two goroutines
// over two rings, each side parking on its own doorbell as soon as it is
// idle (one spin, one yield) with a park timeout of an hour. A varying
// delay before each publish makes it race with every step of the peer's
// parking sequence (arm, re-check, futex wait); a single lost wake-up
// leaves both sides parked and the watchdog fails the test.
func TestNoLostWakeUp(t *testing.T) {
	rounds := 20_000 * *soak
	if testing.Short() {
		rounds = 2_000
	}
	ping, _ := newTestSPSC(t, 256)
	pong, _ := newTestSPSC(t, 256)
	pingBell, err := NewDoorbell(AlignedBytes(DoorbellSize))
	must.NoError(t, err)
	pongBell, err := NewDoorbell(AlignedBytes(DoorbellSize))
	must.NoError(t, err)
	ping.SetDoorbell(pingBell) // read by the echo side
	pong.SetDoorbell(pongBell) // read by the test side
	park := func(bell *Doorbell) *SpinPark {
		return &SpinPark{Bell: bell, Spins: 1, Yields: 1, ParkTimeout: time.Hour}
	}

	echoDone := make(chan error, 1)
	go func() {
		idle := park(pingBell)
		var buf [8]byte
		for got := 0; got < rounds; {
			n, err := ping.Read(1, func(_ uint16, p []byte) { copy(buf[:], p) })
			if err != nil {
				echoDone <- err
				return
			}
			if n > 0 {
				got++
				jitter(got)
				if err := pong.TryWrite(2, buf[:]); err != nil {
					echoDone <- err
					return
				}
			}
			idle.Idle(n)
		}
		echoDone <- nil
	}()

	done := make(chan error, 1)
	go func() {
		idle := park(pongBell)
		var buf [8]byte
		for i := range rounds {
			binary.LittleEndian.PutUint64(buf[:], uint64(i))
			jitter(i) // land the publish anywhere in the echo side's parking sequence
			if err := ping.TryWrite(1, buf[:]); err != nil {
				done <- err
				return
			}
			for {
				var echoed uint64
				n, err := pong.Read(1, func(_ uint16, p []byte) { echoed = binary.LittleEndian.Uint64(p) })
				if err != nil {
					done <- err
					return
				}
				if n > 0 {
					if echoed != uint64(i) {
						t.Errorf("round %d echoed %d", i, echoed)
					}
					idle.Reset()
					break
				}
				idle.Idle(0)
			}
		}
		done <- nil
	}()

	watchdog := time.After(30 * time.Second)
	for range 2 {
		select {
		case err := <-done:
			must.NoError(t, err)
			done = nil
		case err := <-echoDone:
			must.NoError(t, err)
			echoDone = nil
		case <-watchdog:
			t.Fatalf("no progress for 30s: a wake-up was lost (waiters: ping %d, pong %d)", pingBell.Waiters(), pongBell.Waiters())
		}
	}
	must.Equal(t, uint32(0), pingBell.Waiters())
	must.Equal(t, uint32(0), pongBell.Waiters())
}

// jitterSink keeps jitter's loop from being optimised away.
var jitterSink atomic.Uint64

// jitter busy-waits a pseudo-random 0 to about 20µs, depending on i.
func jitter(i int) {
	n := uint64(i) * 0x9e3779b97f4a7c15 >> 52 // 0..4095
	var x uint64
	for k := uint64(0); k < n*4; k++ {
		x += k
	}
	jitterSink.Store(x)
}
