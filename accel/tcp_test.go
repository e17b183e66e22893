package accel

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

func tcpOf(ep Endpoint) *streamEndpoint { return ep.(*streamEndpoint) }

// TestTCPResetNoDuplication streams records while both ends' connections
// are reset again and again: every record arrives at most once and in
// order, and every record is either delivered or counted lost, so loss is
// never silent and duplication never happens. It runs over TCP and over
// unix sockets, which have no reset: there the peer sees the stream end.
func TestTCPResetNoDuplication(t *testing.T) {
	for _, fc := range []fabricCase{tcpCase(TCPOptions{RingCapacity: testRing}), unixCase(TCPOptions{RingCapacity: testRing})} {
		t.Run(fc.name, func(t *testing.T) { testResetNoDuplication(t, fc) })
	}
}

func testResetNoDuplication(t *testing.T, fc fabricCase) {
	p, a := fc.pair(t)
	const n = 30000
	var (
		received, next uint64
		bad            error
		wg             sync.WaitGroup
		writing        atomic.Bool
	)
	read := func(typ uint16, b []byte) {
		if bad != nil {
			return
		}
		if len(b) < 8 {
			bad = errors.New("short record")
			return
		}
		i := binary.LittleEndian.Uint64(b)
		if i < next {
			bad = errors.New("record repeated or reordered")
			return
		}
		bad = checkRecord(i, typ, b)
		next = i + 1
		received++
	}
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() { // the reader never stops while anything may be in flight
		for {
			select {
			case <-stop:
				_, err := p.Conn().Rx.Read(0, read)
				readerDone <- errors.Join(err, bad)
				return
			default:
			}
			if _, err := p.Conn().Rx.Read(0, read); err != nil {
				readerDone <- err
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	writing.Store(true)
	wg.Go(func() {
		defer writing.Store(false)
		require.NoError(t, writeRecords(a, 0, n))
	})
	wg.Go(func() {
		for i := 0; writing.Load(); i++ {
			time.Sleep(2 * time.Millisecond)
			if i%2 == 0 {
				tcpOf(a).reset()
			} else {
				tcpOf(p).reset()
			}
		}
	})
	wg.Wait()
	// A last record flushed settles the account: everything before it was
	// delivered or lost. Flush reports ErrLost while any record since the
	// last settled flush was lost (the storm's, or this one while the last
	// reset's connection is still going down): then send another.
	total := uint64(n)
	for {
		require.NoError(t, writeRecords(a, total, total+1))
		total++
		err := a.Flush(30 * time.Second)
		if errors.Is(err, ErrLost) && total < n+10 {
			continue
		}
		require.NoError(t, err)
		break
	}
	close(stop)
	require.NoError(t, <-readerDone)
	st, _ := TCPStats(a)
	require.Equal(t, total, received+st.Lost, "records neither delivered nor counted lost: %+v", st)
	require.Equal(t, total, next, "the last record must arrive")
	require.Positive(t, st.Drops, "no connection was reset")
	t.Logf("%d records: %d delivered, %d lost in %d drops", total, received, st.Lost, st.Drops)
}

// fakePeer accepts one connection and lets the test drive its side by
// hand, speaking the wire format as documented on TCPFabric.
func fakePeer(t *testing.T, serve func(c net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func helloFrame(inc uint64) []byte {
	b := make([]byte, frameHeader+helloLen)
	putHeader(b, helloLen, wireVersion, frameHello, 0, 0, 0)
	binary.LittleEndian.PutUint64(b[frameHeader:], helloMagic)
	binary.LittleEndian.PutUint64(b[frameHeader+8:], inc)
	return b
}

// TestTCPRefusesForeignPeer: a peer that does not speak the protocol is
// refused with ErrProtocol, not mistaken for one.
func TestTCPRefusesForeignPeer(t *testing.T) {
	addr := fakePeer(t, func(c net.Conn) {
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n.............................................."))
		io.Copy(io.Discard, c)
	})
	_, err := (&TCPFabric{Options: TCPOptions{DialTimeout: 200 * time.Millisecond}}).Dial(addr)
	require.ErrorIs(t, err, ErrProtocol)
}

// TestTCPSilentPeerSuspected: a peer that completes the handshake and then
// neither sends nor closes (a stopped process, a dead host) is reported not
// alive after StaleAfter, while the connection is still open.
func TestTCPSilentPeerSuspected(t *testing.T) {
	release := make(chan struct{})
	addr := fakePeer(t, func(c net.Conn) {
		c.Write(helloFrame(42))
		go io.Copy(io.Discard, c) // read, never answer
		<-release
	})
	defer close(release)
	ep, err := (&TCPFabric{Options: TCPOptions{StaleAfter: 30 * time.Millisecond}}).Dial(addr)
	require.NoError(t, err)
	defer ep.Close()
	require.True(t, waitFor(5*time.Second, func() bool { return !ep.Conn().Alive() }), "silent peer still alive")
	require.True(t, tcpOf(ep).connected.Load(), "suspected through staleness, not a closed connection")
}

// TestTCPRejectsSequenceGap: a data frame that skips a sequence number is a
// protocol violation that drops the connection rather than deliver out of
// order.
func TestTCPRejectsSequenceGap(t *testing.T) {
	dropped := make(chan struct{})
	addr := fakePeer(t, func(c net.Conn) {
		c.Write(helloFrame(7))
		var frame [frameHeader + 8]byte
		putHeader(frame[:], 8, 1, frameData, 0, 1, 0)
		c.Write(frame[:])
		putHeader(frame[:], 8, 1, frameData, 0, 3, 0) // 2 is missing
		c.Write(frame[:])
		io.Copy(io.Discard, c) // returns when the endpoint drops us
		close(dropped)
	})
	ep, err := (&TCPFabric{Options: TCPOptions{Redial: time.Hour}}).Dial(addr)
	require.NoError(t, err)
	defer ep.Close()
	select {
	case <-dropped:
	case <-time.After(10 * time.Second):
		t.Fatal("gap not rejected")
	}
	n, err := ep.Conn().Rx.Read(0, func(uint16, []byte) {})
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the record before the gap is delivered")
}

// TestTCPFlushReportsLossCoveredByAck: after a drop the peer resumes
// after the records it lost, so its acknowledgements on the new connection
// cover them; Flush must still report them lost, not delivered. The fake
// peer drops the first connection with three records unread, acknowledges
// them on the second as a real peer does, then receives a fourth.
func TestTCPFlushReportsLossCoveredByAck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	drop := make(chan struct{})
	peerDone := make(chan error, 1)
	go func() {
		peerDone <- func() error {
			const peerInc = 99
			var in [frameHeader + helloLen]byte
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			if _, err := io.ReadFull(c, in[:]); err != nil {
				return err
			}
			c.Write(helloFrame(peerInc))
			<-drop
			c.Close() // records 1 to 3 are lost with it
			if c, err = ln.Accept(); err != nil {
				return err
			}
			defer c.Close()
			if _, err := io.ReadFull(c, in[:]); err != nil {
				return err
			}
			h := helloFrame(peerInc)
			copy(h[frameHeader+16:], in[frameHeader+8:frameHeader+16]) // seen: the dialer's incarnation, nothing received
			c.Write(h)
			var beat [frameHeader]byte
			putHeader(beat[:], 0, 0, frameBeat, 0, 0, 3) // resumed after the lost records
			c.Write(beat[:])
			for seq := uint64(0); seq != 4; { // the fourth record arrives
				var hdr [frameHeader]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return err
				}
				n, _, kind, _, s, _ := getHeader(hdr[:])
				if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
					return err
				}
				if kind == frameData {
					seq = s
				}
			}
			putHeader(beat[:], 0, 0, frameBeat, 0, 0, 4)
			c.Write(beat[:])
			io.Copy(io.Discard, c)
			return nil
		}()
	}()
	ep, err := (&TCPFabric{}).Dial(ln.Addr().String())
	require.NoError(t, err)
	defer func() {
		ep.Close()
		ln.Close()
		require.NoError(t, <-peerDone)
	}()
	stats := func() Stats { st, _ := TCPStats(ep); return st }
	require.NoError(t, writeRecords(ep, 0, 3))
	require.True(t, waitFor(5*time.Second, func() bool { return stats().Sent == 3 }), "records not sent")
	close(drop)
	require.True(t, waitFor(5*time.Second, func() bool { return stats().Acked == 3 }), "lost records not acknowledged: %+v", stats())
	require.Equal(t, uint64(3), stats().Lost)
	require.ErrorIs(t, ep.Flush(5*time.Second), ErrLost, "records lost under an acknowledgement reported delivered")
	require.NoError(t, writeRecords(ep, 3, 4))
	require.NoError(t, ep.Flush(5*time.Second), "a delivered record after a reported loss")
}

// tcpCluster is a cluster over TCP with fault-test timings and a short
// write timeout, so a peer that stops reading costs the connection soon.
func tcpCluster(t *testing.T) *cluster {
	return newCluster(t, tcpCase(TCPOptions{WriteTimeout: 100 * time.Millisecond}), faultTiming)
}

// TestTCPResetMidPhase resets the connection from inside the protocol's
// phases: while a participant prepares (the votes are not yet sent) and
// while one pre-commits (the acks are not yet sent), from both ends. The
// oracles hold: no split decision, nothing left prepared, every commit at
// all three participants.
func TestTCPResetMidPhase(t *testing.T) {
	c := tcpCluster(t)
	part, coord := tcpOf(c.part), tcpOf(c.coord)
	c.recs[1].onPrepare = func(_ engine.TxID, cmd *engine.Command) {
		if cmd.ClientOrderID%23 == 5 {
			part.reset()
		}
	}
	c.recs[2].onPre = func(tx engine.TxID) {
		if uint64(tx)%29 == 7 {
			coord.reset()
		}
	}
	c.run(t, 800, nil)
	commits := c.checkAgreement(t)
	st, _ := TCPStats(c.coord)
	require.Positive(t, st.Drops, "no reset happened")
	t.Logf("%d committed of %d; coordinator side %+v", commits, len(c.results), st)
}

// TestTCPPeerStopsReading stops the participant side from reading its
// socket for 300 ms mid-run: the coordinator's sends back up, its write
// timeout drops the connection, PREPAREs time out and participants suspect
// the coordinator; the oracles hold and the run completes after.
func TestTCPPeerStopsReading(t *testing.T) {
	c := tcpCluster(t)
	part := tcpOf(c.part)
	c.run(t, 600, func(i int) {
		if i == 200 {
			part.pauseUntil.Store(nanotime() + int64(300*time.Millisecond))
		}
	})
	commits := c.checkAgreement(t)
	st, _ := TCPStats(c.coord)
	t.Logf("%d committed of %d; coordinator side %+v", commits, len(c.results), st)
}

// TestTCPSlowPeer makes a participant take 2 ms over every tenth PREPARE:
// votes come late, transactions abort on the PREPARE timeout and late
// votes are ignored; the oracles hold.
func TestTCPSlowPeer(t *testing.T) {
	c := tcpCluster(t)
	c.recs[2].onPrepare = func(_ engine.TxID, cmd *engine.Command) {
		if cmd.ClientOrderID%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	c.run(t, 400, nil)
	commits := c.checkAgreement(t)
	t.Logf("%d committed of %d; %+v", commits, len(c.results), c.core.Counters())
}

// TestTCPCoordinatorLost drops the coordinator's end for good with
// transactions in flight. The participants see the connection gone (Alive
// false) and terminate by the protocol's rules: UNDECIDED transactions
// abort by CAS on the decision table, PRE-COMMITTED ones commit; those the
// lost coordinator had decided COMMIT without sending PRE-COMMIT wait, as
// they must, for a coordinator with the Outcome. A backup of the next
// epoch dials in over a new connection with the lost one's log and
// finishes them. The participants agree on everything and hold nothing.
func TestTCPCoordinatorLost(t *testing.T) {
	c := tcpCluster(t)
	c.run(t, 200, nil)
	for i := 200; i < 400; i++ {
		cmd := order(uint64(i))
		if _, err := c.core.Send(&cmd); err != nil {
			require.ErrorIs(t, err, engine.ErrBusy)
		}
		_, err := c.core.Poll(func(r *engine.Result) { c.results[r.Tx] = r.Reason })
		require.NoError(t, err)
	}
	inflight := c.core.InFlight()
	require.Positive(t, inflight, "nothing in flight to terminate")
	require.NoError(t, c.coord.Close()) // the Core is abandoned: a lost coordinator
	var waiting int
	onOwn := func() bool { // all that is left waits for a COMMIT's Outcome
		c.hostErr(t) // the recorders are the host's while it serves
		defer c.serve()
		for _, r := range c.recs {
			for tx := range r.prepared {
				if d, _, err := c.table.Lookup(tx); r.ended[tx] == 0 && (err != nil || d != engine.Commit) {
					return false
				}
			}
		}
		waiting = pending(c.recs)
		return true
	}
	require.True(t, waitFor(10*time.Second, onOwn), "participants did not terminate what they could on their own")
	backup, err := (&TCPFabric{}).Dial(c.part.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { backup.Close() })
	c.takeover(t, backup)
	commits := c.checkAgreement(t)
	t.Logf("%d in flight at the loss; %d left waiting for a COMMIT's Outcome until the backup; %d committed in all", inflight, waiting, commits)
}

// TestTCPStalledOwnerSuspected: the pumps of an endpoint whose owner has
// stopped beating (a coordinator stalled in a live process) send no
// heartbeats, so the peer suspects it as it would over shared memory; once
// the owner beats again the peer sees it alive.
func TestTCPStalledOwnerSuspected(t *testing.T) {
	p, a := tcpCase(TCPOptions{StaleAfter: 30 * time.Millisecond}).pair(t)
	alive := p.Conn().Alive
	require.True(t, waitFor(5*time.Second, tcpOf(p).connected.Load), "passive side never connected")
	require.True(t, waitFor(5*time.Second, func() bool { return !alive() }), "an owner that never beats still looks alive")
	require.True(t, tcpOf(a).connected.Load() && tcpOf(p).connected.Load())
	beating := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-beating:
				return
			case <-time.After(time.Millisecond):
				a.Conn().Beat()
			}
		}
	}()
	ok := waitFor(5*time.Second, alive)
	close(beating)
	<-done
	require.True(t, ok, "a beating owner never seen alive")
}

// TestTCPPassiveRefusesSecondPeer: while its peer lives, the passive end
// refuses another (a stale coordinator redialing after a backup took over
// must not steal the backup's connection); once the peer is gone, the
// newcomer is served.
func TestTCPPassiveRefusesSecondPeer(t *testing.T) {
	p, a := tcpCase(TCPOptions{StaleAfter: time.Minute}).pair(t)
	require.True(t, waitFor(5*time.Second, tcpOf(p).connected.Load), "first peer never served")
	_, err := (&TCPFabric{Options: TCPOptions{DialTimeout: 2 * time.Second}}).Dial(p.Addr())
	require.ErrorIs(t, err, ErrPeerBusy)
	require.True(t, tcpOf(a).connected.Load(), "the refused dial disturbed the served peer")
	require.NoError(t, a.Close())
	b, err := (&TCPFabric{}).Dial(p.Addr())
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, writeRecords(b, 0, 10))
	require.NoError(t, readRecords(p, 0, 10, 10*time.Second))
}
