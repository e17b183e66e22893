package matching

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

var diffN = flag.Int("matching.n", 200_000, "commands in the differential test (1000000 for the full run)")

// testConfig is two small books whose narrow ranges make orders cross,
// trade and sweep levels often, with a handful of accounts so that
// self-trade prevention triggers.
func testConfig(stp STPMode) Config {
	return Config{
		STP: stp,
		Symbols: []SymbolConfig{
			{ID: 7, Name: "SYM0", Tick: 5, MinPrice: 100, MaxPrice: 200},
			{ID: 9, Name: "SYM1", Tick: 1, MinPrice: 1, MaxPrice: 40},
		},
		Orders: 1 << 10,
	}
}

// cmdGen produces random commands, mostly valid, aimed at live orders.
type cmdGen struct {
	rng  *rand.Rand
	live []uint64 // candidate ids for cancel and replace; may be stale
	next uint64
}

func (g *cmdGen) command(tx engine.TxID, cfg Config) engine.Command {
	r := g.rng
	s := cfg.Symbols[r.IntN(len(cfg.Symbols))]
	price := s.MinPrice + s.Tick*r.Int64N(s.Levels())
	switch r.IntN(50) {
	case 0:
		price += 1 + r.Int64N(s.Tick) // off tick (or a valid one for tick 1)
	case 1:
		price = s.MaxPrice + s.Tick
	case 2:
		price = -s.Tick
	}
	qty := 1 + r.Int64N(20)
	if r.IntN(8) == 0 { // a sweep through many orders
		qty = 1 + r.Int64N(400)
	}
	if r.IntN(60) == 0 {
		qty = -r.Int64N(2)
	}
	c := engine.Command{Symbol: s.ID, Account: uint32(r.IntN(6)), Price: price, Qty: qty, Time: int64(tx)}
	if r.IntN(200) == 0 {
		c.Symbol = 3
	}
	k := r.IntN(100)
	switch {
	case k < 55 || len(g.live) == 0:
		c.Kind, c.OrderID = engine.NewOrder, uint64(tx)
		c.Side = engine.Side(1 + r.IntN(2))
		c.Type = []engine.OrderType{engine.Limit, engine.Limit, engine.Limit, engine.IOC, engine.FOK, engine.Market}[r.IntN(6)]
		if r.IntN(200) == 0 {
			c.Type = 0
		}
		g.live = append(g.live, c.OrderID)
		if len(g.live) > 400 {
			g.live = g.live[len(g.live)-300:]
		}
	default:
		c.Kind = engine.Cancel
		if k >= 65 {
			c.Kind = engine.Replace
		}
		c.OrderID = g.live[r.IntN(len(g.live))]
		if r.IntN(100) == 0 {
			c.OrderID = 1 << 40
		}
	}
	return c
}

// ownerOf makes cancels and replaces mostly come from the right account.
func ownerOf(m *Matcher, c *engine.Command, r *rand.Rand) {
	if c.Kind == engine.NewOrder || r.IntN(20) == 0 {
		return
	}
	if o, ok := m.Order(c.OrderID); ok {
		c.Account = o.Account
		c.Symbol = o.Symbol
		if r.IntN(3) == 0 { // a move near the current price
			s := c.Symbol
			for _, sc := range testConfig(0).Symbols {
				if sc.ID == s {
					c.Price = min(max(o.Price+sc.Tick*(r.Int64N(5)-2), sc.MinPrice), sc.MaxPrice)
				}
			}
		}
	}
}

