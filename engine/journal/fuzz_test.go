package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// seedImages returns journal images for the fuzz corpora: whole, cut and
// damaged.
func seedImages(t testing.TB) [][]byte {
	data, want := buildJournal(t, 5)
	end := recordOffsets(want)[4] + recordSize(len(want[4].Payload))
	flipped := bytes.Clone(data[:end])
	flipped[recordOffsets(want)[2]+3] ^= 4
	return [][]byte{data[:end], data[:end-3], data[:end+40], flipped, data[:fileHeaderSize], {}}
}

// FuzzOpen opens arbitrary bytes as a journal. Open must return a journal
// whose records all verify, or a typed error leaving the file untouched;
// never panic or read out of bounds.
func FuzzOpen(f *testing.F) {
	for _, img := range seedImages(f) {
		f.Add(img)
	}
	// One file, rewritten by every execution: a directory per execution
	// (t.TempDir) makes ext4 directory lookups the bottleneck.
	path := filepath.Join(f.TempDir(), "j")
	f.Fuzz(func(t *testing.T, data []byte) {
		noErr(t, os.WriteFile(path, data, 0o600))
		j, err := Open(path, Options{ChunkSize: 4096})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotJournal) {
				t.Fatalf("untyped error: %v", err)
			}
			after, rerr := os.ReadFile(path)
			noErr(t, rerr)
			check(t, bytes.Equal(data, after), "a refused file was modified")
			return
		}
		rec := j.Recovery()
		var n uint64
		it := j.Iterate(j.FirstSeq())
		for it.Next() {
			n++
		}
		noErr(t, it.Err())
		equal(t, rec.Records, n)
		seq, err := j.Append(1, []byte("fuzz"))
		noErr(t, err)
		equal(t, rec.NextSeq, seq)
		noErr(t, j.Close())
		j, err = Open(path, Options{})
		noErr(t, err)
		equal(t, rec.Records+1, j.Recovery().Records)
		equal(t, 0, j.Recovery().TornBytes)
		noErr(t, j.Close())
	})
}

// FuzzDecodeRecord decodes a record at an arbitrary offset of arbitrary
// bytes; a record it accepts must re-encode to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, img := range seedImages(f) {
		f.Add(img, int64(fileHeaderSize))
	}
	f.Fuzz(func(t *testing.T, data []byte, off int64) {
		rec, next, flt := decodeRecord(data, off)
		if flt != faultNone {
			return
		}
		size := recordSize(len(rec.Payload))
		equal(t, off+size, next)
		enc := make([]byte, size)
		putRecord(enc, rec.Type, rec.Seq, rec.Payload)
		check(t, bytes.Equal(enc[:recordHeaderSize+len(rec.Payload)], data[off:off+recordHeaderSize+int64(len(rec.Payload))]), "re-encoding differs")
	})
}

// FuzzDecodeSnapshot decodes arbitrary bytes as a snapshot file.
func FuzzDecodeSnapshot(f *testing.F) {
	path, err := WriteSnapshot(f.TempDir(), 9, []byte("state"))
	noErr(f, err)
	good, err := os.ReadFile(path)
	noErr(f, err)
	f.Add(good)
	f.Add(good[:20])
	f.Fuzz(func(t *testing.T, data []byte) {
		seq, state, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		check(t, len(state) == len(data)-snapHeaderSize, "state length")
		_ = seq
	})
}

// FuzzVerify runs Open's verification over arbitrary bytes in memory (no
// file I/O, so it executes far faster than FuzzOpen): an error or a scan
// whose kept prefix re-verifies record by record.
func FuzzVerify(f *testing.F) {
	for _, img := range seedImages(f) {
		f.Add(img)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		firstSeq, _, res, err := verify(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotJournal) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		off, seq := int64(fileHeaderSize), firstSeq
		for off < res.end {
			rec, next, flt := decodeRecord(data, off)
			equal(t, faultNone, flt)
			equal(t, seq, rec.Seq)
			off, seq = next, seq+1
		}
		equal(t, res.end, off)
		equal(t, res.nextSeq, seq)
		check(t, res.end+res.torn <= int64(len(data)), "torn tail runs past the data")
	})
}
