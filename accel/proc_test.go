package accel

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/reexec"
	"github.com/commitcore/commitcore/shm"
	"github.com/stretchr/testify/require"
)

// The cross-process test re-executes the test binary as a child whose role
// the environment names: "tcp-host" creates the decision table in shared
// memory, listens on TCP (or on a unix socket in envDir, if envNet says
// "unix") and serves three recorder nodes over it.
const (
	envRole   = "COMMITCORE_ACCEL_CHILD"
	envNet    = "COMMITCORE_ACCEL_NET"
	envDir    = "COMMITCORE_ACCEL_DIR"
	envName   = "COMMITCORE_ACCEL_NAME"
	envOut    = "COMMITCORE_ACCEL_OUT"
	procSlots = 1024
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "":
		reexec.QuickRaceExit()
		os.Exit(m.Run())
	case "tcp-host":
		if err := childTCPHost(); err != nil {
			fmt.Fprintln(os.Stderr, "tcp-host child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown child role", os.Getenv(envRole))
		os.Exit(2)
	}
}

// childTCPHost is a participant process over TCP: it creates the decision
// table (shared memory: the coordinator is on this host), listens, prints
// "ready <addr>" and serves until SIGTERM; then it keeps serving until its
// nodes hold nothing prepared (bounded), and writes every node's outcomes
// to envOut as "node tx state" lines.
func childTCPHost() error {
	opts := &shm.Options{Dir: os.Getenv(envDir)}
	seg, err := shm.Create(os.Getenv(envName)+"-table", []shm.RegionSpec{{Kind: 1, Len: engine.DecisionTableSize(procSlots)}}, opts)
	if err != nil {
		return err
	}
	defer seg.Unlink()
	defer seg.Close()
	table, err := engine.InitDecisionTable(seg.Region(0), procSlots)
	if err != nil {
		return err
	}
	var fab Fabric = &TCPFabric{}
	addr := "127.0.0.1:0"
	if os.Getenv(envNet) == "unix" {
		fab, addr = &UnixFabric{}, hostSocket(os.Getenv(envDir))
	}
	ep, err := fab.Listen(addr)
	if err != nil {
		return err
	}
	defer ep.Close()
	recs := []*recorder{newRecorder(true), newRecorder(false), newRecorder(false)}
	var nodes []*engine.Node
	for i, r := range recs {
		nd, err := engine.NewNode(engine.NodeConfig{ID: engine.NodeID(i), Matching: i == 0, Participant: r, Table: table,
			DecisionTimeout: faultTiming.decision, CommitTimeout: faultTiming.decision, Grace: faultTiming.grace})
		if err != nil {
			return err
		}
		nodes = append(nodes, nd)
	}
	host, err := engine.NewHost(ep.Conn(), engine.NewMonotonicClock(), nodes...)
	if err != nil {
		return err
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Println("ready", ep.Addr())
	var deadline time.Time
	for {
		stop := make(chan struct{})
		t := time.AfterFunc(10*time.Millisecond, func() { close(stop) })
		if err := Serve(ep, host, stop); err != nil {
			return err
		}
		t.Stop()
		if deadline.IsZero() {
			select {
			case <-term:
				deadline = time.Now().Add(20 * time.Second)
			default:
				continue
			}
		}
		if pending(recs) == 0 || time.Now().After(deadline) {
			break
		}
	}
	f, err := os.Create(os.Getenv(envOut))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i, r := range recs {
		for tx := range r.prepared {
			st := r.ended[tx]
			if st == 0 {
				st = 'P'
			}
			fmt.Fprintf(w, "%d %d %c\n", i, tx, st)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// pending counts transactions some recorder holds prepared and unfinished.
func pending(recs []*recorder) int {
	n := 0
	for _, r := range recs {
		for tx := range r.prepared {
			if r.ended[tx] == 0 {
				n++
			}
		}
	}
	return n
}

// readOutcomes rebuilds recorders from a child's outcome lines.
func readOutcomes(t *testing.T, path string) []*recorder {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	recs := []*recorder{newRecorder(true), newRecorder(false), newRecorder(false)}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var node int
		var tx uint64
		var st byte
		_, err := fmt.Sscanf(line, "%d %d %c", &node, &tx, &st)
		require.NoError(t, err, "line %q", line)
		r := recs[node]
		r.prepared[engine.TxID(tx)] = true
		if st != 'P' {
			r.ended[engine.TxID(tx)] = st
		}
	}
	return recs
}

// hostSocket is the socket path of a "tcp-host" child over a unix socket.
func hostSocket(dir string) string { return filepath.Join(dir, "host.sock") }

// startTCPHost starts a "tcp-host" child over network ("tcp" or "unix")
// and returns it with the address it listens on.
func startTCPHost(t *testing.T, network, dir, name, out string) (*exec.Cmd, string) {
	cmd, line, _ := reexec.Start(t, reexec.Spec{Args: []string{"-test.run=^$"}, Discard: true,
		Env: []string{envRole + "=tcp-host", envNet + "=" + network, envDir + "=" + dir, envName + "=" + name, envOut + "=" + out}})
	addr, ok := strings.CutPrefix(line, "ready ")
	require.True(t, ok, "child said %q", line)
	return cmd, addr
}

// TestTCPPeerKilled: a participant process killed with SIGKILL is seen not
// alive by the coordinator's endpoint (the kernel closes its sockets), and
// the endpoint keeps redialing without error.
func TestTCPPeerKilled(t *testing.T) { killPeer(t, "tcp", &TCPFabric{}) }

// killPeer starts a "tcp-host" child serving over network, dials it with f,
// SIGKILLs it once the endpoint sees it alive, and checks that the endpoint
// then sees it dead and keeps redialing without error. It returns the
// endpoint (closed at the test's end) and the child's address.
func killPeer(t *testing.T, network string, f Fabric) (Endpoint, string) {
	dir := t.TempDir()
	name := "acceltest-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd, addr := startTCPHost(t, network, dir, name, filepath.Join(dir, "outcomes"))
	ep, err := f.Dial(addr)
	require.NoError(t, err)
	t.Cleanup(func() { ep.Close() })
	require.True(t, waitFor(10*time.Second, ep.Conn().Alive), "serving child never seen alive")
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	require.True(t, waitFor(10*time.Second, func() bool { return !ep.Conn().Alive() }), "killed child still alive")
	require.NoError(t, ep.Idle(0))
	return ep, addr
}

// TestTCPChildProcessHost runs the protocol between processes over TCP, as
// exchange-sim -fabric tcp does: the participant process serves over a
// TCPFabric listener, this process dials it and drives an engine.Core, then
// drops its end with transactions in flight (a coordinator lost to the
// network), leaves the participants to terminate what they can, and takes
// over as a backup over a new connection. The oracles hold across the
// processes.
func TestTCPChildProcessHost(t *testing.T) {
	dir := t.TempDir()
	name := "acceltest-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	out := filepath.Join(dir, "outcomes")
	cmd, addr := startTCPHost(t, "tcp", dir, name, out)

	seg, err := shm.Open(name+"-table", &shm.Options{Dir: dir})
	require.NoError(t, err)
	defer seg.Close()
	table, err := engine.OpenDecisionTable(seg.Region(0))
	require.NoError(t, err)
	ep, err := (&TCPFabric{}).Dial(addr)
	require.NoError(t, err)
	log := &memLog{}
	k, err := engine.Dial(engine.Config{Timeouts: faultTiming.coord, Idle: engine.IdleYield, MaxInFlight: 64, Log: log}, table,
		engine.Remote{Conn: ep.Conn(), Nodes: []engine.NodeID{0, 1, 2}})
	require.NoError(t, err)
	results := map[engine.TxID]engine.Reason{}
	collect := func(r *engine.Result) { results[r.Tx] = r.Reason }
	for i := 0; i < 400; {
		c := order(uint64(i))
		if _, err := k.Send(&c); err == nil {
			i++
		} else {
			require.ErrorIs(t, err, engine.ErrBusy)
		}
		_, err := k.Poll(collect)
		require.NoError(t, err)
		for i == 300 && k.InFlight() > 0 { // the first 300 run to the end
			_, err := k.Poll(collect)
			require.NoError(t, err)
		}
	}
	inflight := k.InFlight()
	require.NoError(t, ep.Close())
	// The participants terminate what they can; a backup of the next epoch
	// dials in with the log and finishes the rest.
	time.Sleep(5 * faultTiming.grace)
	ep, err = (&TCPFabric{}).Dial(addr)
	require.NoError(t, err)
	defer ep.Close()
	k, err = engine.Dial(engine.Config{Timeouts: faultTiming.coord, Idle: engine.IdleYield, Log: log, Records: log.records()}, table,
		engine.Remote{Conn: ep.Conn(), Nodes: []engine.NodeID{0, 1, 2}})
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for k.InFlight() > 0 {
		_, err := k.Poll(collect)
		require.NoError(t, err)
		require.True(t, time.Now().Before(deadline), "%d in flight after takeover", k.InFlight())
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
	commits := agreement(t, readOutcomes(t, out), results)
	require.Positive(t, len(results))
	t.Logf("%d committed at all three participants; %d in flight when the coordinator's end dropped", commits, inflight)
}
