package engine

import (
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// eq fails the test unless got equals want.
func eq[T any](t testing.TB, what string, want, got T) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// memLog is an in-memory Log.
type memLog struct{ recs []Record }

func (l *memLog) Append(r *Record) error {
	l.recs = append(l.recs, *r)
	return nil
}

func (l *memLog) all() iter.Seq[*Record] {
	return func(yield func(*Record) bool) {
		for i := range l.recs {
			if !yield(&l.recs[i]) {
				return
			}
		}
	}
}

func newTable(t testing.TB, n int) *DecisionTable {
	t.Helper()
	tab, err := InitDecisionTable(make([]byte, DecisionTableSize(n)), n)
	must(t, err)
	return tab
}

// cluster wires a coordinator and nodes with synchronous, in-order delivery
// through the codec.
type cluster struct {
	t     testing.TB
	tab   *DecisionTable
	log   *memLog
	c     *Coordinator
	nodes []*Node
	ps    []*NopParticipant
	res   []Result
	buf   []byte
	m     Msg
}

func newCluster(t testing.TB, mode Mode, n int) *cluster {
	k := &cluster{t: t, tab: newTable(t, 64), log: &memLog{}, buf: make([]byte, MaxMsgSize)}
	var err error
	k.c, err = NewCoordinator(CoordinatorConfig{Epoch: 1, Participants: n, Matching: 0, Mode: mode, Table: k.tab, Log: k.log})
	must(t, err)
	must(t, k.c.Start(0, k.log.all()))
	for i := 0; i < n; i++ {
		p := &NopParticipant{}
		nd, err := NewNode(NodeConfig{ID: NodeID(i), Matching: i == 0, Participant: p, Table: k.tab})
		must(t, err)
		k.nodes, k.ps = append(k.nodes, nd), append(k.ps, p)
	}
	return k
}

// run delivers messages until quiet.
func (k *cluster) run(now int64) {
	for moved := true; moved; {
		moved = false
		rd := k.c.Ready()
		msgs := append([]Msg(nil), rd.Msgs...)
		k.res = append(k.res, rd.Results...)
		k.c.Advance()
		for i := range msgs {
			moved = true
			for j, nd := range k.nodes {
				if msgs[i].To != Broadcast && msgs[i].To != NodeID(j) {
					continue
				}
				k.roundTrip(&msgs[i])
				must(k.t, nd.Step(now, &k.m))
			}
		}
		for _, nd := range k.nodes {
			rd := nd.Ready()
			for i := range rd.Msgs {
				moved = true
				k.roundTrip(&rd.Msgs[i])
				must(k.t, k.c.Step(now, &k.m))
			}
			nd.Advance()
		}
	}
}

func (k *cluster) roundTrip(m *Msg) {
	n, err := m.Encode(k.buf)
	must(k.t, err)
	_, err = k.m.Decode(k.buf[:n])
	must(k.t, err)
}

func TestCommitHappyPath(t *testing.T) {
	for _, mode := range []Mode{ThreePhase, TwoPhase} {
		t.Run(mode.String(), func(t *testing.T) {
			k := newCluster(t, mode, 3)
			cmd := Command{Kind: NewOrder, Side: Buy, Type: Limit, Symbol: 1, Account: 7, Price: 100, Qty: 5}
			tx, err := k.c.Propose(10, &cmd)
			must(t, err)
			k.run(20)
			eq(t, "results", 1, len(k.res))
			eq(t, "tx", tx, k.res[0].Tx)
			eq(t, "reason", ReasonNone, k.res[0].Reason)
			eq(t, "order id", uint64(tx), k.res[0].Cmd.OrderID)
			for _, p := range k.ps {
				eq(t, "prepared", uint64(1), p.Prepared)
				eq(t, "committed", uint64(1), p.Committed)
			}
			d, _, err := k.tab.Lookup(tx)
			must(t, err)
			eq(t, "decision", Commit, d)
			eq(t, "in flight", 0, k.c.InFlight())
			eq(t, "log records", 1, len(k.log.recs))
		})
	}
}

// benchCluster wires a coordinator to nodes directly, through the codec,
// without allocating: the state machines' own cost, no transport.
type benchCluster struct {
	c     *Coordinator
	nodes []*Node
	buf   []byte
	m     Msg
	base  time.Time
	done  int
}

func newBenchCluster(b *testing.B, mode Mode) *benchCluster {
	tab := newTable(b, 1024)
	k := &benchCluster{buf: make([]byte, MaxMsgSize), base: time.Now()}
	var err error
	k.c, err = NewCoordinator(CoordinatorConfig{Epoch: 1, Participants: 3, Matching: 0, Mode: mode, Table: tab, Log: nopLog{}})
	must(b, err)
	must(b, k.c.Start(0, func(func(*Record) bool) {}))
	for i := 0; i < 3; i++ {
		nd, err := NewNode(NodeConfig{ID: NodeID(i), Matching: i == 0, Participant: &NopParticipant{}, Table: tab})
		must(b, err)
		k.nodes = append(k.nodes, nd)
	}
	return k
}

// nopLog is a Log that keeps nothing.
type nopLog struct{}

func (nopLog) Append(*Record) error { return nil }

func (k *benchCluster) now() int64 { return int64(time.Since(k.base)) }

func (k *benchCluster) pass(m *Msg) {
	n, err := m.Encode(k.buf)
	if err != nil {
		panic(err)
	}
	if _, err := k.m.Decode(k.buf[:n]); err != nil {
		panic(err)
	}
}

// settle delivers every message until all is quiet.
func (k *benchCluster) settle() {
	for moved := true; moved; {
		moved = false
		now := k.now()
		rd := k.c.Ready()
		k.done += len(rd.Results)
		for i := range rd.Msgs {
			moved = true
			k.pass(&rd.Msgs[i])
			for j, nd := range k.nodes {
				if k.m.To == Broadcast || k.m.To == NodeID(j) {
					if err := nd.Step(now, &k.m); err != nil {
						panic(err)
					}
				}
			}
		}
		k.c.Advance()
		for _, nd := range k.nodes {
			rd := nd.Ready()
			for i := range rd.Msgs {
				moved = true
				k.pass(&rd.Msgs[i])
				if err := k.c.Step(now, &k.m); err != nil {
					panic(err)
				}
			}
			nd.Advance()
		}
	}
}

// BenchmarkStateMachines measures one transaction through the coordinator
// and three nodes (NopParticipant), messages through the codec, no
// transport: 3PC against 2PC, and 3PC with batches of 64 proposals.
func BenchmarkStateMachines(b *testing.B) {
	cmd := Command{Kind: NewOrder, Side: Buy, Type: Limit, Symbol: 1, Account: 1, Price: 100, Qty: 1}
	for _, bc := range []struct {
		name  string
		mode  Mode
		batch int
	}{{"3pc", ThreePhase, 1}, {"2pc", TwoPhase, 1}, {"3pc-batch64", ThreePhase, 64}} {
		b.Run(bc.name, func(b *testing.B) {
			k := newBenchCluster(b, bc.mode)
			h := hdrhistogram.New(1, int64(time.Second), 3)
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				for range bc.batch {
					if _, err := k.c.Propose(k.now(), &cmd); err != nil {
						b.Fatal(err)
					}
				}
				k.settle()
				_ = h.RecordValue(int64(time.Since(t0)) / int64(bc.batch))
			}
			if k.done != b.N*bc.batch {
				b.Fatalf("%d results for %d transactions", k.done, b.N*bc.batch)
			}
			b.ReportMetric(float64(b.N*bc.batch)/b.Elapsed().Seconds(), "tx/s")
			for _, q := range []struct {
				unit string
				p    float64
			}{{"p50-ns", 50}, {"p99-ns", 99}, {"p99.9-ns", 99.9}, {"p99.99-ns", 99.99}} {
				b.ReportMetric(float64(h.ValueAtQuantile(q.p)), q.unit)
			}
			b.ReportMetric(float64(h.Max()), "max-ns")
		})
	}
}

