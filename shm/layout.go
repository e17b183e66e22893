package shm

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"sync/atomic"
	"unsafe"
)

// Layout constants. See the table in doc.go; a change here is a change of
// Version.
const (
	// Magic is the first eight bytes of every segment: "CCSHMSEG".
	Magic uint64 = 0x4745534d48534343
	// Version is the layout version this build writes and reads.
	Version uint32 = 1
	// HeaderSize is the size of the header page; regions start after it.
	HeaderSize = 4096
	// MaxRegions is the number of entries in the region table.
	MaxRegions = 16
	// MaxSlots is the number of liveness slots in the header.
	MaxSlots = 8
	// RegionAlign is the alignment of every region's offset and length.
	RegionAlign = 64
	// SlotSize is the size of one liveness slot: one cache line.
	SlotSize = 64

	offMagic        = 0
	offVersion      = 8
	offHeaderSize   = 12
	offTotalSize    = 16
	offCreatorPID   = 24
	offRegionCount  = 28
	offCreatorStart = 32
	offCreated      = 40
	offSlotCount    = 48
	offChecksum     = 52
	offReserved0    = 56
	offRegions      = 64
	regionEntrySize = 32
	offReserved1    = offRegions + MaxRegions*regionEntrySize // 576
	offSlots        = 1024
	offReserved2    = offSlots + MaxSlots*SlotSize // 1536

	// slot fields, relative to the slot
	slotIdent     = 0  // uint64: start<<pidBits | pid; 0 = free
	slotFlags     = 8  // uint32: flagParked
	slotHeartbeat = 16 // uint64: bumped by Beat
	slotAttached  = 24 // int64: Unix ns of attach
	slotReserved  = 32

	flagParked = 1

	// pidBits holds any Linux pid (PID_MAX_LIMIT is 1<<22).
	pidBits = 22
	maxPID  = 1<<pidBits - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Region is one entry of a segment's region table: an application-chosen
// Kind tag and the byte range it occupies in the segment.
type Region struct {
	Kind   uint32
	Offset int
	Len    int
}

// RegionSpec asks Create for a region of Len bytes tagged Kind.
type RegionSpec struct {
	Kind uint32
	Len  int
}

// header is the creation-time content of the header page.
type header struct {
	totalSize    uint64
	creatorPID   uint32
	creatorStart uint64
	created      int64
	regions      []Region
}

// alignUp rounds n up to a multiple of RegionAlign.
func alignUp(n int) int { return (n + RegionAlign - 1) &^ (RegionAlign - 1) }

// checksum is the CRC-32C of the immutable header fields after the magic
// (which is stored last) and of the region table.
func checksum(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[offVersion:offChecksum])
	return crc32.Update(c, castagnoli, b[offRegions:offReserved1])
}

// writeHeader fills the header page of a fresh, zeroed mapping. The magic is
// stored last with an atomic store so that a reader that sees it sees the
// rest of the header too.
func writeHeader(b []byte, h *header) {
	le := binary.LittleEndian
	le.PutUint32(b[offVersion:], Version)
	le.PutUint32(b[offHeaderSize:], HeaderSize)
	le.PutUint64(b[offTotalSize:], h.totalSize)
	le.PutUint32(b[offCreatorPID:], h.creatorPID)
	le.PutUint32(b[offRegionCount:], uint32(len(h.regions)))
	le.PutUint64(b[offCreatorStart:], h.creatorStart)
	le.PutUint64(b[offCreated:], uint64(h.created))
	le.PutUint32(b[offSlotCount:], MaxSlots)
	for i, r := range h.regions {
		e := b[offRegions+i*regionEntrySize:]
		le.PutUint32(e[0:], r.Kind)
		le.PutUint64(e[8:], uint64(r.Offset))
		le.PutUint64(e[16:], uint64(r.Len))
	}
	le.PutUint32(b[offChecksum:], checksum(b))
	word64(b, offMagic).Store(Magic)
}

