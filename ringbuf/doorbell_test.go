package ringbuf

import (
	"testing"
	"time"
)

func TestDoorbell(t *testing.T) {
	mem := AlignedBytes(DoorbellSize)
	d, err := NewDoorbell(mem)
	must.NoError(t, err)
	_, err = NewDoorbell(mem[:32])
	must.ErrorIs(t, err, ErrMemory)
	_, err = NewDoorbell(AlignedBytes(2 * DoorbellSize)[4:])
	must.ErrorIs(t, err, ErrMemory)

	d.Ring() // nobody armed: no bump
	must.Equal(t, uint32(0), word32(mem, 0).Load())

	key := d.Arm()
	must.Equal(t, uint32(1), d.Waiters())
	// Unrung, Wait returns at the timeout (or earlier on a signal: Go's
	// preemption signals interrupt futex(2), so no lower bound is asserted).
	waitOrFail(t, func() error { return d.Wait(key, 5*time.Millisecond) }, "an unrung Wait overran its 5ms timeout by 30s")

	// A Ring between Arm and Wait (the publish racing the parking
	// sequence) bumps the word, so Wait with the old key returns at once.
	d.Ring()
	must.Equal(t, uint32(1), word32(mem, 0).Load())
	waitOrFail(t, func() error { return d.Wait(key, time.Hour) }, "Wait after a Ring slept: the wake-up was lost")
	d.Disarm()
	d.Disarm() // unbalanced: stays at zero
	must.Equal(t, uint32(0), d.Waiters())

	// A second view of the same memory (another process would map it)
	// wakes a waiter parked on the first.
	other, err := NewDoorbell(mem)
	must.NoError(t, err)
	key = d.Arm()
	go func() {
		time.Sleep(time.Millisecond)
		other.Ring()
	}()
	waitOrFail(t, func() error { return d.Wait(key, time.Hour) }, "Ring through another view did not wake the waiter")
	d.Disarm()
}

// TestSPSCSpaceDoorbell: a producer that finds the ring full arms the
// space doorbell, and a Read that frees room before the producer waits
// must make that Wait return at once, not sleep out its timeout.
func TestSPSCSpaceDoorbell(t *testing.T) {
	r, _ := newTestSPSC(t, 64)
	d, err := NewDoorbell(AlignedBytes(DoorbellSize))
	must.NoError(t, err)
	r.SetSpaceDoorbell(d)
	for r.TryWrite(1, make([]byte, 8)) == nil {
	}
	key := d.Arm()
	must.ErrorIs(t, r.TryWrite(1, make([]byte, 8)), ErrFull)
	n, err := r.Read(1, func(uint16, []byte) {})
	must.NoError(t, err)
	must.Equal(t, 1, n)
	waitOrFail(t, func() error { return d.Wait(key, time.Hour) }, "a Read that freed room did not ring the space doorbell: the wake-up was lost")
	d.Disarm()
	must.NoError(t, r.TryWrite(1, make([]byte, 8)))
}

// waitOrFail runs f in a goroutine and fails the test if it has not
// returned within 30 seconds, or returned an error.
func waitOrFail(t *testing.T, f func() error, failure string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		must.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal(failure)
	}
}
