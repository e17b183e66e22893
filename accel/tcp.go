package accel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/ringbuf"
	"golang.org/x/sys/unix"
)

// TCPOptions configure a TCPFabric. The zero value gives the defaults.
type TCPOptions struct {
	// RingCapacity is the data capacity of each local ring (Tx and Rx), a
	// power of two; 0 means engine.DefaultRingCapacity.
	RingCapacity int
	// MaxRecord is the largest record payload carried; 0 means 4096, room
	// for engine.MaxMsgSize. A larger frame from the peer is a protocol
	// violation.
	MaxRecord int
	// Heartbeat is how often a side that has sent nothing else sends a
	// heartbeat frame, provided its owner has beaten since the last one;
	// 0 means 1 ms.
	Heartbeat time.Duration
	// StaleAfter is how long the peer may stay silent before Alive reports
	// it not alive; 0 means 20 ms, as for a shared-memory link.
	StaleAfter time.Duration
	// WriteTimeout is how long a send may stay blocked on a peer that does
	// not read before the connection is dropped as failed; 0 means 1 s.
	WriteTimeout time.Duration
	// DialTimeout bounds Dial's first connection, retries included; 0
	// means 5 s. Later reconnections retry until Close.
	DialTimeout time.Duration
	// Redial is the longest pause between reconnection attempts (they
	// start at 1 ms and double); 0 means 50 ms.
	Redial time.Duration
}

func (o TCPOptions) withDefaults(network string) (TCPOptions, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.RingCapacity == 0 {
		o.RingCapacity = engine.DefaultRingCapacity
	}
	if o.MaxRecord == 0 {
		o.MaxRecord = 4096
	}
	def(&o.Heartbeat, time.Millisecond)
	def(&o.StaleAfter, 20*time.Millisecond)
	def(&o.WriteTimeout, time.Second)
	def(&o.DialTimeout, 5*time.Second)
	def(&o.Redial, 50*time.Millisecond)
	c := o.RingCapacity
	if c < ringbuf.MinCapacity || c > ringbuf.MaxCapacity || c&(c-1) != 0 {
		return o, fmt.Errorf("%s fabric: ring capacity %d: want a power of two in [%d, %d]", network, c, ringbuf.MinCapacity, ringbuf.MaxCapacity)
	}
	if o.MaxRecord < 1 || o.MaxRecord > ringbuf.MaxPayload(c) || o.MaxRecord > maxFrameLen {
		return o, fmt.Errorf("%s fabric: max record %d: want 1 to %d for rings of %d bytes", network, o.MaxRecord, min(ringbuf.MaxPayload(c), maxFrameLen), c)
	}
	return o, nil
}

// TCPFabric carries the fabric's records over TCP, for components on
// different hosts: the software path of RDMA. Each endpoint keeps a local
// Tx and Rx ring (heap memory, so the engine sees the same *engine.Conn as
// over shared memory) and two pump goroutines per connection, like Aeron's
// media driver: the sender takes committed records from Tx and writes them
// to the socket as frames, the receiver reads frames and commits their
// records to Rx, ringing Bell.
//
// Wire format: every frame is a 24-byte little-endian header — payload
// length (32 bits), record type (16), frame kind (8: hello, data,
// heartbeat), flags (8), sequence number (64), acknowledgement (64) —
// then the payload. Data frames number the records of each sending
// endpoint 1, 2, 3… for its whole life; the acknowledgement is the last
// record the sender of the frame has committed to its Rx, which is what
// Flush waits for. A connection opens with a hello each way (magic,
// version, the endpoint's incarnation, what it has received and sent), so
// a reconnection resumes the numbering, records lost in the drop are
// counted rather than duplicated, and a restarted peer is told apart from
// a reconnected one. A side that has sent nothing for Heartbeat sends a
// heartbeat frame if its owner has shown life since the last one (called
// Conn().Beat, as engine.Core does every duty cycle, or Idle, as Serve
// does), so a stalled coordinator falls silent as it would over shared
// memory even though its pumps still run; a peer silent for StaleAfter, a
// closed or reset connection, or a send blocked for WriteTimeout makes
// Alive false. The active side redials until Close; the passive side
// accepts the peer's new connection in place of the old.
//
// UnixFabric runs this protocol over unix-domain sockets.
//
// Records in flight when a connection drops are lost, not retransmitted:
// the protocol already survives lost messages (a full ring drops them
// too), and a retransmission buffer would cost a copy of every record.
// TCP's checksum is the only integrity check on the payload.
type TCPFabric struct {
	Options TCPOptions
}

