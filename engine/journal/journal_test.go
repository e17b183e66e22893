package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAppendReopenIterate(t *testing.T) {
	tests := []struct {
		name      string
		n, more   int
		chunk     int64
		firstSeq  uint64
		bigRecord int // payload size of one extra record spanning chunks; 0: none
	}{
		{name: "empty", n: 0, more: 0},
		{name: "one", n: 1, more: 1},
		{name: "many in one chunk", n: 50, more: 10},
		{name: "growth across chunks", n: 500, more: 100, chunk: 4096},
		{name: "record larger than a chunk", n: 3, more: 2, chunk: 4096, bigRecord: 10000},
		{name: "first seq after snapshot", n: 20, more: 5, firstSeq: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			opts := Options{ChunkSize: tt.chunk, FirstSeq: tt.firstSeq}
			j := openT(t, path, opts)
			first := uint64(1)
			if tt.firstSeq != 0 {
				first = tt.firstSeq
			}
			check(t, j.Recovery().Created)
			equal(t, first, j.FirstSeq())
			want := appendN(t, j, 1, tt.n)
			if tt.bigRecord > 0 {
				p := make([]byte, tt.bigRecord)
				p[0], p[len(p)-1] = 1, 2
				seq, err := j.Append(9, p)
				noErr(t, err)
				want = append(want, Record{Seq: seq, Type: 9, Payload: p})
			}
			for i, r := range want {
				equal(t, first+uint64(i), r.Seq)
			}
			requireRecords(t, want, readAll(t, j, first))
			noErr(t, j.Close())

			j = openT(t, path, Options{ChunkSize: tt.chunk, FirstSeq: 7}) // FirstSeq ignored: the header wins
			rec := j.Recovery()
			check(t, !rec.Created)
			equal(t, uint64(len(want)), rec.Records)
			equal(t, first, rec.FirstSeq)
			equal(t, first+uint64(len(want)), rec.NextSeq)
			equal(t, 0, rec.TornBytes)
			requireRecords(t, want, readAll(t, j, first))

			want = append(want, appendN(t, j, 1000, tt.more)...)
			noErr(t, j.Close())
			j = openT(t, path, opts)
			defer j.Close()
			requireRecords(t, want, readAll(t, j, first))
			if len(want) > 2 {
				mid := len(want) / 2
				requireRecords(t, want[mid:], readAll(t, j, want[mid].Seq))
			}
			equal(t, 0, len(readAll(t, j, j.NextSeq())))
		})
	}
}

func TestIterateBeforeFirstSeq(t *testing.T) {
	j := openT(t, filepath.Join(t.TempDir(), "j"), Options{FirstSeq: 5})
	defer j.Close()
	appendN(t, j, 1, 3)
	it := j.Iterate(4)
	check(t, !it.Next())
	errIs(t, it.Err(), ErrGap)
}

func TestIteratorSeesLaterAppends(t *testing.T) {
	j := openT(t, filepath.Join(t.TempDir(), "j"), Options{})
	defer j.Close()
	want := appendN(t, j, 1, 2)
	it := j.Iterate(1)
	check(t, it.Next())
	want = append(want, appendN(t, j, 3, 1)...)
	check(t, it.Next())
	check(t, it.Next())
	equal(t, want[2].Seq, it.Record().Seq)
	check(t, !it.Next())
	noErr(t, it.Err())
}

func TestAppendErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	_, err := j.Append(1, make([]byte, MaxPayload+1))
	errIs(t, err, ErrTooLarge)
	seq, err := j.Append(1, make([]byte, 8))
	noErr(t, err)
	equal(t, uint64(1), seq, "a rejected append consumes no sequence number")
	noErr(t, j.Close())
	errIs(t, j.Close(), ErrClosed)
	_, err = j.Append(1, nil)
	errIs(t, err, ErrClosed)
	errIs(t, j.Sync(), ErrClosed)
	errIs(t, j.Flush(), ErrClosed)
	it := j.Iterate(1)
	check(t, !it.Next())
	errIs(t, it.Err(), ErrClosed)
}

func TestOptionsRejected(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{{Sync: 7}, {Interval: -1}, {ChunkSize: -4096}} {
		_, err := Open(filepath.Join(dir, "j"), o)
		check(t, err != nil, "options %+v accepted", o)
	}
}

func TestSecondWriterLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{})
	_, err := Open(path, Options{})
	errIs(t, err, ErrLocked)
	noErr(t, j.Close())
	j = openT(t, path, Options{})
	noErr(t, j.Close())
}

func TestRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	j := openT(t, target, Options{})
	noErr(t, j.Close())
	link := filepath.Join(dir, "link")
	noErr(t, os.Symlink(target, link))
	_, err := Open(link, Options{})
	check(t, err != nil, "symlink opened")
}

