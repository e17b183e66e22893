package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/internal/venue"
)

// Plan is what a report measures and for how long.
type Plan struct {
	// Out is the directory the .hgrm files, the plots and report.md go to.
	Out string
	// Sim is the exchange-sim binary for the processes rows; empty skips
	// them (and says so in the report).
	Sim string
	// Market is the venue the participants run and the flow trades.
	Market venue.Config
	// StepFor is each measured run's length at its offered rate; WarmFor
	// the unrecorded warm-up before it.
	StepFor, WarmFor time.Duration
	// MaxRate is the sweeps' last offered rate unless they saturate first.
	MaxRate float64
	// CompareRate is the highest offered rate of the side-by-side
	// comparison: it runs at the highest rate the first sweep (threads,
	// 3PC, batch 64) kept up with, up to this, so that its rows compare
	// protocols, fabrics and idle strategies rather than queues.
	CompareRate float64
	// Reps is how many times each in-process comparison configuration
	// runs, CompareFor each, interleaved with the others so that the
	// machine's drift hits them all alike; the repetitions' histograms are
	// merged. Many short runs spread a burst of noise more evenly than a
	// few long ones.
	Reps       int
	CompareFor time.Duration
	// ProcsOrders caps a processes run's commands (the simulator has no
	// warm-up, so it runs whole).
	ProcsOrders int
	// HiccupFor and HiccupSpin are the idle-system measure's sleeping and
	// spinning durations.
	HiccupFor, HiccupSpin time.Duration
	// Tries is how many runs a sweep gives a rate before it counts as
	// saturated (see Sweep).
	Tries int
	// Short marks the quick variant in the report's header.
	Short bool
}

// FullPlan is `make bench`: every table, distribution and plot in a few
// minutes on a two-core machine.
func FullPlan(out string) Plan {
	return Plan{Out: out, Market: venue.DefaultConfig(), StepFor: time.Second, WarmFor: 250 * time.Millisecond,
		MaxRate: 16_000_000, CompareRate: 100_000, Reps: 6, CompareFor: 400 * time.Millisecond, Tries: 2, ProcsOrders: 400_000,
		HiccupFor: 2 * time.Second, HiccupSpin: 250 * time.Millisecond}
}

// ShortPlan is the quick variant (under a minute): the same rows with
// runs a fifth as long, each run once.
func ShortPlan(out string) Plan {
	return Plan{Out: out, Market: venue.DefaultConfig(), StepFor: 200 * time.Millisecond, WarmFor: 100 * time.Millisecond,
		MaxRate: 16_000_000, CompareRate: 100_000, Reps: 1, CompareFor: 200 * time.Millisecond, Tries: 1, ProcsOrders: 20_000,
		HiccupFor: 300 * time.Millisecond, HiccupSpin: 50 * time.Millisecond, Short: true}
}

// Comparison lists the side-by-side configurations: each one differs from
// the first (3PC, threads, spin-then-park, batch 64) in one respect.
func Comparison() []Config {
	base := Config{Deploy: Threads, Mode: engine.ThreePhase, Idle: engine.IdlePark, Batch: 64}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	return []Config{
		base,
		with(func(c *Config) { c.Mode = engine.TwoPhase }),
		with(func(c *Config) { c.Batch = 8 }),
		with(func(c *Config) { c.Batch = 1 }),
		with(func(c *Config) { c.Idle = engine.IdleSpin }),
		with(func(c *Config) { c.Mode, c.Idle = engine.TwoPhase, engine.IdleSpin }),
		with(func(c *Config) { c.Deploy = ShmFabric }),
		with(func(c *Config) { c.Deploy = UnixFabric }),
		with(func(c *Config) { c.Deploy = TCPFabric }),
		with(func(c *Config) { c.Deploy = Procs }),
		with(func(c *Config) { c.Deploy, c.Mode = Procs, engine.TwoPhase }),
		with(func(c *Config) { c.Deploy, c.Batch = Procs, 1 }),
		with(func(c *Config) { c.Deploy, c.Idle = Procs, engine.IdleSpin }),
	}
}

// Report is what Plan.Run measured.
type Report struct {
	Plan Plan
	// Sweeps are the fixed-rate sweeps by configuration name.
	Sweeps []SweepResult
	// CompareRate is the side-by-side comparison's offered rate.
	CompareRate float64
	// Compare are the side-by-side rows at CompareRate.
	Compare []Row
	// Hiccups is the idle-system measure.
	Hiccups *Hiccups
	// CPU and ChildCPU are the CPU time (user and system) this process
	// and its children (the simulator's processes) got during the report:
	// set against the wall time, they show how much of the machine the
	// measurement had.
	CPU, ChildCPU time.Duration
	// Markdown is the report as printed.
	Markdown string
}