// Listen listens on addr (host:port; port 0 picks one, see Addr) and
// returns the passive endpoint at once. It serves one peer at a time: a
// new connection from the same peer (the active endpoint redialing)
// replaces the current one, and so does another peer's once the current
// one is no longer alive (a backup coordinator after a stalled or lost
// one); while the current peer lives, another is refused and its Dial
// fails with ErrPeerBusy. There is no authentication: listen on loopback
// or a private network.
func (f *TCPFabric) Listen(addr string) (Endpoint, error) {
	e, err := newStreamEndpoint("tcp", f.Options)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp fabric: listen %s: %w", addr, err)
	}
	e.serve(ln, ln.Addr().String())
	return e, nil
}

// Dial connects to the passive endpoint at addr, retrying for
// Options.DialTimeout (but not after a peer that does not speak the
// protocol), and returns once the hellos are exchanged; the endpoint then
// reconnects on its own whenever the connection drops. It fails with
// ErrPeerBusy if the passive end serves another live peer until the
// timeout.
func (f *TCPFabric) Dial(addr string) (Endpoint, error) {
	e, err := newStreamEndpoint("tcp", f.Options)
	if err != nil {
		return nil, err
	}
	return e.dialFirst(addr)
}

// serve starts the passive endpoint's goroutines on ln, whose address the
// peer dials.
func (e *streamEndpoint) serve(ln net.Listener, addr string) {
	e.ln, e.addr = ln, addr
	accepted := make(chan net.Conn)
	e.wg.Add(2)
	go e.accept(accepted)
	go e.manage(accepted, nil)
}

