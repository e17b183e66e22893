package engine

import (
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/commitcore/commitcore/ringbuf"
)

// DefaultSlots is the default size of the decision table: the most
// transactions in flight at once.
const DefaultSlots = 4096

// Config configures a Core. The zero value runs 3PC with the default
// timeouts, no journal, and participants parked when idle.
type Config struct {
	// Mode is ThreePhase (the default) or TwoPhase.
	Mode Mode
	// Matching is the index of the participant whose YES vote carries the
	// Outcome (matching's fills), or -1 if none does. The zero value makes
	// the first participant the matching one.
	Matching int
	// Timeouts are the coordinator's phase timeouts; zero means the
	// defaults (100 µs PREPARE, 50 µs PRE-COMMIT ack).
	Timeouts Timeouts
	// Node timeouts of in-process participants; zero means the defaults.
	DecisionTimeout, CommitTimeout, Grace time.Duration
	// Slots is the decision table's size for an in-process Core (a power of
	// two, default DefaultSlots).
	Slots int
	// Table is the decision table of an in-process Core; nil makes one of
	// Slots slots on the heap. Pass one to build, before New, what needs
	// it: a circuit breaker aborts through it. (Dial takes its table as an
	// argument and ignores this field.)
	Table *DecisionTable
	// MaxInFlight bounds the transactions in flight; 0 means the table's
	// size.
	MaxInFlight int
	// RingCapacity is the data capacity of each in-process ring in bytes
	// (a power of two, default DefaultRingCapacity).
	RingCapacity int
	// Idle is how in-process participant runners and the submitting
	// goroutine wait for work.
	Idle IdleKind
	// Runners is the number of threads the in-process participants are
	// spread over (default 1: on two cores, one thread for the caller and
	// coordinator and one for all participants).
	Runners int
	// ReplyOnCommitSent delivers a committed Result when COMMIT is sent,
	// not when every COMMIT ack is in.
	ReplyOnCommitSent bool
	// Log is the coordinator's write-ahead log; nil keeps nothing, and a
	// Core without a log cannot be recovered after a crash.
	Log Log
	// Records are the log's records for recovery at start (see
	// Coordinator.Start); nil means there is nothing to recover.
	Records iter.Seq[*Record]
	// Epoch is the coordinator's epoch; zero means one above the table's.
	Epoch Epoch
	// Clock is the time source; nil means a MonotonicClock.
	Clock Clock
	// Gate, if set, is consulted by the coordinator at admission and at
	// the commit decision: a circuit breaker (circuitbreaker.NewGate). A
	// command it rejects comes back as an aborted Result at once, with
	// Result.ResumesAt on Clock's scale.
	Gate Gate
}

// Remote is a host of participant nodes in another process (or on another
// thread the caller runs): the Conn to it and the NodeIDs it serves.
type Remote struct {
	Conn  *Conn
	Nodes []NodeID
}

// Core errors, for errors.Is.
var (
	// ErrClosed means the Core was closed.
	ErrClosed = errors.New("engine: core closed")
	// ErrFailed means the Core stopped on an earlier error (a corrupt
	// message, a failed log append, a participant runner's error): it
	// makes no further decisions. The error says which.
	ErrFailed = errors.New("engine: core failed")
)

// Core is commitcore's public API: it sequences commands into transactions
// and drives them through the commit protocol with its participants. The
// coordinator runs on the calling goroutine inside Submit and Poll, so a
// closed-loop client pays no thread hop to reach it; the participants run
// on their own runners (New) or in other processes (Dial).
//
// Core's methods are safe for concurrent use; a mutex serialises them, so
// one goroutine driving Send and Poll gets the most throughput.
type Core struct {
	mu      sync.Mutex
	co      *Coordinator
	clock   Clock
	conns   []*Conn
	route   [MaxParticipants]int
	msg     Msg
	buf     msgBuf
	read    func(uint16, []byte)
	from    *Conn // the conn read records come from
	now     int64
	idle    ringbuf.IdleStrategy
	runners []*Runner
	sync    interface{ Sync() error }

	want    TxID
	got     bool
	out     *Result
	pending resultQueue
	dropped uint64
	// congested is set when a message found a ring full. New transactions
	// then wait (Send: ErrBusy) until every ring is at most half full
	// again, so that a client outrunning its participants is held back
	// instead of having each new PREPARE dropped and timed out.
	congested bool
	maxQueued int // see maxQueued
	err       error
	closed    bool

	// cmd is propose's copy of the command and res Submit's Result:
	// fields, not locals, because a local passed through the coordinator
	// (whose Gate is an interface call) escapes, an allocation per call.
	cmd Command
	res Result
}