// drain takes c's pending messages and results.
func (k *cluster) drain(c *Coordinator) []Msg {
	rd := c.Ready()
	msgs := append([]Msg(nil), rd.Msgs...)
	k.res = append(k.res, rd.Results...)
	c.Advance()
	return msgs
}

// toNodes delivers msgs to the nodes and returns their replies.
func (k *cluster) toNodes(now int64, msgs []Msg) []Msg {
	var out []Msg
	for i := range msgs {
		for j, nd := range k.nodes {
			if msgs[i].To == Broadcast || msgs[i].To == NodeID(j) {
				k.roundTrip(&msgs[i])
				must(k.t, nd.Step(now, &k.m))
			}
		}
	}
	for _, nd := range k.nodes {
		out = append(out, nd.Ready().Msgs...)
		nd.Advance()
	}
	return out
}

func (k *cluster) toCoord(c *Coordinator, now int64, msgs []Msg) {
	for i := range msgs {
		k.roundTrip(&msgs[i])
		must(k.t, c.Step(now, &k.m))
	}
}

func types(msgs []Msg) string {
	var s []string
	for _, m := range msgs {
		s = append(s, fmt.Sprintf("%v>%d", m.Type, m.To))
	}
	return strings.Join(s, " ")
}

var testCmd = Command{Kind: NewOrder, Side: Sell, Type: Limit, Symbol: 1, Account: 1, Price: 10, Qty: 3}