// TestDifferential feeds the Matcher (through Prepare and Commit, with some
// transactions aborted) and the reference book the same random commands
// and requires identical votes, outcomes and books.
func TestDifferential(t *testing.T) {
	n := *diffN
	if testing.Short() {
		n = 20_000
	}
	for _, stp := range []STPMode{CancelResting, CancelIncoming} {
		t.Run(stp.String(), func(t *testing.T) {
			start := time.Now()
			cfg := testConfig(stp)
			m, err := New(cfg)
			require.NoError(t, err)
			ref := newReference(cfg)
			rng := rand.New(rand.NewPCG(uint64(stp), 42))
			g := &cmdGen{rng: rng}
			var got, want engine.Outcome
			var buf bytes.Buffer
			for i := 1; i <= n/2; i++ {
				tx := engine.TxID(i)
				c := g.command(tx, cfg)
				ownerOf(m, &c, rng)
				reason := m.Prepare(tx, &c, &got)
				if reason == engine.ReasonNone && rng.IntN(20) == 0 {
					m.Abort(tx)
					continue
				}
				wantReason := ref.exec(tx, &c, &want)
				require.Equal(t, wantReason, reason, "command %d %+v", i, c)
				if reason == engine.ReasonNone {
					require.Empty(t, diffOutcome(&got, &want), "command %d %+v", i, c)
					m.Commit(tx, &got)
				}
				if i%5000 == 0 {
					buf.Reset()
					require.NoError(t, m.Snapshot(&buf))
					require.Equal(t, ref.snapshot(), buf.Bytes(), "books differ after command %d", i)
					checkInvariants(t, m)
				}
			}
			buf.Reset()
			require.NoError(t, m.Snapshot(&buf))
			require.Equal(t, ref.snapshot(), buf.Bytes())
			t.Logf("%d commands in %v", n/2, time.Since(start))
		})
	}
}

// checkInvariants verifies the book's internal structure: linked lists,
// bitmaps, best prices, holds, the id index, and that no book is crossed.
func checkInvariants(t testing.TB, m *Matcher) {
	t.Helper()
	inFlight := m.InFlight() > 0
	indexed := 0
	for bi := range m.books {
		b := &m.books[bi]
		for _, side := range []engine.Side{engine.Buy, engine.Sell} {
			l := b.side(side)
			best := int32(-1)
			for lv := range l.levels {
				x := l.levels[lv]
				set := l.bits[lv>>6]&(1<<(uint(lv)&63)) != 0
				if (x.head >= 0) != set || (x.head >= 0) != (x.tail >= 0) {
					t.Fatalf("book %d %v level %d: head %d tail %d bit %v", bi, side, lv, x.head, x.tail, set)
				}
				if x.head >= 0 && (best < 0 || side == engine.Buy) { // lowest ask, highest bid
					best = int32(lv)
				}
				prev := int32(-1)
				for s := x.head; s >= 0; s = m.orders[s].next {
					o := &m.orders[s]
					switch {
					case o.prev != prev:
						t.Fatalf("order %d: prev %d, want %d", o.id, o.prev, prev)
					case o.book != int32(bi) || o.side != side || o.level != int32(lv) || o.price != b.priceOf(int32(lv)):
						t.Fatalf("order %d is misfiled", o.id)
					case o.open <= 0 || o.held < 0 || o.held > o.open:
						t.Fatalf("order %d: open %d held %d", o.id, o.open, o.held)
					case !inFlight && (o.held != 0 || o.pending):
						t.Fatalf("order %d: held %d pending %v with nothing in flight", o.id, o.held, o.pending)
					}
					if s2, ok := m.ids.get(o.id); ok && s2 == s {
						indexed++
					}
					prev = s
				}
				if x.tail != prev {
					t.Fatalf("book %d level %d: tail %d, want %d", bi, lv, x.tail, prev)
				}
			}
			want := b.bestAsk
			if side == engine.Buy {
				want = b.bestBid
			}
			if best != want {
				t.Fatalf("book %d %v: best %d, want %d", bi, side, want, best)
			}
		}
		// A pending order may cross an order that the same transaction
		// removes; the committed book never crosses.
		if !inFlight && b.bestBid >= 0 && b.bestAsk >= 0 && b.bestBid >= b.bestAsk {
			t.Fatalf("book %d crossed: bid level %d, ask level %d", bi, b.bestBid, b.bestAsk)
		}
		if bid, ask, _ := m.BBO(b.cfg.ID); bid.Orders > 0 && ask.Orders > 0 && bid.Price >= ask.Price {
			t.Fatalf("book %d: committed orders crossed: bid %+v ask %+v", bi, bid, ask)
		}
	}
	if indexed != m.ids.n {
		t.Fatalf("id index has %d entries, %d orders are indexed", m.ids.n, indexed)
	}
}
