package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"
)

// Default participant-node timeouts.
const (
	// DefaultDecisionTimeout is how long a node waits in PREPARED before it
	// reads the decision table itself.
	DefaultDecisionTimeout = 200 * time.Microsecond
	// DefaultCommitTimeout is how long a node waits in PRECOMMITTED for
	// COMMIT before it commits on its own, if the coordinator looks dead
	// (otherwise it waits up to the grace period).
	DefaultCommitTimeout = 200 * time.Microsecond
	// DefaultGrace is how long a node in PREPARED waits for a coordinator
	// that still looks alive before it aborts an UNDECIDED transaction, and
	// how long a node in PRECOMMITTED waits for such a coordinator's COMMIT
	// before it commits on its own.
	DefaultGrace = 2 * time.Millisecond
)

// ErrMisrouted means a message reached the wrong state machine: a runtime bug.
var ErrMisrouted = errors.New("engine: message for another node")

// NodeConfig configures a Node.
type NodeConfig struct {
	// ID is the participant's NodeID: its index in the coordinator's list.
	ID NodeID
	// Matching makes this node's YES votes carry the Outcome its
	// Participant computed: set it on the participant the coordinator's
	// CoordinatorConfig.Matching names.
	Matching bool
	// Participant is what the node drives.
	Participant Participant
	// Table is the shared decision table.
	Table *DecisionTable
	// DecisionTimeout, CommitTimeout and Grace: see the defaults above;
	// zero means the default.
	DecisionTimeout time.Duration
	CommitTimeout   time.Duration
	Grace           time.Duration
}

// Participant-node states of one transaction.
const (
	stInit uint8 = iota
	stPrepared
	stPreCommitted
	stCommitted
	stAborted
)

// A node's timer classes (see timers): deadlines of one class arrive
// nearly in order.
const (
	tmDecision = iota // now + the decision timeout
	tmCommit          // now + the commit timeout
	tmRecheck         // a re-check clamped to the grace period
	nodeTimerClasses
)

var stateNames = [...]string{"INIT", "PREPARED", "PRECOMMITTED", "COMMITTED", "ABORTED"}

// entry is the node's memory of one transaction; the window holds one per
// decision-table slot, at the same index, and keeps finished transactions
// until the slot is reused, so late and duplicated messages find them.
type entry struct {
	tx     TxID
	state  uint8
	reason Reason // of a NO vote, re-sent on a duplicate PREPARE
	since  int64  // entered PREPARED, then PRECOMMITTED
	out    Outcome
}

// reset reuses e for tx without clearing the whole Outcome.
func (e *entry) reset(tx TxID, state uint8, r Reason) {
	e.tx, e.state, e.reason, e.since = tx, state, r, 0
	e.out.Reset()
}

// Node is the participant side of the protocol: it drives one Participant
// through PREPARE, PRE-COMMIT, COMMIT and ABORT, answers the coordinator,
// and terminates transactions on its own when the coordinator falls
// silent. Like Coordinator it does no I/O and reads no clock. It calls the
// Participant at most once per step of a transaction, whatever the
// messages' duplication. It is not safe for concurrent use.
type Node struct {
	cfg        NodeConfig
	p          Participant
	table      *DecisionTable
	decisionTO int64
	commitTO   int64
	grace      int64
	mask       uint64
	alive      bool
	stepped    bool
	last       TxID // highest transaction prepared (or resolved in recovery)
	inflight   int  // transactions PREPARED or PRECOMMITTED
	win        []entry
	timers     timers
	ready      Ready
	counters   Counters
}

