package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/commitcore/commitcore/ringbuf"
)

// Record types of the link tests.
const (
	typData uint16 = 1
	typPing uint16 = 2
	typStop uint16 = 3
)

// recordSize is the size of a transfer record: a sequence number and a
// value derived from it.
const recordSize = 16

// mix is splitmix64: the value record seq carries.
func mix(seq uint64) uint64 {
	z := seq + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// fold adds a record to a running FNV-1a-style checksum.
func fold(sum, v uint64) uint64 { return (sum ^ v) * 0x100000001b3 }

// transferResult is what one side of a transfer saw.
type transferResult struct {
	sent, recv       int
	sentSum, recvSum uint64
}

// transfer sends n records on l's Tx while receiving n on its Rx, checking
// every received record's sequence number and value. It returns when both
// are done, on a bad record, or when Idle reports the peer gone.
func transfer(l *Link, n int) (transferResult, error) {
	var (
		res    transferResult
		badErr error
	)
	res.sentSum, res.recvSum = 0xcbf29ce484222325, 0xcbf29ce484222325
	read := func(typ uint16, p []byte) {
		if badErr != nil {
			return
		}
		if typ != typData || len(p) != recordSize {
			badErr = fmt.Errorf("record %d: type %d, %d bytes", res.recv, typ, len(p))
			return
		}
		seq, v := binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:])
		if seq != uint64(res.recv) || v != mix(seq) {
			badErr = fmt.Errorf("record %d: got seq %d value %#x", res.recv, seq, v)
			return
		}
		res.recvSum = fold(res.recvSum, v)
		res.recv++
	}
	tx, rx := l.Tx(), l.Rx()
	for res.sent < n || res.recv < n {
		work := 0
		for ; res.sent < n && work < 256; work++ {
			p, err := tx.Claim(typData, recordSize)
			if errors.Is(err, ringbuf.ErrFull) {
				break
			}
			if err != nil {
				return res, err
			}
			v := mix(uint64(res.sent))
			binary.LittleEndian.PutUint64(p, uint64(res.sent))
			binary.LittleEndian.PutUint64(p[8:], v)
			res.sentSum = fold(res.sentSum, v)
			res.sent++
		}
		tx.Commit()
		k, err := rx.Read(0, read)
		if err != nil {
			return res, err
		}
		if badErr != nil {
			return res, badErr
		}
		if err := l.Idle(work + k); err != nil {
			if !errors.Is(err, ErrPeerClosed) || res.sent != n {
				return res, err
			}
			// What the peer committed before it closed is still in Rx.
			if _, err := rx.Read(0, read); err != nil || badErr != nil || res.recv != n {
				return res, fmt.Errorf("peer closed after %d of %d records (%v, %v)", res.recv, n, err, badErr)
			}
		}
	}
	return res, nil
}

func idleKindEnv(kind IdleKind) string { return "SHM_TEST_IDLE=" + strconv.Itoa(int(kind)) }

// childLinkOptions reads the link options the parent passed.
func childLinkOptions() *Options {
	o := childOptions()
	k, _ := strconv.Atoi(os.Getenv("SHM_TEST_IDLE"))
	o.Idle = IdleKind(k)
	return o
}

