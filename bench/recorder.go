package bench

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/commitcore/commitcore/engine"
)

// Histogram bounds: 1 ns to 100 s at three significant figures, so that
// a saturated run's growing queue still lands inside the range.
const (
	histLowest  = 1
	histHighest = int64(100 * time.Second)
	histDigits  = 3
)

// NewHistogram returns a latency histogram in nanoseconds covering 1 ns to
// 100 s at three significant figures.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// Recorder accumulates the latencies of one configuration: end to end,
// measured from each command's intended send time, and per phase as the
// engine's Result reports them. It allocates nothing once made.
type Recorder struct {
	// E2E is the end-to-end latency: completion minus intended send time.
	E2E *hdrhistogram.Histogram
	// Prepare, PreCommit and Commit are the phases of committed
	// transactions (PreCommit stays empty in 2PC).
	Prepare, PreCommit, Commit *hdrhistogram.Histogram
	// Committed and Aborted count the recorded results.
	Committed, Aborted uint64
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{E2E: NewHistogram(), Prepare: NewHistogram(), PreCommit: NewHistogram(), Commit: NewHistogram()}
}

// Record counts one finished command that was due at intended and whose
// Result arrived at done (both on the driver's clock). Recording against
// the intended time, not the actual send time, is what corrects for
// coordinated omission: a command the driver could not send because the
// core was stalled is charged the stall.
func (r *Recorder) Record(intended, done int64, res *engine.Result) {
	clampRecord(r.E2E, done-intended)
	if res.Reason != engine.ReasonNone {
		r.Aborted++
		return
	}
	r.Committed++
	clampRecord(r.Prepare, res.Prepare)
	if res.PreCommit > 0 {
		clampRecord(r.PreCommit, res.PreCommit)
	}
	clampRecord(r.Commit, res.Commit)
}

// Merge adds o's counts and histograms into r.
func (r *Recorder) Merge(o *Recorder) {
	r.E2E.Merge(o.E2E)
	r.Prepare.Merge(o.Prepare)
	r.PreCommit.Merge(o.PreCommit)
	r.Commit.Merge(o.Commit)
	r.Committed += o.Committed
	r.Aborted += o.Aborted
}

// clampRecord records v, clamped into the histogram's range so that a
// freak stall still counts (at 100 s) instead of being dropped.
func clampRecord(h *hdrhistogram.Histogram, v int64) {
	// RecordValue fails only outside the range, which the clamp excludes.
	_ = h.RecordValue(min(max(v, histLowest), histHighest))
}