// SweepResult is one configuration's sweep.
type SweepResult struct {
	Config Config
	Rows   []Row
	// Sustained is the highest offered rate kept up with; Peak the most
	// commands per second finished at any rate.
	Sustained, Peak float64
}

// sweepConfigs are the configurations swept over rates: the full core
// batched in threads (3PC and 2PC at 64, 3PC at 512 too) and in
// processes, and unbatched.
func sweepConfigs() []Config {
	return []Config{
		{Deploy: Threads, Mode: engine.ThreePhase, Idle: engine.IdlePark, Batch: 64},
		{Deploy: Threads, Mode: engine.TwoPhase, Idle: engine.IdlePark, Batch: 64},
		{Deploy: Threads, Mode: engine.ThreePhase, Idle: engine.IdlePark, Batch: 512},
		{Deploy: Threads, Mode: engine.ThreePhase, Idle: engine.IdlePark, Batch: 1},
		{Deploy: Procs, Mode: engine.ThreePhase, Idle: engine.IdlePark, Batch: 64},
	}
}

// runner measures configurations one run at a time in this process.
type runner struct {
	plan Plan
	dir  string // scratch: journals
	seq  int
}

func (rn *runner) load(c Config, rate float64, measure time.Duration) Load {
	n := max(int(rate*measure.Seconds()), 1000)
	w := int(rate * rn.plan.WarmFor.Seconds())
	budget := measure + rn.plan.WarmFor
	return Load{Rate: rate, Commands: n, Warmup: w, Batch: c.Batch, Deadline: 2*budget + budget/2}
}

// inProcess runs c at rate in this process.
func (rn *runner) inProcess(c Config, rate float64, measure time.Duration) (*Run, error) {
	rn.seq++
	rg, err := newRig(c, rn.plan.Market, rn.dir, rn.seq)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name(), err)
	}
	runtime.GC()
	d := &Driver{Clock: engine.NewMonotonicClock(), Idle: driverIdle(c.Idle)}
	run, err := d.Run(rg.core, venue.NewFlow(rn.plan.Market), rn.load(c, rate, measure))
	cerr := rg.close()
	if err = errors.Join(err, cerr); err != nil {
		return nil, fmt.Errorf("%s at %s/s: %w", c.Name(), FormatRate(rate), err)
	}
	return run, nil
}

// procs runs c at rate with the simulator. A run that has not finished
// well past its schedule is killed and reported as cut off at its
// deadline: the simulator, unlike the Driver, has no deadline of its own.
func (rn *runner) procs(ctx context.Context, c Config, rate float64, file string) (Row, error) {
	n := min(max(int(rate*rn.plan.StepFor.Seconds()), 1000), rn.plan.ProcsOrders)
	limit := 3*time.Duration(float64(n)/rate*float64(time.Second)) + 2*time.Second + 4*rn.plan.StepFor
	tctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	row, err := RunProcs(tctx, rn.plan.Sim, c, rate, n, filepath.Join(rn.plan.Out, file))
	if err != nil && tctx.Err() != nil && ctx.Err() == nil {
		return Row{Name: c.Name(), Rate: rate, Commands: n, Truncated: true, AllocsPerCmd: -1, GCs: -1,
			Prepare: Phase{Absent: true}, PreCommit: Phase{Absent: true}, Commit: Phase{Absent: true}}, nil
	}
	return row, err
}

