package ringbuf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func newTestSPSC(t testing.TB, capacity int) (*SPSC, []byte) {
	t.Helper()
	mem := AlignedBytes(SPSCSize(capacity))
	r, err := NewSPSC(mem)
	must.NoError(t, err)
	return r, mem
}

type rec struct {
	typ     uint16
	payload string
}

func readAll(t testing.TB, r *SPSC) []rec {
	t.Helper()
	var got []rec
	_, err := r.Read(0, func(typ uint16, p []byte) { got = append(got, rec{typ, string(p)}) })
	must.NoError(t, err)
	return got
}

func TestSPSCFraming(t *testing.T) {
	r, mem := newTestSPSC(t, 256)
	must.NoError(t, r.TryWrite(7, []byte("hello")))
	must.NoError(t, r.TryWrite(65535, nil))
	must.NoError(t, r.TryWrite(1, []byte("12345678")))

	data := mem[ControlSize:]
	// "hello": header, 5 bytes, padded to 16.
	must.Equal(t, header(5, 7, kindData), binary.LittleEndian.Uint64(data[0:]))
	must.Equal(t, "hello", string(data[8:13]))
	must.Equal(t, header(0, 65535, kindData), binary.LittleEndian.Uint64(data[16:]))
	must.Equal(t, header(8, 1, kindData), binary.LittleEndian.Uint64(data[24:]))
	must.Equal(t, uint64(40), word64(mem, offTail).Load())
	must.Equal(t, 40, r.Len())

	must.Equal(t, []rec{{7, "hello"}, {65535, ""}, {1, "12345678"}}, readAll(t, r))
	must.Equal(t, uint64(40), word64(mem, offHead).Load())
	must.Equal(t, 0, r.Len())
	n, err := r.Read(0, func(uint16, []byte) { t.Fatal("record from an empty ring") })
	must.NoError(t, err)
	must.Equal(t, 0, n)
}

func TestSPSCWrapAround(t *testing.T) {
	r, mem := newTestSPSC(t, 64)
	data := mem[ControlSize:]
	// 24 + 24 bytes, then consume them: the cursor sits at 48, 16 bytes from the end.
	must.NoError(t, r.TryWrite(1, []byte("aaaaaaaaaaaaaaaa")))
	must.NoError(t, r.TryWrite(2, []byte("bbbbbbbbbbbbbbbb")))
	must.Equal(t, 2, len(readAll(t, r)))
	// A 24-byte record does not fit in the last 16: a padding record fills them.
	must.NoError(t, r.TryWrite(3, []byte("cccccccccccccccc")))
	must.Equal(t, header(8, 0, kindPad), binary.LittleEndian.Uint64(data[48:]))
	must.Equal(t, header(16, 3, kindData), binary.LittleEndian.Uint64(data[0:]))
	must.Equal(t, uint64(48+16+24), word64(mem, offTail).Load())
	must.Equal(t, []rec{{3, "cccccccccccccccc"}}, readAll(t, r))
	// An exact fit to the end needs no padding.
	must.NoError(t, r.TryWrite(4, []byte("dddddddddddddddddddddddddddddddd"))) // 40 bytes: 24..64
	must.Equal(t, uint64(128), word64(mem, offTail).Load())
	must.Equal(t, []rec{{4, "dddddddddddddddddddddddddddddddd"}}, readAll(t, r))
	must.Equal(t, uint64(128), word64(mem, offHead).Load())

	// Many laps with sizes that land the cursor everywhere.
	for i := range 1000 {
		p := make([]byte, i%50)
		for j := range p {
			p[j] = byte(i + j)
		}
		err := r.TryWrite(uint16(i), p)
		if errors.Is(err, ErrFull) {
			// Only the padding fitted: it was published alone.
			must.Equal(t, 0, len(readAll(t, r)))
			err = r.TryWrite(uint16(i), p)
		}
		must.NoError(t, err)
		got := readAll(t, r)
		must.Equal(t, []rec{{uint16(i), string(p)}}, got)
	}
}

