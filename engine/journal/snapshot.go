package journal

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Snapshot file layout (little-endian), followed by the state bytes:
//
//	0  magic     [8]byte "CCSNAPSH"
//	8  version   uint32
//	12 hdrSize   uint32 (snapHeaderSize)
//	16 seq       uint64  last journal sequence number the state includes
//	24 length    uint64  state length in bytes
//	32 stateCRC  uint32  CRC-32C of the state
//	36 hdrCRC    uint32  CRC-32C of bytes [0:36)
const (
	snapMagic      = "CCSNAPSH"
	snapVersion    = 1
	snapHeaderSize = 40
	snapPrefix     = "snapshot-"
	snapSuffix     = ".snap"
)

// Snapshot is a caller's state as of a journal sequence number.
type Snapshot struct {
	// Seq is the last journal sequence number whose effects State
	// includes; replay resumes at Seq+1. 0 means no records.
	Seq uint64
	// State is the caller's opaque serialized state.
	State []byte
	// Path is the file it was loaded from.
	Path string
	// Skipped lists newer snapshot files that failed verification and were
	// passed over, each as an error naming the file and the fault.
	Skipped []error
}

// SnapshotName is the file name WriteSnapshot uses for sequence seq; names
// sort in sequence order.
func SnapshotName(seq uint64) string {
	return fmt.Sprintf("%s%020d%s", snapPrefix, seq, snapSuffix)
}

