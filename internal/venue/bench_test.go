package venue

import (
	"errors"
	"flag"
	"runtime"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/commitcore/commitcore/engine"
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
// window. Generating the flow and reading results is in the timed loop of
// both, so the ratio venue/nop is the participants' own cost.
//
//	go test -run='^$' -bench=ParticipantsMix -benchtime=50000x -count=3 ./internal/venue
//	go test -run='^$' -bench=ParticipantsMix -benchtime=50000x ./internal/venue -venue.idle=spin
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
}

// mixWarmup is the number of commands run before the timer starts, enough
// for the books to reach the flow's depth.
const mixWarmup = 60_000

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
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	drain()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(committed)/float64(b.N), "commits/op")
	b.ReportMetric(float64(fills)/float64(b.N), "fills/op")
	for _, q := range []struct {
		unit string
		pct  float64
	}{{"p50-ns", 50}, {"p99-ns", 99}, {"p99.9-ns", 99.9}} {
		b.ReportMetric(float64(hist.ValueAtPercentile(q.pct)), q.unit)
	}
}
