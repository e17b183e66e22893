package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

const (
	// DefaultDir is where segments live unless Options.Dir says otherwise.
	DefaultDir = "/dev/shm"
	// Prefix starts the file name of every segment, so that CleanStale
	// finds ours and nothing else.
	Prefix = "commitcore-"
	// maxNameLen keeps Prefix+name well under NAME_MAX.
	maxNameLen = 200
	// fileMode is the only mode a segment is created with or opened at.
	fileMode = 0o600
)

// ErrBadName is returned for a segment name that is empty, too long, or has
// characters other than letters, digits, '.', '_' and '-'.
var ErrBadName = errors.New("invalid segment name")

// Options configure Create, Open, CreateLink and OpenLink. The zero value
// (or a nil *Options) gives the defaults.
type Options struct {
	// Dir is the directory holding segments; DefaultDir if empty.
	Dir string
	// Prefault touches every page when the segment is mapped, so that the
	// hot path takes no page faults.
	Prefault bool
	// Lock mlocks the mapping so that it is never swapped out. It needs
	// RLIMIT_MEMLOCK room or CAP_IPC_LOCK; failure is an error.
	Lock bool
	// StaleAfter is how long a peer's heartbeat may stand still (while the
	// peer is not parked) before Peer.State reports PeerStale;
	// DefaultStaleAfter if zero.
	StaleAfter time.Duration
	// CheckEvery is how often a Link waiting for its peer checks that the
	// peer lives, so a killed peer is noticed within about this long;
	// DefaultCheckEvery if zero.
	CheckEvery time.Duration
	// Idle selects how a Link waits for work: SpinThenPark (the zero
	// value) or BusySpin.
	Idle IdleKind
}

func (o *Options) dir() string {
	if o == nil || o.Dir == "" {
		return DefaultDir
	}
	return o.Dir
}

// Segment is a mapped shared-memory segment: a header page followed by the
// regions of its region table. Its methods may be called from several
// goroutines; the memory itself is shared and its users synchronise on it.
type Segment struct {
	name string
	path string
	opts Options
	ino  uint64
	mem  mmap.MMap
	hdr  *header

	mu    sync.Mutex
	slots [MaxSlots]*Slot
}

// Path returns the segment's file.
func (s *Segment) Path() string { return s.path }

// Name returns the name the segment was created or opened with.
func (s *Segment) Name() string { return s.name }

// Size returns the segment's total size in bytes.
func (s *Segment) Size() int { return len(s.mem) }

// CreatorPID returns the pid of the process that created the segment.
func (s *Segment) CreatorPID() int { return int(s.hdr.creatorPID) }

// Created returns the segment's creation time.
func (s *Segment) Created() time.Time { return time.Unix(0, s.hdr.created) }

// Regions returns a copy of the region table.
func (s *Segment) Regions() []Region { return append([]Region(nil), s.hdr.regions...) }

// Region returns the memory of region i. It panics if i is not an index of
// the region table, like a slice index would.
func (s *Segment) Region(i int) []byte {
	r := s.hdr.regions[i]
	return s.mem[r.Offset : r.Offset+r.Len : r.Offset+r.Len]
}

func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("shm: segment name %q: %w: want 1 to %d characters", name, ErrBadName, maxNameLen)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("shm: segment name %q: %w: only letters, digits, '.', '_' and '-' are allowed", name, ErrBadName)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("shm: segment name %q: %w", name, ErrBadName)
	}
	return nil
}

// SegmentPath returns the file that holds segment name under opts.
func SegmentPath(name string, opts *Options) string {
	return filepath.Join(opts.dir(), Prefix+name)
}

