package ringbuf

import (
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
	"time"
)

func newTestMPSC(t testing.TB, slots, slotSize int) (*MPSC, []byte) {
	t.Helper()
	mem := AlignedBytes(MPSCSize(slots, slotSize))
	r, err := NewMPSC(mem, slotSize)
	must.NoError(t, err)
	return r, mem
}

func readAllMPSC(t testing.TB, r *MPSC) []rec {
	t.Helper()
	var got []rec
	_, err := r.Read(0, func(typ uint16, p []byte) { got = append(got, rec{typ, string(p)}) })
	must.NoError(t, err)
	return got
}

func TestMPSCBasics(t *testing.T) {
	r, mem := newTestMPSC(t, 4, 32)
	must.Equal(t, 4, r.Slots())
	must.Equal(t, 16, r.MaxPayload())
	for i := range 4 {
		must.NoError(t, r.TryWrite(uint16(i), []byte{byte(i)}))
	}
	must.ErrorIs(t, r.TryWrite(9, nil), ErrFull)
	must.ErrorIs(t, r.TryWrite(9, make([]byte, 17)), ErrTooLarge)
	_, err := r.Read(2, func(uint16, []byte) {})
	must.NoError(t, err)
	must.Equal(t, uint64(2), word64(mem, offHead).Load())
	must.NoError(t, r.TryWrite(4, []byte("four")))
	must.Equal(t, []rec{{2, "\x02"}, {3, "\x03"}, {4, "four"}}, readAllMPSC(t, r))
	must.Equal(t, 0, len(readAllMPSC(t, r)))

	// Claimed, not yet committed: the consumer waits, nothing half-written shows.
	c, err := r.Claim(5, 3)
	must.NoError(t, err)
	copy(c.Payload, "abc")
	must.Equal(t, 0, len(readAllMPSC(t, r)))
	must.NoError(t, c.Commit())
	must.Equal(t, []rec{{5, "abc"}}, readAllMPSC(t, r))

	a, err := AttachMPSC(mem)
	must.NoError(t, err)
	must.NoError(t, a.TryWrite(6, nil))
	must.Equal(t, []rec{{6, ""}}, readAllMPSC(t, r))

	_, err = AttachMPSC(AlignedBytes(MPSCSize(4, 32)))
	must.ErrorIs(t, err, ErrCorrupt)
	_, err = NewMPSC(AlignedBytes(MPSCSize(4, 32)), 48)
	must.ErrorIs(t, err, ErrMemory)
	_, err = NewMPSC(AlignedBytes(ControlSize+32), 32)
	must.ErrorIs(t, err, ErrMemory)
	must.Panics(t, func() { MPSCSize(3, 32) })
	must.Panics(t, func() { MPSCSize(4, 16) })
}

func TestMPSCFullAndDeadline(t *testing.T) {
	r, _ := newTestMPSC(t, 2, 32)
	must.NoError(t, r.TryWrite(1, nil))
	must.NoError(t, r.TryWrite(2, nil))
	start := time.Now()
	must.ErrorIs(t, r.Write(3, nil, start.Add(10*time.Millisecond)), ErrTimeout)
	must.True(t, time.Since(start) >= 10*time.Millisecond, "returned after %v", time.Since(start))
	done := make(chan error)
	go func() { done <- r.Write(3, nil, time.Now().Add(time.Minute)) }()
	time.Sleep(time.Millisecond)
	var got []rec
	read := func(typ uint16, p []byte) { got = append(got, rec{typ, string(p)}) }
	_, err := r.Read(2, read) // the writer may refill a freed slot while this reads
	must.NoError(t, err)
	must.NoError(t, <-done)
	_, err = r.Read(0, read)
	must.NoError(t, err)
	must.Equal(t, []rec{{1, ""}, {2, ""}, {3, ""}}, got)
}

// TestMPSCDeadProducer: a producer claims a slot and never commits (as if
// killed). The consumer delivers nothing past it until the skip timeout,
// then skips and counts it and delivers what follows. When the producer
// turns out to be alive after all, its Commit reports ErrSkipped.
func TestMPSCDeadProducer(t *testing.T) {
	r, mem := newTestMPSC(t, 4, 64)
	r.SetSkipTimeout(20 * time.Millisecond)
	must.NoError(t, r.TryWrite(1, []byte("before")))
	dead, err := r.Claim(2, 4)
	must.NoError(t, err)
	copy(dead.Payload, "dead")
	must.NoError(t, r.TryWrite(3, []byte("after")))

	start := time.Now()
	var got []rec
	for len(got) < 2 {
		_, err := r.Read(0, func(typ uint16, p []byte) {
			got = append(got, rec{typ, string(p)})
			if typ == 3 && time.Since(start) < 20*time.Millisecond {
				t.Errorf("record after the stalled slot delivered after %v, before the skip timeout", time.Since(start))
			}
		})
		must.NoError(t, err)
		if time.Since(start) > 30*time.Second {
			t.Fatalf("consumer wedged behind the dead producer; got %v", got)
		}
		runtime.Gosched()
	}
	must.Equal(t, []rec{{1, "before"}, {3, "after"}}, got)
	must.Equal(t, uint64(1), r.Skipped())
	must.Equal(t, uint64(1), word64(mem, offSkipped).Load(), "the count is in ring memory, for other processes")

	must.ErrorIs(t, dead.Commit(), ErrSkipped)
	must.Equal(t, 0, len(readAllMPSC(t, r)))
	// The ring goes on working through the skipped slot's next laps.
	for i := range 10 {
		must.NoError(t, r.TryWrite(uint16(i), []byte("x")))
		must.Equal(t, []rec{{uint16(i), "x"}}, readAllMPSC(t, r))
	}
	must.Equal(t, uint64(1), r.Skipped())
}

