package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/commitcore/commitcore/accel"
	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/engine/journal"
	"github.com/commitcore/commitcore/internal/venue"
	"github.com/commitcore/commitcore/ringbuf"
	"github.com/commitcore/commitcore/shm"
)

// Deployment says where the participants run and what carries the
// protocol's messages.
type Deployment uint8

// Deployments.
const (
	// Threads runs the participants on a runner thread of this process
	// over heap rings (engine.New).
	Threads Deployment = iota
	// ShmFabric runs them on a goroutine of this process behind an
	// accel.ShmFabric link: the shared-memory rings of the processes
	// deployment without the process boundary.
	ShmFabric
	// TCPFabric runs them behind an accel.TCPFabric connection over
	// loopback: the socket baseline.
	TCPFabric
	// UnixFabric runs them behind an accel.UnixFabric connection: the same
	// protocol as TCPFabric over a unix-domain socket in the scratch
	// directory.
	UnixFabric
	// Procs runs coordinator, matching, risk and settlement as four
	// processes over shared memory (cmd/exchange-sim -mode procs).
	Procs
)

// String returns the deployment's short name.
func (d Deployment) String() string {
	switch d {
	case Threads:
		return "threads"
	case ShmFabric:
		return "shm-fabric"
	case TCPFabric:
		return "tcp-fabric"
	case UnixFabric:
		return "unix-fabric"
	case Procs:
		return "procs"
	}
	return fmt.Sprintf("deployment(%d)", uint8(d))
}

// Config is one configuration of the core under load.
type Config struct {
	// Deploy is where the participants run.
	Deploy Deployment
	// Mode is 3PC or 2PC.
	Mode engine.Mode
	// Idle is how the participants (and the driver) wait.
	Idle engine.IdleKind
	// Batch is the most commands in flight (Load.Batch).
	Batch int
}

// Name returns the configuration's name, which is also its .hgrm file's
// stem: deployment, protocol, idle kind and batch.
func (c Config) Name() string {
	return fmt.Sprintf("%s-%s-%s-b%d", c.Deploy, protocolName(c.Mode), c.Idle, c.Batch)
}

func protocolName(m engine.Mode) string {
	if m == engine.TwoPhase {
		return "2pc"
	}
	return "3pc"
}

// Timeouts are the protocol timers of every in-process run: the NSE's
// 100 µs PREPARE and 50 µs PRE-COMMIT with a core per component, and
// 20 ms and 5 ms with fewer than eight cores, where a component waits for
// the scheduler rather than its peer (the exchange simulator's rule, so
// the in-process and processes rows run under the same timers).
func Timeouts() engine.Timeouts {
	if runtime.NumCPU() < 8 {
		return engine.Timeouts{Prepare: 20 * time.Millisecond, PreCommit: 5 * time.Millisecond}
	}
	return engine.Timeouts{Prepare: 100 * time.Microsecond, PreCommit: 50 * time.Microsecond}
}

// rig is one configuration set up in this process: the Core to drive and
// what to tear down after.
type rig struct {
	core    *engine.Core
	closers []func() error
}

func (r *rig) close() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i]())
	}
	return errors.Join(errs...)
}

// newRig builds configuration c with the venue's three participants and
// a journal (no flush: the page cache keeps it across a process crash)
// in dir, where a UnixFabric rig also puts its socket.
func newRig(c Config, market venue.Config, dir string, seq int) (*rig, error) {
	parts, err := venue.NewAll(market)
	if err != nil {
		return nil, err
	}
	r := &rig{}
	j, err := journal.Open(filepath.Join(dir, fmt.Sprintf("journal-%d", seq)), journal.Options{})
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, j.Close)
	to := Timeouts()
	cfg := engine.Config{
		Mode: c.Mode, Timeouts: to, Idle: c.Idle, Log: engine.NewJournalLog(j),
		DecisionTimeout: 4 * to.Prepare, CommitTimeout: 4 * to.PreCommit, Grace: 20 * to.Prepare,
	}
	switch c.Deploy {
	case Threads:
		if r.core, err = engine.New(cfg, parts...); err != nil {
			return nil, errors.Join(err, r.close())
		}
		r.closers = append(r.closers, r.core.Close)
		return r, nil
	case ShmFabric:
		opts := &shm.Options{}
		if c.Idle == engine.IdleSpin {
			opts.Idle = shm.BusySpin
		}
		err = r.fabric(&accel.ShmFabric{Options: opts}, fmt.Sprintf("bench-%d-%d", os.Getpid(), seq), cfg, parts)
	case TCPFabric:
		err = r.fabric(&accel.TCPFabric{}, "127.0.0.1:0", cfg, parts)
	case UnixFabric:
		err = r.fabric(&accel.UnixFabric{}, filepath.Join(dir, fmt.Sprintf("fabric-%d.sock", seq)), cfg, parts)
	default:
		err = fmt.Errorf("bench: %s is not an in-process deployment", c.Deploy)
	}
	if err != nil {
		return nil, errors.Join(err, r.close())
	}
	return r, nil
}

// fabric serves the participants over one end of f and dials the Core
// over the other, sharing a heap decision table: the protocol unchanged,
// only the fabric between coordinator and participants.
func (r *rig) fabric(f accel.Fabric, addr string, cfg engine.Config, parts []engine.Participant) error {
	table, err := engine.InitDecisionTable(ringbuf.AlignedBytes(engine.DecisionTableSize(engine.DefaultSlots)), engine.DefaultSlots)
	if err != nil {
		return err
	}
	host, err := f.Listen(addr)
	if err != nil {
		return err
	}
	r.closers = append(r.closers, host.Close)
	var nodes []*engine.Node
	ids := make([]engine.NodeID, len(parts))
	for i, p := range parts {
		nd, err := engine.NewNode(engine.NodeConfig{ID: engine.NodeID(i), Matching: i == int(venue.Matching), Participant: p,
			Table: table, DecisionTimeout: cfg.DecisionTimeout, CommitTimeout: cfg.CommitTimeout, Grace: cfg.Grace})
		if err != nil {
			return err
		}
		nodes = append(nodes, nd)
		ids[i] = engine.NodeID(i)
	}
	h, err := engine.NewHost(host.Conn(), engine.NewMonotonicClock(), nodes...)
	if err != nil {
		return err
	}
	stop, served := make(chan struct{}), make(chan error, 1)
	go func() { served <- accel.Serve(host, h, stop) }()
	r.closers = append(r.closers, func() error {
		close(stop)
		return <-served
	})
	coord, err := f.Dial(host.Addr())
	if err != nil {
		return err
	}
	r.closers = append(r.closers, coord.Close)
	if r.core, err = engine.Dial(cfg, table, engine.Remote{Conn: coord.Conn(), Nodes: ids}); err != nil {
		return err
	}
	r.closers = append(r.closers, r.core.Close)
	return nil
}

// driverIdle is how the driver waits between due commands: it must wake
// within a fraction of the send period, so it spins, or spins then
// yields; it never parks.
func driverIdle(k engine.IdleKind) ringbuf.IdleStrategy {
	return engine.NewIdleStrategy(k, nil)
}
