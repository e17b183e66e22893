package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReportInProcess runs a tiny plan of the in-process rows end to end
// (no simulator) and checks what it leaves behind: every configuration's
// row and distribution, both plots, the report. It asserts nothing about
// speed.
func TestReportInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every in-process configuration for real (seconds)")
	}
	out := t.TempDir()
	p := ShortPlan(out)
	p.StepFor, p.CompareFor, p.WarmFor, p.MaxRate = 20*time.Millisecond, 20*time.Millisecond, 5*time.Millisecond, 50_000
	p.HiccupFor, p.HiccupSpin = 10*time.Millisecond, 5*time.Millisecond
	stale := filepath.Join(out, "stale.hgrm")
	require.NoError(t, os.WriteFile(stale, []byte("old"), 0o644))
	var md strings.Builder
	rep, err := p.Run(context.Background(), &md)
	require.NoError(t, err)
	assert.NoFileExists(t, stale, "an earlier report's files are cleared")
	assert.Equal(t, rep.Markdown, md.String())
	for _, h := range []string{"## Hiccups of the idle system", "## Sweep: threads-3pc-park-b64", "## Side by side at", "## Headline", "Not measured: the processes rows"} {
		assert.Contains(t, rep.Markdown, h)
	}
	require.Len(t, rep.Sweeps, 4, "the processes sweep is skipped without a simulator")
	for _, s := range rep.Sweeps {
		require.NotEmpty(t, s.Rows, s.Config.Name())
		for _, r := range s.Rows {
			assert.FileExists(t, filepath.Join(out, s.Config.Name()+"-r"+FormatRate(r.Rate)+".hgrm"))
		}
	}
	var inProcess int
	for _, c := range Comparison() {
		if c.Deploy != Procs {
			inProcess++
			assert.Contains(t, rep.Markdown, "| "+c.Name())
			assert.FileExists(t, filepath.Join(out, c.Name()+".hgrm"))
		}
	}
	assert.Len(t, rep.Compare, inProcess)
	saved, err := os.ReadFile(filepath.Join(out, "report.md"))
	require.NoError(t, err)
	assert.Equal(t, rep.Markdown, string(saved))
	svg, err := os.ReadFile(filepath.Join(out, "percentiles.svg"))
	require.NoError(t, err)
	parseSVG(t, svg)
}
