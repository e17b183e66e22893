package matching

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/commitcore/commitcore/engine"
)

const (
	mixMid     = 50_000
	mixResting = 1000
	mixChunk   = 1 << 14
)

func mixConfig() Config {
	return Config{Symbols: []SymbolConfig{{ID: 1, Name: "SYM0", Tick: 1, MinPrice: 1, MaxPrice: 100_000}}, Orders: 1 << 14}
}

// mixGen generates an exchange-core-style command mix (9 % GTC, 3 % IOC,
// 6 % cancel, 82 % move) against a mirror Matcher, so that cancels and
// moves name live orders and the book keeps about mixResting orders around
// the mid. Generation runs outside the benchmark timer.
type mixGen struct {
	rng    *rand.Rand
	mirror *Matcher
	live   []uint64
	tx     engine.TxID
	out    engine.Outcome
}

func newMixGen(tb testing.TB) *mixGen {
	m, err := New(mixConfig())
	if err != nil {
		tb.Fatal(err)
	}
	g := &mixGen{rng: rand.New(rand.NewPCG(1, 2)), mirror: m}
	return g
}

// pick returns a live order, dropping ids the mirror no longer has.
func (g *mixGen) pick() (OrderInfo, int) {
	for len(g.live) > 0 {
		i := g.rng.IntN(len(g.live))
		if o, ok := g.mirror.Order(g.live[i]); ok {
			return o, i
		}
		g.live[i] = g.live[len(g.live)-1]
		g.live = g.live[:len(g.live)-1]
	}
	return OrderInfo{}, -1
}

func (g *mixGen) next() engine.Command {
	r := g.rng
	g.tx++
	c := engine.Command{Symbol: 1, Account: uint32(r.IntN(1000)), OrderID: uint64(g.tx), Time: int64(g.tx)}
	k := r.IntN(100)
	o, i := g.pick()
	switch {
	case k < 9 || i < 0 || (k < 18 && len(g.live) < mixResting):
		c.Kind, c.Type, c.Side, c.Qty = engine.NewOrder, engine.Limit, engine.Side(1+r.IntN(2)), 1+r.Int64N(100)
		off := 1 + r.Int64N(50)
		if r.IntN(10) == 0 {
			off = -r.Int64N(5) // through the spread
		}
		if c.Side == engine.Buy {
			c.Price = mixMid - off
		} else {
			c.Price = mixMid + off
		}
		g.live = append(g.live, c.OrderID)
	case k < 12:
		c.Kind, c.Type, c.Side, c.Qty = engine.NewOrder, engine.IOC, engine.Side(1+r.IntN(2)), 1+r.Int64N(200)
		c.Price = mixMid + 10
		if c.Side == engine.Sell {
			c.Price = mixMid - 10
		}
	case k < 18:
		c.Kind, c.OrderID, c.Account = engine.Cancel, o.ID, o.Account
		g.live[i] = g.live[len(g.live)-1]
		g.live = g.live[:len(g.live)-1]
	default:
		c.Kind, c.OrderID, c.Account, c.Qty = engine.Replace, o.ID, o.Account, o.Open
		c.Price = min(max(o.Price+r.Int64N(9)-4, mixMid-60), mixMid+60)
	}
	g.mirror.Execute(g.tx, &c, &g.out)
	return c
}

func benchmarkMix(b *testing.B, participant bool) {
	g := newMixGen(b)
	for len(g.live) < mixResting || g.tx < 100_000 {
		g.next()
	}
	// The measured Matcher starts from the mirror's state.
	m, err := New(mixConfig())
	if err != nil {
		b.Fatal(err)
	}
	var snap bytes.Buffer
	if err := g.mirror.Snapshot(&snap); err != nil {
		b.Fatal(err)
	}
	if err := m.Restore(&snap); err != nil {
		b.Fatal(err)
	}

	cmds := make([]engine.Command, mixChunk)
	var out engine.Outcome
	hist := hdrhistogram.New(1, int64(time.Second), 3)
	b.ReportAllocs()
	b.ResetTimer()
	fills := 0
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(mixChunk, b.N-done)
		first := g.tx + 1
		for i := range n {
			cmds[i] = g.next()
		}
		b.StartTimer()
		for i := range n {
			tx := first + engine.TxID(i)
			var t0 time.Time
			if i&15 == 0 {
				t0 = time.Now()
			}
			if participant {
				if m.Prepare(tx, &cmds[i], &out) != engine.ReasonNone {
					b.Fatalf("command %+v rejected", cmds[i])
				}
				m.Commit(tx, &out)
			} else if m.Execute(tx, &cmds[i], &out) != engine.ReasonNone {
				b.Fatalf("command %+v rejected", cmds[i])
			}
			fills += out.NFills
			if i&15 == 0 {
				_ = hist.RecordValue(int64(time.Since(t0)))
			}
		}
		done += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(fills)/float64(b.N), "fills/op")
	b.ReportMetric(float64(m.ids.n), "orders")
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50-ns", 50}, {"p99-ns", 99}, {"p99.9-ns", 99.9}, {"p99.99-ns", 99.99}} {
		b.ReportMetric(float64(hist.ValueAtQuantile(q.p)), q.name)
	}
	b.ReportMetric(float64(hist.Max()), "max-ns")
}

// BenchmarkMatchingMix replays the exchange-core-style mix on one book of
// about 1,000 resting orders through Execute. Every 16th command is timed
// on its own for the latency percentiles.
func BenchmarkMatchingMix(b *testing.B) { benchmarkMix(b, false) }

// BenchmarkMatchingParticipant runs the same mix through Prepare and
// Commit, so that the participant's bookkeeping shows against Execute.
func BenchmarkMatchingParticipant(b *testing.B) { benchmarkMix(b, true) }
