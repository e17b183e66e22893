package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/commitcore/commitcore/circuitbreaker"
	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/venue"
	"github.com/commitcore/commitcore/shm"
)

// readyWait bounds how long a child may take to start.
const readyWait = 60 * time.Second

// child is a component process of a procs run.
type child struct {
	role    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	ready   bool
	expect  bool // its exit is expected: killed by a fault or told to stop
	exited  bool
	restart bool // a participant restarted after a kill, or a standby
	running bool // a coordinator drives the flow
	stderr  *lastLine
}

// lastLine passes a child's stderr through and keeps its last line, which
// says why a failed child failed.
type lastLine struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	last string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(l.buf[:i])); line != "" {
			l.last = line
		}
		l.buf = l.buf[i+1:]
	}
	return l.w.Write(p)
}

func (l *lastLine) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// childEvent is an event from a child, or its exit: one channel carries
// both, so that a child's exit is handled after everything it said.
type childEvent struct {
	c    *child
	ev   event
	exit bool
	err  error // the exit's
}

// supervisor runs a procs deployment: it creates the decision table,
// starts the components, injects the faults the coordinator asks for,
// restarts what a fault killed, and audits the end state.
type supervisor struct {
	o       *options
	base    spec
	exe     string
	table   *shm.Segment
	breaker *shm.Segment // the circuit breaker's state, for a standby coordinator
	links   []string
	kids    map[string]*child // the live component of each role
	all     []*child          // every child started, for the cleanup
	standby *child            // the coordinator waiting to take over
	coord   *child
	events  chan childEvent
	stats   map[int]*stats    // latest stats of each coordinator incarnation, by pid
	addrs   map[string]string // each participant's address over tcp
	faults  faultStats
	sent    uint64
	p99     int64
	started time.Time
	ui      *progress
}

func newSupervisor(o *options, base spec, ui *progress) (*supervisor, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable to start the components: %w", err)
	}
	return &supervisor{o: o, base: base, exe: exe, kids: map[string]*child{},
		events: make(chan childEvent, 64), stats: map[int]*stats{}, addrs: map[string]string{}, ui: ui}, nil
}

// run runs the whole deployment and returns the merged stats, the live
// states of the participants and the decision table for the audit. The
// caller must call cleanup whatever run returns.
func (s *supervisor) run(interrupt <-chan os.Signal) (*stats, []liveState, *engine.DecisionTable, time.Duration, error) {
	opts := s.base.shmOptions()
	seg, err := shm.Create(s.base.tableName(), []shm.RegionSpec{{Kind: regionTable, Len: engine.DecisionTableSize(s.base.Slots)}}, opts)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	s.table = seg
	if s.breaker, err = shm.Create(s.base.breakerName(),
		[]shm.RegionSpec{{Kind: regionBreaker, Len: circuitbreaker.StateStoreSize(s.base.Market.Symbols)}}, opts); err != nil {
		return nil, nil, nil, 0, err
	}
	table, err := engine.InitDecisionTable(seg.Region(0), s.base.Slots)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	for _, r := range venue.Roles {
		s.links = append(s.links, s.base.linkName(r))
		if _, err := s.start(r.String(), s.participantSpec(r, false), interrupt); err != nil {
			return nil, nil, nil, 0, err
		}
	}
	s.started = time.Now()
	if s.coord, err = s.start("coordinator", s.coordinatorSpec(0, false), interrupt); err != nil {
		return nil, nil, nil, 0, err
	}
	// The standby is made once the primary has started, so that its epoch
	// is the primary's plus one; it prepares while the flow runs, and a
	// takeover waits for it to be ready.
	if at, ok := s.nextCoordinatorKill(0); ok {
		if s.standby, err = s.spawn("coordinator", s.coordinatorSpec(at+1, true)); err != nil {
			return nil, nil, nil, 0, err
		}
	}
	if err := s.loop(interrupt); err != nil {
		return nil, nil, nil, 0, err
	}
	elapsed := time.Since(s.started)
	lives, err := s.stopParticipants(interrupt)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	total := newStats()
	for _, st := range s.stats {
		if err := total.merge(st); err != nil {
			return nil, nil, nil, 0, err
		}
	}
	return total, lives, table, elapsed, nil
}

// coordinatorSpec is the spec of a coordinator that starts at command
// first, or of a standby, which learns where to start when it takes over.
func (s *supervisor) coordinatorSpec(first uint64, standby bool) spec {
	sp := s.base
	sp.First, sp.End, sp.Addrs, sp.Standby = first, s.o.orders, s.addrs, standby
	return sp
}

// nextCoordinatorKill returns the command at which the next -kill of the
// coordinator, at command from or later, fires, if one is to come. A
// standby is made for it, and told where it will take over (First) so that
// it gets its flow there while it waits.
func (s *supervisor) nextCoordinatorKill(from uint64) (uint64, bool) {
	at, ok := uint64(0), false
	for _, f := range s.o.faults {
		if f.Kind == "kill" && f.Role == "coordinator" && f.At >= from && (!ok || f.At < at) {
			at, ok = f.At, true
		}
	}
	return at, ok
}