func TestSPSCWholeRingRecord(t *testing.T) {
	r, _ := newTestSPSC(t, 64)
	must.NoError(t, r.TryWrite(1, make([]byte, 8)))
	must.Equal(t, 1, len(readAll(t, r)))
	// At offset 16 a 56-byte payload (64-byte frame) needs the whole ring:
	// the first try publishes the padding alone and reports full.
	big := make([]byte, MaxPayload(64))
	must.ErrorIs(t, r.TryWrite(2, big), ErrFull)
	must.Equal(t, 0, len(readAll(t, r)))
	must.NoError(t, r.TryWrite(2, big))
	must.Equal(t, []rec{{2, string(big)}}, readAll(t, r))
	must.ErrorIs(t, r.TryWrite(3, make([]byte, MaxPayload(64)+1)), ErrTooLarge)
}

func TestSPSCBatchClaimCommit(t *testing.T) {
	r, mem := newTestSPSC(t, 128)
	for i := range 4 {
		p, err := r.Claim(uint16(i), 8)
		must.NoError(t, err)
		binary.LittleEndian.PutUint64(p, uint64(i))
	}
	must.Equal(t, uint64(0), word64(mem, offTail).Load(), "claimed records are not published before Commit")
	must.Equal(t, 0, len(readAll(t, r)))
	r.Commit()
	must.Equal(t, uint64(64), word64(mem, offTail).Load())
	var got []uint64
	n, err := r.Read(3, func(typ uint16, p []byte) { got = append(got, binary.LittleEndian.Uint64(p)) })
	must.NoError(t, err)
	must.Equal(t, 3, n)
	must.Equal(t, uint64(48), word64(mem, offHead).Load(), "a batch read stores the cursor once, after the batch")
	n, err = r.Read(3, func(typ uint16, p []byte) { got = append(got, binary.LittleEndian.Uint64(p)) })
	must.NoError(t, err)
	must.Equal(t, 1, n)
	must.Equal(t, []uint64{0, 1, 2, 3}, got)
}