// Run measures the plan, writes the files into Out and the markdown
// report to w.
func (p Plan) Run(ctx context.Context, w io.Writer) (*Report, error) {
	if err := os.MkdirAll(p.Out, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := clearOut(p.Out); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp("", "commitcore-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(scratch)
	rn := &runner{plan: p, dir: scratch}
	rep := &Report{Plan: p}
	load0 := loadAverage()
	start := time.Now()
	self0, kids0 := cpuTimes()

	rep.Hiccups = MeasureHiccups(p.HiccupFor, time.Millisecond, p.HiccupSpin)

	if rep.Sweeps, err = rn.sweeps(ctx); err != nil {
		return nil, err
	}
	rep.CompareRate = p.CompareRate
	if len(rep.Sweeps) > 0 {
		sustained := rep.Sweeps[0].Sustained
		if sustained == 0 {
			sustained = Rates(p.MaxRate)[0]
		}
		rep.CompareRate = min(rep.CompareRate, sustained)
	}
	if rep.Compare, err = rn.compare(ctx, rep.CompareRate); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	self1, kids1 := cpuTimes()
	rep.CPU, rep.ChildCPU = self1-self0, kids1-kids0
	for _, r := range rep.Compare {
		if err := writeHgrmFile(filepath.Join(p.Out, r.Name+".hgrm"), r); err != nil {
			return nil, err
		}
	}
	var md bytes.Buffer
	if err := rep.write(&md, load0, elapsed); err != nil {
		return nil, err
	}
	rep.Markdown = md.String()
	if err := os.WriteFile(filepath.Join(p.Out, "report.md"), md.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := rep.plots(); err != nil {
		return nil, err
	}
	_, err = io.WriteString(w, rep.Markdown)
	return rep, err
}

// measure runs c once at rate (in this process, or with the simulator)
// and writes its distribution to file in Out.
func (rn *runner) measure(ctx context.Context, c Config, rate float64, file string) (Row, error) {
	if c.Deploy == Procs {
		return rn.procs(ctx, c, rate, file)
	}
	run, err := rn.inProcess(c, rate, rn.plan.StepFor)
	if err != nil {
		return Row{}, err
	}
	row := RowOf(c.Name(), run)
	return row, writeHgrmFile(filepath.Join(rn.plan.Out, file), row)
}

// sweeps runs the sweep configurations over the rates, interleaved.
func (rn *runner) sweeps(ctx context.Context) ([]SweepResult, error) {
	var cs []Config
	var measures []func(float64) (Row, error)
	for _, c := range sweepConfigs() {
		if c.Deploy == Procs && rn.plan.Sim == "" {
			continue
		}
		cs = append(cs, c)
		measures = append(measures, func(rate float64) (Row, error) {
			return rn.measure(ctx, c, rate, fmt.Sprintf("%s-r%s.hgrm", c.Name(), FormatRate(rate)))
		})
	}
	rows, err := Sweep(Rates(rn.plan.MaxRate), measures, DefaultSaturation, rn.plan.Tries)
	if err != nil {
		return nil, err
	}
	out := make([]SweepResult, len(cs))
	for i, c := range cs {
		out[i] = SweepResult{Config: c, Rows: rows[i]}
		out[i].Sustained, out[i].Peak = Capacity(rows[i])
	}
	return out, nil
}

// compare runs the side-by-side configurations at rate: the in-process
// ones Reps times round robin, merged; then the processes ones.
func (rn *runner) compare(ctx context.Context, rate float64) ([]Row, error) {
	cs := Comparison()
	runs := make([]*Run, len(cs))
	for range rn.plan.Reps {
		for i, c := range cs {
			if c.Deploy == Procs {
				continue
			}
			run, err := rn.inProcess(c, rate, rn.plan.CompareFor)
			if err != nil {
				return nil, err
			}
			if runs[i] == nil {
				runs[i] = run
				continue
			}
			mergeRun(runs[i], run)
		}
	}
	var rows []Row
	for i, c := range cs {
		if c.Deploy == Procs {
			if rn.plan.Sim == "" {
				continue
			}
			row, err := rn.procs(ctx, c, rate, c.Name()+".hgrm")
			if err != nil {
				return nil, err
			}
			DefaultSaturation.Judge(&row)
			rows = append(rows, row)
			continue
		}
		row := RowOf(c.Name(), runs[i])
		DefaultSaturation.Judge(&row)
		if rn.plan.Reps > 1 {
			row.Note = strings.TrimPrefix(row.Note+fmt.Sprintf("; %d runs merged", rn.plan.Reps), "; ")
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// mergeRun adds b's measurements to a: histograms and counts merge, and
// the elapsed times add, so throughput stays done over time spent.
func mergeRun(a, b *Run) {
	a.Rec.Merge(b.Rec)
	a.Sent += b.Sent
	a.Done += b.Done
	a.Elapsed += b.Elapsed
	a.Mallocs += b.Mallocs
	a.GCs += b.GCs
	a.Truncated = a.Truncated || b.Truncated
	a.Load.Commands += b.Load.Commands
}

// clearOut removes what an earlier report left in dir (its .hgrm files,
// plots and report.md), so that every file there is from this run.
func clearOut(dir string) error {
	old, err := filepath.Glob(filepath.Join(dir, "*.hgrm"))
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for _, f := range append(old, filepath.Join(dir, "percentiles.svg"), filepath.Join(dir, "sweep.svg"), filepath.Join(dir, "report.md")) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

func writeHgrmFile(path string, r Row) error {
	if r.Hist == nil {
		return nil // the simulator wrote its own
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := errors.Join(WriteHgrm(f, r.Hist), f.Close()); err != nil {
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return nil
}

func (rep *Report) plots() error {
	var cmp []Series
	for _, r := range rep.Compare {
		if len(r.Points) > 0 { // a row with nothing done has no line
			cmp = append(cmp, Series{Name: r.Name, Points: r.Points})
		}
	}
	if err := writePlotFile(filepath.Join(rep.Plan.Out, "percentiles.svg"),
		fmt.Sprintf("commitcore end-to-end latency at %s commands/s, open loop, CO corrected", FormatRate(rep.CompareRate)), cmp); err != nil {
		return err
	}
	var sw []Series
	for _, s := range rep.Sweeps {
		for _, r := range s.Rows {
			if s.Config.Deploy == Threads && s.Config.Mode == engine.ThreePhase && s.Config.Batch == 64 && len(r.Points) > 0 {
				sw = append(sw, Series{Name: FormatRate(r.Rate) + "/s" + map[bool]string{true: " (saturated)"}[r.Saturated], Points: r.Points})
			}
		}
	}
	if len(sw) == 0 {
		return nil
	}
	return writePlotFile(filepath.Join(rep.Plan.Out, "sweep.svg"), "threads, 3PC, batch 64: end-to-end latency by offered rate", sw)
}

func writePlotFile(path, title string, s []Series) error {
	if len(s) == 0 {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := errors.Join(WritePlot(f, title, s), f.Close()); err != nil {
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return nil
}

// cpuTimes returns the user plus system CPU time of this process and of
// its waited-for children.
func cpuTimes() (self, children time.Duration) {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if unix.Getrusage(unix.RUSAGE_CHILDREN, &ru) == nil {
		children = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return self, children
}

// loadAverage returns /proc/loadavg's first three fields, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (rep *Report) write(w io.Writer, load0 string, elapsed time.Duration) error {
	p := rep.Plan
	var b strings.Builder
	variant := "full"
	if p.Short {
		variant = "short"
	}
	to := Timeouts()
	fmt.Fprintf(&b, "# commitcore latency report (%s)\n\n", variant)
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), GOMAXPROCS %d, %s %s/%s. Load average at start %s, at end %s: the machine is shared, so these figures include other tenants' noise.\n\n",
		runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, load0, loadAverage())
	fmt.Fprintf(&b, "CPU time: this process %s, the simulator's processes %s, over %s of wall time: %.0f%% of one core on this %d-core machine; the rest went to other tenants.\n\n",
		rep.CPU.Round(time.Millisecond), rep.ChildCPU.Round(time.Millisecond), elapsed.Round(time.Millisecond),
		100*(rep.CPU+rep.ChildCPU).Seconds()/elapsed.Seconds(), runtime.NumCPU())
	fmt.Fprintf(&b, "Runtime: GOGC=%s, GOMEMLIMIT=%s (effective limit %d bytes); runtime.GC() before every run. Timeouts: PREPARE %s, PRE-COMMIT %s.\n\n",
		envOr("GOGC", "100 (unset)"), envOr("GOMEMLIMIT", "unset"), debug.SetMemoryLimit(-1), to.Prepare, to.PreCommit)
	fmt.Fprintf(&b, "Method: open loop at a fixed rate, %s measured (sweeps; side-by-side rows %d × %s, interleaved and merged) after %s of warm-up per run; latency from each command's intended send time (coordinated omission corrected), HdrHistogram 3 significant figures. The order flow is the venue's exchange-core-style mix over %d symbols and %d accounts; the participants are the real matching, risk and settlement with a journal (no flush). A rate is *saturated* when under %.0f%% of it gets done, its median passes %s, or its run hits the deadline. Whole report: %s.\n\n",
		p.StepFor, p.Reps, p.CompareFor, p.WarmFor, p.Market.Symbols, p.Market.Accounts, 100*DefaultSaturation.MinRatio, FormatNanos(int64(DefaultSaturation.MaxMedian)), elapsed.Round(time.Second))

	h := rep.Hiccups
	fmt.Fprintf(&b, "## Hiccups of the idle system\n\n")
	fmt.Fprintf(&b, "| measure | p50 | p99 | p99.9 | max |\n|---|--:|--:|--:|--:|\n")
	fmt.Fprintf(&b, "| sleep %s, late by (jHiccup-style) | %s | %s | %s | %s |\n", h.Interval,
		FormatNanos(h.Sleep.ValueAtQuantile(50)), FormatNanos(h.Sleep.ValueAtQuantile(99)), FormatNanos(h.Sleep.ValueAtQuantile(99.9)), FormatNanos(h.Sleep.Max()))
	fmt.Fprintf(&b, "| spinning thread, gap between clock reads (%s) | %s | %s | %s | %s |\n\n", h.SpinFor,
		FormatNanos(h.Spin.ValueAtQuantile(50)), FormatNanos(h.Spin.ValueAtQuantile(99)), FormatNanos(h.Spin.ValueAtQuantile(99.9)), FormatNanos(h.Spin.Max()))
	n, longest := GCPauses()
	fmt.Fprintf(&b, "Go GC stop-the-world pauses in the whole report: %d, longest ≤ %s; most are the runtime.GC() forced before each run, outside the measured windows (the tables' last column counts the collections inside them).\n\n", n, FormatNanos(int64(longest)))

	for _, s := range rep.Sweeps {
		fmt.Fprintf(&b, "## Sweep: %s\n\n", s.Config.Name())
		if err := WriteTable(&b, s.Rows); err != nil {
			return err
		}
		fmt.Fprintf(&b, "\nSustained: %s commands/s offered and kept up with; peak finished: %s commands/s.\n\n", FormatRate(s.Sustained), FormatRate(s.Peak))
	}
	fmt.Fprintf(&b, "## Side by side at %s commands/s\n\n", FormatRate(rep.CompareRate))
	fmt.Fprintf(&b, "Each row differs from the first in one respect. The rate is the highest the first sweep kept up with, at most %s/s, so that the rows compare the configurations rather than their queues.\n\n", FormatRate(p.CompareRate))
	if err := WriteTable(&b, rep.Compare); err != nil {
		return err
	}
	b.WriteString("\nThe fabric rows differ only in what carries the messages between the coordinator and the participants' goroutine: a shared-memory link (accel.ShmFabric), a unix-domain socket (accel.UnixFabric), TCP over loopback (accel.TCPFabric).\n")
	if p.Sim == "" {
		b.WriteString("Not measured: the processes rows (no exchange-sim binary given).\n")
	}
	b.WriteString("\n")
	rep.summary(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// phaseSums compares the per-phase medians of a 3PC row and a 2PC row:
// the sums, and what the third phase adds, the figure the NSE reports as
// +23 µs.
func phaseSums(r3, r2 *Row) string {
	s3 := r3.Prepare.P50 + r3.PreCommit.P50 + r3.Commit.P50
	s2 := r2.Prepare.P50 + r2.Commit.P50
	sign, diff := "+", FormatNanos(max(s3-s2, s2-s3))
	switch {
	case s3 < s2:
		sign = "−"
	case s3 == s2:
		sign, diff = "", "0 ns"
	}
	return fmt.Sprintf("sum of phase p50s 3PC %s (%s + %s + %s) vs 2PC %s (%s + %s), %s%s for the extra phase",
		FormatNanos(s3), FormatNanos(r3.Prepare.P50), FormatNanos(r3.PreCommit.P50), FormatNanos(r3.Commit.P50),
		FormatNanos(s2), FormatNanos(r2.Prepare.P50), FormatNanos(r2.Commit.P50), sign, diff)
}

// summary writes the headline figures: capacity, p99 at 100k/s and 1M/s,
// the 3PC/2PC ratios and whether the hot path allocated.
func (rep *Report) summary(b *strings.Builder) {
	b.WriteString("## Headline\n\n")
	find := func(mode engine.Mode, batch int) *SweepResult {
		for i := range rep.Sweeps {
			c := rep.Sweeps[i].Config
			if c.Deploy == Threads && c.Mode == mode && c.Batch == batch {
				return &rep.Sweeps[i]
			}
		}
		return nil
	}
	at := func(s *SweepResult, rate float64) *Row {
		if s == nil {
			return nil
		}
		for i := range s.Rows {
			if s.Rows[i].Rate == rate {
				return &s.Rows[i]
			}
		}
		return nil
	}
	three, two := find(engine.ThreePhase, 64), find(engine.TwoPhase, 64)
	for _, s := range rep.Sweeps {
		c := s.Config
		fmt.Fprintf(b, "- Saturation, %s %s batch %d: kept up with %s/s offered; peak %s commands/s finished.\n",
			c.Deploy, strings.ToUpper(protocolName(c.Mode)), c.Batch, FormatRate(s.Sustained), FormatRate(s.Peak))
	}
	for _, rate := range []float64{100_000, 1_000_000} {
		reached := false
		for i := range rep.Sweeps {
			s := &rep.Sweeps[i]
			if s.Config.Mode != engine.ThreePhase || s.Config.Batch == 1 {
				continue
			}
			if r := at(s, rate); r != nil {
				reached = true
				sat := ""
				if r.Saturated {
					sat = " (saturated)"
				}
				fmt.Fprintf(b, "- p99 at %s/s, %s 3PC batch %d: %s (p50 %s, p99.99 %s)%s.\n", FormatRate(rate), s.Config.Deploy, s.Config.Batch,
					FormatNanos(r.E2E.P99), FormatNanos(r.E2E.P50), FormatNanos(r.E2E.P9999), sat)
			}
		}
		if !reached {
			fmt.Fprintf(b, "- %s/s: not reached by the batched 3PC sweeps (each stopped at a lower rate it could not keep up with).\n", FormatRate(rate))
		}
	}
	if three != nil && two != nil && two.Peak > 0 {
		fmt.Fprintf(b, "- 3PC/2PC peak throughput: %.3g (%s vs %s commands/s).\n", three.Peak/two.Peak, FormatRate(three.Peak), FormatRate(two.Peak))
	}
	if three != nil && two != nil {
		// The protocol's price is read where neither is queueing: the
		// highest rate both kept up with.
		var r3, r2 *Row
		for i := range three.Rows {
			if r := at(two, three.Rows[i].Rate); r != nil && !r.Saturated && !three.Rows[i].Saturated {
				r3, r2 = &three.Rows[i], r
			}
		}
		if r3 != nil && r2.E2E.P50 > 0 && r2.E2E.P99 > 0 {
			fmt.Fprintf(b, "- 3PC/2PC at %s/s (the highest rate both kept up with), threads batch 64: p50 %.3g× (%s vs %s), p99 %.3g× (%s vs %s); %s.\n",
				FormatRate(r3.Rate), float64(r3.E2E.P50)/float64(r2.E2E.P50), FormatNanos(r3.E2E.P50), FormatNanos(r2.E2E.P50),
				float64(r3.E2E.P99)/float64(r2.E2E.P99), FormatNanos(r3.E2E.P99), FormatNanos(r2.E2E.P99), phaseSums(r3, r2))
		} else {
			b.WriteString("- 3PC/2PC latency: no rate that both sweeps kept up with.\n")
		}
	}
	var c3, c2 *Row
	for i := range rep.Compare {
		switch rep.Compare[i].Name {
		case Comparison()[0].Name():
			c3 = &rep.Compare[i]
		case Comparison()[1].Name():
			c2 = &rep.Compare[i]
		}
	}
	if c3 != nil && c2 != nil && c2.E2E.P50 > 0 && c2.E2E.P99 > 0 {
		caveat := ""
		if c3.Saturated || c2.Saturated {
			caveat = " — at least one saturated, so this is queueing more than protocol"
		}
		fmt.Fprintf(b, "- 3PC/2PC side by side at %s/s, threads batch 64: p50 %.3g× (%s vs %s), p99 %.3g× (%s vs %s); %s%s.\n", FormatRate(rep.CompareRate),
			float64(c3.E2E.P50)/float64(c2.E2E.P50), FormatNanos(c3.E2E.P50), FormatNanos(c2.E2E.P50),
			float64(c3.E2E.P99)/float64(c2.E2E.P99), FormatNanos(c3.E2E.P99), FormatNanos(c2.E2E.P99), phaseSums(c3, c2), caveat)
	}
	zero, measured, worst := 0, 0, Row{}
	for _, r := range rep.Compare {
		if r.AllocsPerCmd < 0 || r.Done == 0 {
			continue
		}
		measured++
		if r.AllocsPerCmd == 0 {
			zero++
		}
		if r.AllocsPerCmd > worst.AllocsPerCmd {
			worst = r
		}
	}
	if measured > 0 {
		fmt.Fprintf(b, "- Hot-path allocations (MemStats-style Mallocs delta over each measured window, the whole process, order-flow generator included): %d of %d in-process side-by-side rows allocated nothing", zero, measured)
		if worst.Name != "" {
			fmt.Fprintf(b, "; the most was %.3g per command (%s)", worst.AllocsPerCmd, worst.Name)
		}
		b.WriteString(".\n")
	}
	b.WriteString("\n")
}
