package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// createGrace is how old a file with our prefix but no magic yet must be
// before CleanStale takes it for a creation that crashed half-way.
const createGrace = 10 * time.Second

// CleanStale removes the segments in dir (DefaultDir if empty) that carry
// Prefix and that nobody can be using: their creator and every process in
// their liveness slots are dead. It also removes files of ours whose header
// was never finished (a creator killed inside Create) once they are older
// than a few seconds. Segments of live processes, of other users, and files
// that fail validation are left alone; the returned error lists each file
// it could not judge or remove. It returns the paths it removed.
func CleanStale(dir string) ([]string, error) {
	if dir == "" {
		dir = DefaultDir
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("shm: clean %s: %w", dir, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), Prefix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		stale, err := isStale(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !stale {
			continue
		}
		if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("shm: clean %s: %w", path, err))
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}

// isStale reports whether the segment at path has no live creator and no
// live attached process.
func isStale(path string) (bool, error) {
	f, st, err := openChecked("clean", path, unix.O_RDONLY)
	if errors.Is(err, ErrNotExist) {
		return false, nil // removed under us
	}
	if errors.Is(err, ErrTruncated) {
		return unfinished(path)
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	m, err := mmap.MapRegion(f, int(st.Size), mmap.RDONLY, 0, 0)
	if err != nil {
		return false, fmt.Errorf("shm: clean %s: map: %w", path, err)
	}
	defer m.Unmap()
	if word64(m, offMagic).Load() == 0 {
		return unfinished(path)
	}
	h, err := readHeader("clean", path, m, st.Size)
	if err != nil {
		return false, err
	}
	if identAlive(h.creatorStart<<pidBits | uint64(h.creatorPID)) {
		return false, nil
	}
	for i := range MaxSlots {
		if identAlive(word64(m, offSlots+i*SlotSize+slotIdent).Load()) {
			return false, nil
		}
	}
	return true, nil
}

// unfinished reports whether a file without a complete header is old
// enough to be a crashed creation rather than one in progress.
func unfinished(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false, nil
	}
	mtime := time.Unix(st.Mtim.Unix())
	return time.Since(mtime) > createGrace, nil
}
