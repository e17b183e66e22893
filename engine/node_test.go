package engine

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// callRecorder is a Participant that records its calls.
type callRecorder struct {
	calls []string
	no    map[TxID]Reason
}

func (p *callRecorder) Prepare(tx TxID, _ *Command, out *Outcome) Reason {
	p.calls = append(p.calls, fmt.Sprintf("prepare %d", tx&MaxSeq))
	out.NFills = 1
	out.Fills[0] = Fill{TradeID: TradeIDOf(tx, 0), TakerSide: Buy, Qty: 1}
	return p.no[tx]
}
func (p *callRecorder) PreCommit(tx TxID, _ *Outcome) {
	p.calls = append(p.calls, fmt.Sprintf("precommit %d", tx&MaxSeq))
}
func (p *callRecorder) Commit(tx TxID, out *Outcome) {
	p.calls = append(p.calls, fmt.Sprintf("commit %d fills %d", tx&MaxSeq, out.NFills))
}
func (p *callRecorder) Abort(tx TxID) { p.calls = append(p.calls, fmt.Sprintf("abort %d", tx&MaxSeq)) }
func (p *callRecorder) Apply(tx TxID, _ *Command, out *Outcome) error {
	p.calls = append(p.calls, fmt.Sprintf("apply %d fills %d", tx&MaxSeq, out.NFills))
	return nil
}
func (p *callRecorder) Snapshot(io.Writer) error { return nil }
func (p *callRecorder) Restore(io.Reader) error  { return nil }

// nodeRig is one node over a table at epoch 1, fed hand-made messages.
type nodeRig struct {
	t   *testing.T
	tab *DecisionTable
	p   *callRecorder
	n   *Node
	out []string // replies, as "TYPE seq reason"
}

func newNodeRig(t *testing.T) *nodeRig {
	r := &nodeRig{t: t, tab: newTable(t, 64), p: &callRecorder{no: map[TxID]Reason{}}}
	must(t, r.tab.AdvanceEpoch(1))
	var err error
	r.n, err = NewNode(NodeConfig{ID: 1, Matching: true, Participant: r.p, Table: r.tab})
	must(t, err)
	return r
}

func tx1(seq uint64) TxID { return MakeTxID(1, seq) }

func (r *nodeRig) open(seq uint64) {
	r.t.Helper()
	must(r.t, r.tab.Open(tx1(seq)))
}

func (r *nodeRig) step(now int64, t MsgType, seq uint64, epoch Epoch) {
	r.t.Helper()
	m := Msg{Type: t, From: CoordinatorID, To: 1, Epoch: epoch, Tx: tx1(seq)}
	switch t {
	case MsgPrepare:
		m.Cmd = Command{Kind: Cancel, OrderID: 1}
	case MsgPreCommit:
		m.HasOutcome = true
		m.Out.NFills = 2
		m.Out.Fills[0].TakerSide, m.Out.Fills[1].TakerSide = Buy, Buy
	case MsgAbort:
		m.Reason = ReasonTimeout
	}
	must(r.t, r.n.Step(now, &m))
	r.collect()
}

func (r *nodeRig) collect() {
	rd := r.n.Ready()
	for _, m := range rd.Msgs {
		s := fmt.Sprintf("%v %d", m.Type, m.Tx&MaxSeq)
		if m.Type == MsgVote {
			s += " " + m.Reason.String()
			if m.HasOutcome {
				s += " +out"
			}
		}
		r.out = append(r.out, s)
	}
	r.n.Advance()
}

func (r *nodeRig) tick(now int64) {
	r.n.Tick(now)
	r.collect()
}

