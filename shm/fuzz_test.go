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

// FuzzOpen writes arbitrary contents to a segment file and opens it: Open
// must refuse or succeed, never panic, and a segment it accepts must be
// safe to inspect.
func FuzzOpen(f *testing.F) {
	dir := testDir(f)
	valid := validSegmentBytes(f, dir)
	f.Add(valid)
	f.Add(valid[:HeaderSize])
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
	opts := &Options{Dir: dir}
	path := SegmentPath("fuzz", opts)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
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
