package shm

import (
	"errors"
	"fmt"
	"time"

	"github.com/commitcore/commitcore/ringbuf"
)

// Region kinds of a link segment.
const (
	// KindRingCreatorToOpener is the ring the creating side writes.
	KindRingCreatorToOpener uint32 = 1
	// KindRingOpenerToCreator is the ring the opening side writes.
	KindRingOpenerToCreator uint32 = 2
	// KindDoorbells holds the creator's doorbell, then the opener's.
	KindDoorbells uint32 = 3

	// SlotCreator and SlotOpener are the liveness slots of a link's sides.
	SlotCreator = 0
	SlotOpener  = 1
)

// Errors a Link's Idle returns when its peer is gone.
var (
	// ErrPeerDead: the peer's process exited or was killed. The link's
	// rings may hold a half-written batch; the segment can be removed
	// (Close, Unlink, or CleanStale once both sides are gone) and recreated.
	ErrPeerDead = errors.New("link peer died")
	// ErrPeerClosed: the peer detached cleanly (Close) after having been
	// attached.
	ErrPeerClosed = errors.New("link peer closed the link")
)

// IdleKind selects how a Link waits when there is nothing to do.
type IdleKind uint8

const (
	// SpinThenPark spins briefly, yields, then parks on the side's doorbell
	// (futex) with a timeout of CheckEvery. The default: it cannot livelock
	// when more processes than cores share the machine.
	SpinThenPark IdleKind = iota
	// BusySpin polls without pause: lowest latency, a whole core burnt.
	// Use it only with a core per spinning process. After busySpinLimit
	// (20,000) idle calls in a row it yields the processor on each further
	// idle call, so a peer that the scheduler preempted on a shared core
	// gets it back; a peer that runs answers long before that.
	BusySpin
)

// busySpinLimit is the number of consecutive idle calls a BusySpin link
// spins before it starts yielding: tens of microseconds, far above a
// round trip to a running peer. ringbuf's and this package's floor
// benchmarks bound their spin the same way.
const busySpinLimit = 20_000

// idleCheckMask sets how many idle calls pass between clock reads for the
// periodic peer check: 64, so the clock costs < 1 ns per idle call.
const idleCheckMask = 63

// Link is one side of a duplex link: two SPSC rings in one segment, one each
// way, the doorbell each side parks on, and each side's liveness slot. The
// creating side makes it with CreateLink, the other side attaches with
// OpenLink; Tx and Rx then give this side's rings. Each ring has one user
// at a time: one goroutine may write Tx while another reads Rx and calls
// Idle (Idle belongs with Rx: it parks on the doorbell Rx's producer rings).
type Link struct {
	seg      *Segment
	tx, rx   *ringbuf.SPSC
	bell     *ringbuf.Doorbell // this side's: the peer's Tx rings it
	slot     *Slot
	peer     *Peer
	kind     IdleKind
	park     ringbuf.SpinPark
	spin     ringbuf.SpinYield // BusySpin's bounded spin
	every    time.Duration
	calls    uint64 // Idle calls: paces beats and peer checks
	idle     int
	parked   bool
	lastSeen bool // the peer has been seen attached
	checked  time.Time
}

// LinkSize returns the size of the segment of a link whose rings have data
// regions of capacity bytes (a power of two, see ringbuf.SPSCSize).
func LinkSize(capacity int) int {
	return HeaderSize + 2*alignUp(ringbuf.SPSCSize(capacity)) + 2*ringbuf.DoorbellSize
}

func linkRegions(capacity int) []RegionSpec {
	return []RegionSpec{
		{Kind: KindRingCreatorToOpener, Len: ringbuf.SPSCSize(capacity)},
		{Kind: KindRingOpenerToCreator, Len: ringbuf.SPSCSize(capacity)},
		{Kind: KindDoorbells, Len: 2 * ringbuf.DoorbellSize},
	}
}

// CreateLink creates the segment of a new link named name in opts.Dir, with
// rings of capacity data bytes each way (a power of two between
// ringbuf.MinCapacity and ringbuf.MaxCapacity), and attaches this process
// as the creating side.
func CreateLink(name string, capacity int, opts *Options) (*Link, error) {
	if err := checkCapacity(capacity); err != nil {
		return nil, fmt.Errorf("shm: create link %q: %w", name, err)
	}
	seg, err := Create(name, linkRegions(capacity), opts)
	if err != nil {
		return nil, err
	}
	l, err := newLink(seg, true, true)
	if err != nil {
		seg.Close()
		seg.Unlink()
		return nil, err
	}
	return l, nil
}