// New starts a Core whose participants run in this process, on
// cfg.Runners threads over heap-memory rings. The decision table is on the
// heap too: this is the threads deployment.
func New(cfg Config, participants ...Participant) (*Core, error) {
	if len(participants) == 0 || len(participants) > MaxParticipants {
		return nil, fmt.Errorf("engine: new core: %d participants, want 1 to %d", len(participants), MaxParticipants)
	}
	table := cfg.Table
	if table == nil {
		slots := cfg.Slots
		if slots == 0 {
			slots = DefaultSlots
		}
		var err error
		if table, err = InitDecisionTable(ringbuf.AlignedBytes(DecisionTableSize(slots)), slots); err != nil {
			return nil, fmt.Errorf("engine: new core: %w", err)
		}
	}
	capacity := cfg.RingCapacity
	if capacity == 0 {
		capacity = DefaultRingCapacity
	}
	clock := cfg.Clock
	if clock == nil {
		clock = NewMonotonicClock()
		cfg.Clock = clock
	}
	nr := min(max(cfg.Runners, 1), len(participants))
	remotes := make([]Remote, nr)
	hosts := make([][]*Node, nr)
	ends := make([]*Conn, nr)
	for i := range nr {
		var err error
		if remotes[i].Conn, ends[i], err = NewPipe(capacity); err != nil {
			return nil, fmt.Errorf("engine: new core: %w", err)
		}
	}
	matching := matchingIndex(cfg.Matching)
	for i, p := range participants {
		nd, err := NewNode(NodeConfig{
			ID: NodeID(i), Matching: i == matching, Participant: p, Table: table,
			DecisionTimeout: cfg.DecisionTimeout, CommitTimeout: cfg.CommitTimeout, Grace: cfg.Grace,
		})
		if err != nil {
			return nil, fmt.Errorf("engine: new core: %w", err)
		}
		r := i % nr
		hosts[r] = append(hosts[r], nd)
		remotes[r].Nodes = append(remotes[r].Nodes, NodeID(i))
	}
	var runners []*Runner
	for i := range nr {
		h, err := NewHost(ends[i], clock, hosts[i]...)
		if err != nil {
			return nil, fmt.Errorf("engine: new core: %w", err)
		}
		runners = append(runners, Run(NewIdleStrategy(cfg.Idle, ends[i].Bell), ends[i].Bell, h))
	}
	k, err := Dial(cfg, table, remotes...)
	if err != nil {
		for _, r := range runners {
			r.Stop()
		}
		return nil, err
	}
	k.runners = runners
	return k, nil
}

// matchingIndex maps Config.Matching to CoordinatorConfig.Matching.
func matchingIndex(m int) int {
	if m < 0 {
		return -1
	}
	return m
}

// Dial starts a Core over participant hosts that run elsewhere (other
// processes over shared-memory links, or runners the caller started),
// sharing table with them. The Core starts as coordinator of cfg.Epoch (or
// the table's epoch plus one), which fences any older coordinator, and
// finishes the transactions it finds in flight, using cfg.Records, before
// it accepts commands; their Results come first from Poll, marked
// Recovered. Dial is NewStandby and TakeOver in one call.
func Dial(cfg Config, table *DecisionTable, remotes ...Remote) (*Core, error) {
	n := 0
	for _, r := range remotes {
		n += len(r.Nodes)
	}
	s, err := NewStandby(cfg, table, n)
	if err != nil {
		return nil, err
	}
	return s.TakeOver(cfg.Log, cfg.Records, remotes...)
}

// Standby is a backup coordinator made ahead of need, while the primary
// still runs: its transaction window and result queue (megabytes for a
// full table) are allocated and their pages touched at once, so that a
// takeover pays only for fencing the old epoch and finishing what was in
// flight, not for the page faults of a fresh Core.
type Standby struct {
	k     *Core
	cfg   Config
	epoch Epoch
	n     int
}