func TestCoordinatorBreakerBeatsCommit(t *testing.T) {
	k := newCluster(t, ThreePhase, 3)
	tx, err := k.c.Propose(0, &testCmd)
	must(t, err)
	votes := k.toNodes(1, k.drain(k.c))
	d, _, err := k.tab.Abort(tx, ReasonCircuitBreaker)
	must(t, err)
	eq(t, "breaker", Abort, d)
	k.toCoord(k.c, 2, votes)
	ab := k.drain(k.c)
	eq(t, "after lost CAS", "ABORT>254", types(ab))
	eq(t, "log", []RecordKind{RecCommit, RecAbort}, []RecordKind{k.log.recs[0].Kind, k.log.recs[1].Kind})
	k.toCoord(k.c, 3, k.toNodes(3, ab))
	k.drain(k.c)
	eq(t, "results", 1, len(k.res))
	eq(t, "reason", ReasonCircuitBreaker, k.res[0].Reason)
	for _, p := range k.ps {
		eq(t, "aborted", uint64(1), p.Aborted)
	}
	eq(t, "aborted counter", uint64(1), k.c.Counters().Aborted[ReasonCircuitBreaker])
}

func TestCoordinatorTimeouts(t *testing.T) {
	k := newCluster(t, ThreePhase, 3)
	tx, err := k.c.Propose(0, &testCmd)
	must(t, err)
	prep := k.drain(k.c)
	eq(t, "deadline", int64(DefaultPrepareTimeout), k.c.Ready().Deadline)
	must(t, k.c.Tick(int64(DefaultPrepareTimeout)-1))
	eq(t, "before the timeout", "", types(k.drain(k.c)))
	must(t, k.c.Tick(int64(DefaultPrepareTimeout)))
	ab := k.drain(k.c)
	eq(t, "prepare timeout", "ABORT>254", types(ab))
	eq(t, "timeouts", uint64(1), k.c.Counters().Timeouts)
	eq(t, "late PREPAREs find the slot aborted", "VOTE>255 VOTE>255 VOTE>255", types(k.toNodes(1, prep)))
	k.toCoord(k.c, 2, k.toNodes(2, ab))
	k.drain(k.c)
	eq(t, "reason", ReasonTimeout, k.res[0].Reason)
	for _, p := range k.ps {
		eq(t, "prepared", uint64(0), p.Prepared)
	}

	// A PRE-COMMIT ack timeout retransmits and never aborts.
	k.res = nil
	now := int64(time.Millisecond)
	tx, err = k.c.Propose(now, &testCmd)
	must(t, err)
	k.toCoord(k.c, now, k.toNodes(now, k.drain(k.c)))
	pc := k.drain(k.c)
	eq(t, "pre-commit", "PRECOMMIT>254", types(pc))
	acks := k.toNodes(now, pc)
	k.toCoord(k.c, now, acks[:1]) // the others' acks are lost
	// Each retransmission doubles the wait for the next: due at 1, 3 and
	// 7 ack timeouts, and not at 2.
	var rt []Msg
	for _, at := range []int64{1, 2, 3, 7} {
		must(t, k.c.Tick(now+at*int64(DefaultPreCommitTimeout)))
		rt = k.drain(k.c)
		want := "PRECOMMIT>1 PRECOMMIT>2"
		if at == 2 {
			want = ""
		}
		eq(t, fmt.Sprintf("retransmit at %d timeouts", at), want, types(rt))
	}
	eq(t, "retransmits", uint64(6), k.c.Counters().Retransmits)
	d, _, err := k.tab.Lookup(tx)
	must(t, err)
	eq(t, "still", Commit, d)
	now += time.Millisecond.Nanoseconds()
	k.toCoord(k.c, now, k.toNodes(now, rt))
	k.run(now)
	eq(t, "committed", ReasonNone, k.res[0].Reason)
}