func TestNodeRules(t *testing.T) {
	const us = 1000
	// precommitted takes tx 1 to PRECOMMITTED at 1 µs, decided COMMIT.
	precommitted := func(r *nodeRig) {
		r.open(1)
		r.step(0, MsgPrepare, 1, 1)
		_, _, _ = r.tab.Commit(tx1(1))
		r.step(us, MsgPreCommit, 1, 1)
	}
	cases := []struct {
		name      string
		run       func(r *nodeRig)
		calls     string
		replies   string
		tableSeq  uint64
		wantTable Decision
	}{
		{
			name: "duplicate PREPARE re-sends the vote, prepares once",
			run: func(r *nodeRig) {
				r.open(1)
				r.step(0, MsgPrepare, 1, 1)
				r.step(0, MsgPrepare, 1, 1)
			},
			calls:   "prepare 1",
			replies: "VOTE 1 none +out|VOTE 1 none +out",
		},
		{
			name: "duplicate PREPARE after a NO re-sends the NO",
			run: func(r *nodeRig) {
				r.p.no[tx1(1)] = ReasonCreditLimit
				r.open(1)
				r.step(0, MsgPrepare, 1, 1)
				r.step(0, MsgPrepare, 1, 1)
				r.step(0, MsgAbort, 1, 1)
			},
			calls:   "prepare 1",
			replies: "VOTE 1 credit_limit|VOTE 1 credit_limit|ABORT-ACK 1",
		},
		{
			name: "ABORT before PREPARE: the late PREPARE is refused",
			run: func(r *nodeRig) {
				r.open(1)
				r.step(0, MsgAbort, 1, 1)
				r.step(0, MsgPrepare, 1, 1)
			},
			replies: "ABORT-ACK 1",
		},
		{
			name: "PREPARE of an aborted slot reserves nothing",
			run: func(r *nodeRig) {
				r.open(1)
				_, _, _ = r.tab.Abort(tx1(1), ReasonCircuitBreaker)
				r.step(0, MsgPrepare, 1, 1)
				r.step(0, MsgAbort, 1, 1)
			},
			replies: "VOTE 1 circuit_breaker|ABORT-ACK 1",
		},
		{
			name: "messages of another epoch are ignored",
			run: func(r *nodeRig) {
				r.open(1)
				r.step(0, MsgPrepare, 1, 2)
				must(r.t, r.tab.AdvanceEpoch(2))
				r.step(0, MsgPrepare, 1, 1)
			},
		},
		{
			name: "a reordered PREPARE gets NO without a Prepare call",
			run: func(r *nodeRig) {
				r.open(1)
				r.open(2)
				r.step(0, MsgPrepare, 2, 1)
				r.step(0, MsgPrepare, 1, 1)
			},
			calls:   "prepare 2",
			replies: "VOTE 2 none +out|VOTE 1 timeout",
		},
		{
			name: "duplicate PRE-COMMIT and COMMIT call the participant once",
			run: func(r *nodeRig) {
				r.open(1)
				r.step(0, MsgPrepare, 1, 1)
				_, _, _ = r.tab.Commit(tx1(1))
				r.step(0, MsgPreCommit, 1, 1)
				r.step(0, MsgPreCommit, 1, 1)
				r.step(0, MsgCommit, 1, 1)
				r.step(0, MsgCommit, 1, 1)
				r.step(0, MsgPreCommit, 1, 1)
			},
			calls:   "prepare 1|precommit 1|commit 1 fills 2",
			replies: "VOTE 1 none +out|PRECOMMIT-ACK 1|PRECOMMIT-ACK 1|COMMIT-ACK 1|COMMIT-ACK 1|PRECOMMIT-ACK 1",
		},
		{
			name: "ABORT after PRE-COMMIT is a conflict and ignored",
			run: func(r *nodeRig) {
				r.open(1)
				r.step(0, MsgPrepare, 1, 1)
				r.step(0, MsgPreCommit, 1, 1)
				r.step(0, MsgAbort, 1, 1)
				eq(r.t, "conflicts", uint64(1), r.n.Counters().Conflicts)
			},
			calls:   "prepare 1|precommit 1",
			replies: "VOTE 1 none +out|PRECOMMIT-ACK 1",
		},
		{
			name: "PREPARED timeout, coordinator alive, within grace: waits",
			run: func(r *nodeRig) {
				r.open(1)
				r.step(0, MsgPrepare, 1, 1)
				r.tick(int64(DefaultDecisionTimeout) + 1)
				eq(r.t, "state", "PREPARED", r.n.State(tx1(1)))
			},
			calls:     "prepare 1",
			replies:   "VOTE 1 none +out",
			tableSeq:  1,
			wantTable: Undecided,
		},
		{
			name: "PREPARED timeout past the grace period: CAS ABORT",
			run: func(r *nodeRig) {
				r.open(1)
				r.step(0, MsgPrepare, 1, 1)
				for now := int64(0); now <= int64(DefaultGrace); now += 100 * us {
					r.tick(now)
				}
				r.step(int64(DefaultGrace), MsgAbort, 1, 1)
				eq(r.t, "terminations", uint64(1), r.n.Counters().Terminations)
			},
			calls:     "prepare 1|abort 1",
			replies:   "VOTE 1 none +out|ABORT-ACK 1",
			tableSeq:  1,
			wantTable: Abort,
		},
		{
			name: "PREPARED timeout, coordinator dead: CAS ABORT at once",
			run: func(r *nodeRig) {
				r.open(1)
				r.step(0, MsgPrepare, 1, 1)
				r.n.SetCoordinatorAlive(false)
				r.tick(int64(DefaultDecisionTimeout))
			},
			calls:     "prepare 1|abort 1",
			replies:   "VOTE 1 none +out",
			tableSeq:  1,
			wantTable: Abort,
		},
		{
			name: "PREPARED timeout, table says COMMIT: waits for the Outcome",
			run: func(r *nodeRig) {
				r.open(1)
				r.step(0, MsgPrepare, 1, 1)
				_, _, _ = r.tab.Commit(tx1(1))
				r.n.SetCoordinatorAlive(false)
				r.tick(int64(DefaultDecisionTimeout))
				r.tick(10 * int64(DefaultGrace))
				eq(r.t, "state", "PREPARED", r.n.State(tx1(1)))
			},
			calls:     "prepare 1",
			replies:   "VOTE 1 none +out",
			tableSeq:  1,
			wantTable: Commit,
		},
		{
			name: "PRECOMMITTED, coordinator dead: commits on its own after the commit timeout",
			run: func(r *nodeRig) {
				precommitted(r)
				r.n.SetCoordinatorAlive(false)
				r.tick(us + int64(DefaultCommitTimeout))
				eq(r.t, "state", "COMMITTED", r.n.State(tx1(1)))
				r.step(0, MsgCommit, 1, 1)
			},
			calls:   "prepare 1|precommit 1|commit 1 fills 2",
			replies: "VOTE 1 none +out|PRECOMMIT-ACK 1|COMMIT-ACK 1",
		},
		{
			name: "PRECOMMITTED, coordinator alive: waits for COMMIT up to the grace period",
			run: func(r *nodeRig) {
				precommitted(r)
				r.tick(us + int64(DefaultCommitTimeout))
				r.tick(us + int64(DefaultGrace) - 1)
				eq(r.t, "state", "PRECOMMITTED", r.n.State(tx1(1)))
				r.tick(us + int64(DefaultGrace))
				eq(r.t, "state", "COMMITTED", r.n.State(tx1(1)))
			},
			calls:   "prepare 1|precommit 1|commit 1 fills 2",
			replies: "VOTE 1 none +out|PRECOMMIT-ACK 1",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newNodeRig(t)
			c.run(r)
			eq(t, "participant calls", c.calls, strings.Join(r.p.calls, "|"))
			eq(t, "replies", c.replies, strings.Join(r.out, "|"))
			if c.tableSeq != 0 {
				d, _, err := r.tab.Lookup(tx1(c.tableSeq))
				must(t, err)
				eq(t, "table", c.wantTable, d)
			}
		})
	}
}

