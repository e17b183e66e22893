package ringbuf

import (
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/commitcore/commitcore/internal/pingpong"
)

// msg64 is the 64-byte record the throughput benchmarks move: the ring
// benchmarks copy it in and out as a 64-byte payload, the channel
// benchmark sends it by value.
type msg64 [64]byte

const (
	benchRingCapacity = 1 << 16 // the MPSC benchmark's ring
	benchBatch        = 256     // producer records per ClaimBatch and Commit
	// pingPongSpins bounds the busy-spin of both ping-pong benchmarks: a
	// round trip takes a few hundred polls, so they spin throughout on a
	// quiet machine, and yield when other work holds one of the two cores
	// rather than spinning out whole scheduler slices.
	pingPongSpins = 20_000
)

// throughputRings are the ring sizes the throughput benchmarks run at,
// each with a channel peer holding as many 64-byte records as the ring
// (72-byte frames). The small ring fits in each core's L2: every line the
// producer writes is one the consumer read a lap earlier, so each store
// likely waits for the consumer's core to give the line up. The large one
// outgrows a core's L2 (1 MiB on this machine), so by the time the
// producer comes back to a line the consumer's core has likely evicted it,
// and the store no longer waits on the other core. The gap between the
// two is measured; the mechanism is inferred, not counted.
var throughputRings = []struct {
	name     string
	capacity int
}{{"ring=64KiB", 1 << 16}, {"ring=4MiB", 1 << 22}}

func needTwoProcs(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs GOMAXPROCS >= 2: two threads busy-spin against each other")
	}
}

// BenchmarkSPSCThroughput: one producer goroutine, one consumer goroutine,
// 64-byte payloads (72-byte frames), at each of throughputRings. The
// producer uses the batch API as a user would: it claims up to benchBatch
// records with one ClaimBatch, builds each in place in ring memory (no
// staging copy: that is what claiming is for) and publishes the batch with
// one Commit. Each Commit hands the cursor's cache line, and the line
// where the next batch starts, to the consumer's core and back, so the
// batch is large (256 records, 18 KiB) to spread that cost: at 64 records
// the median time per record was 3–67% higher in three runs here. The
// consumer reads all available records per Read and copies each 64-byte
// payload out. A machine shared with other work must not starve the peer,
// so neither side spins for long: both idle with SpinPark, as a channel's
// sender and receiver park: the consumer on a doorbell each Commit rings,
// the producer (when the ring is full) on one each Read rings
// (SetSpaceDoorbell). Ringing costs a load while nobody is parked. ns/op
// is per record.
func BenchmarkSPSCThroughput(b *testing.B) {
	for _, rc := range throughputRings {
		b.Run(rc.name, func(b *testing.B) { benchSPSCThroughput(b, rc.capacity) })
	}
}

func benchSPSCThroughput(b *testing.B, capacity int) {
	r, _ := newTestSPSC(b, capacity)
	bell, err := NewDoorbell(AlignedBytes(DoorbellSize))
	if err != nil {
		b.Fatal(err)
	}
	r.SetDoorbell(bell)
	space, err := NewDoorbell(AlignedBytes(DoorbellSize))
	if err != nil {
		b.Fatal(err)
	}
	r.SetSpaceDoorbell(space)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		var (
			tmpl msg64
			idle = SpinPark{Bell: space}
		)
		for i := 0; i < b.N; {
			batch, err := r.ClaimBatch(1, len(tmpl), min(benchBatch, b.N-i))
			if err != nil && err != ErrFull {
				panic(err)
			}
			for k := range batch.Len() {
				rec := (*msg64)(batch.Payload(k))
				*rec = tmpl
				setSeq(rec, i)
				i++
			}
			r.Commit()
			idle.Idle(batch.Len())
		}
		idle.Reset()
	}()
	var (
		got  int
		sum  uint64
		last msg64
		idle = SpinPark{Bell: bell}
	)
	for got < b.N {
		n, err := r.Read(0, func(_ uint16, p []byte) {
			last = msg64(p)
			sum += seqOf(&last)
		})
		if err != nil {
			b.Fatal(err)
		}
		got += n
		idle.Idle(n)
	}
	idle.Reset()
	b.StopTimer()
	if want := uint64(b.N) * uint64(b.N-1) / 2; sum != want {
		b.Fatalf("sum of record numbers %d, want %d", sum, want)
	}
}

// BenchmarkChanThroughput is the peer of BenchmarkSPSCThroughput: a
// buffered channel of the same 64-byte record, holding as many records as
// the ring of the same name, one sending and one receiving goroutine.
// ns/op is per record.
func BenchmarkChanThroughput(b *testing.B) {
	for _, rc := range throughputRings {
		b.Run(rc.name, func(b *testing.B) { benchChanThroughput(b, rc.capacity/72) })
	}
}

func benchChanThroughput(b *testing.B, records int) {
	ch := make(chan msg64, records)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		var m msg64
		for i := range b.N {
			setSeq(&m, i)
			ch <- m
		}
	}()
	var sum uint64
	for range b.N {
		m := <-ch
		sum += seqOf(&m)
	}
	b.StopTimer()
	if want := uint64(b.N) * uint64(b.N-1) / 2; sum != want {
		b.Fatalf("sum of record numbers %d, want %d", sum, want)
	}
}

