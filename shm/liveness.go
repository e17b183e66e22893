package shm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// DefaultStaleAfter is the default Options.StaleAfter. It is a
	// suspicion threshold for a stopped or hung peer, not the death
	// detector: a preempted peer on a busy 2-core machine can miss a few
	// milliseconds of heartbeats. Death is detected from the pid at once.
	DefaultStaleAfter = 20 * time.Millisecond
	// DefaultCheckEvery is the default Options.CheckEvery: a waiting Link
	// notices a SIGKILLed peer within about this long.
	DefaultCheckEvery = 200 * time.Microsecond
)

// PeerState is what a Peer watcher knows of the process in a liveness slot.
type PeerState uint8

// Peer states.
const (
	// PeerAbsent: nobody holds the slot (never attached, or detached).
	PeerAbsent PeerState = iota
	// PeerAlive: the holder runs and its heartbeat moves (or it is parked).
	PeerAlive
	// PeerStale: the holder's process exists, is not parked, and its
	// heartbeat has not moved for StaleAfter: stopped, hung or starved.
	// Treat it as a suspicion; it may recover.
	PeerStale
	// PeerDead: the holder's process has exited (including as an unreaped
	// zombie) or its pid now names another process.
	PeerDead
)

func (s PeerState) String() string {
	switch s {
	case PeerAbsent:
		return "absent"
	case PeerAlive:
		return "alive"
	case PeerStale:
		return "stale"
	case PeerDead:
		return "dead"
	}
	return "PeerState(" + strconv.Itoa(int(s)) + ")"
}

// An identity names one process for its whole life: its pid in the low
// pidBits and its start time (clock ticks after boot, field 22 of
// /proc/<pid>/stat) above, so a reused pid never matches. 0 names nobody.
func identPID(id uint64) int { return int(id & maxPID) }

var self struct {
	once  sync.Once
	ident uint64
	err   error
}

// selfIdent returns this process's identity.
func selfIdent() (uint64, error) {
	self.once.Do(func() {
		pid := os.Getpid()
		_, start, err := procStat(pid)
		if err != nil {
			self.err = fmt.Errorf("read own start time: %w", err)
			return
		}
		self.ident = start<<pidBits | uint64(pid)
	})
	return self.ident, self.err
}

// procStat reads the state letter and start time of pid from
// /proc/<pid>/stat. A missing process is an error wrapping os.ErrNotExist.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// "pid (comm) S ppid ...": comm may hold spaces and parentheses, so
	// the fields start after the last ')'. State is field 3, start time
	// field 22.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	start, err = strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat start time: %w", pid, err)
	}
	return f[0][0], start, nil
}

// identAlive reports whether the process named by id is running: it exists,
// is neither a zombie nor dead, and started when id says.
func identAlive(id uint64) bool {
	if id == 0 {
		return false
	}
	state, start, err := procStat(identPID(id))
	if err != nil {
		// Gone (ENOENT/ESRCH), or unreadable: an unreadable /proc entry
		// of a live process does not happen for our own uid.
		return false
	}
	return state != 'Z' && state != 'X' && start == id>>pidBits
}

// Slot is this process's hold on one liveness slot of a segment: its
// identity is published there, and it bumps the slot's heartbeat.
type Slot struct {
	seg   *Segment
	i     int
	mem   []byte
	ident uint64
}