func TestNodeRecover(t *testing.T) {
	r := newNodeRig(t)
	log := &memLog{}
	commit := func(seq uint64) {
		rec := Record{Kind: RecCommit, Epoch: 1, Tx: tx1(seq), Cmd: Command{Kind: Cancel}}
		rec.Out.NFills = int(seq)
		must(t, log.Append(&rec))
	}
	// 1: committed and released long ago. 2: committed, still in flight.
	// 3: RecCommit, then the CAS lost: aborted and logged. 4: undecided
	// (the node may have voted YES). 5: aborted in flight, never logged.
	for seq := uint64(1); seq <= 5; seq++ {
		r.open(seq)
	}
	commit(1)
	_, _, _ = r.tab.Commit(tx1(1))
	must(t, r.tab.Release(tx1(1)))
	must(t, r.tab.Open(tx1(1+64)))
	_, _, _ = r.tab.Abort(tx1(1+64), ReasonTimeout)
	must(t, r.tab.Release(tx1(1+64)))
	commit(2)
	_, _, _ = r.tab.Commit(tx1(2))
	commit(3)
	_, _, _ = r.tab.Abort(tx1(3), ReasonCircuitBreaker)
	must(t, log.Append(&Record{Kind: RecAbort, Epoch: 1, Tx: tx1(3), Reason: ReasonCircuitBreaker}))
	_, _, _ = r.tab.Abort(tx1(5), ReasonTimeout)

	must(t, r.n.Recover(0, log.all()))
	eq(t, "calls", "apply 1 fills 1|apply 2 fills 2", strings.Join(r.p.calls, "|"))
	d, r4, err := r.tab.Lookup(tx1(4))
	must(t, err)
	eq(t, "undecided tx aborted", Abort, d)
	eq(t, "reason", ReasonTerminated, r4)
	// Retransmissions are acked without calling the participant again.
	r.step(0, MsgPreCommit, 2, 1)
	r.step(0, MsgCommit, 2, 1)
	r.step(0, MsgAbort, 4, 1)
	r.step(0, MsgPrepare, 4, 1)
	eq(t, "calls after", 2, len(r.p.calls))
	eq(t, "replies", "PRECOMMIT-ACK 2|COMMIT-ACK 2|ABORT-ACK 4", strings.Join(r.out, "|"))
	if err := r.n.Recover(0, log.all()); err == nil {
		t.Fatal("Recover after Step accepted")
	}
}
