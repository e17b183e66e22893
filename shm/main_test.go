package shm

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/commitcore/commitcore/internal/reexec"
)

// The test binary re-executes itself as the child process of the
// multi-process tests and benchmarks: childRoleEnv selects the role, the
// other shm_test_ variables carry its parameters.
const childRoleEnv = "SHM_TEST_CHILD_ROLE"

// childRoles are the functions a child process can run. Each returns the
// process exit status; it tells the parent it is ready by printing "ready".
var childRoles = map[string]func() int{
	"attach":        childAttach,
	"create-own":    childCreateOwn,
	"uds-echo":      childUDSEcho,
	"link-transfer": childLinkTransfer,
	"link-flood":    childLinkFlood,
	"link-echo":     childLinkEcho,
}

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		f := childRoles[role]
		if f == nil {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(2)
		}
		os.Exit(f())
	}
	reexec.QuickRaceExit()
	os.Exit(m.Run())
}

// child is a running child process of the test binary.
type child struct {
	cmd *exec.Cmd
	out *bufio.Scanner
}

// startChild runs the test binary in role with the given environment
// ("KEY=value") and waits for it to print "ready". The child is killed and
// reaped when the test ends, if it still runs.
func startChild(t testing.TB, role string, env ...string) *child {
	t.Helper()
	return startChildFiles(t, role, nil, env...)
}

// startChildFiles is startChild passing files as descriptors 3, 4, ...
func startChildFiles(t testing.TB, role string, files []*os.File, env ...string) *child {
	t.Helper()
	cmd, line, out := reexec.Start(t, reexec.Spec{Args: []string{"-test.run=^$", "-test.bench=^$"}, Files: files,
		Env: append([]string{childRoleEnv + "=" + role}, env...)})
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("child %s did not get ready: it said %q", role, line)
	}
	return &child{cmd: cmd, out: out}
}

// fmtReady tells the parent the child is ready.
func fmtReady() { fmt.Println("ready") }

// childOptions reads the segment options the parent passed.
func childOptions() *Options {
	return &Options{Dir: os.Getenv("SHM_TEST_DIR")}
}

// childAttach opens segment SHM_TEST_NAME, attaches to slot SHM_TEST_SLOT and
// beats until killed.
func childAttach() int {
	s, err := Open(os.Getenv("SHM_TEST_NAME"), childOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var slot int
	fmt.Sscan(os.Getenv("SHM_TEST_SLOT"), &slot)
	sl, err := s.Attach(slot)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmtReady()
	for {
		sl.Beat()
		time.Sleep(50 * time.Microsecond)
	}
}

// childCreateOwn creates segment SHM_TEST_NAME, attaches to slot 0 and waits
// to be killed, leaving the segment behind.
func childCreateOwn() int {
	s, err := Create(os.Getenv("SHM_TEST_NAME"), []RegionSpec{{Kind: 1, Len: 64}}, childOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := s.Attach(0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmtReady()
	for {
		time.Sleep(time.Hour)
	}
}