// TestSPSCClaimBatch: a batch claims what fits before the end of the data
// region and in the free space, at least one record; the next claim wraps;
// nothing shows before Commit; a consumer that frees space is seen.
func TestSPSCClaimBatch(t *testing.T) {
	r, mem := newTestSPSC(t, 128) // 8 frames of 16 bytes
	fill := func(b Batch, first int) {
		for i := range b.Len() {
			binary.LittleEndian.PutUint64(b.Payload(i), uint64(first+i))
		}
	}
	payloads := func(recs []rec) []uint64 {
		var got []uint64
		for _, x := range recs {
			must.Equal(t, uint16(9), x.typ)
			must.Equal(t, 8, len(x.payload))
			got = append(got, binary.LittleEndian.Uint64([]byte(x.payload)))
		}
		return got
	}

	b, err := r.ClaimBatch(9, 8, 5)
	must.NoError(t, err)
	must.Equal(t, 5, b.Len())
	fill(b, 0)
	must.Equal(t, uint64(0), word64(mem, offTail).Load(), "claimed records are not published before Commit")
	r.Commit()
	must.Equal(t, uint64(80), word64(mem, offTail).Load())

	b, err = r.ClaimBatch(9, 8, 5)
	must.NoError(t, err)
	must.Equal(t, 3, b.Len(), "only three frames are left before the end of the data region")
	fill(b, 5)
	r.Commit()
	_, err = r.ClaimBatch(9, 8, 5)
	must.ErrorIs(t, err, ErrFull)
	must.Equal(t, []uint64{0, 1, 2, 3, 4, 5, 6, 7}, payloads(readAll(t, r)))

	// The consumer has freed the ring since the producer last looked.
	b, err = r.ClaimBatch(9, 8, 10)
	must.NoError(t, err)
	must.Equal(t, 8, b.Len())
	fill(b, 8)
	r.Commit()
	must.Equal(t, []uint64{8, 9, 10, 11, 12, 13, 14, 15}, payloads(readAll(t, r)))

	// A 24-byte frame does not fit in the last 16 bytes: padding, then the
	// batch starts again at offset 0.
	must.NoError(t, r.TryWrite(1, make([]byte, 16)))
	must.NoError(t, r.TryWrite(1, make([]byte, 80)))
	readAll(t, r)
	b, err = r.ClaimBatch(9, 16, 4)
	must.NoError(t, err)
	must.Equal(t, 1, b.Len(), "the record that needs the wrap comes alone")
	b.Payload(0)[0] = 'a'
	b, err = r.ClaimBatch(9, 16, 4)
	must.NoError(t, err)
	must.Equal(t, 3, b.Len(), "the padding and the first record hold 40 of the 128 bytes")
	for i := range b.Len() {
		b.Payload(i)[0] = byte('b' + i)
	}
	r.Commit()
	var firsts []byte
	for _, x := range readAll(t, r) {
		firsts = append(firsts, x.payload[0])
	}
	must.Equal(t, "abcd", string(firsts))

	for _, bad := range []struct {
		name     string
		n, count int
		want     error
	}{
		{"payload larger than the ring", MaxPayload(128) + 1, 1, ErrTooLarge},
		{"negative payload", -1, 1, ErrTooLarge},
		{"no records", 8, 0, nil},
		{"negative count", 8, -3, nil},
	} {
		_, err := r.ClaimBatch(1, bad.n, bad.count)
		must.True(t, err != nil, bad.name)
		if bad.want != nil {
			must.ErrorIs(t, err, bad.want, bad.name)
		}
	}
	r.Commit()
	must.Equal(t, 0, len(readAll(t, r)), "a refused claim leaves nothing behind")
}

func TestSPSCFullAndDeadline(t *testing.T) {
	r, _ := newTestSPSC(t, 64)
	for range 4 {
		must.NoError(t, r.TryWrite(1, make([]byte, 8)))
	}
	must.ErrorIs(t, r.TryWrite(1, make([]byte, 8)), ErrFull)
	_, err := r.Claim(1, 1)
	must.ErrorIs(t, err, ErrFull)

	start := time.Now()
	err = r.Write(1, make([]byte, 8), start.Add(20*time.Millisecond))
	must.ErrorIs(t, err, ErrTimeout)
	must.True(t, time.Since(start) >= 20*time.Millisecond, "returned after %v", time.Since(start))
	must.ErrorIs(t, r.Write(1, nil, time.Now().Add(-time.Second)), ErrTimeout, "a past deadline still reports the timeout")

	// A consumer that drains later lets a blocking Write through.
	done := make(chan error)
	go func() { done <- r.Write(9, []byte("late"), time.Time{}) }()
	time.Sleep(time.Millisecond)
	must.Equal(t, 4, len(readAll(t, r)))
	must.NoError(t, <-done)
	must.Equal(t, []rec{{9, "late"}}, readAll(t, r))
}

func TestSPSCAttach(t *testing.T) {
	r, mem := newTestSPSC(t, 128)
	must.NoError(t, r.TryWrite(5, []byte("one")))
	must.NoError(t, r.TryWrite(6, []byte("two")))
	must.Equal(t, 2, len(readAll(t, r)))
	must.NoError(t, r.TryWrite(7, []byte("three")))

	// A second process would attach to the same memory; here a second view.
	c, err := AttachSPSC(mem)
	must.NoError(t, err)
	must.Equal(t, 128, c.Capacity())
	must.Equal(t, []rec{{7, "three"}}, readAll(t, c))

	_, err = AttachSPSC(AlignedBytes(SPSCSize(64)))
	must.ErrorIs(t, err, ErrCorrupt, "zeroed memory is not a ring")
	_, err = NewSPSC(AlignedBytes(ControlSize + 32))
	must.ErrorIs(t, err, ErrMemory)
	_, err = NewSPSC(AlignedBytes(SPSCSize(64) + 8)[4:])
	must.ErrorIs(t, err, ErrMemory)

	big, err := NewSPSC(AlignedBytes(ControlSize + 1000))
	must.NoError(t, err)
	must.Equal(t, 512, big.Capacity(), "the data region is the largest power of two that fits")
}

