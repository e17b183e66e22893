package engine

import (
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/commitcore/commitcore/shm"
)

// The commit benchmarks run one transaction at a time through a Core with
// three NopParticipants, everything busy-spinning: the caller (who runs
// the coordinator inside Submit) on one core, the participants' runner (in
// process) or host process (Shm) on the other. 3PC and 2PC run side by
// side so the price of the extra phase reads as a ratio. Each reports the
// end-to-end latency of Submit as seen by the caller and each phase's
// latency from the Result, as HdrHistogram percentiles, and allocations.
//
//	go test -run='^$' -bench='^BenchmarkCommit' -benchtime=200000x -count=3 ./engine

// newLatencyHistogram tracks 1 ns to 10 s at three significant digits.
func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Second), 3)
}

// commitStats collects the latencies of a commit benchmark.
type commitStats struct {
	mode                              Mode
	total, prepare, precommit, commit *hdrhistogram.Histogram
	aborted                           int
}

func newCommitStats(mode Mode) *commitStats {
	return &commitStats{mode: mode, total: newLatencyHistogram(), prepare: newLatencyHistogram(),
		precommit: newLatencyHistogram(), commit: newLatencyHistogram()}
}

func (s *commitStats) record(e2e time.Duration, res *Result) {
	if res.Reason != ReasonNone {
		s.aborted++
		return
	}
	// RecordValue fails only beyond the histogram's 10 s range.
	s.total.RecordValue(int64(e2e))
	s.prepare.RecordValue(res.Prepare)
	s.precommit.RecordValue(res.PreCommit)
	s.commit.RecordValue(res.Commit)
}

func (s *commitStats) report(b *testing.B) {
	for _, q := range []struct {
		unit string
		pct  float64
	}{{"p50-ns", 50}, {"p99-ns", 99}, {"p99.9-ns", 99.9}, {"p99.99-ns", 99.99}} {
		b.ReportMetric(float64(s.total.ValueAtPercentile(q.pct)), q.unit)
	}
	b.ReportMetric(float64(s.total.Max()), "max-ns")
	phases := []struct {
		name string
		h    *hdrhistogram.Histogram
	}{{"prepare", s.prepare}, {"precommit", s.precommit}, {"commit", s.commit}}
	for _, p := range phases {
		if p.name == "precommit" && s.mode == TwoPhase {
			continue
		}
		b.ReportMetric(float64(p.h.ValueAtPercentile(50)), p.name+"-p50-ns")
		b.ReportMetric(float64(p.h.ValueAtPercentile(99)), p.name+"-p99-ns")
	}
	b.ReportMetric(float64(s.aborted)/float64(b.N), "aborts/op")
}

// runCommits submits one command per iteration and records its latency.
func runCommits(b *testing.B, k *Core, mode Mode) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := newCommitStats(mode)
	cmd := order(1)
	// Warm the rings, the table and the participants' windows, for at most
	// 200ms on a loaded machine.
	warm := time.Now().Add(200 * time.Millisecond)
	for i := 0; i < 10000 && time.Now().Before(warm); i++ {
		cmd.ClientOrderID = uint64(i)
		if _, err := k.Submit(&cmd); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cmd.ClientOrderID = uint64(i)
		t0 := time.Now()
		res, err := k.Submit(&cmd)
		e2e := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		s.record(e2e, &res)
	}
	b.StopTimer()
	s.report(b)
}

// nopCore starts a busy-spinning in-process Core of mode with three
// NopParticipants, closed when b ends.
func nopCore(b *testing.B, mode Mode) *Core {
	k, err := New(Config{Mode: mode, Idle: IdleSpin},
		&NopParticipant{}, &NopParticipant{}, &NopParticipant{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := k.Close(); err != nil {
			b.Error(err)
		}
	})
	return k
}

func benchCommit(b *testing.B, mode Mode) { runCommits(b, nopCore(b, mode), mode) }

// BenchmarkCommit3PC is one 3PC transaction at a time with three in-process
// participants on one busy-spinning runner.
func BenchmarkCommit3PC(b *testing.B) { benchCommit(b, ThreePhase) }

// BenchmarkCommit2PC is BenchmarkCommit3PC's peer in 2PC mode.
func BenchmarkCommit2PC(b *testing.B) { benchCommit(b, TwoPhase) }

