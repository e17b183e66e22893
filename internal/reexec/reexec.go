// Package reexec starts the running test binary again as a child process,
// in a role its environment names: how commitcore's multi-process tests get
// a real second process without building another binary. The child's
// TestMain reads the role, does its part, and prints a first line (its
// "ready") before anything else on stdout.
package reexec

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// QuickRaceExit makes the children this process starts from now on skip
// the race detector's exit delay: a binary built with -race sleeps for a
// second as it exits (GORACE's atexit_sleep_ms, 1000 by default) so that
// reports from other threads get out, and commitcore's multi-process tests
// start and stop hundreds of children (one -race test stopping 50 children
// took 51 s, 0.3 s without the delay). A child still reports every race it
// sees while it runs. A GORACE that sets atexit_sleep_ms is kept as it is.
// Call it from TestMain, before m.Run.
func QuickRaceExit() {
	v := os.Getenv("GORACE")
	if strings.Contains(v, "atexit_sleep_ms") {
		return
	}
	os.Setenv("GORACE", strings.TrimSpace(v+" atexit_sleep_ms=0"))
}

// Spec says how to start a child.
type Spec struct {
	// Args follow the test binary's path; "-test.run=^$" keeps the child
	// from running the tests itself.
	Args []string
	// Env is added to this process's environment.
	Env []string
	// Files become the child's descriptors 3, 4, ….
	Files []*os.File
	// Discard reads and drops the child's stdout after the first line, so
	// that a chatty child never blocks on a full pipe; otherwise the
	// caller reads it from the returned scanner.
	Discard bool
	// Timeout bounds the wait for the first line; 60 s if zero.
	Timeout time.Duration
}

// Start starts the child, waits for its first line of output and returns
// the running command, that line, and a scanner over the rest of its
// stdout (nil with Discard). Its stderr is this process's. The child is
// killed at the test's cleanup if it still runs. Start fails tb if the
// child cannot start, exits before its first line, or is silent past the
// timeout.
func Start(tb testing.TB, s Spec) (*exec.Cmd, string, *bufio.Scanner) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.ExtraFiles = s.Files
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(stdout)
	first := make(chan string, 1)
	go func() {
		if !sc.Scan() {
			close(first)
			return
		}
		first <- sc.Text()
		if s.Discard {
			io.Copy(io.Discard, stdout)
		}
	}()
	timeout := s.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	select {
	case line, ok := <-first:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			tb.Fatalf("child %v exited before its first line: %v", s.Env, sc.Err())
		}
		if s.Discard {
			sc = nil
		}
		return cmd, line, sc
	case <-time.After(timeout):
		cmd.Process.Kill()
		cmd.Wait()
		tb.Fatalf("child %v said nothing in %v", s.Env, timeout)
	}
	return nil, "", nil
}
