package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// testPayload is a deterministic payload of varied length (0..67 bytes, so
// padding varies) for record i.
func testPayload(i int) []byte {
	n := (i * 13) % 68
	p := make([]byte, n)
	for k := range p {
		p[k] = byte(i*7 + k + 1)
	}
	return p
}

func openT(t testing.TB, path string, opts Options) *Journal {
	t.Helper()
	j, err := Open(path, opts)
	noErr(t, err)
	return j
}

// appendN appends records first..first+n-1 of testPayload and returns what
// was written.
func appendN(t testing.TB, j *Journal, first, n int) []Record {
	t.Helper()
	var recs []Record
	for i := first; i < first+n; i++ {
		p := testPayload(i)
		typ := uint16(i % 5)
		seq, err := j.Append(typ, p)
		noErr(t, err)
		recs = append(recs, Record{Seq: seq, Type: typ, Payload: p})
	}
	return recs
}

// readAll iterates from seq from and copies every record.
func readAll(t testing.TB, j *Journal, from uint64) []Record {
	t.Helper()
	return collect(t, j.Iterate(from))
}

// collect copies every record an iterator (a Journal's or a Reader's)
// yields, and fails t on its error.
func collect(t testing.TB, it interface {
	Next() bool
	Record() Record
	Err() error
}) []Record {
	t.Helper()
	var recs []Record
	for it.Next() {
		r := it.Record()
		r.Payload = bytes.Clone(r.Payload)
		recs = append(recs, r)
	}
	noErr(t, it.Err())
	return recs
}

func requireRecords(t testing.TB, want, got []Record) {
	t.Helper()
	equal(t, len(want), len(got), "record count")
	for i := range want {
		equal(t, want[i].Seq, got[i].Seq, "record %d seq", i)
		equal(t, want[i].Type, got[i].Type, "record %d type", i)
		check(t, bytes.Equal(want[i].Payload, got[i].Payload), "record %d payload", i)
	}
}

// recordOffsets returns the byte offset of each record in want, laid out
// from the file header on.
func recordOffsets(want []Record) []int64 {
	offs := make([]int64, len(want))
	off := int64(fileHeaderSize)
	for i, r := range want {
		offs[i] = off
		off += recordSize(len(r.Payload))
	}
	return offs
}

// buildJournal writes n records with sync none, closes the journal and
// returns the file image and the records.
func buildJournal(t testing.TB, n int) ([]byte, []Record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "j")
	j := openT(t, path, Options{ChunkSize: 4096})
	want := appendN(t, j, 1, n)
	noErr(t, j.Close())
	data, err := os.ReadFile(path)
	noErr(t, err)
	return data, want
}

func writeFile(t testing.TB, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "j")
	noErr(t, os.WriteFile(path, data, 0o600))
	return path
}

// The module's go.sum lacks testify's dependencies (go-spew, go-difflib,
// yaml), so these tests use three small standard-library checks instead.

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func errIs(t testing.TB, err, target error, msg ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one matching %v %s", err, target, format(msg))
	}
}

// equal checks got == want; like testify, the expected value comes first.
func equal[T comparable](t testing.TB, want, got T, msg ...any) {
	t.Helper()
	if got != want {
		t.Fatalf("got %v, want %v %s", got, want, format(msg))
	}
}

func check(t testing.TB, cond bool, msg ...any) {
	t.Helper()
	if !cond {
		t.Fatalf("check failed: %s", format(msg))
	}
}

func format(msg []any) string {
	if len(msg) == 0 {
		return ""
	}
	if f, ok := msg[0].(string); ok {
		return fmt.Sprintf(f, msg[1:]...)
	}
	return fmt.Sprint(msg...)
}
