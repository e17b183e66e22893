package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/commitcore/commitcore/engine"
)

// Histogram bounds: 1 ns to 100 s at three significant figures.
const (
	histMin, histMax = 1, 100 * int64(time.Second)
	histFigures      = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histFigures) }

// stats are what one coordinator incarnation (or the threads run) counted.
// They travel from a coordinator process to the supervisor as JSON, the
// histograms in HdrHistogram's compressed V2 encoding.
type stats struct {
	Commands  uint64            `json:"commands"`
	Committed uint64            `json:"committed"`
	Aborted   map[string]uint64 `json:"aborted"`
	Trades    uint64            `json:"trades"`
	Recovered uint64            `json:"recovered"`
	Breaker   breakerStats      `json:"breaker"`
	// Latency histograms in ns: end to end, then each phase.
	E2E, Prepare, PreCommit, Commit *hdrhistogram.Histogram `json:"-"`
	Hists                           [4][]byte               `json:"hists"`
}

// breakerStats sum up the circuit breaker's trip reports. Restored counts
// the halts a standby coordinator found in force and carried on when it
// took over.
type breakerStats struct {
	Trips     int      `json:"trips"`
	Aborted   int      `json:"aborted"`
	Completed int      `json:"completed"`
	Restored  int      `json:"restored"`
	Causes    []string `json:"causes,omitempty"`
}

func newStats() *stats {
	return &stats{Aborted: map[string]uint64{}, E2E: newHist(), Prepare: newHist(), PreCommit: newHist(), Commit: newHist()}
}

func (s *stats) hists() [4]*hdrhistogram.Histogram {
	return [4]*hdrhistogram.Histogram{s.E2E, s.Prepare, s.PreCommit, s.Commit}
}

// result counts one finished transaction; lat is its end-to-end latency,
// or negative when it has none (a recovered transaction).
func (s *stats) result(r *engine.Result, lat int64) {
	if r.Reason == engine.ReasonNone {
		s.Committed++
		s.Trades += uint64(r.Out.NFills)
	} else {
		s.Aborted[r.Reason.String()]++
	}
	if r.Recovered {
		s.Recovered++
		return
	}
	record(s.E2E, lat)
	if r.Reason == engine.ReasonNone {
		record(s.Prepare, r.Prepare)
		record(s.PreCommit, r.PreCommit)
		record(s.Commit, r.Commit)
	}
}

func record(h *hdrhistogram.Histogram, v int64) {
	// Values beyond the range are clamped so a freak stall still counts.
	h.RecordValue(min(max(v, histMin), histMax))
}

// encode fills Hists from the histograms for the trip to the supervisor.
func (s *stats) encode() error {
	for i, h := range s.hists() {
		b, err := h.EncodeV2()
		if err != nil {
			return fmt.Errorf("encode histogram: %w", err)
		}
		s.Hists[i] = b
	}
	return nil
}

// merge adds o (decoded from its Hists) into s.
func (s *stats) merge(o *stats) error {
	s.Commands += o.Commands
	s.Committed += o.Committed
	s.Trades += o.Trades
	s.Recovered += o.Recovered
	for k, v := range o.Aborted {
		s.Aborted[k] += v
	}
	s.Breaker.Trips += o.Breaker.Trips
	s.Breaker.Aborted += o.Breaker.Aborted
	s.Breaker.Completed += o.Breaker.Completed
	s.Breaker.Restored += o.Breaker.Restored
	s.Breaker.Causes = append(s.Breaker.Causes, o.Breaker.Causes...)
	for i, h := range s.hists() {
		if o.Hists[i] == nil {
			continue
		}
		d, err := hdrhistogram.Decode(o.Hists[i])
		if err != nil {
			return fmt.Errorf("decode histogram %d: %w", i, err)
		}
		h.Merge(d)
	}
	return nil
}

func (s *stats) aborted() uint64 {
	var n uint64
	for _, v := range s.Aborted {
		n += v
	}
	return n
}

