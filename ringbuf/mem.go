package ringbuf

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// CacheLine is the cache-line size the layouts pad to. Cursors and doorbell
// words that different cores write each own a whole line, so one core's
// stores never invalidate the line another core is polling.
const CacheLine = 64

// AlignedBytes returns n zeroed bytes of heap memory whose first byte is
// aligned to CacheLine. Rings and doorbells need only 8-byte alignment, but
// their cache-line padding only isolates the cursors when the memory starts
// on a line boundary, as an mmap'd segment does.
func AlignedBytes(n int) []byte {
	if n < 0 {
		panic(fmt.Sprintf("ringbuf: AlignedBytes(%d): negative size", n))
	}
	b := make([]byte, n+CacheLine)
	off := CacheLine - int(uintptr(unsafe.Pointer(&b[0]))%CacheLine)
	if off == CacheLine {
		off = 0
	}
	return b[off : off+n : off+n]
}

// checkAligned reports an ErrMemory error unless mem starts on an 8-byte
// boundary, which the atomic views below need.
func checkAligned(what string, mem []byte) error {
	if len(mem) == 0 {
		return fmt.Errorf("%s: empty memory: %w", what, ErrMemory)
	}
	// unsafe: read the address only, to check alignment; nothing is dereferenced.
	if p := uintptr(unsafe.Pointer(&mem[0])); p%8 != 0 {
		return fmt.Errorf("%s: memory at %#x is not 8-byte aligned (use AlignedBytes or a page-aligned mapping): %w", what, p, ErrMemory)
	}
	return nil
}

// word64 views the 8 bytes at mem[off:] as an atomic word. The caller has
// checked that mem is 8-byte aligned and off is a multiple of 8, so the
// word is naturally aligned as sync/atomic requires; the bounds are checked
// by the slice expression.
func word64(mem []byte, off int) *atomic.Uint64 {
	b := mem[off : off+8]
	// unsafe: atomics over shared memory need a typed pointer into the
	// []byte; alignment is guaranteed by checkAligned and off%8 == 0.
	return (*atomic.Uint64)(unsafe.Pointer(&b[0]))
}

// word32 is word64 for a 4-byte word at a multiple of 4.
func word32(mem []byte, off int) *atomic.Uint32 {
	b := mem[off : off+4]
	// unsafe: as in word64; the futex syscall also needs this address.
	return (*atomic.Uint32)(unsafe.Pointer(&b[0]))
}

func align8(n uint64) uint64 { return (n + 7) &^ 7 }

func isPow2(n uint64) bool { return n != 0 && n&(n-1) == 0 }

// floorPow2 returns the largest power of two <= n, or 0 for n == 0.
func floorPow2(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	p := uint64(1)
	for p <= n/2 {
		p <<= 1
	}
	return p
}