// ReopenLink attaches this process as the creating side of the existing
// link named name, after validating it as OpenLink does. It is how a
// restarted component takes back the link its dead predecessor created: the
// rings keep their contents and cursors, so the peer on the other side
// carries on without reconnecting. It fails with ErrSlotBusy while the
// creating side's process still lives.
func ReopenLink(name string, capacity int, opts *Options) (*Link, error) {
	return openLink("reopen link", name, capacity, opts, true)
}

// OpenLink attaches this process as the opening side of the link named name,
// after validating the segment (see Open) and its layout: the link's three
// regions, rings of capacity data bytes (0 accepts the creator's capacity)
// and valid ring control blocks. It fails with ErrSlotBusy while another
// live process holds the opening side.
func OpenLink(name string, capacity int, opts *Options) (*Link, error) {
	return openLink("open link", name, capacity, opts, false)
}

func openLink(op, name string, capacity int, opts *Options, creator bool) (*Link, error) {
	if capacity != 0 {
		if err := checkCapacity(capacity); err != nil {
			return nil, fmt.Errorf("shm: %s %q: %w", op, name, err)
		}
	}
	seg, err := Open(name, opts)
	if err != nil {
		return nil, err
	}
	if err := checkLinkLayout(seg, capacity); err != nil {
		seg.Close()
		return nil, err
	}
	l, err := newLink(seg, creator, false)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return l, nil
}

func checkCapacity(capacity int) error {
	if capacity < ringbuf.MinCapacity || capacity > ringbuf.MaxCapacity || capacity&(capacity-1) != 0 {
		return fmt.Errorf("ring capacity %d: want a power of two in [%d, %d]: %w", capacity, ringbuf.MinCapacity, ringbuf.MaxCapacity, ErrLayout)
	}
	return nil
}

// checkLinkLayout checks that seg is laid out as a link with rings of
// capacity bytes (any valid capacity if 0).
func checkLinkLayout(seg *Segment, capacity int) error {
	rs := seg.hdr.regions
	if len(rs) != 3 || rs[0].Kind != KindRingCreatorToOpener || rs[1].Kind != KindRingOpenerToCreator || rs[2].Kind != KindDoorbells {
		return refuse("open link", seg.path, ErrLayout, "region table %v is not a link's (kinds 1, 2, 3)", rs)
	}
	if rs[0].Len != rs[1].Len || rs[2].Len != 2*ringbuf.DoorbellSize {
		return refuse("open link", seg.path, ErrLayout, "region lengths %d, %d, %d are not a link's", rs[0].Len, rs[1].Len, rs[2].Len)
	}
	have := rs[0].Len - ringbuf.ControlSize
	if checkCapacity(have) != nil || capacity != 0 && have != capacity {
		return refuse("open link", seg.path, ErrLayout, "rings of %d bytes, asked for %d", have, capacity)
	}
	return nil
}

// newLink builds this side's view of a link segment and attaches to its
// liveness slot; fresh initialises the rings of a segment just created.
func newLink(seg *Segment, creator, fresh bool) (*Link, error) {
	op, ringOf := "open link", ringbuf.AttachSPSC
	if fresh {
		op, ringOf = "create link", ringbuf.NewSPSC
	}
	a, err := ringOf(seg.Region(0))
	if err != nil {
		return nil, &Error{Op: op, Path: seg.path, Kind: ErrLayout, Detail: "ring creator→opener", Err: err}
	}
	b, err := ringOf(seg.Region(1))
	if err != nil {
		return nil, &Error{Op: op, Path: seg.path, Kind: ErrLayout, Detail: "ring opener→creator", Err: err}
	}
	bells := seg.Region(2)
	creatorBell, err := ringbuf.NewDoorbell(bells[:ringbuf.DoorbellSize])
	if err != nil {
		return nil, fmt.Errorf("shm: %s %s: %w", op, seg.path, err)
	}
	openerBell, err := ringbuf.NewDoorbell(bells[ringbuf.DoorbellSize:])
	if err != nil {
		return nil, fmt.Errorf("shm: %s %s: %w", op, seg.path, err)
	}
	l := &Link{seg: seg, kind: seg.opts.Idle, every: seg.opts.CheckEvery}
	if l.every <= 0 {
		l.every = DefaultCheckEvery
	}
	mine, theirs := SlotOpener, SlotCreator
	l.tx, l.rx, l.bell = b, a, openerBell
	b.SetDoorbell(creatorBell)
	if creator {
		mine, theirs = SlotCreator, SlotOpener
		l.tx, l.rx, l.bell = a, b, creatorBell
		a.SetDoorbell(openerBell)
	}
	l.park = ringbuf.SpinPark{Bell: l.bell, ParkTimeout: l.every}
	l.spin = ringbuf.SpinYield{Spins: busySpinLimit}
	if l.slot, err = seg.Attach(mine); err != nil {
		return nil, err
	}
	if l.peer, err = seg.Watch(theirs); err != nil {
		l.slot.Detach()
		return nil, err
	}
	return l, nil
}