func (s *supervisor) participantSpec(r venue.Role, recover bool) spec {
	sp := s.base
	sp.Recover = recover
	if recover {
		sp.Listen = s.addrs[r.String()]
	}
	sp.Out = filepath.Join(filepath.Dir(s.base.Journal), r.String()+".report.json")
	return sp
}

// start starts a component and waits until it is ready.
func (s *supervisor) start(role string, sp spec, interrupt <-chan os.Signal) (*child, error) {
	c, err := s.spawn(role, sp)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(c, interrupt); err != nil {
		return nil, err
	}
	return c, nil
}

func (s *supervisor) spawn(role string, sp spec) (*child, error) {
	b, err := json.Marshal(&sp)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	cmd := exec.Command(s.exe, "-role", role)
	cmd.Env = append(os.Environ(), envSpec+"="+string(b))
	tail := &lastLine{w: os.Stderr}
	cmd.Stderr = tail
	// A child must not outlive the supervisor, whatever kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{role: role, cmd: cmd, stderr: tail, restart: sp.Recover || sp.Standby}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	s.all = append(s.all, c)
	if !sp.Standby {
		s.kids[role] = c
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %s\n", role, sc.Bytes())
				continue
			}
			s.events <- childEvent{c: c, ev: e}
		}
		s.events <- childEvent{c: c, exit: true, err: cmd.Wait()}
	}()
	return c, nil
}

// waitReady handles events until c is ready.
func (s *supervisor) waitReady(c *child, interrupt <-chan os.Signal) error {
	timeout := time.After(readyWait)
	for !c.ready {
		if err := s.step(interrupt, timeout); err != nil {
			return fmt.Errorf("start %s: %w", c.role, err)
		}
	}
	return nil
}

// loop handles events until the coordinator is done.
func (s *supervisor) loop(interrupt <-chan os.Signal) error {
	for !s.coord.expect || !s.coord.exited {
		if err := s.step(interrupt, nil); err != nil {
			return err
		}
	}
	if !s.coord.cmd.ProcessState.Success() {
		return fmt.Errorf("coordinator ended with %v; its output is above", s.coord.cmd.ProcessState)
	}
	if sb := s.standby; sb != nil {
		// Its stdin closed, an unneeded standby exits.
		sb.expect = true
		sb.stdin.Close()
		if err := s.waitExit(sb); err != nil {
			return err
		}
	}
	return nil
}

var (
	errTimeout     = errors.New("timed out")
	errInterrupted = errors.New("interrupted")
)

// step handles one event, exit, or interrupt.
func (s *supervisor) step(interrupt <-chan os.Signal, timeout <-chan time.Time) error {
	select {
	case e := <-s.events:
		if !e.exit {
			return s.handle(e.c, e.ev)
		}
		e.c.exited = true
		if !e.c.expect {
			return fmt.Errorf("%s (pid %d) exited unexpectedly (%v): %s", e.c.role, e.c.cmd.Process.Pid, e.err, e.c.stderr)
		}
		return nil
	case sig := <-interrupt:
		return fmt.Errorf("%w by %v", errInterrupted, sig)
	case <-timeout:
		return errTimeout
	}
}

func (s *supervisor) handle(c *child, e event) error {
	switch e.Ev {
	case "ready":
		c.ready = true
		if e.Addr != "" && c.role != "coordinator" {
			s.addrs[c.role] = e.Addr
		}
		if c.restart && c.role != "coordinator" {
			s.faults.Recovered++
		}
	case "running":
		c.ready, c.running = true, true
		if c.restart {
			s.faults.Recovered++
		}
	case "progress":
		s.sent, s.p99 = e.Sent, e.P99
		s.ui.show(s.sent, s.o.orders, time.Since(s.started), s.p99)
	case "stats":
		if e.Stats == nil {
			return fmt.Errorf("%s sent empty stats", c.role)
		}
		s.stats[c.cmd.Process.Pid] = e.Stats
	case "fault":
		if e.Fault == nil {
			return fmt.Errorf("%s sent an empty fault", c.role)
		}
		return s.inject(*e.Fault)
	case "done":
		c.expect = true
	default:
		return fmt.Errorf("%s sent unknown event %q", c.role, e.Ev)
	}
	return nil
}

