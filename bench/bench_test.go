package bench

import (
	"errors"
	"testing"

	"github.com/commitcore/commitcore/engine"
)

// The harness's hot paths, each beside a peer in the same run: recording a
// result against the bare HdrHistogram call it wraps, and driving a Core
// through the Driver against the bare Send/Poll loop. Both must report
// 0 allocs/op, or the harness would disturb what it measures.
//
//	go test -run '^$' -bench . -benchtime 200000x ./bench

func BenchmarkRecord(b *testing.B) {
	res := engine.Result{Prepare: 400, PreCommit: 300, Commit: 350}
	b.Run("recorder", func(b *testing.B) {
		r := NewRecorder()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			r.Record(0, int64(1000+i%5000), &res)
		}
	})
	b.Run("hdr-peer", func(b *testing.B) {
		h := NewHistogram()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			_ = h.RecordValue(int64(1000 + i%5000))
		}
	})
}

// nopSource numbers plain limit orders.
type nopSource struct{ n uint64 }

func (s *nopSource) Next(cmd *engine.Command) {
	*cmd = engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit, Symbol: 1, Account: 1, Price: 100, Qty: 1, ClientOrderID: s.n}
	s.n++
}

func (s *nopSource) Observe(*engine.Result) {}

func newNopCore(b *testing.B) *engine.Core {
	k, err := engine.New(engine.Config{Idle: engine.IdleYield, Timeouts: Timeouts()},
		&engine.NopParticipant{}, &engine.NopParticipant{}, &engine.NopParticipant{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Close() })
	return k
}

// BenchmarkDrive sends b.N commands 64 in flight through a Core of three
// NopParticipants, as fast as it takes them (a rate no core reaches): the
// Driver with its schedule and CO-corrected recording, and the bare loop.
// Their ratio is the harness's overhead per command.
func BenchmarkDrive(b *testing.B) {
	b.Run("driver", func(b *testing.B) {
		k := newNopCore(b)
		d := &Driver{Clock: engine.NewMonotonicClock(), Idle: driverIdle(engine.IdleYield)}
		b.ReportAllocs()
		b.ResetTimer()
		run, err := d.Run(k, &nopSource{}, Load{Rate: 1e12, Commands: b.N, Batch: 64})
		if err != nil {
			b.Fatal(err)
		}
		// Every command is due at once, so latencies here are queueing,
		// not service: throughput is the figure.
		b.ReportMetric(run.Throughput(), "cmds/s")
	})
	b.Run("bare-peer", func(b *testing.B) {
		k := newNopCore(b)
		src := &nopSource{}
		var cmd engine.Command
		inflight, sent := 0, 0
		done := func(*engine.Result) { inflight-- }
		idle := driverIdle(engine.IdleYield)
		b.ReportAllocs()
		b.ResetTimer()
		for sent < b.N || inflight > 0 {
			work := 0
			for inflight < 64 && sent < b.N {
				src.Next(&cmd)
				if _, err := k.Send(&cmd); errors.Is(err, engine.ErrBusy) {
					src.n--
					break
				} else if err != nil {
					b.Fatal(err)
				}
				inflight++
				sent++
				work++
			}
			n, err := k.Poll(done)
			if err != nil {
				b.Fatal(err)
			}
			idle.Idle(work + n)
		}
	})
}