// Tx returns the ring this side writes. Records written there (and
// committed) ring the peer's doorbell.
func (l *Link) Tx() *ringbuf.SPSC { return l.tx }

// Rx returns the ring this side reads.
func (l *Link) Rx() *ringbuf.SPSC { return l.rx }

// Doorbell returns the doorbell this side parks on; the peer's Tx rings it.
func (l *Link) Doorbell() *ringbuf.Doorbell { return l.bell }

// Segment returns the link's segment.
func (l *Link) Segment() *Segment { return l.seg }

// Slot returns this side's liveness slot.
func (l *Link) Slot() *Slot { return l.slot }

// PeerState checks the other side now (see Peer.State).
func (l *Link) PeerState() PeerState { return l.peer.State() }

// PeerAlive reports whether the other side is attached, running and not
// stale.
func (l *Link) PeerAlive() bool { return l.peer.State() == PeerAlive }

// PeerPID returns the pid of the other side as last seen, or 0.
func (l *Link) PeerPID() int { return l.peer.PID() }

// Idle paces this side's duty cycle: call it after each pass over Rx (and
// whatever else the agent polls) with the work done. It beats the heartbeat
// every 8th call (a locked instruction per call would slow the spin), so a
// duty cycle must take less than StaleAfter/8. After work it does nothing
// more. Without work it spins (BusySpin, yielding once it has spun 20,000
// calls in a row) or spins, yields and parks on this side's doorbell
// (SpinThenPark), publishing the parked flag first. Every Options.CheckEvery, parked or not, it checks the peer and
// returns an error wrapping ErrPeerDead or ErrPeerClosed when it is gone;
// otherwise nil. Records the peer committed before it closed or died are
// still in Rx: drain it if they matter. It does not allocate.
func (l *Link) Idle(work int) error {
	l.calls++
	if l.calls&7 == 0 {
		l.slot.Beat()
	}
	if work > 0 {
		l.idle = 0
		if l.parked {
			l.slot.SetParked(false)
			l.parked = false
		}
		l.park.Reset()
		l.spin.Reset()
		return nil
	}
	l.idle++
	if l.parked || l.calls&idleCheckMask == 0 {
		if now := time.Now(); now.Sub(l.checked) >= l.every {
			l.checked = now
			if err := l.checkPeer(); err != nil {
				return err
			}
		}
	}
	if l.kind == BusySpin {
		l.spin.Idle(0)
		return nil
	}
	// ringbuf.SpinPark spins for DefaultSpins idle calls before it yields
	// and later parks; past that point this side may block at any call, so
	// it is marked parked and watchers stop judging it by its heartbeat.
	if !l.parked && l.idle > ringbuf.DefaultSpins {
		l.slot.SetParked(true)
		l.parked = true
	}
	l.park.Idle(0)
	return nil
}

// checkPeer turns the peer's state into Idle's error.
func (l *Link) checkPeer() error {
	switch l.peer.State() {
	case PeerDead:
		return fmt.Errorf("shm: link %s: pid %d: %w", l.seg.name, l.peer.PID(), ErrPeerDead)
	case PeerAbsent:
		if l.lastSeen {
			return fmt.Errorf("shm: link %s: %w", l.seg.name, ErrPeerClosed)
		}
	default:
		l.lastSeen = true
	}
	return nil
}

// Close detaches this side (the peer then sees PeerAbsent) and unmaps the
// segment. The rings must not be used after Close. It does not remove the
// file: the creating side calls Unlink when both sides are done.
func (l *Link) Close() error {
	l.park.Reset()
	l.peer.Close()
	return l.seg.Close()
}

// Unlink removes the link's segment file (see Segment.Unlink).
func (l *Link) Unlink() error { return l.seg.Unlink() }
