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
// through engine.New in process with the three venue participants
// ("venue") and, as the peer in the same run, through a second Core with
// three engine.NopParticipants ("nop"), which isolates the protocol's
// cost. The two run interleaved, in blocks of 1,000 commands each, so that
// a burst of other work on a shared machine weighs on both alike; ns/op is
// the sum of the two, and venue-ns/op and nop-ns/op (and their ratio)
// are each side's own. The coordinator runs in the benchmark's goroutine
// and each Core's participants on one runner that waits as -venue.idle
// says (park by default, so that the idle side takes no processor).
// Timeouts are slack, so that a descheduled thread costs latency, not
// aborts. "submit" runs one command at a time (the round trip), "window64"
// up to 64 in flight (the throughput's inverse). Latency percentiles are
// per command: Submit's round trip, or Result.Total in the window.
// Generating the flow and reading the results are timed on both sides.
// "direct" calls the three participants on one goroutine without the
// engine: their cost alone.
//
//	go test -run='^$' -bench=ParticipantsMix -benchtime=50000x -count=3 ./internal/venue
func BenchmarkParticipantsMix(b *testing.B) {
	idle, err := engine.ParseIdleKind(*benchIdle)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("submit", func(b *testing.B) { benchMix(b, 1, idle) })
	b.Run("window64", func(b *testing.B) { benchMix(b, 64, idle) })
	b.Run("direct", benchDirect)
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
		decideDirect(ps, &res)
		if res.Reason == engine.ReasonNone {
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

var benchIdle = flag.String("venue.idle", "park", "how BenchmarkParticipantsMix's runners wait: park, yield or spin")

// mixBlock is the number of commands each side runs before the other's
// turn.
const mixBlock = 1000

// mixSide is one Core of BenchmarkParticipantsMix with its own flow.
type mixSide struct {
	b                     *testing.B
	k                     *engine.Core
	f                     *Flow
	window                int
	hist                  *hdrhistogram.Histogram
	cmd                   engine.Command
	res                   engine.Result // Submit's, kept here so that it does not escape
	out, committed, fills int
	record                bool
	elapsed               time.Duration
	deliver               func(*engine.Result)
}

func newMixSide(b *testing.B, real bool, window int, idle engine.IdleKind) *mixSide {
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
	s := &mixSide{b: b, k: k, f: NewFlow(c), window: window, hist: hdrhistogram.New(1, int64(10*time.Second), 3)}
	s.deliver = func(r *engine.Result) {
		s.out--
		s.f.Observe(r)
		if r.Reason == engine.ReasonNone {
			s.committed++
			s.fills += r.Out.NFills
		}
		if s.record && s.window > 1 {
			_ = s.hist.RecordValue(r.Total) // fails only beyond 10 s
		}
	}
	return s
}

func (s *mixSide) poll() {
	if _, err := s.k.Poll(s.deliver); err != nil {
		s.b.Fatal(err)
	}
}

// run sends n commands and waits for their results.
func (s *mixSide) run(n int) {
	t0 := time.Now()
	for range n {
		s.f.Next(&s.cmd)
		if s.window == 1 {
			t := time.Now()
			var err error
			if s.res, err = s.k.Submit(&s.cmd); err != nil {
				s.b.Fatal(err)
			}
			if s.record {
				_ = s.hist.RecordValue(int64(time.Since(t)))
			}
			s.out++
			s.deliver(&s.res)
			continue
		}
		for s.out >= s.window {
			s.poll()
		}
		for {
			_, err := s.k.Send(&s.cmd)
			if err == nil {
				break
			}
			if !errors.Is(err, engine.ErrBusy) {
				s.b.Fatal(err)
			}
			s.poll()
		}
		s.out++
	}
	for s.out > 0 {
		s.poll()
	}
	s.elapsed += time.Since(t0)
}

func benchMix(b *testing.B, window int, idle engine.IdleKind) {
	sides := []*mixSide{newMixSide(b, true, window, idle), newMixSide(b, false, window, idle)}
	defer func() {
		for _, s := range sides {
			if err := s.k.Close(); err != nil {
				b.Error(err)
			}
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, s := range sides {
		s.run(mixWarmup)
		s.committed, s.fills, s.elapsed, s.record = 0, 0, 0, true
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += mixBlock {
		for _, s := range sides {
			s.run(min(mixBlock, b.N-done))
		}
	}
	b.StopTimer()
	venue, nop := sides[0], sides[1]
	b.ReportMetric(float64(venue.elapsed.Nanoseconds())/float64(b.N), "venue-ns/op")
	b.ReportMetric(float64(nop.elapsed.Nanoseconds())/float64(b.N), "nop-ns/op")
	b.ReportMetric(float64(venue.elapsed)/float64(nop.elapsed), "venue/nop")
	b.ReportMetric(float64(b.N)/venue.elapsed.Seconds(), "venue-ops/s")
	b.ReportMetric(float64(venue.committed)/float64(b.N), "commits/op")
	b.ReportMetric(float64(venue.fills)/float64(b.N), "fills/op")
	for _, s := range []struct {
		name string
		side *mixSide
	}{{"venue", venue}, {"nop", nop}} {
		for _, q := range []struct {
			unit string
			pct  float64
		}{{"p50-ns", 50}, {"p99-ns", 99}, {"p99.9-ns", 99.9}} {
			b.ReportMetric(float64(s.side.hist.ValueAtPercentile(q.pct)), s.name+"-"+q.unit)
		}
	}
}
