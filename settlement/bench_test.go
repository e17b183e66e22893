package settlement

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/commitcore/commitcore/engine"
)

// benchFlow is a steady trading cycle of two accounts: one posts a resting
// sell, the other lifts it with an IOC buy, then they swap roles, so that
// balances return to where they started every four transactions.
type benchFlow struct {
	l    *Ledger
	tx   engine.TxID
	cmd  engine.Command
	out  engine.Outcome
	last uint64 // the resting order to lift
}

func newBenchFlow(b *testing.B) *benchFlow {
	l, err := New(Config{
		Accounts: 1000, Symbols: 8, FeeAccount: 999, MakerFeeBps: 1, TakerFeeBps: 2,
		Cash: func() []int64 {
			c := make([]int64, 1000)
			for i := range c {
				c[i] = 1 << 50
			}
			return c
		}(),
		Holdings: func() []int64 {
			h := make([]int64, 8000)
			for i := range h {
				h[i] = 1 << 40
			}
			return h
		}(),
		MaxOrders: 1024, MaxInFlight: 64,
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchFlow{l: l}
}

// next fills in the next command and its outcome.
func (f *benchFlow) next() {
	f.tx++
	step := uint32((f.tx - 1) % 4)
	maker, taker := uint32(1), uint32(2)
	if step >= 2 {
		maker, taker = taker, maker
	}
	f.out.Reset()
	if step%2 == 0 {
		f.cmd = engine.Command{Kind: engine.NewOrder, Side: engine.Sell, Type: engine.Limit, Symbol: 3, Account: maker, OrderID: uint64(f.tx), Price: 100, Qty: 10, Time: int64(f.tx)}
		f.out.Resting, f.out.RestingPrice = 10, 100
		f.last = uint64(f.tx)
		return
	}
	f.cmd = engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Symbol: 3, Account: taker, OrderID: uint64(f.tx), Price: 101, Qty: 10, Time: int64(f.tx)}
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

// BenchmarkSettlementPrepareCommit measures one transaction's Prepare,
// PreCommit and Commit: a resting sell, or an IOC buy settling one fill
// against it with maker and taker fees.
func BenchmarkSettlementPrepareCommit(b *testing.B) {
	f := newBenchFlow(b)
	h := hdrhistogram.New(1, int64(time.Second), 3)
	b.ReportAllocs()
	for b.Loop() {
		f.next()
		t0 := time.Now()
		if r := f.l.Prepare(f.tx, &f.cmd, nil); r != engine.ReasonNone {
			b.Fatalf("tx %d: %s", f.tx, r)
		}
		f.l.PreCommit(f.tx, &f.out)
		f.l.Commit(f.tx, &f.out)
		_ = h.RecordValue(int64(time.Since(t0)))
	}
	b.StopTimer()
	if err := f.l.Audit().Err(); err != nil {
		b.Fatal(err)
	}
	reportLatency(b, h)
}

// BenchmarkSettlementPrepareAbort is the peer: the same commands prepared
// and aborted, the path of a transaction another participant voted down.
func BenchmarkSettlementPrepareAbort(b *testing.B) {
	f := newBenchFlow(b)
	h := hdrhistogram.New(1, int64(time.Second), 3)
	b.ReportAllocs()
	for b.Loop() {
		f.next()
		t0 := time.Now()
		if r := f.l.Prepare(f.tx, &f.cmd, nil); r != engine.ReasonNone {
			b.Fatalf("tx %d: %s", f.tx, r)
		}
		f.l.Abort(f.tx)
		_ = h.RecordValue(int64(time.Since(t0)))
	}
	b.StopTimer()
	if err := f.l.Audit().Err(); err != nil {
		b.Fatal(err)
	}
	reportLatency(b, h)
}
