package shm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testDir returns a fresh directory on tmpfs (where segments really live),
// removed when the test ends.
func testDir(t testing.TB) string {
	t.Helper()
	base := DefaultDir
	if _, err := os.Stat(base); err != nil {
		base = t.TempDir()
	}
	dir, err := os.MkdirTemp(base, "shmtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

var testRegions = []RegionSpec{{Kind: 7, Len: 100}, {Kind: 8, Len: 4096}, {Kind: 9, Len: 64}}

func TestCreateOpenRoundTrip(t *testing.T) {
	dir := testDir(t)
	opts := &Options{Dir: dir, Prefault: true, Lock: true}
	s, err := Create("rt", testRegions, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Lstat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o600 {
		t.Errorf("mode %v, want -rw-------", st.Mode())
	}
	if want := filepath.Join(dir, Prefix+"rt"); s.Path() != want {
		t.Errorf("path %q, want %q", s.Path(), want)
	}
	wantRegions := []Region{{7, 4096, 128}, {8, 4224, 4096}, {9, 8320, 64}}
	if got := s.Regions(); len(got) != 3 || got[0] != wantRegions[0] || got[1] != wantRegions[1] || got[2] != wantRegions[2] {
		t.Errorf("regions %v, want %v", got, wantRegions)
	}
	if s.Size() != 8384 || st.Size() != 8384 {
		t.Errorf("size %d (file %d), want 8384", s.Size(), st.Size())
	}
	copy(s.Region(1), "hello")

	o, err := Open("rt", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if string(o.Region(1)[:5]) != "hello" {
		t.Errorf("region 1 of the opened segment does not share memory")
	}
	if o.CreatorPID() != os.Getpid() {
		t.Errorf("creator pid %d, want %d", o.CreatorPID(), os.Getpid())
	}
	if d := time.Since(o.Created()); d < 0 || d > time.Minute {
		t.Errorf("creation time %v is not recent", o.Created())
	}
	if err := s.Unlink(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("rt", opts); !errors.Is(err, ErrNotExist) {
		t.Errorf("open after unlink: %v, want ErrNotExist", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("unlink left %d files behind", len(ents))
	}
}

func TestCreateRefusals(t *testing.T) {
	dir := testDir(t)
	opts := &Options{Dir: dir}
	s, err := Create("dup", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Create("dup", nil, opts); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	target := filepath.Join(dir, "target")
	if err := os.Symlink(target, SegmentPath("link", opts)); err != nil {
		t.Fatal(err)
	}
	if _, err := Create("link", nil, opts); !errors.Is(err, ErrExists) {
		t.Errorf("create over a dangling symlink: %v, want ErrExists", err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("create followed the symlink and made %s", target)
	}
	for _, name := range []string{"", ".", "..", "a/b", "a b", string(make([]byte, 201))} {
		if _, err := Create(name, nil, opts); !errors.Is(err, ErrBadName) {
			t.Errorf("create %q: %v, want ErrBadName", name, err)
		}
	}
	if _, err := Create("zero", []RegionSpec{{Kind: 1, Len: 0}}, opts); !errors.Is(err, ErrBadRegion) {
		t.Errorf("zero-length region: %v, want ErrBadRegion", err)
	}
	if _, err := Create("many", make([]RegionSpec, MaxRegions+1), opts); !errors.Is(err, ErrBadRegion) {
		t.Errorf("too many regions: %v, want ErrBadRegion", err)
	}
}

// corrupt describes one refusal: a change to a freshly created segment's
// file and the sentinel Open must refuse it with.
type corrupt struct {
	name   string
	change func(t *testing.T, path string)
	want   error
}

func put32(off int, v uint32) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		pwrite(t, path, off, b[:])
	}
}

func put64(off int, v uint64) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		pwrite(t, path, off, b[:])
	}
}

func pwrite(t *testing.T, path string, off int, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(off)); err != nil {
		t.Fatal(err)
	}
}

func truncate(size int64) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
	}
}

func chmod(mode os.FileMode) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// region e's field at byte off of its entry.
func regionField(e, off int) int { return offRegions + e*regionEntrySize + off }

func slotField(i, off int) int { return offSlots + i*SlotSize + off }

// The segment these cases corrupt has the three testRegions: [4096,+128),
// [4224,+4096), [8320,+64), 8384 bytes in all.
var corruptions = []corrupt{
	{"magic", put64(offMagic, 0x4745534d48534344), ErrBadMagic},
	{"magic zero", put64(offMagic, 0), ErrBadMagic},
	{"version", put32(offVersion, 2), ErrVersion},
	{"header size", put32(offHeaderSize, 8192), ErrBadHeader},
	{"total size larger", put64(offTotalSize, 8448), ErrTruncated},
	{"total size smaller", put64(offTotalSize, 8320), ErrSizeMismatch},
	{"file truncated", truncate(8320), ErrTruncated},
	{"file shorter than header", truncate(HeaderSize - 1), ErrTruncated},
	{"file empty", truncate(0), ErrTruncated},
	{"file extended", truncate(8448), ErrSizeMismatch},
	{"creator pid zero", put32(offCreatorPID, 0), ErrBadHeader},
	{"creator pid too large", put32(offCreatorPID, maxPID+1), ErrBadHeader},
	{"creator start zero", put64(offCreatorStart, 0), ErrBadHeader},
	{"creator start too large", put64(offCreatorStart, 1<<63), ErrBadHeader},
	{"creation time zero", put64(offCreated, 0), ErrBadHeader},
	{"creation time negative", put64(offCreated, 1<<63), ErrBadHeader},
	{"slot count", put32(offSlotCount, MaxSlots+1), ErrBadHeader},
	{"reserved after checksum", put32(offReserved0, 1), ErrBadHeader},
	{"region count too large", put32(offRegionCount, MaxRegions+1), ErrBadRegion},
	{"region count larger than table", put32(offRegionCount, 4), ErrBadRegion},
	{"region outside file", put64(regionField(2, 8), 8384), ErrBadRegion},
	{"region length past end", put64(regionField(2, 16), 128), ErrBadRegion},
	{"region length wraps", put64(regionField(2, 16), 1<<64-64), ErrBadRegion},
	{"region length zero", put64(regionField(2, 16), 0), ErrBadRegion},
	{"region inside header", put64(regionField(0, 8), 64), ErrBadRegion},
	{"regions overlap", put64(regionField(1, 8), 4160), ErrBadRegion},
	{"region misaligned", put64(regionField(1, 8), 4232), ErrBadRegion},
	{"region reserved word", put32(regionField(0, 4), 1), ErrBadRegion},
	{"region reserved tail", put64(regionField(0, 24), 1), ErrBadRegion},
	{"unused region entry", put64(regionField(3, 8), 8384), ErrBadRegion},
	{"reserved after region table", put32(offReserved1, 1), ErrBadHeader},
	{"slot holder pid zero", put64(slotField(1, slotIdent), 1<<pidBits), ErrBadHeader},
	{"slot unknown flag", put32(slotField(2, slotFlags), 2), ErrBadHeader},
	{"slot reserved", put64(slotField(3, slotReserved), 1), ErrBadHeader},
	{"reserved after slots", put32(offReserved2, 1), ErrBadHeader},
	{"reserved header tail", put32(HeaderSize-4, 1), ErrBadHeader},
	{"checksum", put32(offChecksum, 0), ErrChecksum},
	{"creation time changed", put64(offCreated, 1), ErrChecksum},
	{"creator pid changed", put32(offCreatorPID, 1), ErrChecksum},
	{"region kind changed", put32(regionField(0, 0), 70), ErrChecksum},
	{"region shrunk within bounds", put64(regionField(1, 16), 4032), ErrChecksum},
	{"mode 0666", chmod(0o666), ErrPermissions},
	{"mode 0620", chmod(0o620), ErrPermissions},
	{"mode 0602", chmod(0o602), ErrPermissions},
}

// corruptionDetails tells apart the cases whose sentinel another check
// would also report.
var corruptionDetails = map[string]string{
	"file shorter than header": "shorter than the 4096-byte header",
	"region inside header":     "overlaps the 4096-byte header",
	"regions overlap":          "overlaps the previous region",
	"region outside file":      "outside the 8384-byte file",
	"region length zero":       "outside",
	"region misaligned":        "aligned",
	"unused region entry":      "unused region entry 3",
	"creation time negative":   "creation time",
	"creator start too large":  "creator start time",
	"region count too large":   "exceeds 16",
}

// TestOpenRefusals corrupts one thing at a time and checks that Open names
// it. Each check in readHeader and checkFile has a case here that reports a
// different sentinel (or none) when the check is removed.
func TestOpenRefusals(t *testing.T) {
	dir := testDir(t)
	opts := &Options{Dir: dir}
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			s, err := Create("c", testRegions, opts)
			if err != nil {
				t.Fatal(err)
			}
			path := s.Path()
			s.Close()
			defer os.Remove(path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			c.change(t, path)
			after, _ := os.ReadFile(path)
			_, err = Open("c", opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("open: %v, want %v", err, c.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Path != path || advice[e.Kind] == "" {
				t.Fatalf("error %#v is not an *Error for %s with advice", err, path)
			}
			if d := corruptionDetails[c.name]; !strings.Contains(e.Detail, d) {
				t.Errorf("detail %q does not say %q", e.Detail, d)
			}
			if now, _ := os.ReadFile(path); string(now) != string(after) || len(before) == 0 {
				t.Errorf("open changed the refused file")
			}
		})
	}
}

func TestOpenRefusesSymlink(t *testing.T) {
	dir := testDir(t)
	opts := &Options{Dir: dir}
	s, err := Create("real", testRegions, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Symlink(s.Path(), SegmentPath("alias", opts)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("alias", opts); !errors.Is(err, ErrSymlink) {
		t.Errorf("open through a symlink: %v, want ErrSymlink", err)
	}
}

func TestOpenRefusesNonRegular(t *testing.T) {
	dir := testDir(t)
	opts := &Options{Dir: dir}
	if err := os.Mkdir(SegmentPath("dir", opts), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(SegmentPath("fifo", opts), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dir", "fifo"} {
		if _, err := Open(name, opts); !errors.Is(err, ErrNotRegular) {
			t.Errorf("open %s: %v, want ErrNotRegular", name, err)
		}
	}
}

func TestOpenRefusesForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: changing a file's owner needs root, and this test runs as uid", os.Geteuid())
	}
	dir := testDir(t)
	opts := &Options{Dir: dir}
	s, err := Create("foreign", testRegions, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Chown(s.Path(), 12345, 12345); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("foreign", opts); !errors.Is(err, ErrForeignOwner) {
		t.Errorf("open a file owned by uid 12345: %v, want ErrForeignOwner", err)
	}
	if removed, _ := CleanStale(dir); len(removed) != 0 {
		t.Errorf("CleanStale removed another user's file: %v", removed)
	}
}

func TestUnlinkLeavesReplacementAlone(t *testing.T) {
	dir := testDir(t)
	opts := &Options{Dir: dir}
	s, err := Create("r", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	s2, err := Create("r", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s.Unlink(); err == nil {
		t.Errorf("unlink removed a segment it did not create")
	}
	if _, err := os.Stat(s2.Path()); err != nil {
		t.Errorf("replacement is gone: %v", err)
	}
}