// faultStats count what -kill and -stall did.
type faultStats struct {
	Injected  int    `json:"injected"`
	Recovered int    `json:"recovered"`
	Lost      uint64 `json:"lost_transactions"`
	// Takeovers are the times from a killed coordinator's death to its
	// standby driving the flow, every in-flight transaction decided.
	Takeovers []int64 `json:"takeover_ns,omitempty"`
}

// report is the run's JSON report; its keys are a promise to scripts.
type report struct {
	Commands   uint64            `json:"commands"`
	Committed  uint64            `json:"committed"`
	Aborted    map[string]uint64 `json:"aborted"`
	Trades     uint64            `json:"trades"`
	Throughput float64           `json:"throughput_per_s"`
	Latency    percentiles       `json:"latency_ns"`
	Phase      struct {
		Prepare   phasePercentiles `json:"prepare"`
		PreCommit phasePercentiles `json:"precommit"`
		Commit    phasePercentiles `json:"commit"`
	} `json:"phase_ns"`
	Breaker breakerStats    `json:"breaker"`
	Faults  faultStats      `json:"faults"`
	Audit   map[string]bool `json:"audit"`

	// Context for the text summary and for readers of the JSON.
	Mode     string  `json:"mode"`
	Fabric   string  `json:"fabric,omitempty"`
	Protocol string  `json:"protocol"`
	Idle     string  `json:"idle"`
	Batch    int     `json:"batch"`
	Rate     float64 `json:"rate_per_s,omitempty"`
	Seconds  float64 `json:"elapsed_s"`

	details []string // audit failures, for the text summary
}

type percentiles struct {
	P50   int64 `json:"p50"`
	P99   int64 `json:"p99"`
	P999  int64 `json:"p999"`
	P9999 int64 `json:"p9999"`
	Max   int64 `json:"max"`
}

type phasePercentiles struct {
	P50 int64 `json:"p50"`
	P99 int64 `json:"p99"`
}

func percentilesOf(h *hdrhistogram.Histogram) percentiles {
	return percentiles{h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.ValueAtQuantile(99.9), h.ValueAtQuantile(99.99), h.Max()}
}

func phaseOf(h *hdrhistogram.Histogram) phasePercentiles {
	return phasePercentiles{h.ValueAtQuantile(50), h.ValueAtQuantile(99)}
}

func newReport(o *options, s *stats, elapsed time.Duration, f faultStats, a *audit) *report {
	r := &report{
		Commands: s.Commands, Committed: s.Committed, Aborted: s.Aborted, Trades: s.Trades,
		Latency: percentilesOf(s.E2E), Breaker: s.Breaker, Faults: f, Audit: a.verdicts(),
		Mode: o.mode, Fabric: o.fabric, Protocol: protocolName(o.protocol), Idle: o.idle.String(), Batch: o.batch, Rate: o.rate,
		Seconds: elapsed.Seconds(), details: a.failures(),
	}
	if elapsed > 0 {
		r.Throughput = float64(s.Commands) / elapsed.Seconds()
	}
	r.Phase.Prepare, r.Phase.PreCommit, r.Phase.Commit = phaseOf(s.Prepare), phaseOf(s.PreCommit), phaseOf(s.Commit)
	return r
}

func protocolName(m engine.Mode) string {
	if m == engine.TwoPhase {
		return "2pc"
	}
	return "3pc"
}

func (r *report) writeJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

