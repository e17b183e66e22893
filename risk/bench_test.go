package risk

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/commitcore/commitcore/engine"
)

// benchFlow is a steady cycle of two accounts with every limit on: one posts
// a resting sell, the other lifts it with an IOC buy, then they swap roles,
// so positions return to zero every four transactions.
type benchFlow struct {
	m    *Manager
	tx   engine.TxID
	cmd  engine.Command
	out  engine.Outcome
	last uint64
}

func newBenchFlow(b *testing.B) *benchFlow {
	m, err := New(Config{
		Accounts: 1000, Symbols: 8,
		Defaults:   Limits{MaxOrderQty: 1000, MaxOrderNotional: 1_000_000, PriceBandBps: 500, MaxPosition: 10_000, CreditLimit: 10_000_000, OrdersPerSecond: 1000, Burst: 10},
		References: []int64{100, 100, 100, 100, 100, 100, 100, 100},
		MaxOrders:  1024, MaxInFlight: 64, FollowLastTrade: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchFlow{m: m}
}

func (f *benchFlow) next() {
	f.tx++
	step := uint32((f.tx - 1) % 4)
	maker, taker := uint32(1), uint32(2)
	if step >= 2 {
		maker, taker = taker, maker
	}
	now := int64(f.tx) * int64(time.Millisecond)
	f.out.Reset()
	if step%2 == 0 {
		f.cmd = engine.Command{Kind: engine.NewOrder, Side: engine.Sell, Type: engine.Limit, Symbol: 3, Account: maker, OrderID: uint64(f.tx), Price: 100, Qty: 10, Time: now}
		f.out.Resting, f.out.RestingPrice = 10, 100
		f.last = uint64(f.tx)
		return
	}
	f.cmd = engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Symbol: 3, Account: taker, OrderID: uint64(f.tx), Price: 101, Qty: 10, Time: now}
	f.out.Fills[0] = engine.Fill{TradeID: engine.TradeIDOf(f.tx, 0), Symbol: 3, TakerSide: engine.Buy, MakerOrder: f.last, TakerOrder: uint64(f.tx), Maker: maker, Taker: taker, Price: 100, Qty: 10}
	f.out.NFills = 1
}

func reportLatency(b *testing.B, h *hdrhistogram.Histogram) {
	b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-ns")
	b.ReportMetric(float64(h.ValueAtQuantile(99.9)), "p99.9-ns")
	b.ReportMetric(float64(h.ValueAtQuantile(99.99)), "p99.99-ns")
	b.ReportMetric(float64(h.Max()), "max-ns")
}

// BenchmarkRiskPrepareCommit measures one transaction's Prepare, PreCommit
// and Commit with every check on: a resting sell, or an IOC buy that fills
// against it.
func BenchmarkRiskPrepareCommit(b *testing.B) {
	f := newBenchFlow(b)
	h := hdrhistogram.New(1, int64(time.Second), 3)
	b.ReportAllocs()
	for b.Loop() {
		f.next()
		t0 := time.Now()
		if r := f.m.Prepare(f.tx, &f.cmd, nil); r != engine.ReasonNone {
			b.Fatalf("tx %d: %s", f.tx, r)
		}
		f.m.PreCommit(f.tx, &f.out)
		f.m.Commit(f.tx, &f.out)
		_ = h.RecordValue(int64(time.Since(t0)))
	}
	b.StopTimer()
	if err := f.m.Audit().Err(); err != nil {
		b.Fatal(err)
	}
	reportLatency(b, h)
}

// BenchmarkRiskPrepareAbort is the peer: the same commands prepared and
// aborted, the path of a transaction another participant voted down.
func BenchmarkRiskPrepareAbort(b *testing.B) {
	f := newBenchFlow(b)
	h := hdrhistogram.New(1, int64(time.Second), 3)
	b.ReportAllocs()
	for b.Loop() {
		f.next()
		t0 := time.Now()
		if r := f.m.Prepare(f.tx, &f.cmd, nil); r != engine.ReasonNone {
			b.Fatalf("tx %d: %s", f.tx, r)
		}
		f.m.Abort(f.tx)
		_ = h.RecordValue(int64(time.Since(t0)))
	}
	b.StopTimer()
	if err := f.m.Audit().Err(); err != nil {
		b.Fatal(err)
	}
	reportLatency(b, h)
}
