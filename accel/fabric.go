package accel

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/commitcore/commitcore/engine"
)

// Fabric errors, for errors.Is.
var (
	// ErrClosed means the endpoint was closed.
	ErrClosed = errors.New("accel: endpoint closed")
	// ErrTimeout means Flush ran out of time before the peer's ring had
	// every record: the peer is slow, stopped reading, or unreachable.
	ErrTimeout = errors.New("accel: fabric timeout")
	// ErrLost means records were lost in a connection drop: they left this
	// side and never reached the peer's ring. The protocol treats them as
	// lost messages (a PREPARE times out, PRE-COMMIT and COMMIT are
	// retransmitted), exactly as it treats a message dropped at a full ring.
	ErrLost = errors.New("accel: records lost in a connection drop")
	// ErrPeerBusy means the passive end already serves another peer that
	// is alive (TCPFabric, UnixFabric; ShmFabric's Dial fails with
	// shm.ErrSlotBusy in the same case).
	ErrPeerBusy = errors.New("accel: the passive end serves another live peer")
	// ErrProtocol means the peer sent bytes that no correct endpoint sends
	// (a foreign service, a corrupt stream, a sequence gap or repeat); the
	// connection is dropped.
	ErrProtocol = errors.New("accel: fabric protocol violation")
	// ErrBadAddr means a fabric address cannot be used: a unix socket path
	// that is empty, abstract or too long, in a directory other users may
	// write, or taken by something other than a stale socket of this user.
	ErrBadAddr = errors.New("accel: unusable fabric address")
	// ErrAddrInUse means another endpoint listens at the address
	// (UnixFabric; TCPFabric's Listen fails with the system's EADDRINUSE).
	ErrAddrInUse = errors.New("accel: another endpoint listens at the address")
	// ErrForeignPeer means the process at the other end of a unix socket
	// runs as another user; the connection is refused.
	ErrForeignPeer = errors.New("accel: peer runs as another user")
)

// Fabric connects a coordinator to participant hosts the way RDMA does:
// each side writes records straight into the ring the other side reads
// (a one-sided write), and learns from a completion when they have
// landed. The passive side (the participant host) Listens, the active side
// (the coordinator) Dials. ShmFabric, UnixFabric and TCPFabric are the
// software implementations; an RDMA implementation would register the
// rings as memory regions and post writes to a queue pair, and nothing
// above the Endpoint would change.
type Fabric interface {
	// Listen makes the passive end at addr (a link name, a socket path, a
	// host:port) and returns at once; the peer may attach, leave and
	// attach again.
	Listen(addr string) (Endpoint, error)
	// Dial attaches to the passive end at addr. It returns once attached,
	// or with an error if it cannot attach.
	Dial(addr string) (Endpoint, error)
}

// Endpoint is one side of a fabric connection to one peer.
//
// Its contract, which every Fabric's endpoints keep (the conformance suite
// in the tests checks it):
//
//   - Ordering: records reach the peer's Rx in the order they were
//     committed to Tx, with their types and payloads intact.
//   - No duplication: no record is delivered twice, reconnections
//     included. A connection drop may lose the records in flight (never
//     duplicate or reorder them); Flush reports that loss.
//   - Back-pressure: when the peer does not read, Tx fills and Claim
//     returns ringbuf.ErrFull; nothing blocks the writer, and every record
//     accepted is delivered once the peer reads again.
//   - Failure detection: Conn().Alive turns false when the peer dies, closes
//     its end, loses the connection or falls silent, so the protocol's
//     nodes treat the coordinator as suspected and terminate by its rules.
//
// Like the rings it is made of, an endpoint has one writer and one reader:
// one goroutine writes Tx (and calls Flush and Conn().Beat), one reads Rx
// (and calls Idle and Conn().Alive), as engine.Core and Serve do; Close
// comes after both have stopped.
type Endpoint interface {
	// Conn returns the endpoint as the engine sees it: Tx is the peer's
	// ring as this side writes it (Claim, fill, Commit: a one-sided
	// write), Rx the ring the peer writes into, Bell the doorbell a write
	// into Rx rings, and Alive the failure detector. It is the same Conn
	// for the endpoint's life, across reconnections, so engine.Dial and
	// engine.NewHost take it as they take a shared-memory link's.
	Conn() *engine.Conn
	// Flush waits until every record committed to Tx before the call is
	// in the peer's ring: the completion of an RDMA signalled write, which
	// covers every earlier write on its queue pair. It returns an error
	// wrapping ErrTimeout, ErrLost or ErrClosed when that cannot be known.
	Flush(timeout time.Duration) error
	// Idle paces a duty cycle that reads Rx: call it after each pass with
	// the work done. Without work it spins briefly, then parks on Bell. It
	// returns an error only when the endpoint is closed or broken; a dead
	// peer is for Alive to report, not an error.
	Idle(work int) error
	// Addr returns the address the peer dials: the link name, the socket
	// path, or the host:port actually listened on.
	Addr() string
	// Close detaches from the peer (which sees it as not alive) and
	// releases the endpoint. The Conn must not be used afterwards.
	Close() error
}

// Serve runs host over ep on the calling goroutine, locked to its OS
// thread, pacing it with ep.Idle, until stop is closed (it then returns
// nil) or the host or the endpoint fails. A dead, departed or unreachable
// coordinator does not stop it: the host's nodes see it through
// Conn().Alive and terminate their transactions by the protocol's rules,
// and a coordinator that comes back (or a backup) carries on over the same
// endpoint. It is engine.Serve for any Fabric: the main loop of a
// participant process. Close ep only after Serve has returned.
func Serve(ep Endpoint, host *engine.Host, stop <-chan struct{}) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for n := 1; ; { // Idle first, so a closed endpoint's rings are never read
		select {
		case <-stop:
			return nil
		default:
		}
		if err := ep.Idle(n); err != nil {
			return fmt.Errorf("serve %s: %w", ep.Addr(), err)
		}
		var err error
		if n, err = host.DoWork(); err != nil {
			return fmt.Errorf("serve %s: %w", ep.Addr(), err)
		}
	}
}
