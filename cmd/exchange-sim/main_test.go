package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commitcore/commitcore/internal/reexec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envQuickChild makes the test binary a child that exits right after its
// last event.
const envQuickChild = "COMMITCORE_XSIM_TEST_QUICK"

var longRuns = flag.Bool("xsim.long", false, "run the simulator tests with 20× more commands")

// TestMain runs the test binary as a simulator component when the
// simulator under test starts it as one.
func TestMain(m *testing.M) {
	if os.Getenv(envQuickChild) != "" {
		// A child that says its last words and exits at once.
		ev := newEventWriter(os.Stdout)
		ev.send(event{Ev: "ready"})
		ev.send(event{Ev: "done"})
		os.Exit(0)
	}
	if os.Getenv(envSpec) != "" {
		os.Exit(run(os.Args[1:], os.Stdout))
	}
	reexec.QuickRaceExit()
	os.Exit(m.Run())
}

// simulateJSON runs the simulator with args and decodes its JSON report.
func simulateJSON(t *testing.T, args ...string) (int, map[string]any, string) {
	t.Helper()
	dir := t.TempDir()
	var out bytes.Buffer
	args = append([]string{"-json", "-progress", "0", "-dir", dir}, args...)
	code := run(args, &out)
	var rep map[string]any
	if code != exitUsage && out.Len() > 0 {
		require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "report: %s", out.String())
	}
	left, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	assert.Empty(t, left, "segments left behind")
	return code, rep, out.String()
}

// orders scales a test run's command count: down under the race detector,
// which slows every process of a run, up with -xsim.long.
func orders(n int) string { return itoa(scale(n)) }

func scale(n int) int {
	if raceEnabled {
		n /= 3
	}
	if *longRuns {
		n *= 20
	}
	return n
}