// Attach publishes this process in liveness slot i (0 ≤ i < MaxSlots). A slot
// held by a live process is refused with ErrSlotBusy; a slot whose holder
// died is taken over.
func (s *Segment) Attach(i int) (*Slot, error) {
	if i < 0 || i >= MaxSlots {
		return nil, fmt.Errorf("shm: attach %s: slot %d out of range [0, %d)", s.path, i, MaxSlots)
	}
	me, err := selfIdent()
	if err != nil {
		return nil, fmt.Errorf("shm: attach %s: %w", s.path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem == nil {
		return nil, fmt.Errorf("shm: attach %s: segment is closed", s.path)
	}
	mem := s.mem[offSlots+i*SlotSize : offSlots+(i+1)*SlotSize]
	w := word64(mem, slotIdent)
	for {
		cur := w.Load()
		if cur == me || (cur != 0 && identAlive(cur)) {
			return nil, refuse("attach", s.path, ErrSlotBusy, "slot %d is held by pid %d", i, identPID(cur))
		}
		if w.CompareAndSwap(cur, me) {
			break
		}
	}
	word32(mem, slotFlags).Store(0)
	word64(mem, slotAttached).Store(uint64(time.Now().UnixNano()))
	word64(mem, slotHeartbeat).Add(1)
	sl := &Slot{seg: s, i: i, mem: mem, ident: me}
	s.slots[i] = sl
	return sl, nil
}

// Index returns the slot's index.
func (sl *Slot) Index() int { return sl.i }

// Beat bumps the heartbeat. An attached process that is not parked must beat
// at least every StaleAfter/2 (a Link's waits beat for it); one atomic add.
func (sl *Slot) Beat() { word64(sl.mem, slotHeartbeat).Add(1) }

// SetParked publishes that this process is about to block (true) or has
// woken (false). While parked, watchers do not judge it by its heartbeat;
// they still check its pid.
func (sl *Slot) SetParked(parked bool) {
	f := word32(sl.mem, slotFlags)
	if parked {
		f.Store(flagParked)
		return
	}
	f.Store(0)
	sl.Beat()
}

// Detach withdraws this process from the slot. Watchers then see
// PeerAbsent. Detaching twice is harmless.
func (sl *Slot) Detach() {
	sl.seg.mu.Lock()
	defer sl.seg.mu.Unlock()
	if sl.seg.mem != nil {
		sl.detachLocked()
	}
}

func (sl *Slot) detachLocked() {
	if sl.seg.slots[sl.i] != sl {
		return
	}
	sl.seg.slots[sl.i] = nil
	word32(sl.mem, slotFlags).Store(0)
	word64(sl.mem, slotIdent).CompareAndSwap(sl.ident, 0)
}

// Peer watches one liveness slot from another process (or goroutine). It
// holds a pidfd on the slot's holder, so a check costs one non-blocking
// poll and sees a zombie as dead. A Peer is used by one goroutine at a time.
type Peer struct {
	seg        *Segment
	mem        []byte
	staleAfter time.Duration

	ident    uint64
	dead     bool
	pidfd    int // -1 when none; then /proc is read on every check
	fds      [1]unix.PollFd
	beat     uint64
	lastMove time.Time
}

// Watch returns a watcher of liveness slot i. Close it when done.
func (s *Segment) Watch(i int) (*Peer, error) {
	if i < 0 || i >= MaxSlots {
		return nil, fmt.Errorf("shm: watch %s: slot %d out of range [0, %d)", s.path, i, MaxSlots)
	}
	p := &Peer{
		seg:        s,
		mem:        s.mem[offSlots+i*SlotSize : offSlots+(i+1)*SlotSize],
		staleAfter: s.opts.StaleAfter,
		pidfd:      -1,
	}
	if p.staleAfter <= 0 {
		p.staleAfter = DefaultStaleAfter
	}
	return p, nil
}

// PID returns the pid of the slot's holder as last seen, or 0.
func (p *Peer) PID() int { return identPID(p.ident) }

// Alive reports whether the slot's holder is running and not stale.
func (p *Peer) Alive() bool { return p.State() == PeerAlive }

// State checks the slot's holder: its identity, its process, its heartbeat.
// It does not allocate; with a pidfd it makes one poll system call.
func (p *Peer) State() PeerState {
	id := word64(p.mem, slotIdent).Load()
	if id == 0 {
		p.release()
		return PeerAbsent
	}
	now := time.Now()
	if id != p.ident {
		p.resolve(id, now)
	}
	if p.dead {
		return PeerDead
	}
	if p.pidfd >= 0 {
		n, err := unix.Poll(p.fds[:], 0)
		if err == nil && n > 0 {
			p.dead = true
			return PeerDead
		}
	} else if !identAlive(id) {
		p.dead = true
		return PeerDead
	}
	beat := word64(p.mem, slotHeartbeat).Load()
	if beat != p.beat || word32(p.mem, slotFlags).Load()&flagParked != 0 {
		p.beat, p.lastMove = beat, now
		return PeerAlive
	}
	if now.Sub(p.lastMove) > p.staleAfter {
		return PeerStale
	}
	return PeerAlive
}

// resolve starts watching a new holder: it opens a pidfd on the pid and
// then checks that the pid still names the process of that identity, so a
// reused pid is never mistaken for the holder.
func (p *Peer) resolve(id uint64, now time.Time) {
	p.release()
	p.ident = id
	p.beat = word64(p.mem, slotHeartbeat).Load()
	p.lastMove = now
	fd, err := unix.PidfdOpen(identPID(id), 0)
	switch {
	case err == nil:
		p.pidfd = fd
		p.fds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	case errors.Is(err, unix.ESRCH):
		p.dead = true
		return
	}
	// ENOSYS or EPERM leave pidfd at -1: State then reads /proc each time.
	if !identAlive(id) {
		p.dead = true
	}
}

func (p *Peer) release() {
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
	}
	p.ident, p.dead, p.pidfd = 0, false, -1
}

// Close releases the watcher's pidfd.
func (p *Peer) Close() error {
	p.release()
	return nil
}
