package accel

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestUnixSocketFile checks the socket file's life: mode 0600 while
// listening, removed by Close, and a path that cannot work refused at once
// with ErrBadAddr, by Listen and by Dial alike.
func TestUnixSocketFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	ep, err := (&UnixFabric{}).Listen(path)
	require.NoError(t, err)
	st, err := os.Lstat(path)
	require.NoError(t, err)
	require.Equal(t, os.ModeSocket|0o600, st.Mode(), "socket file mode")
	require.Equal(t, path, ep.Addr())
	require.NoError(t, ep.Close())
	_, err = os.Lstat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "Close left the socket file")

	long := filepath.Join(dir, strings.Repeat("x", 108)+".sock")
	for _, bad := range []string{"", "@abstract", long} {
		_, err := (&UnixFabric{}).Listen(bad)
		require.ErrorIs(t, err, ErrBadAddr, "listen %q", bad)
		start := time.Now()
		_, err = (&UnixFabric{}).Dial(bad)
		require.ErrorIs(t, err, ErrBadAddr, "dial %q", bad)
		require.Less(t, time.Since(start), time.Second, "dial %q retried a path that cannot work", bad)
	}
	_, err = (&UnixFabric{}).Listen(long)
	require.ErrorContains(t, err, "at most 107")
}

// TestUnixUnsafeDirectory: a directory that others may write without the
// sticky bit is refused (they could replace the socket); with the sticky
// bit, as /tmp has, it is accepted.
func TestUnixUnsafeDirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o777))
	_, err := (&UnixFabric{}).Listen(filepath.Join(dir, "s.sock"))
	require.ErrorIs(t, err, ErrBadAddr)
	require.NoError(t, os.Chmod(dir, 0o777|os.ModeSticky))
	ep, err := (&UnixFabric{}).Listen(filepath.Join(dir, "s.sock"))
	require.NoError(t, err)
	require.NoError(t, ep.Close())
}

// TestUnixStaleSocket: a socket file nobody listens on (what a killed
// process leaves) is removed and replaced; a live listener's socket and a
// file that is not a socket are refused and left as they are.
func TestUnixStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")

	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	stale.SetUnlinkOnClose(false)
	require.NoError(t, stale.Close())
	_, err = os.Lstat(path)
	require.NoError(t, err, "no stale socket to test with")
	ep, err := (&UnixFabric{}).Listen(path)
	require.NoError(t, err, "stale socket not replaced")

	_, err = (&UnixFabric{}).Listen(path)
	require.ErrorIs(t, err, ErrAddrInUse)
	a, err := (&UnixFabric{}).Dial(path)
	require.NoError(t, err, "the refused Listen disturbed the live one")
	require.NoError(t, a.Close())
	require.NoError(t, ep.Close())

	require.NoError(t, os.WriteFile(path, []byte("data"), 0o600))
	_, err = (&UnixFabric{}).Listen(path)
	require.ErrorIs(t, err, ErrBadAddr)
	b, err := os.ReadFile(path)
	require.NoError(t, err, "a file that is not a socket was removed")
	require.Equal(t, "data", string(b))
}

// TestUnixPeerKilled: a participant process killed with SIGKILL is seen not
// alive by the coordinator's endpoint, leaves its socket file behind, and
// a successor listening on the same path replaces the file; the
// coordinator's endpoint, redialing all along, reaches the successor.
func TestUnixPeerKilled(t *testing.T) {
	ep, addr := killPeer(t, "unix", &UnixFabric{})
	_, err := os.Lstat(addr)
	require.NoError(t, err, "the killed child's socket file is gone: nothing stale to test")

	next, err := (&UnixFabric{}).Listen(addr)
	require.NoError(t, err, "stale socket of a killed process not replaced")
	defer next.Close()
	alive := func() bool {
		require.NoError(t, next.Idle(0))
		require.NoError(t, ep.Idle(0))
		return ep.Conn().Alive() && next.Conn().Alive()
	}
	require.True(t, waitFor(10*time.Second, alive), "the coordinator's endpoint never reached the successor")
}