// dialFirst is Dial for every network: it connects to addr, retrying for
// Options.DialTimeout, and starts the active endpoint's session manager.
func (e *streamEndpoint) dialFirst(addr string) (Endpoint, error) {
	e.addr = addr
	deadline := time.Now().Add(e.opts.DialTimeout)
	pause := time.Millisecond
	for {
		// At least lastDial even when a loaded machine's late wakeup has
		// eaten the rest: an attempt with no time left fails at once with a
		// timeout that hides what the earlier attempts met (ErrPeerBusy).
		c, err := e.dial(max(time.Until(deadline), lastDial))
		if err == nil {
			var s *session
			if s, err = e.openActive(c); err == nil {
				e.wg.Add(1)
				go e.manage(nil, s)
				return e, nil
			}
		}
		if errors.Is(err, ErrProtocol) || errors.Is(err, ErrForeignPeer) {
			return nil, fmt.Errorf("%s fabric: dial %s: %w", e.network, addr, err)
		}
		if time.Now().Add(pause).After(deadline) {
			return nil, fmt.Errorf("%s fabric: dial %s: %w", e.network, addr, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, e.opts.Redial)
	}
}

// dial makes one connection to the passive end and checks the peer.
func (e *streamEndpoint) dial(timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout(e.network, e.addr, timeout)
	if err != nil {
		return nil, err
	}
	if err := e.checkPeer(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// checkPeer admits a connection's peer: anyone over TCP (which has no
// credentials to check), only a process of this user over a unix socket.
func (e *streamEndpoint) checkPeer(c net.Conn) error {
	if e.network != "unix" {
		return nil
	}
	return checkUnixPeer(c)
}

// Frame layout and kinds.
const (
	frameHeader  = 24
	maxFrameLen  = 1 << 20
	helloLen     = 40
	frameHello   = 1
	frameData    = 2
	frameBeat    = 3
	flagAckReq   = 1 // on a heartbeat: acknowledge at once
	flagBusy     = 1 // on a hello: refused, another peer is served
	wireVersion  = 1
	helloMagic   = 0x3142_4146_4343_4343 // "CCCCFAB1"
	writeBatch   = 64 << 10
	idleParkTime = 100 * time.Microsecond
	lastDial     = 20 * time.Millisecond // the least time a first Dial gives a connection attempt
)

// epoch is the origin of the endpoints' monotonic timestamps.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// streamEndpoint is an endpoint of TCPFabric or UnixFabric: the same
// protocol over a stream socket of network "tcp" or "unix".
type streamEndpoint struct {
	opts    TCPOptions
	network string
	addr    string
	ln      net.Listener
	conn    *engine.Conn
	tx, rx  *ringbuf.SPSC
	txBell  *ringbuf.Doorbell // the sender parks here; Tx rings it
	idle    ringbuf.SpinPark  // Idle's, on conn.Bell
	inc     uint64            // this endpoint's incarnation

	done   chan struct{} // closed by Close
	closed atomic.Bool
	wg     sync.WaitGroup

	mu  sync.Mutex
	cur *session // the running session, if any

	connected atomic.Bool
	lastRecv  atomic.Int64  // nanotime of the last frame or local stall
	taken     atomic.Uint64 // sequence number of the last record taken from Tx
	acked     atomic.Uint64 // the peer's acknowledgement of our records
	lostUpTo  atomic.Uint64 // records up to here that are not acked were lost
	recvd     atomic.Uint64 // sequence number of the last record committed to Rx
	peerInc   atomic.Uint64 // incarnation recvd belongs to
	beats     atomic.Uint64 // the owner's signs of life: Conn().Beat, Idle
	idleCalls uint64        // Idle's, to beat every 8th call
	ackReq    atomic.Bool   // Flush wants a prompt acknowledgement
	ackNow    atomic.Bool   // the peer wants one
	lost      atomic.Uint64
	drops     atomic.Uint64
	flushed   uint64 // Flush's: records up to here are settled, delivered or reported lost

	// pauseUntil (nanotime) stops the receiver from reading the socket:
	// for fault tests of a peer that stops reading.
	pauseUntil atomic.Int64

	// Sender and receiver state, reused by every session (sessions never
	// overlap).
	wbuf []byte
	hdr  [frameHeader]byte
	br   *bufio.Reader
}

func newStreamEndpoint(network string, o TCPOptions) (*streamEndpoint, error) {
	o, err := o.withDefaults(network)
	if err != nil {
		return nil, err
	}
	conn, err := newHeapConn(o.RingCapacity)
	if err != nil {
		return nil, fmt.Errorf("%s fabric: %w", network, err)
	}
	e := &streamEndpoint{
		opts:    o,
		network: network,
		conn:    conn.Conn,
		tx:      conn.Tx,
		rx:      conn.Rx,
		txBell:  conn.txBell,
		inc:     rand.Uint64() | 1,
		done:    make(chan struct{}),
		wbuf:    make([]byte, 0, writeBatch+frameHeader+o.MaxRecord),
		br:      bufio.NewReaderSize(nil, max(64<<10, frameHeader+o.MaxRecord)),
	}
	e.conn.Alive = e.alive
	e.conn.Beat = e.beat
	e.idle = ringbuf.SpinPark{Bell: e.conn.Bell, ParkTimeout: idleParkTime}
	return e, nil
}

// heapConn is an engine.Conn over two heap rings whose far ends this
// package's pumps serve, with the doorbell the Tx pump parks on.
type heapConn struct {
	*engine.Conn
	txBell *ringbuf.Doorbell
}

func newHeapConn(capacity int) (heapConn, error) {
	ring := func() (*ringbuf.SPSC, error) {
		return ringbuf.NewSPSC(ringbuf.AlignedBytes(ringbuf.SPSCSize(capacity)))
	}
	tx, err := ring()
	if err != nil {
		return heapConn{}, err
	}
	rx, err := ring()
	if err != nil {
		return heapConn{}, err
	}
	bells := ringbuf.AlignedBytes(2 * ringbuf.DoorbellSize)
	rxBell, err := ringbuf.NewDoorbell(bells[:ringbuf.DoorbellSize])
	if err != nil {
		return heapConn{}, err
	}
	txBell, err := ringbuf.NewDoorbell(bells[ringbuf.DoorbellSize:])
	if err != nil {
		return heapConn{}, err
	}
	tx.SetDoorbell(txBell)
	rx.SetDoorbell(rxBell)
	return heapConn{Conn: &engine.Conn{Tx: tx, Rx: rx, Bell: rxBell}, txBell: txBell}, nil
}

func (e *streamEndpoint) Conn() *engine.Conn { return e.conn }

func (e *streamEndpoint) Addr() string { return e.addr }

// alive is the failure detector: connected, and the peer heard from (or
// our receiver stalled on our own full Rx) within StaleAfter.
func (e *streamEndpoint) alive() bool {
	return e.connected.Load() && nanotime()-e.lastRecv.Load() < int64(e.opts.StaleAfter)
}

// Stats are an endpoint's running totals.
type Stats struct {
	// Sent is the sequence number of the last record taken from Tx, Acked
	// the last the peer has confirmed in its ring.
	Sent, Acked uint64
	// Lost counts records lost in connection drops.
	Lost uint64
	// Drops counts connections that ended while the endpoint was open.
	Drops uint64
}

// TCPStats returns the totals of an endpoint made by a TCPFabric or a
// UnixFabric (the same protocol), and false for any other endpoint.
func TCPStats(ep Endpoint) (Stats, bool) {
	e, ok := ep.(*streamEndpoint)
	if !ok {
		return Stats{}, false
	}
	return Stats{Sent: e.taken.Load(), Acked: e.acked.Load(), Lost: e.lost.Load(), Drops: e.drops.Load()}, true
}

// beat records that the endpoint's owner lives; the next heartbeat says so.
func (e *streamEndpoint) beat() { e.beats.Add(1) }

func (e *streamEndpoint) Idle(work int) error {
	if e.closed.Load() {
		return fmt.Errorf("%s fabric: idle %s: %w", e.network, e.addr, ErrClosed)
	}
	if e.idleCalls++; e.idleCalls&7 == 0 { // a locked add per call would slow the spin
		e.beat()
	}
	e.idle.Idle(work)
	return nil
}

func (e *streamEndpoint) Flush(timeout time.Duration) error {
	if e.closed.Load() {
		return fmt.Errorf("%s fabric: flush %s: %w", e.network, e.addr, ErrClosed)
	}
	deadline := nanotime() + int64(timeout)
	var b backoff
	for e.tx.Len() > 0 { // not all taken by the sender yet
		if err := e.flushWait(&b, deadline); err != nil {
			return err
		}
	}
	target := e.taken.Load()
	if e.acked.Load() < target {
		e.ackReq.Store(true)
		e.txBell.Ring()
	}
	for {
		// The acknowledgement is no proof of delivery on its own: after a
		// drop the peer resumes after the records it lost, so its
		// acknowledgements on the new connection cover them. Loading
		// acked before lostUpTo sees every loss such an acknowledgement
		// covers, as reconcile stores lostUpTo before the new session's
		// receiver starts.
		acked := e.acked.Load()
		lostUpTo := e.lostUpTo.Load()
		if acked < target && lostUpTo < target {
			if err := e.flushWait(&b, deadline); err != nil {
				return err
			}
			continue
		}
		// Every record up to target is now in the peer's ring or lost;
		// one of them was lost if the last loss is past the last flush.
		from := e.flushed + 1
		e.flushed = target
		if lostUpTo >= from {
			return fmt.Errorf("%s fabric: flush %s: some of records %d to %d: %w", e.network, e.addr, from, target, ErrLost)
		}
		return nil
	}
}

func (e *streamEndpoint) flushWait(b *backoff, deadline int64) error {
	if e.closed.Load() {
		return fmt.Errorf("%s fabric: flush %s: %w", e.network, e.addr, ErrClosed)
	}
	if nanotime() > deadline {
		return fmt.Errorf("%s fabric: flush %s: %d records sent, %d acknowledged: %w", e.network, e.addr, e.taken.Load(), e.acked.Load(), ErrTimeout)
	}
	b.wait()
	return nil
}

// backoff paces a wait: a short spin, then yields, then sleeps of at most
// 100 µs.
type backoff struct{ n int }

func (b *backoff) wait() {
	b.n++
	switch {
	case b.n <= 50:
	case b.n <= 100:
		runtime.Gosched()
	default:
		time.Sleep(min(time.Duration(b.n-100)*time.Microsecond, 100*time.Microsecond))
	}
}

func (e *streamEndpoint) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	close(e.done)
	var err error
	if e.ln != nil {
		err = e.ln.Close()
	}
	e.mu.Lock()
	if e.cur != nil {
		e.cur.kill()
	}
	e.mu.Unlock()
	e.txBell.Ring()
	e.wg.Wait()
	e.idle.Reset()
	if err != nil {
		return fmt.Errorf("%s fabric: close %s: %w", e.network, e.addr, err)
	}
	return nil
}

// reset drops the current connection with a TCP reset (the peer may see
// the end of the stream first; a unix socket has no reset, its peer sees
// the end), as a crash or a network fault would: for fault tests.
func (e *streamEndpoint) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.cur; s != nil && !s.dead.Swap(true) {
		unix.SetsockoptLinger(s.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Shutdown(s.fd, unix.SHUT_RD) // wakes the receiver; the close after the pumps end sends the reset
		e.txBell.Ring()
	}
}

// accept hands the listener's connections to manage until Close.
func (e *streamEndpoint) accept(out chan<- net.Conn) {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if e.closed.Load() {
				return
			}
			time.Sleep(time.Millisecond) // out of descriptors, say: retry
			continue
		}
		if e.checkPeer(c) != nil {
			c.Close()
			continue
		}
		select {
		case out <- c:
		case <-e.done:
			c.Close()
			return
		}
	}
}