// NewStandby prepares a backup coordinator of cfg for participants nodes
// sharing table. Its epoch is cfg.Epoch, or the table's epoch plus one as
// the table is now. cfg.Log and cfg.Records are not used: the journal is
// the primary's until it dies, so TakeOver gets them.
func NewStandby(cfg Config, table *DecisionTable, participants int) (*Standby, error) {
	if table == nil || participants < 1 || participants > MaxParticipants {
		return nil, fmt.Errorf("engine: standby: needs a decision table and 1 to %d participants, got %d", MaxParticipants, participants)
	}
	k := &Core{clock: cfg.Clock}
	if k.clock == nil {
		k.clock = NewMonotonicClock()
	}
	epoch := cfg.Epoch
	if epoch == 0 {
		epoch = table.Epoch() + 1
	}
	co, err := NewCoordinator(CoordinatorConfig{
		Epoch: epoch, Participants: participants, Matching: matchingIndex(cfg.Matching), Mode: cfg.Mode,
		Timeouts: cfg.Timeouts, MaxInFlight: cfg.MaxInFlight, ReplyOnCommitSent: cfg.ReplyOnCommitSent,
		Table: table, Log: discardLog{}, Gate: cfg.Gate,
	})
	if err != nil {
		return nil, fmt.Errorf("engine: standby: %w", err)
	}
	k.co = co
	co.reserve()
	k.pending = newResultQueue(2 * table.Len()) // recovered results plus a full table in flight
	k.read = k.onRecord
	for i := range co.win {
		co.win[i].tx = 0
	}
	for i := range k.pending.buf {
		k.pending.buf[i].Tx = 0
	}
	return &Standby{k: k, cfg: cfg, epoch: epoch, n: participants}, nil
}

// TakeOver connects the standby to remotes, which must serve node ids 0 to
// participants-1, and starts its coordinator as Dial does, with log as its
// write-ahead log (nil keeps nothing) and records as the log's records to
// recover from (any order; JournalRecordsNewestFirst reads the least). It
// fails if a coordinator of the standby's epoch or a newer one has started
// since NewStandby.
func (s *Standby) TakeOver(log Log, records iter.Seq[*Record], remotes ...Remote) (*Core, error) {
	k := s.k
	if k == nil {
		return nil, errors.New("engine: take over: the standby was used already")
	}
	if len(remotes) == 0 {
		return nil, errors.New("engine: take over: needs at least one remote host")
	}
	k.conns = make([]*Conn, len(remotes))
	for i := range k.route {
		k.route[i] = -1
	}
	n := 0
	for i, r := range remotes {
		if r.Conn == nil || len(r.Nodes) == 0 {
			return nil, fmt.Errorf("engine: take over: remote %d has no conn or no nodes", i)
		}
		k.conns[i] = r.Conn
		for _, id := range r.Nodes {
			if id >= MaxParticipants || k.route[id] >= 0 {
				return nil, fmt.Errorf("engine: take over: node id %d out of range or served twice", id)
			}
			k.route[id] = i
			n++
		}
	}
	if n != s.n {
		return nil, fmt.Errorf("engine: take over: remotes serve %d nodes, the standby was made for %d", n, s.n)
	}
	for id := range n {
		if k.route[id] < 0 {
			return nil, fmt.Errorf("engine: take over: node ids must be 0…%d; %d is missing", n-1, id)
		}
	}
	k.maxQueued = maxQueued(k.conns)
	if s.cfg.Idle == IdlePark && len(k.conns) == 1 {
		k.idle = NewIdleStrategy(IdlePark, k.conns[0].Bell)
	} else {
		k.idle = NewIdleStrategy(min(s.cfg.Idle, IdleSpin), nil)
	}
	if log != nil {
		k.co.log = log
		if sy, ok := log.(interface{ Sync() error }); ok {
			k.sync = sy
		}
	}
	if records == nil {
		records = func(func(*Record) bool) {}
	}
	s.k = nil
	if err := k.co.Start(k.clock.Now(), records); err != nil {
		return nil, fmt.Errorf("engine: take over: start coordinator of epoch %d: %w", s.epoch, err)
	}
	if _, err := k.flush(); err != nil {
		return nil, fmt.Errorf("engine: take over: %w", err)
	}
	return k, nil
}

