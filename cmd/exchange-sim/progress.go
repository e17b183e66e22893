package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// progress shows how a run is going: one line rewritten in place on a
// terminal, plain lines every interval otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	every time.Duration
	last  time.Time
	drawn bool
}

func newProgress(f *os.File, every time.Duration) *progress {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return &progress{w: f, tty: err == nil, every: every}
}

func (p *progress) show(done, total uint64, elapsed time.Duration, p99 int64) {
	if p == nil || p.every <= 0 || time.Since(p.last) < p.every {
		return
	}
	p.last = time.Now()
	rate := float64(done) / elapsed.Seconds()
	line := fmt.Sprintf("%d/%d commands  %.0f/s  p99 %s", done, total, rate, ns(p99))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// end finishes an in-place line.
func (p *progress) end() {
	if p != nil && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
