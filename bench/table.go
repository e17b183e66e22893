package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteTable writes rows as a markdown table: offered and achieved rate,
// the end-to-end percentiles, each phase's p50/p99, aborts, and the heap
// allocations per command and garbage collections in the measured window.
func WriteTable(w io.Writer, rows []Row) error {
	var b strings.Builder
	b.WriteString("| configuration | offered/s | achieved/s | p50 | p90 | p99 | p99.9 | p99.99 | max | prepare p50/p99 | pre-commit p50/p99 | commit p50/p99 | aborted | allocs/cmd, GCs |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		name := r.Name
		if r.Saturated {
			name += " (saturated)"
		}
		if r.Note != "" {
			name += " — " + r.Note
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n",
			name, FormatRate(r.Rate), achieved(r),
			FormatNanos(r.E2E.P50), FormatNanos(r.E2E.P90), FormatNanos(r.E2E.P99),
			FormatNanos(r.E2E.P999), FormatNanos(r.E2E.P9999), FormatNanos(r.E2E.Max),
			formatPhase(r.Prepare), formatPhase(r.PreCommit), formatPhase(r.Commit),
			r.Aborted, formatAllocs(r.AllocsPerCmd, r.GCs))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatNanos writes a latency in ns with three significant figures in
// the unit that suits it: 850 ns, 1.23 µs, 45.6 µs, 789 µs, 12.3 ms, 4.56 s.
// Zero or negative is "—" (not measured).
func FormatNanos(ns int64) string {
	if ns <= 0 {
		return "—"
	}
	v := float64(ns)
	units := []string{"ns", "µs", "ms", "s"}
	i := 0
	for i < len(units)-1 && v >= 999.5 {
		v /= 1000
		i++
	}
	return sig3(v) + " " + units[i]
}

// FormatRate writes a rate per second with a k or M suffix: 125k, 1.5M.
// Zero is "—".
func FormatRate(r float64) string {
	switch {
	case r <= 0:
		return "—"
	case r >= 999_500:
		return sig3(r/1e6) + "M"
	case r >= 999.5:
		return sig3(r/1e3) + "k"
	}
	return sig3(r)
}

// sig3 formats v (0 < v < 1000) to three significant figures without
// trailing zeros after the point.
func sig3(v float64) string {
	var s string
	switch {
	case v >= 99.95:
		s = fmt.Sprintf("%.0f", v)
	case v >= 9.995:
		s = fmt.Sprintf("%.1f", v)
	default:
		s = fmt.Sprintf("%.2f", v)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// achieved writes a row's achieved rate, "≥" first when it is a lower
// bound.
func achieved(r Row) string {
	if r.AchievedIsLowerBound && r.Achieved > 0 {
		return "≥" + FormatRate(r.Achieved)
	}
	return FormatRate(r.Achieved)
}

func formatPhase(p Phase) string {
	if p.Absent {
		return "—"
	}
	return FormatNanos(p.P50) + " / " + FormatNanos(p.P99)
}

// formatAllocs writes heap allocations per command and the GCs in the
// window, or "n/a" when another process ran the core.
func formatAllocs(a float64, gcs int64) string {
	switch {
	case a < 0:
		return "n/a"
	case a == 0:
		return fmt.Sprintf("0, %d", gcs)
	}
	return fmt.Sprintf("%.3g, %d", a, gcs)
}
