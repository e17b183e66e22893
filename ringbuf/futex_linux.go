package ringbuf

import (
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futex(2) operations from <linux/futex.h>, which x/sys/unix does not
// export. Deliberately without FUTEX_PRIVATE_FLAG: the word may live in
// memory shared with another process, whose waiters must be woken too.
const (
	futexWait = 0 // FUTEX_WAIT
	futexWake = 1 // FUTEX_WAKE
)

// futexWaitOn sleeps while *w == val, for at most timeout. Timeouts,
// interruptions and a changed value are normal returns.
func futexWaitOn(w *atomic.Uint32, val uint32, timeout time.Duration) error {
	ts := unix.NsecToTimespec(max(timeout, 0).Nanoseconds())
	// unsafe: futex(2) takes the address of the shared word and of the
	// timeout; both outlive the call.
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWait, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
	switch errno {
	case 0, unix.EAGAIN, unix.ETIMEDOUT, unix.EINTR:
		return nil
	}
	return errno
}

// futexWakeAll wakes every thread sleeping on w.
func futexWakeAll(w *atomic.Uint32) {
	// unsafe: as in futexWaitOn. FUTEX_WAKE on a valid address cannot fail
	// in a way the caller could act on, so the result is ignored.
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWake, math.MaxInt32, 0, 0, 0)
}
