package venue

import (
	"bytes"
	"strings"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/commitcore/commitcore/matching"
	"github.com/commitcore/commitcore/risk"
	"github.com/commitcore/commitcore/settlement"
	"github.com/stretchr/testify/require"
)

func TestRoles(t *testing.T) {
	for i, r := range Roles {
		require.Equal(t, Role(i), r, "a role's NodeID is its index")
		got, err := ParseRole(r.String())
		require.NoError(t, err)
		require.Equal(t, r, got)
	}
	require.Equal(t, []string{"matching", "risk", "settlement"}, []string{Matching.String(), Risk.String(), Settlement.String()})
	_, err := ParseRole("clearing")
	require.ErrorContains(t, err, `unknown role "clearing": want one of matching, risk, settlement`)
	require.Equal(t, "role(7)", Role(7).String())
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Symbols = 0 }, "symbols 0: want 1 to 1024"},
		{func(c *Config) { c.Accounts = -1 }, "accounts -1: want 1 to"},
		{func(c *Config) { c.Accounts, c.Symbols = 1<<20, 1000 }, "account-symbol pairs"},
		{func(c *Config) { c.Tick = 0 }, "tick 0: want at least 1"},
		{func(c *Config) { c.StartPrice = 10_001; c.Tick = 2 }, "start price 10001: want a multiple of the tick 2"},
		{func(c *Config) { c.StartPrice = 100 }, "at least 200 ticks"},
		{func(c *Config) { c.MaxPrice = 15_000 }, "at least twice the start price"},
		{func(c *Config) { c.MaxPrice = 1 << 22 }, "price levels, want at most"},
		{func(c *Config) { c.Cash = -1 }, "cash -1"},
		{func(c *Config) { c.Holding = 1 << 62 }, "holding"},
		{func(c *Config) { c.MakerFeeBps = 10_001 }, "maker fee"},
		{func(c *Config) { c.TakerFeeBps = -1 }, "taker fee"},
		{func(c *Config) { c.STP = 9 }, "STP mode 9"},
		{func(c *Config) { c.Depth = 0 }, "depth 0"},
		{func(c *Config) { c.MaxOrders = 0 }, "max orders 0"},
		{func(c *Config) { c.MaxInFlight = 0 }, "max in flight 0"},
		{func(c *Config) { c.Limits.Burst = 0 }, "limits:"},
		{func(c *Config) { c.Limits.MaxPosition = -5 }, "limits:"},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		require.ErrorIs(t, err, ErrConfig, tc.want)
		require.ErrorContains(t, err, tc.want)
		_, err = New(c, Matching)
		require.ErrorIs(t, err, ErrConfig, "New validates too")
	}
}

func TestSymbolNames(t *testing.T) {
	c := DefaultConfig()
	for id := range uint32(c.Symbols) {
		got, err := c.SymbolID(c.SymbolName(id))
		require.NoError(t, err)
		require.Equal(t, id, got)
	}
	require.Equal(t, "SYM3", c.SymbolName(3))
	for _, bad := range []string{"SYM8", "SYM", "sym1", "SYM01", "SYM-1", "SYM+1", "X", "SYM99999999999"} {
		_, err := c.SymbolID(bad)
		require.ErrorContains(t, err, "want SYM0 to SYM7", bad)
	}
}

func TestNewBuildsEachRole(t *testing.T) {
	c := DefaultConfig()
	ps, err := NewAll(c)
	require.NoError(t, err)
	require.IsType(t, &matching.Matcher{}, ps[Matching])
	require.IsType(t, &risk.Manager{}, ps[Risk])
	require.IsType(t, &settlement.Ledger{}, ps[Settlement])
	_, err = New(c, Role(3))
	require.ErrorContains(t, err, "no such role")

	l := ps[Settlement].(*settlement.Ledger)
	cash, _ := l.Cash(0)
	require.Equal(t, c.Cash, cash)
	fees, _ := l.Cash(c.FeeAccount())
	require.Zero(t, fees, "the fee account starts empty")
	h, _ := l.Holding(uint32(c.Accounts-1), uint32(c.Symbols-1))
	require.Equal(t, c.Holding, h)
	require.Equal(t, c.StartPrice, ps[Risk].(*risk.Manager).Reference(0))

	// Identical state in every process: equal digests from the same Config.
	again, err := NewAll(c)
	require.NoError(t, err)
	for i := range ps {
		d1, err := Digest(ps[i])
		require.NoError(t, err)
		d2, err := Digest(again[i])
		require.NoError(t, err)
		require.Equal(t, d1, d2)
	}
}

