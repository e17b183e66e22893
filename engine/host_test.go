package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// hostRig is a Coordinator driven by the test over a pipe to a Host of
// three nodes, so that the test sees every message on the wire. Node i
// votes votes[i] on commands with an odd ClientOrderID, YES on others.
type hostRig struct {
	t    *testing.T
	co   *Coordinator
	near *Conn
	host *Host
	ps   []*voter
	m    Msg
	buf  msgBuf
}

func newHostRig(t *testing.T, votes ...Reason) *hostRig {
	tab := newTable(t, 64)
	near, far, err := NewPipe(1 << 16)
	must(t, err)
	r := &hostRig{t: t, near: near}
	var nodes []*Node
	for i, v := range votes {
		p := &voter{no: v}
		nd, err := NewNode(NodeConfig{ID: NodeID(i), Matching: i == 0, Participant: p, Table: tab})
		must(t, err)
		nodes, r.ps = append(nodes, nd), append(r.ps, p)
	}
	r.host, err = NewHost(far, NewMonotonicClock(), nodes...)
	must(t, err)
	log := &memLog{}
	r.co, err = NewCoordinator(CoordinatorConfig{Epoch: 1, Participants: len(votes), Mode: ThreePhase, Table: tab, Log: log})
	must(t, err)
	must(t, r.co.Start(0, log.all()))
	return r
}

// phase sends what the coordinator has ready, runs the host once, steps
// the coordinator with every reply, and returns the replies as they were
// on the wire: "TYPE from senders", then "+run" for a run, each.
func (r *hostRig) phase() string {
	rd := r.co.Ready()
	for i := range rd.Msgs {
		ok, err := r.near.send(&rd.Msgs[i])
		must(r.t, err)
		if !ok {
			r.t.Fatal("pipe full")
		}
	}
	r.near.Tx.Commit()
	r.co.Advance()
	_, err := r.host.DoWork()
	must(r.t, err)
	var wire []string
	_, err = r.near.Rx.Read(64, func(typ uint16, p []byte) {
		must(r.t, r.near.decode(&r.m, &r.buf, typ, p))
		w := fmt.Sprintf("%v %d %#x", r.m.Type, r.m.From, r.m.Senders)
		if r.m.Run != 0 {
			w += fmt.Sprintf(" +%d", r.m.Run)
		}
		wire = append(wire, w)
		must(r.t, r.co.Step(1, &r.m))
	})
	must(r.t, err)
	return strings.Join(wire, ", ")
}