// manage runs one session at a time until Close: the passive side starts
// one per accepted connection (a new one replaces the current), the
// active side (accepted nil) redials whenever it has none.
func (e *streamEndpoint) manage(accepted <-chan net.Conn, s *session) {
	defer e.wg.Done()
	defer func() {
		if s != nil {
			s.kill()
			<-s.ended
		}
	}()
	pause := time.Millisecond
	for {
		if s == nil && accepted == nil {
			select {
			case <-e.done:
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, e.opts.Redial)
			if c, err := e.dial(e.opts.Redial); err == nil {
				if s, _ = e.openActive(c); s != nil {
					pause = time.Millisecond
				}
			}
			continue
		}
		var ended <-chan struct{}
		if s != nil {
			ended = s.ended
		}
		select {
		case <-e.done:
			return
		case c := <-accepted:
			s = e.acceptPeer(c, s)
		case <-ended:
			s = nil
		}
	}
}

// session is one connection's pair of pumps. They use the socket through
// blocking system calls, not through Go's network poller: a goroutine
// blocked in read(2) or futex(2) keeps its thread, which the kernel wakes
// the moment data or a doorbell arrives, while a goroutine parked in the
// poller waits for a thread to poll it, which on two cores kept busy by
// spinning agents took milliseconds (the Go scheduler polls the network
// only when it runs out of goroutines, or every 10 ms). They are not
// locked to their threads: with more threads than cores, handing a locked
// thread its goroutine back doubled the round trip in
// BenchmarkFabricTCPPingPong.
type session struct {
	e     *streamEndpoint
	f     *os.File // owns fd
	fd    int
	dead  atomic.Bool
	ended chan struct{}
}