// decideDirect runs res.Cmd as transaction res.Tx through the participants
// without the protocol, as it goes when all of them see every message:
// each prepares in turn, a NO aborts those that prepared before it, and
// all YES pre-commit and commit. res.Reason and res.Out say how it ended.
func decideDirect(ps []engine.Participant, res *engine.Result) {
	for i, p := range ps {
		if res.Reason = p.Prepare(res.Tx, &res.Cmd, &res.Out); res.Reason != engine.ReasonNone {
			for _, q := range ps[:i] {
				q.Abort(res.Tx)
			}
			res.Out.Reset()
			return
		}
	}
	for _, p := range ps {
		p.PreCommit(res.Tx, &res.Out)
		p.Commit(res.Tx, &res.Out)
	}
}

// runDirect runs n commands of f through the participants one at a time,
// as the engine would with all three voting.
func runDirect(t *testing.T, f *Flow, ps []engine.Participant, first engine.TxID, n int) engine.TxID {
	t.Helper()
	var cmd engine.Command
	tx := first
	for range n {
		f.Next(&cmd)
		if cmd.Kind == engine.NewOrder {
			cmd.OrderID = uint64(tx)
		}
		res := engine.Result{Tx: tx, Cmd: cmd}
		decideDirect(ps, &res)
		f.Observe(&res)
		tx++
	}
	return tx
}

func TestRecorderAndAudits(t *testing.T) {
	c := DefaultConfig()
	c.Symbols, c.Accounts = 2, 20
	bare, err := NewAll(c)
	require.NoError(t, err)
	recs := make([]engine.Participant, len(bare))
	for i, p := range bare {
		recs[i] = NewRecorder(p)
	}
	f := NewFlow(c)
	runDirect(t, f, recs, 1, 3000)
	for i, p := range recs {
		rec := p.(*Recorder)
		require.Same(t, bare[i], rec.Unwrap())
		require.NotEmpty(t, rec.Committed())
		require.Equal(t, recs[0].(*Recorder).Committed(), rec.Committed())
		require.NoError(t, Err(Audit(p)))
	}
	require.NoError(t, Err(CrossAudit(c, recs...)))
	require.Positive(t, f.Resting())

	// Replaying the committed transactions through Recorders records them.
	fresh, err := New(c, Risk)
	require.NoError(t, err)
	r := NewRecorder(fresh)
	require.NoError(t, r.Apply(1<<40, &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Symbol: 0, Account: 1, OrderID: 1 << 40, Price: 10_000, Qty: 1}, &engine.Outcome{Canceled: 1}))
	require.Equal(t, []engine.TxID{1 << 40}, r.Committed())
	require.Error(t, r.Apply(1<<40+1, &engine.Command{Kind: engine.Cancel, Account: 1, OrderID: 77}, &engine.Outcome{Canceled: 3}))
	require.Len(t, r.Committed(), 1, "a failed Apply records nothing")
}

