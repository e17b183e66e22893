package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMissingSnapshot(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "absent"), t.TempDir()} {
		_, err := LoadSnapshot(dir)
		errIs(t, err, ErrNoSnapshot)
	}
	j := openT(t, filepath.Join(t.TempDir(), "j"), Options{})
	defer j.Close()
	appendN(t, j, 1, 4)
	from, err := j.ReplayStart(nil)
	noErr(t, err)
	equal(t, uint64(1), from, "no snapshot: replay from the journal start")
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []struct {
		seq   uint64
		state string
	}{{3, "three"}, {7, "seven"}, {5, "five"}, {0, ""}} {
		path, err := WriteSnapshot(dir, s.seq, []byte(s.state))
		noErr(t, err)
		equal(t, filepath.Join(dir, SnapshotName(s.seq)), path)
	}
	snap, err := LoadSnapshot(dir)
	noErr(t, err)
	equal(t, uint64(7), snap.Seq)
	equal(t, "seven", string(snap.State))
	equal(t, 0, len(snap.Skipped))

	// A damaged newest snapshot is passed over, and says so.
	newest := filepath.Join(dir, SnapshotName(7))
	data, err := os.ReadFile(newest)
	noErr(t, err)
	data[len(data)-1] ^= 1
	noErr(t, os.WriteFile(newest, data, 0o600))
	snap, err = LoadSnapshot(dir)
	noErr(t, err)
	equal(t, uint64(5), snap.Seq)
	equal(t, "five", string(snap.State))
	equal(t, 1, len(snap.Skipped))
	check(t, strings.Contains(snap.Skipped[0].Error(), "state checksum"), "skip reason: %v", snap.Skipped[0])

	// A file renamed to claim another sequence is refused.
	noErr(t, os.Rename(filepath.Join(dir, SnapshotName(5)), filepath.Join(dir, SnapshotName(6))))
	snap, err = LoadSnapshot(dir)
	noErr(t, err)
	equal(t, uint64(3), snap.Seq)
	equal(t, 2, len(snap.Skipped))

	entries, err := os.ReadDir(dir)
	noErr(t, err)
	for _, e := range entries {
		check(t, !strings.HasSuffix(e.Name(), ".tmp"), "temporary file left: %s", e.Name())
	}
}

func TestSnapshotDecodeRejects(t *testing.T) {
	path, err := WriteSnapshot(t.TempDir(), 42, []byte("state bytes"))
	noErr(t, err)
	good, err := os.ReadFile(path)
	noErr(t, err)
	seq, state, err := decodeSnapshot(good)
	noErr(t, err)
	equal(t, uint64(42), seq)
	check(t, bytes.Equal([]byte("state bytes"), state))
	mutations := map[string]func([]byte) []byte{
		"short":        func(b []byte) []byte { return b[:snapHeaderSize-1] },
		"magic":        func(b []byte) []byte { b[0] = 'X'; return b },
		"header crc":   func(b []byte) []byte { b[16] ^= 1; return b },
		"state crc":    func(b []byte) []byte { b[snapHeaderSize] ^= 1; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-1] },
		"extra byte":   func(b []byte) []byte { return append(b, 0) },
		"header crc 2": func(b []byte) []byte { b[36] ^= 1; return b },
	}
	for name, mutate := range mutations {
		if _, _, err := decodeSnapshot(mutate(bytes.Clone(good))); err == nil {
			t.Errorf("%s: damaged snapshot accepted", name)
		}
	}
}

func TestReplayStart(t *testing.T) {
	tests := []struct {
		name     string
		firstSeq uint64
		records  int
		snap     *Snapshot
		from     uint64
		err      error
	}{
		{name: "no snapshot", firstSeq: 1, records: 5, from: 1},
		{name: "snapshot inside", firstSeq: 1, records: 5, snap: &Snapshot{Seq: 3}, from: 4},
		{name: "snapshot at end", firstSeq: 1, records: 5, snap: &Snapshot{Seq: 5}, from: 6},
		{name: "snapshot beyond end", firstSeq: 1, records: 5, snap: &Snapshot{Seq: 6}, err: ErrSnapshotAhead},
		{name: "snapshot beyond empty journal", firstSeq: 1, records: 0, snap: &Snapshot{Seq: 1}, err: ErrSnapshotAhead},
		{name: "journal after seq 1 without snapshot", firstSeq: 10, records: 3, err: ErrGap},
		{name: "snapshot covers the gap", firstSeq: 10, records: 3, snap: &Snapshot{Seq: 9}, from: 10},
		{name: "snapshot short of the gap", firstSeq: 10, records: 3, snap: &Snapshot{Seq: 5}, err: ErrGap},
		{name: "empty journal started after snapshot", firstSeq: 10, records: 0, snap: &Snapshot{Seq: 9}, from: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := openT(t, filepath.Join(t.TempDir(), "j"), Options{FirstSeq: tt.firstSeq})
			defer j.Close()
			appendN(t, j, 1, tt.records)
			from, err := j.ReplayStart(tt.snap)
			if tt.err != nil {
				errIs(t, err, tt.err)
				return
			}
			noErr(t, err)
			equal(t, tt.from, from)
		})
	}
}