// kill ends the session: shutdown(2) wakes a pump blocked on the socket
// and the doorbell one parked on it.
func (s *session) kill() {
	if !s.dead.Swap(true) {
		unix.Shutdown(s.fd, unix.SHUT_RDWR)
		s.e.txBell.Ring()
	}
}

// fdReader reads a blocking socket.
type fdReader int

func (fd fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(fd), p)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// writeAll writes b to a blocking socket whose send timeout makes a write
// blocked for that long fail with EAGAIN.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// blockingSocket returns a duplicate of c's socket in blocking mode with a
// send timeout; the caller closes c.
func blockingSocket(c net.Conn, sendTimeout time.Duration) (*os.File, int, error) {
	sc, ok := c.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, 0, fmt.Errorf("%T is not a socket connection", c)
	}
	f, err := sc.File()
	if err != nil {
		return nil, 0, err
	}
	fd := int(f.Fd()) // Fd puts the socket in blocking mode
	tv := unix.NsecToTimeval(int64(sendTimeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("set send timeout: %w", err)
	}
	return f, fd, nil
}

// openActive exchanges hellos on c as the active side and starts a
// session, or closes c and returns the error.
func (e *streamEndpoint) openActive(c net.Conn) (*session, error) {
	c.SetDeadline(time.Now().Add(e.opts.DialTimeout))
	err := e.sendHello(c, false)
	var h hello
	if err == nil {
		h, err = readHello(c)
	}
	if err == nil {
		err = e.reconcile(h)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s fabric: %s: %w", e.network, e.addr, err)
	}
	return e.start(c)
}

