package ringbuf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edsrzf/mmap-go"
)

// Layout of the file the cross-process test shares: two doorbells, then a
// ring each way.
const (
	xpParentBell = 0
	xpChildBell  = DoorbellSize
	xpPing       = 2 * DoorbellSize // parent -> child
	xpRingCap    = 4096
	xpPong       = xpPing + ControlSize + xpRingCap // child -> parent
	xpSize       = xpPong + ControlSize + xpRingCap
	xpChildEnv   = "RINGBUF_TEST_CHILD_FILE"
	xpStop       = 0xffff // record type that ends the child
)

func xpMap(t testing.TB, path string) mmap.MMap {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := mmap.Map(f, mmap.RDWR, 0)
	if err != nil {
		t.Fatalf("map %s: %v", path, err)
	}
	return m
}

// TestCrossProcess runs the echo side in a child process over a shared
// mapping: the child attaches to rings the parent formatted, and each side
// parks on its own doorbell (with an hour's timeout) between records, so
// every round trip needs a futex wake-up across processes.
func TestCrossProcess(t *testing.T) {
	if path := os.Getenv(xpChildEnv); path != "" {
		xpChild(t, path)
		return
	}
	rounds := 2_000
	if testing.Short() {
		rounds = 200
	}
	path := filepath.Join(t.TempDir(), "rings")
	must.NoError(t, os.WriteFile(path, make([]byte, xpSize), 0o600))
	m := xpMap(t, path)
	defer m.Unmap()

	ping, err := NewSPSC(m[xpPing:xpPong])
	must.NoError(t, err)
	_, err = NewSPSC(m[xpPong:xpSize])
	must.NoError(t, err)
	childBell, err := NewDoorbell(m[xpChildBell : xpChildBell+DoorbellSize])
	must.NoError(t, err)
	parentBell, err := NewDoorbell(m[xpParentBell : xpParentBell+DoorbellSize])
	must.NoError(t, err)
	ping.SetDoorbell(childBell)

	// The parent formats both rings before the child attaches.
	pong, err := AttachSPSC(m[xpPong:xpSize])
	must.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrossProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), xpChildEnv+"="+path)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	must.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	done := make(chan error, 1)
	go func() {
		idle := &SpinPark{Bell: parentBell, Spins: 1, Yields: 1, ParkTimeout: time.Hour}
		var buf [8]byte
		for i := range rounds {
			binary.LittleEndian.PutUint64(buf[:], uint64(i))
			if err := ping.Write(1, buf[:], time.Now().Add(10*time.Second)); err != nil {
				done <- err
				return
			}
			for {
				var echoed uint64
				n, err := pong.Read(1, func(_ uint16, p []byte) { echoed = binary.LittleEndian.Uint64(p) })
				if err != nil {
					done <- err
					return
				}
				if n > 0 {
					if echoed != uint64(i) {
						done <- fmt.Errorf("round %d: child echoed %d", i, echoed)
						return
					}
					idle.Reset()
					break
				}
				idle.Idle(0)
			}
		}
		done <- ping.Write(xpStop, nil, time.Now().Add(10*time.Second))
	}()
	select {
	case err := <-done:
		must.NoError(t, err)
	case err := <-exited:
		t.Fatalf("child exited early: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("no progress for 30s: a cross-process wake-up was lost (waiters: parent %d, child %d)\n%s", parentBell.Waiters(), childBell.Waiters(), out)
	}
	select {
	case err := <-exited:
		must.NoError(t, err, "child: %s", out)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("child did not stop\n%s", out)
	}
}

// xpChild is the echo side, in the child process.
func xpChild(t *testing.T, path string) {
	go func() {
		time.Sleep(60 * time.Second)
		fmt.Fprintln(os.Stderr, "child: parent gone quiet for 60s, exiting")
		os.Exit(3)
	}()
	m := xpMap(t, path)
	defer m.Unmap()
	ping, err := AttachSPSC(m[xpPing:xpPong])
	must.NoError(t, err)
	pong, err := AttachSPSC(m[xpPong:xpSize])
	must.NoError(t, err)
	childBell, err := NewDoorbell(m[xpChildBell : xpChildBell+DoorbellSize])
	must.NoError(t, err)
	parentBell, err := NewDoorbell(m[xpParentBell : xpParentBell+DoorbellSize])
	must.NoError(t, err)
	pong.SetDoorbell(parentBell)

	idle := &SpinPark{Bell: childBell, Spins: 1, Yields: 1, ParkTimeout: time.Hour}
	var (
		buf  [8]byte
		stop bool
	)
	for !stop {
		n, err := ping.Read(1, func(typ uint16, p []byte) {
			stop = typ == xpStop
			copy(buf[:], p)
		})
		must.NoError(t, err)
		if n > 0 && !stop {
			must.NoError(t, pong.Write(2, buf[:], time.Now().Add(10*time.Second)))
		}
		idle.Idle(n)
	}
	idle.Reset()
}

// lockedBuffer collects the child's output; the test may print it while
// exec's copying goroutine still writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