// Submit runs cmd as one transaction and returns its Result. It waits as
// long as the protocol takes: a missing participant costs the PREPARE
// timeout and an abort; a participant that dies after the commit point
// delays the Result until it is back. Results of transactions sent with
// Send that finish meanwhile wait for Poll.
func (k *Core) Submit(cmd *Command) (Result, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	tx, err := k.propose(cmd, true)
	if err != nil {
		return Result{}, err
	}
	k.want, k.got, k.out = tx, false, &k.res
	defer func() { k.want, k.out = 0, nil }()
	k.idle.Reset()
	for !k.got {
		n, err := k.doWork()
		if err != nil {
			return Result{}, err
		}
		if !k.got {
			k.idle.Idle(n)
		}
	}
	return k.res, nil
}

// Send starts cmd as a transaction and returns its id without waiting; its
// Result comes from Poll. Commands sent between two Polls share each
// phase's round trip (batching). Send returns ErrBusy when the maximum
// number of transactions is in flight or Poll has fallen behind: Poll, then
// send again.
func (k *Core) Send(cmd *Command) (TxID, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.propose(cmd, false)
}

// Poll runs one duty cycle of the coordinator (sends what Send queued,
// handles votes and acks, fires timeouts) and hands every finished
// transaction's Result to fn, which must not keep the pointer. It returns
// how many Results it delivered.
func (k *Core) Poll(fn func(*Result)) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.usable(); err != nil {
		return 0, err
	}
	if _, err := k.doWork(); err != nil {
		return 0, err
	}
	n := 0
	for k.pending.len() > 0 {
		fn(k.pending.front())
		k.pending.pop()
		n++
	}
	return n, nil
}

// InFlight returns the number of transactions started and not finished.
func (k *Core) InFlight() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.co.InFlight()
}

// Counters returns the coordinator's running totals.
func (k *Core) Counters() Counters {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.co.Counters()
}

// Dropped returns the number of messages the coordinator lost to a full
// ring: each is a retransmission or a PREPARE timeout, never a wrong
// outcome.
func (k *Core) Dropped() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dropped
}

