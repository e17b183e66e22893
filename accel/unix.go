package accel

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// UnixFabric carries the fabric's records over unix-domain stream
// sockets, for processes on one host that should not share memory (or a
// socket baseline to measure the shared-memory fabric against). It is
// TCPFabric's protocol, unchanged — framing, hellos, sequence numbers,
// acknowledgements, heartbeats, reconnection, one peer at a time — over a
// socket file instead of a TCP port; only the address and its checks
// differ.
//
// The address is the socket's path: at most 107 bytes (sun_path holds 108
// with its terminating NUL), a file-system path, not an abstract name
// ("@…"). Listen refuses a directory that another user could replace the
// socket in (owned by someone other than this user or root, or writable
// by group or others without the sticky bit), makes the socket mode 0600,
// and both ends admit only a peer process of this user (SO_PEERCRED), so
// the moment between bind and chmod admits no one else either. Close
// removes the socket file.
//
// A process killed without closing leaves its socket file behind. Listen
// removes such a file only when it is a socket, owned by this user, and
// nobody listens on it (a connection attempt is refused); a live listener
// makes Listen fail with ErrAddrInUse, and anything else at the path
// (another file type, another user's socket) with ErrBadAddr, untouched.
// Two processes that Listen on the same stale path at the same moment
// can each remove it for the other: give each passive endpoint its own
// path, as exchange-sim does.
type UnixFabric struct {
	// Options are TCPFabric's: the stream protocol is the same. There
	// are no socket options to set (TCP_NODELAY has no unix counterpart;
	// a unix socket does not batch small writes).
	Options TCPOptions
}

// socketMode is the only mode a fabric's socket file has.
const socketMode = 0o600

// Listen listens on the socket at path and returns the passive endpoint at
// once. It serves one peer at a time, as TCPFabric.Listen does.
func (f *UnixFabric) Listen(path string) (Endpoint, error) {
	e, err := newStreamEndpoint("unix", f.Options)
	if err != nil {
		return nil, err
	}
	ln, err := listenUnix(path)
	if err != nil {
		return nil, fmt.Errorf("unix fabric: listen %s: %w", path, err)
	}
	e.serve(ln, path)
	return e, nil
}

// Dial connects to the passive endpoint listening at path, as
// TCPFabric.Dial does: it retries for Options.DialTimeout (while the
// socket does not exist yet, say) and then reconnects on its own. It fails
// at once with ErrBadAddr for a path that cannot be a socket's, and with
// ErrForeignPeer if the listener runs as another user.
func (f *UnixFabric) Dial(path string) (Endpoint, error) {
	if err := CheckSocketPath(path); err != nil {
		return nil, fmt.Errorf("unix fabric: dial %s: %w", path, err)
	}
	e, err := newStreamEndpoint("unix", f.Options)
	if err != nil {
		return nil, err
	}
	return e.dialFirst(path)
}

// CheckSocketPath reports whether path can name a UnixFabric's socket: a
// file-system path (not an abstract name) short enough for sun_path. Listen
// and Dial check it too; a program that derives socket paths from its
// configuration can check them before it starts anything.
func CheckSocketPath(path string) error {
	limit := len(unix.RawSockaddrUnix{}.Path) - 1
	switch {
	case path == "":
		return fmt.Errorf("%w: empty socket path", ErrBadAddr)
	case path[0] == '@':
		return fmt.Errorf("%w: %q is an abstract socket name; give a file-system path", ErrBadAddr, path)
	case len(path) > limit:
		return fmt.Errorf("%w: socket path is %d bytes, at most %d fit in sun_path; use a shorter directory", ErrBadAddr, len(path), limit)
	}
	return nil
}

// checkSocketDir refuses a directory in which another user could remove
// or replace this user's socket.
func checkSocketDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%w: %s is not a directory", ErrBadAddr, dir)
	case int(st.Uid) != os.Geteuid() && st.Uid != 0:
		return fmt.Errorf("%w: directory %s is owned by uid %d, this process runs as uid %d", ErrBadAddr, dir, st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		return fmt.Errorf("%w: directory %s has mode %#o: others may replace the socket in it; use a directory only this user writes, or one with the sticky bit", ErrBadAddr, dir, st.Mode&0o7777)
	}
	return nil
}

// listenUnix binds the socket at path after the checks UnixFabric
// documents, removing a stale socket file first, and makes it mode 0600.
// The listener removes the file when closed.
func listenUnix(path string) (*net.UnixListener, error) {
	if err := CheckSocketPath(path); err != nil {
		return nil, err
	}
	if err := checkSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	ln, err := net.ListenUnix("unix", addr)
	if errors.Is(err, unix.EADDRINUSE) {
		if err := removeStale(path); err != nil {
			return nil, err
		}
		ln, err = net.ListenUnix("unix", addr)
	}
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, socketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %#o: %w", socketMode, err)
	}
	return ln, nil
}

// removeStale removes the socket file at path if it is this user's and
// nobody listens on it.
func removeStale(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // gone meanwhile
		}
		return fmt.Errorf("stat %s: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFSOCK:
		return fmt.Errorf("%w: %s exists and is not a socket (file type %#o); remove it or choose another path", ErrBadAddr, path, st.Mode&unix.S_IFMT)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%w: socket %s is owned by uid %d, this process runs as uid %d", ErrBadAddr, path, st.Uid, os.Geteuid())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("%w: a process listens on %s", ErrAddrInUse, path)
	case errors.Is(err, unix.ENOENT):
		return nil // gone meanwhile
	case !errors.Is(err, unix.ECONNREFUSED):
		return fmt.Errorf("%w: %s: probing for a listener: %w", ErrAddrInUse, path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// checkUnixPeer admits the peer of a unix connection only if it runs as
// this process's user.
func checkUnixPeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("%T is not a unix connection", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: peer pid %d runs as uid %d, this process as uid %d", ErrForeignPeer, cred.Pid, cred.Uid, os.Geteuid())
	}
	return nil
}