// BenchmarkMPSCThroughput: two producer goroutines, one consumer, 64-byte
// payloads in 128-byte slots. ns/op is per record.
func BenchmarkMPSCThroughput(b *testing.B) {
	const producers = 2
	r, _ := newTestMPSC(b, benchRingCapacity/128, 128)
	r.SetSkipTimeout(time.Hour) // no producer dies here; a loaded machine may stall one for long
	b.ReportAllocs()
	b.ResetTimer()
	for id := range producers {
		go func() {
			var (
				m    msg64
				idle SpinYield
			)
			for i := id; i < b.N; i += producers {
				for {
					c, err := r.Claim(uint16(id), len(m))
					if err == ErrFull {
						idle.Idle(0)
						continue
					}
					idle.Reset()
					if err != nil {
						panic(err)
					}
					setSeq(&m, i)
					copy(c.Payload, m[:])
					if err := c.Commit(); err != nil {
						panic(err)
					}
					break
				}
			}
		}()
	}
	var (
		got  int
		sum  uint64
		last msg64
		idle SpinYield // two producers and a consumer share two cores
	)
	for got < b.N {
		n, err := r.Read(0, func(_ uint16, p []byte) {
			copy(last[:], p)
			sum += seqOf(&last)
		})
		if err != nil {
			b.Fatal(err)
		}
		got += n
		idle.Idle(n)
	}
	b.StopTimer()
	if want := uint64(b.N) * uint64(b.N-1) / 2; sum != want {
		b.Fatalf("sum of record numbers %d, want %d", sum, want)
	}
}

// BenchmarkSPSCPingPong: a round trip over two SPSC rings between two
// goroutines locked to OS threads, both busy-spinning. ns/op is one round
// trip; the percentiles sample every 8th round trip.
func BenchmarkSPSCPingPong(b *testing.B) {
	needTwoProcs(b)
	benchPingPong(b, false, func(*Doorbell) IdleStrategy { return &SpinYield{Spins: pingPongSpins} })
}

// BenchmarkSPSCPingPongParked is BenchmarkSPSCPingPong with both sides
// parking on their doorbells after one spin and one yield, so nearly every
// hop pays a futex wake-up: the latency of an agent that was asleep.
func BenchmarkSPSCPingPongParked(b *testing.B) {
	benchPingPong(b, true, func(bell *Doorbell) IdleStrategy {
		return &SpinPark{Bell: bell, Spins: 1, Yields: 1, ParkTimeout: time.Second}
	})
}

// benchPingPong times round trips over two rings; with ring set, each
// publish rings the reader's doorbell.
func benchPingPong(b *testing.B, ring bool, newIdle func(*Doorbell) IdleStrategy) {
	ping, _ := newTestSPSC(b, 4096)
	pong, _ := newTestSPSC(b, 4096)
	pingBell, err := NewDoorbell(AlignedBytes(DoorbellSize))
	if err != nil {
		b.Fatal(err)
	}
	pongBell, err := NewDoorbell(AlignedBytes(DoorbellSize))
	if err != nil {
		b.Fatal(err)
	}
	if ring {
		ping.SetDoorbell(pingBell)
		pong.SetDoorbell(pongBell)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		idle := newIdle(pingBell)
		var v [8]byte
		for got := 0; got < b.N; {
			n, err := ping.Read(1, func(_ uint16, p []byte) { copy(v[:], p) })
			if err != nil {
				panic(err)
			}
			if n > 0 {
				got++
				if err := pong.TryWrite(2, v[:]); err != nil {
					panic(err)
				}
			}
			idle.Idle(n)
		}
		idle.Reset()
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	idle := newIdle(pongBell)
	h := pingpong.NewHistogram()
	var v [8]byte
	copyBack := func(_ uint16, p []byte) { copy(v[:], p) }
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var start time.Time
		if i%pingpong.SampleEvery == 0 {
			start = time.Now()
		}
		v[0] = byte(i)
		if err := ping.TryWrite(1, v[:]); err != nil {
			b.Fatal(err)
		}
		for {
			n, err := pong.Read(1, copyBack)
			if err != nil {
				b.Fatal(err)
			}
			idle.Idle(n)
			if n > 0 {
				break
			}
		}
		if v[0] != byte(i) {
			b.Fatalf("round trip %d echoed %d", i, v[0])
		}
		if i%pingpong.SampleEvery == 0 {
			_ = h.RecordValue(time.Since(start).Nanoseconds())
		}
	}
	b.StopTimer()
	idle.Reset()
	wg.Wait()
	pingpong.Report(b, h)
}

// BenchmarkSpinFloorPingPong is the floor for BenchmarkSPSCPingPong: two
// locked threads bounce one padded atomic word (odd values one way, even
// the other), the least any cross-core round trip can cost. It polls
// through the same bounded SpinYield as BenchmarkSPSCPingPong. ns/op is one
// round trip; the percentiles sample every 8th round trip.
func BenchmarkSpinFloorPingPong(b *testing.B) {
	needTwoProcs(b)
	h := pingpong.NewHistogram()
	b.ReportAllocs()
	b.ResetTimer()
	pingpong.Floor(uint64(b.N), func() pingpong.Idler { return &SpinYield{Spins: pingPongSpins} }, pingpong.SampleEvery,
		func(ns int64) { _ = h.RecordValue(ns) })
	b.StopTimer()
	pingpong.Report(b, h)
}

// setSeq and seqOf keep the record number in a msg64's first 8 bytes.
func setSeq(m *msg64, i int) { binary.LittleEndian.PutUint64(m[:], uint64(i)) }
func seqOf(m *msg64) uint64  { return binary.LittleEndian.Uint64(m[:]) }