// TestHostMergesReplies checks that a Host sends its nodes' identical
// replies as one message with Senders, that the matching vote with its
// outcome and a different vote go alone, and that the coordinator counts
// a merged message once per sender.
func TestHostMergesReplies(t *testing.T) {
	t.Run("commit", func(t *testing.T) {
		r := newHostRig(t, ReasonNone, ReasonNone, ReasonNone)
		tx, err := r.co.Propose(1, &testCmd)
		must(t, err)
		eq(t, "votes", "VOTE 0 0x0, VOTE 1 0x6", r.phase())
		eq(t, "pre-commit acks", "PRECOMMIT-ACK 0 0x7", r.phase())
		eq(t, "commit acks", "COMMIT-ACK 0 0x7", r.phase())
		res := r.co.Ready().Results
		eq(t, "results", 1, len(res))
		eq(t, "outcome", ReasonNone, res[0].Reason)
		eq(t, "tx", tx, res[0].Tx)
		for i, p := range r.ps {
			eq(t, fmt.Sprintf("participant %d committed", i), uint64(1), p.Committed)
		}
		eq(t, "stale", uint64(0), r.co.Counters().Stale)
	})
	t.Run("no votes", func(t *testing.T) {
		r := newHostRig(t, ReasonNone, ReasonCreditLimit, ReasonCreditLimit, ReasonPositionLimit)
		cmd := testCmd
		cmd.ClientOrderID = 1
		_, err := r.co.Propose(1, &cmd)
		must(t, err)
		eq(t, "votes", "VOTE 0 0x0, VOTE 1 0x6, VOTE 3 0x0", r.phase())
		// Every node acks the ABORT. The coordinator aborted on node 1's
		// NO and counted it as node 1's ack: the votes after it (node 2's,
		// in the same message, and node 3's) and node 1's ack are stale.
		eq(t, "abort acks", "ABORT-ACK 0 0xf", r.phase())
		eq(t, "stale", uint64(3), r.co.Counters().Stale)
		res := r.co.Ready().Results
		eq(t, "results", 1, len(res))
		eq(t, "reason", ReasonCreditLimit, res[0].Reason)
		eq(t, "aborted", uint64(1), r.ps[0].Aborted)
	})
	t.Run("batch", func(t *testing.T) {
		// Three transactions in one duty cycle: the nodes' identical
		// replies to consecutive transactions go as one run, and the
		// coordinator's COMMITs too.
		r := newHostRig(t, ReasonNone, ReasonNone, ReasonNone)
		for i := range 3 {
			cmd := testCmd
			cmd.ClientOrderID = uint64(2 * i)
			_, err := r.co.Propose(1, &cmd)
			must(t, err)
		}
		eq(t, "votes", "VOTE 0 0x0, VOTE 1 0x6 +2, VOTE 0 0x0, VOTE 0 0x0", r.phase())
		eq(t, "pre-commit acks", "PRECOMMIT-ACK 0 0x7 +2", r.phase())
		rd := r.co.Ready()
		eq(t, "COMMIT messages", 1, len(rd.Msgs))
		eq(t, "COMMIT run", uint16(2), rd.Msgs[0].Run)
		eq(t, "commit acks", "COMMIT-ACK 0 0x7 +2", r.phase())
		eq(t, "results", 3, len(r.co.Ready().Results))
		for i, p := range r.ps {
			eq(t, fmt.Sprintf("participant %d committed", i), uint64(3), p.Committed)
		}
		eq(t, "stale", uint64(0), r.co.Counters().Stale)
	})
	t.Run("batch with a NO", func(t *testing.T) {
		// Node 2 refuses the middle transaction: its replies no longer
		// match node 1's run, and a run never spans the refusal.
		r := newHostRig(t, ReasonNone, ReasonNone, ReasonCreditLimit)
		for i := range 3 {
			cmd := testCmd
			cmd.ClientOrderID = uint64(2*i + i%2) // odd for the middle one
			_, err := r.co.Propose(1, &cmd)
			must(t, err)
		}
		eq(t, "votes", "VOTE 0 0x0, VOTE 1 0x0 +2, VOTE 2 0x0, VOTE 0 0x0, VOTE 2 0x0, VOTE 0 0x0, VOTE 2 0x0", r.phase())
		eq(t, "acks", "PRECOMMIT-ACK 0 0x7, ABORT-ACK 0 0x7, PRECOMMIT-ACK 0 0x7", r.phase())
	})
}

// TestStepRefusesBadRuns checks that both state machines refuse a run the
// codec would refuse, whoever built the message.
func TestStepRefusesBadRuns(t *testing.T) {
	r := newHostRig(t, ReasonNone, ReasonNone, ReasonNone)
	tx, err := r.co.Propose(1, &testCmd)
	must(t, err)
	for _, m := range []Msg{
		{Type: MsgVote, From: 1, To: CoordinatorID, Epoch: 1, Tx: tx, Run: 1, HasOutcome: true},
		{Type: MsgCommitAck, From: 1, To: CoordinatorID, Epoch: 1, Tx: ^TxID(0), Run: 1},
	} {
		if err := r.co.Step(1, &m); !errors.Is(err, ErrMalformed) {
			t.Errorf("coordinator took %v tx %d run %d outcome %v: %v, want ErrMalformed", m.Type, m.Tx, m.Run, m.HasOutcome, err)
		}
	}
	nd := r.host.nodes[0]
	for _, m := range []Msg{
		{Type: MsgPrepare, From: CoordinatorID, To: Broadcast, Epoch: 1, Tx: tx, Run: 1},
		{Type: MsgPreCommit, From: CoordinatorID, To: Broadcast, Epoch: 1, Tx: tx, Run: 1, HasOutcome: true},
		{Type: MsgCommit, From: CoordinatorID, To: Broadcast, Epoch: 1, Tx: ^TxID(0) - 1, Run: 2},
	} {
		if err := nd.Step(1, &m); !errors.Is(err, ErrMalformed) {
			t.Errorf("node took %v tx %d run %d: %v, want ErrMalformed", m.Type, m.Tx, m.Run, err)
		}
	}
}

func TestCoordinatorRefusesUnknownSenders(t *testing.T) {
	r := newHostRig(t, ReasonNone, ReasonNone, ReasonNone)
	tx, err := r.co.Propose(1, &testCmd)
	must(t, err)
	m := Msg{Type: MsgVote, From: 1, To: CoordinatorID, Senders: 1<<1 | 1<<5, Epoch: 1, Tx: tx}
	if err := r.co.Step(1, &m); !errors.Is(err, ErrMalformed) {
		t.Fatalf("vote from senders %#x of 3 participants: %v, want ErrMalformed", m.Senders, err)
	}
}