// Create makes a new segment holding the given regions, each rounded up to
// RegionAlign bytes and laid out in order after the header. The file is
// created with O_EXCL and O_NOFOLLOW at mode 0600, so an existing file or a
// symlink is never reused. The caller's process is the creator; it is not
// attached to any liveness slot until it calls Attach.
func Create(name string, regions []RegionSpec, opts *Options) (*Segment, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	path := SegmentPath(name, opts)
	if len(regions) > MaxRegions {
		return nil, fmt.Errorf("shm: create %s: %d regions, at most %d: %w", path, len(regions), MaxRegions, ErrBadRegion)
	}
	me, err := selfIdent()
	if err != nil {
		return nil, fmt.Errorf("shm: create %s: %w", path, err)
	}
	h := &header{
		creatorPID:   uint32(me & maxPID),
		creatorStart: me >> pidBits,
		created:      time.Now().UnixNano(),
	}
	off := HeaderSize
	for i, r := range regions {
		if r.Len <= 0 || r.Len > 1<<40 {
			return nil, fmt.Errorf("shm: create %s: region %d has length %d, want 1 to 2^40: %w", path, i, r.Len, ErrBadRegion)
		}
		h.regions = append(h.regions, Region{Kind: r.Kind, Offset: off, Len: alignUp(r.Len)})
		off += alignUp(r.Len)
	}
	h.totalSize = uint64(off)

	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, fileMode)
	if errors.Is(err, unix.EEXIST) {
		return nil, &Error{Op: "create", Path: path, Kind: ErrExists, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("shm: create %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	s, err := func() (*Segment, error) {
		// The umask may only have narrowed the mode; make it exact.
		if err := unix.Fchmod(fd, fileMode); err != nil {
			return nil, err
		}
		// fallocate reserves the pages now, so a full tmpfs fails here
		// instead of raising SIGBUS on first touch later.
		if err := unix.Fallocate(fd, 0, 0, int64(off)); err != nil {
			if !errors.Is(err, unix.EOPNOTSUPP) {
				return nil, err
			}
			if err := unix.Ftruncate(fd, int64(off)); err != nil {
				return nil, err
			}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, err
		}
		m, err := mmap.MapRegion(f, off, mmap.RDWR, 0, 0)
		if err != nil {
			return nil, err
		}
		writeHeader(m, h)
		return &Segment{name: name, path: path, ino: st.Ino, mem: m, hdr: h}, nil
	}()
	if err != nil {
		unix.Unlink(path)
		return nil, fmt.Errorf("shm: create %s: %w", path, err)
	}
	if opts != nil {
		s.opts = *opts
	}
	if err := s.prepare(); err != nil {
		s.Close()
		s.Unlink()
		return nil, fmt.Errorf("shm: create %s: %w", path, err)
	}
	return s, nil
}

// Open maps an existing segment after checking the file (a regular file, not
// a symlink, owned by this user, not group- or world-writable, as long as
// its header says) and every header field. A refusal is an *Error wrapping
// one of the sentinel errors; nothing is changed on refusal. A segment that
// is still being created is refused with ErrTruncated or ErrBadMagic until
// Create returns in the creating process.
func Open(name string, opts *Options) (*Segment, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	path := SegmentPath(name, opts)
	f, st, err := openChecked("open", path, unix.O_RDWR)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := mmap.MapRegion(f, int(st.Size), mmap.RDWR, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: open %s: map: %w", path, err)
	}
	h, err := readHeader("open", path, m, st.Size)
	if err != nil {
		m.Unmap()
		return nil, err
	}
	s := &Segment{name: name, path: path, ino: st.Ino, mem: m, hdr: h}
	if opts != nil {
		s.opts = *opts
	}
	if err := s.prepare(); err != nil {
		s.Close()
		return nil, fmt.Errorf("shm: open %s: %w", path, err)
	}
	return s, nil
}

// openChecked opens path without following links and checks the file
// itself: regular, ours, not group- or world-writable, at least a header
// long. mode is O_RDWR or O_RDONLY.
func openChecked(op, path string, mode int) (*os.File, *unix.Stat_t, error) {
	fd, err := unix.Open(path, mode|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, nil, &Error{Op: op, Path: path, Kind: ErrNotExist, Err: err}
	case errors.Is(err, unix.ELOOP):
		return nil, nil, &Error{Op: op, Path: path, Kind: ErrSymlink, Err: err}
	case errors.Is(err, unix.EISDIR):
		return nil, nil, &Error{Op: op, Path: path, Kind: ErrNotRegular, Err: err}
	case err != nil:
		return nil, nil, fmt.Errorf("shm: %s %s: %w", op, path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("shm: %s %s: %w", op, path, err)
	}
	if e := checkFile(op, path, &st); e != nil {
		f.Close()
		return nil, nil, e
	}
	return f, &st, nil
}

// checkFile checks the stat of an opened segment file.
func checkFile(op, path string, st *unix.Stat_t) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return refuse(op, path, ErrNotRegular, "file type %#o", st.Mode&unix.S_IFMT)
	case int(st.Uid) != os.Geteuid():
		return refuse(op, path, ErrForeignOwner, "owned by uid %d, this process runs as uid %d", st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		return refuse(op, path, ErrPermissions, "mode %#o", st.Mode&0o777)
	case st.Size < HeaderSize:
		return refuse(op, path, ErrTruncated, "file is %d bytes, shorter than the %d-byte header", st.Size, HeaderSize)
	}
	return nil
}

// prepare pre-faults and locks the mapping as the options ask.
func (s *Segment) prepare() error {
	if s.opts.Prefault {
		// MADV_POPULATE_WRITE (Linux 5.14) faults every page in writable.
		if err := unix.Madvise(s.mem, unix.MADV_POPULATE_WRITE); err != nil {
			return fmt.Errorf("prefault %d bytes: %w", len(s.mem), err)
		}
	}
	if s.opts.Lock {
		if err := s.mem.Lock(); err != nil {
			return fmt.Errorf("mlock %d bytes: %w", len(s.mem), err)
		}
	}
	return nil
}

// Close detaches the liveness slots this Segment attached and unmaps it.
// It does not remove the file; see Unlink. The Segment's memory (region
// slices, rings over it, Peers from Watch) must not be used after Close.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem == nil {
		return nil
	}
	for _, sl := range s.slots {
		if sl != nil {
			sl.detachLocked()
		}
	}
	return s.mem.Unmap()
}

// Unlink removes the segment's file, if it is still the file this Segment
// mapped (a file recreated under the same name is left alone). Mappings stay
// valid until closed; a later Open of the name fails with ErrNotExist.
func (s *Segment) Unlink() error {
	var st unix.Stat_t
	if err := unix.Lstat(s.path, &st); err != nil {
		return fmt.Errorf("shm: unlink %s: %w", s.path, err)
	}
	if st.Ino != s.ino {
		return fmt.Errorf("shm: unlink %s: the file was replaced since it was mapped; left in place: %w", s.path, os.ErrNotExist)
	}
	if err := unix.Unlink(s.path); err != nil {
		return fmt.Errorf("shm: unlink %s: %w", s.path, err)
	}
	return nil
}
