package accel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/commitcore/commitcore/ringbuf"
	"github.com/commitcore/commitcore/shm"
	"github.com/stretchr/testify/require"
)

// fabricCase makes a connected pair of endpoints of one Fabric: the
// passive end (Listen) and the active end (Dial).
type fabricCase struct {
	name string
	pair func(tb testing.TB) (passive, active Endpoint)
}

// testRing is the ring capacity of the conformance pairs: small, so
// back-pressure shows after a few thousand records.
const testRing = 1 << 14

func shmCase(ring int) fabricCase {
	return fabricCase{"shm", func(tb testing.TB) (Endpoint, Endpoint) {
		f := &ShmFabric{Options: &shm.Options{Dir: tb.TempDir()}, Capacity: ring}
		name := "accel-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		p, err := f.Listen(name)
		require.NoError(tb, err)
		a, err := f.Dial(name)
		require.NoError(tb, err)
		tb.Cleanup(func() { a.Close(); p.Close() })
		return p, a
	}}
}

func tcpCase(o TCPOptions) fabricCase {
	return fabricCase{"tcp", func(tb testing.TB) (Endpoint, Endpoint) {
		f := &TCPFabric{Options: o}
		p, err := f.Listen("127.0.0.1:0")
		require.NoError(tb, err)
		a, err := f.Dial(p.Addr())
		require.NoError(tb, err)
		tb.Cleanup(func() { a.Close(); p.Close() })
		return p, a
	}}
}

func unixCase(o TCPOptions) fabricCase {
	return fabricCase{"unix", func(tb testing.TB) (Endpoint, Endpoint) {
		f := &UnixFabric{Options: o}
		p, err := f.Listen(filepath.Join(tb.TempDir(), "fabric.sock"))
		require.NoError(tb, err)
		a, err := f.Dial(p.Addr())
		require.NoError(tb, err)
		tb.Cleanup(func() { a.Close(); p.Close() })
		return p, a
	}}
}

// fabricCases are the software fabrics the conformance suite runs
// against, with rings of ring bytes.
func fabricCases(ring int) []fabricCase {
	return []fabricCase{shmCase(ring), unixCase(TCPOptions{RingCapacity: ring}), tcpCase(TCPOptions{RingCapacity: ring})}
}

// recordOf returns the type and payload of the i-th test record: its
// number, then bytes derived from it, 8 to 200 bytes in all.
func recordOf(i uint64, buf []byte) (uint16, []byte) {
	n := 8 + int(i*37%193)
	p := buf[:n]
	binary.LittleEndian.PutUint64(p, i)
	for j := 8; j < n; j++ {
		p[j] = byte(i) ^ byte(j)
	}
	return uint16(1 + i%3), p
}

// checkRecord checks that a received record is the i-th.
func checkRecord(i uint64, typ uint16, p []byte) error {
	var buf [256]byte
	wt, wp := recordOf(i, buf[:])
	if typ != wt || len(p) != len(wp) || string(p) != string(wp) {
		got := uint64(0)
		if len(p) >= 8 {
			got = binary.LittleEndian.Uint64(p)
		}
		return fmt.Errorf("record %d: type %d, %d bytes, number %d; want type %d, %d bytes", i, typ, len(p), got, wt, len(wp))
	}
	return nil
}

// writeRecords writes records from..to-1 to ep's Tx, waiting (bounded
// backoff) while the ring is full.
func writeRecords(ep Endpoint, from, to uint64) error {
	var buf [256]byte
	tx := ep.Conn().Tx
	for i := from; i < to; {
		typ, p := recordOf(i, buf[:])
		err := tx.TryWrite(typ, p)
		if errors.Is(err, ringbuf.ErrFull) {
			time.Sleep(20 * time.Microsecond)
			continue
		}
		if err != nil {
			return err
		}
		i++
	}
	return nil
}