// childLinkTransfer opens link SHM_TEST_NAME, runs transfer with
// SHM_TEST_COUNT records and prints what it saw.
func childLinkTransfer() int {
	l, err := OpenLink(os.Getenv("SHM_TEST_NAME"), 0, childLinkOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer l.Close()
	n, _ := strconv.Atoi(os.Getenv("SHM_TEST_COUNT"))
	fmtReady()
	res, err := transfer(l, n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child transfer:", err)
		return 1
	}
	fmt.Println(res.sent, res.recv, res.sentSum, res.recvSum)
	return 0
}

// childLinkFlood opens link SHM_TEST_NAME and sends records until killed;
// after SHM_TEST_COUNT records (if set) it stops sending and idles.
func childLinkFlood() int {
	l, err := OpenLink(os.Getenv("SHM_TEST_NAME"), 0, childLinkOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	limit, _ := strconv.Atoi(os.Getenv("SHM_TEST_COUNT"))
	fmtReady()
	var rec [recordSize]byte
	for seq := 0; ; {
		work := 0
		if limit == 0 || seq < limit {
			binary.LittleEndian.PutUint64(rec[:], uint64(seq))
			binary.LittleEndian.PutUint64(rec[8:], mix(uint64(seq)))
			if l.Tx().TryWrite(typData, rec[:]) == nil {
				seq++
				work++
			}
		}
		if err := l.Idle(work); err != nil {
			fmt.Fprintln(os.Stderr, "child flood:", err)
			return 1
		}
	}
}

// childLinkEcho opens link SHM_TEST_NAME and sends every ping back until it
// reads a stop record.
func childLinkEcho() int {
	runtime.LockOSThread()
	l, err := OpenLink(os.Getenv("SHM_TEST_NAME"), 0, childLinkOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer l.Close()
	fmtReady()
	stop := false
	var werr error
	echo := func(typ uint16, p []byte) {
		if typ == typStop {
			stop = true
			return
		}
		werr = l.Tx().Write(typ, p, time.Time{})
	}
	for !stop {
		n, err := l.Rx().Read(0, echo)
		if err == nil {
			err = werr
		}
		if err == nil {
			err = l.Idle(n)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child echo:", err)
			return 1
		}
	}
	return 0
}

// linkRecords is how many records TestLinkTransfer moves each way.
func linkRecords(t *testing.T) int {
	switch {
	case raceEnabled:
		t.Log("race detector on: 200,000 records each way (1,000,000 without -race)")
		return 200_000
	case testing.Short():
		return 100_000
	}
	return 1_000_000
}

// TestLinkTransfer moves records both ways at once between this process
// and a child over one link, with each idle strategy, and checks every
// record and both sides' checksums.
func TestLinkTransfer(t *testing.T) {
	n := linkRecords(t)
	for _, tc := range []struct {
		name string
		kind IdleKind
	}{{"busy-spin", BusySpin}, {"spin-park", SpinThenPark}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testDir(t)
			opts := &Options{Dir: dir, Idle: tc.kind}
			l, err := CreateLink("xfer", 1<<16, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Unlink()
			defer l.Close()
			c := startChild(t, "link-transfer", "SHM_TEST_DIR="+dir, "SHM_TEST_NAME=xfer",
				"SHM_TEST_COUNT="+strconv.Itoa(n), idleKindEnv(tc.kind))
			start := time.Now()
			res, err := transfer(l, n)
			if err != nil {
				t.Fatalf("parent transfer after %+v: %v", res, err)
			}
			if !c.out.Scan() {
				t.Fatalf("child printed no result: %v", c.cmd.Wait())
			}
			var cres transferResult
			if _, err := fmt.Sscan(c.out.Text(), &cres.sent, &cres.recv, &cres.sentSum, &cres.recvSum); err != nil {
				t.Fatalf("child result %q: %v", c.out.Text(), err)
			}
			if err := c.cmd.Wait(); err != nil {
				t.Fatalf("child: %v", err)
			}
			t.Logf("%d records each way in %v", n, time.Since(start))
			if res.sent != n || res.recv != n || cres.sent != n || cres.recv != n {
				t.Errorf("parent sent %d received %d, child sent %d received %d, want %d", res.sent, res.recv, cres.sent, cres.recv, n)
			}
			if res.sentSum != cres.recvSum || cres.sentSum != res.recvSum {
				t.Errorf("checksums differ: parent sent %#x, child got %#x; child sent %#x, parent got %#x",
					res.sentSum, cres.recvSum, cres.sentSum, res.recvSum)
			}
		})
	}
}

// TestLinkPeerKilled SIGKILLs the child while it streams (or after it went
// quiet and this side parked) and checks that Idle reports ErrPeerDead, and
// that the link can then be removed and recreated. The detection time is
// logged, not asserted: it includes the kernel's teardown of the child.
func TestLinkPeerKilled(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kind  IdleKind
		quiet bool // the child stops sending before it is killed
	}{
		{"busy-spin mid-stream", BusySpin, false},
		{"spin-park mid-stream", SpinThenPark, false},
		{"spin-park while parked", SpinThenPark, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testDir(t)
			opts := &Options{Dir: dir, Idle: tc.kind}
			l, err := CreateLink("victim", 4096, opts)
			if err != nil {
				t.Fatal(err)
			}
			count := "0"
			if tc.quiet {
				count = "1000"
			}
			c := startChild(t, "link-flood", "SHM_TEST_DIR="+dir, "SHM_TEST_NAME=victim", "SHM_TEST_COUNT="+count, idleKindEnv(tc.kind))
			var got int
			read := func(uint16, []byte) { got++ }
			var killed time.Time
			for {
				n, err := l.Rx().Read(0, read)
				if err != nil {
					t.Fatal(err)
				}
				if killed.IsZero() && got >= 1000 {
					if tc.quiet {
						// Let this side spin out and park before the kill.
						for range 1000 {
							if err := l.Idle(0); err != nil {
								t.Fatal(err)
							}
						}
						if !l.parked {
							t.Fatal("link did not park after 1000 idle calls")
						}
					}
					killed = time.Now()
					if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
				}
				if err = l.Idle(n); err != nil {
					if !errors.Is(err, ErrPeerDead) || killed.IsZero() {
						t.Fatalf("idle: %v, want ErrPeerDead after the kill", err)
					}
					t.Logf("%d records, then peer death reported %v after SIGKILL: %v", got, time.Since(killed), err)
					break
				}
				if !killed.IsZero() && time.Since(killed) > 10*time.Second {
					t.Fatal("peer death not reported 10 s after SIGKILL")
				}
			}
			c.cmd.Wait()
			if l.PeerAlive() || l.PeerState() != PeerDead {
				t.Errorf("peer state %v after its death", l.PeerState())
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if removed, err := CleanStale(dir); err != nil || len(removed) != 0 {
				t.Errorf("CleanStale removed %v (%v) while the creator lives", removed, err)
			}
			if err := l.Unlink(); err != nil {
				t.Fatal(err)
			}
			l2, err := CreateLink("victim", 4096, opts)
			if err != nil {
				t.Fatalf("recreate: %v", err)
			}
			defer l2.Unlink()
			defer l2.Close()
			startChild(t, "link-echo", "SHM_TEST_DIR="+dir, "SHM_TEST_NAME=victim", idleKindEnv(tc.kind))
			if err := l2.Tx().TryWrite(typPing, []byte("again")); err != nil {
				t.Fatal(err)
			}
			var echoed string
			for echoed == "" {
				n, err := l2.Rx().Read(1, func(_ uint16, p []byte) { echoed = string(p) })
				if err == nil {
					err = l2.Idle(n)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if echoed != "again" {
				t.Errorf("echo %q over the recreated link", echoed)
			}
		})
	}
}

func TestOpenLinkRefusals(t *testing.T) {
	dir := testDir(t)
	opts := &Options{Dir: dir}
	l, err := CreateLink("l", 1024, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, want := l.Segment().Size(), LinkSize(1024); got != want {
		t.Errorf("link segment of %d bytes, LinkSize says %d", got, want)
	}
	if _, err := OpenLink("l", 2048, opts); !errors.Is(err, ErrLayout) {
		t.Errorf("open with another capacity: %v, want ErrLayout", err)
	}
	if _, err := CreateLink("bad", 1000, opts); !errors.Is(err, ErrLayout) {
		t.Errorf("create with capacity 1000: %v, want ErrLayout", err)
	}
	seg, err := Create("plain", testRegions, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if _, err := OpenLink("plain", 0, opts); !errors.Is(err, ErrLayout) {
		t.Errorf("open a non-link segment: %v, want ErrLayout", err)
	}
	o, err := OpenLink("l", 1024, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := OpenLink("l", 0, opts); !errors.Is(err, ErrSlotBusy) {
		t.Errorf("second opener: %v, want ErrSlotBusy", err)
	}
	word64(l.seg.Region(1), 0).Store(0) // the opener→creator ring's magic
	o.Close()
	if _, err := OpenLink("l", 0, opts); !errors.Is(err, ErrLayout) || !errors.Is(err, ringbuf.ErrCorrupt) {
		t.Errorf("open with a clobbered ring: %v, want ErrLayout and ringbuf.ErrCorrupt", err)
	}
	if st := l.PeerState(); st != PeerAbsent {
		t.Errorf("peer state after the opener closed: %v, want absent", st)
	}
}

// TestLinkIdleReportsPeerClosed checks, in one process, that Idle says
// nothing while the peer has not attached yet or lives, and reports
// ErrPeerClosed once a peer that was seen closes.
func TestLinkIdleReportsPeerClosed(t *testing.T) {
	for _, kind := range []IdleKind{BusySpin, SpinThenPark} {
		opts := &Options{Dir: testDir(t), Idle: kind, CheckEvery: time.Nanosecond}
		l, err := CreateLink("closed", 1024, opts)
		if err != nil {
			t.Fatal(err)
		}
		idle := func(calls int) error {
			for range calls {
				if err := l.Idle(0); err != nil {
					return err
				}
			}
			return nil
		}
		if err := idle(300); err != nil {
			t.Fatalf("idle before the peer attached: %v", err)
		}
		o, err := OpenLink("closed", 1024, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := idle(300); err != nil {
			t.Fatalf("idle with a live peer: %v", err)
		}
		o.Close()
		if err := idle(300); !errors.Is(err, ErrPeerClosed) {
			t.Errorf("idle after the peer closed: %v, want ErrPeerClosed", err)
		}
		l.Close()
		l.Unlink()
	}
}

// TestReopenLink takes back the creating side of a link after its holder
// left: the rings keep their contents and order, and the opener carries on.
func TestReopenLink(t *testing.T) {
	opts := &Options{Dir: testDir(t)}
	c, err := CreateLink("reopen", 1024, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Unlink()
	o, err := OpenLink("reopen", 1024, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := c.Tx().TryWrite(1, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReopenLink("reopen", 1024, opts); !errors.Is(err, ErrSlotBusy) {
		t.Fatalf("reopen while the creator holds its side: %v, want ErrSlotBusy", err)
	}
	c.Close()
	r, err := ReopenLink("reopen", 0, opts)
	if err != nil {
		t.Fatalf("reopen after the creator left: %v", err)
	}
	defer r.Close()
	if err := r.Tx().TryWrite(2, []byte("after")); err != nil {
		t.Fatal(err)
	}
	var got []string
	read := func(l *Link) {
		t.Helper()
		if _, err := l.Rx().Read(16, func(typ uint16, p []byte) { got = append(got, fmt.Sprintf("%d:%s", typ, p)) }); err != nil {
			t.Fatal(err)
		}
	}
	read(o)
	if err := o.Tx().TryWrite(3, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	read(r)
	want := []string{"1:before", "2:after", "3:reply"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records %q, want %q", got, want)
	}
	if _, err := ReopenLink("absent", 0, opts); err == nil {
		t.Error("reopen of a link that does not exist succeeded")
	}
}
