package circuitbreaker

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// The State encoding, version 1, little-endian, fixed-size for a symbol
// count n (StateSize(n) bytes):
//
//	off       size  field
//	0         4     magic "CBST"
//	4         2     version (1)
//	6         2     reserved, zero
//	8         4     n, the number of symbols
//	12        4     market-wide levels tripped
//	16        8     At
//	24        16    market halt: resumes_at int64, active uint8 (0 or 1),
//	                cause uint8, 6 bytes of zero
//	40        40×n  per symbol: reference, open, last (int64 each), then its
//	                halt, laid out as the market's
//	40+40n    4     CRC-32C (Castagnoli) of bytes 0 to 40+40n
//	44+40n    4     zero
//
// The decoder refuses anything else: a wrong length, magic, version or
// checksum, a non-zero reserved or padding byte, and any field value that
// no Breaker could have written (see State).
const (
	stateMagic    uint32 = 'C' | 'B'<<8 | 'S'<<16 | 'T'<<24
	stateVersion  uint16 = 1
	stateHeader          = 40
	stateSymbol          = 40
	stateTrailer         = 8
	haltEncodeLen        = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// StateSize returns the length of the encoding of a State with symbols
// symbols.
func StateSize(symbols int) int { return stateHeader + stateSymbol*symbols + stateTrailer }

// AppendBinary appends s's encoding to b. A State that no Breaker could
// have taken is refused with a *StateError.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	if err := s.validate(); err != nil {
		return b, err
	}
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, stateMagic)
	b = binary.LittleEndian.AppendUint16(b, stateVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Symbols)))
	b = binary.LittleEndian.AppendUint32(b, uint32(s.LevelsTripped))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.At))
	b = appendHalt(b, &s.Market)
	for i := range s.Symbols {
		ss := &s.Symbols[i]
		b = binary.LittleEndian.AppendUint64(b, uint64(ss.Reference))
		b = binary.LittleEndian.AppendUint64(b, uint64(ss.Open))
		b = binary.LittleEndian.AppendUint64(b, uint64(ss.Last))
		b = appendHalt(b, &ss.Halt)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	return binary.LittleEndian.AppendUint32(b, 0), nil
}

func appendHalt(b []byte, h *HaltState) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(h.ResumesAt))
	active := byte(0)
	if h.Active {
		active = 1
	}
	return append(b, active, byte(h.Cause), 0, 0, 0, 0, 0, 0)
}

// MarshalBinary returns s's encoding; see AppendBinary.
func (s *State) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, StateSize(len(s.Symbols))))
}

// UnmarshalBinary decodes data, which may come from anywhere (shared memory
// a dead process wrote, say), into s, reusing s.Symbols' storage. It checks
// every field and refuses bad input with a *StateError naming the field,
// leaving s in an unspecified state.
func (s *State) UnmarshalBinary(data []byte) error {
	le := binary.LittleEndian
	if len(data) < StateSize(0) {
		return stateErr("length", "%d bytes, want at least %d", len(data), StateSize(0))
	}
	if m := le.Uint32(data); m != stateMagic {
		return stateErr("magic", "%#08x, want %#08x", m, stateMagic)
	}
	if v := le.Uint16(data[4:]); v != stateVersion {
		return stateErr("version", "%d, want %d", v, stateVersion)
	}
	if r := le.Uint16(data[6:]); r != 0 {
		return stateErr("reserved", "%#04x, want zero", r)
	}
	n := le.Uint32(data[8:])
	if n > maxSymbols {
		return stateErr("symbols", "%d, want at most %d", n, maxSymbols)
	}
	if want := StateSize(int(n)); len(data) != want {
		return stateErr("length", "%d bytes, want %d for %d symbols", len(data), want, n)
	}
	body := len(data) - stateTrailer
	if sum, want := le.Uint32(data[body:]), crc32.Checksum(data[:body], castagnoli); sum != want {
		return stateErr("checksum", "%#08x, want %#08x over the bytes before it", sum, want)
	}
	if p := le.Uint32(data[body+4:]); p != 0 {
		return stateErr("trailer", "padding %#08x, want zero", p)
	}
	s.LevelsTripped = int(int64(le.Uint32(data[12:])))
	s.At = int64(le.Uint64(data[16:]))
	if err := decodeHalt(data[24:], &s.Market, -1); err != nil {
		return err
	}
	s.Symbols = s.Symbols[:0]
	for i := range int(n) {
		d := data[stateHeader+i*stateSymbol:]
		ss := SymbolState{Reference: int64(le.Uint64(d)), Open: int64(le.Uint64(d[8:])), Last: int64(le.Uint64(d[16:]))}
		if err := decodeHalt(d[24:], &ss.Halt, i); err != nil {
			return err
		}
		s.Symbols = append(s.Symbols, ss)
	}
	return s.validate()
}

// decodeHalt decodes the halt of symbol sym, or the market's for sym -1.
func decodeHalt(d []byte, h *HaltState, sym int) error {
	h.ResumesAt = int64(binary.LittleEndian.Uint64(d))
	switch d[8] {
	case 0:
		h.Active = false
	case 1:
		h.Active = true
	default:
		return stateErr(haltField(sym)+".active", "%d, want 0 or 1", d[8])
	}
	h.Cause = Cause(d[9])
	for _, c := range d[10:haltEncodeLen] {
		if c != 0 {
			return stateErr(haltField(sym), "padding byte %#02x, want zero", c)
		}
	}
	return nil
}

func haltField(sym int) string {
	if sym < 0 {
		return "market"
	}
	return fmt.Sprintf("symbols[%d].halt", sym)
}
