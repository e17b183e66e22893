package engine

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/commitcore/commitcore/shm"
)

// Serve runs host on the calling goroutine, locked to its OS thread, over
// the shared-memory link l, pacing it with the link's idle strategy (which
// also beats this side's heartbeat). It returns nil when stop is closed and
// an error when the host fails. A dead or departed coordinator does not
// stop it: the host's nodes see it through Conn.Alive and terminate their
// transactions on their own, and a backup coordinator may attach to the
// link and carry on. This is the main loop of a participant process.
func Serve(l *shm.Link, host *Host, stop <-chan struct{}) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		n, err := host.DoWork()
		if err != nil {
			return err
		}
		if err := l.Idle(n); err != nil && !errors.Is(err, shm.ErrPeerDead) && !errors.Is(err, shm.ErrPeerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
}
