package engine

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// recGate is a Gate that answers as told and records every call.
type recGate struct {
	tab            *DecisionTable
	admit, begin   Reason
	resumesAt      int64
	trip           bool // Fills trips: aborts the slot by CAS, as a breaker does
	calls          []string
	voted, missing map[TxID]uint32
	done           []Result
}

func newRecGate(tab *DecisionTable) *recGate {
	return &recGate{tab: tab, voted: map[TxID]uint32{}, missing: map[TxID]uint32{}}
}

func (g *recGate) Admit(cmd *Command, now int64) (Reason, int64) {
	g.calls = append(g.calls, fmt.Sprintf("admit %v", cmd.Kind))
	return g.admit, g.resumesAt
}

func (g *recGate) Begin(tx TxID, cmd *Command, now int64) (Reason, int64) {
	g.calls = append(g.calls, fmt.Sprintf("begin %d", tx))
	if d, _, err := g.tab.Lookup(tx); err != nil || d != Undecided {
		g.calls = append(g.calls, fmt.Sprintf("begin found %v %v", d, err))
	}
	return g.begin, g.resumesAt
}

func (g *recGate) Fills(tx TxID, out *Outcome, now int64) bool {
	g.calls = append(g.calls, fmt.Sprintf("fills %d", tx))
	if g.trip {
		if _, _, err := g.tab.Abort(tx, ReasonCircuitBreaker); err != nil {
			panic(err)
		}
	}
	return g.trip
}

func (g *recGate) Voted(tx TxID, voted, missing uint32, now int64) {
	g.calls = append(g.calls, fmt.Sprintf("voted %d %03b %03b", tx, voted, missing))
	g.voted[tx], g.missing[tx] = voted, missing
}

func (g *recGate) Done(res *Result, now int64) {
	g.calls = append(g.calls, fmt.Sprintf("done %d %v", res.Tx, res.Reason))
	g.done = append(g.done, *res)
}

// newGateCluster is newCluster with three nodes and a recGate as the
// coordinator's Gate.
func newGateCluster(t *testing.T, mode Mode) (*cluster, *recGate) {
	k := &cluster{t: t, tab: newTable(t, 64), log: &memLog{}, buf: make([]byte, MaxMsgSize)}
	g := newRecGate(k.tab)
	var err error
	k.c, err = NewCoordinator(CoordinatorConfig{Epoch: 1, Participants: 3, Matching: 0, Mode: mode,
		Table: k.tab, Log: k.log, Gate: g})
	must(t, err)
	must(t, k.c.Start(0, k.log.all()))
	for i := range 3 {
		p := &NopParticipant{}
		nd, err := NewNode(NodeConfig{ID: NodeID(i), Matching: i == 0, Participant: p, Table: k.tab})
		must(t, err)
		k.nodes, k.ps = append(k.nodes, nd), append(k.ps, p)
	}
	return k, g
}

func TestGateCommitCalls(t *testing.T) {
	for _, mode := range []Mode{ThreePhase, TwoPhase} {
		t.Run(mode.String(), func(t *testing.T) {
			k, g := newGateCluster(t, mode)
			tx, err := k.c.Propose(10, &testCmd)
			must(t, err)
			k.run(20)
			eq(t, "calls", []string{"admit new", fmt.Sprintf("begin %d", tx), fmt.Sprintf("fills %d", tx),
				fmt.Sprintf("voted %d 111 000", tx), fmt.Sprintf("done %d none", tx)}, g.calls)
			eq(t, "results", 1, len(k.res))
			eq(t, "Done sees the Result", k.res[0], g.done[0])
			eq(t, "resumes at", int64(0), k.res[0].ResumesAt)
		})
	}
}

