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

// BenchmarkTrip is one market-wide trip settling inFlight transactions by
// CAS on a real decision table (heap memory): the time from the trip to
// every in-flight transaction resolved. Its peer settles the same set by
// scanning the table's InFlight view, which knows no symbols and so can
// only halt the whole market. A trip allocates its report.
func BenchmarkTrip(b *testing.B) {
	const slots, inFlight = 4096, 1024
	setup := func(b *testing.B) (*engine.DecisionTable, *Breaker, *uint64) {
		table, err := engine.InitDecisionTable(make([]byte, engine.DecisionTableSize(slots)), slots)
		if err != nil {
			b.Fatal(err)
		}
		if err := table.AdvanceEpoch(1); err != nil {
			b.Fatal(err)
		}
		br, err := New(Config{Symbols: 16, MaxInFlight: slots}, table)
		if err != nil {
			b.Fatal(err)
		}
		return table, br, new(uint64)
	}
	// open opens and begins inFlight transactions, every third one decided
	// COMMIT already, and returns them.
	open := func(b *testing.B, table *engine.DecisionTable, br *Breaker, seq *uint64, txs []engine.TxID) {
		for i := range txs {
			*seq++
			tx := engine.MakeTxID(1, *seq)
			if err := table.Open(tx); err != nil {
				b.Fatal(err)
			}
			br.Begin(tx, newOrder(uint32(i%16), 1), 0)
			if i%3 == 0 {
				table.Commit(tx)
			}
			txs[i] = tx
		}
	}
	finish := func(table *engine.DecisionTable, br *Breaker, txs []engine.TxID) {
		for _, tx := range txs {
			table.Abort(tx, engine.ReasonTimeout) // decides any the trip did not
			table.Release(tx)
			br.Aborted(tx)
		}
	}
	b.Run("breaker", func(b *testing.B) {
		table, br, seq := setup(b)
		txs := make([]engine.TxID, inFlight)
		lat := newLatencies()
		b.ReportAllocs()
		for i := range b.N {
			b.StopTimer()
			open(b, table, br, seq, txs)
			b.StartTimer()
			start := time.Now()
			rep, err := br.Halt(MarketScope(), int64(i), time.Minute)
			lat.record(time.Since(start))
			b.StopTimer()
			if err != nil || rep.InFlight() != inFlight {
				b.Fatalf("trip: %v, %d settled", err, rep.InFlight())
			}
			if err := br.Resume(MarketScope(), int64(i)); err != nil {
				b.Fatal(err)
			}
			finish(table, br, txs)
			b.StartTimer()
		}
		b.StopTimer()
		lat.report(b)
	})
	b.Run("table-scan", func(b *testing.B) {
		table, br, seq := setup(b)
		txs := make([]engine.TxID, inFlight)
		lat := newLatencies()
		b.ReportAllocs()
		for range b.N {
			b.StopTimer()
			open(b, table, br, seq, txs)
			b.StartTimer()
			start := time.Now()
			n := 0
			for s := range table.InFlight() {
				if s.Decision == engine.Undecided {
					table.Abort(s.Tx, engine.ReasonCircuitBreaker)
				}
				n++
			}
			lat.record(time.Since(start))
			b.StopTimer()
			if n != inFlight {
				b.Fatalf("scan found %d", n)
			}
			finish(table, br, txs)
			b.StartTimer()
		}
		b.StopTimer()
		lat.report(b)
	})
}

// benchFiller is matching for BenchmarkCoordinatorGate: it fills each new
// order in full at its limit price, so every transaction's fills go
// through the band check.
type benchFiller struct{ engine.NopParticipant }

func (f *benchFiller) Prepare(tx engine.TxID, cmd *engine.Command, out *engine.Outcome) engine.Reason {
	out.Reset()
	out.NFills = 1
	out.Fills[0] = engine.Fill{TradeID: engine.TradeIDOf(tx, 0), Symbol: cmd.Symbol, TakerSide: cmd.Side,
		TakerOrder: cmd.OrderID, Price: cmd.Price, Qty: cmd.Qty}
	return f.NopParticipant.Prepare(tx, cmd, out)
}

// BenchmarkCoordinatorGate is one whole 3PC transaction through the
// engine's Coordinator and three Nodes on one goroutine (no transport),
// with the breakers as the coordinator's Gate and, as the peer, without
// one: the price of wiring them in. Every transaction trades, inside the
// band, on one of 64 symbols.
func BenchmarkCoordinatorGate(b *testing.B) {
	for _, bc := range []struct {
		name     string
		breaker  bool
		overload bool
	}{{"no-gate", false, false}, {"breaker", true, false}, {"breaker+overload", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			const slots = 1024
			table, err := engine.InitDecisionTable(make([]byte, engine.DecisionTableSize(slots)), slots)
			if err != nil {
				b.Fatal(err)
			}
			cfg := engine.CoordinatorConfig{Epoch: 1, Participants: 3, Matching: 0, Table: table, Log: benchLog{}}
			if bc.breaker {
				bcfg := DefaultConfig(64)
				bcfg.MaxInFlight = slots
				br, err := New(bcfg, table)
				if err != nil {
					b.Fatal(err)
				}
				for sym := range uint32(64) {
					if err := br.SetReference(sym, 10_000); err != nil {
						b.Fatal(err)
					}
				}
				var ov *Overloads
				if bc.overload {
					if ov, err = NewOverloads(3, DefaultOverloadConfig()); err != nil {
						b.Fatal(err)
					}
				}
				cfg.Gate = NewGate(br, ov)
			}
			co, err := engine.NewCoordinator(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := co.Start(0, func(func(*engine.Record) bool) {}); err != nil {
				b.Fatal(err)
			}
			nodes := make([]*engine.Node, 3)
			for i := range nodes {
				var p engine.Participant = &engine.NopParticipant{}
				if i == 0 {
					p = &benchFiller{}
				}
				if nodes[i], err = engine.NewNode(engine.NodeConfig{ID: engine.NodeID(i), Matching: i == 0,
					Participant: p, Table: table}); err != nil {
					b.Fatal(err)
				}
			}
			now := int64(0)
			one := func(i int) {
				now += 1000
				cmd := engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.Limit,
					Symbol: uint32(i & 63), Account: 1, Price: 10_000 + int64(i&15) - 8, Qty: 1}
				if _, err := co.Propose(now, &cmd); err != nil {
					b.Fatal(err)
				}
				for moved := true; moved; {
					moved = false
					rd := co.Ready()
					for j := range rd.Msgs {
						moved = true
						m := &rd.Msgs[j]
						for k, nd := range nodes {
							if m.To == engine.Broadcast || m.To == engine.NodeID(k) {
								if err := nd.Step(now, m); err != nil {
									b.Fatal(err)
								}
							}
						}
					}
					if len(rd.Results) > 0 && rd.Results[0].Reason != engine.ReasonNone {
						b.Fatalf("aborted: %v", rd.Results[0].Reason)
					}
					co.Advance()
					for _, nd := range nodes {
						nrd := nd.Ready()
						for j := range nrd.Msgs {
							moved = true
							if err := co.Step(now, &nrd.Msgs[j]); err != nil {
								b.Fatal(err)
							}
						}
						nd.Advance()
					}
				}
			}
			for i := range 4096 { // warm up: every buffer at its working size
				one(i)
			}
			lat := newLatencies()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				one(i)
				lat.record(time.Since(start))
			}
			b.StopTimer()
			lat.report(b)
		})
	}
}

// benchLog is a Log that keeps nothing.
type benchLog struct{}

func (benchLog) Append(*engine.Record) error { return nil }