// benchCommitShm runs the participants in a child process (the "host" role
// of TestMain, busy-spinning) over a shared-memory link, and the
// coordinator in the benchmark.
func benchCommitShm(b *testing.B, mode Mode) {
	name, env := procEnv(b, "spin")
	host := startChild(b, "host", append(env, envParts+"=nop")...)
	seg, table, link, err := openShm(name, &shm.Options{Dir: shm.DefaultDir})
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	defer link.Close()
	k, err := Dial(Config{Mode: mode, Idle: IdleSpin}, table, Remote{Conn: LinkConn(link), Nodes: []NodeID{0, 1, 2}})
	if err != nil {
		b.Fatal(err)
	}
	runCommits(b, k, mode)
	if err := host.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	if err := host.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCommit3PCShm is one 3PC transaction at a time with the three
// participants in another process, over shared memory, busy-spinning.
func BenchmarkCommit3PCShm(b *testing.B) { benchCommitShm(b, ThreePhase) }

// BenchmarkCommit2PCShm is BenchmarkCommit3PCShm's peer in 2PC mode.
func BenchmarkCommit2PCShm(b *testing.B) { benchCommitShm(b, TwoPhase) }

// BenchmarkCommit3PCBatch measures committed transactions per second with
// batching: the caller Sends a batch of commands, which share each phase's
// round trip, and Polls while the previous batch is still in flight
// (pipelining), in process, busy-spinning. The 2PC sub-benchmark is its
// peer at the larger batch.
func BenchmarkCommit3PCBatch(b *testing.B) {
	for _, bc := range []struct {
		mode  Mode
		batch int
	}{{ThreePhase, 8}, {ThreePhase, 64}, {TwoPhase, 64}} {
		b.Run(bc.mode.String()+"/batch="+strconv.Itoa(bc.batch), func(b *testing.B) {
			benchBatch(b, bc.mode, bc.batch)
		})
	}
}

// tally counts the Results a benchmark polls.
type tally struct{ committed, aborted int }

func (t *tally) count(r *Result) {
	if r.Reason == ReasonNone {
		t.committed++
	} else {
		t.aborted++
	}
}

func benchBatch(b *testing.B, mode Mode, batch int) {
	k := nopCore(b, mode)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var t tally
	count := t.count
	inFlight := 0
	poll := func() {
		n, err := k.Poll(count)
		if err != nil {
			b.Fatal(err)
		}
		inFlight -= n
	}
	cmd := order(1)
	send := func(i int) {
		cmd.ClientOrderID = uint64(i)
		for {
			_, err := k.Send(&cmd)
			if err == nil {
				inFlight++
				return
			}
			if !isBusy(err) {
				b.Fatal(err)
			}
			poll()
		}
	}
	b.ReportAllocs()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		send(i)
		if (i+1)%batch == 0 {
			// Publish the batch, then wait for the one before it.
			poll()
			for inFlight > batch {
				poll()
			}
		}
	}
	for inFlight > 0 {
		poll()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(t.committed)/elapsed.Seconds(), "tx/s")
	b.ReportMetric(float64(t.aborted)/float64(b.N), "aborts/op")
}

// BenchmarkCommitCost measures the processor time one committed transaction
// costs the coordinator and the three participant nodes together, with no
// thread hop: one goroutine Sends a batch, then runs the Core's duty cycle
// and the participants' Host in turn over in-process rings until the batch
// is done. Cross-core transfers, which dominate every latency figure here
// and swing with the VM's placement, are absent, so this is the stable
// measure of the software's own work: host-ns/tx and coord-ns/tx split it
// between the two threads a deployment runs, and the busier of the two
// bounds BenchmarkCommit3PCBatch. 2PC is the peer.
func BenchmarkCommitCost(b *testing.B) {
	for _, mode := range []Mode{ThreePhase, TwoPhase} {
		b.Run(mode.String(), func(b *testing.B) { benchCost(b, mode) })
	}
}

func benchCost(b *testing.B, mode Mode) {
	const batch = 64
	table, err := InitDecisionTable(make([]byte, DecisionTableSize(DefaultSlots)), DefaultSlots)
	require.NoError(b, err)
	near, far, err := NewPipe(DefaultRingCapacity)
	require.NoError(b, err)
	// Timeouts far beyond any stall of the machine: this measures work,
	// and a transaction that waits out a descheduling is still work done.
	const patient = time.Second
	clock := NewMonotonicClock()
	var nodes []*Node
	for i := range 3 {
		nd, err := NewNode(NodeConfig{ID: NodeID(i), Matching: i == 0, Participant: &NopParticipant{}, Table: table,
			DecisionTimeout: patient, CommitTimeout: patient, Grace: patient})
		require.NoError(b, err)
		nodes = append(nodes, nd)
	}
	host, err := NewHost(far, clock, nodes...)
	require.NoError(b, err)
	k, err := Dial(Config{Mode: mode, Idle: IdleSpin, Clock: clock, Timeouts: Timeouts{Prepare: patient, PreCommit: patient}}, table, Remote{Conn: near, Nodes: []NodeID{0, 1, 2}})
	require.NoError(b, err)
	var t tally
	count := t.count
	var coordNs, hostNs time.Duration
	cmd := order(1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cmd.ClientOrderID = uint64(i)
		if _, err := k.Send(&cmd); err != nil {
			b.Fatal(err)
		}
		if (i+1)%batch != 0 {
			continue
		}
		for k.InFlight() > 0 {
			t0 := time.Now()
			if _, err := k.Poll(count); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := host.DoWork(); err != nil {
				b.Fatal(err)
			}
			coordNs += t1.Sub(t0)
			hostNs += time.Since(t1)
		}
	}
	for k.InFlight() > 0 {
		if _, err := k.Poll(count); err != nil {
			b.Fatal(err)
		}
		if _, err := host.DoWork(); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := k.Poll(count); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if t.aborted > 0 {
		b.Fatalf("%d of %d transactions aborted with nothing to abort them", t.aborted, t.committed+t.aborted)
	}
	b.ReportMetric(float64(hostNs)/float64(t.committed), "host-ns/tx")
	b.ReportMetric(float64(coordNs)/float64(t.committed), "coord-ns/tx")
}
