package accel

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"sort"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/ringbuf"
	"github.com/stretchr/testify/require"
)

// recorder is a participant that remembers how each transaction ended, so
// a test can check agreement across participants. The first plays
// matching (its YES carries one fill); the others vote NO on every
// command whose ClientOrderID is 3 mod 7. Hooks, if set, run inside
// Prepare and PreCommit: that is where fault tests strike mid-phase.
type recorder struct {
	matching  bool
	ended     map[engine.TxID]byte // 'C' committed, 'A' aborted
	prepared  map[engine.TxID]bool
	onPrepare func(tx engine.TxID, cmd *engine.Command)
	onPre     func(tx engine.TxID)
}

func newRecorder(matching bool) *recorder {
	return &recorder{matching: matching, ended: map[engine.TxID]byte{}, prepared: map[engine.TxID]bool{}}
}

func (r *recorder) Prepare(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	if r.onPrepare != nil {
		r.onPrepare(tx, cmd)
	}
	if cmd.ClientOrderID%7 == 3 && !r.matching {
		return engine.ReasonRateLimit
	}
	r.prepared[tx] = true
	if r.matching {
		out.Reset()
		out.NFills = 1
		out.Fills[0] = engine.Fill{TradeID: engine.TradeIDOf(tx, 0), Symbol: cmd.Symbol, TakerSide: cmd.Side,
			MakerOrder: 1, TakerOrder: uint64(tx), Maker: 9, Taker: cmd.Account, Price: cmd.Price, Qty: cmd.Qty}
	}
	return engine.ReasonNone
}

func (r *recorder) PreCommit(tx engine.TxID, _ *engine.Outcome) {
	if r.onPre != nil {
		r.onPre(tx)
	}
}

func (r *recorder) Commit(tx engine.TxID, _ *engine.Outcome) {
	if r.ended[tx] != 0 || !r.prepared[tx] {
		panic(fmt.Sprintf("recorder: commit of tx %d ended=%c prepared=%v", tx, r.ended[tx], r.prepared[tx]))
	}
	r.ended[tx] = 'C'
}

func (r *recorder) Abort(tx engine.TxID) {
	if r.ended[tx] == 'C' {
		panic(fmt.Sprintf("recorder: abort of committed tx %d", tx))
	}
	if r.prepared[tx] {
		r.ended[tx] = 'A'
	}
}

func (r *recorder) Apply(tx engine.TxID, _ *engine.Command, _ *engine.Outcome) error {
	r.ended[tx] = 'C'
	return nil
}

func (r *recorder) Snapshot(io.Writer) error { return nil }
func (r *recorder) Restore(io.Reader) error  { return nil }

func order(id uint64) engine.Command {
	return engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit, Symbol: 1, Account: 2, ClientOrderID: id, Price: 100, Qty: 5}
}

// memLog is the coordinator's write-ahead log in memory, so a backup
// coordinator can take over a lost one's transactions.
type memLog struct{ recs []engine.Record }

func (l *memLog) Append(r *engine.Record) error {
	l.recs = append(l.recs, *r)
	return nil
}

// records yields the log, newest first (what a takeover reads fastest).
func (l *memLog) records() iter.Seq[*engine.Record] {
	return func(yield func(*engine.Record) bool) {
		for i := len(l.recs) - 1; i >= 0; i-- {
			if !yield(&l.recs[i]) {
				return
			}
		}
	}
}

// cluster is a coordinator (engine.Dial over the fabric's active end) and
// a host of three recorder nodes served over its passive end by Serve,
// sharing a decision table on the heap: the protocol unchanged, only the
// fabric between them.
type cluster struct {
	table   *engine.DecisionTable
	recs    []*recorder
	host    *engine.Host
	part    Endpoint // the participant host's end
	coord   Endpoint // the coordinator's end
	core    *engine.Core
	log     *memLog
	tm      timing
	stop    chan struct{}
	served  chan error
	running bool
	results map[engine.TxID]engine.Reason
}

// timing is a cluster's protocol timeouts: the coordinator's, and the
// nodes' decision (and commit) timeout and grace period.
type timing struct {
	coord           engine.Timeouts
	decision, grace time.Duration
}