// TestMPSCSlowProducerWins: a commit just before the timeout is delivered,
// not skipped.
func TestMPSCSlowProducerWins(t *testing.T) {
	r, _ := newTestMPSC(t, 4, 64)
	r.SetSkipTimeout(time.Hour)
	c, err := r.Claim(1, 0)
	must.NoError(t, err)
	for range 3 {
		must.Equal(t, 0, len(readAllMPSC(t, r)))
	}
	must.NoError(t, c.Commit())
	must.Equal(t, []rec{{1, ""}}, readAllMPSC(t, r))
	must.Equal(t, uint64(0), r.Skipped())
}

func TestMPSCCorrupt(t *testing.T) {
	put := func(mem []byte, off int, v uint64) { binary.LittleEndian.PutUint64(mem[off:], v) }
	tests := []struct {
		name  string
		field string
		edit  func(mem []byte) // on a 4x64 ring holding one committed record in slot 0
	}{
		{"magic", "magic", func(m []byte) { put(m, offMagic, 7) }},
		{"slot size", "slot size", func(m []byte) { put(m, offSlotSize, 48) }},
		{"slot count beyond memory", "slot count", func(m []byte) { put(m, offSlots, 8) }},
		{"slot count not a power of two", "slot count", func(m []byte) { put(m, offSlots, 3) }},
		{"claim cursor behind consumer", "claim cursor", func(m []byte) { put(m, offHead, 2) }},
		{"claim cursor a lap ahead", "claim cursor", func(m []byte) { put(m, offTail, 9) }},
		{"slot sequence", "slot sequence", func(m []byte) { put(m, ControlSize, 77) }},
		{"record kind", "record kind", func(m []byte) { put(m, ControlSize+8, header(1, 1, 0)) }},
		{"record length", "record length", func(m []byte) { put(m, ControlSize+8, header(49, 1, kindData)) }},
		{"uncommitted slot with the claim cursor too far", "claim cursor", func(m []byte) {
			put(m, ControlSize, 0)
			put(m, offTail, 1<<40)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, mem := newTestMPSC(t, 4, 64)
			must.NoError(t, r.TryWrite(1, []byte("x")))
			tt.edit(mem)
			c, err := AttachMPSC(mem)
			if err == nil {
				_, err = c.Read(0, func(uint16, []byte) { t.Fatal("corrupt record delivered") })
			}
			var ce *CorruptError
			must.ErrorAs(t, err, &ce)
			must.Equal(t, tt.field, ce.Field, "error: %v", err)
		})
	}

	// Producers refuse a slot sequence ahead of the claim cursor instead of spinning.
	r, mem := newTestMPSC(t, 4, 64)
	put(mem, ControlSize, 5)
	must.ErrorIs(t, r.TryWrite(1, nil), ErrCorrupt)
	put(mem, ControlSize, 1<<50)
	must.ErrorIs(t, r.TryWrite(1, nil), ErrCorrupt)
}

// TestMPSCProducers: 4 producers through a small ring; the consumer checks
// that nothing is lost or duplicated and each producer's records arrive in
// the order it wrote them.
func TestMPSCProducers(t *testing.T) {
	const producers = 4
	perProducer := 250_000 * *soak
	if testing.Short() {
		perProducer = 25_000
	}
	r, _ := newTestMPSC(t, 256, 64)
	r.SetSkipTimeout(time.Hour) // no producer dies here; a loaded machine may stall one for long
	var wg sync.WaitGroup
	for id := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var p [16]byte
			for i := range perProducer {
				binary.LittleEndian.PutUint64(p[:], uint64(i))
				binary.LittleEndian.PutUint64(p[8:], uint64(i)*31+uint64(id))
				if err := r.Write(uint16(id), p[:], time.Now().Add(30*time.Second)); err != nil {
					t.Errorf("producer %d record %d: %v", id, i, err)
					return
				}
			}
		}()
	}
	var next [producers]uint64
	total := 0
	deadline := time.Now().Add(60 * time.Second)
	for total < producers*perProducer {
		n, err := r.Read(64, func(typ uint16, p []byte) {
			if int(typ) >= producers || len(p) != 16 {
				t.Fatalf("record of type %d and %d bytes", typ, len(p))
			}
			seq, check := binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:])
			if seq != next[typ] || check != seq*31+uint64(typ) {
				t.Fatalf("producer %d: got record %d (check %d), want record %d", typ, seq, check, next[typ])
			}
			next[typ]++
		})
		must.NoError(t, err)
		total += n
		if n == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("stuck after %d records: %v", total, next)
			}
			runtime.Gosched()
		}
	}
	wg.Wait()
	must.Equal(t, 0, len(readAllMPSC(t, r)))
	must.Equal(t, uint64(0), r.Skipped())
}
