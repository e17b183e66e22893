package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/commitcore/commitcore/accel"
	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/venue"
	"github.com/commitcore/commitcore/shm"
)

// envSpec carries a child's spec from the supervisor, JSON-encoded.
const envSpec = "COMMITCORE_XSIM_SPEC"

// spec is everything a child process needs to play its role.
type spec struct {
	Name         string            `json:"name"` // segment names start with it
	Dir          string            `json:"dir"`
	Journal      string            `json:"journal"` // the coordinator's journal file
	Market       venue.Config      `json:"market"`
	Protocol     engine.Mode       `json:"protocol"`
	Idle         engine.IdleKind   `json:"idle"`
	Batch        int               `json:"batch"`
	Rate         float64           `json:"rate"`
	Sync         string            `json:"sync"`
	First        uint64            `json:"first"` // coordinator: the first command's index
	End          uint64            `json:"end"`   // coordinator: one past the last
	Faults       []fault           `json:"faults"`
	Shocks       []shock           `json:"shocks"`
	Halt         time.Duration     `json:"halt"` // how long a band trip halts a symbol
	Timeouts     timeouts          `json:"timeouts"`
	RingCapacity int               `json:"ring_capacity"`
	Slots        int               `json:"slots"`
	Fabric       string            `json:"fabric"`  // "shm", "unix" or "tcp"
	Addrs        map[string]string `json:"addrs"`   // coordinator over tcp: each participant's address
	Listen       string            `json:"listen"`  // participant over tcp: where to listen ("" for any port)
	Recover      bool              `json:"recover"` // participant: rebuild from the journal first
	Standby      bool              `json:"standby"` // coordinator: wait, prepared, to take over
	Out          string            `json:"out"`     // participant: where its final report goes
}

// timeouts are the protocol's timers for one run.
type timeouts struct {
	Prepare, PreCommit          time.Duration
	Decision, CommitWait, Grace time.Duration
}

// defaultTimeouts are the timers that suit this machine. With a core per
// process the NSE's 100 µs PREPARE and 50 µs PRE-COMMIT hold; with fewer
// cores than processes a component waits for the scheduler, not for its
// peer, and those timeouts would abort healthy transactions (see README).
func defaultTimeouts(o *options) timeouts {
	t := timeouts{Prepare: 100 * time.Microsecond, PreCommit: 50 * time.Microsecond}
	if runtime.NumCPU() < 8 {
		t = timeouts{Prepare: 20 * time.Millisecond, PreCommit: 5 * time.Millisecond}
	}
	if o.prepare > 0 {
		t.Prepare = o.prepare
	}
	if o.precommit > 0 {
		t.PreCommit = o.precommit
	}
	// A participant waits for the decision well past the coordinator's
	// PREPARE timeout before it suspects the coordinator, and gives a
	// suspected coordinator a grace period before it aborts by CAS.
	t.Decision = 4 * t.Prepare
	t.CommitWait = 4 * t.PreCommit
	t.Grace = 20 * t.Prepare
	return t
}

func (sp *spec) shmOptions() *shm.Options {
	o := &shm.Options{Dir: sp.Dir}
	if sp.Idle == engine.IdleSpin {
		o.Idle = shm.BusySpin
	}
	return o
}

// Region kinds of the run's own segments, so that one opened by name is
// known to be what the supervisor made.
const (
	regionTable   = 1 // the decision table
	regionBreaker = 2 // the circuit breaker's circuitbreaker.StateStore
)

// onlyRegion returns seg's one region, which must be of kind k.
func onlyRegion(seg *shm.Segment, k uint32) ([]byte, error) {
	rs := seg.Regions()
	if len(rs) != 1 || rs[0].Kind != k {
		return nil, fmt.Errorf("segment %s: regions %+v, want one of kind %d: not a segment of this run; remove stale segments with -clean", seg.Name(), rs, k)
	}
	return seg.Region(0), nil
}

func (sp *spec) tableName() string            { return sp.Name + "-table" }
func (sp *spec) breakerName() string          { return sp.Name + "-breaker" }
func (sp *spec) linkName(r venue.Role) string { return sp.Name + "-" + r.String() }

// socketPath is participant r's socket over the unix fabric: in the
// journal's directory, private to the run.
func (sp *spec) socketPath(r venue.Role) string {
	return filepath.Join(filepath.Dir(sp.Journal), r.String()+".sock")
}

func (sp *spec) unix() *accel.UnixFabric {
	return &accel.UnixFabric{Options: accel.TCPOptions{RingCapacity: sp.RingCapacity}}
}

func (sp *spec) nodeConfig(r venue.Role, p engine.Participant, table *engine.DecisionTable) engine.NodeConfig {
	return engine.NodeConfig{
		ID: engine.NodeID(r), Matching: r == venue.Matching, Participant: p, Table: table,
		DecisionTimeout: sp.Timeouts.Decision, CommitTimeout: sp.Timeouts.CommitWait, Grace: sp.Timeouts.Grace,
	}
}

func readSpec() (*spec, error) {
	s := os.Getenv(envSpec)
	if s == "" {
		return nil, fmt.Errorf("-role is for the simulator's own child processes (it sets %s); run exchange-sim without -role", envSpec)
	}
	var sp spec
	if err := json.Unmarshal([]byte(s), &sp); err != nil {
		return nil, fmt.Errorf("child spec in %s: %w", envSpec, err)
	}
	return &sp, nil
}

// event is one line a child writes to the supervisor on its stdout.
type event struct {
	Ev    string `json:"ev"`             // ready, progress, stats, fault, done
	Addr  string `json:"addr,omitempty"` // ready, from a participant over tcp
	Sent  uint64 `json:"sent,omitempty"`
	P99   int64  `json:"p99,omitempty"`
	Fault *fault `json:"fault,omitempty"`
	Stats *stats `json:"stats,omitempty"`
}

// eventWriter writes events as JSON lines.
type eventWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newEventWriter(w io.Writer) *eventWriter { return &eventWriter{enc: json.NewEncoder(w)} }

func (w *eventWriter) send(e event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enc.Encode(e); err != nil {
		return fmt.Errorf("report to the supervisor: %w", err)
	}
	return nil
}

// procHooks are a coordinator process's hooks: events to the supervisor
// on stdout, its go-ahead after a fault on stdin.
type procHooks struct {
	ev *eventWriter
	in *bufio.Scanner
}

func (h procHooks) fault(f fault, s *stats) error {
	if err := s.encode(); err != nil {
		return err
	}
	if err := h.ev.send(event{Ev: "stats", Stats: s}); err != nil {
		return err
	}
	if err := h.ev.send(event{Ev: "fault", Fault: &f}); err != nil {
		return err
	}
	if !h.in.Scan() {
		return fmt.Errorf("fault %s %s@%d: the supervisor went away", f.Kind, f.Role, f.At)
	}
	return nil
}

func (h procHooks) progress(sent uint64, p99 int64) {
	h.ev.send(event{Ev: "progress", Sent: sent, P99: p99})
}