// faultTiming is short, so that faults cost aborts, terminations and
// retransmissions within a fast test; calmTiming is long, so that without
// faults a loaded two-core machine under -race never times out.
var (
	faultTiming = timing{engine.Timeouts{Prepare: 20 * time.Millisecond, PreCommit: 20 * time.Millisecond}, 5 * time.Millisecond, 40 * time.Millisecond}
	calmTiming  = timing{engine.Timeouts{Prepare: 5 * time.Second, PreCommit: time.Second}, time.Second, 10 * time.Second}
)

func newCluster(t *testing.T, fc fabricCase, tm timing) *cluster {
	part, coord := fc.pair(t)
	const slots = 1024
	table, err := engine.InitDecisionTable(ringbuf.AlignedBytes(engine.DecisionTableSize(slots)), slots)
	require.NoError(t, err)
	c := &cluster{table: table, part: part, coord: coord, log: &memLog{}, tm: tm,
		served: make(chan error, 1), results: map[engine.TxID]engine.Reason{}}
	var nodes []*engine.Node
	for i := range 3 {
		r := newRecorder(i == 0)
		c.recs = append(c.recs, r)
		nd, err := engine.NewNode(engine.NodeConfig{ID: engine.NodeID(i), Matching: i == 0, Participant: r, Table: table,
			DecisionTimeout: tm.decision, CommitTimeout: tm.decision, Grace: tm.grace})
		require.NoError(t, err)
		nodes = append(nodes, nd)
	}
	c.host, err = engine.NewHost(part.Conn(), engine.NewMonotonicClock(), nodes...)
	require.NoError(t, err)
	c.serve()
	t.Cleanup(c.halt)
	c.core, err = engine.Dial(engine.Config{Timeouts: tm.coord, Idle: engine.IdleYield, MaxInFlight: 64, Log: c.log}, table,
		engine.Remote{Conn: coord.Conn(), Nodes: []engine.NodeID{0, 1, 2}})
	require.NoError(t, err)
	return c
}

// takeover starts a backup coordinator of the next epoch over coord, a
// new endpoint to the participant host, with the lost coordinator's log,
// and polls until it has finished every transaction it found in flight.
func (c *cluster) takeover(t *testing.T, coord Endpoint) {
	var err error
	c.coord = coord
	c.core, err = engine.Dial(engine.Config{Timeouts: c.tm.coord, Idle: engine.IdleYield, MaxInFlight: 64,
		Log: c.log, Records: c.log.records()}, c.table, engine.Remote{Conn: coord.Conn(), Nodes: []engine.NodeID{0, 1, 2}})
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for c.core.InFlight() > 0 {
		_, err := c.core.Poll(func(r *engine.Result) { c.results[r.Tx] = r.Reason })
		require.NoError(t, err)
		require.True(t, time.Now().Before(deadline), "%d transactions still in flight after takeover", c.core.InFlight())
	}
}

// serve starts (again) the participant host's serve loop.
func (c *cluster) serve() {
	c.stop = make(chan struct{})
	c.running = true
	go func() { c.served <- Serve(c.part, c.host, c.stop) }()
}

// stopHost stops the serve loop, if it runs, and returns its error.
func (c *cluster) stopHost() error {
	if !c.running {
		return nil
	}
	c.running = false
	close(c.stop)
	select {
	case err := <-c.served:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("host did not stop")
	}
}

// halt stops the host at the end of a test, before the endpoints close.
func (c *cluster) halt() { c.stopHost() }

func (c *cluster) hostErr(t *testing.T) { require.NoError(t, c.stopHost()) }

