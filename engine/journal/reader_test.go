package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// readerAll iterates r from seq from and copies every record.
func readerAll(t testing.TB, r *Reader, from uint64) []Record {
	t.Helper()
	return collect(t, r.Iterate(from))
}

// TestReaderFollowsWriter reads a journal while its writer holds it open
// and appends, across file growth, and checks that the reader takes no
// lock and leaves the file as it found it.
func TestReaderFollowsWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{ChunkSize: 4096, Sync: SyncBatch})
	want := appendN(t, j, 1, 10)

	r, err := OpenReader(path)
	noErr(t, err)
	defer r.Close()
	equal(t, uint64(1), r.FirstSeq())
	requireRecords(t, want, readerAll(t, r, 1))

	// One iterator keeps going as the writer appends and grows the file.
	it := r.Iterate(5)
	for range 6 {
		check(t, it.Next(), "record before the tail")
	}
	check(t, !it.Next(), "tail")
	noErr(t, it.Err())
	want = append(want, appendN(t, j, 11, 300)...) // several 4 KiB chunks
	noErr(t, j.Sync())
	var got []Record
	for it.Next() {
		rec := it.Record()
		rec.Payload = bytes.Clone(rec.Payload)
		got = append(got, rec)
	}
	noErr(t, it.Err())
	requireRecords(t, want[10:], got)
	requireRecords(t, want[7:], readerAll(t, r, 8))

	// The reader holds no lock: the writer closes and a successor opens.
	before, err := os.ReadFile(path)
	noErr(t, err)
	noErr(t, j.Close())
	j2, err := Open(path, Options{ChunkSize: 4096})
	noErr(t, err)
	defer j2.Close()
	after, err := os.ReadFile(path)
	noErr(t, err)
	check(t, bytes.Equal(before, after), "the reader changed the file")
	requireRecords(t, want, readerAll(t, r, 1))
	errIs(t, r.Iterate(0).Err(), ErrGap)
}

// TestReaderConcurrentWriter has a writer goroutine append while the reader
// polls, the way a restarted participant reads the coordinator's journal.
func TestReaderConcurrentWriter(t *testing.T) {
	const n = 3000
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{ChunkSize: 4096})
	appendN(t, j, 1, 1)
	r, err := OpenReader(path)
	noErr(t, err)
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		for i := 2; i <= n; i++ {
			if _, err := j.Append(uint16(i%5), testPayload(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	seen := 0
	it := r.Iterate(1)
	for seen < n {
		for it.Next() {
			rec := it.Record()
			seen++
			equal(t, uint64(seen), rec.Seq)
			equal(t, uint16(seen%5), rec.Type, "record %d type", seen)
			check(t, bytes.Equal(testPayload(seen), rec.Payload), "record %d payload", seen)
		}
		noErr(t, it.Err())
	}
	noErr(t, <-done)
	noErr(t, j.Close())
}

// TestReaderTailAndDamage checks that a record cut at every offset is the
// tail, not an error, and is left in the file; that damage a verified
// record or the synced watermark proves is a *CorruptError; and that a
// file that shrinks under the reader is ErrShrunk, not a crash.
func TestReaderTailAndDamage(t *testing.T) {
	const n = 6
	data, want := buildJournal(t, n)
	offs := recordOffsets(want)
	last := offs[n-1]
	for cut := last; cut < last+recordHeaderSize+int64(len(want[n-1].Payload)); cut++ {
		img := bytes.Clone(data)
		clear(img[cut:])
		img[cut] = 0xff // a stray byte where the record stops
		path := writeFile(t, img)
		r, err := OpenReader(path)
		noErr(t, err)
		requireRecords(t, want[:n-1], readerAll(t, r, 1))
		noErr(t, r.Close())
		got, err := os.ReadFile(path)
		noErr(t, err)
		check(t, bytes.Equal(img, got), "cut at %d: the reader changed the file", cut)
	}

	// A damaged record with a verified one after it.
	img := bytes.Clone(data)
	img[offs[2]+recordHeaderSize] ^= 0x40
	r, err := OpenReader(writeFile(t, img))
	noErr(t, err)
	it := r.Iterate(1)
	for it.Next() {
	}
	cerr, ok := errors.AsType[*CorruptError](it.Err())
	check(t, ok, "want a *CorruptError, got %v", it.Err())
	equal(t, offs[2], cerr.Offset)
	equal(t, offs[3], cerr.NextOffset)
	noErr(t, r.Close())

	// A damaged last record below the synced watermark.
	img = bytes.Clone(data)
	binary.LittleEndian.PutUint64(img[offDurable:], uint64(offs[n-1]+recordSize(len(want[n-1].Payload))))
	img[offs[n-1]+recordHeaderSize] ^= 0x40
	r, err = OpenReader(writeFile(t, img))
	noErr(t, err)
	it = r.Iterate(1)
	for it.Next() {
	}
	errIs(t, it.Err(), ErrCorrupt)
	noErr(t, r.Close())

	// A writer's Open truncates a torn tail pages beyond the records while
	// the reader has the longer file mapped: the reader maps it again.
	img = bytes.Clone(data)
	img = append(img, make([]byte, 3*os.Getpagesize())...)
	img[len(img)-1] = 1
	putLimit(img, int64(len(img))) // the writer had written out there
	path := writeFile(t, img)
	r, err = OpenReader(path)
	noErr(t, err)
	it = r.Iterate(1)
	check(t, it.Next(), "first record")
	j, err := Open(path, Options{ChunkSize: 4096})
	noErr(t, err)
	check(t, j.Recovery().TornBytes > 0, "the writer truncated nothing")
	// Payloads alias the mapping, which Next replaces: copy them.
	var got []Record
	for ok := true; ok; ok = it.Next() {
		rec := it.Record()
		rec.Payload = bytes.Clone(rec.Payload)
		got = append(got, rec)
	}
	noErr(t, it.Err())
	requireRecords(t, want, got)
	noErr(t, j.Close())
	noErr(t, r.Close())
}

// TestReaderShrunk truncates the file below the iterator's offset behind
// the reader's back: the next Next touches a page past the end of the file
// and reports ErrShrunk instead of dying of SIGBUS.
func TestReaderShrunk(t *testing.T) {
	data, want := buildJournal(t, 200)
	offs := recordOffsets(want)
	k := 0
	for offs[k] < int64(2*os.Getpagesize()) {
		k++
	}
	path := writeFile(t, data)
	r, err := OpenReader(path)
	noErr(t, err)
	defer r.Close()
	it := r.Iterate(1)
	for range k {
		check(t, it.Next(), "record before the cut")
	}
	noErr(t, os.Truncate(path, fileHeaderSize))
	check(t, !it.Next(), "a record past the end of the file")
	errIs(t, it.Err(), ErrShrunk)
}

func TestOpenReaderRefuses(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenReader(filepath.Join(dir, "missing"))
	errIs(t, err, os.ErrNotExist)
	_, err = OpenReader(writeFile(t, []byte("short")))
	errIs(t, err, ErrNotJournal)
	data, _ := buildJournal(t, 1)
	data[offFirstSeq] ^= 1
	_, err = OpenReader(writeFile(t, data))
	errIs(t, err, ErrCorrupt)
	link := filepath.Join(dir, "link")
	noErr(t, os.Symlink(writeFile(t, data), link))
	_, err = OpenReader(link)
	check(t, err != nil, "opened a journal through a symlink")
}
