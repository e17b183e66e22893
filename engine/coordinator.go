package engine

import (
	"errors"
	"fmt"
	"iter"
	"math/bits"
)

// Mode selects the commit protocol.
type Mode uint8

// Modes.
const (
	// ThreePhase is PREPARE → commit point → PRE-COMMIT → COMMIT.
	ThreePhase Mode = 0
	// TwoPhase is PREPARE → commit point → COMMIT (carrying the Outcome),
	// for side-by-side measurement over the same participants.
	TwoPhase Mode = 1
)

// String returns "3pc" or "2pc".
func (m Mode) String() string {
	switch m {
	case ThreePhase:
		return "3pc"
	case TwoPhase:
		return "2pc"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Coordinator errors, for errors.Is.
var (
	// ErrBusy means the coordinator cannot take another transaction now:
	// MaxInFlight are in flight, or the next decision slot is still held
	// by an unfinished transaction. Retry after some complete.
	ErrBusy = errors.New("engine: coordinator busy")
	// ErrFenced means a coordinator of a newer epoch has taken over: this
	// one must stop; its in-flight transactions were reported as decided.
	ErrFenced = errors.New("engine: coordinator fenced by a newer epoch")
	// ErrNotStarted means Start has not (successfully) run.
	ErrNotStarted = errors.New("engine: coordinator not started")
	// ErrLogFailed means an Append to the write-ahead log failed. The
	// coordinator stops (every later call returns this error) since it can
	// no longer make a decision recoverable; start a backup with the next
	// epoch, which finishes its transactions.
	ErrLogFailed = errors.New("engine: write-ahead log failed")
)

// CoordinatorConfig configures a Coordinator.
type CoordinatorConfig struct {
	// Epoch is this coordinator's incarnation, in [1, MaxEpoch]; it must be
	// higher than the table's: a backup or a restarted coordinator uses the
	// table's epoch plus one.
	Epoch Epoch
	// Participants is the number of participants, 1 … MaxParticipants;
	// they are NodeIDs 0 … Participants-1.
	Participants int
	// Matching is the participant whose YES vote carries the authoritative
	// Outcome, or -1 if none does (the Outcome is then empty).
	Matching int
	// Mode is ThreePhase (the default) or TwoPhase.
	Mode Mode
	// Timeouts are the phase timeouts; the zero value is the defaults.
	Timeouts Timeouts
	// MaxInFlight bounds the transactions in flight; 0 means the table's
	// length, which is also the upper bound.
	MaxInFlight int
	// ReplyOnCommitSent delivers a committed transaction's Result when
	// COMMIT is sent rather than when every COMMIT ack is in; its Commit
	// latency is then 0.
	ReplyOnCommitSent bool
	// Table is the shared decision table.
	Table *DecisionTable
	// Log is the write-ahead log (the journal).
	Log Log
	// Gate, if set, takes part in admission and the commit decision (a
	// circuit breaker); see Gate.
	Gate Gate
}

// Result is a finished transaction as the coordinator reports it.
type Result struct {
	Tx  TxID
	Cmd Command
	// Reason is ReasonNone for a commit, else why it aborted.
	Reason Reason
	// Per-phase latencies in nanoseconds: PREPARE fan-out to the last vote;
	// commit point to the last PRE-COMMIT ack (0 in 2PC); to the last
	// COMMIT or ABORT ack. Total is from Propose to the Result.
	Prepare, PreCommit, Commit, Total int64
	// Recovered marks a transaction finished after a takeover: its client,
	// if any, was the previous coordinator's.
	Recovered bool
	// ResumesAt is, for a command the Gate rejected (ReasonHalted,
	// ReasonParticipantUnavailable), the instant on the coordinator's clock
	// when it is worth sending again, as the Gate said; 0 otherwise.
	ResumesAt int64
	// Out is the Outcome every participant applied; empty for an abort.
	// It comes last, so that a Result with few fills lies in its first
	// cache lines.
	Out Outcome
}

// copyResult copies src into dst as far as src's Outcome reaches: a
// Result is over a kilobyte, nearly all of it fills that few carry.
func copyResult(dst, src *Result) {
	dst.Tx, dst.Cmd, dst.Reason = src.Tx, src.Cmd, src.Reason
	dst.Prepare, dst.PreCommit, dst.Commit, dst.Total = src.Prepare, src.PreCommit, src.Commit, src.Total
	dst.Recovered, dst.ResumesAt = src.Recovered, src.ResumesAt
	copyOutcome(&dst.Out, &src.Out)
}

// Counters are a state machine's running totals. They are plain values:
// read them from the goroutine that drives the state machine.
type Counters struct {
	Committed uint64
	Aborted   [NumReasons]uint64 // by reason
	// Timeouts counts PREPARE timeouts (coordinator) and PREPARED or
	// PRECOMMITTED timeouts (participant node).
	Timeouts uint64
	// Retransmits counts messages re-sent after an ack timeout.
	Retransmits uint64
	// Takeovers counts starts that found an older epoch in the table.
	Takeovers uint64
	// Terminations counts ABORT CASes a participant node made itself.
	Terminations uint64
	// Stale counts messages ignored as duplicates, late, or of another epoch.
	Stale uint64
	// Conflicts counts messages that contradict a node's final state (a
	// PRE-COMMIT for an aborted transaction, say). A correct deployment
	// never has any: they are ignored and counted for alarms.
	Conflicts uint64
}

// Coordinator phases of one transaction.
const (
	phFree uint8 = iota
	phPreparing
	phPreCommitting
	phCommitting
	phAborting
)

// The coordinator's timer classes (see timers): deadlines of one class
// arrive nearly in order.
const (
	tmPrepare = iota // now + the prepare timeout
	tmAck            // now + the ack timeout
	tmResend         // now + a retransmission's backoff
	coordTimerClasses
)

// ctx is the coordinator's state for one in-flight transaction; the window
// holds one per decision-table slot, at the same index.
type ctx struct {
	tx        TxID
	phase     uint8
	replied   bool
	recovered bool
	resends   uint8  // retransmissions in the current phase, for the backoff
	votes     uint32 // votes received, by participant bit: the YES votes, and the NO that aborted
	acks      uint32 // acks for the current phase (NO voters count as ABORT-acked)
	reason    Reason
	start     int64 // Propose
	prepared  int64 // commit point (or abort decision)
	precommit int64 // last PRE-COMMIT ack
	resumes   int64 // Result.ResumesAt of a rejection
	cmd       Command
	out       Outcome
}

// Coordinator is the coordinator's protocol state machine. It does no I/O
// and reads no clock: Propose, Step and Tick take the current time and
// leave what to do in Ready. It is not safe for concurrent use.
type Coordinator struct {
	cfg       CoordinatorConfig
	all       uint32 // bit per participant
	table     *DecisionTable
	log       Log
	gate      Gate
	prepareTO PhaseTimeout
	ackTO     PhaseTimeout
	maxIn     int
	mask      uint64
	seq       uint64
	inflight  int
	started   bool
	fenced    bool
	broken    error // an ErrLogFailed: the coordinator has stopped
	win       []ctx
	timers    timers
	ready     Ready
	rec       Record
	admit     Command // the Gate's copy of the command being proposed
	counters  Counters
	// Start's scratch space for the table's in-flight slots and the
	// COMMIT-decided ones it looks up in the log: nil until reserve.
	found []Slot
	need  map[TxID]*ctx
}

// NewCoordinator validates cfg and returns a coordinator. Call Start before
// anything else.
func NewCoordinator(cfg CoordinatorConfig) (*Coordinator, error) {
	switch {
	case cfg.Epoch == 0 || cfg.Epoch > MaxEpoch:
		return nil, fmt.Errorf("coordinator: epoch %d outside [1,%d]", cfg.Epoch, MaxEpoch)
	case cfg.Participants < 1 || cfg.Participants > MaxParticipants:
		return nil, fmt.Errorf("coordinator: %d participants outside [1,%d]", cfg.Participants, MaxParticipants)
	case cfg.Matching < -1 || cfg.Matching >= cfg.Participants:
		return nil, fmt.Errorf("coordinator: matching participant %d outside [-1,%d)", cfg.Matching, cfg.Participants)
	case cfg.Mode != ThreePhase && cfg.Mode != TwoPhase:
		return nil, fmt.Errorf("coordinator: unknown mode %d", cfg.Mode)
	case cfg.Table == nil || cfg.Log == nil:
		return nil, errors.New("coordinator: needs a decision table and a log")
	}
	to, err := cfg.Timeouts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	n := cfg.Table.Len()
	if cfg.MaxInFlight < 0 || cfg.MaxInFlight > n {
		return nil, fmt.Errorf("coordinator: max in flight %d outside [0,%d] (the table's length)", cfg.MaxInFlight, n)
	}
	c := &Coordinator{
		cfg:       cfg,
		all:       1<<cfg.Participants - 1,
		table:     cfg.Table,
		log:       cfg.Log,
		gate:      cfg.Gate,
		prepareTO: NewPhaseTimeout(to.Prepare, to),
		ackTO:     NewPhaseTimeout(to.PreCommit, to),
		maxIn:     cfg.MaxInFlight,
		mask:      uint64(n - 1),
		win:       make([]ctx, n),
		timers:    newTimers(n, coordTimerClasses),
	}
	if c.maxIn == 0 {
		c.maxIn = n
	}
	c.ready.Msgs = make([]Msg, 0, 2*cfg.Participants+8)
	c.ready.Results = make([]Result, 0, 8)
	return c, nil
}

// reserve makes room, ahead of Start, for a takeover of a full table: Start
// queues one decision message per in-flight transaction, and the acks can
// finish that many at once. The pages are touched here, so that a standby
// pays for them while the primary runs, not while the market waits.
func (c *Coordinator) reserve() {
	n := c.table.Len()
	c.ready.Msgs = make([]Msg, n+cap(c.ready.Msgs))
	for i := range c.ready.Msgs {
		c.ready.Msgs[i].Tx = 0
	}
	c.ready.Msgs = c.ready.Msgs[:0]
	c.ready.Results = make([]Result, n)
	for i := range c.ready.Results {
		c.ready.Results[i].Tx = 0
	}
	c.ready.Results = c.ready.Results[:0]
	c.found = make([]Slot, 0, n)
	c.need = make(map[TxID]*ctx, n)
}

// Epoch returns the coordinator's epoch.
func (c *Coordinator) Epoch() Epoch { return c.cfg.Epoch }

// Counters returns the running totals.
func (c *Coordinator) Counters() Counters { return c.counters }

// InFlight returns the number of transactions in flight.
func (c *Coordinator) InFlight() int { return c.inflight }

// Fenced reports whether a newer epoch has replaced this coordinator.
func (c *Coordinator) Fenced() bool { return c.fenced }

// Ready returns what to do now. It stays valid until Advance.
func (c *Coordinator) Ready() *Ready {
	c.ready.fold()
	c.ready.Deadline = 0
	if at, _, ok := c.timers.next(); ok {
		c.ready.Deadline = at
	}
	return &c.ready
}

// Advance tells the coordinator the runtime has acted on Ready.
func (c *Coordinator) Advance() { c.ready.reset() }

// Start raises the table's epoch to the coordinator's, fencing any older
// coordinator, then finishes every transaction the table shows in flight:
// UNDECIDED ones are aborted by CAS (ReasonTerminated), COMMIT-decided ones
// are committed again with the Outcome from log, ABORT-decided ones are
// aborted again. log is an iter.Seq over the journal's records, read once,
// in any order: Start stops as soon as it has every commit record it needs,
// so yielding the newest records first makes a takeover fast. Their
// Results come with Recovered set. Only then does Propose accept commands.
// A first start over an empty table is the same call with nothing to do.
func (c *Coordinator) Start(now int64, log iter.Seq[*Record]) error {
	if c.started {
		return errors.New("coordinator: already started")
	}
	prev := c.table.Epoch()
	if err := c.table.AdvanceEpoch(c.cfg.Epoch); err != nil {
		return fmt.Errorf("coordinator start: %w", err)
	}
	if prev != 0 {
		c.counters.Takeovers++
	}
	pending, need := c.found[:0], c.need
	if need == nil {
		need = map[TxID]*ctx{}
	}
	for s := range c.table.InFlight() {
		if s.Err != nil {
			return fmt.Errorf("coordinator start: %w", s.Err)
		}
		if s.Decision == Undecided {
			d, r, err := c.table.Abort(s.Tx, ReasonTerminated)
			if err != nil {
				return fmt.Errorf("coordinator start: %w", err)
			}
			s.Decision, s.Reason = d, r
		}
		pending = append(pending, s)
		if s.Decision == Commit {
			need[s.Tx] = &c.win[uint64(s.Tx)&c.mask]
		}
	}
	if len(need) > 0 {
		found := 0
		for r := range log {
			x, ok := need[r.Tx]
			if !ok {
				continue
			}
			if r.Kind == RecAbort {
				return fmt.Errorf("coordinator start: tx %d is COMMIT in the decision table but aborted in the log", r.Tx)
			}
			if x.tx == 0 {
				found++
			}
			x.tx, x.cmd = r.Tx, r.Cmd
			copyOutcome(&x.out, &r.Out)
			if found == len(need) {
				break
			}
		}
		if found != len(need) {
			return fmt.Errorf("coordinator start: %d COMMIT-decided transactions have no commit record in the log", len(need)-found)
		}
	}
	for _, s := range pending {
		x := &c.win[uint64(s.Tx)&c.mask]
		x.tx, x.recovered, x.start, x.prepared, x.resumes = s.Tx, true, now, now, 0
		x.votes, x.acks = c.all, 0
		c.inflight++
		if s.Decision == Commit {
			c.sendDecided(x, now)
			continue
		}
		x.cmd = Command{}
		x.out.Reset()
		if err := c.logAbort(s.Tx, s.Reason); err != nil {
			return fmt.Errorf("coordinator start: %w", err)
		}
		c.sendAbort(x, s.Reason, now)
	}
	c.found, c.need = nil, nil
	c.started = true
	return nil
}

// Propose starts a transaction for cmd and returns its id: the PREPAREs are
// in Ready. Proposing several commands before acting on Ready batches their
// PREPAREs. A NewOrder's OrderID is set to the transaction id. A command
// the Gate rejects gets an id too, and its aborted Result is in Ready at
// once.
func (c *Coordinator) Propose(now int64, cmd *Command) (TxID, error) {
	switch {
	case !c.started:
		return 0, ErrNotStarted
	case c.broken != nil:
		return 0, c.broken
	case c.fence(now):
		return 0, ErrFenced
	case c.seq >= MaxSeq:
		return 0, fmt.Errorf("propose: epoch %d has used every tx id; start a coordinator with the next epoch: %w", c.cfg.Epoch, ErrFenced)
	}
	if err := checkCommand(cmd); err != nil {
		return 0, fmt.Errorf("propose: %w", err)
	}
	if c.gate != nil {
		// The Gate sees a copy: handing it the caller's pointer, through
		// an interface, would make every caller's command escape to the
		// heap, gate or no gate.
		c.admit = *cmd
		if r, at := c.gate.Admit(&c.admit, now); r != ReasonNone {
			return c.reject(now, cmd, r, at)
		}
	}
	if c.inflight >= c.maxIn {
		return 0, ErrBusy
	}
	tx := MakeTxID(c.cfg.Epoch, c.seq+1)
	x := &c.win[uint64(tx)&c.mask]
	if x.phase != phFree {
		return 0, ErrBusy
	}
	if err := c.table.Open(tx); err != nil {
		switch {
		case err == ErrSlotBusy:
			return 0, ErrBusy
		case errors.Is(err, ErrStaleEpoch):
			c.fence(now)
			return 0, ErrFenced
		}
		return 0, fmt.Errorf("propose: %w", err)
	}
	c.seq++
	c.inflight++
	x.tx, x.phase, x.replied, x.recovered = tx, phPreparing, false, false
	x.votes, x.acks, x.reason = 0, 0, ReasonNone
	x.start, x.prepared, x.precommit = now, 0, 0
	x.cmd = *cmd
	if cmd.Kind == NewOrder {
		x.cmd.OrderID = uint64(tx)
	}
	x.out.Reset()
	x.resumes = 0
	c.timers.set(c.slot(x), tmPrepare, now+c.prepareTO.Get())
	if c.gate != nil {
		if r, at := c.gate.Begin(tx, &x.cmd, now); r != ReasonNone {
			return c.turnAway(x, r, at, now)
		}
	}
	m := c.ready.msg(MsgPrepare, CoordinatorID, Broadcast, c.cfg.Epoch, tx)
	m.Cmd = x.cmd
	return tx, nil
}

// reject reports cmd, which the Gate's Admit turned away with reason r, as
// an aborted transaction: it takes the next id, and nothing is sent,
// logged or written in the decision table.
func (c *Coordinator) reject(now int64, cmd *Command, r Reason, resumesAt int64) (TxID, error) {
	if !r.Valid() {
		return 0, fmt.Errorf("propose: gate admit: undefined reason %d", r)
	}
	c.seq++
	tx := MakeTxID(c.cfg.Epoch, c.seq)
	c.counters.Aborted[r]++
	res := c.ready.result()
	res.Tx, res.Cmd, res.Reason, res.Recovered, res.ResumesAt = tx, *cmd, r, false, resumesAt
	if cmd.Kind == NewOrder {
		res.Cmd.OrderID = uint64(tx)
	}
	res.Out.Reset()
	res.Prepare, res.PreCommit, res.Commit, res.Total = 0, 0, 0, 0
	c.gate.Done(res, now)
	return tx, nil
}

// turnAway finishes x, which the Gate's Begin rejected with reason r before
// any PREPARE went out: it aborts the slot by CAS, releases it (no
// participant knows of x) and reports the Result. On an error x stays in
// PREPARE without having sent it, and its PREPARE timeout aborts it.
func (c *Coordinator) turnAway(x *ctx, r Reason, resumesAt, now int64) (TxID, error) {
	d, fr, err := c.table.Abort(x.tx, r)
	if err != nil {
		return 0, fmt.Errorf("propose: abort tx %d turned away by the gate: %w", x.tx, err)
	}
	if d == Commit {
		return 0, fmt.Errorf("propose: tx %d: %w: COMMIT before its PREPARE was sent", x.tx, ErrCorruptSlot)
	}
	x.prepared, x.resumes = now, resumesAt
	c.finish(x, fr, now)
	return x.tx, nil
}

func (c *Coordinator) slot(x *ctx) int { return int(uint64(x.tx) & c.mask) }

// Step handles one message from a participant. Messages of another epoch,
// duplicates and late ones are ignored (and counted as Stale); an error
// means the message could not have come from a correct participant, or the
// log or table failed. A message with Senders counts as one from each of
// them, and one with a Run as one for each of its transactions.
func (c *Coordinator) Step(now int64, m *Msg) error {
	if !c.started {
		return ErrNotStarted
	}
	if c.broken != nil {
		return c.broken
	}
	if c.fence(now) {
		return nil
	}
	if m.Type.fromCoordinator() || !m.Type.valid() {
		return fmt.Errorf("coordinator step: %w: %v is not a participant message", ErrMalformed, m.Type)
	}
	if m.Senders == 0 && m.Run == 0 {
		return c.step(now, m)
	}
	if int(m.From) >= c.cfg.Participants || bits.Len16(m.Senders) > c.cfg.Participants {
		return fmt.Errorf("coordinator step: %w: %v from %d, senders %#x, beyond the %d participants", ErrMalformed, m.Type, m.From, m.Senders, c.cfg.Participants)
	}
	if err := m.checkRun(); err != nil {
		return fmt.Errorf("coordinator step: %w", err)
	}
	// A merged message is each sender's own and a run each transaction's:
	// step it once per transaction and sender, and give the caller its
	// message back as it was.
	from, tx := m.From, m.Tx
	senders := m.Senders | 1<<from
	for i := range TxID(m.Run) + 1 {
		m.Tx = tx + i
		for s := senders; s != 0; s &= s - 1 {
			m.From = NodeID(bits.TrailingZeros16(s))
			if err := c.step(now, m); err != nil {
				m.From, m.Tx = from, tx
				return err
			}
		}
	}
	m.From, m.Tx = from, tx
	return nil
}

// step handles a message from the one participant m.From.
func (c *Coordinator) step(now int64, m *Msg) error {
	if int(m.From) >= c.cfg.Participants {
		return fmt.Errorf("coordinator step: %w: %v from unknown participant %d", ErrMalformed, m.Type, m.From)
	}
	x := &c.win[uint64(m.Tx)&c.mask]
	if m.Epoch != c.cfg.Epoch || x.tx != m.Tx || x.phase == phFree {
		c.counters.Stale++
		return nil
	}
	bit := uint32(1) << m.From
	switch m.Type {
	case MsgVote:
		if x.phase != phPreparing || x.votes&bit != 0 {
			c.counters.Stale++
			return nil
		}
		x.votes |= bit
		if m.Reason != ReasonNone {
			x.acks |= bit // a NO voter has aborted already
			return c.abort(x, m.Reason, 0, now)
		}
		if int(m.From) == c.cfg.Matching {
			if !m.HasOutcome {
				return c.abort(x, ReasonMalformed, 0, now)
			}
			copyOutcome(&x.out, &m.Out)
			if c.gate != nil && c.gate.Fills(x.tx, &x.out, now) {
				return c.abort(x, ReasonCircuitBreaker, 0, now)
			}
		}
		if x.votes == c.all {
			return c.decide(x, now)
		}
	case MsgPreCommitAck:
		if !c.ack(x, phPreCommitting, bit) {
			return nil
		}
		c.ackTO.Observe(now - x.prepared)
		c.sendCommit(x, now)
	case MsgCommitAck:
		if !c.ack(x, phCommitting, bit) {
			return nil
		}
		c.finish(x, ReasonNone, now)
	case MsgAbortAck:
		if !c.ack(x, phAborting, bit) {
			return nil
		}
		c.finish(x, x.reason, now)
	}
	return nil
}

// ack records an ack for phase ph and reports whether every participant
// has now acked.
func (c *Coordinator) ack(x *ctx, ph uint8, bit uint32) bool {
	if x.phase != ph || x.acks&bit != 0 {
		c.counters.Stale++
		return false
	}
	x.acks |= bit
	return x.acks == c.all
}

// decide passes the commit point: the Outcome goes to the log, then the
// CAS. Losing the CAS (a breaker or a terminator aborted first) aborts.
func (c *Coordinator) decide(x *ctx, now int64) error {
	x.prepared = now
	if c.gate != nil {
		c.gate.Voted(x.tx, x.votes, 0, now)
	}
	c.prepareTO.Observe(now - x.start)
	c.rec = Record{Kind: RecCommit, Epoch: c.cfg.Epoch, Tx: x.tx, Cmd: x.cmd}
	copyOutcome(&c.rec.Out, &x.out)
	if err := c.log.Append(&c.rec); err != nil {
		// Without the record a commit would not be recoverable, and the
		// record may be half written: abort in the table, which then
		// holds the truth until a backup logs it, and stop.
		_, _, _ = c.table.Abort(x.tx, ReasonTerminated)
		c.broken = fmt.Errorf("%w: commit record of tx %d: %w", ErrLogFailed, x.tx, err)
		return c.broken
	}
	d, r, err := c.table.Commit(x.tx)
	if err != nil {
		return fmt.Errorf("commit tx %d: %w", x.tx, err)
	}
	if d == Commit {
		c.sendDecided(x, now)
		return nil
	}
	if err := c.logAbort(x.tx, r); err != nil {
		return err
	}
	c.sendAbort(x, r, now)
	return nil
}

// sendDecided starts the phase after a COMMIT decision: PRE-COMMIT in 3PC,
// COMMIT with the Outcome in 2PC.
func (c *Coordinator) sendDecided(x *ctx, now int64) {
	x.acks = 0
	if c.cfg.Mode == TwoPhase {
		c.sendCommit(x, now)
		return
	}
	x.phase = phPreCommitting
	c.send(x, MsgPreCommit, Broadcast)
	c.armAck(x, now)
}

// The backoff of a phase's retransmissions doubles the ack timeout at most
// maxAckBackoff times, and never waits longer than maxAckInterval (or the
// ack timeout itself, if that is longer): a slow participant is not
// flooded, a recovered one is not kept waiting long.
const (
	maxAckBackoff  = 3
	maxAckInterval = 10_000_000 // ns
)

// armAck starts the ack timer of x's new phase.
func (c *Coordinator) armAck(x *ctx, now int64) {
	x.resends = 0
	c.timers.set(c.slot(x), tmAck, now+c.ackTO.Get())
}

func (c *Coordinator) sendCommit(x *ctx, now int64) {
	x.phase, x.acks, x.precommit = phCommitting, 0, now
	c.send(x, MsgCommit, Broadcast)
	c.armAck(x, now)
	if c.cfg.ReplyOnCommitSent {
		c.result(x, ReasonNone, now, true)
		x.replied = true
	}
}

// send emits one message of x's current phase to dst.
func (c *Coordinator) send(x *ctx, t MsgType, dst NodeID) {
	m := c.ready.msg(t, CoordinatorID, dst, c.cfg.Epoch, x.tx)
	switch t {
	case MsgPreCommit:
		m.HasOutcome = true
		copyOutcome(&m.Out, &x.out)
	case MsgCommit:
		if c.cfg.Mode == TwoPhase {
			m.HasOutcome = true
			copyOutcome(&m.Out, &x.out)
		}
	case MsgAbort:
		m.Reason = x.reason
	}
}

// abort decides ABORT by CAS (a NO vote, a timeout, a trip) and tells
// everyone; missing are the participants whose vote the PREPARE timeout
// did not get. If the table says COMMIT, this coordinator's own commit CAS
// won: corrupt.
func (c *Coordinator) abort(x *ctx, r Reason, missing uint32, now int64) error {
	if c.gate != nil {
		c.gate.Voted(x.tx, x.votes, missing, now)
	}
	d, fr, err := c.table.Abort(x.tx, r)
	if err != nil {
		return fmt.Errorf("abort tx %d: %w", x.tx, err)
	}
	if d == Commit {
		return fmt.Errorf("abort tx %d: %w: COMMIT without this coordinator's commit point", x.tx, ErrCorruptSlot)
	}
	x.prepared = now
	c.sendAbort(x, fr, now)
	return nil
}

func (c *Coordinator) sendAbort(x *ctx, r Reason, now int64) {
	x.phase, x.reason = phAborting, r
	c.send(x, MsgAbort, Broadcast)
	c.armAck(x, now)
}

func (c *Coordinator) logAbort(tx TxID, r Reason) error {
	c.rec.Kind, c.rec.Epoch, c.rec.Tx, c.rec.Reason = RecAbort, c.cfg.Epoch, tx, r
	if err := c.log.Append(&c.rec); err != nil {
		c.broken = fmt.Errorf("%w: abort record of tx %d: %w", ErrLogFailed, tx, err)
		return c.broken
	}
	return nil
}

// finish releases x's slot once every participant acked the decision.
func (c *Coordinator) finish(x *ctx, r Reason, now int64) {
	if err := c.table.Release(x.tx); err != nil {
		// The slot no longer holds the decision this coordinator made:
		// the table is corrupt. Count it; an unreleased slot is never
		// reused, and InFlight reports it to whoever looks.
		c.counters.Conflicts++
	}
	if r == ReasonNone {
		c.counters.Committed++
	} else {
		c.counters.Aborted[r]++
	}
	if !x.replied {
		c.result(x, r, now, false)
	}
	c.timers.stop(c.slot(x))
	x.phase = phFree
	c.inflight--
}

func (c *Coordinator) result(x *ctx, r Reason, now int64, early bool) {
	res := c.ready.result()
	res.Tx, res.Cmd, res.Reason, res.Recovered, res.ResumesAt = x.tx, x.cmd, r, x.recovered, x.resumes
	res.Out.Reset()
	res.Prepare, res.PreCommit, res.Commit = x.prepared-x.start, 0, 0
	if r == ReasonNone {
		copyOutcome(&res.Out, &x.out)
		res.PreCommit = x.precommit - x.prepared
		if !early {
			res.Commit = now - x.precommit
		}
	} else {
		res.Commit = now - x.prepared
	}
	res.Total = now - x.start
	if c.gate != nil {
		c.gate.Done(res, now)
	}
}

// Tick fires every timer due at now: a PREPARE timeout aborts with
// ReasonTimeout; an ack timeout retransmits to the participants that have
// not acked, and never aborts. Each retransmission of a phase doubles the
// wait for the next (up to 8 ack timeouts, at most 10 ms): a participant
// that is down or far behind is not flooded, and the rings keep room for
// new transactions.
func (c *Coordinator) Tick(now int64) error {
	if c.broken != nil {
		return c.broken
	}
	if !c.started || c.fence(now) {
		return nil
	}
	for {
		at, slot, ok := c.timers.next()
		if !ok || at > now {
			return nil
		}
		x := &c.win[slot]
		switch x.phase {
		case phPreparing:
			c.counters.Timeouts++
			if err := c.abort(x, ReasonTimeout, c.all&^x.votes, now); err != nil {
				c.timers.stop(slot)
				return err
			}
		case phPreCommitting, phCommitting, phAborting:
			t := MsgPreCommit
			if x.phase == phCommitting {
				t = MsgCommit
			} else if x.phase == phAborting {
				t = MsgAbort
			}
			for p := 0; p < c.cfg.Participants; p++ {
				if x.acks&(1<<p) == 0 {
					c.send(x, t, NodeID(p))
					c.counters.Retransmits++
				}
			}
			x.resends = min(x.resends+1, maxAckBackoff)
			to := c.ackTO.Get()
			c.timers.set(slot, tmResend, now+max(to, min(to<<x.resends, maxAckInterval)))
		default:
			c.timers.stop(slot)
		}
	}
}

// fence checks the table's epoch. Once a newer coordinator has taken over,
// this one reports every in-flight transaction as the table decides it
// (aborting the UNDECIDED ones by CAS, which the backup would do anyway)
// and stops.
func (c *Coordinator) fence(now int64) bool {
	if c.fenced {
		return true
	}
	if c.table.Epoch() == c.cfg.Epoch {
		return false
	}
	c.fenced = true
	for i := range c.win {
		x := &c.win[i]
		r := x.reason
		switch x.phase {
		case phFree:
			continue
		case phPreparing:
			// Only this coordinator could have committed it, and it did
			// not: abort it unless someone already has.
			r = ReasonTerminated
			if d, fr, err := c.table.Abort(x.tx, r); err == nil && d == Abort {
				r = fr
			}
			x.prepared = now
		case phPreCommitting, phCommitting:
			r = ReasonNone // past this coordinator's commit point
			if x.phase == phPreCommitting {
				x.precommit = now
			}
		}
		if r == ReasonNone {
			c.counters.Committed++
		} else {
			c.counters.Aborted[r]++
		}
		if !x.replied {
			c.result(x, r, now, true)
		}
		c.timers.stop(i)
		x.phase = phFree
	}
	c.inflight = 0
	return true
}