// at is a fault flag's ROLE@N argument with N scaled as orders scales.
func at(role string, n int, suffix string) string {
	return fmt.Sprintf("%s@%d%s", role, scale(n), suffix)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func num(t *testing.T, rep map[string]any, path ...string) float64 {
	t.Helper()
	var v any = rep
	for _, p := range path {
		m, ok := v.(map[string]any)
		require.True(t, ok, "report has no %s", strings.Join(path, "."))
		v = m[p]
	}
	f, ok := v.(float64)
	require.True(t, ok, "report %s is %v, not a number", strings.Join(path, "."), v)
	return f
}

func requireAudit(t *testing.T, rep map[string]any) {
	t.Helper()
	audit, ok := rep["audit"].(map[string]any)
	require.True(t, ok, "report has no audit")
	for k, v := range audit {
		assert.Equal(t, true, v, "audit check %s", k)
	}
	assert.Zero(t, num(t, rep, "faults", "lost_transactions"))
	assert.Equal(t, num(t, rep, "commands"), num(t, rep, "committed")+sum(rep["aborted"]))
}

func sum(v any) float64 {
	var n float64
	for _, x := range v.(map[string]any) {
		n += x.(float64)
	}
	return n
}

func TestThreads(t *testing.T) {
	for _, proto := range []string{"3pc", "2pc"} {
		t.Run(proto, func(t *testing.T) {
			code, rep, out := simulateJSON(t, "-mode", "threads", "-protocol", proto, "-orders", orders(4000), "-batch", "8")
			require.Equal(t, exitOK, code, out)
			requireAudit(t, rep)
			assert.Positive(t, num(t, rep, "committed"))
			assert.Positive(t, num(t, rep, "trades"))
		})
	}
}

func TestProcs(t *testing.T) {
	code, rep, out := simulateJSON(t, "-orders", orders(3000))
	require.Equal(t, exitOK, code, out)
	requireAudit(t, rep)
	assert.Positive(t, num(t, rep, "trades"))
	assert.Positive(t, num(t, rep, "latency_ns", "p50"))
}

// TestSocketFabric runs the processes over loopback TCP and over unix
// sockets instead of shared memory, each through a participant kill (over
// unix, the restarted participant replaces its predecessor's stale socket)
// and a coordinator takeover.
func TestSocketFabric(t *testing.T) {
	for _, fabric := range []string{"tcp", "unix"} {
		t.Run(fabric, func(t *testing.T) {
			code, rep, out := simulateJSON(t, "-fabric", fabric, "-orders", orders(1500), "-batch", "4",
				"-kill", at("settlement", 400, ""), "-kill", at("coordinator", 900, ""))
			require.Equal(t, exitOK, code, out)
			requireAudit(t, rep)
			assert.Equal(t, fabric, rep["fabric"])
			assert.EqualValues(t, 2, num(t, rep, "faults", "recovered"))
		})
	}
}

// TestFaults runs a short version of each fault the issue names; every
// run must end with a clean audit and nothing lost.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"kill-coordinator", []string{"-kill", at("coordinator", 1000, "")}},
		{"kill-matching", []string{"-kill", at("matching", 1000, "")}},
		{"kill-settlement", []string{"-kill", at("settlement", 1000, "")}},
		{"kill-risk", []string{"-kill", at("risk", 1000, "")}},
		{"stall-risk", []string{"-stall", at("risk", 1000, ":5ms")}},
		{"stall-coordinator", []string{"-stall", at("coordinator", 1000, ":30ms")}},
		{"shock", []string{"-shock", at("SYM0", 1000, ":25")}},
		{"all", []string{"-kill", at("matching", 500, ""), "-stall", at("risk", 1200, ":5ms"),
			"-kill", at("coordinator", 1800, ""), "-shock", at("SYM1", 2100, ":30"), "-batch", "4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, rep, out := simulateJSON(t, append([]string{"-orders", orders(3000)}, tc.args...)...)
			require.Equal(t, exitOK, code, out)
			requireAudit(t, rep)
			injected := num(t, rep, "faults", "injected")
			assert.Equal(t, injected, num(t, rep, "faults", "recovered"))
			if strings.Contains(tc.name, "shock") || tc.name == "all" {
				assert.Positive(t, num(t, rep, "breaker", "trips"), "the shock tripped no breaker")
			}
			if tc.name != "shock" {
				assert.Positive(t, injected)
			}
			if strings.Contains(strings.Join(tc.args, " "), "-kill coordinator") {
				faults := rep["faults"].(map[string]any)
				assert.Len(t, faults["takeover_ns"], 1, "the standby's takeover was not timed")
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-nonsense"}, "flag provided but not defined"},
		{[]string{"extra"}, "takes only flags"},
		{[]string{"-mode", "cluster"}, "want procs or threads"},
		{[]string{"-protocol", "4pc"}, "want 3pc or 2pc"},
		{[]string{"-idle", "nap"}, "want park, yield or spin"},
		{[]string{"-batch", "0"}, "-batch 0"},
		{[]string{"-orders", "0"}, "-orders 0"},
		{[]string{"-kill", "broker@10"}, `unknown role "broker"`},
		{[]string{"-kill", "matching"}, "want ROLE@N"},
		{[]string{"-kill", "matching@100", "-orders", "50"}, "past the end of the run"},
		{[]string{"-stall", "risk@10"}, "want ROLE@N:DUR"},
		{[]string{"-stall", "risk@10:forever"}, "Go duration"},
		{[]string{"-shock", "SYM99@10:20", "-symbols", "4"}, "SYM99"},
		{[]string{"-shock", "SYM0@10:0"}, "percent"},
		{[]string{"-kill", "matching@10", "-mode", "threads"}, "-mode procs"},
		{[]string{"-kill", "matching@10", "-stall", "risk@10:1ms"}, "two faults at command 10"},
		{[]string{"-symbols", "0"}, "symbols"},
		{[]string{"-fabric", "rdma"}, "want shm, unix or tcp"},
		{[]string{"-fabric", "tcp", "-mode", "threads"}, "-mode procs"},
		{[]string{"-fabric", "unix", "-mode", "threads"}, "-mode procs"},
		{[]string{"-fabric", "unix", "-journal", "/tmp/" + strings.Repeat("d", 100)}, "choose a shorter -journal directory"},
		{[]string{"-role", "broker"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if tc.want == "" {
				sp, err := readSpec()
				assert.Nil(t, sp)
				assert.ErrorContains(t, err, "run exchange-sim without -role")
				return
			}
			_, _, err := parseOptions(tc.args, os.Stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestBadDir(t *testing.T) {
	var out bytes.Buffer
	code := run([]string{"-orders", "10", "-progress", "0", "-dir", filepath.Join(t.TempDir(), "missing")}, &out)
	assert.Equal(t, exitFailed, code)
	code = run([]string{"-orders", "10", "-progress", "0", "-journal", "/proc/no-such-place"}, &out)
	assert.Equal(t, exitFailed, code)
}

func TestHelpListsEveryFlag(t *testing.T) {
	var buf bytes.Buffer
	_, help, err := parseOptions([]string{"-h"}, &buf)
	require.NoError(t, err)
	require.True(t, help)
	for _, g := range flagGroups {
		assert.Contains(t, buf.String(), g.title)
		for _, n := range g.names {
			assert.Contains(t, buf.String(), "-"+n+" ")
		}
	}
}

// TestExitAfterLastEvent is the regression test for a soak failure (seed
// 1186): a coordinator that said "done" and exited at once was reported as
// an unexpected exit, because its exit could be handled before its last
// event. A child's events and its exit now share one channel.
func TestExitAfterLastEvent(t *testing.T) {
	t.Setenv(envQuickChild, "1")
	for range 50 {
		s, err := newSupervisor(&options{}, spec{}, nil)
		require.NoError(t, err)
		c, err := s.spawn("coordinator", spec{})
		require.NoError(t, err)
		s.coord = c
		require.NoError(t, s.loop(nil))
		assert.True(t, c.expect, "the child's done was not seen before its exit")
	}
}

// TestKillCoordinatorBeforeStandbyReady is the regression test for soak
// seed 21: a coordinator killed before its standby had finished starting
// failed the run ("no standby coordinator to take over"). A takeover now
// waits for the standby; here two kills come within the first commands,
// each before the standby meant for it can be ready.
func TestKillCoordinatorBeforeStandbyReady(t *testing.T) {
	code, rep, out := simulateJSON(t, "-orders", orders(600), "-kill", "coordinator@1", "-kill", "coordinator@3")
	require.Equal(t, exitOK, code, out)
	requireAudit(t, rep)
	assert.EqualValues(t, 2, num(t, rep, "faults", "recovered"))
}

// TestFaultRightAfterParticipantKill is the regression test for soak seed
// 10: a stall of a participant due while its killed predecessor was being
// reaped hit the dead process ("stall settlement: no such process"). The
// replacement now exists before the coordinator goes on, and the stall
// waits for it to be ready.
func TestFaultRightAfterParticipantKill(t *testing.T) {
	code, rep, out := simulateJSON(t, "-orders", orders(600), "-batch", "32",
		"-kill", "settlement@10", "-stall", "settlement@11:5ms", "-kill", "settlement@12")
	require.Equal(t, exitOK, code, out)
	requireAudit(t, rep)
	assert.EqualValues(t, 3, num(t, rep, "faults", "recovered"))
}
