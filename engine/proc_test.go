package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/commitcore/commitcore/engine/journal"
	"github.com/commitcore/commitcore/internal/reexec"
	"github.com/commitcore/commitcore/shm"
)

// Multi-process tests and benchmarks re-execute the test binary as a child
// whose role the environment names: "host" serves three participant nodes
// over a shared-memory link it creates (with the decision table), idling
// as envIdle says ("spin" busy-spins, as the benchmarks want), with
// participants that record outcomes, or NopParticipants when envParts is
// "nop"; with envRecover naming the coordinator's journal it is a restarted
// host that takes back a dead host's table and link and recovers its nodes
// from the journal first. "coordinator" opens them and submits commands
// until it is killed, or, on SIGTERM, drains and writes each
// transaction's outcome to envOut.
const (
	envRole    = "COMMITCORE_ENGINE_CHILD"
	envDir     = "COMMITCORE_ENGINE_DIR"
	envName    = "COMMITCORE_ENGINE_NAME"
	envIdle    = "COMMITCORE_ENGINE_IDLE"
	envOut     = "COMMITCORE_ENGINE_OUT"
	envJrnl    = "COMMITCORE_ENGINE_JOURNAL"
	envParts   = "COMMITCORE_ENGINE_PARTICIPANTS"
	envRecover = "COMMITCORE_ENGINE_RECOVER_FROM"
	envWindow  = "COMMITCORE_ENGINE_WINDOW" // the coordinator child's MaxInFlight; 0 for the table's size
	procSlot   = 1024
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "":
		reexec.QuickRaceExit()
		os.Exit(m.Run())
	case "host":
		if err := childHost(); err != nil {
			fmt.Fprintln(os.Stderr, "host child:", err)
			os.Exit(1)
		}
	case "coordinator":
		if err := childCoordinator(); err != nil {
			fmt.Fprintln(os.Stderr, "coordinator child:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown child role", os.Getenv(envRole))
		os.Exit(2)
	}
	os.Exit(0)
}

// recorder is a participant that remembers how each transaction ended, so
// that a test can compare participants across processes. The first one
// also plays matching: its YES carries one fill.
type recorder struct {
	matching bool
	ended    map[TxID]byte // 'C' committed, 'A' aborted
	prepared map[TxID]bool
}

func newRecorder(matching bool) *recorder {
	return &recorder{matching: matching, ended: map[TxID]byte{}, prepared: map[TxID]bool{}}
}

func (r *recorder) Prepare(tx TxID, cmd *Command, out *Outcome) Reason {
	if cmd.ClientOrderID%7 == 3 && !r.matching {
		return ReasonRateLimit
	}
	r.prepared[tx] = true
	if r.matching {
		out.Reset()
		out.NFills = 1
		out.Fills[0] = Fill{TradeID: TradeIDOf(tx, 0), Symbol: cmd.Symbol, TakerSide: cmd.Side,
			MakerOrder: 1, TakerOrder: uint64(tx), Maker: 9, Taker: cmd.Account, Price: cmd.Price, Qty: cmd.Qty}
	}
	return ReasonNone
}

func (r *recorder) PreCommit(TxID, *Outcome) {}

func (r *recorder) Commit(tx TxID, _ *Outcome) {
	if r.ended[tx] != 0 || !r.prepared[tx] {
		panic(fmt.Sprintf("recorder: commit of tx %d ended=%c prepared=%v", tx, r.ended[tx], r.prepared[tx]))
	}
	r.ended[tx] = 'C'
}

func (r *recorder) Abort(tx TxID) {
	if r.ended[tx] == 'C' {
		panic(fmt.Sprintf("recorder: abort of committed tx %d", tx))
	}
	if r.prepared[tx] {
		r.ended[tx] = 'A'
	}
}

func (r *recorder) Apply(tx TxID, _ *Command, _ *Outcome) error {
	r.ended[tx] = 'C'
	return nil
}

func (r *recorder) Snapshot(io.Writer) error { return nil }
func (r *recorder) Restore(io.Reader) error  { return nil }

func shmOpts() *shm.Options { return &shm.Options{Dir: os.Getenv(envDir)} }