// Close stops the in-process participant runners. Transactions still in
// flight stay undecided or unfinished in the decision table, exactly as
// after a crash. It returns the error that stopped a runner, if any.
func (k *Core) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	var errs []error
	for _, r := range k.runners {
		if err := r.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (k *Core) usable() error {
	switch {
	case k.closed:
		return ErrClosed
	case k.err != nil:
		return k.err
	}
	return nil
}

// errPollBehind is propose's ErrBusy when Results wait for Poll: made once,
// because a pipelining client meets it in its steady state, where an
// allocation per call would show.
var errPollBehind = fmt.Errorf("engine: results wait for Poll: %w", ErrBusy)

// errRingsFull is Send's ErrBusy when the rings cannot take another burst,
// made once for the same reason.
var errRingsFull = fmt.Errorf("engine: the rings to the participants are full, or would be once the messages sent since the last Poll are flushed; Poll: %w", ErrBusy)

// propose starts cmd. With wait set it polls while the coordinator is busy.
func (k *Core) propose(cmd *Command, wait bool) (TxID, error) {
	if err := k.usable(); err != nil {
		return 0, err
	}
	if cmd == nil {
		return 0, fmt.Errorf("engine: submit: %w: nil command", ErrMalformed)
	}
	k.cmd = *cmd
	c := &k.cmd
	if c.Time == 0 {
		c.Time = time.Now().UnixNano()
	}
	for {
		// Results a Gate's rejections left in Ready count too: they reach
		// the queue at the next flush.
		if k.pending.len()+len(k.co.ready.Results)+k.co.InFlight() >= k.pending.cap() {
			return 0, errPollBehind
		}
		if len(k.co.ready.Msgs) >= k.maxQueued || k.congested && !k.roomy() {
			if !wait {
				return 0, errRingsFull
			}
			n, err := k.doWork()
			if err != nil {
				return 0, err
			}
			k.idle.Idle(n)
			continue
		}
		tx, err := k.co.Propose(k.clock.Now(), c)
		if !errors.Is(err, ErrBusy) || !wait {
			return tx, err
		}
		n, err := k.doWork()
		if err != nil {
			return 0, err
		}
		k.idle.Idle(n)
	}
}

// doWork is one coordinator duty cycle.
func (k *Core) doWork() (int, error) {
	for _, r := range k.runners {
		select {
		case <-r.Done():
			return 0, k.fail(fmt.Errorf("participant runner stopped: %w", r.Err()))
		default:
		}
	}
	k.now = k.clock.Now()
	work := 0
	for _, c := range k.conns {
		if c.Beat != nil {
			c.Beat()
		}
		k.from = c
		n, err := c.Rx.Read(256, k.read)
		if err != nil {
			return work, k.fail(err)
		}
		if k.err != nil {
			return work, k.err
		}
		work += n
	}
	rd := k.co.Ready()
	if d := rd.Deadline; d != 0 && k.now >= d {
		if err := k.co.Tick(k.now); err != nil {
			return work, k.fail(err)
		}
	} else if len(rd.Msgs) == 0 && len(rd.Results) == 0 {
		return work, nil // an idle cycle stays short: it is the polling delay
	}
	n, err := k.flush()
	return work + n, err
}

// flush sends what the coordinator's Ready holds and delivers its Results.
func (k *Core) flush() (int, error) {
	rd := k.co.Ready()
	for i := range rd.Msgs {
		m := &rd.Msgs[i]
		if m.To == Broadcast {
			for _, c := range k.conns {
				if err := k.send(c, m); err != nil {
					return 0, err
				}
			}
			continue
		}
		if m.To >= MaxParticipants || k.route[m.To] < 0 {
			return 0, k.fail(fmt.Errorf("%w: coordinator addressed node %d", ErrMisrouted, m.To))
		}
		if err := k.send(k.conns[k.route[m.To]], m); err != nil {
			return 0, err
		}
	}
	for i := range rd.Results {
		r := &rd.Results[i]
		if r.Tx == k.want && k.out != nil {
			copyResult(k.out, r)
			k.got = true
			continue
		}
		if !k.pending.push(r) {
			return 0, k.fail(fmt.Errorf("result queue of %d overflowed: a broken invariant", k.pending.cap()))
		}
	}
	n := len(rd.Msgs) + len(rd.Results)
	k.co.Advance()
	for _, c := range k.conns {
		c.Tx.Commit()
	}
	if n > 0 && k.sync != nil {
		if err := k.sync.Sync(); err != nil {
			return n, k.fail(err)
		}
	}
	return n, nil
}

func (k *Core) send(c *Conn, m *Msg) error {
	ok, err := c.send(m)
	if err != nil {
		return k.fail(err)
	}
	if !ok {
		k.dropped++
		k.congested = true
	}
	return nil
}

// maxQueued is how many messages may wait to be flushed to conns: those
// half the smallest ring holds, so that a burst of Sends between two Polls
// is held back by ErrBusy rather than dropped at the flush.
func maxQueued(conns []*Conn) int {
	n := int(^uint(0) >> 1)
	for _, c := range conns {
		n = min(n, c.Tx.Capacity()/(2*(ringbuf.HeaderSize+PrepareMsgSize+sumSize)))
	}
	return n
}

// roomy reports whether every ring to the participants is at most half
// full, and clears congested when it is.
func (k *Core) roomy() bool {
	for _, c := range k.conns {
		if 2*c.Tx.Len() > c.Tx.Capacity() {
			return false
		}
	}
	k.congested = false
	return true
}

func (k *Core) onRecord(typ uint16, p []byte) {
	if k.err != nil {
		return
	}
	if err := k.from.decode(&k.msg, &k.buf, typ, p); err != nil {
		k.fail(err)
		return
	}
	if err := k.co.Step(k.now, &k.msg); err != nil {
		k.fail(err)
	}
}

// fail records the first fatal error; the Core makes no decision after it.
func (k *Core) fail(err error) error {
	if k.err == nil {
		k.err = fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return k.err
}

// resultQueue is a fixed-capacity FIFO of Results: no allocation after
// it is made.
type resultQueue struct {
	buf        []Result
	head, size int
}

func newResultQueue(n int) resultQueue { return resultQueue{buf: make([]Result, n)} }

func (q *resultQueue) len() int       { return q.size }
func (q *resultQueue) cap() int       { return len(q.buf) }
func (q *resultQueue) front() *Result { return &q.buf[q.head] }

func (q *resultQueue) push(r *Result) bool {
	if q.size == len(q.buf) {
		return false
	}
	copyResult(&q.buf[(q.head+q.size)%len(q.buf)], r)
	q.size++
	return true
}

func (q *resultQueue) pop() {
	q.head = (q.head + 1) % len(q.buf)
	q.size--
}
