package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/commitcore/commitcore/accel"
	"github.com/commitcore/commitcore/circuitbreaker"
	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/engine/journal"
	"github.com/commitcore/commitcore/internal/venue"
	"github.com/commitcore/commitcore/shm"
	"golang.org/x/sys/unix"
)

// attachWait bounds how long a child retries to attach to a side of a link
// whose previous holder has died but is not yet reaped.
const attachWait = 10 * time.Second

// runRole runs this process as one component of a procs run.
func runRole(role string) error {
	sp, err := readSpec()
	if err != nil {
		return err
	}
	ev := newEventWriter(os.Stdout)
	if role == "coordinator" {
		return runCoordinator(sp, ev)
	}
	r, err := venue.ParseRole(role)
	if err != nil {
		return fmt.Errorf("-role: %w", err)
	}
	return runParticipant(sp, r, ev)
}

// participantReport is what a participant process leaves for the audit.
type participantReport struct {
	Role      string          `json:"role"`
	Committed []engine.TxID   `json:"committed"`
	Digest    [32]byte        `json:"digest"`
	Checks    []venue.Check   `json:"checks"`
	InFlight  int             `json:"in_flight"`
	Counters  engine.Counters `json:"counters"`
}

func runParticipant(sp *spec, r venue.Role, ev *eventWriter) error {
	p, err := venue.New(sp.Market, r)
	if err != nil {
		return err
	}
	rec := venue.NewRecorder(p)
	seg, table, err := sp.openTable()
	if err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	defer seg.Close()
	clock := engine.NewMonotonicClock()
	node, err := engine.NewNode(sp.nodeConfig(r, rec, table))
	if err != nil {
		return err
	}
	// Attach before recovering: the link must be ours before the journal
	// is read, so that nothing the coordinator journals later is missed.
	ep, err := sp.listen(r)
	if errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("%w: the shared-memory directory %s is full; free space there or choose another with -dir", err, sp.Dir)
	}
	if err != nil {
		return err
	}
	defer ep.Close()
	if sp.Recover {
		if err := recoverNode(node, sp.Journal, clock); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	}
	host, err := engine.NewHost(ep.Conn(), clock, node)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; close(stop) }()
	if err := ev.send(event{Ev: "ready", Addr: ep.Addr()}); err != nil {
		return err
	}
	if err := accel.Serve(ep, host, stop); err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	rep := participantReport{Role: r.String(), Committed: rec.Committed(), Checks: venue.Audit(rec),
		InFlight: node.InFlight(), Counters: node.Counters()}
	if rep.Digest, err = venue.Digest(rec); err != nil {
		return fmt.Errorf("%s: digest: %w", r, err)
	}
	return writeJSONFile(sp.Out, &rep)
}

// recoverNode rebuilds a restarted participant from the coordinator's
// journal, which the live coordinator keeps writing meanwhile.
func recoverNode(node *engine.Node, path string, clock engine.Clock) error {
	recs, errf, c, err := engine.ReadJournal(path)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := node.Recover(clock.Now(), recs); err != nil {
		return err
	}
	return errf()
}

func retryBusy[T any](f func() (T, error)) (T, error) {
	deadline := time.Now().Add(attachWait)
	for {
		v, err := f()
		if err == nil || !errors.Is(err, shm.ErrSlotBusy) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(time.Millisecond)
	}
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func syncPolicy(s string) journal.SyncPolicy {
	switch s {
	case "batch":
		return journal.SyncBatch
	case "interval":
		return journal.SyncInterval
	}
	return journal.SyncNone
}

// runCoordinator runs a coordinator process. The primary attaches to the
// decision table and to each participant's link and drives the order flow.
// A standby (sp.Standby) prepares itself while the primary runs
// (engine.NewStandby), says it is ready, and waits for the supervisor's
// "takeover N" after the primary's death: then it restores the circuit
// breaker's halts from the state its predecessors published, attaches,
// fences the old epoch, finishes what was in flight, and drives the flow
// from command N.
func runCoordinator(sp *spec, ev *eventWriter) error {
	seg, table, err := sp.openTable()
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	defer seg.Close()
	cfg := sp.coreConfig(nil)
	gate, err := newBreakerGate(sp.Market, sp.Halt, table)
	if err != nil {
		return err
	}
	gate.configure(&cfg)
	bseg, err := shm.Open(sp.breakerName(), sp.shmOptions())
	if err != nil {
		return fmt.Errorf("coordinator: circuit breaker state: %w", err)
	}
	defer bseg.Close()
	mem, err := onlyRegion(bseg, regionBreaker)
	if err != nil {
		return fmt.Errorf("coordinator: circuit breaker state: %w", err)
	}
	store, err := circuitbreaker.NewStateStore(mem, sp.Market.Symbols)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if err := gate.handOver(store); err != nil {
		return err
	}
	sb, err := engine.NewStandby(cfg, table, len(venue.Roles))
	if err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	first := sp.First
	// A standby is told where its takeover is scheduled (First): it gets
	// the flow there while it waits, which is milliseconds of generating
	// commands, so that a takeover does not pay for it.
	flow := venue.NewFlow(sp.Market)
	skipFlow(flow, 0, first, sp.Shocks)
	skipped := first
	if sp.Standby {
		if err := ev.send(event{Ev: "ready"}); err != nil {
			return err
		}
		if !in.Scan() {
			return nil // the run ended without needing this standby
		}
		if _, err := fmt.Sscanf(in.Text(), "takeover %d", &first); err != nil {
			return fmt.Errorf("standby: %q from the supervisor: %w", in.Text(), err)
		}
		// The predecessor is dead: its last published state is final,
		// and no command is admitted before the halts are back.
		if err := gate.restore(); err != nil {
			return fmt.Errorf("standby: %w", err)
		}
	}
	var remotes []engine.Remote
	for _, r := range venue.Roles {
		ep, err := sp.dial(r)
		if err != nil {
			return err
		}
		defer ep.Close()
		remotes = append(remotes, engine.Remote{Conn: ep.Conn(), Nodes: []engine.NodeID{engine.NodeID(r)}})
	}
	j, err := journal.Open(sp.Journal, journal.Options{Sync: syncPolicy(sp.Sync)})
	if err != nil {
		return err
	}
	defer j.Close()
	var rerr error
	core, err := sb.TakeOver(engine.NewJournalLog(j), engine.JournalRecordsNewestFirst(j, &rerr), remotes...)
	if err != nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("coordinator: read journal for takeover: %w", rerr)
	}
	defer core.Close()
	if first < skipped {
		flow, skipped = venue.NewFlow(sp.Market), 0
	}
	skipFlow(flow, skipped, first, sp.Shocks)
	h := procHooks{ev: ev, in: in}
	d := newDriver(core, flow, h, first, sp.End, sp.Batch, sp.Rate, sp.Idle)
	d.faults, d.shocks, d.gate = sp.Faults, sp.Shocks, gate
	if err := ev.send(event{Ev: "running"}); err != nil {
		return err
	}
	if err := d.run(); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if gate.err != nil {
		return fmt.Errorf("coordinator: %w", gate.err)
	}
	if err := j.Flush(); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if err := d.stats.encode(); err != nil {
		return err
	}
	if err := ev.send(event{Ev: "stats", Stats: d.stats}); err != nil {
		return err
	}
	return ev.send(event{Ev: "done"})
}

