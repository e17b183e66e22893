// Command exchange-sim runs a multi-process exchange on commitcore: a
// coordinator, matching, risk and settlement, each its own process, agree
// on every command of a seeded order flow with a three-phase commit over
// shared-memory rings. It can kill, stall and shock them on the way, and
// it ends with a latency report and an audit of what was committed.
//
// Run it with no flags for the default exchange; -h lists the flags by
// group with an example each.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/shm"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailed   = 1 // the run failed or its audit did
	exitUsage    = 2 // bad flags
	exitSignaled = 130
)

func main() { os.Exit(run(os.Args[1:], os.Stdout)) }

// run runs the simulator with args and returns its exit status; the report
// goes to stdout, everything else to os.Stderr.
func run(args []string, stdout io.Writer) int {
	o, help, err := parseOptions(args, os.Stderr)
	if help {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "exchange-sim: %v\n", err)
		return exitUsage
	}
	if o.role != "" {
		if err := runRole(o.role); err != nil {
			fmt.Fprintf(os.Stderr, "exchange-sim -role %s: %v\n", o.role, err)
			return exitFailed
		}
		return exitOK
	}
	if o.clean {
		removed, err := shm.CleanStale(o.dir)
		for _, p := range removed {
			fmt.Fprintf(stdout, "removed %s\n", p)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "exchange-sim -clean: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "%d stale segments removed from %s\n", len(removed), o.dir)
		return exitOK
	}
	code, err := simulate(&o, stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "exchange-sim: %v\n", err)
	}
	return code
}

// simulate runs the exchange and reports on it.
func simulate(o *options, stdout io.Writer) (int, error) {
	jdir := o.journal
	if jdir == "" {
		d, err := os.MkdirTemp("", "exchange-sim-")
		if err != nil {
			return exitFailed, fmt.Errorf("make a journal directory: %w (choose one with -journal)", err)
		}
		defer os.RemoveAll(d)
		jdir = d
	} else if err := os.MkdirAll(jdir, 0o700); err != nil {
		return exitFailed, fmt.Errorf("-journal: %w", err)
	}
	jpath := filepath.Join(jdir, "coordinator.journal")
	if _, err := os.Stat(jpath); err == nil {
		return exitFailed, fmt.Errorf("-journal: %s holds the journal of an earlier run: remove it or choose another directory", jpath)
	}
	if st, err := os.Stat(o.dir); err != nil || !st.IsDir() {
		return exitFailed, fmt.Errorf("-dir %s: not a directory we can use: %v", o.dir, err)
	}
	if err := syscall.Access(o.dir, 2 /* W_OK */); err != nil {
		return exitFailed, fmt.Errorf("-dir %s: not writable: %v; choose another with -dir", o.dir, err)
	}
	base := spec{
		Name: runName(), Dir: o.dir, Fabric: o.fabric, Journal: jpath, Market: o.market, Protocol: o.protocol, Idle: o.idle,
		Batch: o.batch, Rate: o.rate, Sync: o.sync, Faults: o.faults, Shocks: o.shocks, Halt: o.halt,
		Timeouts: defaultTimeouts(o), RingCapacity: engine.DefaultRingCapacity, Slots: engine.DefaultSlots,
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(interrupt)
	ui := newProgress(os.Stderr, o.progress)

	var (
		total   *stats
		lives   []liveState
		elapsed time.Duration
		faults  faultStats
		a       *audit
	)
	if o.mode == "threads" {
		var err error
		if total, lives, elapsed, err = runThreads(o, base, ui); err != nil {
			ui.end()
			return exitFailed, err
		}
		ui.end()
		a = auditRun(o.market, jpath, nil, lives, total)
	} else {
		sup, err := newSupervisor(o, base, ui)
		if err != nil {
			return exitFailed, err
		}
		defer sup.cleanup()
		s, ls, table, el, err := sup.run(interrupt)
		ui.end()
		if err != nil {
			code := exitFailed
			if errors.Is(err, errInterrupted) {
				code = exitSignaled
			}
			return code, err
		}
		total, lives, elapsed, faults = s, ls, el, sup.faults
		a = auditRun(o.market, jpath, table, lives, total)
	}
	faults.Lost = a.lost
	rep := newReport(o, total, elapsed, faults, a)
	if o.hgrm != "" {
		if err := writeHgrm(o.hgrm, total.E2E); err != nil {
			return exitFailed, err
		}
	}
	if o.json {
		if err := rep.writeJSON(stdout); err != nil {
			return exitFailed, err
		}
	} else {
		rep.writeText(stdout)
	}
	if !a.passed() {
		return exitFailed, errors.New("audit failed")
	}
	return exitOK, nil
}