func (r *report) writeText(w io.Writer) {
	ok := "PASSED"
	if !r.Audit["ok"] {
		ok = "FAILED"
	}
	fmt.Fprintf(w, "\nexchange-sim: %s mode", r.Mode)
	if r.Mode == "procs" {
		fmt.Fprintf(w, " over %s", r.Fabric)
	}
	fmt.Fprintf(w, ", %s, idle %s, batch %d", r.Protocol, r.Idle, r.Batch)
	if r.Rate > 0 {
		fmt.Fprintf(w, ", open loop at %.0f/s", r.Rate)
	}
	fmt.Fprintf(w, "\n\n  commands    %d in %.2fs (%.0f/s)\n", r.Commands, r.Seconds, r.Throughput)
	fmt.Fprintf(w, "  committed   %d\n", r.Committed)
	var aborted uint64
	keys := make([]string, 0, len(r.Aborted))
	for k, v := range r.Aborted {
		keys = append(keys, k)
		aborted += v
	}
	slices.SortFunc(keys, func(a, b string) int { return int(r.Aborted[b]) - int(r.Aborted[a]) })
	fmt.Fprintf(w, "  aborted     %d", aborted)
	for i, k := range keys {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(w, "%s%s %d", sep, k, r.Aborted[k])
	}
	fmt.Fprintf(w, "\n  trades      %d\n\n", r.Trades)
	fmt.Fprintf(w, "  latency          p50       p99     p99.9    p99.99       max\n")
	l := r.Latency
	fmt.Fprintf(w, "  end to end  %9s %9s %9s %9s %9s\n", ns(l.P50), ns(l.P99), ns(l.P999), ns(l.P9999), ns(l.Max))
	for _, p := range []struct {
		name string
		v    phasePercentiles
	}{{"prepare", r.Phase.Prepare}, {"pre-commit", r.Phase.PreCommit}, {"commit", r.Phase.Commit}} {
		fmt.Fprintf(w, "  %-11s %9s %9s\n", p.name, ns(p.v.P50), ns(p.v.P99))
	}
	fmt.Fprintf(w, "\n  breaker     %d trips, %d in-flight aborted, %d completed", r.Breaker.Trips, r.Breaker.Aborted, r.Breaker.Completed)
	if r.Breaker.Restored > 0 {
		fmt.Fprintf(w, ", %d halts carried across a takeover", r.Breaker.Restored)
	}
	fmt.Fprintln(w)
	for _, c := range r.Breaker.Causes {
		fmt.Fprintf(w, "              %s\n", c)
	}
	fmt.Fprintf(w, "  faults      %d injected, %d recovered, %d transactions lost\n", r.Faults.Injected, r.Faults.Recovered, r.Faults.Lost)
	for _, t := range r.Faults.Takeovers {
		fmt.Fprintf(w, "              coordinator takeover: %s from the old one's death to the standby driving the flow\n", ns(t))
	}
	names := make([]string, 0, len(r.Audit))
	for k := range r.Audit {
		if k != "ok" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	fmt.Fprintf(w, "  audit       %s, %d checks", ok, len(names))
	for i, k := range names {
		if i%4 == 0 {
			fmt.Fprint(w, "\n             ")
		}
		mark := "ok"
		if !r.Audit[k] {
			mark = "FAILED"
		}
		fmt.Fprintf(w, " %s %s", k, mark)
	}
	fmt.Fprintln(w)
	for _, d := range r.details {
		fmt.Fprintf(w, "              %s\n", d)
	}
}

// ns formats nanoseconds for a column.
func ns(v int64) string {
	switch {
	case v < 10_000:
		return fmt.Sprintf("%dns", v)
	case v < 10_000_000:
		return fmt.Sprintf("%.1fµs", float64(v)/1e3)
	case v < 10_000_000_000:
		return fmt.Sprintf("%.1fms", float64(v)/1e6)
	}
	return fmt.Sprintf("%.1fs", float64(v)/1e9)
}

// writeHgrm writes h in HdrHistogram's percentile-distribution text format,
// values in microseconds as the HdrHistogram plotter expects.
func writeHgrm(path string, h *hdrhistogram.Histogram) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write -hgrm %s: %w", path, err)
	}
	if _, err := h.PercentilesPrint(f, 5, 1000); err != nil {
		f.Close()
		return fmt.Errorf("write -hgrm %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write -hgrm %s: %w", path, err)
	}
	return nil
}