// acceptPeer reads the hello on a connection the passive side accepted.
// If the current peer lives and this is another (a second coordinator, or
// a stale one redialing after a backup took over), it refuses with a busy
// hello, as a shared-memory link refuses a second opener; otherwise the
// connection replaces the current session. It returns the session running
// afterwards.
func (e *streamEndpoint) acceptPeer(c net.Conn, cur *session) *session {
	c.SetDeadline(time.Now().Add(e.opts.DialTimeout))
	h, err := readHello(c)
	if err != nil {
		c.Close()
		return cur
	}
	if cur != nil && h.inc != e.peerInc.Load() && e.alive() {
		e.sendHello(c, true)
		c.Close()
		return cur
	}
	if cur != nil {
		cur.kill()
		<-cur.ended
	}
	if err = e.sendHello(c, false); err == nil {
		err = e.reconcile(h)
	}
	if err != nil {
		c.Close()
		return nil
	}
	s, _ := e.start(c)
	return s
}

// start runs a session's pumps over c once the hellos are exchanged, or
// closes c and returns the error.
func (e *streamEndpoint) start(c net.Conn) (*session, error) {
	c.SetDeadline(time.Time{})
	f, fd, err := blockingSocket(c, e.opts.WriteTimeout)
	c.Close()
	if err != nil {
		return nil, fmt.Errorf("%s fabric: %s: %w", e.network, e.addr, err)
	}
	s := &session{e: e, f: f, fd: fd, ended: make(chan struct{})}
	e.mu.Lock()
	e.cur = s
	e.mu.Unlock()
	e.lastRecv.Store(nanotime())
	e.connected.Store(true)
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() {
		defer pumps.Done()
		e.send(s)
		s.kill()
	}()
	go func() {
		defer pumps.Done()
		e.receive(s)
		s.kill()
	}()
	go func() {
		pumps.Wait()
		e.connected.Store(false)
		e.mu.Lock()
		e.cur = nil
		e.mu.Unlock()
		s.f.Close()
		if !e.closed.Load() {
			e.drops.Add(1)
		}
		close(s.ended)
	}()
	return s, nil
}

// hello is what each side says first on a new connection.
type hello struct {
	inc     uint64 // the sender's incarnation
	seenInc uint64 // the incarnation whose records recvd counts
	recvd   uint64 // the last record the sender committed to its Rx
	taken   uint64 // the last record the sender took from its Tx
	busy    bool   // a passive end refusing: it serves another live peer
}

func (e *streamEndpoint) sendHello(c net.Conn, busy bool) error {
	var out [frameHeader + helloLen]byte
	var flags uint8
	if busy {
		flags = flagBusy
	}
	putHeader(out[:], helloLen, wireVersion, frameHello, flags, 0, 0)
	p := out[frameHeader:]
	binary.LittleEndian.PutUint64(p[0:], helloMagic)
	binary.LittleEndian.PutUint64(p[8:], e.inc)
	binary.LittleEndian.PutUint64(p[16:], e.peerInc.Load())
	binary.LittleEndian.PutUint64(p[24:], e.recvd.Load())
	binary.LittleEndian.PutUint64(p[32:], e.taken.Load())
	if _, err := c.Write(out[:]); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	return nil
}