// readHeader validates the header page of a mapping of fileSize bytes and
// returns its content. Every field is checked; the file is untrusted.
func readHeader(op, path string, b []byte, fileSize int64) (*header, error) {
	le := binary.LittleEndian
	if fileSize < HeaderSize || len(b) < HeaderSize {
		return nil, refuse(op, path, ErrTruncated, "file is %d bytes, shorter than the %d-byte header", fileSize, HeaderSize)
	}
	if m := word64(b, offMagic).Load(); m != Magic {
		return nil, refuse(op, path, ErrBadMagic, "got %#016x, want %#016x", m, Magic)
	}
	if v := le.Uint32(b[offVersion:]); v != Version {
		return nil, refuse(op, path, ErrVersion, "layout version %d, this build reads %d", v, Version)
	}
	if hs := le.Uint32(b[offHeaderSize:]); hs != HeaderSize {
		return nil, refuse(op, path, ErrBadHeader, "header size %d, want %d", hs, HeaderSize)
	}
	h := &header{
		totalSize:    le.Uint64(b[offTotalSize:]),
		creatorPID:   le.Uint32(b[offCreatorPID:]),
		creatorStart: le.Uint64(b[offCreatorStart:]),
		created:      int64(le.Uint64(b[offCreated:])),
	}
	switch {
	case h.totalSize > uint64(fileSize):
		return nil, refuse(op, path, ErrTruncated, "header records %d bytes, file has %d", h.totalSize, fileSize)
	case h.totalSize < uint64(fileSize):
		return nil, refuse(op, path, ErrSizeMismatch, "header records %d bytes, file has %d", h.totalSize, fileSize)
	}
	if h.creatorPID == 0 || h.creatorPID > maxPID {
		return nil, refuse(op, path, ErrBadHeader, "creator pid %d out of range", h.creatorPID)
	}
	if h.creatorStart == 0 || h.creatorStart > 1<<(64-pidBits)-1 {
		return nil, refuse(op, path, ErrBadHeader, "creator start time %d out of range", h.creatorStart)
	}
	if h.created <= 0 {
		return nil, refuse(op, path, ErrBadHeader, "creation time %d is not a time", h.created)
	}
	if n := le.Uint32(b[offSlotCount:]); n != MaxSlots {
		return nil, refuse(op, path, ErrBadHeader, "slot count %d, want %d", n, MaxSlots)
	}
	if off, ok := firstNonZero(b, offReserved0, offRegions); !ok {
		return nil, refuse(op, path, ErrBadHeader, "reserved byte at offset %d is not zero", off)
	}
	n := le.Uint32(b[offRegionCount:])
	if n > MaxRegions {
		return nil, refuse(op, path, ErrBadRegion, "region count %d exceeds %d", n, MaxRegions)
	}
	h.regions = make([]Region, n)
	end := uint64(HeaderSize)
	for i := range MaxRegions {
		e := b[offRegions+i*regionEntrySize : offRegions+(i+1)*regionEntrySize]
		if i >= int(n) {
			if off, ok := firstNonZero(e, 0, regionEntrySize); !ok {
				return nil, refuse(op, path, ErrBadRegion, "unused region entry %d has data at byte %d", i, off)
			}
			continue
		}
		kind, rsv0 := le.Uint32(e[0:]), le.Uint32(e[4:])
		off, ln, rsv1 := le.Uint64(e[8:]), le.Uint64(e[16:]), le.Uint64(e[24:])
		switch {
		case rsv0 != 0 || rsv1 != 0:
			return nil, refuse(op, path, ErrBadRegion, "region %d has non-zero reserved fields", i)
		case off%RegionAlign != 0 || ln%RegionAlign != 0:
			return nil, refuse(op, path, ErrBadRegion, "region %d [%d, +%d) is not %d-byte aligned", i, off, ln, RegionAlign)
		case off < HeaderSize:
			return nil, refuse(op, path, ErrBadRegion, "region %d at offset %d overlaps the %d-byte header", i, off, HeaderSize)
		case off < end:
			return nil, refuse(op, path, ErrBadRegion, "region %d at offset %d overlaps the previous region ending at %d", i, off, end)
		case ln == 0 || ln > h.totalSize || off > h.totalSize-ln:
			return nil, refuse(op, path, ErrBadRegion, "region %d [%d, +%d) lies outside the %d-byte file", i, off, ln, h.totalSize)
		}
		end = off + ln
		h.regions[i] = Region{Kind: kind, Offset: int(off), Len: int(ln)}
	}
	if off, ok := firstNonZero(b, offReserved1, offSlots); !ok {
		return nil, refuse(op, path, ErrBadHeader, "reserved byte at offset %d is not zero", off)
	}
	for i := range MaxSlots {
		if err := checkSlot(b[offSlots+i*SlotSize : offSlots+(i+1)*SlotSize]); err != "" {
			return nil, refuse(op, path, ErrBadHeader, "liveness slot %d: %s", i, err)
		}
	}
	if off, ok := firstNonZero(b, offReserved2, HeaderSize); !ok {
		return nil, refuse(op, path, ErrBadHeader, "reserved byte at offset %d is not zero", off)
	}
	if got, want := le.Uint32(b[offChecksum:]), checksum(b); got != want {
		return nil, refuse(op, path, ErrChecksum, "stored %#08x, computed %#08x", got, want)
	}
	return h, nil
}

// checkSlot validates one liveness slot as it was found at open time and
// returns what is wrong with it, or "".
func checkSlot(s []byte) string {
	ident := word64(s, slotIdent).Load()
	if ident != 0 && ident&maxPID == 0 {
		return "holder identity has pid 0"
	}
	if f := word32(s, slotFlags).Load(); f&^flagParked != 0 {
		return "unknown flag bits set"
	}
	if off, ok := firstNonZero(s, slotReserved, SlotSize); !ok {
		return "reserved byte " + strconv.Itoa(off) + " is not zero"
	}
	return ""
}

// firstNonZero reports the first non-zero byte of b[from:to], or ok if none.
func firstNonZero(b []byte, from, to int) (int, bool) {
	for i := from; i < to; i++ {
		if b[i] != 0 {
			return i, false
		}
	}
	return 0, true
}

// word64 and word32 view an aligned word of shared memory as an atomic.
// They panic on a misaligned offset: every caller passes a layout constant
// or a validated, aligned region offset, so a misaligned one is a bug.
func word64(b []byte, off int) *atomic.Uint64 {
	if off%8 != 0 {
		panic("shm: misaligned 64-bit word at offset " + strconv.Itoa(off))
	}
	return (*atomic.Uint64)(unsafe.Pointer(&b[off : off+8][0]))
}

func word32(b []byte, off int) *atomic.Uint32 {
	if off%4 != 0 {
		panic("shm: misaligned 32-bit word at offset " + strconv.Itoa(off))
	}
	return (*atomic.Uint32)(unsafe.Pointer(&b[off : off+4][0]))
}
