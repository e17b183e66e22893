package shm

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitState polls p until it reports want, for at most a few seconds, and
// returns how long that took.
func waitState(t *testing.T, p *Peer, want PeerState) time.Duration {
	t.Helper()
	start := time.Now()
	for p.State() != want {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("peer state %v after %v, want %v", p.State(), time.Since(start), want)
		}
	}
	return time.Since(start)
}

// TestPeerDetectsKill kills an attached child and checks that the watcher
// calls it dead while it is still an unreaped zombie (kill(pid, 0) would
// still succeed), then that the segment can be removed and recreated.
func TestPeerDetectsKill(t *testing.T) {
	dir := testDir(t)
	opts := &Options{Dir: dir}
	s, err := Create("kill", testRegions, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := startChild(t, "attach", "SHM_TEST_DIR="+dir, "SHM_TEST_NAME=kill", "SHM_TEST_SLOT=1")
	p, err := s.Watch(1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if st := p.State(); st != PeerAlive {
		t.Fatalf("child state %v, want alive", st)
	}
	if p.PID() != c.cmd.Process.Pid {
		t.Errorf("watched pid %d, child is %d", p.PID(), c.cmd.Process.Pid)
	}
	killed := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, PeerDead)
	t.Logf("SIGKILL detected %v after the signal, child not yet reaped", time.Since(killed))
	if err := unix.Kill(c.cmd.Process.Pid, 0); err != nil {
		t.Logf("kill(pid, 0) on the zombie: %v", err)
	}
	c.cmd.Wait()
	if st := p.State(); st != PeerDead {
		t.Errorf("after reaping: %v, want dead", st)
	}

	if err := s.Unlink(); err != nil {
		t.Fatal(err)
	}
	s2, err := Create("kill", testRegions, opts)
	if err != nil {
		t.Fatalf("recreate after the peer died: %v", err)
	}
	s2.Close()
	s2.Unlink()
}

func TestIdentAliveSeesZombie(t *testing.T) {
	dir := testDir(t)
	s, err := Create("z", nil, &Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := startChild(t, "attach", "SHM_TEST_DIR="+dir, "SHM_TEST_NAME=z", "SHM_TEST_SLOT=0")
	id := word64(s.mem, slotField(0, slotIdent)).Load()
	if !identAlive(id) {
		t.Fatal("running child reported dead")
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	for {
		state, _, err := procStat(c.cmd.Process.Pid)
		if err != nil {
			t.Fatalf("zombie vanished before reaping: %v", err)
		}
		if state == 'Z' {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	if err := unix.Kill(c.cmd.Process.Pid, 0); err != nil {
		t.Fatalf("kill(pid, 0) on a zombie: %v; the premise of this test is wrong", err)
	}
	if identAlive(id) {
		t.Error("zombie child reported alive")
	}
	p, _ := s.Watch(0)
	defer p.Close()
	if st := p.State(); st != PeerDead {
		t.Errorf("watcher started on a zombie: %v, want dead", st)
	}
}

func TestPeerStaleParkedDetached(t *testing.T) {
	s, err := Create("stale", nil, &Options{Dir: testDir(t), StaleAfter: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, _ := s.Watch(3)
	defer p.Close()
	if st := p.State(); st != PeerAbsent {
		t.Fatalf("empty slot: %v, want absent", st)
	}
	sl, err := s.Attach(3)
	if err != nil {
		t.Fatal(err)
	}
	if st := p.State(); st != PeerAlive {
		t.Fatalf("attached: %v, want alive", st)
	}
	waitState(t, p, PeerStale)
	sl.Beat()
	if st := p.State(); st != PeerAlive {
		t.Errorf("after a beat: %v, want alive", st)
	}
	sl.SetParked(true)
	for range 3 {
		time.Sleep(2 * time.Millisecond)
		if st := p.State(); st != PeerAlive {
			t.Fatalf("parked without beats: %v, want alive", st)
		}
	}
	sl.SetParked(false)
	if st := p.State(); st != PeerAlive {
		t.Errorf("unparked: %v, want alive", st)
	}
	sl.Detach()
	sl.Detach()
	if st := p.State(); st != PeerAbsent {
		t.Errorf("detached: %v, want absent", st)
	}
	if _, err := s.Attach(3); err != nil {
		t.Errorf("reattach after detach: %v", err)
	}
	if _, err := s.Attach(3); !errors.Is(err, ErrSlotBusy) {
		t.Errorf("second attach to a held slot: %v, want ErrSlotBusy", err)
	}
	for _, i := range []int{-1, MaxSlots} {
		if _, err := s.Attach(i); err == nil {
			t.Errorf("attach slot %d succeeded", i)
		}
		if _, err := s.Watch(i); err == nil {
			t.Errorf("watch slot %d succeeded", i)
		}
	}
}

// TestPidReuse plants this process's pid with another start time in a slot,
// as if the holder died and its pid went to us: the watcher must call the
// holder dead and Attach must take the slot over.
func TestPidReuse(t *testing.T) {
	s, err := Create("reuse", nil, &Options{Dir: testDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	me, err := selfIdent()
	if err != nil {
		t.Fatal(err)
	}
	ghost := (me>>pidBits+1)<<pidBits | me&maxPID
	word64(s.mem, slotField(2, slotIdent)).Store(ghost)
	p, _ := s.Watch(2)
	defer p.Close()
	if st := p.State(); st != PeerDead {
		t.Errorf("holder with a reused pid: %v, want dead", st)
	}
	if _, err := s.Attach(2); err != nil {
		t.Errorf("attach over a dead holder: %v", err)
	}
	if st := p.State(); st != PeerAlive {
		t.Errorf("after takeover: %v, want alive", st)
	}
}

func TestAttachBusyUntilHolderDies(t *testing.T) {
	dir := testDir(t)
	s, err := Create("busy", nil, &Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := startChild(t, "attach", "SHM_TEST_DIR="+dir, "SHM_TEST_NAME=busy", "SHM_TEST_SLOT=1")
	_, err = s.Attach(1)
	if !errors.Is(err, ErrSlotBusy) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("attach to a slot held by a live child: %v, want ErrSlotBusy naming the pid", err)
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
	if _, err := s.Attach(1); err != nil {
		t.Errorf("attach after the holder died: %v", err)
	}
}

func TestCleanStale(t *testing.T) {
	dir := testDir(t)
	opts := &Options{Dir: dir}
	c := startChild(t, "create-own", "SHM_TEST_DIR="+dir, "SHM_TEST_NAME=dead")
	c.cmd.Process.Kill()
	c.cmd.Wait()

	live, err := Create("live", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	old := SegmentPath("old-unfinished", opts)
	fresh := SegmentPath("fresh-unfinished", opts)
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-time.Minute)
	os.Chtimes(old, past, past)
	other := dir + "/not-ours"
	os.WriteFile(other, nil, 0o600)
	corrupt, err := Create("corrupt", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	corrupt.Close()
	put32(offVersion, 9)(t, corrupt.Path())

	removed, err := CleanStale(dir)
	if !errors.Is(err, ErrVersion) {
		t.Errorf("clean error %v, want one naming the corrupt file", err)
	}
	want := map[string]bool{SegmentPath("dead", opts): true, old: true}
	if len(removed) != len(want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	for _, p := range removed {
		if !want[p] {
			t.Errorf("removed %s", p)
		}
	}
	for _, p := range []string{live.Path(), fresh, other, corrupt.Path()} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed", p)
		}
	}
	if _, err := Create("dead", nil, opts); err != nil {
		t.Errorf("recreate after clean: %v", err)
	}
}

// TestPeerStoppedIsStaleNotDead stops an attached child with SIGSTOP: a
// stalled process must look stale (it stopped beating) but never dead, and
// alive again once continued.
func TestPeerStoppedIsStaleNotDead(t *testing.T) {
	dir := testDir(t)
	s, err := Create("stop", nil, &Options{Dir: dir, StaleAfter: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := startChild(t, "attach", "SHM_TEST_DIR="+dir, "SHM_TEST_NAME=stop", "SHM_TEST_SLOT=1")
	p, _ := s.Watch(1)
	defer p.Close()
	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for st := p.State(); st != PeerStale; st = p.State() {
		if st != PeerAlive {
			t.Fatalf("stopped child: %v, want alive until stale", st)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("stopped child never became stale")
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, PeerAlive)
}
