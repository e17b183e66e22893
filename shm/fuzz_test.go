package shm

import (
	"os"
	"testing"
)

// validSegmentBytes returns the file of a freshly created segment with the
// test regions.
func validSegmentBytes(f *testing.F, dir string) []byte {
	s, err := Create("seed", testRegions, &Options{Dir: dir})
	if err != nil {
		f.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(s.Path())
	if err != nil {
		f.Fatal(err)
	}
	os.Remove(s.Path())
	return b
}

// FuzzOpen feeds arbitrary segment files to Open: raw contents when raw is
// not empty, otherwise a valid segment's file with patch written at off and
// then cut or extended by grow bytes (small inputs reach deep into the
// header checks; Go's fuzzer is slow on multi-kilobyte inputs). Open must
// refuse or succeed, never panic, and a segment it accepts must be safe to
// inspect.
func FuzzOpen(f *testing.F) {
	dir := testDir(f)
	valid := validSegmentBytes(f, dir)
	f.Add([]byte{}, uint16(0), []byte{}, int16(0))
	f.Add([]byte{}, uint16(offVersion), []byte{2}, int16(0))
	f.Add([]byte{}, uint16(offRegions+8), []byte{0, 0x10}, int16(0))
	f.Add([]byte{}, uint16(offSlots), []byte{1, 0, 0, 0, 0, 0, 0, 1}, int16(0))
	f.Add([]byte{}, uint16(0), []byte{}, int16(-64))
	f.Add([]byte("CCSHMSEG"), uint16(0), []byte{}, int16(0))
	opts := &Options{Dir: dir}
	path := SegmentPath("fuzz", opts)
	f.Fuzz(func(t *testing.T, raw []byte, off uint16, patch []byte, grow int16) {
		data := raw
		if len(raw) == 0 {
			data = append([]byte(nil), valid...)
			if o := int(off) % len(data); len(patch) > 0 {
				copy(data[o:], patch)
			}
			if n := len(data) + int(grow); n >= 0 {
				data = append(data, make([]byte, max(int(grow), 0))...)[:n]
			}
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		s, err := Open("fuzz", opts)
		if err != nil {
			return
		}
		defer s.Close()
		total := HeaderSize
		for i, r := range s.Regions() {
			if r.Offset < HeaderSize || r.Offset+r.Len > s.Size() || len(s.Region(i)) != r.Len {
				t.Fatalf("accepted region %d %+v outside a %d-byte segment", i, r, s.Size())
			}
			total += r.Len
		}
		if total > s.Size() {
			t.Fatalf("accepted regions of %d bytes in a %d-byte segment", total, s.Size())
		}
		for i := range MaxSlots {
			p, err := s.Watch(i)
			if err != nil {
				t.Fatal(err)
			}
			p.State()
			p.Close()
		}
	})
}

// FuzzLinkRx writes arbitrary bytes over the creator→opener ring of a
// mapped link segment (control block and data), then opens the link as the
// other side and reads and writes through it: corrupt ring memory must give
// errors, never a panic or an out-of-bounds access.
func FuzzLinkRx(f *testing.F) {
	dir := testDir(f)
	opts := &Options{Dir: dir}
	const capacity = 256
	seed, err := CreateLink("seed", capacity, opts)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 5 {
		seed.Tx().TryWrite(uint16(i), []byte("record payload")[:i*3])
	}
	f.Add(append([]byte(nil), seed.Segment().Region(0)...))
	seed.Close()
	seed.Unlink()
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := CreateLink("fuzz", capacity, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Unlink()
		ring := l.Segment().Region(0)
		copy(ring, data)
		o, err := OpenLink("fuzz", capacity, opts)
		if err != nil {
			l.Close()
			return
		}
		defer o.Close()
		l.Close()
		var payload [capacity]byte
		for range 64 {
			n, err := o.Rx().Read(0, func(_ uint16, p []byte) {
				if len(p) > capacity {
					t.Fatalf("record of %d bytes from a %d-byte ring", len(p), capacity)
				}
				copy(payload[:], p)
			})
			if err != nil || n == 0 {
				break
			}
		}
		o.Tx().TryWrite(1, payload[:8])
	})
}