// inject carries out f, which the coordinator has paused for.
func (s *supervisor) inject(f fault) error {
	target := s.kids[f.Role]
	if target == nil || target.exited {
		return fmt.Errorf("fault %s %s@%d: no live %s", f.Kind, f.Role, f.At, f.Role)
	}
	if !target.ready {
		if err := s.waitReady(target, nil); err != nil {
			return err
		}
	}
	s.faults.Injected++
	pid := target.cmd.Process.Pid
	switch f.Kind {
	case "stall":
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return fmt.Errorf("stall %s: %w", f.Role, err)
		}
		time.AfterFunc(f.For, func() { syscall.Kill(pid, syscall.SIGCONT) })
		s.faults.Recovered++ // SIGCONT is certain: the process resumes where it stopped
		return s.resume()
	case "kill":
		target.expect = true
		if err := target.cmd.Process.Kill(); err != nil {
			return fmt.Errorf("kill %s: %w", f.Role, err)
		}
		if f.Role == "coordinator" {
			return s.takeOver(target, f.At+1)
		}
		// The replacement is started before the coordinator goes on, so
		// that a later fault for the role finds it (and waits for it to
		// be ready) rather than the dead process: the coordinator, still
		// paused, sends no fault event meanwhile.
		if err := s.waitExit(target); err != nil {
			return err
		}
		r, err := venue.ParseRole(f.Role)
		if err != nil {
			return err
		}
		if _, err := s.spawn(f.Role, s.participantSpec(r, true)); err != nil {
			return err
		}
		return s.resume()
	}
	return fmt.Errorf("unknown fault kind %q", f.Kind)
}

// takeOver hands the flow from the killed coordinator old to the standby,
// from command first on, times the takeover, and prepares the next standby
// if another coordinator kill is to come.
func (s *supervisor) takeOver(old *child, first uint64) error {
	sb := s.standby
	if sb == nil || sb.exited {
		return errors.New("kill coordinator: no standby coordinator to take over")
	}
	if err := s.waitExit(old); err != nil {
		return err
	}
	dead := time.Now()
	if !sb.ready {
		if err := s.waitReady(sb, nil); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(sb.stdin, "takeover %d\n", first); err != nil {
		return fmt.Errorf("kill coordinator: wake the standby: %w", err)
	}
	s.coord, s.kids["coordinator"], s.standby = sb, sb, nil
	timeout := time.After(readyWait)
	for !sb.running {
		if err := s.step(nil, timeout); err != nil {
			return fmt.Errorf("standby coordinator: %w", err)
		}
	}
	s.faults.Takeovers = append(s.faults.Takeovers, time.Since(dead).Nanoseconds())
	at, ok := s.nextCoordinatorKill(first)
	if !ok {
		return nil
	}
	var err error
	s.standby, err = s.spawn("coordinator", s.coordinatorSpec(at+1, true))
	return err
}

// resume lets the paused coordinator go on.
func (s *supervisor) resume() error {
	if _, err := io.WriteString(s.coord.stdin, "go\n"); err != nil {
		return fmt.Errorf("resume the coordinator: %w", err)
	}
	return nil
}

// waitExit handles events until c has exited.
func (s *supervisor) waitExit(c *child) error {
	timeout := time.After(readyWait)
	for !c.exited {
		if err := s.step(nil, timeout); err != nil {
			return fmt.Errorf("wait for %s to exit: %w", c.role, err)
		}
	}
	return nil
}

// stopParticipants tells each participant to stop and reads its report.
func (s *supervisor) stopParticipants(interrupt <-chan os.Signal) ([]liveState, error) {
	var lives []liveState
	for _, r := range venue.Roles {
		c := s.kids[r.String()]
		if !c.ready {
			if err := s.waitReady(c, interrupt); err != nil {
				return nil, err
			}
		}
		c.expect = true
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return nil, fmt.Errorf("stop %s: %w", r, err)
		}
	}
	for _, r := range venue.Roles {
		c := s.kids[r.String()]
		if err := s.waitExit(c); err != nil {
			return nil, err
		}
		if !c.cmd.ProcessState.Success() {
			return nil, fmt.Errorf("%s ended with %v; its output is above", r, c.cmd.ProcessState)
		}
		var rep participantReport
		path := s.participantSpec(r, false).Out
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s's report: %w", r, err)
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, fmt.Errorf("%s's report %s: %w", r, path, err)
		}
		lives = append(lives, liveState{role: r, committed: rep.Committed, digest: rep.Digest, checks: rep.Checks, inFlight: rep.InFlight})
	}
	return lives, nil
}

// cleanup kills every child still running and removes the run's segments.
func (s *supervisor) cleanup() {
	for _, c := range s.all {
		if !c.exited && c.cmd.Process != nil {
			c.cmd.Process.Kill()
		}
	}
	for _, c := range s.all {
		for !c.exited {
			if e := <-s.events; e.exit {
				e.c.exited = true
			}
		}
	}
	opts := s.base.shmOptions()
	for _, name := range s.links {
		os.Remove(shm.SegmentPath(name, opts))
	}
	for _, seg := range []*shm.Segment{s.table, s.breaker} {
		if seg != nil {
			seg.Close()
			seg.Unlink()
		}
	}
}

// runName names a run's segments after the supervisor's pid.
func runName() string { return "xsim-" + strconv.Itoa(os.Getpid()) }