// coreConfig is the Core configuration both deployments share.
func (sp *spec) coreConfig(log engine.Log) engine.Config {
	return engine.Config{
		Mode:            sp.Protocol,
		Timeouts:        engine.Timeouts{Prepare: sp.Timeouts.Prepare, PreCommit: sp.Timeouts.PreCommit},
		DecisionTimeout: sp.Timeouts.Decision, CommitTimeout: sp.Timeouts.CommitWait, Grace: sp.Timeouts.Grace,
		Slots: sp.Slots, RingCapacity: sp.RingCapacity, Idle: sp.Idle, Log: log,
	}
}

// skipFlow advances a backup coordinator's flow, which has passed from
// commands, past the first n its predecessors sent, applying the shocks
// among them so prices carry on from where they were.
func skipFlow(flow *venue.Flow, from, n uint64, shocks []shock) {
	done := from
	for _, sh := range sortedShocks(shocks) {
		if sh.At < from {
			continue
		}
		if sh.At >= n {
			break
		}
		flow.Skip(sh.At - done)
		flow.Shock(sh.Symbol, sh.Pct)
		done = sh.At
	}
	flow.Skip(n - done)
}

// openTable maps the run's decision table, which the supervisor created.
func (sp *spec) openTable() (*shm.Segment, *engine.DecisionTable, error) {
	seg, err := shm.Open(sp.tableName(), sp.shmOptions())
	if err != nil {
		return nil, nil, err
	}
	mem, err := onlyRegion(seg, regionTable)
	if err != nil {
		seg.Close()
		return nil, nil, fmt.Errorf("decision table: %w", err)
	}
	table, err := engine.OpenDecisionTable(mem)
	if err != nil {
		seg.Close()
		return nil, nil, fmt.Errorf("decision table: %w", err)
	}
	return seg, table, nil
}

// listen makes participant r's end of its link to the coordinator: a
// shared-memory link it creates (or, restarted, takes back from its dead
// predecessor), or a TCP or unix-socket endpoint the coordinator dials (a
// restarted participant's Listen replaces its dead predecessor's socket).
func (sp *spec) listen(r venue.Role) (accel.Endpoint, error) {
	if sp.Fabric == "unix" {
		return sp.unix().Listen(sp.socketPath(r))
	}
	if sp.Fabric == "tcp" {
		addr := sp.Listen
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		return retryBusy(func() (accel.Endpoint, error) { return sp.tcp().Listen(addr) })
	}
	if sp.Recover {
		return retryBusy(func() (accel.Endpoint, error) { return sp.shm().Reopen(sp.linkName(r)) })
	}
	return sp.shm().Listen(sp.linkName(r))
}

// dial makes the coordinator's end of its link to participant r.
func (sp *spec) dial(r venue.Role) (accel.Endpoint, error) {
	if sp.Fabric == "unix" {
		return sp.unix().Dial(sp.socketPath(r))
	}
	if sp.Fabric == "tcp" {
		return sp.tcp().Dial(sp.Addrs[r.String()])
	}
	return retryBusy(func() (accel.Endpoint, error) { return sp.shm().Dial(sp.linkName(r)) })
}

func (sp *spec) tcp() *accel.TCPFabric {
	return &accel.TCPFabric{Options: accel.TCPOptions{RingCapacity: sp.RingCapacity}}
}

func (sp *spec) shm() *accel.ShmFabric {
	return &accel.ShmFabric{Options: sp.shmOptions(), Capacity: sp.RingCapacity}
}