// WriteSnapshot atomically writes state as the snapshot covering journal
// sequence numbers up to seq into dir and returns its path. It writes a
// temporary file, fsyncs it, renames it into place and fsyncs dir, so a crash
// leaves either the complete snapshot or none. A snapshot for the same seq is
// replaced. Older snapshots are kept; deleting them (and compacting the
// journal) is the caller's business.
func WriteSnapshot(dir string, seq uint64, state []byte) (path string, err error) {
	path = filepath.Join(dir, SnapshotName(seq))
	tmp, err := os.CreateTemp(dir, snapPrefix+"*.tmp")
	if err != nil {
		return "", fmt.Errorf("write snapshot %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var hdr [snapHeaderSize]byte
	copy(hdr[:], snapMagic)
	binary.LittleEndian.PutUint32(hdr[8:], snapVersion)
	binary.LittleEndian.PutUint32(hdr[12:], snapHeaderSize)
	binary.LittleEndian.PutUint64(hdr[16:], seq)
	binary.LittleEndian.PutUint64(hdr[24:], uint64(len(state)))
	binary.LittleEndian.PutUint32(hdr[32:], crc32.Checksum(state, castagnoli))
	binary.LittleEndian.PutUint32(hdr[36:], crc32.Checksum(hdr[:36], castagnoli))
	if _, err = tmp.Write(hdr[:]); err != nil {
		return "", fmt.Errorf("write snapshot %s: %w", path, err)
	}
	if _, err = tmp.Write(state); err != nil {
		return "", fmt.Errorf("write snapshot %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return "", fmt.Errorf("write snapshot %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return "", fmt.Errorf("write snapshot %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write snapshot %s: %w", path, err)
	}
	if err = syncDir(dir); err != nil {
		return "", fmt.Errorf("write snapshot %s: %w", path, err)
	}
	return path, nil
}

// LoadSnapshot returns the newest valid snapshot in dir. Newer files that
// fail verification are passed over (and listed in Snapshot.Skipped): the
// journal still holds the records an older snapshot needs, and ReplayStart
// checks that it does. With no valid snapshot (or no dir) it returns an
// error wrapping ErrNoSnapshot: replay from the journal's start.
func LoadSnapshot(dir string) (Snapshot, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, fmt.Errorf("load snapshot: directory %s does not exist: %w", dir, ErrNoSnapshot)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("load snapshot: %w", err)
	}
	type candidate struct {
		seq  uint64
		name string
	}
	var cands []candidate
	for _, e := range entries {
		name := e.Name()
		digits, ok := strings.CutPrefix(name, snapPrefix)
		if !ok {
			continue
		}
		digits, ok = strings.CutSuffix(digits, snapSuffix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			continue
		}
		cands = append(cands, candidate{seq, name})
	}
	slices.SortFunc(cands, func(a, b candidate) int { return cmp.Compare(b.seq, a.seq) })
	var skipped []error
	for _, c := range cands {
		path := filepath.Join(dir, c.name)
		snap, err := readSnapshot(path)
		if err == nil && snap.Seq != c.seq {
			err = fmt.Errorf("snapshot %s: header says sequence %d, name says %d", path, snap.Seq, c.seq)
		}
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		snap.Skipped = skipped
		return snap, nil
	}
	return Snapshot{Skipped: skipped}, fmt.Errorf("load snapshot: no valid snapshot in %s (%d invalid): %w", dir, len(skipped), ErrNoSnapshot)
}

// readSnapshot reads and verifies one snapshot file.
func readSnapshot(path string) (Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	seq, state, err := decodeSnapshot(data)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return Snapshot{Seq: seq, State: state, Path: path}, nil
}

// decodeSnapshot verifies a snapshot image; everything in it is untrusted.
func decodeSnapshot(data []byte) (uint64, []byte, error) {
	if len(data) < snapHeaderSize {
		return 0, nil, fmt.Errorf("%d bytes, shorter than the %d-byte header", len(data), snapHeaderSize)
	}
	if string(data[:len(snapMagic)]) != snapMagic {
		return 0, nil, fmt.Errorf("bad magic %q", data[:len(snapMagic)])
	}
	if crc32.Checksum(data[:36], castagnoli) != binary.LittleEndian.Uint32(data[36:]) {
		return 0, nil, errors.New("header checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != snapVersion {
		return 0, nil, fmt.Errorf("format version %d, this build reads %d", v, snapVersion)
	}
	if s := binary.LittleEndian.Uint32(data[12:]); s != snapHeaderSize {
		return 0, nil, fmt.Errorf("header size %d, want %d", s, snapHeaderSize)
	}
	n := binary.LittleEndian.Uint64(data[24:])
	if n != uint64(len(data)-snapHeaderSize) {
		return 0, nil, fmt.Errorf("header says %d state bytes, file holds %d", n, len(data)-snapHeaderSize)
	}
	state := data[snapHeaderSize:]
	if crc32.Checksum(state, castagnoli) != binary.LittleEndian.Uint32(data[32:]) {
		return 0, nil, errors.New("state checksum mismatch")
	}
	return binary.LittleEndian.Uint64(data[16:]), state, nil
}

// ReplayStart checks that snap (nil when LoadSnapshot found none) and the
// journal together cover every sequence number, and returns the first
// sequence number to replay from the journal after restoring snap.
//
// It refuses, with an error wrapping ErrSnapshotAhead, a snapshot beyond the
// journal's last record (the journal lost committed records, or the snapshot
// is another journal's), and, with ErrGap, a journal that starts after the
// snapshot's next sequence number (or after 1 with no snapshot).
func (j *Journal) ReplayStart(snap *Snapshot) (uint64, error) {
	last := j.nextSeq - 1
	if snap == nil {
		if j.firstSeq > 1 {
			return 0, fmt.Errorf("journal %s starts at sequence %d and no snapshot covers 1..%d: %w; restore the snapshot that was taken before the journal was started", j.path, j.firstSeq, j.firstSeq-1, ErrGap)
		}
		return j.firstSeq, nil
	}
	if snap.Seq > last {
		return 0, fmt.Errorf("snapshot %s covers up to sequence %d but journal %s ends at %d: %w; the journal lost committed records (restore it) or the snapshot belongs to another journal", snap.Path, snap.Seq, j.path, last, ErrSnapshotAhead)
	}
	if snap.Seq+1 < j.firstSeq {
		return 0, fmt.Errorf("snapshot %s covers up to sequence %d but journal %s starts at %d: %w; sequences %d..%d are in neither", snap.Path, snap.Seq, j.path, j.firstSeq, ErrGap, snap.Seq+1, j.firstSeq-1)
	}
	return snap.Seq + 1, nil
}