func readHello(c net.Conn) (hello, error) {
	var in [frameHeader + helloLen]byte
	if _, err := io.ReadFull(c, in[:]); err != nil {
		return hello{}, fmt.Errorf("read hello: %w", err)
	}
	n, typ, kind, flags, _, _ := getHeader(in[:])
	p := in[frameHeader:]
	if kind != frameHello || n != helloLen || binary.LittleEndian.Uint64(p) != helloMagic {
		return hello{}, fmt.Errorf("%w: not a commitcore fabric hello", ErrProtocol)
	}
	if typ != wireVersion {
		return hello{}, fmt.Errorf("%w: wire version %d, want %d", ErrProtocol, typ, wireVersion)
	}
	h := hello{
		inc:     binary.LittleEndian.Uint64(p[8:]),
		seenInc: binary.LittleEndian.Uint64(p[16:]),
		recvd:   binary.LittleEndian.Uint64(p[24:]),
		taken:   binary.LittleEndian.Uint64(p[32:]),
		busy:    flags&flagBusy != 0,
	}
	if h.busy {
		return h, ErrPeerBusy
	}
	return h, nil
}

// reconcile resumes the sequence numbers after the peer's hello: the
// peer's records we missed in the last drop are skipped (the peer counts
// them lost), ours it missed are counted lost.
func (e *streamEndpoint) reconcile(h hello) error {
	// Our records: what the peer holds, if it is the peer that got them.
	taken := e.taken.Load()
	placed := e.acked.Load()
	if h.seenInc == e.inc {
		if h.recvd > taken {
			return fmt.Errorf("%w: peer has record %d, we sent %d", ErrProtocol, h.recvd, taken)
		}
		placed = max(placed, h.recvd)
		e.acked.Store(placed)
	}
	if from := max(placed, e.lostUpTo.Load()); from < taken {
		e.lost.Add(taken - from) // counted once, however many drops follow
		e.lostUpTo.Store(taken)
	}
	// The peer's records: resume after the last it sent.
	if h.inc != e.peerInc.Load() || e.recvd.Load() < h.taken {
		if h.inc == e.peerInc.Load() && e.recvd.Load() > h.taken {
			return fmt.Errorf("%w: we have record %d, peer sent %d", ErrProtocol, e.recvd.Load(), h.taken)
		}
		e.peerInc.Store(h.inc)
		e.recvd.Store(h.taken)
	}
	return nil
}

func putHeader(b []byte, n int, typ uint16, kind, flags uint8, seq, ack uint64) {
	binary.LittleEndian.PutUint32(b[0:], uint32(n))
	binary.LittleEndian.PutUint16(b[4:], typ)
	b[6], b[7] = kind, flags
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint64(b[16:], ack)
}

func getHeader(b []byte) (n int, typ uint16, kind, flags uint8, seq, ack uint64) {
	return int(binary.LittleEndian.Uint32(b[0:])), binary.LittleEndian.Uint16(b[4:]), b[6], b[7],
		binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:])
}

