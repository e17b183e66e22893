package ringbuf

import (
	"encoding/binary"
	"testing"
)

// fuzzReads reads a ring until it is empty, errors, or a bounded number of
// calls, checking that every payload lies inside the data region. A panic
// or an out-of-bounds slice fails the fuzz run.
func fuzzReads(t *testing.T, read func(limit int, fn func(uint16, []byte)) (int, error), maxPayload int) {
	for range 64 {
		n, err := read(3, func(_ uint16, p []byte) {
			if len(p) > maxPayload {
				t.Fatalf("payload of %d bytes from a ring whose records hold at most %d", len(p), maxPayload)
			}
		})
		if err != nil || n == 0 {
			return
		}
	}
}

// FuzzSPSCRead keeps a valid SPSC control line (magic, capacity 256), takes
// both cursors and the whole data region from the fuzzer, and reads: it
// must deliver in-bounds records or return an error, never panic. Writes
// are tried too, as a producer attached to corrupt memory must not panic
// either.
func FuzzSPSCRead(f *testing.F) {
	const capacity = 256
	r, mem := newTestSPSC(f, capacity)
	for i := range 6 {
		if err := r.TryWrite(uint16(i), make([]byte, i*5)); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := r.Read(4, func(uint16, []byte) {}); err != nil {
		f.Fatal(err)
	}
	f.Add(word64(mem, offHead).Load(), word64(mem, offTail).Load(), append([]byte(nil), mem[ControlSize:]...))
	f.Add(uint64(248), uint64(264), []byte{})
	f.Fuzz(func(t *testing.T, head, tail uint64, data []byte) {
		mem := AlignedBytes(SPSCSize(capacity))
		if _, err := NewSPSC(mem); err != nil {
			t.Fatal(err)
		}
		copy(mem[ControlSize:], data)
		binary.LittleEndian.PutUint64(mem[offHead:], head)
		binary.LittleEndian.PutUint64(mem[offTail:], tail)
		c, err := AttachSPSC(mem)
		if err != nil {
			return
		}
		fuzzReads(t, c.Read, MaxPayload(capacity))
		for i := range 8 {
			if err := c.TryWrite(1, make([]byte, i*13)); err != nil {
				break
			}
		}
		fuzzReads(t, c.Read, MaxPayload(capacity))
	})
}

// FuzzAttach fills the whole memory of a ring, control block included,
// with the fuzzer's bytes and attaches both ring kinds: an attach that
// succeeds must read and write without panicking.
func FuzzAttach(f *testing.F) {
	const size = ControlSize + 512
	_, spsc := newTestSPSC(f, 512)
	f.Add(append([]byte(nil), spsc...))
	m, mpsc := newTestMPSC(f, 8, 64)
	if err := m.TryWrite(3, []byte("seed")); err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte(nil), mpsc...))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := AlignedBytes(size)
		copy(mem, data)
		if r, err := AttachSPSC(mem); err == nil {
			fuzzReads(t, r.Read, MaxPayload(r.Capacity()))
			_ = r.TryWrite(1, []byte("probe"))
			fuzzReads(t, r.Read, MaxPayload(r.Capacity()))
		}
		copy(mem, data)
		if r, err := AttachMPSC(mem); err == nil {
			fuzzReads(t, r.Read, r.MaxPayload())
			_ = r.TryWrite(1, []byte("probe"))
			fuzzReads(t, r.Read, r.MaxPayload())
		}
	})
}
