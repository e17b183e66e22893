package bench

import (
	"github.com/HdrHistogram/hdrhistogram-go"
)

// Percentiles are a latency distribution's summary in nanoseconds.
type Percentiles struct {
	P50, P90, P99, P999, P9999, Max int64
}

// PercentilesOf summarises h.
func PercentilesOf(h *hdrhistogram.Histogram) Percentiles {
	return Percentiles{
		P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), P9999: h.ValueAtQuantile(99.99), Max: h.Max(),
	}
}

// Phase is one protocol phase's median and p99 in nanoseconds; Absent
// marks a phase the protocol does not have (pre-commit in 2PC).
type Phase struct {
	P50, P99 int64
	Absent   bool
}

// Row is one measured configuration at one offered rate: a line of the
// report's tables and a line of its plot.
type Row struct {
	// Name is the configuration's name (Config.Name).
	Name string
	// Rate is the offered load in commands per second.
	Rate float64
	// Achieved is the measured commands finished per second.
	Achieved float64
	// AchievedIsLowerBound marks an Achieved whose time includes more than
	// the run (the simulator's counts its coordinator's process start):
	// saturation is then judged by latency alone.
	AchievedIsLowerBound bool
	// Commands is the number of measured commands offered; Done and
	// Aborted count those finished and, of them, aborted.
	Commands      int
	Done, Aborted uint64
	// Truncated marks a run cut off at its deadline.
	Truncated bool
	// Tries is how many runs a sweep took at this rate (see Sweep).
	Tries int
	// E2E is the CO-corrected end-to-end latency.
	E2E Percentiles
	// Prepare, PreCommit and Commit are the phases of committed commands.
	Prepare, PreCommit, Commit Phase
	// AllocsPerCmd is the process's heap allocations per measured command,
	// or negative when not measured (another process ran the core).
	AllocsPerCmd float64
	// GCs counts garbage collections in the measured window (-1 unknown).
	GCs int64
	// Saturated marks a rate the core did not keep up with; Note says why
	// or adds context.
	Saturated bool
	Note      string
	// Points are the end-to-end percentile distribution for the plot.
	Points []Point
	// Hist is the end-to-end histogram when this process measured it, for
	// the .hgrm file; nil for rows read from another process's report.
	Hist *hdrhistogram.Histogram
}

// RowOf summarises run, measured under configuration name.
func RowOf(name string, run *Run) Row {
	rec := run.Rec
	r := Row{
		Name: name, Rate: run.Load.Rate, Achieved: run.Throughput(), Commands: run.Load.Commands, Done: uint64(run.Done),
		Aborted: rec.Aborted, Truncated: run.Truncated,
		E2E: PercentilesOf(rec.E2E), Prepare: phaseOf(rec.Prepare), PreCommit: phaseOf(rec.PreCommit), Commit: phaseOf(rec.Commit),
		AllocsPerCmd: -1, GCs: int64(run.GCs), Points: PointsOf(rec.E2E), Hist: rec.E2E,
	}
	if run.Done > 0 {
		r.AllocsPerCmd = float64(run.Mallocs) / float64(run.Done)
	}
	return r
}

func phaseOf(h *hdrhistogram.Histogram) Phase {
	if h.TotalCount() == 0 {
		return Phase{Absent: true}
	}
	return Phase{P50: h.ValueAtQuantile(50), P99: h.ValueAtQuantile(99)}
}
