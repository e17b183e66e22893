package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestTornTailEveryOffset cuts the last record at every byte offset, both by
// truncating the file and by zeroing the rest of the record in place (a
// write that stopped inside preallocated space), and checks that exactly the
// records before it survive and that the journal is appendable afterwards.
func TestTornTailEveryOffset(t *testing.T) {
	const n = 6
	data, want := buildJournal(t, n)
	offs := recordOffsets(want)
	last := offs[n-1]
	lastEnd := last + recordSize(len(want[n-1].Payload))
	if len(want[n-1].Payload)%recordAlign == 0 {
		t.Fatal("test needs a last record with padding")
	}
	for _, mode := range []string{"truncate", "zero-fill"} {
		for cut := last; cut <= lastEnd; cut++ {
			var img []byte
			if mode == "truncate" {
				img = bytes.Clone(data[:cut])
			} else {
				img = bytes.Clone(data)
				clear(img[cut:lastEnd])
			}
			keep := n - 1
			if cut == lastEnd || (mode == "zero-fill" && allZero(data[cut:lastEnd])) {
				// Zeroing only the padding leaves the record whole.
				keep = n
			}
			// The bytes dropped are those of the cut record up to its last non-zero one.
			torn := int64(0)
			if keep == n-1 {
				for i := last; i < cut; i++ {
					if data[i] != 0 {
						torn = i + 1 - last
					}
				}
			}
			path := writeFile(t, img)
			j, err := Open(path, Options{ChunkSize: 4096})
			if err != nil {
				t.Fatalf("%s at %d: %v", mode, cut, err)
			}
			rec := j.Recovery()
			equal(t, uint64(keep), rec.Records, "%s at %d", mode, cut)
			equal(t, torn, rec.TornBytes, "%s at %d", mode, cut)
			requireRecords(t, want[:keep], readAll(t, j, 1))
			// The torn bytes are gone: a new record lands on clean space and reopens.
			seq, err := j.Append(3, []byte("next"))
			noErr(t, err)
			equal(t, uint64(keep+1), seq)
			noErr(t, j.Close())
			j = openT(t, path, Options{})
			equal(t, uint64(keep+1), j.Recovery().Records, "%s at %d after re-append", mode, cut)
			equal(t, 0, j.Recovery().TornBytes)
			noErr(t, j.Close())
		}
	}
}

// TestFlippedBit flips one bit in a record and checks the policy: damage with
// a verified record after it is refused; damage in the last record is a torn
// tail unless a flush covered it.
func TestFlippedBit(t *testing.T) {
	const n = 8
	tests := []struct {
		name   string
		record int  // index of the damaged record
		byteAt int  // offset inside the record
		synced bool // Sync under SyncBatch after the appends
		refuse bool
	}{
		{name: "middle crc", record: 3, byteAt: 0, refuse: true},
		{name: "middle length", record: 3, byteAt: 5, refuse: true},
		{name: "middle length high bit", record: 3, byteAt: 7, refuse: true},
		{name: "middle seq", record: 3, byteAt: 8, refuse: true},
		{name: "middle type", record: 3, byteAt: 16, refuse: true},
		{name: "middle reserved", record: 3, byteAt: 19, refuse: true},
		{name: "middle payload", record: 3, byteAt: recordHeaderSize + 1, refuse: true},
		{name: "first record", record: 0, byteAt: recordHeaderSize, refuse: true},
		{name: "last but one", record: n - 2, byteAt: 2, refuse: true},
		{name: "last record payload", record: n - 1, byteAt: recordHeaderSize + 2, refuse: false},
		{name: "last record length", record: n - 1, byteAt: 4, refuse: false},
		{name: "last record synced", record: n - 1, byteAt: recordHeaderSize + 2, synced: true, refuse: true},
		{name: "middle record synced", record: 3, byteAt: 1, synced: true, refuse: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			opts := Options{ChunkSize: 4096}
			if tt.synced {
				opts.Sync = SyncBatch
			}
			j := openT(t, path, opts)
			want := appendN(t, j, 1, n)
			if len(want[tt.record].Payload) <= tt.byteAt-recordHeaderSize {
				t.Fatalf("record %d payload too short for the flip", tt.record)
			}
			noErr(t, j.Sync())
			noErr(t, j.Close())
			data, err := os.ReadFile(path)
			noErr(t, err)
			off := recordOffsets(want)[tt.record]
			data[off+int64(tt.byteAt)] ^= 0x10
			noErr(t, os.WriteFile(path, data, 0o600))

			j, err = Open(path, Options{})
			if !tt.refuse {
				noErr(t, err)
				defer j.Close()
				equal(t, uint64(n-1), j.Recovery().Records)
				check(t, j.Recovery().TornBytes > 0, "torn bytes reported")
				requireRecords(t, want[:n-1], readAll(t, j, 1))
				return
			}
			errIs(t, err, ErrCorrupt)
			var cerr *CorruptError
			check(t, errors.As(err, &cerr))
			equal(t, off, cerr.Offset)
			equal(t, want[tt.record].Seq, cerr.Seq)
			equal(t, path, cerr.Path)
			if !tt.synced || tt.record < n-1 {
				equal(t, recordOffsets(want)[tt.record+1], cerr.NextOffset, "first verified record after the damage")
				equal(t, want[tt.record+1].Seq, cerr.NextSeq)
			}
			after, err := os.ReadFile(path)
			noErr(t, err)
			check(t, bytes.Equal(data, after), "a refused journal is left untouched")
		})
	}
}