// readRecords reads n records from ep's Rx, checking each is the next,
// within timeout.
func readRecords(ep Endpoint, from uint64, n int, timeout time.Duration) error {
	next := from
	var bad error
	deadline := time.Now().Add(timeout)
	rx := ep.Conn().Rx
	for next < from+uint64(n) {
		got, err := rx.Read(0, func(typ uint16, p []byte) {
			if bad == nil {
				bad = checkRecord(next, typ, p)
			}
			next++
		})
		if err != nil {
			return err
		}
		if bad != nil {
			return bad
		}
		if got == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d records after %v", next-from, n, timeout)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	return nil
}

// TestFabricConformance runs the Endpoint contract against every software
// fabric: ordering, no duplication, back-pressure, completions, failure
// detection.
func TestFabricConformance(t *testing.T) {
	for _, fc := range fabricCases(testRing) {
		t.Run(fc.name, func(t *testing.T) {
			t.Run("ordered both ways", func(t *testing.T) { testOrdered(t, fc) })
			t.Run("flush completes", func(t *testing.T) { testFlush(t, fc) })
			t.Run("back-pressure", func(t *testing.T) { testBackPressure(t, fc) })
			t.Run("passive end closes", func(t *testing.T) { testPeerGone(t, fc, true) })
			t.Run("active end closes", func(t *testing.T) { testPeerGone(t, fc, false) })
		})
	}
}

// testOrdered sends records both ways at once, each side's writer and
// reader on their own goroutines, and checks every record arrives once, in
// order, intact; the rings are small, so both sides wrap and fill many
// times.
func testOrdered(t *testing.T, fc fabricCase) {
	p, a := fc.pair(t)
	const n = 20000
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for _, ep := range []Endpoint{p, a} {
		wg.Go(func() { errs <- writeRecords(ep, 0, n) })
		wg.Go(func() { errs <- readRecords(ep, 0, n, 30*time.Second) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, ep := range []Endpoint{p, a} {
		n, err := ep.Conn().Rx.Read(0, func(uint16, []byte) {})
		require.NoError(t, err)
		require.Zero(t, n, "records beyond those sent: duplicates")
	}
}

// testFlush checks Flush's promise: once it returns, every record committed
// before it is in the peer's ring, readable in one pass without waiting.
func testFlush(t *testing.T, fc fabricCase) {
	p, a := fc.pair(t)
	for round := range 3 {
		from := uint64(round * 50)
		require.NoError(t, writeRecords(a, from, from+50))
		require.NoError(t, a.Flush(10*time.Second))
		next := from
		var bad error
		got, err := p.Conn().Rx.Read(0, func(typ uint16, b []byte) {
			if bad == nil {
				bad = checkRecord(next, typ, b)
			}
			next++
		})
		require.NoError(t, err)
		require.NoError(t, bad)
		require.Equal(t, 50, got, "round %d: records flushed but not in the peer's ring", round)
	}
}

// testBackPressure stops the passive side from reading: the writer must
// see ErrFull after a bounded number of records and keep seeing it, and,
// once the reader drains, get every accepted record exactly once.
func testBackPressure(t *testing.T, fc fabricCase) {
	p, a := fc.pair(t)
	var buf [256]byte
	tx := a.Conn().Tx
	accepted := uint64(0)
	full := time.Time{}
	deadline := time.Now().Add(30 * time.Second)
	for full.IsZero() || time.Since(full) < 50*time.Millisecond {
		require.True(t, time.Now().Before(deadline), "never pushed back after %d records", accepted)
		typ, b := recordOf(accepted, buf[:])
		err := tx.TryWrite(typ, b)
		switch {
		case errors.Is(err, ringbuf.ErrFull):
			if full.IsZero() {
				full = time.Now()
			}
			time.Sleep(100 * time.Microsecond)
		case err != nil:
			t.Fatal(err)
		default:
			accepted++
			full = time.Time{}
		}
	}
	// Two rings and the kernel's socket buffers hold a few MiB at most.
	require.Less(t, accepted, uint64(64<<20/112), "back-pressure never bound the writer")
	require.NoError(t, readRecords(p, 0, int(accepted), 30*time.Second))
	time.Sleep(10 * time.Millisecond)
	n, err := p.Conn().Rx.Read(0, func(uint16, []byte) {})
	require.NoError(t, err)
	require.Zero(t, n, "more records than were accepted")
	t.Logf("%d records accepted before back-pressure", accepted)
}

// testPeerGone closes one end and checks that the other's Alive turns
// false: the failure detector the protocol's termination relies on. Alive
// and Idle run on one goroutine, as in a serving loop.
func testPeerGone(t *testing.T, fc fabricCase, passiveCloses bool) {
	p, a := fc.pair(t)
	gone, watcher := p, a
	if !passiveCloses {
		gone, watcher = a, p
	}
	closed := false
	alive := func() bool {
		require.NoError(t, watcher.Idle(0))
		if !closed {
			require.NoError(t, gone.Idle(0))
		}
		return watcher.Conn().Alive()
	}
	require.True(t, waitFor(5*time.Second, alive), "peer never seen alive")
	require.NoError(t, gone.Close())
	closed = true
	require.True(t, waitFor(5*time.Second, func() bool { return !alive() }), "closed peer still alive")
	require.ErrorIs(t, gone.Flush(time.Second), ErrClosed)
	require.ErrorIs(t, gone.Idle(0), ErrClosed)
}

// waitFor polls cond every millisecond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
		runtime.Gosched()
	}
	return true
}
