package venue

import (
	"errors"
	"flag"
	"runtime"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/commitcore/commitcore/engine"
	"golang.org/x/sys/unix"
)

// BenchmarkParticipantsMix runs the default Flow (exchange-core's mix over
// 8 symbols and 1,000 accounts, about 250 resting orders per symbol)
// through engine.New in process, with the three venue participants
// ("venue") and, as the peer in the same run, with three
// engine.NopParticipants ("nop"), which isolates the protocol's cost. The
// coordinator runs in the benchmark's goroutine and the participants on
// one runner that waits as -venue.idle says (yield by default: on a shared
// 2-core machine two spinning threads starve everyone else). Timeouts are
// slack, so that a descheduled thread costs latency, not aborts. Each runs
// one command at a time ("submit": ns/op is the round trip) and with up to
// 64 in flight ("window64": ns/op is the throughput's inverse). Latency
// percentiles are per command: Submit's round trip, or Result.Total in the
// window. cpu-ns/op is the process's CPU time per command, which with
// -venue.idle=park (nothing spins) is the cost of the work itself even on
// a machine busy with other work. Generating the flow and reading results is in the timed loop of
// both, so the ratio venue/nop is the participants' own cost. A fifth,
// "venue/direct", calls the three participants directly on one goroutine,
// without the engine: their cost alone.
//
//	go test -run='^$' -bench=ParticipantsMix -benchtime=50000x -count=3 ./internal/venue
//	go test -run='^$' -bench=ParticipantsMix -benchtime=50000x ./internal/venue -venue.idle=park
func BenchmarkParticipantsMix(b *testing.B) {
	idle, err := engine.ParseIdleKind(*benchIdle)
	if err != nil {
		b.Fatal(err)
	}
	for _, parts := range []string{"venue", "nop"} {
		for _, window := range []int{1, 64} {
			name := parts + "/submit"
			if window > 1 {
				name = parts + "/window64"
			}
			b.Run(name, func(b *testing.B) { benchMix(b, parts == "venue", window, idle) })
		}
	}
	b.Run("venue/direct", benchDirect)
}

// benchDirect runs the flow through the three participants called directly
// on one goroutine, Prepare at each and then Commit or Abort, without the
// engine: the participants' own cost, which the engine's adds to.
func benchDirect(b *testing.B) {
	c := DefaultConfig()
	ps, err := NewAll(c)
	if err != nil {
		b.Fatal(err)
	}
	f := NewFlow(c)
	hist := hdrhistogram.New(1, int64(10*time.Second), 3)
	var res engine.Result
	tx := engine.TxID(0)
	committed, fills := 0, 0
	step := func(timed bool) {
		tx++
		res.Tx, res.Reason = tx, engine.ReasonNone
		f.Next(&res.Cmd)
		if res.Cmd.Kind == engine.NewOrder {
			res.Cmd.OrderID = uint64(tx)
		}
		var t0 time.Time
		if timed {
			t0 = time.Now()
		}
		for i, p := range ps {
			if res.Reason = p.Prepare(tx, &res.Cmd, &res.Out); res.Reason != engine.ReasonNone {
				for _, q := range ps[:i] {
					q.Abort(tx)
				}
				res.Out.Reset()
				break
			}
		}
		if res.Reason == engine.ReasonNone {
			for _, p := range ps {
				p.PreCommit(tx, &res.Out)
				p.Commit(tx, &res.Out)
			}
			committed++
			fills += res.Out.NFills
		}
		if timed {
			_ = hist.RecordValue(int64(time.Since(t0)))
		}
		f.Observe(&res)
	}
	for range mixWarmup {
		step(false)
	}
	committed, fills = 0, 0
	cpu0 := cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		step(i&15 == 0)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(committed)/float64(b.N), "commits/op")
	b.ReportMetric(float64(fills)/float64(b.N), "fills/op")
	reportPercentiles(b, hist)
}

// reportPercentiles reports hist's p50, p99 and p99.9 in nanoseconds.
func reportPercentiles(b *testing.B, hist *hdrhistogram.Histogram) {
	for _, q := range []struct {
		unit string
		pct  float64
	}{{"p50-ns", 50}, {"p99-ns", 99}, {"p99.9-ns", 99.9}} {
		b.ReportMetric(float64(hist.ValueAtPercentile(q.pct)), q.unit)
	}
}

// mixWarmup is the number of commands run before the timer starts, enough
// for the books to reach the flow's depth.
const mixWarmup = 60_000

// cpuTime returns the CPU time the process has used, user and system, in
// nanoseconds: on a machine shared with other work it measures the cost of
// an operation better than the wall clock does, as long as idle threads
// park rather than spin.
func cpuTime(b *testing.B) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

var benchIdle = flag.String("venue.idle", "yield", "how BenchmarkParticipantsMix's threads wait: park, yield or spin")

func benchMix(b *testing.B, real bool, window int, idle engine.IdleKind) {
	c := DefaultConfig()
	var ps []engine.Participant
	if real {
		var err error
		if ps, err = NewAll(c); err != nil {
			b.Fatal(err)
		}
	} else {
		ps = []engine.Participant{&engine.NopParticipant{}, &engine.NopParticipant{}, &engine.NopParticipant{}}
	}
	k, err := engine.New(slackConfig(engine.Config{Idle: idle, MaxInFlight: window}), ps...)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := k.Close(); err != nil {
			b.Error(err)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	f := NewFlow(c)
	hist := hdrhistogram.New(1, int64(10*time.Second), 3)
	var (
		cmd                        engine.Command
		out, committed, fills, rec int
	)
	deliver := func(r *engine.Result) {
		out--
		f.Observe(r)
		if r.Reason == engine.ReasonNone {
			committed++
			fills += r.Out.NFills
		}
		if rec > 0 && window > 1 {
			_ = hist.RecordValue(r.Total) // fails only beyond 10 s
		}
	}
	poll := func() {
		if _, err := k.Poll(deliver); err != nil {
			b.Fatal(err)
		}
	}
	step := func() {
		f.Next(&cmd)
		if window == 1 {
			t0 := time.Now()
			res, err := k.Submit(&cmd)
			e2e := time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			out++
			deliver(&res)
			if rec > 0 {
				_ = hist.RecordValue(int64(e2e))
			}
			return
		}
		for out >= window {
			poll()
		}
		for {
			_, err := k.Send(&cmd)
			if err == nil {
				break
			}
			if !errors.Is(err, engine.ErrBusy) {
				b.Fatal(err)
			}
			poll()
		}
		out++
	}
	drain := func() {
		for out > 0 {
			poll()
		}
	}
	for range mixWarmup {
		step()
	}
	drain()
	committed, fills, rec = 0, 0, 1
	cpu0 := cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	drain()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(committed)/float64(b.N), "commits/op")
	b.ReportMetric(float64(fills)/float64(b.N), "fills/op")
	reportPercentiles(b, hist)
}
