package accel

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/pingpong"
	"github.com/commitcore/commitcore/ringbuf"
	"github.com/stretchr/testify/require"
)

// pingSize is the record size of the ping-pong benchmarks.
const pingSize = 64

// echo serves ep until stop: every record read from Rx goes back on Tx.
// It runs on a locked thread and parks like a participant host.
func echo(ep Endpoint, stop <-chan struct{}) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := ep.Conn()
	var werr error
	back := func(typ uint16, p []byte) {
		if werr == nil {
			werr = c.Tx.Write(typ, p, time.Time{})
		}
	}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		n, err := c.Rx.Read(0, back)
		if err = errors.Join(err, werr); err != nil {
			return err
		}
		if err := ep.Idle(n); err != nil {
			return err
		}
	}
}

// BenchmarkFabricShmPingPong is a 64-byte round trip through a ShmFabric
// pair to an echoing goroutine; BenchmarkFabricUnixPingPong and
// BenchmarkFabricTCPPingPong are the same over a UnixFabric pair and a
// TCPFabric pair on loopback. Run them together: the unix and TCP figures
// are meant as ratios to this one.
func BenchmarkFabricShmPingPong(b *testing.B) { benchPingPong(b, shmCase(1<<16)) }

// BenchmarkFabricUnixPingPong: see BenchmarkFabricShmPingPong.
func BenchmarkFabricUnixPingPong(b *testing.B) {
	benchPingPong(b, unixCase(TCPOptions{RingCapacity: 1 << 16}))
}

// BenchmarkFabricTCPPingPong: see BenchmarkFabricShmPingPong.
func BenchmarkFabricTCPPingPong(b *testing.B) {
	benchPingPong(b, tcpCase(TCPOptions{RingCapacity: 1 << 16}))
}

func benchPingPong(b *testing.B, fc fabricCase) {
	p, a := fc.pair(b)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- echo(p, stop) }()
	c := a.Conn()
	idle := engine.NewIdleStrategy(engine.IdlePark, c.Bell)
	var msg [pingSize]byte
	var got byte
	read := func(_ uint16, p []byte) { got = p[0] }
	h := pingpong.NewHistogram()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		msg[0] = byte(i)
		var t0 time.Time
		if i%pingpong.SampleEvery == 0 {
			t0 = time.Now()
		}
		if err := c.Tx.TryWrite(1, msg[:]); err != nil {
			b.Fatal(err)
		}
		idle.Reset()
		for {
			n, err := c.Rx.Read(1, read)
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				break
			}
			idle.Idle(0)
		}
		if i%pingpong.SampleEvery == 0 {
			h.RecordValue(int64(time.Since(t0)))
		}
		if got != byte(i) {
			b.Fatalf("echo %d, want %d", got, byte(i))
		}
	}
	b.StopTimer()
	pingpong.Report(b, h)
	close(stop)
	require.NoError(b, <-done)
}

// BenchmarkCommit3PCShmFabric is one closed-loop 3PC trade (engine.Core's
// Submit) to a host of three participants served by Serve over a
// ShmFabric pair in this process; BenchmarkCommit3PCUnix and
// BenchmarkCommit3PCTCP are the same over a UnixFabric pair and a
// TCPFabric pair on loopback. Run them together and quote the unix and
// TCP figures as ratios to this one. Participants do nothing (engine.NopParticipant),
// so the figures are the protocol and the fabric. Everything parks when
// idle (the default), as it must on a shared two-core machine.
func BenchmarkCommit3PCShmFabric(b *testing.B) { benchCommit(b, shmCase(engine.DefaultRingCapacity)) }

// BenchmarkCommit3PCUnix: see BenchmarkCommit3PCShmFabric.
func BenchmarkCommit3PCUnix(b *testing.B) {
	benchCommit(b, unixCase(TCPOptions{RingCapacity: engine.DefaultRingCapacity}))
}

// BenchmarkCommit3PCTCP: see BenchmarkCommit3PCShmFabric.
func BenchmarkCommit3PCTCP(b *testing.B) {
	benchCommit(b, tcpCase(TCPOptions{RingCapacity: engine.DefaultRingCapacity}))
}

func benchCommit(b *testing.B, fc fabricCase) {
	part, coord := fc.pair(b)
	table, err := engine.InitDecisionTable(ringbuf.AlignedBytes(engine.DecisionTableSize(engine.DefaultSlots)), engine.DefaultSlots)
	require.NoError(b, err)
	var nodes []*engine.Node
	for i := range 3 {
		nd, err := engine.NewNode(engine.NodeConfig{ID: engine.NodeID(i), Matching: i == 0, Participant: &engine.NopParticipant{}, Table: table,
			DecisionTimeout: time.Second, CommitTimeout: time.Second, Grace: 10 * time.Second})
		require.NoError(b, err)
		nodes = append(nodes, nd)
	}
	host, err := engine.NewHost(part.Conn(), engine.NewMonotonicClock(), nodes...)
	require.NoError(b, err)
	stop := make(chan struct{})
	served := make(chan error, 1)
	go func() { served <- Serve(part, host, stop) }()
	// Timeouts (here and the nodes') far above any round trip on a loaded
	// machine: the benchmark measures commits, not aborts.
	k, err := engine.Dial(engine.Config{Timeouts: engine.Timeouts{Prepare: 10 * time.Second, PreCommit: time.Second}},
		table, engine.Remote{Conn: coord.Conn(), Nodes: []engine.NodeID{0, 1, 2}})
	require.NoError(b, err)
	h := pingpong.NewHistogram()
	cmd := order(1)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cmd.ClientOrderID = uint64(i)
		t0 := time.Now()
		res, err := k.Submit(&cmd)
		if err != nil {
			b.Fatal(err)
		}
		h.RecordValue(int64(time.Since(t0)))
		if res.Reason != engine.ReasonNone {
			b.Fatalf("tx %d: %v", res.Tx, res.Reason)
		}
	}
	b.StopTimer()
	pingpong.Report(b, h)
	close(stop)
	require.NoError(b, <-served)
}

// BenchmarkTCPSocketPingPong is the floor under BenchmarkFabricTCPPingPong:
// the same 64-byte round trip over a bare loopback TCP connection to an
// echoing goroutine, through Go's network poller, with no rings, pumps or
// framing.
func BenchmarkTCPSocketPingPong(b *testing.B) { benchSocketPingPong(b, "tcp", "127.0.0.1:0") }

// BenchmarkUnixSocketPingPong is the floor under
// BenchmarkFabricUnixPingPong, as BenchmarkTCPSocketPingPong is over TCP.
func BenchmarkUnixSocketPingPong(b *testing.B) {
	benchSocketPingPong(b, "unix", filepath.Join(b.TempDir(), "floor.sock"))
}

func benchSocketPingPong(b *testing.B, network, addr string) {
	ln, err := net.Listen(network, addr)
	require.NoError(b, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		var buf [pingSize]byte
		for {
			if _, err := io.ReadFull(c, buf[:]); err != nil {
				done <- nil
				return
			}
			if _, err := c.Write(buf[:]); err != nil {
				done <- err
				return
			}
		}
	}()
	c, err := net.Dial(network, ln.Addr().String())
	require.NoError(b, err)
	var msg [pingSize]byte
	h := pingpong.NewHistogram()
	b.ReportAllocs()
	pingpong.Echo(b, h, msg[:],
		func(p []byte) error { _, err := c.Write(p); return err },
		func(p []byte) error { _, err := io.ReadFull(c, p); return err })
	b.StopTimer()
	pingpong.Report(b, h)
	c.Close()
	require.NoError(b, <-done)
}