func TestCoordinatorTakeover(t *testing.T) {
	for _, mode := range []Mode{ThreePhase, TwoPhase} {
		t.Run(mode.String(), func(t *testing.T) {
			k := newCluster(t, mode, 3)
			old := k.c
			committed, err := old.Propose(0, &testCmd)
			must(t, err)
			undecided, err := old.Propose(0, &testCmd)
			must(t, err)
			prep := k.drain(old)
			votes := k.toNodes(1, prep[:1]) // only the first tx's PREPAREs arrive
			k.toCoord(old, 2, votes)        // commit point passed for tx 1 …
			lost := k.drain(old)            // … and the old coordinator dies before sending
			eq(t, "lost", 1, len(lost))

			backup, err := NewCoordinator(CoordinatorConfig{Epoch: 2, Participants: 3, Matching: 0, Mode: mode, Table: k.tab, Log: k.log})
			must(t, err)
			must(t, backup.Start(3, k.log.all()))
			eq(t, "takeovers", uint64(1), backup.Counters().Takeovers)
			d, r, err := k.tab.Lookup(undecided)
			must(t, err)
			eq(t, "undecided becomes", Abort, d)
			eq(t, "reason", ReasonTerminated, r)

			// The stale coordinator's messages are ignored by the nodes.
			eq(t, "stale replies", 0, len(k.toNodes(4, lost)))
			k.c = backup
			k.run(5)
			eq(t, "results", 2, len(k.res))
			for _, res := range k.res {
				eq(t, "recovered", true, res.Recovered)
				if res.Tx == committed {
					eq(t, "committed", ReasonNone, res.Reason)
				} else {
					eq(t, "aborted", ReasonTerminated, res.Reason)
				}
			}
			for _, p := range k.ps {
				eq(t, "committed", uint64(1), p.Committed)
			}
			for s := range k.tab.InFlight() {
				t.Fatalf("left in flight: %+v", s)
			}
			// The old coordinator wakes, finds itself fenced, reports what
			// the table decided, and takes nothing new.
			k.res = nil
			must(t, old.Tick(10))
			if _, err := old.Propose(10, &testCmd); !errors.Is(err, ErrFenced) {
				t.Fatalf("fenced propose: %v", err)
			}
			k.drain(old)
			eq(t, "stale results", 2, len(k.res))
			for _, res := range k.res {
				want := ReasonTerminated
				if res.Tx == committed {
					want = ReasonNone
				}
				eq(t, "stale result", want, res.Reason)
			}
			// New work goes on under the new epoch.
			tx, err := backup.Propose(20, &testCmd)
			must(t, err)
			eq(t, "epoch of new tx", Epoch(2), EpochOf(tx))
			again, err := NewCoordinator(CoordinatorConfig{Epoch: 2, Participants: 3, Table: k.tab, Log: k.log})
			must(t, err)
			if err := again.Start(30, k.log.all()); !errors.Is(err, ErrStaleEpoch) {
				t.Fatalf("second start of epoch 2: %v", err)
			}
		})
	}
}

// failingLog fails every Append once armed.
type failingLog struct {
	memLog
	fail bool
}

func (l *failingLog) Append(r *Record) error {
	if l.fail {
		return errors.New("disk full")
	}
	return l.memLog.Append(r)
}

func TestCoordinatorLogFailureStops(t *testing.T) {
	k := newCluster(t, ThreePhase, 3)
	fl := &failingLog{fail: true}
	c, err := NewCoordinator(CoordinatorConfig{Epoch: 2, Participants: 3, Table: k.tab, Log: fl})
	must(t, err)
	must(t, c.Start(0, fl.all()))
	tx, err := c.Propose(0, &testCmd)
	must(t, err)
	votes := k.toNodes(1, k.drain(c))
	for i := range votes {
		k.roundTrip(&votes[i])
		err = c.Step(2, &k.m)
	}
	if !errors.Is(err, ErrLogFailed) {
		t.Fatalf("step after a failed append: %v", err)
	}
	d, _, err := k.tab.Lookup(tx)
	must(t, err)
	eq(t, "decision", Abort, d)
	if _, err := c.Propose(3, &testCmd); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("propose on a stopped coordinator: %v", err)
	}
	eq(t, "nothing sent after the failure", 0, len(k.drain(c)))

	fl.fail = false
	backup, err := NewCoordinator(CoordinatorConfig{Epoch: 3, Participants: 3, Table: k.tab, Log: fl})
	must(t, err)
	must(t, backup.Start(4, fl.all()))
	eq(t, "backup logs the abort", RecAbort, fl.recs[len(fl.recs)-1].Kind)
	k.c = backup
	k.run(5)
	for _, p := range k.ps {
		eq(t, "aborted", uint64(1), p.Aborted)
	}
}
