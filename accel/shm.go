package accel

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/shm"
)

// ShmFabric is the shared-memory Fabric, the default on one host: an
// endpoint is one side of a shm.Link, and Tx is the peer's ring itself,
// mapped into this process, so a committed record is a finished one-sided
// write. The passive side creates the link (Listen), the active side opens
// it (Dial).
type ShmFabric struct {
	// Options are the segments' options (directory, liveness, idle kind);
	// nil means the defaults.
	Options *shm.Options
	// Capacity is each ring's data capacity in bytes, a power of two;
	// 0 means engine.DefaultRingCapacity.
	Capacity int
}

// Listen creates the link named name and attaches as its creating side.
func (f *ShmFabric) Listen(name string) (Endpoint, error) {
	capacity := f.Capacity
	if capacity == 0 {
		capacity = engine.DefaultRingCapacity
	}
	l, err := shm.CreateLink(name, capacity, f.Options)
	if err != nil {
		return nil, fmt.Errorf("shm fabric: listen: %w", err)
	}
	return &shmEndpoint{link: l, conn: engine.LinkConn(l), creator: true}, nil
}

// Reopen takes back the creating side of the link named name, whose
// previous holder died: a restarted participant keeps its link, rings and
// all, and the coordinator on the other side carries on (shm.ReopenLink).
func (f *ShmFabric) Reopen(name string) (Endpoint, error) {
	l, err := shm.ReopenLink(name, f.Capacity, f.Options)
	if err != nil {
		return nil, fmt.Errorf("shm fabric: reopen: %w", err)
	}
	return &shmEndpoint{link: l, conn: engine.LinkConn(l), creator: true}, nil
}

// Dial opens the link named name as its opening side.
func (f *ShmFabric) Dial(name string) (Endpoint, error) {
	l, err := shm.OpenLink(name, f.Capacity, f.Options)
	if err != nil {
		return nil, fmt.Errorf("shm fabric: dial: %w", err)
	}
	return &shmEndpoint{link: l, conn: engine.LinkConn(l)}, nil
}

type shmEndpoint struct {
	link    *shm.Link
	conn    *engine.Conn
	creator bool
	closed  atomic.Bool
}

func (e *shmEndpoint) Conn() *engine.Conn { return e.conn }

func (e *shmEndpoint) Addr() string { return e.link.Segment().Name() }

// Flush has nothing to wait for: Commit stored the records in the peer's
// ring.
func (e *shmEndpoint) Flush(time.Duration) error {
	if e.closed.Load() {
		return fmt.Errorf("shm fabric: flush %s: %w", e.Addr(), ErrClosed)
	}
	return nil
}

// Idle is the link's Idle (it also beats this side's heartbeat), with a
// dead or departed peer left to Alive.
func (e *shmEndpoint) Idle(work int) error {
	if e.closed.Load() {
		return fmt.Errorf("shm fabric: idle %s: %w", e.Addr(), ErrClosed)
	}
	err := e.link.Idle(work)
	if err != nil && !errors.Is(err, shm.ErrPeerDead) && !errors.Is(err, shm.ErrPeerClosed) {
		return fmt.Errorf("shm fabric: %w", err)
	}
	return nil
}

// Close detaches; the creating side also removes the segment's file.
func (e *shmEndpoint) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	err := e.link.Close()
	if e.creator {
		err = errors.Join(err, e.link.Unlink())
	}
	if err != nil {
		return fmt.Errorf("shm fabric: close %s: %w", e.Addr(), err)
	}
	return nil
}