// TestOutOfOrderRecord: a record whose CRC verifies but whose sequence
// number is wrong is never a torn write, even at the end.
func TestOutOfOrderRecord(t *testing.T) {
	data, want := buildJournal(t, 3)
	end := recordOffsets(want)[2] + recordSize(len(want[2].Payload))
	rec := make([]byte, recordSize(5))
	putRecord(rec, 1, 9, []byte("stale"))
	copy(data[end:], rec)
	_, err := Open(writeFile(t, data), Options{})
	errIs(t, err, ErrCorrupt)
	var cerr *CorruptError
	check(t, errors.As(err, &cerr))
	equal(t, end, cerr.Offset)
	equal(t, uint64(4), cerr.Seq)
}

// TestZeroedMiddle: a zeroed block (a lost page) with records after it is
// corruption, not the end of data.
func TestZeroedMiddle(t *testing.T) {
	data, want := buildJournal(t, 6)
	offs := recordOffsets(want)
	clear(data[offs[2]:offs[3]])
	_, err := Open(writeFile(t, data), Options{})
	errIs(t, err, ErrCorrupt)
}

// TestSyncedDataCutOff: a file shorter than its synced watermark lost
// records that had been flushed: refused.
func TestSyncedDataCutOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{Sync: SyncBatch, ChunkSize: 4096})
	want := appendN(t, j, 1, 5)
	noErr(t, j.Sync())
	noErr(t, j.Close())
	data, err := os.ReadFile(path)
	noErr(t, err)
	_, err = Open(writeFile(t, data[:recordOffsets(want)[4]]), Options{})
	errIs(t, err, ErrCorrupt)
}

func TestScanClassifiesTail(t *testing.T) {
	data, want := buildJournal(t, 4)
	end := recordOffsets(want)[3] + recordSize(len(want[3].Payload))
	tests := []struct {
		name    string
		mutate  func(b []byte) []byte
		records uint64
		torn    int64
		corrupt bool
	}{
		{"clean with zero tail", func(b []byte) []byte { return b }, 4, 0, false},
		{"clean at exact end", func(b []byte) []byte { return b[:end] }, 4, 0, false},
		{"few zero bytes after end", func(b []byte) []byte { return b[:end+5] }, 4, 0, false},
		{"garbage word after end", func(b []byte) []byte { b[end+100] = 7; return b }, 4, 101, false},
		{"partial header", func(b []byte) []byte { b[end] = 1; b[end+1] = 2; return b[:end+10] }, 4, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.mutate(bytes.Clone(data))
			res, cerr := scan(img, 1, fileHeaderSize)
			equal(t, tt.corrupt, cerr != nil, "corrupt")
			equal(t, tt.records, res.records)
			equal(t, tt.torn, res.torn)
		})
	}
}

// TestWriterLimit: the writer raises the file header's limit before it
// writes past it, and Open's search for stray records after the end of
// the log stops there. A verified record past the limit is not the
// writer's and is ignored; below it, it is corruption in the middle of the
// log; with the limit pair broken, the search reads the whole file again.
func TestWriterLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	want := appendN(t, j, 1, 3000) // several limit steps
	noErr(t, j.Close())
	data, err := os.ReadFile(path)
	noErr(t, err)
	offs := recordOffsets(want)
	end := offs[len(offs)-1] + recordSize(len(want[len(want)-1].Payload))
	limit := zeroFrom(data)
	check(t, limit >= end && limit < int64(len(data)), "limit %d: want at or past the data's end %d, below the file's %d", limit, end, len(data))

	// A stray copy of a record with a later sequence number, where the
	// log's next record would be if the one at the end had been damaged.
	stray := func(img []byte, at int64) {
		p := want[0].Payload
		putRecord(img[at:at+recordSize(len(p))], want[0].Type, uint64(len(want)+2), p)
	}
	tests := []struct {
		name    string
		at      int64
		broken  bool
		corrupt bool
	}{
		{"stray record below the limit", end + 512, false, true},
		{"stray record past the limit", limit + 4096, false, false},
		{"stray record past a broken limit", limit + 4096, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := bytes.Clone(data)
			stray(img, tt.at)
			clear(img[offs[len(offs)-1]:end]) // the last record lost: the log stops there
			if tt.broken {
				img[offLimitNot] ^= 1
			}
			j, err := Open(writeFile(t, img), Options{})
			if tt.corrupt {
				errIs(t, err, ErrCorrupt)
				return
			}
			noErr(t, err)
			equal(t, uint64(len(want)-1), j.Recovery().Records)
			noErr(t, j.Close())
		})
	}
}