// A command Admit rejects gets an id and an aborted Result at once: no
// PREPARE, no journal record, no decision slot.
func TestGateAdmitRejects(t *testing.T) {
	k, g := newGateCluster(t, ThreePhase)
	g.admit, g.resumesAt = ReasonHalted, 12345
	tx, err := k.c.Propose(10, &testCmd)
	must(t, err)
	eq(t, "tx", MakeTxID(1, 1), tx)
	eq(t, "messages", "", types(k.drain(k.c)))
	eq(t, "results", 1, len(k.res))
	r := k.res[0]
	eq(t, "result", [4]any{tx, ReasonHalted, int64(12345), uint64(tx)}, [4]any{r.Tx, r.Reason, r.ResumesAt, r.Cmd.OrderID})
	eq(t, "latencies", [4]int64{}, [4]int64{r.Prepare, r.PreCommit, r.Commit, r.Total})
	eq(t, "log", 0, len(k.log.recs))
	_, _, err = k.tab.Lookup(tx)
	eq(t, "slot", ErrNotInTable, err)
	eq(t, "in flight", 0, k.c.InFlight())
	eq(t, "counter", uint64(1), k.c.Counters().Aborted[ReasonHalted])
	eq(t, "calls", []string{"admit new", fmt.Sprintf("done %d halted", tx)}, g.calls)

	// Rejections do not take the window: a full one still rejects at once.
	g.admit = ReasonNone
	for range 64 {
		_, err := k.c.Propose(11, &testCmd)
		must(t, err)
	}
	_, err = k.c.Propose(12, &testCmd)
	eq(t, "full window", ErrBusy, err)
	g.admit = ReasonParticipantUnavailable
	tx, err = k.c.Propose(13, &testCmd)
	must(t, err)
	eq(t, "rejected while full", ReasonParticipantUnavailable, k.c.Ready().Results[0].Reason)
	eq(t, "ids stay unique", MakeTxID(1, 66), tx)

	g.admit = Reason(200)
	_, err = k.c.Propose(14, &testCmd)
	if err == nil {
		t.Fatal("an undefined reason from Admit must fail the Propose")
	}
}

// A command Begin rejects is aborted in the table and released before any
// PREPARE goes out; the slot is free for the next transaction.
func TestGateBeginRejects(t *testing.T) {
	k, g := newGateCluster(t, ThreePhase)
	g.begin, g.resumesAt = ReasonBackpressure, 77
	tx, err := k.c.Propose(10, &testCmd)
	must(t, err)
	eq(t, "messages", "", types(k.drain(k.c)))
	eq(t, "results", 1, len(k.res))
	eq(t, "reason", ReasonBackpressure, k.res[0].Reason)
	eq(t, "resumes at", int64(77), k.res[0].ResumesAt)
	d, r, err := k.tab.Lookup(tx)
	must(t, err)
	eq(t, "slot", [2]any{Abort, ReasonBackpressure}, [2]any{d, r})
	eq(t, "in flight", 0, k.c.InFlight())
	eq(t, "deadline", int64(0), k.c.Ready().Deadline)
	eq(t, "log", 0, len(k.log.recs))
	eq(t, "calls", []string{"admit new", fmt.Sprintf("begin %d", tx), fmt.Sprintf("done %d backpressure", tx)}, g.calls)
	for _, p := range k.ps {
		eq(t, "prepared", uint64(0), p.Prepared)
	}
	// The released slot takes a later transaction (64 slots on).
	g.begin = ReasonNone
	for range 64 {
		_, err := k.c.Propose(11, &testCmd)
		must(t, err)
	}
	k.run(12)
	eq(t, "commits", uint64(64), k.c.Counters().Committed)
}

// A trip on matching's fills aborts the transaction at once, before the
// other votes and without a commit record.
func TestGateFillsTrip(t *testing.T) {
	k, g := newGateCluster(t, ThreePhase)
	g.trip = true
	tx, err := k.c.Propose(10, &testCmd)
	must(t, err)
	votes := k.toNodes(11, k.drain(k.c))
	k.toCoord(k.c, 12, votes[:1]) // matching's YES only
	ab := k.drain(k.c)
	eq(t, "abort at once", "ABORT>254", types(ab))
	eq(t, "voted", uint32(0b001), g.voted[tx])
	k.toCoord(k.c, 13, votes[1:]) // the other YES votes are late
	eq(t, "late votes", "", types(k.drain(k.c)))
	k.toCoord(k.c, 14, k.toNodes(14, ab))
	k.drain(k.c)
	eq(t, "reason", ReasonCircuitBreaker, k.res[0].Reason)
	eq(t, "log", 0, len(k.log.recs))
	for _, p := range k.ps {
		eq(t, "aborted", uint64(1), p.Aborted)
		eq(t, "committed", uint64(0), p.Committed)
	}
}