// childHost creates the decision table and the link, serves three nodes
// until SIGTERM, then writes each node's outcomes to envOut.
func childHost() error {
	name, opts := os.Getenv(envName), shmOpts()
	if os.Getenv(envIdle) == "spin" {
		opts.Idle = shm.BusySpin
	}
	jpath := os.Getenv(envRecover)
	var seg *shm.Segment
	var table *DecisionTable
	var link *shm.Link
	var err error
	if jpath != "" {
		seg, table, link, err = reattachShm(name, opts)
	} else {
		seg, table, link, err = createShm(name, opts)
	}
	if err != nil {
		return err
	}
	defer seg.Unlink()
	defer seg.Close()
	defer link.Unlink()
	defer link.Close()
	var recs []*recorder
	parts := []Participant{&NopParticipant{}, &NopParticipant{}, &NopParticipant{}}
	if os.Getenv(envParts) != "nop" {
		recs = []*recorder{newRecorder(true), newRecorder(false), newRecorder(false)}
		for i, r := range recs {
			parts[i] = r
		}
	}
	var nodes []*Node
	for i, p := range parts {
		nd, err := NewNode(NodeConfig{ID: NodeID(i), Matching: i == 0, Participant: p, Table: table,
			DecisionTimeout: 20 * time.Millisecond, CommitTimeout: 20 * time.Millisecond, Grace: 100 * time.Millisecond})
		if err != nil {
			return err
		}
		nodes = append(nodes, nd)
	}
	clock := NewMonotonicClock()
	if jpath != "" {
		if err := recoverNodes(nodes, jpath, clock.Now()); err != nil {
			return err
		}
	}
	host, err := NewHost(LinkConn(link), clock, nodes...)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { <-sig; close(stop) }()
	fmt.Println("ready")
	if err := Serve(link, host, stop); err != nil {
		return err
	}
	out := os.Getenv(envOut)
	if out == "" {
		return nil
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i, r := range recs {
		for tx, e := range r.ended {
			fmt.Fprintf(w, "%d %d %c\n", i, tx, e)
		}
		for tx := range r.prepared {
			if r.ended[tx] == 0 {
				fmt.Fprintf(w, "%d %d P\n", i, tx)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// createShm creates the decision table and the link, as the first host.
func createShm(name string, opts *shm.Options) (*shm.Segment, *DecisionTable, *shm.Link, error) {
	seg, err := shm.Create(name+"-table", []shm.RegionSpec{{Kind: 1, Len: DecisionTableSize(procSlot)}}, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	table, err := InitDecisionTable(seg.Region(0), procSlot)
	if err == nil {
		var link *shm.Link
		if link, err = shm.CreateLink(name, 1<<20, opts); err == nil {
			return seg, table, link, nil
		}
	}
	seg.Close()
	seg.Unlink()
	return nil, nil, nil, err
}

// reattachShm opens the table a dead host created and takes back its side
// of the link, retrying while the kernel has not yet reaped the dead one.
func reattachShm(name string, opts *shm.Options) (*shm.Segment, *DecisionTable, *shm.Link, error) {
	seg, err := shm.Open(name+"-table", opts)
	if err != nil {
		return nil, nil, nil, err
	}
	table, err := OpenDecisionTable(seg.Region(0))
	if err != nil {
		seg.Close()
		return nil, nil, nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		link, err := shm.ReopenLink(name, 1<<20, opts)
		if err == nil {
			return seg, table, link, nil
		}
		if !errors.Is(err, shm.ErrSlotBusy) || time.Now().After(deadline) {
			seg.Close()
			return nil, nil, nil, err
		}
		time.Sleep(time.Millisecond)
	}
}

// recoverNodes rebuilds fresh nodes from the coordinator's journal, read
// while the coordinator keeps appending to it.
func recoverNodes(nodes []*Node, jpath string, now int64) error {
	recs, errf, c, err := ReadJournal(jpath)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, nd := range nodes {
		if err := nd.Recover(now, recs); err != nil {
			return err
		}
	}
	return errf()
}

// openShm attaches to the host's table and link as the coordinator side,
// retrying while a dead predecessor still holds the side.
func openShm(name string, opts *shm.Options) (*shm.Segment, *DecisionTable, *shm.Link, error) {
	seg, table, err := openTable(name, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	link, err := openLink(name, opts)
	if err != nil {
		seg.Close()
		return nil, nil, nil, err
	}
	return seg, table, link, nil
}

// openTable maps the host's decision table.
func openTable(name string, opts *shm.Options) (*shm.Segment, *DecisionTable, error) {
	seg, err := shm.Open(name+"-table", opts)
	if err != nil {
		return nil, nil, err
	}
	table, err := OpenDecisionTable(seg.Region(0))
	if err != nil {
		seg.Close()
		return nil, nil, err
	}
	return seg, table, nil
}

// openLink attaches to the host's link as the coordinator side, retrying
// while a dead predecessor still holds the side.
func openLink(name string, opts *shm.Options) (*shm.Link, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		link, err := shm.OpenLink(name, 0, opts)
		if err == nil || time.Now().After(deadline) {
			return link, err
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// childCoordinator submits commands through a journal-backed Core until it
// is killed, printing "running" once transactions are in flight.
func childCoordinator() error {
	seg, table, link, err := openShm(os.Getenv(envName), shmOpts())
	if err != nil {
		return err
	}
	defer seg.Close()
	defer link.Close()
	j, err := journal.Open(os.Getenv(envJrnl), journal.Options{})
	if err != nil {
		return err
	}
	window, _ := strconv.Atoi(os.Getenv(envWindow))
	k, err := Dial(Config{Log: NewJournalLog(j), Idle: IdleYield, MaxInFlight: window,
		Timeouts: Timeouts{Prepare: 50 * time.Millisecond, PreCommit: 10 * time.Millisecond}},
		table, Remote{Conn: LinkConn(link), Nodes: []NodeID{0, 1, 2}})
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	outcomes := map[TxID]byte{}
	record := func(r *Result) {
		outcomes[r.Tx] = 'A'
		if r.Reason == ReasonNone {
			outcomes[r.Tx] = 'C'
		}
	}
	said := false
	for i := uint64(0); ; i++ {
		select {
		case <-sig:
			return drain(k, outcomes, record)
		default:
		}
		cmd := order(i)
		if _, err := k.Send(&cmd); err != nil && !isBusy(err) {
			return err
		}
		if _, err := k.Poll(record); err != nil {
			return err
		}
		if len(outcomes) >= 500 && !said {
			fmt.Println("running")
			said = true
		}
	}
}

// drain polls until nothing is in flight, then writes the outcomes.
func drain(k *Core, outcomes map[TxID]byte, record func(*Result)) error {
	deadline := time.Now().Add(30 * time.Second)
	for k.InFlight() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d transactions still in flight after 30s", k.InFlight())
		}
		if _, err := k.Poll(record); err != nil {
			return err
		}
	}
	f, err := os.Create(os.Getenv(envOut))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for tx, e := range outcomes {
		fmt.Fprintf(w, "%d %c\n", tx, e)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// startChild starts the test binary as a child of role and waits for its
// first line of output.
func startChild(tb testing.TB, role string, env ...string) *exec.Cmd {
	tb.Helper()
	cmd, _, _ := reexec.Start(tb, reexec.Spec{Args: []string{"-test.run=^$"}, Env: append(env, envRole+"="+role), Discard: true})
	return cmd
}

// procEnv returns the environment of a host child and the segment name.
func procEnv(tb testing.TB, idle string) (string, []string) {
	name := "enginetest-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	return name, []string{envDir + "=" + shm.DefaultDir, envName + "=" + name, envIdle + "=" + idle}
}

func isBusy(err error) bool { return errors.Is(err, ErrBusy) }

// TestCoordinatorKillTakeover kills the coordinator process with SIGKILL
// while transactions are in flight, takes over as a backup of the next
// epoch, and checks that every in-flight transaction is resolved and that
// every participant agrees on every transaction. It runs with the whole
// table in flight (up to 1,024 transactions) and with a window of 16, a
// pipelining client's, since the time to resolve grows with the count.
func TestCoordinatorKillTakeover(t *testing.T) {
	for _, window := range []int{0, 16} {
		t.Run(fmt.Sprintf("window=%d", window), func(t *testing.T) { testTakeover(t, window) })
	}
}

func testTakeover(t *testing.T, window int) {
	name, env := procEnv(t, "park")
	dir := t.TempDir()
	outFile := filepath.Join(dir, "outcomes")
	jpath := filepath.Join(dir, "journal")
	host := startChild(t, "host", append(env, envOut+"="+outFile)...)
	coord := startChild(t, "coordinator", append(env, envJrnl+"="+jpath, envWindow+"="+strconv.Itoa(window))...)

	// The backup is made while the primary runs, as a hot standby is: the
	// takeover then pays for fencing and finishing, not for allocating.
	opts := &shm.Options{Dir: shm.DefaultDir}
	seg, table, err := openTable(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	sb, err := NewStandby(Config{Idle: IdleYield, Timeouts: Timeouts{Prepare: time.Second, PreCommit: 10 * time.Millisecond}}, table, 3)
	if err != nil {
		t.Fatal(err)
	}

	time.Sleep(20 * time.Millisecond)
	if err := coord.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	coord.Wait()
	killed := time.Now()

	// The phases before the takeover proper are timed apart: attaching to
	// the link waits for the dead coordinator's side to be freed, and
	// opening the journal verifies every record of it.
	link, err := openLink(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	attached := time.Now()
	undecided := 0
	for s := range table.InFlight() {
		if s.Err != nil {
			t.Fatal(s.Err)
		}
		if s.Decision == Undecided {
			undecided++
		}
	}
	j, err := journal.Open(jpath, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	opened := time.Now()
	var rerr error
	start := time.Now()
	k, err := sb.TakeOver(NewJournalLog(j), JournalRecordsNewestFirst(j, &rerr), Remote{Conn: LinkConn(link), Nodes: []NodeID{0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	dialed := time.Since(start)
	for s := range table.InFlight() {
		if s.Decision == Undecided {
			t.Errorf("tx %d still UNDECIDED after the takeover", s.Tx)
		}
	}
	recovered := 0
	for k.InFlight() > 0 || recovered == 0 {
		n, err := k.Poll(func(r *Result) {
			if !r.Recovered {
				t.Errorf("tx %d: a result the backup never started", r.Tx)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		recovered += n
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%d transactions still in flight 30s after takeover", k.InFlight())
		}
	}
	resolved := time.Since(start)
	for s := range table.InFlight() {
		if s.Decision == Undecided {
			t.Errorf("tx %d still UNDECIDED after takeover", s.Tx)
		}
	}
	t.Logf("kill → link attached %v, journal opened (%d records) %v later; takeover start → every in-flight tx decided (TakeOver) %v, "+
		"all resolved (acked by every participant) %v; %d in flight at takeover, %d of them UNDECIDED",
		attached.Sub(killed), j.NextSeq()-j.FirstSeq(), opened.Sub(attached), dialed, resolved, recovered, undecided)

	// A fresh transaction commits under the new epoch.
	cmd := order(0)
	res, err := k.Submit(&cmd)
	if err != nil || res.Reason != ReasonNone || EpochOf(res.Tx) != 2 {
		t.Fatalf("after takeover: %+v %v", res.Reason, err)
	}
	host.Process.Signal(syscall.SIGTERM)
	if err := host.Wait(); err != nil {
		t.Fatal(err)
	}
	checkAgreement(t, outFile, j)
}

// checkAgreement reads the host's outcomes and the journal: no transaction
// is committed at one participant and aborted at another, none is left
// prepared, and every commit is in the journal without an abort record.
func checkAgreement(t *testing.T, outFile string, j *journal.Journal) {
	t.Helper()
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	by := map[TxID]map[int]byte{}
	for _, line := range splitLines(string(data)) {
		var node int
		var tx uint64
		var e byte
		if _, err := fmt.Sscanf(line, "%d %d %c", &node, &tx, &e); err != nil {
			t.Fatalf("bad outcome line %q: %v", line, err)
		}
		if by[TxID(tx)] == nil {
			by[TxID(tx)] = map[int]byte{}
		}
		by[TxID(tx)][node] = e
	}
	var rerr error
	logged := map[TxID]RecordKind{}
	for r := range JournalRecords(j, &rerr) {
		if logged[r.Tx] != RecAbort {
			logged[r.Tx] = r.Kind
		}
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	txs := make([]TxID, 0, len(by))
	for tx := range by {
		txs = append(txs, tx)
	}
	sort.Slice(txs, func(a, b int) bool { return txs[a] < txs[b] })
	commits := 0
	for _, tx := range txs {
		seen := by[tx]
		c, a := 0, 0
		for node, e := range seen {
			switch e {
			case 'C':
				c++
			case 'A':
				a++
			default:
				t.Errorf("tx %d left %c at node %d", tx, e, node)
			}
		}
		if c > 0 && a > 0 {
			t.Errorf("split decision: tx %d %v", tx, seen)
		}
		if c > 0 {
			commits++
			if c != 3 {
				t.Errorf("tx %d committed at %d of 3 participants", tx, c)
			}
			if logged[tx] != RecCommit {
				t.Errorf("tx %d committed but the journal says %v", tx, logged[tx])
			}
		}
	}
	t.Logf("%d transactions seen by participants, %d committed at all three, none split", len(txs), commits)
	if commits == 0 {
		t.Error("no transaction committed: the test exercised nothing")
	}
}

func splitLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

// TestJournalReaderWhileCoordinatorRuns reads the journal of a coordinator
// process that holds it open (and locked) and appends to it, as a
// restarted participant does, then kills the coordinator and checks that
// what the reader saw is a prefix of the journal the writer left.
func TestJournalReaderWhileCoordinatorRuns(t *testing.T) {
	_, env := procEnv(t, "park")
	jpath := filepath.Join(t.TempDir(), "journal")
	host := startChild(t, "host", env...)
	coord := startChild(t, "coordinator", append(env, envJrnl+"="+jpath)...)

	_, err := journal.Open(jpath, journal.Options{})
	require.ErrorIs(t, err, journal.ErrLocked, "the coordinator does not hold its journal")
	type entry struct {
		kind RecordKind
		tx   TxID
	}
	// Read until three passes have seen records: under load the first
	// transactions may all abort, and aborts at PREPARE are not journaled.
	seen := []entry{}
	deadline := time.Now().Add(30 * time.Second)
	for pass := 0; pass < 3 || len(seen) == 0; pass++ {
		if time.Now().After(deadline) {
			t.Fatal("the coordinator journaled nothing in 30s")
		}
		recs, errf, c, err := ReadJournal(jpath)
		require.NoError(t, err)
		var got []entry
		for r := range recs {
			got = append(got, entry{r.Kind, r.Tx})
		}
		require.NoError(t, errf())
		require.NoError(t, c.Close())
		require.GreaterOrEqual(t, len(got), len(seen))
		require.True(t, slices.Equal(seen, got[:len(seen)]), "pass %d changed records an earlier pass read", pass)
		seen = got
		time.Sleep(5 * time.Millisecond)
	}

	require.NoError(t, coord.Process.Kill())
	coord.Wait()
	j, err := journal.Open(jpath, journal.Options{})
	require.NoError(t, err)
	defer j.Close()
	var rerr error
	var all []entry
	for r := range JournalRecords(j, &rerr) {
		all = append(all, entry{r.Kind, r.Tx})
	}
	require.NoError(t, rerr)
	require.GreaterOrEqual(t, len(all), len(seen))
	require.Equal(t, seen, all[:len(seen)])
	t.Logf("reader saw %d records while the coordinator ran; the journal holds %d", len(seen), len(all))
	require.NoError(t, host.Process.Signal(syscall.SIGTERM))
	require.NoError(t, host.Wait())
}

// TestParticipantHostKillRecover kills the participants' host process with
// SIGKILL while the coordinator trades, starts a new one that takes back
// the dead host's side of the link and recovers its nodes from the
// coordinator's journal (read while the coordinator keeps writing it),
// lets trading go on, then drains the coordinator and checks that the
// recovered participants, the coordinator's Results and the journal agree
// on every transaction.
func TestParticipantHostKillRecover(t *testing.T) {
	name, env := procEnv(t, "park")
	dir := t.TempDir()
	jpath := filepath.Join(dir, "journal")
	hostOut := filepath.Join(dir, "host-outcomes")
	coordOut := filepath.Join(dir, "coordinator-outcomes")
	host := startChild(t, "host", env...)
	coord := startChild(t, "coordinator", append(env, envJrnl+"="+jpath, envOut+"="+coordOut)...)

	time.Sleep(20 * time.Millisecond)
	require.NoError(t, host.Process.Kill())
	host.Wait()
	host = startChild(t, "host", append(env, envRecover+"="+jpath, envOut+"="+hostOut)...)
	atRecovery := journalCommits(t, jpath)

	// Trade on until the journal shows commits made with the new host.
	deadline := time.Now().Add(30 * time.Second)
	for journalCommits(t, jpath) <= atRecovery {
		if time.Now().After(deadline) {
			t.Fatal("no commit in 30s after the host recovered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, coord.Process.Signal(syscall.SIGTERM))
	require.NoError(t, coord.Wait())
	require.NoError(t, host.Process.Signal(syscall.SIGTERM))
	require.NoError(t, host.Wait())

	seg, err := shm.Open(name+"-table", &shm.Options{Dir: shm.DefaultDir})
	if err == nil {
		// The host unlinks the table as it exits; if it is still there, it
		// must hold no undecided transaction.
		table, err := OpenDecisionTable(seg.Region(0))
		require.NoError(t, err)
		for s := range table.InFlight() {
			require.NotEqual(t, Undecided, s.Decision, "tx %d", s.Tx)
		}
		seg.Close()
	}

	coordSaw := map[TxID]byte{}
	for _, line := range readLines(t, coordOut) {
		var tx uint64
		var e byte
		_, err := fmt.Sscanf(line, "%d %c", &tx, &e)
		require.NoError(t, err, line)
		coordSaw[TxID(tx)] = e
	}
	hostSaw := map[TxID]map[int]byte{}
	for _, line := range readLines(t, hostOut) {
		var node int
		var tx uint64
		var e byte
		_, err := fmt.Sscanf(line, "%d %d %c", &node, &tx, &e)
		require.NoError(t, err, line)
		if hostSaw[TxID(tx)] == nil {
			hostSaw[TxID(tx)] = map[int]byte{}
		}
		hostSaw[TxID(tx)][node] = e
	}
	recs, errf, c, err := ReadJournal(jpath)
	require.NoError(t, err)
	defer c.Close()
	logged := map[TxID]RecordKind{}
	for r := range recs {
		if logged[r.Tx] != RecAbort {
			logged[r.Tx] = r.Kind
		}
	}
	require.NoError(t, errf())

	commits := 0
	for tx, e := range coordSaw {
		seen := hostSaw[tx]
		switch e {
		case 'C':
			commits++
			require.Equal(t, RecCommit, logged[tx], "tx %d committed but not so journaled", tx)
			for node := range 3 {
				require.Equal(t, byte('C'), seen[node], "tx %d committed, node %d of the new host says %q", tx, node, seen[node])
			}
		case 'A':
			require.NotEqual(t, RecCommit, logged[tx], "tx %d aborted but journaled as committed", tx)
			for node, s := range seen {
				require.NotEqual(t, byte('C'), s, "tx %d aborted, node %d of the new host committed it", tx, node)
			}
		}
	}
	for tx, seen := range hostSaw {
		for node, s := range seen {
			require.NotEqual(t, byte('P'), s, "tx %d left prepared at node %d", tx, node)
			if s == 'C' {
				require.Equal(t, byte('C'), coordSaw[tx], "tx %d committed at node %d, the coordinator says %q", tx, node, coordSaw[tx])
			}
		}
	}
	t.Logf("%d transactions, %d committed; %d committed before the new host recovered; all agree", len(coordSaw), commits, atRecovery)
}

// journalCommits counts the journal's commit records, read while the
// coordinator writes it.
func journalCommits(t *testing.T, path string) int {
	t.Helper()
	recs, errf, c, err := ReadJournal(path)
	require.NoError(t, err)
	defer c.Close()
	n := 0
	for r := range recs {
		if r.Kind == RecCommit {
			n++
		}
	}
	require.NoError(t, errf())
	return n
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return splitLines(string(data))
}