func TestAuditsCatchDisagreement(t *testing.T) {
	c := DefaultConfig()
	c.Symbols, c.Accounts = 1, 10
	ps, err := NewAll(c)
	require.NoError(t, err)
	// An order that rests at matching and risk but never reached
	// settlement.
	cmd := engine.Command{Kind: engine.NewOrder, Side: engine.Sell, Type: engine.Limit, Account: 3, OrderID: 1, Price: 10_100, Qty: 7}
	var out engine.Outcome
	require.Equal(t, engine.ReasonNone, ps[Matching].Prepare(1, &cmd, &out))
	require.Equal(t, engine.ReasonNone, ps[Risk].Prepare(1, &cmd, &out))
	cs := Audit(ps[Matching])
	require.Error(t, Err(cs), "a transaction in flight holds quantity")
	require.Equal(t, "matching/no_transactions_in_flight", Failed(cs)[0].Name)
	require.Error(t, Err(Audit(ps[Risk])))
	ps[Matching].Commit(1, &out)
	ps[Risk].Commit(1, &out)
	for _, p := range ps {
		require.NoError(t, Err(Audit(p)), "each participant is consistent on its own")
	}
	cs = CrossAudit(c, ps[Settlement], ps[Risk], ps[Matching])
	bad := Failed(cs)
	require.NotEmpty(t, bad)
	names := []string{}
	for _, b := range bad {
		names = append(names, b.Name)
	}
	require.Contains(t, names, "cross/resting_orders")
	require.Contains(t, names, "cross/reservations")
	require.NotContains(t, names, "cross/open_quantity", "risk agrees with matching")
	require.ErrorContains(t, Err(cs), "settlement reserves 0 lots, resting sells hold 7")

	require.Equal(t, "cross/participants", CrossAudit(c, ps[Matching])[0].Name)
	unknown := Audit(&engine.NopParticipant{})
	require.Len(t, unknown, 1)
	require.False(t, unknown[0].OK)
}

func TestDigestAndReplayOnto(t *testing.T) {
	c := DefaultConfig()
	c.Symbols, c.Accounts = 2, 10
	ps, err := NewAll(c)
	require.NoError(t, err)
	before, err := Digest(ps[Settlement])
	require.NoError(t, err)
	var log memLog
	f := NewFlow(c)
	var cmd engine.Command
	tx := engine.TxID(1)
	for trades := 0; trades < 20; tx++ {
		f.Next(&cmd)
		if cmd.Kind == engine.NewOrder {
			cmd.OrderID = uint64(tx)
		}
		res := engine.Result{Tx: tx, Cmd: cmd}
		ok := true
		for _, p := range ps {
			if p.Prepare(tx, &cmd, &res.Out) != engine.ReasonNone {
				ok = false
			}
		}
		if !ok {
			for _, p := range ps {
				p.Abort(tx)
			}
			log.Append(&engine.Record{Kind: engine.RecAbort, Tx: tx})
			res.Reason = engine.ReasonBackpressure
		} else {
			log.Append(&engine.Record{Kind: engine.RecCommit, Tx: tx, Cmd: cmd, Out: res.Out})
			for _, p := range ps {
				p.Commit(tx, &res.Out)
			}
			trades += res.Out.NFills
		}
		f.Observe(&res)
	}
	after, err := Digest(ps[Settlement])
	require.NoError(t, err)
	require.NotEqual(t, before, after)
	// A commit record followed by an abort record did not commit.
	log.Append(&engine.Record{Kind: engine.RecCommit, Tx: tx, Cmd: engine.Command{Kind: engine.Cancel, Account: 1, OrderID: 1 << 50}, Out: engine.Outcome{Canceled: 1}})
	log.Append(&engine.Record{Kind: engine.RecAbort, Tx: tx})
	for _, r := range Roles {
		p, err := Replay(c, r, log.all)
		require.NoError(t, err, "%v", r)
		got, err := Digest(p)
		require.NoError(t, err)
		want, err := Digest(ps[r])
		require.NoError(t, err)
		require.Equal(t, want, got, "%v", r)
	}
	var buf bytes.Buffer
	require.NoError(t, ps[Risk].Snapshot(&buf))
	require.True(t, strings.HasPrefix(buf.String(), "CCRISK"))
}

