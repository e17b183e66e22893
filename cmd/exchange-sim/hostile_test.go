package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/commitcore/commitcore/shm"
)

// runAsync starts the simulator on dir and returns a channel that gets its
// exit status and output.
func runAsync(t *testing.T, dir string, args ...string) chan [2]string {
	t.Helper()
	done := make(chan [2]string, 1)
	o, _, err := parseOptions(append([]string{"-progress", "0", "-dir", dir}, args...), os.Stderr)
	require.NoError(t, err)
	go func() {
		var out bytes.Buffer
		code, err := simulate(&o, &out)
		done <- [2]string{itoa(code), fmt.Sprint(out.String(), err)}
	}()
	return done
}

// waitSegment waits until the run's segment whose name ends with suffix
// exists and returns its name (without shm.Prefix).
func waitSegment(t *testing.T, dir, suffix string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		m, _ := filepath.Glob(filepath.Join(dir, shm.Prefix+"*"+suffix))
		if len(m) == 1 {
			return strings.TrimPrefix(filepath.Base(m[0]), shm.Prefix)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no segment *%s appeared in %s", suffix, dir)
	return ""
}

// TestHostileRingScribble has a foreign process (this test) write random
// bytes over a live link's rings, each direction in turn. The component
// that reads them must report corruption and stop, and the run must fail
// safe: a clear error, no panic, every child stopped, every segment gone.
func TestHostileRingScribble(t *testing.T) {
	for _, region := range []int{0, 1} { // 0: matching → coordinator, 1: coordinator → matching
		dir := t.TempDir()
		done := runAsync(t, dir, "-orders", "2000000")
		name := waitSegment(t, dir, "-matching")
		time.Sleep(100 * time.Millisecond)
		seg, err := shm.Open(name, &shm.Options{Dir: dir})
		require.NoError(t, err)
		ring := seg.Region(region)
		r := rand.New(rand.NewPCG(uint64(region), 1))
		stop := time.Now().Add(30 * time.Second)
	scribble:
		for time.Now().Before(stop) {
			for i := range 4096 {
				ring[r.IntN(len(ring))] = byte(r.Uint32() | uint32(i))
			}
			select {
			case res := <-done:
				done <- res
				break scribble
			default:
				time.Sleep(time.Millisecond)
			}
		}
		seg.Close()
		var res [2]string
		select {
		case res = <-done:
		case <-time.After(time.Minute):
			t.Fatal("the run went on for a minute with its ring scribbled over")
		}
		assert.Equal(t, itoa(exitFailed), res[0], "region %d: exit status; output %s", region, res[1])
		// The reader stops with an error (exit status 1), not a panic (2).
		assert.Contains(t, res[1], "exited unexpectedly (exit status 1)", "region %d", region)
		left, _ := filepath.Glob(filepath.Join(dir, "*"))
		assert.Empty(t, left, "segments left behind")
	}
}

// TestSegmentsRemovedUnderRun unlinks the run's segments while it runs:
// the mappings stay valid, so the run finishes and audits clean, and the
// supervisor's cleanup copes with files already gone.
func TestSegmentsRemovedUnderRun(t *testing.T) {
	dir, jdir := t.TempDir(), t.TempDir()
	done := runAsync(t, dir, "-orders", "6000", "-json", "-journal", jdir)
	// The coordinator opens the journal once it has attached to every link.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if st, err := os.Stat(filepath.Join(jdir, "coordinator.journal")); err == nil && st.Size() > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the coordinator never opened its journal")
	}
	m, err := filepath.Glob(filepath.Join(dir, shm.Prefix+"*"))
	require.NoError(t, err)
	for _, p := range m {
		require.NoError(t, os.Remove(p))
	}
	res := <-done
	require.Equal(t, itoa(exitOK), res[0], res[1])
	assert.Contains(t, res[1], `"ok": true`)
}

// TestFullShmDir runs the simulator on a tmpfs too small for its rings:
// creating a segment fails with ENOSPC, and the run must stop with a clear
// error, its children stopped and no segment left. It needs to mount a
// tmpfs (root in a mount namespace we may use); elsewhere it skips.
func TestFullShmDir(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v): the ENOSPC path is not exercised here", err)
	}
	defer unix.Unmount(dir, 0)
	o, _, err := parseOptions([]string{"-progress", "0", "-dir", dir, "-orders", "100"}, os.Stderr)
	require.NoError(t, err)
	var out bytes.Buffer
	code, err := simulate(&o, &out)
	assert.Equal(t, exitFailed, code)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no space left on device")
	assert.Contains(t, err.Error(), dir)
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	assert.Empty(t, left, "segments left behind")
}