// run sends n commands, calling before(i) ahead of the i-th, and then
// polls until nothing is in flight.
func (c *cluster) run(t *testing.T, n int, before func(i int)) {
	collect := func(r *engine.Result) { c.results[r.Tx] = r.Reason }
	for i := 0; i < n; {
		if before != nil {
			before(i)
		}
		cmd := order(uint64(i))
		if _, err := c.core.Send(&cmd); err != nil {
			require.ErrorIs(t, err, engine.ErrBusy)
		} else {
			i++
		}
		_, err := c.core.Poll(collect)
		require.NoError(t, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.core.InFlight() > 0 {
		_, err := c.core.Poll(collect)
		require.NoError(t, err)
		require.True(t, time.Now().Before(deadline), "%d transactions still in flight", c.core.InFlight())
	}
}

// checkAgreement stops the host and checks the oracles (see agreement).
// It returns the number of transactions committed.
func (c *cluster) checkAgreement(t *testing.T) int {
	t.Helper()
	c.hostErr(t)
	return agreement(t, c.recs, c.results)
}

// agreement checks the oracles over what the recorders saw and the
// coordinator reported: no transaction committed at one participant and
// aborted at another, none left prepared, every commit at every
// participant and reported committed if reported at all, nothing reported
// committed that no participant prepared. It returns the number committed.
func agreement(t *testing.T, recs []*recorder, results map[engine.TxID]engine.Reason) int {
	t.Helper()
	txs := map[engine.TxID]bool{}
	for _, r := range recs {
		for tx := range r.prepared {
			txs[tx] = true
		}
	}
	sorted := make([]engine.TxID, 0, len(txs))
	for tx := range txs {
		sorted = append(sorted, tx)
	}
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	commits := 0
	for _, tx := range sorted {
		got := make([]byte, len(recs))
		cs, as := 0, 0
		for i, r := range recs {
			got[i] = r.ended[tx]
			switch {
			case got[i] == 'C':
				cs++
			case got[i] == 'A':
				as++
			case r.prepared[tx]:
				t.Errorf("tx %d left prepared at node %d", tx, i)
			}
		}
		require.False(t, cs > 0 && as > 0, "split decision: tx %d %q", tx, got)
		if cs > 0 {
			commits++
			require.Equal(t, len(recs), cs, "tx %d committed at %d of %d", tx, cs, len(recs))
		}
		if reason, ok := results[tx]; ok {
			require.Equal(t, reason == engine.ReasonNone, cs > 0, "tx %d reported %v, participants %q", tx, reason, got)
		}
	}
	for tx, reason := range results {
		if reason == engine.ReasonNone && !txs[tx] {
			t.Errorf("tx %d reported committed, never prepared", tx)
		}
	}
	return commits
}

// TestFabricCommit runs the unchanged protocol over every software fabric:
// engine.Dial on one end, Serve with an engine.Host on the other. Nothing
// fails, so every command commits but those a participant refuses
// (non-triviality), and the participants agree on each.
func TestFabricCommit(t *testing.T) {
	for _, fc := range fabricCases(engine.DefaultRingCapacity) {
		t.Run(fc.name, func(t *testing.T) {
			c := newCluster(t, fc, calmTiming)
			const n = 500
			c.run(t, n, nil)
			commits := c.checkAgreement(t)
			require.Len(t, c.results, n)
			refused := 0
			for i := range n {
				if i%7 == 3 {
					refused++
				}
			}
			require.Equal(t, n-refused, commits)
			require.Equal(t, uint64(0), c.core.Dropped())
		})
	}
}

// TestServeStopsOnClosedEndpoint: a closed endpoint ends the serve loop
// with ErrClosed rather than spinning on it.
func TestServeStopsOnClosedEndpoint(t *testing.T) {
	for _, fc := range fabricCases(testRing) {
		t.Run(fc.name, func(t *testing.T) {
			part, _ := fc.pair(t)
			const slots = 64
			table, err := engine.InitDecisionTable(ringbuf.AlignedBytes(engine.DecisionTableSize(slots)), slots)
			require.NoError(t, err)
			nd, err := engine.NewNode(engine.NodeConfig{ID: 0, Participant: &engine.NopParticipant{}, Table: table})
			require.NoError(t, err)
			host, err := engine.NewHost(part.Conn(), engine.NewMonotonicClock(), nd)
			require.NoError(t, err)
			require.NoError(t, part.Close())
			err = Serve(part, host, make(chan struct{}))
			require.True(t, errors.Is(err, ErrClosed), "%v", err)
		})
	}
}
