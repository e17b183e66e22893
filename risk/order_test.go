package risk

import (
	"bytes"
	"testing"

	"github.com/commitcore/commitcore/engine"
	"github.com/stretchr/testify/require"
)

// TestCommitOrderDoesNotChangeState is the regression test for what the
// venue's journal replay test caught: a participant node in PRECOMMITTED
// commits on its own after its commit timeout, so transactions in flight
// together may commit at risk in another order than the journal (TxID
// order) replays them. The reference price followed whichever trade
// committed last, and the token buckets were charged in commit order, so a
// manager rebuilt from the journal differed from the live one. Now both
// follow TxID order whatever order the commits arrive in.
func TestCommitOrderDoesNotChangeState(t *testing.T) {
	cfg := testConfig()
	cfg.FollowLastTrade = true
	cfg.Defaults.OrdersPerSecond, cfg.Defaults.Burst = 1, 2
	const second = nanosPerSecond
	type txn struct {
		tx  engine.TxID
		cmd engine.Command
		out engine.Outcome
	}
	// Two asks rest; then alice buys from each, 1 s apart, in two
	// transactions in flight together.
	var txs []txn
	for i, price := range []int64{1000, 1020} {
		tx := engine.TxID(1 + i)
		txs = append(txs, txn{tx: tx,
			cmd: engine.Command{Kind: engine.NewOrder, Side: engine.Sell, Type: engine.Limit, Symbol: sym, Account: bob, OrderID: uint64(tx), Price: price, Qty: 5, Time: int64(1+i) * 100 * second},
			out: engine.Outcome{Resting: 5, RestingPrice: price}})
	}
	for i, price := range []int64{1000, 1020} {
		tx := engine.TxID(3 + i)
		x := txn{tx: tx, cmd: engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Symbol: sym, Account: alice, OrderID: uint64(tx), Price: price, Qty: 5, Time: 1000*second + int64(i)*second}}
		addFill(&x.out, tx, alice, engine.Buy, uint64(1+i), bob, price, 5)
		txs = append(txs, x)
	}

	snapshot := func(m *Manager) []byte {
		var b bytes.Buffer
		require.NoError(t, m.Snapshot(&b))
		return b.Bytes()
	}
	// The journal's order: Apply in TxID order.
	replayed := newTestManager(t, cfg)
	for _, x := range txs {
		require.NoError(t, replayed.Apply(x.tx, &x.cmd, &x.out))
	}
	require.Equal(t, int64(1020), replayed.Reference(sym))

	for _, order := range [][]int{{2, 3}, {3, 2}} {
		live := newTestManager(t, cfg)
		for _, x := range txs[:2] {
			require.Equal(t, engine.ReasonNone, live.Prepare(x.tx, &x.cmd, nil))
			live.Commit(x.tx, &x.out)
		}
		for _, x := range txs[2:] {
			require.Equal(t, engine.ReasonNone, live.Prepare(x.tx, &x.cmd, nil))
		}
		for _, i := range order {
			live.PreCommit(txs[i].tx, &txs[i].out)
			live.Commit(txs[i].tx, &txs[i].out)
			requireAudit(t, live)
		}
		require.Equal(t, int64(1020), live.Reference(sym), "commit order %v", order)
		require.Equal(t, snapshot(replayed), snapshot(live), "commit order %v: the live manager differs from the journal's replay", order)
	}
}

// TestTokenQueueGrowsAndKeepsOrder pipelines more token-taking
// transactions than the queue was sized for and resolves them in reverse
// order: the queue grows without losing an entry, and commits reach the
// buckets as in TxID order.
func TestTokenQueueGrowsAndKeepsOrder(t *testing.T) {
	cfg := testConfig()
	cfg.Defaults, cfg.Overrides = Limits{OrdersPerSecond: 1000, Burst: 1000}, nil
	cfg.MaxInFlight = 2
	const n = 40
	cmd := func(tx engine.TxID) *engine.Command {
		return &engine.Command{Kind: engine.NewOrder, Side: engine.Buy, Type: engine.IOC, Symbol: sym, Account: uint32(tx) % 3, OrderID: uint64(tx), Price: 1000, Qty: 1, Time: int64(tx) * 100_000}
	}
	ioc := &engine.Outcome{Canceled: 1}
	m := newTestManager(t, cfg)
	m.maxFlight = n // the table bound is not what this test is about
	for tx := engine.TxID(1); tx <= n; tx++ {
		require.Equal(t, engine.ReasonNone, m.Prepare(tx, cmd(tx), nil))
	}
	require.Equal(t, n, m.tokq.n)
	for tx := engine.TxID(n); tx >= 1; tx-- {
		if tx%5 == 0 {
			m.Abort(tx)
		} else {
			m.Commit(tx, ioc)
		}
		requireAudit(t, m)
	}
	require.Zero(t, m.tokq.n)
	want := newTestManager(t, cfg)
	for tx := engine.TxID(1); tx <= n; tx++ {
		if tx%5 != 0 {
			require.NoError(t, want.Apply(tx, cmd(tx), ioc))
		}
	}
	require.Equal(t, want.buckets, m.buckets)
	require.Equal(t, want.tokens, m.tokens)
}
