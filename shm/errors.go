package shm

import (
	"errors"
	"fmt"
)

// Sentinel errors for the ways a segment can be refused. Every error that
// Create, Open and OpenLink return for one of these reasons wraps the
// sentinel, so callers branch with errors.Is; errors.As with *Error gives the
// path, the detail and the advice.
var (
	// ErrExists: Create found a file of that name already.
	ErrExists = errors.New("segment already exists")
	// ErrNotExist: Open found no file of that name.
	ErrNotExist = errors.New("segment does not exist")
	// ErrSymlink: the name is a symbolic link, which is never followed.
	ErrSymlink = errors.New("segment path is a symbolic link")
	// ErrNotRegular: the name is a directory, device, FIFO or socket.
	ErrNotRegular = errors.New("segment is not a regular file")
	// ErrForeignOwner: the file belongs to another user.
	ErrForeignOwner = errors.New("segment is owned by another user")
	// ErrPermissions: the file is writable by its group or by everyone.
	ErrPermissions = errors.New("segment is group- or world-writable")
	// ErrTruncated: the file is shorter than its header or than the size
	// its header records.
	ErrTruncated = errors.New("segment file is truncated")
	// ErrSizeMismatch: the file is longer than the size its header records.
	ErrSizeMismatch = errors.New("segment size does not match its header")
	// ErrBadMagic: the file does not start with the segment magic.
	ErrBadMagic = errors.New("segment has a wrong magic number")
	// ErrVersion: the header is of a layout version this build cannot read.
	ErrVersion = errors.New("segment layout version is not supported")
	// ErrBadHeader: a header field other than magic, version and size is
	// out of range (header size, creator, creation time, reserved bytes,
	// slot table).
	ErrBadHeader = errors.New("segment header is invalid")
	// ErrBadRegion: the region table points outside the file, into the
	// header, at overlapping or misaligned regions.
	ErrBadRegion = errors.New("segment region table is invalid")
	// ErrChecksum: the header's fields are each plausible but their checksum
	// does not match, so one of them was changed after creation.
	ErrChecksum = errors.New("segment header checksum mismatch")
	// ErrLayout: the segment is valid but not laid out as the caller
	// expects (for example a link opened with a different capacity).
	ErrLayout = errors.New("segment layout does not match what was asked for")
	// ErrSlotBusy: the liveness slot is held by a live process.
	ErrSlotBusy = errors.New("liveness slot is held by a live process")
)

// advice says what to do about each refusal.
var advice = map[error]string{
	ErrExists:       "another component is using this name or a crashed run left it behind; pick another name or run CleanStale",
	ErrNotExist:     "create it first (Create or CreateLink), or check the name and directory",
	ErrSymlink:      "segments are never opened through links; remove the link and recreate the segment",
	ErrNotRegular:   "remove whatever has that name and recreate the segment",
	ErrForeignOwner: "another user could read and write this memory; run both sides as the same user or remove the file",
	ErrPermissions:  "segments must be mode 0600; someone changed the mode, remove the file and recreate it",
	ErrTruncated:    "the file was cut short (crash during creation or tampering); remove it and recreate it",
	ErrSizeMismatch: "the file was resized after creation; remove it and recreate it",
	ErrBadMagic:     "the file is not a commitcore segment; remove it or choose another name",
	ErrVersion:      "it was created by an incompatible build; run the same build on both sides or remove it",
	ErrBadHeader:    "the header is corrupt; remove the file and recreate it",
	ErrBadRegion:    "the header is corrupt; remove the file and recreate it",
	ErrChecksum:     "the header is corrupt; remove the file and recreate it",
	ErrLayout:       "open it with the same parameters it was created with, or remove it and recreate it",
	ErrSlotBusy:     "another live process is attached in this role; stop it first",
}

// Error is the error returned when a segment is refused. It wraps one of the
// sentinel errors above (Kind) and, where the cause was a system call, the
// underlying error too.
type Error struct {
	Op     string // "create", "open", "attach"
	Path   string // the segment's file
	Kind   error  // one of the sentinels
	Detail string // what exactly was found
	Err    error  // underlying cause, or nil
}

func (e *Error) Error() string {
	s := fmt.Sprintf("shm: %s %s: %v", e.Op, e.Path, e.Kind)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if a := advice[e.Kind]; a != "" {
		s += " (" + a + ")"
	}
	return s
}

// Unwrap returns the sentinel and the underlying cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// refuse builds an *Error for a header or file check.
func refuse(op, path string, kind error, format string, args ...any) *Error {
	return &Error{Op: op, Path: path, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}