// NewNode validates cfg and returns a node. A node restarted after a crash
// must call Recover before its first Step.
func NewNode(cfg NodeConfig) (*Node, error) {
	switch {
	case cfg.ID >= MaxParticipants:
		return nil, fmt.Errorf("node: id %d outside [0,%d)", cfg.ID, MaxParticipants)
	case cfg.Participant == nil || cfg.Table == nil:
		return nil, errors.New("node: needs a participant and a decision table")
	case cfg.DecisionTimeout < 0 || cfg.CommitTimeout < 0 || cfg.Grace < 0:
		return nil, errors.New("node: negative timeout")
	}
	n := cfg.Table.Len()
	nd := &Node{
		cfg:        cfg,
		p:          cfg.Participant,
		table:      cfg.Table,
		decisionTO: int64(orDefault(cfg.DecisionTimeout, DefaultDecisionTimeout)),
		commitTO:   int64(orDefault(cfg.CommitTimeout, DefaultCommitTimeout)),
		grace:      int64(orDefault(cfg.Grace, DefaultGrace)),
		mask:       uint64(n - 1),
		alive:      true,
		win:        make([]entry, n),
		timers:     newTimers(n, nodeTimerClasses),
	}
	nd.ready.Msgs = make([]Msg, 0, 16)
	return nd, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// SetCoordinatorAlive tells the node whether the coordinator looks alive
// (the runtime's liveness check). A node aborts an UNDECIDED transaction it
// prepared only when the coordinator looks dead or the grace period is over.
func (n *Node) SetCoordinatorAlive(alive bool) { n.alive = alive }

// Counters returns the running totals.
func (n *Node) Counters() Counters { return n.counters }

// Ready returns what to do now. It stays valid until Advance.
func (n *Node) Ready() *Ready {
	n.ready.fold()
	n.ready.Deadline = 0
	if at, _, ok := n.timers.next(); ok {
		n.ready.Deadline = at
	}
	return &n.ready
}

// Advance tells the node the runtime has acted on Ready.
func (n *Node) Advance() { n.ready.reset() }

// InFlight returns the number of transactions the node holds reservations
// for (PREPARED or PRECOMMITTED). Participant.Snapshot may be called only
// when it is zero.
func (n *Node) InFlight() int { return n.inflight }

// State returns the node's state of tx ("INIT" if it has none): for tests
// and reports.
func (n *Node) State(tx TxID) string {
	e := &n.win[uint64(tx)&n.mask]
	if e.tx != tx {
		return stateNames[stInit]
	}
	return stateNames[e.state]
}

// reply emits a participant message for tx.
func (n *Node) reply(t MsgType, m *Msg) *Msg {
	return n.ready.msg(t, n.cfg.ID, CoordinatorID, m.Epoch, m.Tx)
}

// Step handles one message from the coordinator. Messages of an epoch other
// than the table's are ignored: a replaced coordinator cannot reach the
// participant. A message with a Run counts as one for each of its
// transactions.
func (n *Node) Step(now int64, m *Msg) error {
	n.stepped = true
	if !m.Type.fromCoordinator() || !m.Type.valid() {
		return fmt.Errorf("node %d step: %w: %v is not a coordinator message", n.cfg.ID, ErrMalformed, m.Type)
	}
	if m.To != n.cfg.ID && m.To != Broadcast {
		return fmt.Errorf("node %d step: %v for node %d: %w", n.cfg.ID, m.Type, m.To, ErrMisrouted)
	}
	if m.Epoch != n.table.Epoch() {
		n.counters.Stale++
		return nil
	}
	if m.Run == 0 {
		n.step(now, m)
		return nil
	}
	if err := m.checkRun(); err != nil {
		return fmt.Errorf("node %d step: %w", n.cfg.ID, err)
	}
	// A run is each transaction's own message: step it once per
	// transaction, and give the caller its message back as it was.
	tx := m.Tx
	for i := range TxID(m.Run) + 1 {
		m.Tx = tx + i
		n.step(now, m)
	}
	m.Tx = tx
	return nil
}

// step handles m for the one transaction m.Tx.
func (n *Node) step(now int64, m *Msg) {
	slot := int(uint64(m.Tx) & n.mask)
	e := &n.win[slot]
	known := e.tx == m.Tx && e.state != stInit
	if !known && e.tx > m.Tx {
		n.counters.Stale++ // long finished: the slot moved on
		return
	}
	switch m.Type {
	case MsgPrepare:
		n.prepare(now, m, e, slot, known)
	case MsgPreCommit:
		if !known {
			n.counters.Stale++
			return
		}
		switch e.state {
		case stPrepared:
			copyOutcome(&e.out, &m.Out)
			n.p.PreCommit(m.Tx, &e.out)
			e.state, e.since = stPreCommitted, now
			n.timers.set(slot, tmCommit, now+n.commitTO)
		case stAborted:
			n.counters.Conflicts++
			return
		}
		n.reply(MsgPreCommitAck, m)
	case MsgCommit:
		if !known {
			n.counters.Stale++
			return
		}
		switch e.state {
		case stPrepared:
			if !m.HasOutcome { // 3PC COMMIT before PRE-COMMIT: impossible
				n.counters.Conflicts++
				return
			}
			copyOutcome(&e.out, &m.Out)
			n.commit(e, slot)
		case stPreCommitted:
			n.commit(e, slot)
		case stAborted:
			n.counters.Conflicts++
			return
		}
		n.reply(MsgCommitAck, m)
	case MsgAbort:
		if known {
			switch e.state {
			case stPrepared:
				n.abort(e, slot, m.Reason)
			case stPreCommitted, stCommitted:
				n.counters.Conflicts++
				return
			}
		} else if e.state != stPrepared && e.state != stPreCommitted {
			// Never prepared here: remember the abort so that a late
			// PREPARE is refused.
			e.reset(m.Tx, stAborted, ReasonNone)
		}
		n.reply(MsgAbortAck, m)
	}
}

func (n *Node) prepare(now int64, m *Msg, e *entry, slot int, known bool) {
	if known {
		switch e.state {
		case stPrepared, stPreCommitted:
			n.vote(m, e, ReasonNone) // the first vote may have been lost
		case stAborted:
			if e.reason != ReasonNone {
				n.vote(m, e, e.reason)
			} else {
				n.counters.Stale++
			}
		default:
			n.counters.Stale++
		}
		return
	}
	if e.state == stPrepared || e.state == stPreCommitted {
		// The slot's previous transaction is unfinished here, so the
		// coordinator cannot have reused its decision slot: not a PREPARE
		// a correct coordinator sends. Refusing is always safe.
		n.counters.Conflicts++
		n.vote(m, e, ReasonBackpressure)
		return
	}
	if m.Tx <= n.last {
		// Later transactions were prepared already (the PREPARE was
		// reordered or arrived after a restart): Participant.Prepare
		// runs in transaction order, so vote NO.
		e.reset(m.Tx, stAborted, ReasonTimeout)
		n.vote(m, e, ReasonTimeout)
		return
	}
	d, r, err := n.table.Lookup(m.Tx)
	if err != nil || d == Commit {
		n.counters.Conflicts++ // not opened, reused, corrupt, or decided without us
		return
	}
	if d == Abort {
		// Already aborted (a breaker, a terminator): reserve nothing and
		// say so at once rather than let the coordinator wait out its
		// PREPARE timeout.
		e.reset(m.Tx, stAborted, r)
		n.vote(m, e, r)
		return
	}
	n.last = m.Tx
	e.reset(m.Tx, stInit, ReasonNone)
	r = n.p.Prepare(m.Tx, &m.Cmd, &e.out)
	if r != ReasonNone {
		e.state, e.reason = stAborted, r
		n.counters.Aborted[r]++
		n.vote(m, e, r)
		return
	}
	e.state, e.since = stPrepared, now
	n.inflight++
	n.timers.set(slot, tmDecision, now+n.decisionTO)
	n.vote(m, e, ReasonNone)
}

func (n *Node) vote(m *Msg, e *entry, r Reason) {
	v := n.reply(MsgVote, m)
	v.Reason = r
	if r == ReasonNone && n.cfg.Matching {
		v.HasOutcome = true
		copyOutcome(&v.Out, &e.out)
	}
}

func (n *Node) commit(e *entry, slot int) {
	n.p.Commit(e.tx, &e.out)
	e.state = stCommitted
	n.inflight--
	n.counters.Committed++
	n.timers.stop(slot)
}

func (n *Node) abort(e *entry, slot int, r Reason) {
	n.p.Abort(e.tx)
	e.state = stAborted
	n.inflight--
	n.counters.Aborted[r]++
	n.timers.stop(slot)
}

// Tick fires every timer due at now. In PREPARED the node reads the
// decision table: ABORT ⇒ it aborts; COMMIT ⇒ it waits for the Outcome,
// which a live or backup coordinator retransmits; UNDECIDED with the
// coordinator dead or the grace period over ⇒ it CASes ABORT and follows
// whatever the table then says. In PRECOMMITTED it commits on its own (the
// decision is COMMIT) once the coordinator looks dead or the grace period
// is over. While the coordinator lives it waits for the COMMIT instead:
// committing on a timer puts this node's commit at a different place among
// the coordinator's messages than its peers' commits, and a later PREPARE
// that one participant votes on with the transaction committed and another
// with it only pre-committed gets votes computed on different states (a
// replace that matching sizes after a fill and settlement before it).
func (n *Node) Tick(now int64) {
	for {
		at, slot, ok := n.timers.next()
		if !ok || at > now {
			return
		}
		e := &n.win[slot]
		n.counters.Timeouts++
		switch e.state {
		case stPrepared:
			n.terminate(now, e, slot)
		case stPreCommitted:
			if n.alive && now-e.since < n.grace {
				n.timers.set(slot, tmRecheck, min(now+n.commitTO, e.since+n.grace))
				continue
			}
			n.commit(e, slot)
		default:
			n.timers.stop(slot)
		}
	}
}

func (n *Node) terminate(now int64, e *entry, slot int) {
	d, r, err := n.table.Lookup(e.tx)
	if err == nil && d == Undecided {
		if n.alive && now-e.since < n.grace {
			n.timers.set(slot, tmRecheck, min(now+n.decisionTO, e.since+n.grace))
			return
		}
		d, r, err = n.table.Abort(e.tx, ReasonTerminated)
		if err == nil && d == Abort && r == ReasonTerminated {
			n.counters.Terminations++
		}
	}
	if err == nil && d == Abort {
		n.abort(e, slot, r)
		return
	}
	// COMMIT: the Outcome will come. An error (corrupt or reused slot)
	// cannot be resolved here: keep asking, never guess.
	if err != nil {
		n.counters.Conflicts++
	}
	n.timers.set(slot, tmDecision, now+n.decisionTO)
}

// Recover brings a restarted node back before it serves anything. The
// Participant must hold the state of its last snapshot (Restore), or be
// empty, and log must yield every journal record written since that
// snapshot, in order; Recover ranges over it twice. Recover then
//
//   - aborts by CAS every UNDECIDED transaction in the decision table: the
//     node may have voted YES on it and lost the reservation;
//   - calls Participant.Apply for every committed transaction of the log, in
//     log order, including COMMIT-decided ones still in flight;
//   - remembers the in-flight ones as COMMITTED or ABORTED so that the
//     coordinator's retransmissions are acked without calling the
//     Participant again.
func (n *Node) Recover(now int64, log iter.Seq[*Record]) error {
	if n.stepped {
		return errors.New("node recover: must run before the first Step")
	}
	inflight := map[TxID]Decision{}
	for s := range n.table.InFlight() {
		if s.Err != nil {
			return fmt.Errorf("node %d recover: %w", n.cfg.ID, s.Err)
		}
		d := s.Decision
		if d == Undecided {
			var err error
			if d, _, err = n.table.Abort(s.Tx, ReasonTerminated); err != nil {
				return fmt.Errorf("node %d recover: %w", n.cfg.ID, err)
			}
			if d == Abort {
				n.counters.Terminations++
			}
		}
		inflight[s.Tx] = d
		n.last = max(n.last, s.Tx)
	}
	aborted := map[TxID]bool{}
	for r := range log {
		if r.Kind == RecAbort {
			aborted[r.Tx] = true
		}
	}
	for r := range log {
		if r.Kind != RecCommit || aborted[r.Tx] {
			continue
		}
		n.last = max(n.last, r.Tx)
		d, ok := inflight[r.Tx]
		if !ok {
			// Not in flight: decided and released, and released aborts
			// have a RecAbort. Unless it was opened after our scan, which
			// needs our vote, which this incarnation has not given.
			if ld, _, err := n.table.Lookup(r.Tx); err == nil && ld != Commit {
				continue
			}
			d = Commit
		}
		if d != Commit {
			continue
		}
		if err := n.p.Apply(r.Tx, &r.Cmd, &r.Out); err != nil {
			return fmt.Errorf("node %d recover: apply tx %d: %w", n.cfg.ID, r.Tx, err)
		}
		n.counters.Committed++
		if ok {
			e := &n.win[uint64(r.Tx)&n.mask]
			e.reset(r.Tx, stCommitted, ReasonNone)
			copyOutcome(&e.out, &r.Out)
			delete(inflight, r.Tx)
		}
	}
	for tx, d := range inflight {
		if d == Commit {
			return fmt.Errorf("node %d recover: tx %d is COMMIT in the decision table but has no commit record in the log", n.cfg.ID, tx)
		}
		n.win[uint64(tx)&n.mask] = entry{tx: tx, state: stAborted}
	}
	return nil
}

// NopParticipant votes YES on everything and only counts its calls: the
// trivial participant for tests and benchmarks of the protocol itself.
type NopParticipant struct {
	Prepared, PreCommitted, Committed, Aborted, Applied uint64
}

// Prepare counts and votes YES.
func (p *NopParticipant) Prepare(TxID, *Command, *Outcome) Reason {
	p.Prepared++
	return ReasonNone
}

// PreCommit counts.
func (p *NopParticipant) PreCommit(TxID, *Outcome) { p.PreCommitted++ }

// Commit counts.
func (p *NopParticipant) Commit(TxID, *Outcome) { p.Committed++ }

// Abort counts.
func (p *NopParticipant) Abort(TxID) { p.Aborted++ }

// Apply counts.
func (p *NopParticipant) Apply(TxID, *Command, *Outcome) error {
	p.Applied++
	return nil
}

// Snapshot writes the committed count.
func (p *NopParticipant) Snapshot(w io.Writer) error {
	return binary.Write(w, binary.LittleEndian, p.Committed+p.Applied)
}

// Restore reads a count written by Snapshot into Applied.
func (p *NopParticipant) Restore(r io.Reader) error {
	*p = NopParticipant{}
	if err := binary.Read(r, binary.LittleEndian, &p.Applied); err != nil {
		return fmt.Errorf("nop participant restore: %w", err)
	}
	return nil
}