func TestFlowIsDeterministic(t *testing.T) {
	c := DefaultConfig()
	c.Symbols, c.Accounts, c.Depth = 3, 30, 20
	run := func(seed int64) []engine.Command {
		c.Seed = seed
		ps, err := NewAll(c)
		require.NoError(t, err)
		f := NewFlow(c)
		var cmds []engine.Command
		var cmd engine.Command
		for tx := engine.TxID(1); tx <= 2000; tx++ {
			f.Next(&cmd)
			cmds = append(cmds, cmd)
			if cmd.Kind == engine.NewOrder {
				cmd.OrderID = uint64(tx)
			}
			res := engine.Result{Tx: tx, Cmd: cmd}
			for _, p := range ps {
				if res.Reason = p.Prepare(tx, &cmd, &res.Out); res.Reason != engine.ReasonNone {
					break
				}
			}
			for _, p := range ps {
				if res.Reason == engine.ReasonNone {
					p.Commit(tx, &res.Out)
				} else {
					p.Abort(tx)
				}
			}
			if res.Reason != engine.ReasonNone {
				res.Out.Reset()
			}
			f.Observe(&res)
		}
		return cmds
	}
	a, b := run(1), run(1)
	require.Equal(t, a, b, "same seed, same results: same commands")
	require.NotEqual(t, a, run(2))
	kinds := map[engine.CommandKind]int{}
	for i, cmd := range a {
		require.Equal(t, uint64(i), cmd.ClientOrderID)
		require.Equal(t, int64(i+1)*(1_000_000_000/flowAccountRate/int64(c.Accounts)), cmd.Time)
		kinds[cmd.Kind]++
	}
	// The exchange-core mix: mostly moves once the books are deep.
	require.Greater(t, kinds[engine.Replace], len(a)/2)
	require.Positive(t, kinds[engine.Cancel])
	require.Positive(t, kinds[engine.NewOrder])
}

func TestFlowSkip(t *testing.T) {
	c := DefaultConfig()
	a, b := NewFlow(c), NewFlow(c)
	var x, y engine.Command
	for range 100 {
		a.Next(&x)
	}
	b.Skip(100)
	require.Equal(t, uint64(100), b.Sent())
	a.Next(&x)
	b.Next(&y)
	require.Equal(t, x, y, "with no results seen, Skip is Next without the commands")
}

func TestFlowShock(t *testing.T) {
	for _, pct := range []int{25, -25} {
		c := DefaultConfig()
		c.Symbols, c.Accounts = 2, 50
		ps, err := NewAll(c)
		require.NoError(t, err)
		f := NewFlow(c)
		tx := runDirect(t, f, ps, 1, 4000)
		old := f.Mid(1)
		f.Shock(1, pct)
		require.Equal(t, old+old*int64(pct)/100, f.Mid(1))
		far := func(p int64) bool { // beyond 20 % of the old mid, the shock's way
			if pct > 0 {
				return p > old+old/5
			}
			return p < old-old/5
		}
		sawTrade := false
		var cmd engine.Command
		for i := 0; i < 2*shockCap && f.syms[1].shockLeft > 0; i++ {
			f.Next(&cmd)
			if cmd.Kind == engine.NewOrder {
				cmd.OrderID = uint64(tx)
			}
			res := engine.Result{Tx: tx, Cmd: cmd}
			reason := engine.ReasonNone
			for _, p := range ps {
				if reason = p.Prepare(tx, &cmd, &res.Out); reason != engine.ReasonNone {
					break
				}
			}
			for _, p := range ps {
				if reason == engine.ReasonNone {
					p.Commit(tx, &res.Out)
				} else {
					p.Abort(tx)
				}
			}
			res.Reason = reason
			if reason != engine.ReasonNone {
				res.Out.Reset()
			}
			for _, fl := range res.Out.FillSlice() {
				if fl.Symbol == 1 && far(fl.Price) {
					sawTrade = true
				}
			}
			f.Observe(&res)
			tx++
		}
		require.True(t, sawTrade, "shock %d%%: no trade at the shocked level", pct)
		require.Zero(t, f.syms[1].shockLeft, "a trade at the new level ends the shock")
		require.Empty(t, f.shocked)
		for _, p := range ps {
			require.NoError(t, Err(Audit(p)))
		}
		require.NoError(t, Err(CrossAudit(c, ps...)))
		require.Panics(t, func() { f.Shock(2, 10) })

		// A halt ends a shock too.
		f.Shock(0, pct)
		require.Len(t, f.shocked, 1)
		f.Observe(&engine.Result{Cmd: engine.Command{Symbol: 0}, Reason: engine.ReasonCircuitBreaker})
		require.Empty(t, f.shocked)
	}
}