// send is the sender pump: it takes committed records from Tx in batches,
// frames them and writes each batch with one system call, adding a
// heartbeat when the line has been quiet and an acknowledgement when the
// peer asked for one. It parks on the Tx doorbell when there is nothing
// to send.
func (e *streamEndpoint) send(s *session) {
	park := ringbuf.SpinPark{Bell: e.txBell, ParkTimeout: e.opts.Heartbeat / 2}
	defer park.Reset()
	lastSend, beatSent := nanotime(), e.beats.Load()
	frame := frameHeader + e.opts.MaxRecord
	take := func(typ uint16, p []byte) {
		seq := e.taken.Load() + 1
		i := len(e.wbuf)
		e.wbuf = e.wbuf[:i+frameHeader+len(p)]
		putHeader(e.wbuf[i:], len(p), typ, frameData, 0, seq, e.recvd.Load())
		copy(e.wbuf[i+frameHeader:], p)
		e.taken.Store(seq)
	}
	for !s.dead.Load() {
		e.wbuf = e.wbuf[:0]
		for {
			room := (cap(e.wbuf) - len(e.wbuf) - frameHeader) / frame // leave room for a heartbeat
			if room == 0 {
				break
			}
			n, err := e.tx.Read(room, take)
			if err != nil {
				return // a corrupt local ring: a bug; the session ends
			}
			if n == 0 {
				break
			}
		}
		now := nanotime()
		ackReq := e.ackReq.Swap(false)
		quiet := len(e.wbuf) == 0 && now-lastSend >= int64(e.opts.Heartbeat)
		if beats := e.beats.Load(); ackReq || e.ackNow.Swap(false) || quiet && beats != beatSent {
			beatSent = beats
			var flags uint8
			if ackReq {
				flags = flagAckReq
			}
			i := len(e.wbuf)
			e.wbuf = e.wbuf[:i+frameHeader]
			putHeader(e.wbuf[i:], 0, 0, frameBeat, flags, 0, e.recvd.Load())
		}
		if len(e.wbuf) == 0 {
			park.Idle(0)
			continue
		}
		park.Reset()
		if err := writeAll(s.fd, e.wbuf); err != nil {
			return
		}
		lastSend = now
	}
}

// receive is the receiver pump: it reads frames, checks them, commits
// data records to Rx (one commit per burst read from the socket), tracks
// the peer's acknowledgements and liveness, and answers a request for a
// prompt acknowledgement.
func (e *streamEndpoint) receive(s *session) {
	br := e.br
	br.Reset(fdReader(s.fd))
	defer br.Reset(nil)
	pending := uint64(0) // last record claimed and not yet committed
	commit := func() {
		if pending != 0 {
			e.rx.Commit()
			e.recvd.Store(pending)
			pending = 0
		}
	}
	defer commit()
	for !s.dead.Load() {
		if br.Buffered() < frameHeader {
			commit()
			if until := e.pauseUntil.Load(); until != 0 {
				for nanotime() < until && !s.dead.Load() {
					time.Sleep(time.Millisecond)
				}
			}
		}
		if _, err := io.ReadFull(br, e.hdr[:]); err != nil {
			return
		}
		e.lastRecv.Store(nanotime())
		n, typ, kind, flags, seq, ack := getHeader(e.hdr[:])
		if ack > e.taken.Load() {
			return // the peer acknowledges records we never sent
		}
		if ack > e.acked.Load() {
			e.acked.Store(ack)
		}
		switch kind {
		case frameBeat:
			if n != 0 {
				return
			}
		case frameData:
			last := pending
			if last == 0 {
				last = e.recvd.Load()
			}
			if n > e.opts.MaxRecord || seq != last+1 {
				return // oversized, repeated or missing: not a correct peer
			}
			// The whole payload is buffered before it is claimed, so a
			// connection that drops mid-record leaves nothing half
			// written in Rx.
			src, err := br.Peek(n)
			if err != nil {
				return
			}
			p, err := e.claim(s, typ, n, commit)
			if err != nil {
				return
			}
			copy(p, src)
			br.Discard(n)
			pending = seq
		default:
			return
		}
		if flags&flagAckReq != 0 {
			commit()
			e.ackNow.Store(true)
			e.txBell.Ring()
		}
	}
}

// claim reserves room in Rx for an n-byte record, committing what is
// pending and waiting while the local reader has not made room: our own
// stall, so the peer counts as heard from meanwhile.
func (e *streamEndpoint) claim(s *session, typ uint16, n int, commit func()) ([]byte, error) {
	var b backoff
	for {
		p, err := e.rx.Claim(typ, n)
		if !errors.Is(err, ringbuf.ErrFull) {
			return p, err
		}
		commit()
		if s.dead.Load() {
			return nil, ErrClosed
		}
		e.lastRecv.Store(nanotime())
		b.wait()
	}
}