func TestSPSCCorrupt(t *testing.T) {
	put := func(mem []byte, off int, v uint64) { binary.LittleEndian.PutUint64(mem[off:], v) }
	tests := []struct {
		name  string
		field string
		edit  func(mem []byte) // applied to a formatted ring holding one 8-byte record
	}{
		{"magic", "magic", func(m []byte) { put(m, offMagic, 1) }},
		{"capacity not a power of two", "capacity", func(m []byte) { put(m, offCapacity, 96) }},
		{"capacity beyond memory", "capacity", func(m []byte) { put(m, offCapacity, 1<<20) }},
		{"capacity too small", "capacity", func(m []byte) { put(m, offCapacity, 32) }},
		{"unaligned producer cursor", "producer cursor", func(m []byte) { put(m, offTail, 17) }},
		{"producer behind consumer", "producer cursor", func(m []byte) { put(m, offHead, 16); put(m, offTail, 8) }},
		{"producer a lap ahead", "producer cursor", func(m []byte) { put(m, offTail, 136) }},
		{"unaligned consumer cursor", "consumer cursor", func(m []byte) { put(m, offHead, 4) }},
		{"cursors near 2^64", "producer cursor", func(m []byte) { put(m, offHead, 1<<63); put(m, offTail, 1<<63+16) }},
		{"length past published data", "record length", func(m []byte) { put(m, ControlSize, header(9, 1, kindData)) }},
		{"length past the region", "record length", func(m []byte) { put(m, ControlSize, header(1<<31, 1, kindData)) }},
		{"bad kind", "record kind", func(m []byte) { put(m, ControlSize, header(8, 1, 0x1234)) }},
		{"zero header", "record kind", func(m []byte) { put(m, ControlSize, 0) }},
		{"padding short of the end", "padding length", func(m []byte) { put(m, ControlSize, header(8, 0, kindPad)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, mem := newTestSPSC(t, 128)
			must.NoError(t, r.TryWrite(1, make([]byte, 8)))
			tt.edit(mem)
			c, err := AttachSPSC(mem)
			if err == nil {
				_, err = c.Read(0, func(uint16, []byte) { t.Fatal("corrupt record delivered") })
			}
			var ce *CorruptError
			must.ErrorAs(t, err, &ce)
			must.ErrorIs(t, err, ErrCorrupt)
			must.Equal(t, tt.field, ce.Field, "error: %v", err)
		})
	}
}

func TestSPSCCorruptProducerSide(t *testing.T) {
	r, mem := newTestSPSC(t, 64)
	for range 4 {
		must.NoError(t, r.TryWrite(1, make([]byte, 8)))
	}
	word64(mem, offHead).Store(1 << 40) // ahead of anything published
	err := r.TryWrite(1, make([]byte, 8))
	must.ErrorIs(t, err, ErrCorrupt)
	must.ErrorContains(t, err, "consumer cursor")
}

func TestSPSCCorruptKeepsGoodRecords(t *testing.T) {
	r, mem := newTestSPSC(t, 128)
	must.NoError(t, r.TryWrite(1, []byte("good")))
	must.NoError(t, r.TryWrite(2, []byte("bad!")))
	binary.LittleEndian.PutUint64(mem[ControlSize+16:], header(4, 2, 0))
	var got []string
	n, err := r.Read(0, func(_ uint16, p []byte) { got = append(got, string(p)) })
	must.ErrorIs(t, err, ErrCorrupt)
	must.Equal(t, 1, n)
	must.Equal(t, []string{"good"}, got)
	must.Equal(t, uint64(16), word64(mem, offHead).Load(), "the good record is consumed, the bad one is not")
	must.Equal(t, fmt.Sprint(err), err.Error())
}

func TestSPSCRejectsMisuse(t *testing.T) {
	r, _ := newTestSPSC(t, 64)
	_, err := r.Claim(1, -1)
	must.True(t, errors.Is(err, ErrTooLarge))
	must.Panics(t, func() { SPSCSize(100) })
	must.Panics(t, func() { SPSCSize(32) })
}

// TestSPSCModel drives one ring from one goroutine with a seeded random mix
// of Claim, ClaimBatch, Commit and Read, at random starting cursors and
// sizes from empty to a whole ring, and checks every delivered record
// against a model queue: nothing published is lost, reordered or changed,
// nothing claimed shows before its Commit, and the ring never hands out
// more room than it has.
func TestSPSCModel(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		capacity := 64 << rng.IntN(4)
		mem := AlignedBytes(SPSCSize(capacity))
		_, err := NewSPSC(mem)
		must.NoError(t, err)
		start := uint64(rng.IntN(1<<20)) * RecordAlign // attach mid-stream
		word64(mem, offTail).Store(start)
		word64(mem, offHead).Store(start)
		r, err := AttachSPSC(mem)
		must.NoError(t, err)

		published, claimed := []rec{}, []rec{} // the model
		next := 0
		size := func() int {
			switch rng.IntN(4) {
			case 0:
				return MaxPayload(capacity) - rng.IntN(2)*RecordAlign
			case 1:
				return 12
			}
			return rng.IntN(capacity / 4)
		}
		record := func(typ uint16, p []byte) rec {
			for i := range p {
				p[i] = byte(next + i)
			}
			next++
			return rec{typ, string(p)}
		}
		for step := range 400 {
			switch op := rng.IntN(4); op {
			case 0:
				n := size()
				p, err := r.Claim(uint16(step), n)
				if err == ErrFull {
					continue
				}
				must.NoError(t, err, "seed %d step %d: claim %d", seed, step, n)
				must.Equal(t, n, len(p))
				claimed = append(claimed, record(uint16(step), p))
			case 1:
				n, count := size(), 1+rng.IntN(9)
				b, err := r.ClaimBatch(uint16(step), n, count)
				if err == ErrFull {
					continue
				}
				must.NoError(t, err, "seed %d step %d: claim batch of %d × %d", seed, step, count, n)
				must.True(t, b.Len() >= 1 && b.Len() <= count, "seed %d step %d: batch of %d for %d", seed, step, b.Len(), count)
				for i := range b.Len() {
					must.Equal(t, n, len(b.Payload(i)))
					claimed = append(claimed, record(uint16(step), b.Payload(i)))
				}
			case 2:
				r.Commit()
				published = append(published, claimed...)
				claimed = claimed[:0]
			case 3:
				got := []rec{}
				_, err := r.Read(rng.IntN(4), func(typ uint16, p []byte) { got = append(got, rec{typ, string(p)}) })
				must.NoError(t, err, "seed %d step %d", seed, step)
				must.True(t, len(got) <= len(published), "seed %d step %d: %d records read, %d published", seed, step, len(got), len(published))
				must.Equal(t, published[:len(got)], got, "seed %d step %d", seed, step)
				published = published[len(got):]
			}
			var bytes int
			for _, x := range append(published, claimed...) {
				bytes += int(align8(HeaderSize + uint64(len(x.payload))))
			}
			must.True(t, bytes <= capacity, "seed %d step %d: %d bytes of records in a %d-byte ring", seed, step, bytes, capacity)
		}
	}
}
