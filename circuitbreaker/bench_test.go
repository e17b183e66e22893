package circuitbreaker

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/commitcore/commitcore/engine"
)

// latencies records per-operation latencies and reports their percentiles.
type latencies struct{ h *hdrhistogram.Histogram }

func newLatencies() latencies { return latencies{hdrhistogram.New(1, int64(time.Second), 3)} }

func (l latencies) record(d time.Duration) { _ = l.h.RecordValue(max(int64(d), 1)) }

func (l latencies) report(b *testing.B) {
	b.ReportMetric(float64(l.h.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(l.h.ValueAtQuantile(99)), "p99-ns")
	b.ReportMetric(float64(l.h.ValueAtQuantile(99.9)), "p99.9-ns")
	b.ReportMetric(float64(l.h.ValueAtQuantile(99.99)), "p99.99-ns")
	b.ReportMetric(float64(l.h.Max()), "max-ns")
}

// nopDecider is never called: the benchmarks do not trip.
type nopDecider struct{}

func (nopDecider) Abort(engine.TxID, engine.Reason) (engine.Decision, engine.Reason, error) {
	panic("benchmark tripped")
}

// BenchmarkTransaction is the breaker's cost per transaction on the
// coordinator's path: Begin, CheckFills with one fill, Committed. Its peer
// is the floor of any mutex-guarded design: three uncontended lock/unlock
// pairs.
func BenchmarkTransaction(b *testing.B) {
	b.Run("breaker", func(b *testing.B) {
		br, err := New(DefaultConfig(64), nopDecider{})
		if err != nil {
			b.Fatal(err)
		}
		for sym := range uint32(64) {
			if err := br.SetReference(sym, 10_000); err != nil {
				b.Fatal(err)
			}
		}
		cmd := newOrder(0, 10_000)
		out := outcome(0, 10_000)
		lat := newLatencies()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			tx := engine.TxID(i + 1)
			sym := uint32(i & 63)
			cmd.Symbol, out.Fills[0].Symbol = sym, sym
			out.Fills[0].Price = 10_000 + int64(i&15) - 8
			start := time.Now()
			br.Begin(tx, cmd, int64(i))
			br.CheckFills(tx, out, int64(i))
			br.Committed(tx, out, int64(i))
			lat.record(time.Since(start))
		}
		b.StopTimer()
		lat.report(b)
	})
	b.Run("mutex-floor", func(b *testing.B) {
		var mu sync.Mutex
		n := 0
		lat := newLatencies()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			for range 3 {
				mu.Lock()
				n++
				mu.Unlock()
			}
			lat.record(time.Since(start))
		}
		b.StopTimer()
		lat.report(b)
		_ = n
	})
}

// BenchmarkOverload is one admission and one observation per transaction
// for three participants; its peer is the floor of counting the
// observations with atomic adds.
func BenchmarkOverload(b *testing.B) {
	b.Run("overloads", func(b *testing.B) {
		s, err := NewOverloads(3, DefaultOverloadConfig())
		if err != nil {
			b.Fatal(err)
		}
		lat := newLatencies()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			now := int64(i) * 1000
			start := time.Now()
			s.Admit(now)
			for p := range 3 {
				s.Record(p, now, i%7 == 0)
			}
			lat.record(time.Since(start))
		}
		b.StopTimer()
		lat.report(b)
	})
	b.Run("atomic-floor", func(b *testing.B) {
		var ok, fails [3]atomic.Int64
		lat := newLatencies()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			for p := range 3 {
				if i%7 == 0 {
					fails[p].Add(1)
				} else {
					ok[p].Add(1)
				}
			}
			lat.record(time.Since(start))
		}
		b.StopTimer()
		lat.report(b)
	})
}
