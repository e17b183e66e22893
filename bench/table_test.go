package bench

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormatNanos(t *testing.T) {
	for ns, want := range map[int64]string{
		0: "—", -5: "—", 7: "7 ns", 850: "850 ns", 999: "999 ns", 1000: "1 µs", 1234: "1.23 µs",
		45_678: "45.7 µs", 789_400: "789 µs", 999_600: "1 ms", 12_345_678: "12.3 ms", 4_560_000_000: "4.56 s",
		1_500_000_000_000: "1500 s",
	} {
		assert.Equal(t, want, FormatNanos(ns), "%d ns", ns)
	}
}

func TestFormatRate(t *testing.T) {
	for r, want := range map[float64]string{
		0: "—", 999: "999", 25_000: "25k", 125_000: "125k", 1_000_000: "1M", 1_500_000: "1.5M", 66_764.2: "66.8k",
	} {
		assert.Equal(t, want, FormatRate(r), "%v", r)
	}
}

func TestWriteTable(t *testing.T) {
	rows := []Row{
		{Name: "threads-3pc-park-b64", Rate: 100_000, Achieved: 99_800, Done: 100_000, Aborted: 12,
			E2E:     Percentiles{P50: 1500, P90: 2500, P99: 12_000, P999: 80_000, P9999: 1_200_000, Max: 3_000_000},
			Prepare: Phase{P50: 400, P99: 900}, PreCommit: Phase{P50: 300, P99: 800}, Commit: Phase{P50: 350, P99: 700},
			AllocsPerCmd: 0, GCs: 0},
		{Name: "threads-2pc-park-b1", Rate: 2_000_000, Achieved: 400_000, Saturated: true, Note: "achieved 20% of the offered rate",
			E2E:     Percentiles{P50: 2_000_000_000, P90: 3e9, P99: 4e9, P999: 4e9, P9999: 4e9, Max: 4e9},
			Prepare: Phase{P50: 400, P99: 900}, PreCommit: Phase{Absent: true}, Commit: Phase{P50: 350, P99: 700},
			AllocsPerCmd: 0.125, GCs: 2},
		{Name: "procs-3pc-park-b64", Rate: 100_000, Achieved: 100_000, AchievedIsLowerBound: true, AllocsPerCmd: -1,
			E2E: Percentiles{P50: 5000}, Prepare: Phase{Absent: true}, PreCommit: Phase{Absent: true}, Commit: Phase{Absent: true}},
	}
	var b strings.Builder
	require.NoError(t, WriteTable(&b, rows))
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 5)
	assert.Equal(t, "| configuration | offered/s | achieved/s | p50 | p90 | p99 | p99.9 | p99.99 | max | prepare p50/p99 | pre-commit p50/p99 | commit p50/p99 | aborted | allocs/cmd, GCs |", lines[0])
	for _, l := range lines {
		assert.Equal(t, 15, strings.Count(l, "|"), "every line has 14 columns: %s", l)
	}
	assert.Equal(t, "| threads-3pc-park-b64 | 100k | 99.8k | 1.5 µs | 2.5 µs | 12 µs | 80 µs | 1.2 ms | 3 ms | 400 ns / 900 ns | 300 ns / 800 ns | 350 ns / 700 ns | 12 | 0, 0 |", lines[2])
	assert.Equal(t, "| threads-2pc-park-b1 (saturated) — achieved 20% of the offered rate | 2M | 400k | 2 s | 3 s | 4 s | 4 s | 4 s | 4 s | 400 ns / 900 ns | — | 350 ns / 700 ns | 0 | 0.125, 2 |", lines[3])
	assert.Equal(t, "| procs-3pc-park-b64 | 100k | ≥100k | 5 µs | — | — | — | — | — | — | — | — | 0 | n/a |", lines[4])
}

func TestPhaseSums(t *testing.T) {
	r3 := &Row{Prepare: Phase{P50: 40_000}, PreCommit: Phase{P50: 30_000}, Commit: Phase{P50: 20_000}}
	r2 := &Row{Prepare: Phase{P50: 40_000}, Commit: Phase{P50: 25_000}}
	assert.Equal(t, "sum of phase p50s 3PC 90 µs (40 µs + 30 µs + 20 µs) vs 2PC 65 µs (40 µs + 25 µs), +25 µs for the extra phase", phaseSums(r3, r2))
	r2.Commit.P50 = 60_000
	assert.Contains(t, phaseSums(r3, r2), "−10 µs for the extra phase")
	r2.Commit.P50 = 50_000
	assert.Contains(t, phaseSums(r3, r2), ", 0 ns for the extra phase")
}