// Voted names who voted and who was missing at the PREPARE timeout.
func TestGateVotedMissing(t *testing.T) {
	k, g := newGateCluster(t, ThreePhase)
	tx, err := k.c.Propose(0, &testCmd)
	must(t, err)
	prep := k.drain(k.c)
	// Only node 1 gets the PREPARE.
	must(t, k.nodes[1].Step(1, &prep[0]))
	k.toCoord(k.c, 2, k.nodes[1].Ready().Msgs)
	k.nodes[1].Advance()
	must(t, k.c.Tick(int64(DefaultPrepareTimeout)))
	eq(t, "voted", uint32(0b010), g.voted[tx])
	eq(t, "missing", uint32(0b101), g.missing[tx])

	// A NO vote counts as a vote.
	k2, g2 := newGateCluster(t, ThreePhase)
	tx, err = k2.c.Propose(0, &testCmd)
	must(t, err)
	prep = k2.drain(k2.c)
	must(t, k2.nodes[2].Step(1, &prep[0]))
	vote := k2.nodes[2].Ready().Msgs[0]
	k2.nodes[2].Advance()
	vote.Reason = ReasonInsufficientCash // as if node 2 voted NO
	must(t, k2.c.Step(2, &vote))
	eq(t, "voted", uint32(0b100), g2.voted[tx])
	eq(t, "missing", uint32(0), g2.missing[tx])
}

// countGate is an allocation-free Gate that admits everything.
type countGate struct{ n int }

func (g *countGate) Admit(*Command, int64) (Reason, int64)       { g.n++; return ReasonNone, 0 }
func (g *countGate) Begin(TxID, *Command, int64) (Reason, int64) { g.n++; return ReasonNone, 0 }
func (g *countGate) Fills(TxID, *Outcome, int64) bool            { g.n++; return false }
func (g *countGate) Voted(TxID, uint32, uint32, int64)           { g.n++ }
func (g *countGate) Done(*Result, int64)                         { g.n++ }

// The hook allocates nothing, with a Gate or without one.
func TestGateAllocs(t *testing.T) {
	for _, gate := range []Gate{nil, &countGate{}} {
		t.Run(fmt.Sprintf("gate=%T", gate), func(t *testing.T) {
			k := &benchCluster{buf: make([]byte, MaxMsgSize), base: time.Now(), nodes: make([]*Node, 3)}
			tab := newTable(t, 1024)
			var err error
			k.c, err = NewCoordinator(CoordinatorConfig{Epoch: 1, Participants: 3, Matching: 0, Table: tab, Log: nopLog{}, Gate: gate})
			must(t, err)
			must(t, k.c.Start(0, func(func(*Record) bool) {}))
			for i := range k.nodes {
				k.nodes[i], err = NewNode(NodeConfig{ID: NodeID(i), Matching: i == 0, Participant: &NopParticipant{}, Table: tab})
				must(t, err)
			}
			one := func() {
				cmd := testCmd // a local: it must not escape through the Gate
				if _, err := k.c.Propose(k.now(), &cmd); err != nil {
					panic(err)
				}
				k.settle()
			}
			for range 2000 { // warm up: Ready's slices and the timer heaps reach their size
				one()
			}
			if a := testing.AllocsPerRun(1000, one); a != 0 {
				t.Fatalf("%v allocs per transaction, want 0", a)
			}
			if g, ok := gate.(*countGate); ok && g.n == 0 {
				t.Fatal("the gate was never called")
			}
		})
	}
}

// haltGate rejects every command.
type haltGate struct{ countGate }

func (g *haltGate) Admit(*Command, int64) (Reason, int64) { return ReasonHalted, 99 }

// Rejected commands' Results wait in the Core for Poll like any others:
// Send answers ErrBusy when they would overflow its queue, and the Core
// goes on.
func TestCoreGateRejectionsWaitForPoll(t *testing.T) {
	k, err := New(slackConfig(Config{Idle: IdleYield, Slots: 64, Gate: &haltGate{}}), &filler{}, &NopParticipant{})
	must(t, err)
	defer k.Close()
	cmd := order(0)
	sent := 0
	for ; sent < 4*64; sent++ {
		if _, err := k.Send(&cmd); err != nil {
			if !errors.Is(err, ErrBusy) {
				t.Fatal(err)
			}
			break
		}
	}
	eq(t, "sent before busy", 2*64, sent)
	n, err := k.Poll(func(r *Result) {
		if r.Reason != ReasonHalted || r.ResumesAt != 99 {
			t.Errorf("result %+v, want halted until 99", r)
		}
	})
	must(t, err)
	eq(t, "results", sent, n)
	res, err := k.Submit(&cmd)
	must(t, err)
	eq(t, "submit", ReasonHalted, res.Reason)
	eq(t, "counter", uint64(sent+1), k.Counters().Aborted[ReasonHalted])
}