// TestReopenAfterCrash reopens a journal whose writer never closed it: the
// file is taken as the page cache holds it at an arbitrary instant (what a
// successor sees after a kill -9), including mid-append.
func TestReopenAfterCrash(t *testing.T) {
	for _, pol := range []SyncPolicy{SyncNone, SyncBatch, SyncInterval} {
		t.Run(pol.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			j := openT(t, path, Options{Sync: pol, ChunkSize: 4096})
			defer j.Close()
			want := appendN(t, j, 1, 100)
			noErr(t, j.Sync())
			want = append(want, appendN(t, j, 101, 30)...) // not synced

			crashed, err := os.ReadFile(path) // the writer is still live: no Close, no flush
			noErr(t, err)
			k := openT(t, writeFile(t, crashed), Options{Sync: pol})
			requireRecords(t, want, readAll(t, k, 1))
			equal(t, 0, k.Recovery().TornBytes)
			noErr(t, k.Close())

			// The crash hits mid-append: the next record is half copied.
			end := j.Recovery().End
			for _, r := range want {
				end += recordSize(len(r.Payload))
			}
			half := make([]byte, recordSize(40))
			putRecord(half, 1, uint64(len(want)+1), bytes.Repeat([]byte{0xAB}, 40))
			copy(crashed[end:], half[:len(half)/2])
			k = openT(t, writeFile(t, crashed), Options{Sync: pol})
			defer k.Close()
			requireRecords(t, want, readAll(t, k, 1))
			equal(t, int64(len(half)/2), k.Recovery().TornBytes)
			seq, err := k.Append(1, []byte("after"))
			noErr(t, err)
			equal(t, uint64(len(want)+1), seq)
		})
	}
}

func TestNotAJournal(t *testing.T) {
	data, _ := buildJournal(t, 3)
	badCRC := append([]byte(nil), data...)
	badCRC[offFirstSeq] ^= 1
	badVersion := append([]byte(nil), data...)
	badVersion[offVersion] = 9
	badWatermark := append([]byte(nil), data...)
	badWatermark[offDurable+3] = 1
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"short", data[:10], ErrNotJournal},
		{"header only partially", data[:fileHeaderSize-1], ErrNotJournal},
		{"foreign", []byte("this is a text file and not a journal at all, not even close to one"), ErrNotJournal},
		{"version", badVersion, ErrNotJournal},
		{"header checksum", badCRC, ErrCorrupt},
		{"watermark beyond file", badWatermark, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.data)
			_, err := Open(path, Options{})
			errIs(t, err, tt.want)
			after, rerr := os.ReadFile(path)
			noErr(t, rerr)
			check(t, bytes.Equal(tt.data, after), "a refused file is left untouched")
		})
	}
}

func TestTruncatedToZero(t *testing.T) {
	data, _ := buildJournal(t, 10)
	path := writeFile(t, data[:0])
	j := openT(t, path, Options{})
	defer j.Close()
	rec := j.Recovery()
	check(t, rec.Created)
	equal(t, 0, rec.Records)
	equal(t, 0, len(readAll(t, j, 1)))
	from, err := j.ReplayStart(nil)
	noErr(t, err)
	equal(t, uint64(1), from)
	_, err = j.ReplayStart(&Snapshot{Seq: 5, Path: "s"})
	errIs(t, err, ErrSnapshotAhead, "a snapshot proves the emptied journal lost records")
}

func TestCorruptErrorMessage(t *testing.T) {
	e := &CorruptError{Path: "/x/j", Offset: 152, Seq: 3, Reason: "checksum mismatch", NextOffset: 304, NextSeq: 4}
	check(t, errors.Is(e, ErrCorrupt))
	msg := e.Error()
	for _, s := range []string{"/x/j", "offset 152", "sequence 3", "checksum mismatch", "offset 304", "not a torn tail", "Restore"} {
		check(t, strings.Contains(msg, s), "message lacks %q: %s", s, msg)
	}
}

// TestIterateFromAnywhere starts iterators at sequence numbers around the
// offsets a Journal remembers (every markEvery records), with those marks
// made by Append and, after a reopen, by Open's scan.
func TestIterateFromAnywhere(t *testing.T) {
	const first, n = 500, 5*markEvery + 3
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{ChunkSize: 4096, FirstSeq: first})
	want := appendN(t, j, 1, n)
	froms := []uint64{first, first + 1, first + markEvery - 1, first + markEvery, first + markEvery + 1,
		first + 3*markEvery + 17, first + n - 1, first + n, first + n + 100}
	fromEach := func(j *Journal, when string) {
		for _, from := range froms {
			got := readAll(t, j, from)
			k := min(int(from-first), n)
			if len(got) != n-k {
				t.Fatalf("%s: Iterate(%d) gave %d records, want %d", when, from, len(got), n-k)
			}
			requireRecords(t, want[k:], got)
		}
	}
	fromEach(j, "after appends")
	noErr(t, j.Close())
	j = openT(t, path, Options{})
	defer j.Close()
	fromEach(j, "after reopen")
}
