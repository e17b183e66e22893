package shm

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/commitcore/commitcore/internal/pingpong"
	"github.com/commitcore/commitcore/ringbuf"
)

// pingSize is the message size of every ping-pong benchmark.
const pingSize = 64

// BenchmarkUDSPingPong is the unix-socket peer of
// BenchmarkShmPingPongCrossProcess: the same 64-byte round trip to a child
// process over a socketpair, with blocking reads and writes (each side
// sleeps in the kernel until the message arrives) and with non-blocking
// reads retried in a busy loop (the fastest a socket gets, burning a core
// per side like the busy-spin link).
func BenchmarkUDSPingPong(b *testing.B) {
	for _, bc := range []struct {
		name string
		poll bool
	}{{"blocking", false}, {"busy-poll", true}} {
		b.Run(bc.name, func(b *testing.B) { benchUDS(b, bc.poll) })
	}
}

func benchUDS(b *testing.B, poll bool) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	mine := fds[0]
	defer unix.Close(mine)
	if err := unix.SetNonblock(mine, poll); err != nil {
		b.Fatal(err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "uds-child")
	c := startChildFiles(b, "uds-echo", []*os.File{theirs}, "SHM_TEST_UDS_POLL="+strconv.FormatBool(poll))
	theirs.Close()
	h := pingpong.NewHistogram()
	var msg [pingSize]byte
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	pingpong.Echo(b, h, msg[:],
		func(p []byte) error { return writeFull(mine, p) },
		func(p []byte) error { return readFull(mine, p) })
	b.StopTimer()
	pingpong.Report(b, h)
	unix.Shutdown(mine, unix.SHUT_WR)
	if err := c.cmd.Wait(); err != nil {
		b.Errorf("echo child: %v", err)
	}
}

// childUDSEcho echoes 64-byte messages on fd 3 until end of file, with
// non-blocking reads retried in a busy loop if SHM_TEST_UDS_POLL is true.
func childUDSEcho() int {
	const fd = 3
	poll, _ := strconv.ParseBool(os.Getenv("SHM_TEST_UDS_POLL"))
	if err := unix.SetNonblock(fd, poll); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmtReady()
	var msg [pingSize]byte
	for {
		if err := readFull(fd, msg[:]); err != nil {
			return 0
		}
		if err := writeFull(fd, msg[:]); err != nil {
			return 1
		}
	}
}

func readFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Read(fd, b)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return os.ErrClosed
		}
		b = b[n:]
	}
	return nil
}

func writeFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// BenchmarkShmPingPongCrossProcess measures the round trip of a 64-byte
// record from this process to a child and back over a duplex link, with
// both sides busy-spinning and with both spinning then parking. Compare
// with BenchmarkSpinFloorPingPong (the in-process cache-line floor) and
// BenchmarkUDSPingPong in the same run.
func BenchmarkShmPingPongCrossProcess(b *testing.B) {
	for _, bc := range []struct {
		name string
		kind IdleKind
	}{{"busy-spin", BusySpin}, {"spin-park", SpinThenPark}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := testDir(b)
			opts := &Options{Dir: dir, Idle: bc.kind, Prefault: true}
			l, err := CreateLink("pingpong", 4096, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Unlink()
			defer l.Close()
			c := startChild(b, "link-echo", "SHM_TEST_DIR="+dir, "SHM_TEST_NAME=pingpong", idleKindEnv(bc.kind))
			h := pingpong.NewHistogram()
			var msg [pingSize]byte
			var got uint64
			read := func(_ uint16, p []byte) { got = binary.LittleEndian.Uint64(p) }
			tx, rx := l.Tx(), l.Rx()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			b.ResetTimer()
			for i := uint64(1); b.Loop(); i++ {
				binary.LittleEndian.PutUint64(msg[:], i)
				var t0 time.Time
				if i%pingpong.SampleEvery == 0 {
					t0 = time.Now()
				}
				if err := tx.TryWrite(typPing, msg[:]); err != nil {
					b.Fatal(err)
				}
				for {
					n, err := rx.Read(1, read)
					if err == nil {
						err = l.Idle(n)
					}
					if err != nil {
						b.Fatal(err)
					}
					if n > 0 {
						break
					}
				}
				if i%pingpong.SampleEvery == 0 {
					h.RecordValue(int64(time.Since(t0)))
				}
				if got != i {
					b.Fatalf("echo %d, want %d", got, i)
				}
			}
			b.StopTimer()
			pingpong.Report(b, h)
			if err := tx.TryWrite(typStop, nil); err != nil {
				b.Fatal(err)
			}
			if err := c.cmd.Wait(); err != nil {
				b.Errorf("echo child: %v", err)
			}
		})
	}
}

// BenchmarkSpinFloorPingPong is ringbuf's benchmark of the same name, here
// so that one run of this package's benchmarks holds the floor, the link
// and the socket: two threads of this process, each locked to its OS
// thread, bounce one padded atomic word (odd values one way, even the
// other), the least any cross-core round trip can cost.
// BenchmarkShmPingPongCrossProcess/busy-spin is measured against it.
// ns/op is one round trip; the percentiles sample every 8th.
func BenchmarkSpinFloorPingPong(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs GOMAXPROCS >= 2: two threads busy-spin against each other")
	}
	h := pingpong.NewHistogram()
	b.ReportAllocs()
	b.ResetTimer()
	pingpong.Floor(uint64(b.N), func() pingpong.Idler { return &ringbuf.SpinYield{Spins: busySpinLimit} }, pingpong.SampleEvery,
		func(ns int64) { h.RecordValue(ns) })
	b.StopTimer()
	pingpong.Report(b, h)
}

// BenchmarkPeerState measures one liveness check of a live peer (a pidfd
// poll and two loads), the cost a waiting Link pays every CheckEvery.
func BenchmarkPeerState(b *testing.B) {
	s, err := Create("peerstate", nil, &Options{Dir: testDir(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sl, err := s.Attach(0)
	if err != nil {
		b.Fatal(err)
	}
	p, _ := s.Watch(0)
	defer p.Close()
	b.ReportAllocs()
	for b.Loop() {
		sl.Beat()
		if p.State() != PeerAlive {
			b.Fatal("own slot not alive")
		}
	}
}
