package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// simReport is the part of cmd/exchange-sim's -json report the bench
// reads.
type simReport struct {
	Commands   uint64            `json:"commands"`
	Committed  uint64            `json:"committed"`
	Aborted    map[string]uint64 `json:"aborted"`
	Throughput float64           `json:"throughput_per_s"`
	Latency    struct {
		P50   int64 `json:"p50"`
		P99   int64 `json:"p99"`
		P999  int64 `json:"p999"`
		P9999 int64 `json:"p9999"`
		Max   int64 `json:"max"`
	} `json:"latency_ns"`
	Phase map[string]struct {
		P50 int64 `json:"p50"`
		P99 int64 `json:"p99"`
	} `json:"phase_ns"`
	Audit map[string]bool `json:"audit"`
}

// RunProcs runs configuration c (Deploy Procs) with the exchange
// simulator binary sim: four processes over shared memory, open loop at
// rate for n commands, latency from the intended send time. Its
// end-to-end distribution is written to hgrm, from which the row's p90
// and plot points are read. The simulator's own audit must pass. Its
// throughput counts from the coordinator process's start, so the row's
// Achieved is a lower bound.
func RunProcs(ctx context.Context, sim string, c Config, rate float64, n int, hgrm string) (Row, error) {
	args := []string{"-json", "-progress", "0", "-mode", "procs",
		"-protocol", protocolName(c.Mode), "-idle", c.Idle.String(), "-batch", strconv.Itoa(c.Batch),
		"-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-orders", strconv.Itoa(n), "-hgrm", hgrm}
	cmd := exec.CommandContext(ctx, sim, args...)
	// Past its deadline the simulator is interrupted, not killed, so that it
	// stops its children and removes its shared-memory segments; a SIGKILL
	// follows only if it has not exited 5 s later.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return Row{}, fmt.Errorf("run %s %v: %w: %s", filepath.Base(sim), args, err, bytes.TrimSpace(errb.Bytes()))
	}
	var rep simReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return Row{}, fmt.Errorf("exchange-sim report: %w", err)
	}
	if !rep.Audit["ok"] {
		return Row{}, fmt.Errorf("exchange-sim %v: audit failed: %v", args, rep.Audit)
	}
	f, err := os.Open(hgrm)
	if err != nil {
		return Row{}, fmt.Errorf("exchange-sim distribution: %w", err)
	}
	defer f.Close()
	pts, p90, err := ParseHgrm(f)
	if err != nil {
		return Row{}, fmt.Errorf("exchange-sim distribution %s: %w", hgrm, err)
	}
	var aborted uint64
	for _, v := range rep.Aborted {
		aborted += v
	}
	phase := func(name string) Phase {
		p, ok := rep.Phase[name]
		if !ok || p.P99 <= 1 { // the simulator clamps an absent phase's zeros to 1 ns
			return Phase{Absent: true}
		}
		return Phase{P50: p.P50, P99: p.P99}
	}
	l := rep.Latency
	return Row{
		Name: c.Name(), Rate: rate, Achieved: rep.Throughput, AchievedIsLowerBound: true, Commands: n, Done: rep.Commands, Aborted: aborted,
		E2E:     Percentiles{P50: l.P50, P90: p90, P99: l.P99, P999: l.P999, P9999: l.P9999, Max: l.Max},
		Prepare: phase("prepare"), PreCommit: phase("precommit"), Commit: phase("commit"),
		AllocsPerCmd: -1, GCs: -1, Points: pts,
	}, nil
}

// BuildSim builds cmd/exchange-sim into dir and returns the binary's
// path. The module root is found from the working directory.
func BuildSim(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "exchange-sim")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/commitcore/commitcore/cmd/exchange-sim")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build exchange-sim: %w: %s", err, bytes.TrimSpace(out))
	}
	return bin, nil
}
