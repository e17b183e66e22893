package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var (
	soakRuns = flag.Int("xsim.soak", 0, "run the soak: this many simulator runs with a random fault schedule each (make soak runs 200)")
	soakSeed = flag.Uint64("xsim.soak.seed", 1, "the soak's first seed; run i uses seed+i")
)

// soakArgs draws run seed's flags: a topology, a load and one to three
// events at random commands: SIGKILL or SIGSTOP of any component,
// coordinator included (always at least one), and price shocks.
func soakArgs(seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 0x50a4))
	const orders = 1500
	args := []string{"-orders", fmt.Sprint(orders), "-seed", fmt.Sprint(seed),
		"-batch", fmt.Sprint([]int{1, 2, 8, 32}[r.IntN(4)]),
		"-protocol", []string{"3pc", "2pc"}[r.IntN(2)]}
	used := map[int]bool{}
	// The first event is always a kill or a stall, so every run is faulted.
	for i := range 1 + r.IntN(3) {
		at := 100 + r.IntN(orders-200)
		if used[at] {
			continue
		}
		used[at] = true
		role := roleNames[r.IntN(len(roleNames))]
		kind := r.IntN(5)
		if i == 0 {
			kind = r.IntN(4)
		}
		switch kind {
		case 0, 1:
			args = append(args, "-kill", fmt.Sprintf("%s@%d", role, at))
		case 2, 3:
			d := time.Duration(1+r.IntN(50)) * time.Millisecond
			args = append(args, "-stall", fmt.Sprintf("%s@%d:%v", role, at, d))
		default:
			args = append(args, "-shock", fmt.Sprintf("SYM%d@%d:%d", r.IntN(8), at, []int{-30, -15, 20, 40}[r.IntN(4)]))
		}
	}
	return args
}

// TestSoak runs the simulator again and again under random faults; every
// run must end with a clean audit and no transaction lost. It is off by
// default (make soak runs it); a failing run prints the command that
// replays it.
func TestSoak(t *testing.T) {
	if *soakRuns == 0 {
		t.Skip("the soak runs with -xsim.soak=N (make soak)")
	}
	start := time.Now()
	var faults, commands float64
	var longest time.Duration
	for i := range *soakRuns {
		seed := *soakSeed + uint64(i)
		args := soakArgs(seed)
		t0 := time.Now()
		code, rep, out := simulateJSON(t, args...)
		took := time.Since(t0)
		longest = max(longest, took)
		replay := "go run ./cmd/exchange-sim " + strings.Join(args, " ")
		if code != exitOK || rep == nil {
			t.Fatalf("seed %d: exit %d; replay with: %s\n%s", seed, code, replay, out)
		}
		if bad := auditFailures(rep); len(bad) > 0 {
			t.Fatalf("seed %d: %s; replay with: %s\n%s", seed, strings.Join(bad, ", "), replay, out)
		}
		n := num(t, rep, "faults", "injected")
		if n == 0 {
			t.Fatalf("seed %d injected no fault; replay with: %s", seed, replay)
		}
		faults += n
		commands += num(t, rep, "commands")
	}
	t.Logf("%d runs, %.0f faults injected, %.0f commands, all audits clean, in %v (longest run %v)",
		*soakRuns, faults, commands, time.Since(start).Round(time.Millisecond), longest.Round(time.Millisecond))
}

// auditFailures lists what is wrong with a run's report: failed audit
// checks, lost transactions, commands without exactly one result.
func auditFailures(rep map[string]any) []string {
	var bad []string
	audit, _ := rep["audit"].(map[string]any)
	if audit == nil {
		return []string{"no audit in the report"}
	}
	for k, v := range audit {
		if v != true {
			bad = append(bad, "audit "+k+" failed")
		}
	}
	faults, _ := rep["faults"].(map[string]any)
	if lost, _ := faults["lost_transactions"].(float64); lost != 0 {
		bad = append(bad, fmt.Sprintf("%v transactions lost", lost))
	}
	return bad
}
